// BERT encoder: weights and layers (GGUF's bert tensor names). Post-LN blocks, bidirectional attention:
//   e = token_embd[tokens] + position_embd[positions]                       (T, C)
//   x = layernorm(e + token_types[types]) * token_embd_norm + bias          (the norm's fused residual add)
//   per layer l:
//     qkv = x · [Wq | Wk | Wv]ᵀ + [bq | bk | bv]                            (T, 3C)  one GEMM
//     kv_append(k, v); att = attention(q, cache), not causal: each query sees its whole sequence, whose length
//                      comes from ctx_len (no mask tensor)
//     h   = att · attn_outputᵀ + bias + x;   x = layernorm(h) * attn_output_norm + bias
//     u   = gelu_erf(x · ffn_upᵀ + bias)                                    (T, hidden)
//     h   = u · ffn_downᵀ + bias + x;        x = layernorm(h) * layer_output_norm + bias
// No LM head: x holds the final hidden states; Model::embed pools them on the host.
#include "graph.h"

namespace eet {

void Model::plan_weights_bert() {
  const int64_t dim = cfg_.dim, hd = cfg_.head_dim, hid = cfg_.hidden_dim;
  const int64_t att = int64_t(cfg_.n_heads) * hd;
  auto with_bias = [&](const std::string& name, std::vector<int64_t> shape) {
    weights_.plan_group({{name, shape}}, shape.size() == 2);
    weights_.plan_group({{name + ".bias", {shape[0]}}});
  };
  weights_.plan_group({{"token_embd", {cfg_.vocab_size, dim}}});
  weights_.plan_group({{"position_embd", {cfg_.max_seq_len, dim}}});
  weights_.plan_group({{"token_types", {cfg_.n_token_types, dim}}});
  with_bias("token_embd_norm", {dim});
  for (int32_t l = 0; l < cfg_.n_layers; ++l) {
    weights_.plan_group({{layer_name(l, "attn_q"), {att, dim}},
                         {layer_name(l, "attn_k"), {cfg_.n_kv_heads * hd, dim}},
                         {layer_name(l, "attn_v"), {cfg_.n_kv_heads * hd, dim}}},
                        true);
    weights_.plan_group({{layer_name(l, "attn_q.bias"), {att}},
                         {layer_name(l, "attn_k.bias"), {cfg_.n_kv_heads * hd}},
                         {layer_name(l, "attn_v.bias"), {cfg_.n_kv_heads * hd}}});
    with_bias(layer_name(l, "attn_output"), {dim, att});
    with_bias(layer_name(l, "attn_output_norm"), {dim});
    with_bias(layer_name(l, "ffn_up"), {hid, dim});
    with_bias(layer_name(l, "ffn_down"), {dim, hid});
    with_bias(layer_name(l, "layer_output_norm"), {dim});
  }
}

void Model::layers_bert(const StepPlan& p) {
  Graph g(*this, p);
  const int64_t dim = cfg_.dim, hid = cfg_.hidden_dim;
  const std::string pos_table = "position_embd";
  g.embedding("token_embd", cfg_.vocab_size, g.ints + wsl_->i_tokens, &pos_table, g.h);
  g.embedding("token_types", cfg_.n_token_types, g.ints + wsl_->i_types, nullptr, g.buf1);
  g.norm(NormKind::Layer, g.h, g.buf1, "token_embd_norm", true, g.x, g.T);
  for (int32_t l = 0; l < cfg_.n_layers; ++l) {
    g.gemm(g.x, dim, layer_name(l, "attn_q"), true, g.qkv_width, dim, g.buf1, g.qkv_width, nullptr);
    g.attention(l, g.buf1, false);
    g.gemm(g.att, g.q_width, layer_name(l, "attn_output"), true, dim, g.q_width, g.h, dim, g.x);
    g.norm(NormKind::Layer, g.h, nullptr, layer_name(l, "attn_output_norm"), true, g.x, g.T);
    g.gemm(g.x, dim, layer_name(l, "ffn_up"), true, hid, dim, g.buf1, hid, nullptr);
    g.act(ActKind::GeluErf, g.buf1, hid, hid);
    g.gemm(g.buf1, hid, layer_name(l, "ffn_down"), true, dim, hid, g.h, dim, g.x);
    g.norm(NormKind::Layer, g.h, nullptr, layer_name(l, "layer_output_norm"), true, g.x, g.T);
  }
}

}  // namespace eet

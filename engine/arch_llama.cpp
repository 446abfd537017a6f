// LLaMA family (llama / Llama 2 and 3, mistral, qwen2): weights and layers. One step, T packed tokens:
//   x = token_embd[tokens]                                                  (T, dim)   residual stream, model dtype
//   per layer l:
//     h    = rmsnorm(x) * attn_norm                                         (T, dim)
//     qkv  = h · [Wq | Wk | Wv]ᵀ (+ [bq | bk | bv], qwen2)                  (T, (nH + 2 nKV) hd)  one GEMM
//     rope(q, k) at each token's position (in place in qkv)
//     kv_append(k, v) into the sequence's cache slots
//     att  = attention(q, cache; q_start, ctx_len, block tables), causal    (T, nH hd)
//     x    = att · Woᵀ + x                                                  GEMM with residual
//     h    = rmsnorm(x) * ffn_norm
//     gu   = h · [W1 | W3]ᵀ                                                 (T, 2 hidden)  one GEMM
//     g    = silu(gate) * up   (in place over the gate half)
//     x    = g · W2ᵀ + x
// The final rmsnorm * output_norm and the head (token_embd when tied, else output) follow in model.cpp.
#include "graph.h"

namespace eet {

void Model::plan_weights_llama() {
  const int64_t dim = cfg_.dim, hd = cfg_.head_dim, hid = cfg_.hidden_dim;
  weights_.plan_group({{"token_embd", {cfg_.vocab_size, dim}}});
  for (int32_t l = 0; l < cfg_.n_layers; ++l) {
    weights_.plan_group({{layer_name(l, "attn_norm"), {dim}}});
    weights_.plan_group({{layer_name(l, "attn_q"), {cfg_.n_heads * hd, dim}},
                         {layer_name(l, "attn_k"), {cfg_.n_kv_heads * hd, dim}},
                         {layer_name(l, "attn_v"), {cfg_.n_kv_heads * hd, dim}}},
                        true);
    if (cfg_.qkv_bias) {
      weights_.plan_group({{layer_name(l, "attn_q.bias"), {cfg_.n_heads * hd}},
                           {layer_name(l, "attn_k.bias"), {cfg_.n_kv_heads * hd}},
                           {layer_name(l, "attn_v.bias"), {cfg_.n_kv_heads * hd}}});
    }
    weights_.plan_group({{layer_name(l, "attn_output"), {dim, cfg_.n_heads * hd}}}, true);
    weights_.plan_group({{layer_name(l, "ffn_norm"), {dim}}});
    weights_.plan_group({{layer_name(l, "ffn_gate"), {hid, dim}}, {layer_name(l, "ffn_up"), {hid, dim}}}, true);
    weights_.plan_group({{layer_name(l, "ffn_down"), {dim, hid}}}, true);
  }
  weights_.plan_group({{"output_norm", {dim}}});
  if (!cfg_.tied_embeddings) weights_.plan_group({{"output", {cfg_.vocab_size, dim}}}, true);
  weights_.plan_internal("rope.inv_freq", cfg_.head_dim / 2);
}

void Model::layers_llama(const StepPlan& p) {
  Graph g(*this, p);
  const int64_t dim = cfg_.dim, hid = cfg_.hidden_dim;
  g.embedding("token_embd", cfg_.vocab_size, g.ints + wsl_->i_tokens, nullptr, g.x);
  for (int32_t l = 0; l < cfg_.n_layers; ++l) {
    g.norm(NormKind::Rms, g.x, nullptr, layer_name(l, "attn_norm"), false, g.h, g.T);
    // q|k|v (and their biases) are adjacent: one GEMM over the group starting at attn_q.
    g.gemm(g.h, dim, layer_name(l, "attn_q"), cfg_.qkv_bias, g.qkv_width, dim, g.buf1, g.qkv_width, nullptr);
    g.rope(g.buf1);
    g.attention(l, g.buf1, true);
    g.gemm(g.att, g.q_width, layer_name(l, "attn_output"), false, dim, g.q_width, g.x, dim, g.x);
    g.norm(NormKind::Rms, g.x, nullptr, layer_name(l, "ffn_norm"), false, g.h, g.T);
    g.gemm(g.h, dim, layer_name(l, "ffn_gate"), false, 2 * hid, dim, g.buf1, 2 * hid, nullptr);  // gate|up adjacent

    ActArgs act{};
    act.kind = ActKind::SwiGlu;
    act.dtype = g.dt;
    act.x = g.buf1;
    act.up = g.elems(g.buf1, hid);
    act.y = g.buf1;
    act.m = g.T;
    act.n = hid;
    act.ldx = 2 * hid;
    act.ldu = 2 * hid;
    act.ldy = 2 * hid;
    backend_->act(act);

    g.gemm(g.buf1, 2 * hid, layer_name(l, "ffn_down"), false, dim, hid, g.x, dim, g.x);
  }
}

}  // namespace eet

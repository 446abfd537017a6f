// BERT encoder: weights and layers (GGUF's bert tensor names). Post-LN blocks, attention bidirectional unless the
// config gives per-layer masks (DecBERT: causal or anti-causal layers):
//   e = token_embd[tokens] + position_embd[positions]                       (T, C)
//   x = layernorm(e + token_types[types]) * token_embd_norm + bias          (the norm's fused residual add)
//   per layer l:
//     qkv = x · [Wq | Wk | Wv]ᵀ + [bq | bk | bv]                            (T, 3C)  one GEMM
//     kv_append(k, v); att = attention(q, cache) under layer l's mask: a query sees its whole sequence
//                      (bidirectional), its earlier tokens (causal) or its later ones (anti-causal), itself
//                      included; lengths come from ctx_len (no mask tensor). Each pass holds whole sequences.
//     h   = att · attn_outputᵀ + bias + x;   x = layernorm(h) * attn_output_norm + bias
//     u   = gelu_erf(x · ffn_upᵀ + bias)                                    (T, hidden)
//     h   = u · ffn_downᵀ + bias + x;        x = layernorm(h) * layer_output_norm + bias
// No LM head: x holds the final hidden states; Context::embed pools them on the host.
#include <algorithm>

#include "graph.h"
#include "limits.h"

namespace eet {

namespace {

class Bert final : public Architecture {
 public:
  const char* name() const override { return "bert"; }

  void validate(const ModelConfig& c) const override {
    if (c.n_kv_heads != c.n_heads) {
      throw_error(ErrorCode::InvalidArg, "Expected nHeads (" + std::to_string(c.n_heads) +
                                             ") for this architecture for nKvHeads but received " + std::to_string(c.n_kv_heads));
    }
    if (c.n_token_types < 1 || c.n_token_types > Limits::maxTokenTypes) {
      throw_error(ErrorCode::InvalidArg, "Expected integer in [1, " + std::to_string(Limits::maxTokenTypes) +
                                             "] for nTokenTypes but received " + std::to_string(c.n_token_types));
    }
  }

  void plan_weights(const ModelConfig& c, WeightArena& w) const override {
    const int64_t dim = c.dim, hd = c.head_dim, hid = c.hidden_dim;
    const int64_t att = int64_t(c.n_heads) * hd;
    auto with_bias = [&](const std::string& name, std::vector<int64_t> shape) {
      w.plan_group({{name, shape}}, shape.size() == 2);
      w.plan_group({{name + ".bias", {shape[0]}}});
    };
    w.plan_group({{"token_embd", {c.vocab_size, dim}}});
    w.plan_group({{"position_embd", {c.max_seq_len, dim}}});
    w.plan_group({{"token_types", {c.n_token_types, dim}}});
    with_bias("token_embd_norm", {dim});
    for (int32_t l = 0; l < c.n_layers; ++l) {
      w.plan_group({{layer_name(l, "attn_q"), {att, dim}},
                    {layer_name(l, "attn_k"), {c.n_kv_heads * hd, dim}},
                    {layer_name(l, "attn_v"), {c.n_kv_heads * hd, dim}}},
                   true);
      w.plan_group({{layer_name(l, "attn_q.bias"), {att}},
                    {layer_name(l, "attn_k.bias"), {c.n_kv_heads * hd}},
                    {layer_name(l, "attn_v.bias"), {c.n_kv_heads * hd}}});
      with_bias(layer_name(l, "attn_output"), {dim, att});
      with_bias(layer_name(l, "attn_output_norm"), {dim});
      with_bias(layer_name(l, "ffn_up"), {hid, dim});
      with_bias(layer_name(l, "ffn_down"), {dim, hid});
      with_bias(layer_name(l, "layer_output_norm"), {dim});
    }
  }

  int64_t buffer_width(const ModelConfig& c) const override {
    return std::max<int64_t>({int64_t(c.n_heads + 2 * c.n_kv_heads) * c.head_dim, c.hidden_dim, c.dim});
  }

  bool has_lm_head() const override { return false; }

  void forward(Graph& g) const override {
    const ModelConfig& c = g.cfg;
    const int64_t dim = c.dim, hid = c.hidden_dim;
    const std::string pos_table = "position_embd";
    g.embedding("token_embd", c.vocab_size, g.tokens(), &pos_table, g.h);
    g.embedding("token_types", c.n_token_types, g.token_types(), nullptr, g.buf1);
    g.norm(NormKind::Layer, g.h, g.buf1, "token_embd_norm", true, g.x, g.T);
    for (int32_t l = 0; l < c.n_layers; ++l) {
      g.gemm(g.x, dim, layer_name(l, "attn_q"), true, g.qkv_width, dim, g.buf1, g.qkv_width, nullptr);
      g.attention(l, g.buf1, c.attention_masks.empty() ? AttnMask::Bidirectional : c.attention_masks[size_t(l)]);
      g.gemm(g.att, g.q_width, layer_name(l, "attn_output"), true, dim, g.q_width, g.h, dim, g.x);
      g.norm(NormKind::Layer, g.h, nullptr, layer_name(l, "attn_output_norm"), true, g.x, g.T);
      g.gemm(g.x, dim, layer_name(l, "ffn_up"), true, hid, dim, g.buf1, hid, nullptr);
      g.act(ActKind::GeluErf, g.buf1, hid, hid);
      g.gemm(g.buf1, hid, layer_name(l, "ffn_down"), true, dim, hid, g.h, dim, g.x);
      g.norm(NormKind::Layer, g.h, nullptr, layer_name(l, "layer_output_norm"), true, g.x, g.T);
    }
  }
};

EET_REGISTER_ARCHITECTURE(Bert);

}  // namespace

}  // namespace eet

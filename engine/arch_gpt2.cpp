// GPT-2: weights and layers (GGUF's gpt2 tensor names). Pre-LN blocks, learned positions, no RoPE:
//   x = token_embd[tokens] + position_embd[positions]                       (T, C)   residual stream
//   per layer l:
//     h    = layernorm(x) * attn_norm + attn_norm.bias
//     qkv  = h · attn_qkvᵀ + attn_qkv.bias                                  (T, 3C)  fused projection, q|k|v
//     kv_append(k, v); att = attention(q, cache), causal                    (T, C)
//     x    = att · attn_outputᵀ + attn_output.bias + x
//     h    = layernorm(x) * ffn_norm + ffn_norm.bias
//     u    = gelu_tanh(h · ffn_upᵀ + ffn_up.bias)                           (T, 4C)
//     x    = u · ffn_downᵀ + ffn_down.bias + x
// The final layernorm (output_norm + bias) and the head (token_embd when tied, else output) follow in the step runner.
// Matrices are (out, in) like every other weight here: Hugging Face stores GPT-2's Conv1D weights as (in, out),
// and the loader (lib/) transposes them when it reads them, so c_attn.weight (C, 3C) arrives as attn_qkv (3C, C).
#include <algorithm>

#include "graph.h"

namespace eet {

namespace {

class Gpt2 final : public Architecture {
 public:
  const char* name() const override { return "gpt2"; }

  void validate(const ModelConfig& c) const override {
    if (c.n_kv_heads != c.n_heads) {
      throw_error(ErrorCode::InvalidArg, "Expected nHeads (" + std::to_string(c.n_heads) +
                                             ") for this architecture for nKvHeads but received " + std::to_string(c.n_kv_heads));
    }
  }

  void plan_weights(const ModelConfig& c, WeightArena& w) const override {
    const int64_t dim = c.dim, hid = c.hidden_dim;
    const int64_t qkv = int64_t(c.n_heads + 2 * c.n_kv_heads) * c.head_dim;
    const int64_t att = int64_t(c.n_heads) * c.head_dim;
    auto with_bias = [&](const std::string& name, std::vector<int64_t> shape) {
      w.plan_group({{name, shape}}, shape.size() == 2);
      w.plan_group({{name + ".bias", {shape[0]}}});
    };
    w.plan_group({{"token_embd", {c.vocab_size, dim}}});
    w.plan_group({{"position_embd", {c.max_seq_len, dim}}});
    for (int32_t l = 0; l < c.n_layers; ++l) {
      with_bias(layer_name(l, "attn_norm"), {dim});
      with_bias(layer_name(l, "attn_qkv"), {qkv, dim});
      with_bias(layer_name(l, "attn_output"), {dim, att});
      with_bias(layer_name(l, "ffn_norm"), {dim});
      with_bias(layer_name(l, "ffn_up"), {hid, dim});
      with_bias(layer_name(l, "ffn_down"), {dim, hid});
    }
    with_bias("output_norm", {dim});
    if (!c.tied_embeddings) w.plan_group({{"output", {c.vocab_size, dim}}}, true);
  }

  int64_t buffer_width(const ModelConfig& c) const override {
    return std::max<int64_t>({int64_t(c.n_heads + 2 * c.n_kv_heads) * c.head_dim, c.hidden_dim, c.dim});
  }

  NormKind output_norm_kind() const override { return NormKind::Layer; }
  bool output_norm_bias() const override { return true; }

  void forward(Graph& g) const override {
    const ModelConfig& c = g.cfg;
    const int64_t dim = c.dim, hid = c.hidden_dim;
    const std::string pos_table = "position_embd";
    g.embedding("token_embd", c.vocab_size, g.tokens(), &pos_table, g.x);
    for (int32_t l = 0; l < c.n_layers; ++l) {
      g.norm(NormKind::Layer, g.x, nullptr, layer_name(l, "attn_norm"), true, g.h, g.T);
      g.gemm(g.h, dim, layer_name(l, "attn_qkv"), true, g.qkv_width, dim, g.buf1, g.qkv_width, nullptr);
      g.attention(l, g.buf1, AttnMask::Causal);
      g.gemm(g.att, g.q_width, layer_name(l, "attn_output"), true, dim, g.q_width, g.x, dim, g.x);
      g.norm(NormKind::Layer, g.x, nullptr, layer_name(l, "ffn_norm"), true, g.h, g.T);
      g.gemm(g.h, dim, layer_name(l, "ffn_up"), true, hid, dim, g.buf1, hid, nullptr);
      g.act(ActKind::GeluTanh, g.buf1, hid, hid);
      g.gemm(g.buf1, hid, layer_name(l, "ffn_down"), true, dim, hid, g.x, dim, g.x);
    }
  }
};

EET_REGISTER_ARCHITECTURE(Gpt2);

}  // namespace

}  // namespace eet

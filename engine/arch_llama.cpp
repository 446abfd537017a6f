// LLaMA family (llama / Llama 2 and 3, mistral, qwen2): weights and layers. One step, T packed tokens:
//   x = token_embd[tokens]                                                  (T, dim)   residual stream, model dtype
//   per layer l:
//     h    = rmsnorm(x) * attn_norm                                         (T, dim)
//     qkv  = h · [Wq | Wk | Wv]ᵀ (+ [bq | bk | bv], qwen2)                  (T, (nH + 2 nKV) hd)  one GEMM
//            (decode steps: one GEMM with the norm as its input prologue, h never stored; likewise ffn_norm into
//            the gate|up GEMM and SwiGLU into the down projection: Graph::rms_norm_gemm, swiglu_gemm)
//     rope_kv_append: q rotated at each token's position (in place in qkv), k rotated and v copied into the
//                     sequence's cache slots, one op (qkv's k is left unrotated: only the cache's is read)
//     att  = attention(q, cache; q_start, ctx_len, block tables), causal    (T, nH hd)
//     x    = att · Woᵀ + x                                                  GEMM with residual
//     h    = rmsnorm(x) * ffn_norm
//     gu   = h · [W1 | W3]ᵀ                                                 (T, 2 hidden)  one GEMM
//     g    = silu(gate) * up   (in place over the gate half)
//     x    = g · W2ᵀ + x
// The final rmsnorm * output_norm and the head (token_embd when tied, else output) follow in the step runner.
#include <algorithm>
#include <cmath>

#include "graph.h"

namespace eet {

namespace {

void positive(const char* field, float v) {
  if (!(v > 0.0f) || !std::isfinite(v)) throw_error(ErrorCode::InvalidArg, std::string("Expected a finite number > 0 for ") + field);
}

// RoPE inverse frequencies, computed as llama2.c does: 1 / theta^(2i / head_dim) in float; then the scaling, in
// double from that float and rounded once:
//   linear: freq / factor  (positions divided by factor)
//   llama3 (Llama 3.1): the wavelength 2π / freq against the original context L decides:
//     wavelength < L / high_freq_factor: freq (the high frequencies are kept);
//     wavelength > L / low_freq_factor:  freq / factor;
//     in between, s = (L / wavelength - low_freq_factor) / (high_freq_factor - low_freq_factor) interpolates:
//     (1 - s) * freq / factor + s * freq.
std::vector<float> rope_inv_freq(const ModelConfig& c) {
  const double pi = 3.14159265358979323846;
  std::vector<float> inv_freq(size_t(c.head_dim / 2));
  for (size_t i = 0; i < inv_freq.size(); ++i) {
    const float base = 1.0f / powf(c.rope_theta, float(2 * i) / float(c.head_dim));
    const double f = base, factor = c.rope_factor;
    switch (c.rope_scaling) {
      case RopeScaling::None: inv_freq[i] = base; break;
      case RopeScaling::Linear: inv_freq[i] = float(f / factor); break;
      case RopeScaling::Llama3: {
        const double L = c.rope_original_max_pos, lo = c.rope_low_freq_factor, hi = c.rope_high_freq_factor;
        const double wavelength = 2.0 * pi / f;
        if (wavelength < L / hi) {
          inv_freq[i] = base;
        } else if (wavelength > L / lo) {
          inv_freq[i] = float(f / factor);
        } else {
          const double s = (L / wavelength - lo) / (hi - lo);
          inv_freq[i] = float((1.0 - s) * f / factor + s * f);
        }
        break;
      }
    }
  }
  return inv_freq;
}

class Llama final : public Architecture {
 public:
  const char* name() const override { return "llama"; }

  void validate(const ModelConfig& c) const override {
    positive("ropeTheta", c.rope_theta);
    if (c.rope_scaling != RopeScaling::None) positive("ropeScaling.factor", c.rope_factor);
    if (c.rope_scaling == RopeScaling::Llama3) {
      positive("ropeScaling.lowFreqFactor", c.rope_low_freq_factor);
      positive("ropeScaling.highFreqFactor", c.rope_high_freq_factor);
      if (!(c.rope_high_freq_factor > c.rope_low_freq_factor)) {
        throw_error(ErrorCode::InvalidArg, "Expected ropeScaling.highFreqFactor > ropeScaling.lowFreqFactor");
      }
      if (c.rope_original_max_pos < 1 || c.rope_original_max_pos > (1 << 24)) {
        throw_error(ErrorCode::InvalidArg, "Expected integer in [1, 16777216] for ropeScaling.originalMaxPositionEmbeddings but received " +
                                               std::to_string(c.rope_original_max_pos));
      }
    }
  }

  void plan_weights(const ModelConfig& c, WeightArena& w) const override {
    const int64_t dim = c.dim, hd = c.head_dim, hid = c.hidden_dim;
    w.plan_group({{"token_embd", {c.vocab_size, dim}}});
    for (int32_t l = 0; l < c.n_layers; ++l) {
      w.plan_group({{layer_name(l, "attn_norm"), {dim}}});
      w.plan_group({{layer_name(l, "attn_q"), {c.n_heads * hd, dim}},
                    {layer_name(l, "attn_k"), {c.n_kv_heads * hd, dim}},
                    {layer_name(l, "attn_v"), {c.n_kv_heads * hd, dim}}},
                   true);
      if (c.qkv_bias) {
        w.plan_group({{layer_name(l, "attn_q.bias"), {c.n_heads * hd}},
                      {layer_name(l, "attn_k.bias"), {c.n_kv_heads * hd}},
                      {layer_name(l, "attn_v.bias"), {c.n_kv_heads * hd}}});
      }
      w.plan_group({{layer_name(l, "attn_output"), {dim, c.n_heads * hd}}}, true);
      w.plan_group({{layer_name(l, "ffn_norm"), {dim}}});
      w.plan_group({{layer_name(l, "ffn_gate"), {hid, dim}}, {layer_name(l, "ffn_up"), {hid, dim}}}, true);
      w.plan_group({{layer_name(l, "ffn_down"), {dim, hid}}}, true);
    }
    w.plan_group({{"output_norm", {dim}}});
    if (!c.tied_embeddings) w.plan_group({{"output", {c.vocab_size, dim}}}, true);
    w.plan_internal("rope.inv_freq", c.head_dim / 2);
  }

  void finalize(const ModelConfig& c, Backend& be, WeightArena& w) const override {
    std::vector<float> inv_freq = rope_inv_freq(c);
    be.upload(w.ptr("rope.inv_freq"), inv_freq.data(), inv_freq.size() * 4);
  }

  int64_t buffer_width(const ModelConfig& c) const override {
    const int64_t qkv = int64_t(c.n_heads + 2 * c.n_kv_heads) * c.head_dim;
    return std::max<int64_t>({qkv, 2 * int64_t(c.hidden_dim), c.dim});  // gate|up
  }

  void forward(Graph& g) const override {
    const ModelConfig& c = g.cfg;
    const int64_t dim = c.dim, hid = c.hidden_dim;
    g.embedding("token_embd", c.vocab_size, g.tokens(), nullptr, g.x);
    for (int32_t l = 0; l < c.n_layers; ++l) {
      // The norms and SwiGLU are the GEMMs' input prologues in decode steps (Graph::fused_prologue), ops of their
      // own in larger ones.
      // q|k|v (and their biases) are adjacent: one GEMM over the group starting at attn_q.
      g.rms_norm_gemm(g.x, layer_name(l, "attn_norm"), layer_name(l, "attn_q"), c.qkv_bias, g.qkv_width, g.buf1,
                      g.qkv_width, nullptr);
      g.rope_kv_store(l, g.buf1);
      g.attend(l, g.buf1, AttnMask::Causal);
      g.gemm(g.att, g.q_width, layer_name(l, "attn_output"), false, dim, g.q_width, g.x, dim, g.x);
      g.rms_norm_gemm(g.x, layer_name(l, "ffn_norm"), layer_name(l, "ffn_gate"), false, 2 * hid, g.buf1, 2 * hid,
                      nullptr);  // gate|up adjacent
      g.swiglu_gemm(g.buf1, hid, layer_name(l, "ffn_down"), dim, g.x, dim, g.x);
    }
  }
};

EET_REGISTER_ARCHITECTURE(Llama);

}  // namespace

}  // namespace eet

// T5 encoder (Raffel et al. 2020; HF T5EncoderModel): weights and layers, named as llama.cpp's `t5` GGUF names them
// (enc.blk.N.*). Pre-norm blocks with T5's LayerNorm (RMS: no mean, no bias), no biases anywhere, attention scores
// NOT scaled by 1/sqrt(d_kv) but biased by a learned per-head table over relative-position buckets (layer 0 holds the
// table, every layer uses it), no position embedding:
//   x = token_embd[tokens]                                                  (T, C)   the residual stream (in h)
//   per layer l:
//     n   = rms(x) * attn_norm;  qkv = n · [Wq | Wk | Wv]ᵀ                 (T, 3 H d_kv)  one GEMM
//     kv_append(k, v); att = attention(q, cache), bidirectional, scale 1, + rel_b[h, bucket(key - query)]
//     x   = x + att · attn_oᵀ
//     n   = rms(x) * ffn_norm
//     x   = x + relu(n · ffn_upᵀ) · ffn_downᵀ                               (v1.0)
//       or x + (gelu_tanh(n · ffn_gateᵀ) * (n · ffn_upᵀ)) · ffn_downᵀ       (v1.1 / Flan-T5: gated-gelu)
//   out = rms(x) * enc.output_norm                                          (in x: Context::embed pools it)
// The encoder only, for now: no LM head (embed() pools the encoder output). The decoder (causal self-attention with
// unidirectional buckets, cross-attention over the encoder output) is the next step.
#include <algorithm>

#include "backend.h"
#include "graph.h"
#include "half.h"
#include "limits.h"

namespace eet {

namespace {

std::string enc_name(int32_t l, const char* what) { return "enc." + layer_name(l, what); }

class T5 final : public Architecture {
 public:
  const char* name() const override { return "t5"; }

  void validate(const ModelConfig& c) const override {
    auto expected = [](const std::string& field, const std::string& what, int64_t v) {
      throw_error(ErrorCode::InvalidArg, "Expected " + what + " for " + field + " but received " + std::to_string(v));
    };
    if (c.n_kv_heads != c.n_heads) expected("nKvHeads", "nHeads (" + std::to_string(c.n_heads) + ")", c.n_kv_heads);
    if (c.rel_buckets < 4 || c.rel_buckets > Limits::maxRelPosBuckets) {
      expected("relBuckets", "integer in [4, " + std::to_string(Limits::maxRelPosBuckets) + "]", c.rel_buckets);
    }
    const int32_t exact = c.rel_buckets / 4;  // the encoder's buckets are bidirectional: half each way, half exact
    if (c.rel_max_distance <= exact || c.rel_max_distance > Limits::maxSeqLen) {
      expected("relMaxDistance", "integer in [" + std::to_string(exact + 1) + ", " + std::to_string(Limits::maxSeqLen) + "]",
               c.rel_max_distance);
    }
    if (c.ffn_act != ActKind::Relu && c.ffn_act != ActKind::GegluTanh) {
      expected("ffnActivation", "'relu' or 'geglu_tanh'", int64_t(c.ffn_act));
    }
  }

  void plan_weights(const ModelConfig& c, WeightArena& w) const override {
    const int64_t dim = c.dim, hid = c.hidden_dim, att = int64_t(c.n_heads) * c.head_dim;
    w.plan_group({{"token_embd", {c.vocab_size, dim}}});
    w.plan_group({{"enc.blk.0.attn_rel_b", {c.n_heads, c.rel_buckets}}});
    for (int32_t l = 0; l < c.n_layers; ++l) {
      w.plan_group({{enc_name(l, "attn_norm"), {dim}}});
      w.plan_group({{enc_name(l, "attn_q"), {att, dim}}, {enc_name(l, "attn_k"), {att, dim}}, {enc_name(l, "attn_v"), {att, dim}}},
                   true);
      w.plan_group({{enc_name(l, "attn_o"), {dim, att}}}, true);
      w.plan_group({{enc_name(l, "ffn_norm"), {dim}}});
      if (c.ffn_act == ActKind::GegluTanh) {
        w.plan_group({{enc_name(l, "ffn_gate"), {hid, dim}}, {enc_name(l, "ffn_up"), {hid, dim}}}, true);  // gate|up
      } else {
        w.plan_group({{enc_name(l, "ffn_up"), {hid, dim}}}, true);
      }
      w.plan_group({{enc_name(l, "ffn_down"), {dim, hid}}}, true);
    }
    w.plan_group({{"enc.output_norm", {dim}}});
    // The attention op reads the bias table in fp32 whatever the model dtype (AttnRelBias): a copy made at finalize.
    w.plan_internal("enc.rel_bias.f32", int64_t(c.n_heads) * c.rel_buckets);
  }

  void finalize(const ModelConfig& c, Backend& be, WeightArena& w) const override {
    const size_t n = size_t(c.n_heads) * size_t(c.rel_buckets);
    std::vector<float> table(n);
    if (c.dtype == DType::F32) {
      be.download(table.data(), w.ptr("enc.blk.0.attn_rel_b"), n * 4);
    } else {  // f16 / bf16 bits
      std::vector<uint16_t> bits(n);
      be.download(bits.data(), w.ptr("enc.blk.0.attn_rel_b"), n * 2);
      for (size_t i = 0; i < n; ++i) table[i] = c.dtype == DType::BF16 ? bf16_to_f32(bits[i]) : f16_to_f32(bits[i]);
    }
    be.upload(w.ptr("enc.rel_bias.f32"), table.data(), n * 4);
  }

  int64_t buffer_width(const ModelConfig& c) const override {
    const int64_t ffn = c.ffn_act == ActKind::GegluTanh ? 2 * int64_t(c.hidden_dim) : c.hidden_dim;
    return std::max<int64_t>({3 * int64_t(c.n_heads) * c.head_dim, ffn, c.dim});
  }

  bool has_lm_head() const override { return false; }

  void forward(Graph& g) const override {
    const ModelConfig& c = g.cfg;
    const int64_t dim = c.dim, hid = c.hidden_dim;
    AttnRelBias rel{};
    rel.table = static_cast<const float*>(g.w("enc.rel_bias.f32"));
    rel.num_buckets = c.rel_buckets;
    rel.max_distance = c.rel_max_distance;
    rel.bidirectional = true;
    // The residual stream lives in h, each norm's output in x; the final norm leaves the encoder output in x.
    g.embedding("token_embd", c.vocab_size, g.tokens(), nullptr, g.h);
    for (int32_t l = 0; l < c.n_layers; ++l) {
      g.norm(NormKind::Rms, g.h, nullptr, enc_name(l, "attn_norm"), false, g.x, g.T);
      g.gemm(g.x, dim, enc_name(l, "attn_q"), false, g.qkv_width, dim, g.buf1, g.qkv_width, nullptr);  // q|k|v adjacent
      g.attention(l, g.buf1, AttnMask::Bidirectional, &rel, 1.0f);
      g.gemm(g.att, g.q_width, enc_name(l, "attn_o"), false, dim, g.q_width, g.h, dim, g.h);
      g.norm(NormKind::Rms, g.h, nullptr, enc_name(l, "ffn_norm"), false, g.x, g.T);
      if (c.ffn_act == ActKind::GegluTanh) {
        g.gemm(g.x, dim, enc_name(l, "ffn_gate"), false, 2 * hid, dim, g.buf1, 2 * hid, nullptr);  // gate|up adjacent
        g.act_gated(ActKind::GegluTanh, g.buf1, hid);
        g.gemm(g.buf1, 2 * hid, enc_name(l, "ffn_down"), false, dim, hid, g.h, dim, g.h);
      } else {
        g.gemm(g.x, dim, enc_name(l, "ffn_up"), false, hid, dim, g.buf1, hid, nullptr);
        g.act(ActKind::Relu, g.buf1, hid, hid);
        g.gemm(g.buf1, hid, enc_name(l, "ffn_down"), false, dim, hid, g.h, dim, g.h);
      }
    }
    g.norm(NormKind::Rms, g.h, nullptr, "enc.output_norm", false, g.x, g.T);
  }
};

EET_REGISTER_ARCHITECTURE(T5);

}  // namespace

}  // namespace eet

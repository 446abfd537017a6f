// T5 (Raffel et al. 2020; HF T5ForConditionalGeneration), encoder and decoder, named as llama.cpp's `t5` GGUF names
// them (enc.blk.N.*, dec.blk.N.*). Pre-norm blocks with T5's LayerNorm (RMS: no mean, no bias), no biases anywhere,
// attention scores NOT scaled by 1/sqrt(d_kv) but biased by a learned per-head table over relative-position buckets
// (layer 0 of each stack holds its table, every layer of the stack uses it), no position embedding.
// Encoder (Architecture::encoder; the residual stream in h):
//   x = token_embd[input]                                                    (T, C)
//   per layer l:
//     n = rms(x) * attn_norm;  qkv = n · [Wq | Wk | Wv]ᵀ                    (T, 3 H d_kv)  one GEMM
//     att = attention(q, k, v) bidirectional, scale 1, + enc rel_b[h, bucket(key - query)]  (both directions)
//     x = x + att · attn_oᵀ;  x = x + ffn(rms(x) * ffn_norm)
//   ffn(n) = relu(n · ffn_upᵀ) · ffn_downᵀ                                   (v1.0)
//         or (gelu_tanh(n · ffn_gateᵀ) * (n · ffn_upᵀ)) · ffn_downᵀ          (v1.1 / Flan-T5: gated-gelu)
//   out = rms(x) * enc.output_norm   (left in the workspace's x: embed() pools it, cross_kv() projects it)
// Memory (cross_kv): per decoder layer l, [K | V] = out · [cross_attn_k | cross_attn_v]ᵀ written to layer l of the
// memory's blocks, once per input — every decoder sequence reading it shares them (sequence.h EncoderMemory).
// Decoder (forward; the residual stream in x):
//   per layer l:
//     x = x + attn_o · causal self-attention of rms(x) * attn_norm, scale 1, + dec rel_b (unidirectional buckets)
//     x = x + cross_attn_o · cross-attention of (rms(x) * cross_attn_norm) · cross_attn_qᵀ over the memory (no bias)
//     x = x + ffn(rms(x) * ffn_norm)
//   logits = (rms(x) * dec.output_norm * s) · headᵀ: head = token_embd when tied, else output; s = dim^-0.5 when
//   scaleDecoderOutputs (T5 v1.0's tied head; folded into the norm's gain at finalize) else 1.
#include <algorithm>
#include <cmath>
#include <cstring>

#include "backend.h"
#include "graph.h"
#include "half.h"
#include "limits.h"

namespace eet {

namespace {

std::string enc_name(int32_t l, const char* what) { return "enc." + layer_name(l, what); }
std::string dec_name(int32_t l, const char* what) { return "dec." + layer_name(l, what); }

// A layer's FFN: residual += ffn(normed), with the stack's weight names (name(l, what)).
template <typename Name>
void ffn(Graph& g, Name name, int32_t l, void* normed, void* residual) {
  const ModelConfig& c = g.cfg;
  const int64_t dim = c.dim, hid = c.hidden_dim;
  if (c.ffn_act == ActKind::GegluTanh) {
    g.gemm(normed, dim, name(l, "ffn_gate"), false, 2 * hid, dim, g.buf1, 2 * hid, nullptr);  // gate|up adjacent
    g.act_gated(ActKind::GegluTanh, g.buf1, hid);
    g.gemm(g.buf1, 2 * hid, name(l, "ffn_down"), false, dim, hid, residual, dim, residual);
  } else {
    g.gemm(normed, dim, name(l, "ffn_up"), false, hid, dim, g.buf1, hid, nullptr);
    g.act(ActKind::Relu, g.buf1, hid, hid);
    g.gemm(g.buf1, hid, name(l, "ffn_down"), false, dim, hid, residual, dim, residual);
  }
}

template <typename Name>
void plan_ffn(const ModelConfig& c, WeightArena& w, Name name, int32_t l) {
  const int64_t dim = c.dim, hid = c.hidden_dim;
  w.plan_group({{name(l, "ffn_norm"), {dim}}});
  if (c.ffn_act == ActKind::GegluTanh) {
    w.plan_group({{name(l, "ffn_gate"), {hid, dim}}, {name(l, "ffn_up"), {hid, dim}}}, true);  // gate|up
  } else {
    w.plan_group({{name(l, "ffn_up"), {hid, dim}}}, true);
  }
  w.plan_group({{name(l, "ffn_down"), {dim, hid}}}, true);
}

// The fp32 copy of a stack's bias table that the attention op reads (AttnRelBias), made at finalize.
void copy_rel_table(const ModelConfig& c, Backend& be, WeightArena& w, const std::string& from, const std::string& to) {
  const size_t n = size_t(c.n_heads) * size_t(c.rel_buckets);
  std::vector<float> table(n);
  if (c.dtype == DType::F32) {
    be.download(table.data(), w.ptr(from), n * 4);
  } else {  // f16 / bf16 bits
    std::vector<uint16_t> bits(n);
    be.download(bits.data(), w.ptr(from), n * 2);
    for (size_t i = 0; i < n; ++i) table[i] = c.dtype == DType::BF16 ? bf16_to_f32(bits[i]) : f16_to_f32(bits[i]);
  }
  be.upload(w.ptr(to), table.data(), n * 4);
}

AttnRelBias rel_bias(const Graph& g, const char* table, bool bidirectional) {
  AttnRelBias rel{};
  rel.table = static_cast<const float*>(g.w(table));
  rel.num_buckets = g.cfg.rel_buckets;
  rel.max_distance = g.cfg.rel_max_distance;
  rel.bidirectional = bidirectional;
  return rel;
}

[[noreturn]] void expected(const std::string& field, const std::string& what, int64_t v) {
  throw_error(ErrorCode::InvalidArg, "Expected " + what + " for " + field + " but received " + std::to_string(v));
}

// The checks both T5 architectures make; the decoder's one-way buckets need max_distance > buckets / 2 (half of
// them exact), the encoder's two-way ones > buckets / 4.
void validate_t5(const ModelConfig& c, bool decoder) {
  if (c.n_kv_heads != c.n_heads) expected("nKvHeads", "nHeads (" + std::to_string(c.n_heads) + ")", c.n_kv_heads);
  if (c.rel_buckets < 4 || c.rel_buckets > Limits::maxRelPosBuckets) {
    expected("relBuckets", "integer in [4, " + std::to_string(Limits::maxRelPosBuckets) + "]", c.rel_buckets);
  }
  const int32_t exact = c.rel_buckets / (decoder ? 2 : 4);
  if (c.rel_max_distance <= exact || c.rel_max_distance > Limits::maxSeqLen) {
    expected("relMaxDistance", "integer in [" + std::to_string(exact + 1) + ", " + std::to_string(Limits::maxSeqLen) + "]",
             c.rel_max_distance);
  }
  if (c.ffn_act != ActKind::Relu && c.ffn_act != ActKind::GegluTanh) {
    expected("ffnActivation", "'relu' or 'geglu_tanh'", int64_t(c.ffn_act));
  }
}

void plan_encoder(const ModelConfig& c, WeightArena& w) {
  const int64_t dim = c.dim, att = int64_t(c.n_heads) * c.head_dim;
  w.plan_group({{"token_embd", {c.vocab_size, dim}}});
  w.plan_group({{"enc.blk.0.attn_rel_b", {c.n_heads, c.rel_buckets}}});
  for (int32_t l = 0; l < c.n_layers; ++l) {
    w.plan_group({{enc_name(l, "attn_norm"), {dim}}});
    w.plan_group({{enc_name(l, "attn_q"), {att, dim}}, {enc_name(l, "attn_k"), {att, dim}}, {enc_name(l, "attn_v"), {att, dim}}},
                 true);
    w.plan_group({{enc_name(l, "attn_o"), {dim, att}}}, true);
    plan_ffn(c, w, enc_name, l);
  }
  w.plan_group({{"enc.output_norm", {dim}}});
  // The attention op reads the bias table in fp32 whatever the model dtype (AttnRelBias): a copy made at finalize.
  w.plan_internal("enc.rel_bias.f32", int64_t(c.n_heads) * c.rel_buckets);
}

int64_t t5_buffer_width(const ModelConfig& c) {
  const int64_t ffn = c.ffn_act == ActKind::GegluTanh ? 2 * int64_t(c.hidden_dim) : c.hidden_dim;
  return std::max<int64_t>({3 * int64_t(c.n_heads) * c.head_dim, ffn, c.dim});  // q|k|v >= cross k|v
}

// The encoder over the step's tokens: the residual stream in h, each norm's output in x; the final norm leaves the
// encoder output in x.
void run_encoder(Graph& g) {
  const ModelConfig& c = g.cfg;
  const int64_t dim = c.dim;
  const AttnRelBias rel = rel_bias(g, "enc.rel_bias.f32", true);
  g.embedding("token_embd", c.vocab_size, g.tokens(), nullptr, g.h);
  for (int32_t l = 0; l < c.n_layers; ++l) {
    g.norm(NormKind::Rms, g.h, nullptr, enc_name(l, "attn_norm"), false, g.x, g.T);
    g.gemm(g.x, dim, enc_name(l, "attn_q"), false, g.qkv_width, dim, g.buf1, g.qkv_width, nullptr);  // q|k|v adjacent
    g.attention(l, g.buf1, AttnMask::Bidirectional, &rel, 1.0f);
    g.gemm(g.att, g.q_width, enc_name(l, "attn_o"), false, dim, g.q_width, g.h, dim, g.h);
    g.norm(NormKind::Rms, g.h, nullptr, enc_name(l, "ffn_norm"), false, g.x, g.T);
    ffn(g, enc_name, l, g.x, g.h);
  }
  g.norm(NormKind::Rms, g.h, nullptr, "enc.output_norm", false, g.x, g.T);
}

// T5's encoder alone (HF T5EncoderModel): an encoder like bert, embed() pools its output.
class T5Encoder final : public Architecture {
 public:
  const char* name() const override { return "t5encoder"; }
  void validate(const ModelConfig& c) const override { validate_t5(c, false); }
  void plan_weights(const ModelConfig& c, WeightArena& w) const override { plan_encoder(c, w); }
  void finalize(const ModelConfig& c, Backend& be, WeightArena& w) const override {
    copy_rel_table(c, be, w, "enc.blk.0.attn_rel_b", "enc.rel_bias.f32");
  }
  int64_t buffer_width(const ModelConfig& c) const override { return t5_buffer_width(c); }
  bool has_lm_head() const override { return false; }
  void forward(Graph& g) const override { run_encoder(g); }
};

class T5 final : public Architecture {
 public:
  const char* name() const override { return "t5"; }

  void validate(const ModelConfig& c) const override {
    validate_t5(c, true);
    if (c.n_dec_layers < 1 || c.n_dec_layers > Limits::maxLayers) {
      expected("nDecoderLayers", "integer in [1, " + std::to_string(Limits::maxLayers) + "]", c.n_dec_layers);
    }
    if (c.decoder_start_token < 0 || c.decoder_start_token >= c.vocab_size) {
      expected("decoderStartTokenId", "a token id in [0, " + std::to_string(c.vocab_size) + ")", c.decoder_start_token);
    }
  }

  void plan_weights(const ModelConfig& c, WeightArena& w) const override {
    const int64_t dim = c.dim, att = int64_t(c.n_heads) * c.head_dim;
    plan_encoder(c, w);
    w.plan_group({{"dec.blk.0.attn_rel_b", {c.n_heads, c.rel_buckets}}});
    for (int32_t l = 0; l < c.n_dec_layers; ++l) {
      w.plan_group({{dec_name(l, "attn_norm"), {dim}}});
      w.plan_group({{dec_name(l, "attn_q"), {att, dim}}, {dec_name(l, "attn_k"), {att, dim}}, {dec_name(l, "attn_v"), {att, dim}}},
                   true);
      w.plan_group({{dec_name(l, "attn_o"), {dim, att}}}, true);
      w.plan_group({{dec_name(l, "cross_attn_norm"), {dim}}});
      w.plan_group({{dec_name(l, "cross_attn_q"), {att, dim}}}, true);
      w.plan_group({{dec_name(l, "cross_attn_k"), {att, dim}}, {dec_name(l, "cross_attn_v"), {att, dim}}}, true);  // k|v
      w.plan_group({{dec_name(l, "cross_attn_o"), {dim, att}}}, true);
      plan_ffn(c, w, dec_name, l);
    }
    w.plan_group({{"dec.output_norm", {dim}}});
    if (!c.tied_embeddings) w.plan_group({{"output", {c.vocab_size, dim}}}, true);
    w.plan_internal("dec.rel_bias.f32", int64_t(c.n_heads) * c.rel_buckets);
    // The LM head's norm gain with the decoder-output scale folded in, in the model dtype (sized in fp32 units).
    w.plan_internal("dec.output_norm.head", (dim * int64_t(dtype_size(c.dtype)) + 3) / 4);
  }

  void finalize(const ModelConfig& c, Backend& be, WeightArena& w) const override {
    copy_rel_table(c, be, w, "enc.blk.0.attn_rel_b", "enc.rel_bias.f32");
    copy_rel_table(c, be, w, "dec.blk.0.attn_rel_b", "dec.rel_bias.f32");
    // HF multiplies the decoder output by d_model^-0.5 before a tied head; the gain absorbs it (one rounding in
    // the model dtype instead of a pass over every row).
    const double scale = c.scale_decoder_outputs ? 1.0 / std::sqrt(double(c.dim)) : 1.0;
    const size_t n = size_t(c.dim), es = dtype_size(c.dtype);
    std::vector<uint8_t> bytes(n * es);
    be.download(bytes.data(), w.ptr("dec.output_norm"), bytes.size());
    for (size_t i = 0; i < n; ++i) {
      if (c.dtype == DType::F32) {
        float v;
        std::memcpy(&v, bytes.data() + 4 * i, 4);
        v = float(double(v) * scale);
        std::memcpy(bytes.data() + 4 * i, &v, 4);
      } else {
        uint16_t b;
        std::memcpy(&b, bytes.data() + 2 * i, 2);
        const bool bf = c.dtype == DType::BF16;
        const float v = float(double(bf ? bf16_to_f32(b) : f16_to_f32(b)) * scale);
        b = bf ? f32_to_bf16(v) : f32_to_f16(v);
        std::memcpy(bytes.data() + 2 * i, &b, 2);
      }
    }
    be.upload(w.ptr("dec.output_norm.head"), bytes.data(), bytes.size());
  }

  int64_t buffer_width(const ModelConfig& c) const override { return t5_buffer_width(c); }

  const char* output_norm_name() const override { return "dec.output_norm.head"; }
  bool encoder_decoder() const override { return true; }
  int32_t cache_layers(const ModelConfig& c) const override { return std::max(c.n_layers, c.n_dec_layers); }

  void encoder(Graph& g) const override { run_encoder(g); }

  void cross_kv(Graph& g) const override {
    const ModelConfig& c = g.cfg;
    const int64_t kv2 = 2 * g.kv_width;
    for (int32_t l = 0; l < c.n_dec_layers; ++l) {
      g.gemm(g.x, c.dim, dec_name(l, "cross_attn_k"), false, kv2, c.dim, g.buf1, kv2, nullptr);  // k|v adjacent
      g.kv_store(l, g.buf1, g.elems(g.buf1, g.kv_width), kv2);
    }
  }

  void forward(Graph& g) const override {
    const ModelConfig& c = g.cfg;
    const int64_t dim = c.dim;
    const AttnRelBias rel = rel_bias(g, "dec.rel_bias.f32", false);
    // The residual stream lives in x (where the runner's head reads it), each norm's output in h.
    g.embedding("token_embd", c.vocab_size, g.tokens(), nullptr, g.x);
    for (int32_t l = 0; l < c.n_dec_layers; ++l) {
      g.norm(NormKind::Rms, g.x, nullptr, dec_name(l, "attn_norm"), false, g.h, g.T);
      g.gemm(g.h, dim, dec_name(l, "attn_q"), false, g.qkv_width, dim, g.buf1, g.qkv_width, nullptr);  // q|k|v adjacent
      g.attention(l, g.buf1, AttnMask::Causal, &rel, 1.0f);
      g.gemm(g.att, g.q_width, dec_name(l, "attn_o"), false, dim, g.q_width, g.x, dim, g.x);
      g.norm(NormKind::Rms, g.x, nullptr, dec_name(l, "cross_attn_norm"), false, g.h, g.T);
      g.gemm(g.h, dim, dec_name(l, "cross_attn_q"), false, g.q_width, dim, g.buf1, g.q_width, nullptr);
      g.cross_attention(l, g.buf1, g.q_width, 1.0f);
      g.gemm(g.att, g.q_width, dec_name(l, "cross_attn_o"), false, dim, g.q_width, g.x, dim, g.x);
      g.norm(NormKind::Rms, g.x, nullptr, dec_name(l, "ffn_norm"), false, g.h, g.T);
      ffn(g, dec_name, l, g.h, g.x);
    }
  }
};

EET_REGISTER_ARCHITECTURE(T5Encoder);
EET_REGISTER_ARCHITECTURE(T5);

}  // namespace

}  // namespace eet

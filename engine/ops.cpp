// Argument validation for every op (ops.h). Runs before any backend, so kernels and the cpu reference can
// assume consistent dimensions. Messages name the field and the value received.
#include <cmath>
#include <string>

#include "error.h"
#include "limits.h"
#include "ops.h"

namespace eet {

const char* dtype_name(DType t) {
  switch (t) {
    case DType::F32: return "float32";
    case DType::F16: return "float16";
    case DType::BF16: return "bfloat16";
    case DType::I32: return "int32";
    case DType::I8: return "int8";
  }
  return "unknown";
}

const char* attn_mask_name(AttnMask m) {
  switch (m) {
    case AttnMask::Bidirectional: return "bidirectional";
    case AttnMask::Causal: return "causal";
    case AttnMask::AntiCausal: return "anticausal";
    case AttnMask::Cross: return "cross";
  }
  return "unknown";
}

namespace {

[[noreturn]] void bad(const char* op, const char* field, const std::string& expected, int64_t got) {
  throw_error(ErrorCode::InvalidArg, std::string(op) + ": expected " + expected + " for " + field + " but received " +
                                         std::to_string(got));
}
void range(const char* op, const char* field, int64_t v, int64_t lo, int64_t hi) {
  if (v < lo || v > hi) bad(op, field, "an integer in [" + std::to_string(lo) + ", " + std::to_string(hi) + "]", v);
}
void need(const char* op, const char* field, const void* p) {
  if (!p) throw_error(ErrorCode::InvalidArg, std::string(op) + ": " + field + " is required");
}
void float_dtype(const char* op, DType t) {
  if (!is_float(t)) throw_error(ErrorCode::Unsupported, std::string(op) + ": dtype " + dtype_name(t) + " is not supported");
}
constexpr int64_t kMaxDim = int64_t(1) << 31;  // any single dimension
constexpr int64_t kMaxElems = int64_t(1) << 40;

void elems(const char* op, const char* what, int64_t a, int64_t b) {
  if (a > 0 && b > kMaxElems / a) throw_error(ErrorCode::InvalidArg, std::string(op) + ": " + what + " is too large");
}

void validate_kv_layout(const char* op, const KvLayout& l) {
  range(op, "layout.block_size", l.block_size, 1, 1024);
  range(op, "layout.n_kv_heads", l.n_kv_heads, 1, 1024);
  range(op, "layout.head_dim", l.head_dim, 1, 256);
  if (l.head_stride < int64_t(l.block_size) * l.head_dim) bad(op, "layout.head_stride", ">= block_size*head_dim", l.head_stride);
  if (l.block_stride < l.head_stride * l.n_kv_heads) bad(op, "layout.block_stride", ">= head_stride*n_kv_heads", l.block_stride);
}

// The GEMM input prologue (ops.h GemmPrologue). ldx is the GEMM's; k its K. The field names are GemmArgs'.
void validate_prologue(const char* op, const GemmPrologue& x, int64_t m, int64_t k, int64_t ldx) {
  switch (x.kind) {
    case GemmXForm::None:
      if (x.gain) throw_error(ErrorCode::InvalidArg, std::string(op) + ": xform.gain is only used by xform.kind rms_norm");
      return;
    case GemmXForm::RmsNorm:
      need(op, "xform.gain", x.gain);
      if (!(x.eps > 0.0f) || !std::isfinite(x.eps)) {
        throw_error(ErrorCode::InvalidArg, std::string(op) + ": expected a finite number > 0 for xform.eps but received " +
                                               std::to_string(x.eps));
      }
      // The norm op's row limit: the fused kernels reproduce its fold (cuda/norm.cuh).
      range(op, "k (xform rms_norm: the norm's cols)", k, 1, Limits::maxDim);
      break;
    case GemmXForm::SwiGlu:
      if (x.gain) throw_error(ErrorCode::InvalidArg, std::string(op) + ": xform.gain is only used by xform.kind rms_norm");
      if (ldx < 2 * k) bad(op, "ldx", ">= 2*k (xform swiglu reads gate|up rows)", ldx);
      break;
    default:
      bad(op, "xform.kind", "none (0), rms_norm (1) or swiglu (2)", int64_t(x.kind));
  }
  // The same bound for every dtype, so an f16 case and its f32 reference take the same arguments.
  if (m > Limits::gemmDecodeMaxM) {
    bad(op, "m", "at most " + std::to_string(Limits::gemmDecodeMaxM) +
                     " rows with an xform (the decode kernels that fuse it; run the norm / act op first for more)", m);
  }
}

}  // namespace

void validate(const EmbeddingArgs& a) {
  const char* op = "embedding";
  float_dtype(op, a.dtype);
  need(op, "ids", a.ids); need(op, "table", a.table); need(op, "out", a.out);
  range(op, "n", a.n, 0, kMaxDim);
  range(op, "cols", a.cols, 1, kMaxDim);
  range(op, "vocab", a.vocab, 1, kMaxDim);
  if (a.pos_table) { need(op, "pos", a.pos); range(op, "n_pos", a.n_pos, 1, kMaxDim); }
  elems(op, "vocab*cols", a.vocab, a.cols);
  elems(op, "n*cols", a.n, a.cols);
}

void validate(const NormArgs& a) {
  const char* op = "norm";
  float_dtype(op, a.dtype);
  if (a.kind != NormKind::Layer && a.kind != NormKind::Rms) bad(op, "kind", "layer (0) or rms (1)", int64_t(a.kind));
  need(op, "x", a.x); need(op, "weight", a.weight); need(op, "y", a.y);
  range(op, "rows", a.rows, 0, kMaxDim);
  range(op, "cols", a.cols, 1, 16384);
  elems(op, "rows*cols", a.rows, a.cols);
  if (a.kind == NormKind::Rms && a.bias) throw_error(ErrorCode::InvalidArg, "norm: bias is only defined for LayerNorm");
  if (!(a.eps >= 0.0f)) throw_error(ErrorCode::InvalidArg, "norm: expected eps >= 0");
}

void validate(const SoftmaxArgs& a) {
  const char* op = "softmax";
  float_dtype(op, a.dtype);
  need(op, "x", a.x); need(op, "y", a.y);
  range(op, "rows", a.rows, 0, kMaxDim);
  range(op, "cols", a.cols, 1, 32768);
  elems(op, "rows*cols", a.rows, a.cols);
}

void validate(const GemmArgs& a) {
  const char* op = "gemm";
  float_dtype(op, a.dtype);
  need(op, "x", a.x); need(op, "w", a.w); need(op, "y", a.y);
  range(op, "m", a.m, 0, kMaxDim);
  range(op, "n", a.n, 1, kMaxDim);
  range(op, "k", a.k, 1, kMaxDim);
  if (a.ldx < a.k) bad(op, "ldx", ">= k", a.ldx);
  if (a.ldy < a.n) bad(op, "ldy", ">= n", a.ldy);
  elems(op, "n*k", a.n, a.k);
  elems(op, "m*ldx", a.m, a.ldx);
  elems(op, "m*ldy", a.m, a.ldy);
  validate_prologue(op, a.xform, a.m, a.k, a.ldx);
}

void validate(const GemmQ8Args& a) {
  const char* op = "gemm_q8";
  float_dtype(op, a.dtype);
  need(op, "x", a.x); need(op, "wq", a.wq); need(op, "wscale", a.wscale); need(op, "y", a.y);
  range(op, "m", a.m, 0, kMaxDim);
  range(op, "n", a.n, 1, kMaxDim);
  range(op, "k", a.k, 32, kMaxDim);
  if (a.k % 32 != 0) bad(op, "k", "a multiple of 32 (Q8_0 blocks)", a.k);
  if (a.ldx < a.k) bad(op, "ldx", ">= k", a.ldx);
  if (a.ldy < a.n) bad(op, "ldy", ">= n", a.ldy);
  if (reinterpret_cast<uintptr_t>(a.wq) % 16 != 0) throw_error(ErrorCode::InvalidArg, "gemm_q8: wq must be 16-byte aligned");
  if (reinterpret_cast<uintptr_t>(a.wscale) % 2 != 0) throw_error(ErrorCode::InvalidArg, "gemm_q8: wscale must be 2-byte aligned");
  elems(op, "n*k", a.n, a.k);
  elems(op, "m*ldx", a.m, a.ldx);
  elems(op, "m*ldy", a.m, a.ldy);
  validate_prologue(op, a.xform, a.m, a.k, a.ldx);
}

void validate(const ActArgs& a) {
  const char* op = "act";
  float_dtype(op, a.dtype);
  if (int32_t(a.kind) < 0 || int32_t(a.kind) > 5) bad(op, "kind", "0..5", int64_t(a.kind));
  need(op, "x", a.x); need(op, "y", a.y);
  range(op, "m", a.m, 0, kMaxDim);
  range(op, "n", a.n, 1, kMaxDim);
  if (a.ldx < a.n) bad(op, "ldx", ">= n", a.ldx);
  if (a.ldy < a.n) bad(op, "ldy", ">= n", a.ldy);
  if (act_gated(a.kind)) {
    need(op, "up", a.up);
    if (a.ldu < a.n) bad(op, "ldu", ">= n", a.ldu);
    if (a.bias) throw_error(ErrorCode::InvalidArg, "act: the gated kinds (swiglu, geglu_tanh) take no bias");
  }
  elems(op, "m*ldx", a.m, a.ldx);
}

void validate(const RopeArgs& a) {
  const char* op = "rope";
  float_dtype(op, a.dtype);
  if (a.layout != RopeLayout::Adjacent && a.layout != RopeLayout::HalfSplit) bad(op, "layout", "0 or 1", int64_t(a.layout));
  need(op, "q", a.q); need(op, "pos", a.pos); need(op, "inv_freq", a.inv_freq);
  range(op, "n_tokens", a.n_tokens, 0, kMaxDim);
  range(op, "n_heads", a.n_heads, 1, 4096);
  range(op, "head_dim", a.head_dim, 2, 1024);
  range(op, "rot_dim", a.rot_dim, 2, a.head_dim);
  if (a.rot_dim % 2) bad(op, "rot_dim", "an even number", a.rot_dim);
  if (a.ldq < int64_t(a.n_heads) * a.head_dim) bad(op, "ldq", ">= n_heads*head_dim", a.ldq);
  if (a.k) {
    range(op, "n_kv_heads", a.n_kv_heads, 1, 4096);
    if (a.ldk < int64_t(a.n_kv_heads) * a.head_dim) bad(op, "ldk", ">= n_kv_heads*head_dim", a.ldk);
  }
}

void validate(const KvAppendArgs& a) {
  const char* op = "kv_append";
  float_dtype(op, a.dtype);
  validate_kv_layout(op, a.layout);
  need(op, "k", a.k); need(op, "v", a.v); need(op, "slots", a.slots);
  need(op, "k_cache", a.k_cache); need(op, "v_cache", a.v_cache);
  range(op, "n_tokens", a.n_tokens, 0, kMaxDim);
  int64_t row = int64_t(a.layout.n_kv_heads) * a.layout.head_dim;
  if (a.ldk < row) bad(op, "ldk", ">= n_kv_heads*head_dim", a.ldk);
  if (a.ldv < row) bad(op, "ldv", ">= n_kv_heads*head_dim", a.ldv);
}

void validate(const RopeKvAppendArgs& a) {
  const char* op = "rope_kv_append";
  float_dtype(op, a.dtype);
  if (a.rope_layout != RopeLayout::Adjacent && a.rope_layout != RopeLayout::HalfSplit) {
    bad(op, "rope_layout", "0 or 1", int64_t(a.rope_layout));
  }
  validate_kv_layout(op, a.layout);
  need(op, "q", a.q); need(op, "k", a.k); need(op, "v", a.v); need(op, "pos", a.pos);
  need(op, "inv_freq", a.inv_freq); need(op, "slots", a.slots);
  need(op, "k_cache", a.k_cache); need(op, "v_cache", a.v_cache);
  range(op, "n_tokens", a.n_tokens, 0, kMaxDim);
  range(op, "n_heads", a.n_heads, 1, 4096);
  range(op, "rot_dim", a.rot_dim, 2, a.layout.head_dim);
  if (a.rot_dim % 2) bad(op, "rot_dim", "an even number", a.rot_dim);
  const int64_t row = int64_t(a.layout.n_kv_heads) * a.layout.head_dim;
  if (a.ldq < int64_t(a.n_heads) * a.layout.head_dim) bad(op, "ldq", ">= n_heads*head_dim", a.ldq);
  if (a.ldk < row) bad(op, "ldk", ">= n_kv_heads*head_dim", a.ldk);
  if (a.ldv < row) bad(op, "ldv", ">= n_kv_heads*head_dim", a.ldv);
}

void validate(const KvGatherArgs& a) {
  const char* op = "kv_gather";
  float_dtype(op, a.dtype);
  validate_kv_layout(op, a.layout);
  need(op, "k_cache", a.k_cache); need(op, "v_cache", a.v_cache); need(op, "block_table", a.block_table);
  need(op, "k_out", a.k_out); need(op, "v_out", a.v_out);
  range(op, "len", a.len, 0, kMaxDim);
}

void validate(const AttentionArgs& a) {
  const char* op = "attention";
  float_dtype(op, a.dtype);
  validate_kv_layout(op, a.layout);
  need(op, "q", a.q); need(op, "out", a.out); need(op, "k_cache", a.k_cache); need(op, "v_cache", a.v_cache);
  need(op, "block_table", a.block_table); need(op, "q_start", a.q_start); need(op, "ctx_len", a.ctx_len);
  range(op, "batch", a.batch, 1, 1 << 20);
  range(op, "n_heads", a.n_heads, 1, 4096);
  range(op, "layout.head_dim", a.layout.head_dim, 8, 256);
  if (a.n_heads % a.layout.n_kv_heads) bad(op, "n_heads", "a multiple of n_kv_heads", a.n_heads);
  range(op, "n_tokens", a.n_tokens, 1, kMaxDim);
  range(op, "max_blocks_per_seq", a.max_blocks_per_seq, 1, 1 << 24);
  range(op, "max_ctx_len", a.max_ctx_len, 1, int64_t(a.max_blocks_per_seq) * a.layout.block_size);
  range(op, "max_ctx_len", a.max_ctx_len, 1, 1 << 20);
  range(op, "mask", int64_t(a.mask), int64_t(AttnMask::Bidirectional), int64_t(AttnMask::Cross));
  // Cross: the keys are another sequence's, so a decoder prompt longer than the encoder output is fine.
  range(op, "max_q_len", a.max_q_len, 1, a.mask == AttnMask::Cross ? kMaxDim : a.max_ctx_len);
  if (a.mask == AttnMask::Cross && a.rel_bias.table) bad(op, "rel_bias.table", "nullptr with mask cross", 1);
  if (a.mask == AttnMask::AntiCausal && a.max_q_len == 1 && a.max_ctx_len != 1) {
    // A decode step over a cache: the query would see itself alone. Only 1-token contexts (all masks agree) pass.
    bad(op, "max_ctx_len", "1 with mask anticausal on the decode path (every n_q = 1)", a.max_ctx_len);
  }
  int64_t row = int64_t(a.n_heads) * a.layout.head_dim;
  if (a.ldq < row) bad(op, "ldq", ">= n_heads*head_dim", a.ldq);
  if (a.ldo < row) bad(op, "ldo", ">= n_heads*head_dim", a.ldo);
  if (!(a.scale > 0.0f)) throw_error(ErrorCode::InvalidArg, "attention: expected scale > 0");
  if (a.rel_bias.table) {
    const AttnRelBias& r = a.rel_bias;
    range(op, "rel_bias.num_buckets", r.num_buckets, r.bidirectional ? 4 : 2, Limits::maxRelPosBuckets);
    const int32_t exact = (r.bidirectional ? r.num_buckets / 2 : r.num_buckets) / 2;  // t5_relative_bucket's
    range(op, "rel_bias.max_distance", r.max_distance, exact + 1, Limits::maxSeqLen);
  }
  range(op, "sm_count", a.sm_count, 1, kMaxSmCount);
  size_t ws = attention_workspace_bytes(decode_shape(a));
  if (ws && (!a.workspace || a.workspace_bytes < ws)) {
    throw_error(ErrorCode::InvalidArg, "attention: workspace of " + std::to_string(ws) + " bytes is required");
  }
}

void validate(const SharedAttentionArgs& a) {
  const char* op = "shared_attention";
  float_dtype(op, a.dtype);
  validate_kv_layout(op, a.layout);
  need(op, "q", a.q); need(op, "out", a.out); need(op, "k_cache", a.k_cache); need(op, "v_cache", a.v_cache);
  need(op, "block_table", a.block_table); need(op, "ctx_len", a.ctx_len); need(op, "shared_len", a.shared_len);
  need(op, "group_start", a.group_start);
  range(op, "batch", a.batch, 1, 1 << 20);
  range(op, "n_heads", a.n_heads, 1, 4096);
  range(op, "layout.head_dim", a.layout.head_dim, 8, 256);
  if (a.n_heads % a.layout.n_kv_heads) bad(op, "n_heads", "a multiple of n_kv_heads", a.n_heads);
  range(op, "max_blocks_per_seq", a.max_blocks_per_seq, 1, 1 << 24);
  range(op, "max_ctx_len", a.max_ctx_len, 1, int64_t(a.max_blocks_per_seq) * a.layout.block_size);
  range(op, "max_ctx_len", a.max_ctx_len, 1, 1 << 20);
  range(op, "max_shared_len", a.max_shared_len, 0, a.max_ctx_len);
  range(op, "n_groups", a.n_groups, 0, a.batch);
  if (a.n_groups > 0) {
    need(op, "group_seqs", a.group_seqs);
    range(op, "max_group_size", a.max_group_size, 1, a.batch);
  }
  int64_t row = int64_t(a.n_heads) * a.layout.head_dim;
  if (a.ldq < row) bad(op, "ldq", ">= n_heads*head_dim", a.ldq);
  if (a.ldo < row) bad(op, "ldo", ">= n_heads*head_dim", a.ldo);
  if (!(a.scale > 0.0f)) throw_error(ErrorCode::InvalidArg, "shared_attention: expected scale > 0");
  range(op, "sm_count", a.sm_count, 1, kMaxSmCount);
  size_t ws = shared_attention_workspace_bytes(decode_shape(a));
  if (!a.workspace || a.workspace_bytes < ws) {
    throw_error(ErrorCode::InvalidArg, "shared_attention: workspace of " + std::to_string(ws) + " bytes is required");
  }
}

void validate(const SampleArgs& a) {
  const char* op = "sample";
  float_dtype(op, a.dtype);
  need(op, "logits", a.logits); need(op, "temperature", a.temperature); need(op, "top_k", a.top_k);
  need(op, "top_p", a.top_p); need(op, "repetition_penalty", a.repetition_penalty);
  need(op, "presence_penalty", a.presence_penalty); need(op, "frequency_penalty", a.frequency_penalty);
  need(op, "seed", a.seed); need(op, "step", a.step); need(op, "tokens_out", a.tokens_out);
  range(op, "batch", a.batch, 1, 1 << 20);
  range(op, "vocab", a.vocab, 1, 1 << 24);
  // Per-row values live in device memory: their callers range-check them (the runner, the op runner).
  if (a.history) {
    need(op, "history_len", a.history_len);
    need(op, "history_start", a.history_start);
    range(op, "history_stride", a.history_stride, 1, 1 << 24);
  }
  size_t ws = sample_workspace_bytes(a.batch, a.vocab);
  if (ws && (!a.workspace || a.workspace_bytes < ws)) {
    throw_error(ErrorCode::InvalidArg, "sample: workspace of " + std::to_string(ws) + " bytes is required");
  }
  if (reinterpret_cast<uintptr_t>(a.workspace) % 8 != 0) {
    throw_error(ErrorCode::InvalidArg, "sample: expected an 8-byte aligned workspace");
  }
}

void validate(const CastArgs& a) {
  const char* op = "cast";
  float_dtype(op, a.src_dtype);
  float_dtype(op, a.dst_dtype);
  need(op, "src", a.src); need(op, "dst", a.dst);
  range(op, "n", a.n, 0, kMaxElems);
}

}  // namespace eet

// runOpSync(name, device, params): runs one op on one backend from JS. Used by the op tests (in a child process,
// test/ops/worker.js) and by anything that needs a single op; prepare_op() is the same preparation for the per-op
// benchmark's timeOpSync (native/bench.cpp), which launches the op many times. Every tensor is checked to be on that device, of
// the op's dtype and large enough for the extents the dimensions imply; index tensors (ids, slots, block tables,
// lengths) are read back and range-checked, so no combination of arguments makes a kernel read out of bounds.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "../engine/limits.h"
#include "op_call.h"

namespace eet_node {
namespace ops {

eet::KvLayout read_layout(OpCall& c) {
  eet::KvLayout l{};
  l.block_size = int32_t(get_int(c.p, "blockSize", 1, 1024));
  l.n_kv_heads = int32_t(get_int(c.p, "nKvHeads", 1, 1024));
  l.head_dim = int32_t(get_int(c.p, "headDim", 1, 256));
  l.head_stride = get_int_or(c.p, "headStride", 1, int64_t(1) << 40, int64_t(l.block_size) * l.head_dim);
  l.block_stride = get_int_or(c.p, "blockStride", 1, int64_t(1) << 40, l.head_stride * l.n_kv_heads);
  return l;
}

int64_t cache_blocks(OpCall& c, const char* name, const eet::KvLayout& l) {
  int64_t n = c.numel(name);
  int64_t per_block_extent = l.head_stride * (l.n_kv_heads - 1) + int64_t(l.block_size) * l.head_dim;
  if (n < per_block_extent) return 0;
  return (n - per_block_extent) / l.block_stride + 1;
}

int32_t sm_count(OpCall& c) { return int32_t(get_int_or(c.p, "smCount", 1, eet::kMaxSmCount, c.backend->sm_count())); }

Launch run_embedding(OpCall& c) {
  eet::EmbeddingArgs a{};
  a.dtype = c.dtype();
  a.n = get_int(c.p, "n", 0, int64_t(1) << 31);
  a.cols = get_int(c.p, "cols", 1, int64_t(1) << 31);
  a.vocab = get_int(c.p, "vocab", 1, int64_t(1) << 31);
  a.ids = static_cast<const int32_t*>(c.tensor("ids", DType::I32, a.n));
  a.table = c.tensor("table", a.dtype, eet::checked_mul(a.vocab, a.cols, "table"));
  a.out = c.tensor("out", a.dtype, eet::checked_mul(a.n, a.cols, "out"));
  c.check_ints("ids", c.read_ints(a.ids, a.n), 0, a.vocab - 1);
  a.pos_table = c.tensor("posTable", a.dtype, 1, true);
  if (a.pos_table) {
    a.n_pos = get_int(c.p, "nPos", 1, int64_t(1) << 31);
    c.tensor("posTable", a.dtype, eet::checked_mul(a.n_pos, a.cols, "posTable"));
    a.pos = static_cast<const int32_t*>(c.tensor("pos", DType::I32, a.n));
    c.check_ints("pos", c.read_ints(a.pos, a.n), 0, a.n_pos - 1);
  }
  return [be = c.backend, a] { be->embedding(a); };
}

Launch run_norm(OpCall& c) {
  eet::NormArgs a{};
  std::string kind = get_string(c.p, "kind");
  if (kind != "layer" && kind != "rms") throw_arg(c.env, "kind", "'layer' or 'rms'", c.p.Get("kind"));
  a.kind = kind == "rms" ? eet::NormKind::Rms : eet::NormKind::Layer;
  a.dtype = c.dtype();
  a.rows = get_int(c.p, "rows", 0, int64_t(1) << 31);
  a.cols = get_int(c.p, "cols", 1, 16384);
  a.eps = float(get_number(c.p, "eps"));
  int64_t n = eet::checked_mul(a.rows, a.cols, "rows*cols");
  a.x = c.tensor("x", a.dtype, n);
  a.residual = c.tensor("residual", a.dtype, n, true);
  a.residual_out = c.tensor("residualOut", a.dtype, n, true);
  a.weight = c.tensor("weight", a.dtype, a.cols);
  a.bias = c.tensor("bias", a.dtype, a.cols, true);
  a.y = c.tensor("y", a.dtype, n);
  return [be = c.backend, a] { be->norm(a); };
}

Launch run_softmax(OpCall& c) {
  eet::SoftmaxArgs a{};
  a.dtype = c.dtype();
  a.rows = get_int(c.p, "rows", 0, int64_t(1) << 31);
  a.cols = get_int(c.p, "cols", 1, 32768);
  a.scale = float(get_number_or(c.p, "scale", 1.0));
  int64_t n = eet::checked_mul(a.rows, a.cols, "rows*cols");
  a.x = c.tensor("x", a.dtype, n);
  a.y = c.tensor("y", a.dtype, n);
  return [be = c.backend, a] { be->softmax(a); };
}

int64_t extent(int64_t rows, int64_t cols, int64_t ld) {
  return rows == 0 ? 0 : eet::checked_add(eet::checked_mul(rows - 1, ld, "extent"), cols, "extent");
}

// The GEMM input prologue (ops.h GemmPrologue): xform 'none' (default) | 'rms_norm' (gain (K), eps) | 'swiglu'
// (x holds gate|up: its rows are 2K wide, so ldx defaults to 2K). Returns the default ldx; the engine's validate()
// checks the rest (eps, m against the decode bound, ldx >= 2K).
int64_t read_prologue(OpCall& c, DType dtype, int64_t k, eet::GemmPrologue* x) {
  *x = eet::GemmPrologue{};
  const Napi::Value v = c.p.Get("xform");
  const std::string kind = v.IsUndefined() ? "none" : get_string(c.p, "xform");
  if (kind == "rms_norm") {
    x->kind = eet::GemmXForm::RmsNorm;
    x->gain = c.tensor("gain", dtype, k);
    x->eps = float(get_number(c.p, "eps"));
  } else if (kind == "swiglu") {
    x->kind = eet::GemmXForm::SwiGlu;
  } else if (kind != "none") {
    throw_arg(c.env, "xform", "'none', 'rms_norm' or 'swiglu'", v);
  }
  return x->kind == eet::GemmXForm::SwiGlu ? eet::checked_mul(2, k, "2*k") : k;
}

// Columns of x a row spans: 2K for SwiGlu (gate|up), else K.
int64_t x_cols(const eet::GemmPrologue& x, int64_t k) { return x.kind == eet::GemmXForm::SwiGlu ? 2 * k : k; }

Launch run_gemm(OpCall& c) {
  eet::GemmArgs a{};
  a.dtype = c.dtype();
  a.m = get_int(c.p, "m", 0, int64_t(1) << 31);
  a.n = get_int(c.p, "n", 1, int64_t(1) << 31);
  a.k = get_int(c.p, "k", 1, int64_t(1) << 31);
  const int64_t ldx0 = read_prologue(c, a.dtype, a.k, &a.xform);
  a.ldx = get_int_or(c.p, "ldx", 1, int64_t(1) << 40, ldx0);
  a.ldy = get_int_or(c.p, "ldy", 1, int64_t(1) << 40, a.n);
  a.x = c.tensor("x", a.dtype, extent(a.m, std::min(x_cols(a.xform, a.k), a.ldx), a.ldx));
  a.w = c.tensor("w", a.dtype, eet::checked_mul(a.n, a.k, "w"));
  a.bias = c.tensor("bias", a.dtype, a.n, true);
  a.residual = c.tensor("residual", a.dtype, extent(a.m, a.n, a.ldy), true);
  a.y = c.tensor("y", a.dtype, extent(a.m, a.n, a.ldy));
  // residualInPlace: y holds the residual on entry (residual aliases y, the in-place residual add models use)
  if (get_bool_or(c.p, "residualInPlace", false)) a.residual = a.y;
  return [be = c.backend, a] { be->gemm(a); };
}

// w: one int8 tensor in the GemmQ8Args layout, the (N, K) int8 q then the (N, K/32) float16 scales.
Launch run_gemm_q8(OpCall& c) {
  eet::GemmQ8Args a{};
  a.dtype = c.dtype();
  a.m = get_int(c.p, "m", 0, int64_t(1) << 31);
  a.n = get_int(c.p, "n", 1, int64_t(1) << 31);
  a.k = get_int(c.p, "k", 32, int64_t(1) << 31);
  if (a.k % 32 != 0) throw_arg(c.env, "k", "a multiple of 32", c.p.Get("k"));
  const int64_t ldx0 = read_prologue(c, a.dtype, a.k, &a.xform);
  a.ldx = get_int_or(c.p, "ldx", 1, int64_t(1) << 40, ldx0);
  a.ldy = get_int_or(c.p, "ldy", 1, int64_t(1) << 40, a.n);
  a.x = c.tensor("x", a.dtype, extent(a.m, std::min(x_cols(a.xform, a.k), a.ldx), a.ldx));
  const int64_t qbytes = eet::checked_mul(a.n, a.k, "w");
  auto* w = static_cast<int8_t*>(c.tensor("w", DType::I8, eet::checked_add(qbytes, qbytes / 16, "w")));
  a.wq = w;
  a.wscale = reinterpret_cast<const uint16_t*>(w + qbytes);
  a.bias = c.tensor("bias", a.dtype, a.n, true);
  a.residual = c.tensor("residual", a.dtype, extent(a.m, a.n, a.ldy), true);
  a.y = c.tensor("y", a.dtype, extent(a.m, a.n, a.ldy));
  // residualInPlace: y holds the residual on entry (residual aliases y)
  if (get_bool_or(c.p, "residualInPlace", false)) a.residual = a.y;
  return [be = c.backend, a] { be->gemm_q8(a); };
}

Launch run_act(OpCall& c) {
  eet::ActArgs a{};
  std::string kind = get_string(c.p, "kind");
  if (kind == "gelu_tanh") a.kind = eet::ActKind::GeluTanh;
  else if (kind == "gelu_erf") a.kind = eet::ActKind::GeluErf;
  else if (kind == "silu") a.kind = eet::ActKind::Silu;
  else if (kind == "swiglu") a.kind = eet::ActKind::SwiGlu;
  else if (kind == "relu") a.kind = eet::ActKind::Relu;
  else if (kind == "geglu_tanh") a.kind = eet::ActKind::GegluTanh;
  else throw_arg(c.env, "kind", "'gelu_tanh', 'gelu_erf', 'silu', 'relu', 'swiglu' or 'geglu_tanh'", c.p.Get("kind"));
  a.dtype = c.dtype();
  a.m = get_int(c.p, "m", 0, int64_t(1) << 31);
  a.n = get_int(c.p, "n", 1, int64_t(1) << 31);
  a.ldx = get_int_or(c.p, "ldx", 1, int64_t(1) << 40, a.n);
  a.ldu = get_int_or(c.p, "ldu", 1, int64_t(1) << 40, a.n);
  a.ldy = get_int_or(c.p, "ldy", 1, int64_t(1) << 40, a.n);
  a.x = c.tensor("x", a.dtype, extent(a.m, a.n, a.ldx));
  a.bias = c.tensor("bias", a.dtype, a.n, true);
  a.up = c.tensor("up", a.dtype, extent(a.m, a.n, a.ldu), true);
  a.y = c.tensor("y", a.dtype, extent(a.m, a.n, a.ldy));
  return [be = c.backend, a] { be->act(a); };
}

Launch run_rope(OpCall& c) {
  eet::RopeArgs a{};
  std::string layout = get_string(c.p, "layout");
  if (layout != "adjacent" && layout != "half") throw_arg(c.env, "layout", "'adjacent' or 'half'", c.p.Get("layout"));
  a.layout = layout == "half" ? eet::RopeLayout::HalfSplit : eet::RopeLayout::Adjacent;
  a.dtype = c.dtype();
  a.n_tokens = get_int(c.p, "nTokens", 0, int64_t(1) << 31);
  a.n_heads = int32_t(get_int(c.p, "nHeads", 1, 4096));
  a.n_kv_heads = int32_t(get_int_or(c.p, "nKvHeads", 1, 4096, a.n_heads));
  a.head_dim = int32_t(get_int(c.p, "headDim", 2, 1024));
  a.rot_dim = int32_t(get_int_or(c.p, "rotDim", 2, a.head_dim, a.head_dim));
  a.ldq = get_int_or(c.p, "ldq", 1, int64_t(1) << 40, int64_t(a.n_heads) * a.head_dim);
  a.ldk = get_int_or(c.p, "ldk", 1, int64_t(1) << 40, int64_t(a.n_kv_heads) * a.head_dim);
  a.q = c.tensor("q", a.dtype, extent(a.n_tokens, int64_t(a.n_heads) * a.head_dim, a.ldq));
  a.k = c.tensor("k", a.dtype, extent(a.n_tokens, int64_t(a.n_kv_heads) * a.head_dim, a.ldk), true);
  a.pos = static_cast<const int32_t*>(c.tensor("pos", DType::I32, a.n_tokens));
  a.inv_freq = static_cast<const float*>(c.tensor("invFreq", DType::F32, a.rot_dim / 2));
  c.check_ints("pos", c.read_ints(a.pos, a.n_tokens), 0, (1 << 30));
  return [be = c.backend, a] { be->rope(a); };
}

Launch run_sample(OpCall& c) {
  eet::SampleArgs a{};
  a.dtype = c.dtype();
  a.batch = get_int(c.p, "batch", 1, 1 << 20);
  a.vocab = get_int(c.p, "vocab", 1, 1 << 24);
  a.logits = c.tensor("logits", a.dtype, eet::checked_mul(a.batch, a.vocab, "logits"));
  a.temperature = c.temp_upload(c.numbers<float>("temperature", a.batch));
  a.top_k = c.temp_upload(c.numbers<int32_t>("topK", a.batch));
  a.top_p = c.temp_upload(c.numbers<float>("topP", a.batch));
  a.repetition_penalty = c.temp_upload(c.numbers<float>("repetitionPenalty", a.batch));
  a.presence_penalty = c.temp_upload(c.penalties("presencePenalty", a.batch));
  a.frequency_penalty = c.temp_upload(c.penalties("frequencyPenalty", a.batch));
  a.seed = c.temp_upload(c.numbers<uint64_t>("seed", a.batch));
  a.step = c.temp_upload(c.numbers<uint64_t>("step", a.batch));
  a.history = static_cast<const int32_t*>(c.tensor("history", DType::I32, 1, true));
  if (a.history) {
    a.history_stride = get_int(c.p, "historyStride", 1, 1 << 24);
    c.tensor("history", DType::I32, eet::checked_mul(a.batch, a.history_stride, "history"));
    auto len = c.numbers<int32_t>("historyLen", a.batch);
    c.check_ints("historyLen", len, 0, a.history_stride);
    c.check_ints("history", c.read_ints(a.history, a.batch * a.history_stride), 0, a.vocab - 1);
    // historyStart: where each row's generated tokens begin (default 0: the whole history is generated)
    std::vector<int32_t> start(static_cast<size_t>(a.batch), 0);
    if (!c.p.Get("historyStart").IsUndefined()) start = c.numbers<int32_t>("historyStart", a.batch);
    for (size_t b = 0; b < start.size(); ++b) {
      if (start[b] < 0 || start[b] > len[b]) {
        throw make_error(c.env, eet::ErrorCode::InvalidArg,
                         "Expected historyStart[" + std::to_string(b) + "] in [0, " + std::to_string(len[b]) +
                             "] (historyLen) but received " + std::to_string(start[b]));
      }
    }
    a.history_len = c.temp_upload(len);
    a.history_start = c.temp_upload(start);
  }
  a.tokens_out = static_cast<int32_t*>(c.tensor("tokensOut", DType::I32, a.batch));
  a.logprob_out = static_cast<float*>(c.tensor("logprobOut", DType::F32, a.batch, true));
  a.workspace_bytes = eet::sample_workspace_bytes(a.batch, a.vocab);
  a.workspace = a.workspace_bytes ? c.temp(a.workspace_bytes) : nullptr;
  return [be = c.backend, a] { be->sample(a); };
}

Launch run_cast(OpCall& c) {
  eet::CastArgs a{};
  a.src_dtype = DType(get_int(c.p, "srcDtype", 0, 2));
  a.dst_dtype = DType(get_int(c.p, "dstDtype", 0, 2));
  a.n = get_int(c.p, "n", 0, int64_t(1) << 40);
  a.src = c.tensor("src", a.src_dtype, a.n);
  a.dst = c.tensor("dst", a.dst_dtype, a.n);
  return [be = c.backend, a] { be->cast(a); };
}

// The op's preparation by name: checks every argument (reading index tensors back) and returns its launch.
Launch prepare(OpCall& c, const std::string& name) {
  if (name == "embedding") return run_embedding(c);
  if (name == "norm") return run_norm(c);
  if (name == "softmax") return run_softmax(c);
  if (name == "gemm") return run_gemm(c);
  if (name == "gemm_q8") return run_gemm_q8(c);
  if (name == "act") return run_act(c);
  if (name == "rope") return run_rope(c);
  if (name == "kv_append") return run_kv_append(c);
  if (name == "rope_kv_append") return run_rope_kv_append(c);
  if (name == "kv_gather") return run_kv_gather(c);
  if (name == "attention") return run_attention(c);
  if (name == "shared_attention") return run_shared_attention(c);
  if (name == "sample") return run_sample(c);
  if (name == "cast") return run_cast(c);
  throw_arg(c.env, "op", "a known op name", Napi::String::New(c.env, name));
}

Napi::Value RunOpSync(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, [&]() -> Napi::Value {
    if (!info[0].IsString()) throw_arg(env, "op", "string", info[0]);
    if (!info[1].IsString()) throw_arg(env, "device", "string", info[1]);
    if (!info[2].IsObject()) throw_arg(env, "params", "object", info[2]);
    auto backend = eet::backend_for(info[1].As<Napi::String>().Utf8Value());
    std::lock_guard<eet::FairMutex> lock(backend->mutex());
    PreparedOp op = prepare_op(env, info[0].As<Napi::String>().Utf8Value(), backend, info[2].As<Napi::Object>());
    op.launch();
    backend->synchronize();
    return env.Undefined();
  });
}

}  // namespace ops

PreparedOp prepare_op(Napi::Env env, const std::string& name, const std::shared_ptr<eet::Backend>& backend,
                      const Napi::Object& params) {
  ops::OpCall c{env, params, backend, {}};
  ops::Launch launch = ops::prepare(c, name);
  return {std::move(launch), std::move(c.keep)};
}

// attentionDecodeSplit({ batch, nHeads, nKvHeads, maxCtxLen, smCount }) -> { chunkLen, nChunks, headsPerBlock }: the
// decode split (engine/ops.h) the attention ops use for that shape, so tests can name and check the splits they run.
Napi::Value AttentionDecodeSplit(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsObject()) throw_arg(env, "shape", "object", info[0]);
  const Napi::Object o = info[0].As<Napi::Object>();
  eet::AttnDecodeShape s{};
  s.batch = int32_t(get_int(o, "batch", 1, 1 << 20));
  s.n_kv_heads = int32_t(get_int(o, "nKvHeads", 1, 1024));
  s.n_heads = int32_t(get_int(o, "nHeads", 1, 4096));
  if (s.n_heads % s.n_kv_heads) throw make_error(env, eet::ErrorCode::InvalidArg, "nHeads must be a multiple of nKvHeads");
  s.max_ctx_len = int32_t(get_int(o, "maxCtxLen", 1, 1 << 20));
  s.sm_count = int32_t(get_int(o, "smCount", 1, eet::kMaxSmCount));
  s.head_dim = 8;  // the split does not depend on it
  const eet::AttentionDecodeSplit split = eet::attention_decode_split(s);
  Napi::Object out = Napi::Object::New(env);
  out.Set("chunkLen", split.chunk_len);
  out.Set("nChunks", split.n_chunks);
  out.Set("headsPerBlock", split.heads_per_block);
  return out;
}

void init_ops(Napi::Env env, Napi::Object exports) {
  exports.Set("runOpSync", Napi::Function::New(env, ops::RunOpSync));
  exports.Set("attentionDecodeSplit", Napi::Function::New(env, AttentionDecodeSplit));
}

}  // namespace eet_node

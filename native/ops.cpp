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
#include "addon.h"

namespace eet_node {
namespace {

using eet::DType;
using Launch = std::function<void()>;

struct OpCall {
  Napi::Env env;
  Napi::Object p;
  std::shared_ptr<eet::Backend> backend;
  std::vector<std::shared_ptr<Buffer>> keep;  // inputs and temporaries alive for the call

  TensorView view(const char* name, bool optional) {
    TensorView v{};
    Napi::Value val = p.Get(name);
    if (optional && (val.IsUndefined() || val.IsNull())) return v;
    if (!unwrap_tensor(val, &v)) throw_arg(env, name, "AddonTensor", val);
    if (v.buffer->backend != backend) {
      throw make_error(env, eet::ErrorCode::InvalidArg,
                       std::string(name) + " is on " + v.buffer->backend->name() + ", the op runs on " + backend->name());
    }
    keep.push_back(v.buffer);
    return v;
  }
  // A tensor of dtype holding at least min_elems elements (nullptr when optional and absent).
  void* tensor(const char* name, DType dtype, int64_t min_elems, bool optional = false) {
    TensorView v = view(name, optional);
    if (!v.buffer) return nullptr;
    if (v.dtype != dtype) {
      throw make_error(env, eet::ErrorCode::InvalidArg,
                       std::string("Expected dtype ") + eet::dtype_name(dtype) + " for " + name + " but received " + eet::dtype_name(v.dtype));
    }
    if (v.numel < min_elems) {
      throw make_error(env, eet::ErrorCode::InvalidArg,
                       std::string("Expected at least ") + std::to_string(min_elems) + " elements for " + name +
                           " but received " + std::to_string(v.numel));
    }
    return v.buffer->ptr;
  }
  int64_t numel(const char* name) { return view(name, false).numel; }
  std::vector<int32_t> read_ints(const void* dev, int64_t n) {
    std::vector<int32_t> h(static_cast<size_t>(std::max<int64_t>(n, 0)));
    backend->synchronize();
    if (n > 0) backend->download(h.data(), dev, size_t(n) * 4);
    return h;
  }
  void check_ints(const char* name, const std::vector<int32_t>& v, int64_t lo, int64_t hi) {
    for (size_t i = 0; i < v.size(); ++i) {
      if (v[i] < lo || v[i] > hi) {
        throw make_error(env, eet::ErrorCode::InvalidArg,
                         std::string("Expected ") + name + "[" + std::to_string(i) + "] in [" + std::to_string(lo) + ", " +
                             std::to_string(hi) + "] but received " + std::to_string(v[i]));
      }
    }
  }
  template <typename T>
  T* temp_upload(const std::vector<T>& host) {
    auto b = std::make_shared<Buffer>(backend, host.size() * sizeof(T));
    if (!host.empty()) backend->upload(b->ptr, host.data(), host.size() * sizeof(T));
    keep.push_back(b);
    return static_cast<T*>(b->ptr);
  }
  void* temp(size_t bytes) {
    auto b = std::make_shared<Buffer>(backend, bytes);
    keep.push_back(b);
    return b->ptr;
  }
  DType dtype() {
    int64_t d = get_int(p, "dtype", 0, 2);
    return DType(d);
  }
  // Presence / frequency penalties: absent = 0 (off) for every row, else n numbers in [-maxPenalty, maxPenalty].
  std::vector<float> penalties(const char* name, int64_t n) {
    if (p.Get(name).IsUndefined()) return std::vector<float>(static_cast<size_t>(n), 0.0f);
    std::vector<float> v = numbers<float>(name, n);
    for (size_t i = 0; i < v.size(); ++i) {
      if (!(std::fabs(v[i]) <= float(eet::Limits::maxPenalty))) {
        throw make_error(env, eet::ErrorCode::InvalidArg,
                         std::string("Expected ") + name + "[" + std::to_string(i) + "] in [-" +
                             std::to_string(eet::Limits::maxPenalty) + ", " + std::to_string(eet::Limits::maxPenalty) +
                             "] but received " + std::to_string(v[i]));
      }
    }
    return v;
  }
  // Reads a JS array of numbers (length n) as T.
  template <typename T>
  std::vector<T> numbers(const char* name, int64_t n) {
    Napi::Value v = p.Get(name);
    if (!v.IsArray() || v.As<Napi::Array>().Length() != uint64_t(n)) {
      throw_arg(env, name, "array of " + std::to_string(n) + " numbers", v);
    }
    Napi::Array a = v.As<Napi::Array>();
    std::vector<T> out(static_cast<size_t>(n));
    for (uint32_t i = 0; i < uint32_t(n); ++i) {
      Napi::Value e = a.Get(i);
      if (e.IsBigInt()) {
        bool lossless = true;
        out[i] = T(e.As<Napi::BigInt>().Uint64Value(&lossless));
      } else if (e.IsNumber()) {
        out[i] = T(e.As<Napi::Number>().DoubleValue());
      } else {
        throw_arg(env, std::string(name) + "[" + std::to_string(i) + "]", "number", e);
      }
    }
    return out;
  }
};

eet::KvLayout read_layout(OpCall& c) {
  eet::KvLayout l{};
  l.block_size = int32_t(get_int(c.p, "blockSize", 1, 1024));
  l.n_kv_heads = int32_t(get_int(c.p, "nKvHeads", 1, 1024));
  l.head_dim = int32_t(get_int(c.p, "headDim", 1, 256));
  l.head_stride = get_int_or(c.p, "headStride", 1, int64_t(1) << 40, int64_t(l.block_size) * l.head_dim);
  l.block_stride = get_int_or(c.p, "blockStride", 1, int64_t(1) << 40, l.head_stride * l.n_kv_heads);
  return l;
}

// Number of whole blocks a cache tensor holds.
int64_t cache_blocks(OpCall& c, const char* name, const eet::KvLayout& l) {
  int64_t n = c.numel(name);
  int64_t per_block_extent = l.head_stride * (l.n_kv_heads - 1) + int64_t(l.block_size) * l.head_dim;
  if (n < per_block_extent) return 0;
  return (n - per_block_extent) / l.block_stride + 1;
}

// The attention ops' smCount: the backend's SM count unless given (the op tests force decode splits with it; any
// value gives the same results).
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

// Extent of an (rows, cols) matrix with row stride ld.
int64_t extent(int64_t rows, int64_t cols, int64_t ld) {
  return rows == 0 ? 0 : eet::checked_add(eet::checked_mul(rows - 1, ld, "extent"), cols, "extent");
}

Launch run_gemm(OpCall& c) {
  eet::GemmArgs a{};
  a.dtype = c.dtype();
  a.m = get_int(c.p, "m", 0, int64_t(1) << 31);
  a.n = get_int(c.p, "n", 1, int64_t(1) << 31);
  a.k = get_int(c.p, "k", 1, int64_t(1) << 31);
  a.ldx = get_int_or(c.p, "ldx", 1, int64_t(1) << 40, a.k);
  a.ldy = get_int_or(c.p, "ldy", 1, int64_t(1) << 40, a.n);
  a.x = c.tensor("x", a.dtype, extent(a.m, a.k, a.ldx));
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
  a.ldx = get_int_or(c.p, "ldx", 1, int64_t(1) << 40, a.k);
  a.ldy = get_int_or(c.p, "ldy", 1, int64_t(1) << 40, a.n);
  a.x = c.tensor("x", a.dtype, extent(a.m, a.k, a.ldx));
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

Launch run_kv_append(OpCall& c) {
  eet::KvAppendArgs a{};
  a.dtype = c.dtype();
  a.layout = read_layout(c);
  a.n_tokens = get_int(c.p, "nTokens", 0, int64_t(1) << 31);
  int64_t row = int64_t(a.layout.n_kv_heads) * a.layout.head_dim;
  a.ldk = get_int_or(c.p, "ldk", 1, int64_t(1) << 40, row);
  a.ldv = get_int_or(c.p, "ldv", 1, int64_t(1) << 40, row);
  a.k = c.tensor("k", a.dtype, extent(a.n_tokens, row, a.ldk));
  a.v = c.tensor("v", a.dtype, extent(a.n_tokens, row, a.ldv));
  a.slots = static_cast<const int32_t*>(c.tensor("slots", DType::I32, a.n_tokens));
  a.k_cache = c.tensor("kCache", a.dtype, 1);
  a.v_cache = c.tensor("vCache", a.dtype, 1);
  int64_t blocks = std::min(cache_blocks(c, "kCache", a.layout), cache_blocks(c, "vCache", a.layout));
  c.check_ints("slots", c.read_ints(a.slots, a.n_tokens), 0, blocks * a.layout.block_size - 1);
  return [be = c.backend, a] { be->kv_append(a); };
}

// rope's q and rotation parameters with kv_append's k, v, slots and cache (head_dim and nKvHeads from the layout).
Launch run_rope_kv_append(OpCall& c) {
  eet::RopeKvAppendArgs a{};
  std::string layout = get_string(c.p, "ropeLayout");
  if (layout != "adjacent" && layout != "half") throw_arg(c.env, "ropeLayout", "'adjacent' or 'half'", c.p.Get("ropeLayout"));
  a.rope_layout = layout == "half" ? eet::RopeLayout::HalfSplit : eet::RopeLayout::Adjacent;
  a.dtype = c.dtype();
  a.layout = read_layout(c);
  a.n_tokens = get_int(c.p, "nTokens", 0, int64_t(1) << 31);
  a.n_heads = int32_t(get_int(c.p, "nHeads", 1, 4096));
  a.rot_dim = int32_t(get_int_or(c.p, "rotDim", 2, std::max(a.layout.head_dim, 2), a.layout.head_dim));
  const int64_t row = int64_t(a.layout.n_kv_heads) * a.layout.head_dim;
  a.ldq = get_int_or(c.p, "ldq", 1, int64_t(1) << 40, int64_t(a.n_heads) * a.layout.head_dim);
  a.ldk = get_int_or(c.p, "ldk", 1, int64_t(1) << 40, row);
  a.ldv = get_int_or(c.p, "ldv", 1, int64_t(1) << 40, row);
  a.q = c.tensor("q", a.dtype, extent(a.n_tokens, int64_t(a.n_heads) * a.layout.head_dim, a.ldq));
  a.k = c.tensor("k", a.dtype, extent(a.n_tokens, row, a.ldk));
  a.v = c.tensor("v", a.dtype, extent(a.n_tokens, row, a.ldv));
  a.pos = static_cast<const int32_t*>(c.tensor("pos", DType::I32, a.n_tokens));
  a.inv_freq = static_cast<const float*>(c.tensor("invFreq", DType::F32, a.rot_dim / 2));
  a.slots = static_cast<const int32_t*>(c.tensor("slots", DType::I32, a.n_tokens));
  a.k_cache = c.tensor("kCache", a.dtype, 1);
  a.v_cache = c.tensor("vCache", a.dtype, 1);
  c.check_ints("pos", c.read_ints(a.pos, a.n_tokens), 0, (1 << 30));
  int64_t blocks = std::min(cache_blocks(c, "kCache", a.layout), cache_blocks(c, "vCache", a.layout));
  c.check_ints("slots", c.read_ints(a.slots, a.n_tokens), 0, blocks * a.layout.block_size - 1);
  return [be = c.backend, a] { be->rope_kv_append(a); };
}

Launch run_kv_gather(OpCall& c) {
  eet::KvGatherArgs a{};
  a.dtype = c.dtype();
  a.layout = read_layout(c);
  a.len = get_int(c.p, "len", 0, int64_t(1) << 31);
  int64_t row = int64_t(a.layout.n_kv_heads) * a.layout.head_dim;
  int64_t nblk = (a.len + a.layout.block_size - 1) / a.layout.block_size;
  a.k_cache = c.tensor("kCache", a.dtype, 1);
  a.v_cache = c.tensor("vCache", a.dtype, 1);
  a.block_table = static_cast<const int32_t*>(c.tensor("blockTable", DType::I32, nblk));
  a.k_out = c.tensor("kOut", a.dtype, eet::checked_mul(a.len, row, "kOut"));
  a.v_out = c.tensor("vOut", a.dtype, eet::checked_mul(a.len, row, "vOut"));
  int64_t blocks = std::min(cache_blocks(c, "kCache", a.layout), cache_blocks(c, "vCache", a.layout));
  c.check_ints("blockTable", c.read_ints(a.block_table, nblk), 0, blocks - 1);
  return [be = c.backend, a] { be->kv_gather(a); };
}

Launch run_attention(OpCall& c) {
  eet::AttentionArgs a{};
  a.dtype = c.dtype();
  a.layout = read_layout(c);
  a.batch = int32_t(get_int(c.p, "batch", 1, 1 << 20));
  a.n_heads = int32_t(get_int(c.p, "nHeads", 1, 4096));
  a.n_tokens = get_int(c.p, "nTokens", 1, int64_t(1) << 31);
  a.max_blocks_per_seq = int32_t(get_int(c.p, "maxBlocksPerSeq", 1, 1 << 24));
  a.scale = float(get_number(c.p, "scale"));
  a.mask = to_attn_mask(c.env, "mask", c.p.Get("mask"));
  int64_t row = int64_t(a.n_heads) * a.layout.head_dim;
  a.ldq = get_int_or(c.p, "ldq", 1, int64_t(1) << 40, row);
  a.ldo = get_int_or(c.p, "ldo", 1, int64_t(1) << 40, row);
  a.q = c.tensor("q", a.dtype, extent(a.n_tokens, row, a.ldq));
  a.out = c.tensor("out", a.dtype, extent(a.n_tokens, row, a.ldo));
  a.k_cache = c.tensor("kCache", a.dtype, 1);
  a.v_cache = c.tensor("vCache", a.dtype, 1);
  a.block_table = static_cast<const int32_t*>(
      c.tensor("blockTable", DType::I32, eet::checked_mul(a.batch, a.max_blocks_per_seq, "blockTable")));
  a.q_start = static_cast<const int32_t*>(c.tensor("qStart", DType::I32, int64_t(a.batch) + 1));
  a.ctx_len = static_cast<const int32_t*>(c.tensor("ctxLen", DType::I32, a.batch));
  // Lengths: 0 = q_start[0] <= ... <= q_start[batch] = n_tokens, 1 <= n_q <= ctx_len <= capacity (cross: the keys
  // are another sequence's, 1 <= ctx_len, any n_q >= 1).
  auto qs = c.read_ints(a.q_start, int64_t(a.batch) + 1);
  auto cl = c.read_ints(a.ctx_len, a.batch);
  int64_t cap = int64_t(a.max_blocks_per_seq) * a.layout.block_size;
  if (qs[0] != 0 || qs[size_t(a.batch)] != a.n_tokens) {
    throw make_error(c.env, eet::ErrorCode::InvalidArg, "qStart must start at 0 and end at nTokens");
  }
  int32_t max_q = 0, max_ctx = 0;
  for (int32_t b = 0; b < a.batch; ++b) {
    int64_t nq = int64_t(qs[size_t(b) + 1]) - qs[size_t(b)];
    const bool cross = a.mask == eet::AttnMask::Cross;
    if (nq < 1 || (!cross && nq > cl[size_t(b)]) || cl[size_t(b)] < 1 || cl[size_t(b)] > cap) {
      throw make_error(c.env, eet::ErrorCode::InvalidArg,
                       "sequence " + std::to_string(b) + ": expected 1 <= queries (" + std::to_string(nq) + ")" +
                           (cross ? ", 1" : "") + " <= ctxLen (" + std::to_string(cl[size_t(b)]) + ") <= " + std::to_string(cap));
    }
    max_q = std::max<int32_t>(max_q, int32_t(nq));
    max_ctx = std::max(max_ctx, cl[size_t(b)]);
  }
  a.max_q_len = max_q;
  a.max_ctx_len = max_ctx;
  int64_t blocks = std::min(cache_blocks(c, "kCache", a.layout), cache_blocks(c, "vCache", a.layout));
  auto bt = c.read_ints(a.block_table, int64_t(a.batch) * a.max_blocks_per_seq);
  for (int32_t b = 0; b < a.batch; ++b) {  // only the blocks a sequence uses must be valid
    int64_t used = (cl[size_t(b)] + a.layout.block_size - 1) / a.layout.block_size;
    std::vector<int32_t> mine(bt.begin() + int64_t(b) * a.max_blocks_per_seq, bt.begin() + int64_t(b) * a.max_blocks_per_seq + used);
    c.check_ints("blockTable", mine, 0, blocks - 1);
  }
  // T5's relative position bias: relBiasTable (nHeads, relBuckets) float32, with relBuckets, relMaxDistance and
  // relBidirectional; validate() checks the numbers.
  if (!c.p.Get("relBiasTable").IsUndefined()) {
    a.rel_bias.num_buckets = int32_t(get_int(c.p, "relBuckets", 1, eet::Limits::maxRelPosBuckets));
    a.rel_bias.max_distance = int32_t(get_int(c.p, "relMaxDistance", 1, eet::Limits::maxSeqLen));
    a.rel_bias.bidirectional = get_bool_or(c.p, "relBidirectional", false);
    a.rel_bias.table = static_cast<const float*>(
        c.tensor("relBiasTable", DType::F32, int64_t(a.n_heads) * a.rel_bias.num_buckets));
  }
  a.sm_count = sm_count(c);
  a.workspace_bytes = eet::attention_workspace_bytes(eet::decode_shape(a));
  a.workspace = a.workspace_bytes ? c.temp(a.workspace_bytes) : nullptr;
  return [be = c.backend, a] { be->attention(a); };
}

Launch run_shared_attention(OpCall& c) {
  eet::SharedAttentionArgs a{};
  a.dtype = c.dtype();
  a.layout = read_layout(c);
  a.batch = int32_t(get_int(c.p, "batch", 1, 1 << 20));
  a.n_heads = int32_t(get_int(c.p, "nHeads", 1, 4096));
  a.n_groups = int32_t(get_int(c.p, "nGroups", 0, a.batch));
  a.max_blocks_per_seq = int32_t(get_int(c.p, "maxBlocksPerSeq", 1, 1 << 24));
  a.scale = float(get_number(c.p, "scale"));
  int64_t row = int64_t(a.n_heads) * a.layout.head_dim;
  a.ldq = get_int_or(c.p, "ldq", 1, int64_t(1) << 40, row);
  a.ldo = get_int_or(c.p, "ldo", 1, int64_t(1) << 40, row);
  a.q = c.tensor("q", a.dtype, extent(a.batch, row, a.ldq));
  a.out = c.tensor("out", a.dtype, extent(a.batch, row, a.ldo));
  a.k_cache = c.tensor("kCache", a.dtype, 1);
  a.v_cache = c.tensor("vCache", a.dtype, 1);
  a.block_table = static_cast<const int32_t*>(
      c.tensor("blockTable", DType::I32, eet::checked_mul(a.batch, a.max_blocks_per_seq, "blockTable")));
  a.ctx_len = static_cast<const int32_t*>(c.tensor("ctxLen", DType::I32, a.batch));
  a.shared_len = static_cast<const int32_t*>(c.tensor("sharedLen", DType::I32, a.batch));
  a.group_start = static_cast<const int32_t*>(c.tensor("groupStart", DType::I32, int64_t(a.n_groups) + 1));
  // The contract of ops.h, from the index tensors: 0 = group_start[0] <= ... <= batch, members distinct and in
  // range, shared_len within each context, equal in a group, and 0 outside every group.
  auto gs = c.read_ints(a.group_start, int64_t(a.n_groups) + 1);
  if (gs[0] != 0) throw make_error(c.env, eet::ErrorCode::InvalidArg, "groupStart must start at 0");
  for (int32_t g = 0; g < a.n_groups; ++g) {
    if (gs[size_t(g) + 1] < gs[size_t(g)]) throw make_error(c.env, eet::ErrorCode::InvalidArg, "groupStart must not decrease");
    a.max_group_size = std::max(a.max_group_size, gs[size_t(g) + 1] - gs[size_t(g)]);
  }
  c.check_ints("groupStart", gs, 0, a.batch);
  std::vector<int32_t> members;
  if (a.n_groups > 0 && gs[size_t(a.n_groups)] > 0) {
    a.group_seqs = static_cast<const int32_t*>(c.tensor("groupSeqs", DType::I32, gs[size_t(a.n_groups)]));
    members = c.read_ints(a.group_seqs, gs[size_t(a.n_groups)]);
    c.check_ints("groupSeqs", members, 0, a.batch - 1);
  } else if (a.n_groups > 0) {
    a.group_seqs = a.group_start;  // every group empty: never read
  }
  auto cl = c.read_ints(a.ctx_len, a.batch);
  auto sl = c.read_ints(a.shared_len, a.batch);
  int64_t cap = int64_t(a.max_blocks_per_seq) * a.layout.block_size;
  std::vector<int32_t> leader(static_cast<size_t>(a.batch), -1);
  for (int32_t g = 0; g < a.n_groups; ++g) {
    for (int32_t i = gs[size_t(g)]; i < gs[size_t(g) + 1]; ++i) {
      const int32_t b = members[size_t(i)], first = members[size_t(gs[size_t(g)])];
      if (leader[size_t(b)] >= 0) {
        throw make_error(c.env, eet::ErrorCode::InvalidArg, "sequence " + std::to_string(b) + " is in two groups");
      }
      leader[size_t(b)] = first;
      if (sl[size_t(b)] != sl[size_t(first)]) {
        throw make_error(c.env, eet::ErrorCode::InvalidArg, "group " + std::to_string(g) + ": sharedLen differs between its sequences");
      }
    }
  }
  for (int32_t b = 0; b < a.batch; ++b) {
    if (cl[size_t(b)] < 1 || cl[size_t(b)] > cap || sl[size_t(b)] < 0 || sl[size_t(b)] > cl[size_t(b)] ||
        (sl[size_t(b)] > 0 && leader[size_t(b)] < 0)) {
      throw make_error(c.env, eet::ErrorCode::InvalidArg,
                       "sequence " + std::to_string(b) + ": expected 0 <= sharedLen (" + std::to_string(sl[size_t(b)]) +
                           ") <= ctxLen (" + std::to_string(cl[size_t(b)]) + "), 1 <= ctxLen <= " + std::to_string(cap) +
                           ", and a group when sharedLen > 0");
    }
    a.max_ctx_len = std::max(a.max_ctx_len, cl[size_t(b)]);
    a.max_shared_len = std::max(a.max_shared_len, sl[size_t(b)]);
  }
  int64_t blocks = std::min(cache_blocks(c, "kCache", a.layout), cache_blocks(c, "vCache", a.layout));
  auto bt = c.read_ints(a.block_table, int64_t(a.batch) * a.max_blocks_per_seq);
  for (int32_t b = 0; b < a.batch; ++b) {  // the blocks of b's own keys; a leader's cover its group's shared keys
    int64_t first = sl[size_t(b)] / a.layout.block_size, used = (cl[size_t(b)] + a.layout.block_size - 1) / a.layout.block_size;
    std::vector<int32_t> mine(bt.begin() + int64_t(b) * a.max_blocks_per_seq + first, bt.begin() + int64_t(b) * a.max_blocks_per_seq + used);
    c.check_ints("blockTable", mine, 0, blocks - 1);
  }
  for (int32_t b = 0; b < a.batch; ++b) {
    if (leader[size_t(b)] != b) continue;
    int64_t used = (sl[size_t(b)] + a.layout.block_size - 1) / a.layout.block_size;
    std::vector<int32_t> shared(bt.begin() + int64_t(b) * a.max_blocks_per_seq, bt.begin() + int64_t(b) * a.max_blocks_per_seq + used);
    c.check_ints("blockTable", shared, 0, blocks - 1);
  }
  a.sm_count = sm_count(c);
  a.workspace_bytes = eet::shared_attention_workspace_bytes(eet::decode_shape(a));
  a.workspace = c.temp(a.workspace_bytes);
  return [be = c.backend, a] { be->shared_attention(a); };
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

}  // namespace

PreparedOp prepare_op(Napi::Env env, const std::string& name, const std::shared_ptr<eet::Backend>& backend,
                      const Napi::Object& params) {
  OpCall c{env, params, backend, {}};
  Launch launch = prepare(c, name);
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
  exports.Set("runOpSync", Napi::Function::New(env, RunOpSync));
  exports.Set("attentionDecodeSplit", Napi::Function::New(env, AttentionDecodeSplit));
}

}  // namespace eet_node

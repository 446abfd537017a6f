// The op runner's shared part (native/ops.cpp, native/ops_kv.cpp): one op call's parameters, tensors and checks.
// Every tensor is checked to be on the call's device, of the op's dtype and large enough for the extents its
// dimensions imply; index tensors are read back and range-checked (ops.cpp's header says why).
#pragma once
#include <cmath>
#include <functional>
#include <string>
#include <vector>

#include "addon.h"

namespace eet_node {
namespace ops {

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

// The KV layout parameters (blockSize, nKvHeads, headDim, headStride, blockStride).
eet::KvLayout read_layout(OpCall& c);
// Number of whole blocks a cache tensor holds.
int64_t cache_blocks(OpCall& c, const char* name, const eet::KvLayout& l);
// Extent of an (rows, cols) matrix with row stride ld (checked arithmetic).
int64_t extent(int64_t rows, int64_t cols, int64_t ld);
// The attention ops' smCount: the backend's SM count unless given (the op tests force decode splits with it; any
// value gives the same results).
int32_t sm_count(OpCall& c);

// The paged-cache ops (native/ops_kv.cpp).
Launch run_kv_append(OpCall& c);
Launch run_rope_kv_append(OpCall& c);
Launch run_kv_gather(OpCall& c);
Launch run_attention(OpCall& c);
Launch run_shared_attention(OpCall& c);

}  // namespace ops
}  // namespace eet_node

// Fast cpu rotary position embedding (ops.h RopeArgs), in place on q and k, and the fused RoPE + KV append
// (RopeKvAppendArgs: k rotated into its cache slot, v copied). The same arithmetic as the reference
// (engine/cpu/rope.cpp: the fp32 angle pos * inv_freq, cos / sin and the rotation in double, one rounding), so
// the results are bit for bit the reference's; what it saves is the per-element dtype dispatch and the per-token
// allocations: the element type is a template parameter and the cos / sin of a token are computed once into
// per-thread scratch for all of its heads.
#include <cmath>
#include <cstring>
#include <vector>

#include "../cpu/parallel.h"
#include "../half.h"
#include "fast.h"

namespace eet::fast {

namespace {

struct F32 {
  using T = float;
  static double get(T v) { return double(v); }
  static T put(double v) { return float(v); }
};
struct F16 {
  using T = uint16_t;
  static double get(T v) { return double(f16_to_f32(v)); }
  static T put(double v) { return f32_to_f16(float(v)); }
};
struct BF16 {
  using T = uint16_t;
  static double get(T v) { return double(bf16_to_f32(v)); }
  static T put(double v) { return f32_to_bf16(float(v)); }
};

// Rotates the first rot_dim elements of the head src into dst (dst may be src); the rest copied when they differ.
template <class E>
void rotate(RopeLayout layout, int64_t rot_dim, int64_t head_dim, const typename E::T* src, typename E::T* dst,
            const double* cs, const double* sn) {
  const int64_t half = rot_dim / 2;
  const bool adjacent = layout == RopeLayout::Adjacent;
  for (int64_t i = 0; i < half; ++i) {
    const int64_t i0 = adjacent ? 2 * i : i, i1 = adjacent ? 2 * i + 1 : i + half;
    const double x0 = E::get(src[i0]), x1 = E::get(src[i1]);
    dst[i0] = E::put(x0 * cs[i] - x1 * sn[i]);
    dst[i1] = E::put(x0 * sn[i] + x1 * cs[i]);
  }
  if (dst != src) std::memcpy(dst + rot_dim, src + rot_dim, size_t(head_dim - rot_dim) * sizeof(typename E::T));
}

// cos / sin of token t's angles into per-thread scratch: cs[0..half), sn = cs + half.
double* trig_of(int32_t pos, const float* inv_freq, int64_t half) {
  thread_local std::vector<double> trig;
  if (int64_t(trig.size()) < 2 * half) trig.resize(size_t(2 * half));
  double* cs = trig.data();
  for (int64_t i = 0; i < half; ++i) {
    const double angle = double(float(pos) * inv_freq[i]);
    cs[i] = std::cos(angle);
    cs[half + i] = std::sin(angle);
  }
  return cs;
}

template <class E>
void run(const RopeArgs& a) {
  using T = typename E::T;
  const int64_t half = a.rot_dim / 2;
  cpu::parallel_for(a.n_tokens, 4, [&](int64_t t) {
    const double* cs = trig_of(a.pos[t], a.inv_freq, half);
    const double* sn = cs + half;
    T* q = static_cast<T*>(a.q) + t * a.ldq;
    for (int64_t h = 0; h < a.n_heads; ++h) {
      rotate<E>(a.layout, a.rot_dim, a.head_dim, q + h * a.head_dim, q + h * a.head_dim, cs, sn);
    }
    if (a.k) {
      T* k = static_cast<T*>(a.k) + t * a.ldk;
      for (int64_t h = 0; h < a.n_kv_heads; ++h) {
        rotate<E>(a.layout, a.rot_dim, a.head_dim, k + h * a.head_dim, k + h * a.head_dim, cs, sn);
      }
    }
  });
}

// The fused op: q as above; k rotated straight into its cache slot, v copied there.
template <class E>
void run_kv(const RopeKvAppendArgs& a) {
  using T = typename E::T;
  const KvLayout& l = a.layout;
  const int64_t half = a.rot_dim / 2;
  cpu::parallel_for(a.n_tokens, 4, [&](int64_t t) {
    const double* cs = trig_of(a.pos[t], a.inv_freq, half);
    const double* sn = cs + half;
    T* q = static_cast<T*>(a.q) + t * a.ldq;
    for (int64_t h = 0; h < a.n_heads; ++h) {
      rotate<E>(a.rope_layout, a.rot_dim, l.head_dim, q + h * l.head_dim, q + h * l.head_dim, cs, sn);
    }
    const int64_t slot = a.slots[t];
    const int64_t row = (slot / l.block_size) * l.block_stride + (slot % l.block_size) * l.head_dim;
    const T* k = static_cast<const T*>(a.k) + t * a.ldk;
    const T* v = static_cast<const T*>(a.v) + t * a.ldv;
    for (int64_t h = 0; h < l.n_kv_heads; ++h) {
      const int64_t dst = row + h * l.head_stride;
      rotate<E>(a.rope_layout, a.rot_dim, l.head_dim, k + h * l.head_dim, static_cast<T*>(a.k_cache) + dst, cs, sn);
      std::memcpy(static_cast<T*>(a.v_cache) + dst, v + h * l.head_dim, size_t(l.head_dim) * sizeof(T));
    }
  });
}

}  // namespace

void op_rope(const RopeArgs& a) {
  switch (a.dtype) {
    case DType::F16: run<F16>(a); break;
    case DType::BF16: run<BF16>(a); break;
    default: run<F32>(a);
  }
}

void op_rope_kv_append(const RopeKvAppendArgs& a) {
  switch (a.dtype) {
    case DType::F16: run_kv<F16>(a); break;
    case DType::BF16: run_kv<BF16>(a); break;
    default: run_kv<F32>(a);
  }
}

}  // namespace eet::fast

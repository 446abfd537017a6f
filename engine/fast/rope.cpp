// Fast cpu rotary position embedding (ops.h RopeArgs), in place on q and k. The same arithmetic as the reference
// (engine/cpu/rope.cpp: the fp32 angle pos * inv_freq, cos / sin and the rotation in double, one rounding), so
// the results are bit for bit the reference's; what it saves is the per-element dtype dispatch and the per-token
// allocations: the element type is a template parameter and the cos / sin of a token are computed once into
// per-thread scratch for all of its heads.
#include <cmath>
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

template <class E>
void rotate(const RopeArgs& a, typename E::T* x, const double* cs, const double* sn) {
  const int64_t half = a.rot_dim / 2;
  const bool adjacent = a.layout == RopeLayout::Adjacent;
  for (int64_t i = 0; i < half; ++i) {
    const int64_t i0 = adjacent ? 2 * i : i, i1 = adjacent ? 2 * i + 1 : i + half;
    const double x0 = E::get(x[i0]), x1 = E::get(x[i1]);
    x[i0] = E::put(x0 * cs[i] - x1 * sn[i]);
    x[i1] = E::put(x0 * sn[i] + x1 * cs[i]);
  }
}

template <class E>
void run(const RopeArgs& a) {
  using T = typename E::T;
  const int64_t half = a.rot_dim / 2;
  cpu::parallel_for(a.n_tokens, 4, [&](int64_t t) {
    thread_local std::vector<double> trig;
    if (int64_t(trig.size()) < 2 * half) trig.resize(size_t(2 * half));
    double* cs = trig.data();
    double* sn = cs + half;
    for (int64_t i = 0; i < half; ++i) {
      const double angle = double(float(a.pos[t]) * a.inv_freq[i]);
      cs[i] = std::cos(angle);
      sn[i] = std::sin(angle);
    }
    T* q = static_cast<T*>(a.q) + t * a.ldq;
    for (int64_t h = 0; h < a.n_heads; ++h) rotate<E>(a, q + h * a.head_dim, cs, sn);
    if (a.k) {
      T* k = static_cast<T*>(a.k) + t * a.ldk;
      for (int64_t h = 0; h < a.n_kv_heads; ++h) rotate<E>(a, k + h * a.head_dim, cs, sn);
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

}  // namespace eet::fast

// The decode GEMM kernels' input prologue (ops.h GemmPrologue): x_eff, the GEMM's input, computed as x is loaded,
// so the norm or activation op that would have written it (and the GEMM's read of it back) is not run.
//   RmsNorm  x_eff[m, k] = T(x[m, k] * rstd_m * gain[k]), rstd_m from the whole row m (rms_rstd_warp, cuda/norm.cuh:
//            the norm op's fold and order of additions), computed by every block for its rows before its loop: one
//            more read of the K-element rows, from L2, beside the block's share of W
//   SwiGlu   x_eff[m, k] = T(silu(x[m, k]) * x[m, K + k]) (act_silu, cuda/act.cuh)
// T(): rounded to the GEMM's dtype and back, as the norm / act op stores its output and the GEMM loads it. The
// expressions are the unfused kernels' own (same operations in the same order, fp32), so a fused GEMM sees the
// very values the unfused GEMM would read: on the emu, fused and unfused outputs are equal bit for bit whenever the
// two calls take the same kernel path (test/ops/gemm_fused.test.ts). nvcc chooses FMA contraction per call site:
// the candidates (the sum of squares d * d + ss, rstd's ss * inv_cols + eps, silu's 1 + expf(-h)) appear in the
// same form in both kernels, so they are expected to contract alike; no GPU has checked it yet.
// Where an input is loaded:
//   gemv_kernel, gemv_q8_kernel (M = 1, f32 M <= 16;  each x vector in the inner loop (xform_load); the x loads
//     f32 17..64 rows: once per 16 rows)              are L1/L2 hits beside the streamed W
//   skinny kernels (f16 / bf16, M = 2..64)            the block transforms its rows once per loop iteration into
//                                                     shared memory (xform_stage), which its 8 warps read instead
//                                                     of global x: the work is not repeated per warp
#pragma once
#include <type_traits>

#include "act.cuh"
#include "gemm_common.cuh"
#include "mma.cuh"
#include "norm.cuh"

namespace EET_KNS {

using XForm = eet::GemmXForm;

// Runs BODY with XF bound to the prologue kind as a compile-time constant (a template argument of the kernels:
// the plain GEMM keeps its code, the fused ones get theirs).
#define EET_DISPATCH_XFORM(kind, XF, ...)                                                                \
  do {                                                                                                   \
    switch (kind) {                                                                                      \
      case ::eet::GemmXForm::RmsNorm: { constexpr ::eet::GemmXForm XF = ::eet::GemmXForm::RmsNorm; __VA_ARGS__; break; } \
      case ::eet::GemmXForm::SwiGlu: { constexpr ::eet::GemmXForm XF = ::eet::GemmXForm::SwiGlu; __VA_ARGS__; break; }   \
      default: { constexpr ::eet::GemmXForm XF = ::eet::GemmXForm::None; __VA_ARGS__; break; }                            \
    }                                                                                                    \
  } while (0)

// src[0 .. N) as fp32: 16-byte loads when vec (src 16-byte aligned) and N elements fill whole vectors, element
// loads otherwise.
template <typename T, int N>
__device__ __forceinline__ void load_f32(const T* src, bool vec, float (&v)[N]) {
  constexpr int VEC = 16 / sizeof(T);
  if constexpr (N % VEC == 0) {
    if (vec) {
#pragma unroll
      for (int c = 0; c < N / VEC; ++c) {
        float e[VEC];
        load16_f32(src + c * VEC, e);
#pragma unroll
        for (int i = 0; i < VEC; ++i) v[c * VEC + i] = e[i];
      }
      return;
    }
  }
#pragma unroll
  for (int i = 0; i < N; ++i) v[i] = to_f32(src[i]);
}

// The kernel's rows' rstd (RmsNorm; nothing for the other kinds): rstd[m] for m < rows, warp w taking rows
// w, w + 8, ... Every thread of the block calls it; it ends with a barrier (RmsNorm only).
template <XForm XF, typename P>
__device__ __forceinline__ void xform_rows_rstd(const P& p, int rows, float* rstd) {
  if constexpr (XF == XForm::RmsNorm) {
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    for (int m = warp; m < rows; m += kGemmThreads / 32) {
      const float r = rms_rstd_warp(p.x + m * p.ldx, int(p.k), p.eps);
      if (lane == 0) rstd[m] = r;
    }
    __syncthreads();
  }
}

// x_eff[m, k0 .. k0 + N) as fp32, each element rounded through T as the unfused op stores it; all in range.
// vec: 16-byte loads (the launcher checked x's rows, and the gain, for 16-byte alignment at k0; the up half at
// x + K is then aligned too, K being a multiple of the vector). rstd: row m's (RmsNorm), unused otherwise.
template <XForm XF, int N, typename P>
__device__ __forceinline__ void xform_load(const P& p, int64_t m, int64_t k0, float rstd, bool vec, float (&v)[N]) {
  using T = std::remove_const_t<std::remove_pointer_t<decltype(p.x)>>;
  const T* row = p.x + m * p.ldx;
  load_f32<T, N>(row + k0, vec, v);
  if constexpr (XF == XForm::RmsNorm) {
    float g[N];
    load_f32<T, N>(p.gain + k0, vec, g);
#pragma unroll
    for (int i = 0; i < N; ++i) v[i] = to_f32(from_f32<T>(v[i] * rstd * g[i]));  // norm_kernel's (h - 0) * rstd * w
  } else if constexpr (XF == XForm::SwiGlu) {
    float u[N];
    load_f32<T, N>(row + p.k + k0, vec, u);
#pragma unroll
    for (int i = 0; i < N; ++i) v[i] = to_f32(from_f32<T>(act_silu(v[i]) * u[i]));  // act_kernel's swiglu
  }
}

// ---- the skinny kernels' staged input ---------------------------------------------------------------------------

// One loop iteration's x_eff in shared memory: rows 0 .. 8 * NT - 1 (the mma's 8-row groups), STEP elements of K
// each, as 16-bit T in packed pairs. Rows are STEP + 32 elements apart: a row is then 64 bytes past a multiple of
// 128, so the 8 lanes of a quarter-warp (rows g, g + 1, four 16-byte pieces each) hit 32 distinct banks.
template <int NT, int STEP>
struct XStage {
  static constexpr int ROWS = 8 * NT;
  static constexpr int ROW_VECS = (STEP + 32) / 8;  // 16-byte vectors per row
  static constexpr int VECS = STEP / 8;             // of them holding data
  static_assert(STEP % 128 == 0, "rows 64 bytes past a multiple of 128");
  uint4 v[ROWS * ROW_VECS];
  float rstd[ROWS];
};

// The plain kernels' (no prologue) stand-in: no shared memory.
struct XStageNone {};

// Fills the stage with x_eff for K [kb, kb + STEP): rows m < M rounded up to 8 (the groups the mma reads), zeros
// for m >= M and k >= kend (the slice's end, where W is zero too). vec: x (and gain) rows 16-byte aligned, K a
// multiple of 8 for SwiGlu's up half. Every thread of the block calls it, between barriers.
template <XForm XF, int NT, int STEP, typename P>
__device__ __forceinline__ void xform_stage(const P& p, XStage<NT, STEP>& s, int64_t kb, int64_t kend, bool vec) {
  using T = std::remove_const_t<std::remove_pointer_t<decltype(p.x)>>;
  using S = XStage<NT, STEP>;
  const int rows8 = int(ceil_div(p.m, 8) * 8);
  for (int u = threadIdx.x; u < rows8 * S::VECS; u += kGemmThreads) {
    const int m = u / S::VECS, c = u % S::VECS;
    const int64_t k = kb + 8 * c;
    float v[8];
    if (m < p.m && k + 8 <= kend) {
      xform_load<XF, 8>(p, m, k, s.rstd[m], vec, v);
    } else {
#pragma unroll
      for (int e = 0; e < 8; ++e) {
        float one[1] = {0.0f};
        if (m < p.m && k + e < kend) xform_load<XF, 1>(p, m, k + e, s.rstd[m], false, one);
        v[e] = one[0];
      }
    }
    uint32_t w[4];
#pragma unroll
    for (int i = 0; i < 4; ++i) w[i] = half_bits(from_f32<T>(v[2 * i])) | (half_bits(from_f32<T>(v[2 * i + 1])) << 16);
    s.v[m * S::ROW_VECS + c] = make_uint4(w[0], w[1], w[2], w[3]);
  }
}

// 8 consecutive x_eff of row m (< 8 * NT) at K offset kl (a multiple of 8) into the iteration, as the mma's packed
// pairs (what skinny_load8 gives for a plain x).
template <int NT, int STEP>
__device__ __forceinline__ uint4 xstage_load8(const XStage<NT, STEP>& s, int64_t m, int64_t kl) {
  return s.v[m * XStage<NT, STEP>::ROW_VECS + kl / 8];
}

}  // namespace EET_KNS

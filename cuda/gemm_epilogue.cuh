// The end of every GEMM kernel (cuda/gemm.cu, cuda/gemm_q8.cu), written once:
//   gemm_store:  y[row, col] = v + bias[col] + residual[row, col], rounded once to y's type (residual may alias y)
//   gemv_finish: the GEMV's split-K epilogue. A block is WARPS warps = (WARPS / ksplit) column groups x ksplit K
//                slices; group g of block b owns columns [(b * groups + g) * COLS, + COLS). Each warp reduces its
//                (MAXM, COLS) sums across lanes; the slices of a group are then added in slice order, so results
//                do not depend on scheduling (no atomics), and stored.
// P is the kernel's params struct: it has bias, residual, y (pointers to the output type), ldy and n.
#pragma once
#include <type_traits>

#include "reduce.cuh"

namespace EET_KNS {

template <typename P>
__device__ __forceinline__ void gemm_store(const P& p, int64_t row, int64_t col, float v) {
  using T = std::remove_pointer_t<decltype(p.y)>;
  if (p.bias) v += to_f32(p.bias[col]);
  const int64_t o = row * p.ldy + col;
  if (p.residual) v += to_f32(p.residual[o]);
  p.y[o] = from_f32<T>(v);
}

template <int MAXM, int COLS, int WARPS, typename P>
__device__ __forceinline__ void gemv_finish(const P& p, const float (&acc)[MAXM][COLS],
                                            float (&partial)[WARPS][MAXM * COLS], int rows, int ksplit) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const int groups = WARPS / ksplit;
#pragma unroll
  for (int m = 0; m < MAXM; ++m) {
    if (m < rows) {  // rows is the same for the whole block: the full-mask reduction is safe
#pragma unroll
      for (int c = 0; c < COLS; ++c) {
        const float s = warp_reduce_sum(acc[m][c]);
        if (lane == 0) partial[warp][m * COLS + c] = s;
      }
    }
  }
  __syncthreads();
  for (int i = threadIdx.x; i < groups * MAXM * COLS; i += WARPS * 32) {
    const int g = i / (MAXM * COLS), r = i % (MAXM * COLS);
    const int m = r / COLS;
    const int64_t col = (int64_t(blockIdx.x) * groups + g) * COLS + r % COLS;
    if (m >= rows || col >= p.n) continue;
    float s = 0.0f;
    for (int j = 0; j < ksplit; ++j) s += partial[g * ksplit + j][r];
    gemm_store(p, m, col, s);
  }
}

}  // namespace EET_KNS

// The end of every GEMM kernel (cuda/gemm*.cu, cuda/gemv*.cu), written once:
//   gemm_store: y[row, col] = v + bias[col] + residual[row, col], rounded once to y's type (residual may alias y)
// (The GEMV's reduction over K slices, gemv_finish, is in cuda/splitk.cuh.)
// P is the kernel's params struct: it has bias, residual, y (pointers to the output type), ldy and n.
#pragma once
#include <type_traits>

#include "common.cuh"

namespace EET_KNS {

template <typename P>
__device__ __forceinline__ void gemm_store(const P& p, int64_t row, int64_t col, float v) {
  using T = std::remove_pointer_t<decltype(p.y)>;
  if (p.bias) v += to_f32(p.bias[col]);
  const int64_t o = row * p.ldy + col;
  if (p.residual) v += to_f32(p.residual[o]);
  p.y[o] = from_f32<T>(v);
}

}  // namespace EET_KNS

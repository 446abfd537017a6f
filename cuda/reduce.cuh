// Warp and block reductions shared by the kernels (norms, softmax, attention, sampling). Written here rather than
// taken from CUB: CUB does not compile for the emu backend (emu-notes.md).
//   warp_reduce_*(v):            butterfly over the full warp; every lane gets the result
//   block_reduce_*<BLOCK>(v, s): every thread of a BLOCK-thread block gets the result; s is __shared__ scratch of
//                                at least 32 floats; the function ends with a barrier so s can be reused at once.
// BLOCK must be a multiple of 32 (whole warps), at most 1024.
#pragma once
#include "common.cuh"

namespace EET_KNS {

constexpr unsigned kFullMask = 0xffffffffu;

__device__ __forceinline__ float warp_reduce_sum(float v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(kFullMask, v, o);
  return v;
}

__device__ __forceinline__ float warp_reduce_max(float v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(kFullMask, v, o));
  return v;
}

template <int BLOCK>
__device__ __forceinline__ float block_reduce_sum(float v, float* scratch) {
  static_assert(BLOCK % 32 == 0 && BLOCK <= 1024, "BLOCK must be whole warps");
  v = warp_reduce_sum(v);
  if constexpr (BLOCK == 32) {
    return v;
  } else {
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    if (lane == 0) scratch[warp] = v;
    __syncthreads();
    v = lane < BLOCK / 32 ? scratch[lane] : 0.0f;
    v = warp_reduce_sum(v);
    __syncthreads();  // scratch may be reused by the caller right away
    return v;
  }
}

template <int BLOCK>
__device__ __forceinline__ float block_reduce_max(float v, float* scratch) {
  static_assert(BLOCK % 32 == 0 && BLOCK <= 1024, "BLOCK must be whole warps");
  v = warp_reduce_max(v);
  if constexpr (BLOCK == 32) {
    return v;
  } else {
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    if (lane == 0) scratch[warp] = v;
    __syncthreads();
    v = lane < BLOCK / 32 ? scratch[lane] : -INFINITY;
    v = warp_reduce_max(v);
    __syncthreads();
    return v;
  }
}

}  // namespace EET_KNS

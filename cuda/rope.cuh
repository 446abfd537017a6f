// RoPE's rotation of one work unit (cuda/rope.cu, cuda/rope_kv_append.cu): W elements on each side of a pair, read
// from src and written to dst (the same pointer for in-place rotation), with the token's cos / sin in shared memory.
//   Adjacent:  pairs (2i, 2i+1) inside the unit's W elements, i = u * W/2 + j
//   HalfSplit: pairs (i, i + half) across two W-element packs, i = u * W + j
// x0' = x0 c - x1 s, x1' = x0 s + x1 c in fp32, rounded once to T.
#pragma once
#include "pack.cuh"

namespace EET_KNS {

template <typename T, bool kAdjacent, int W>
__device__ __forceinline__ void rope_rotate_unit(const T* src, T* dst, int u, int half, const float* cos_s,
                                                 const float* sin_s) {
  if constexpr (kAdjacent) {
    Pack<T, W> x = load_pack<T, W>(src + u * W);
#pragma unroll
    for (int j = 0; j < W / 2; ++j) {
      const int i = u * (W / 2) + j;
      const float x0 = to_f32(x.e[2 * j]), x1 = to_f32(x.e[2 * j + 1]);
      x.e[2 * j] = from_f32<T>(x0 * cos_s[i] - x1 * sin_s[i]);
      x.e[2 * j + 1] = from_f32<T>(x0 * sin_s[i] + x1 * cos_s[i]);
    }
    store_pack<T, W>(dst + u * W, x);
  } else {
    Pack<T, W> a = load_pack<T, W>(src + u * W);
    Pack<T, W> b = load_pack<T, W>(src + half + u * W);
#pragma unroll
    for (int j = 0; j < W; ++j) {
      const int i = u * W + j;
      const float x0 = to_f32(a.e[j]), x1 = to_f32(b.e[j]);
      a.e[j] = from_f32<T>(x0 * cos_s[i] - x1 * sin_s[i]);
      b.e[j] = from_f32<T>(x0 * sin_s[i] + x1 * cos_s[i]);
    }
    store_pack<T, W>(dst + u * W, a);
    store_pack<T, W>(dst + half + u * W, b);
  }
}

}  // namespace EET_KNS

// Folded rows: the register layout shared by the row-wise ops (norm.cu, softmax.cu).
// A row of n elements is folded onto THREADS threads (a warp or a whole block, EET's thread-block folding); each
// thread holds ITEMS elements in fp32 registers as ITEMS / VEC chunks of VEC = 16 / sizeof(T) elements. Chunk k of
// thread t covers columns (t + k * THREADS) * VEC .. + VEC, so a warp reads 32 consecutive 16-byte chunks at a time
// (coalesced). Column offsets within a row are int (rows are at most 32768 long; the row base is int64_t). A chunk is moved with one 16-byte access when the caller says the row allows it (`vec`: every
// pointer 16-byte aligned and n a multiple of VEC), else element by element; columns past n are never touched.
#pragma once
#include <algorithm>

#include "reduce.cuh"

namespace EET_KNS {

template <typename T>
struct Fold16 {
  static constexpr int VEC = int(16 / sizeof(T));
  struct alignas(16) Chunk {
    T v[VEC];
  };
};

// True when p may be accessed 16 bytes at a time (nullptr counts as aligned: absent tensors do not constrain).

// out[j] = p[start + j] as fp32 for start + j < n, else `fill`.
template <typename T>
__device__ __forceinline__ void load_chunk(const T* p, int start, int n, bool vec, float fill, float* out) {
  constexpr int VEC = Fold16<T>::VEC;
  if (vec && start + VEC <= n) {
    const typename Fold16<T>::Chunk c = *reinterpret_cast<const typename Fold16<T>::Chunk*>(p + start);
#pragma unroll
    for (int j = 0; j < VEC; ++j) out[j] = to_f32(c.v[j]);
  } else {
#pragma unroll
    for (int j = 0; j < VEC; ++j) out[j] = start + j < n ? to_f32(p[start + j]) : fill;
  }
}

// p[start + j] = in[j] rounded to T, for start + j < n.
template <typename T>
__device__ __forceinline__ void store_chunk(T* p, int start, int n, bool vec, const float* in) {
  constexpr int VEC = Fold16<T>::VEC;
  if (vec && start + VEC <= n) {
    typename Fold16<T>::Chunk c;
#pragma unroll
    for (int j = 0; j < VEC; ++j) c.v[j] = from_f32<T>(in[j]);
    *reinterpret_cast<typename Fold16<T>::Chunk*>(p + start) = c;
  } else {
#pragma unroll
    for (int j = 0; j < VEC; ++j)
      if (start + j < n) p[start + j] = from_f32<T>(in[j]);
  }
}

// Sum / max over the THREADS threads that share a row: a warp (no barrier) or the whole block.
template <int THREADS>
__device__ __forceinline__ float row_reduce_sum(float v, float* scratch) {
  if constexpr (THREADS == 32) {
    (void)scratch;
    return warp_reduce_sum(v);
  } else {
    return block_reduce_sum<THREADS>(v, scratch);
  }
}

template <int THREADS>
__device__ __forceinline__ float row_reduce_max(float v, float* scratch) {
  if constexpr (THREADS == 32) {
    (void)scratch;
    return warp_reduce_max(v);
  } else {
    return block_reduce_max<THREADS>(v, scratch);
  }
}

// The norm op's fold (cuda/norm.cu): each thread holds kNormItems elements; a row of `cols` is folded onto the
// smallest of 32, 128, 256, 512, 1024 threads with threads * kNormItems >= cols. Written once because the GEMM
// prologue (cuda/gemm_xform.cuh) reproduces the norm's arithmetic, which depends on it.
constexpr int kNormItems = 16;
__host__ __device__ __forceinline__ int norm_fold_threads(int64_t cols) {
  return cols <= 32 * kNormItems ? 32 : cols <= 128 * kNormItems ? 128 : cols <= 256 * kNormItems ? 256
         : cols <= 512 * kNormItems ? 512 : 1024;
}

// RMSNorm's rstd = 1 / sqrt(mean(h^2) + eps) of one row of `cols` elements (no residual), computed by one warp
// bit for bit as norm_kernel<T, norm_fold_threads(cols), kNormItems> computes it: the same squares added in the
// same order. Fold thread t (= 32 * w + lane of fold warp w) adds its chunks' squares in chunk order (chunk c
// covering columns (t + c * threads) * VEC ..), each fold warp reduces by the same butterfly, and the warps' sums
// meet in one more butterfly with zeros in the lanes past the fold's warps (block_reduce_sum's second stage; for a
// one-warp fold the zeros leave the sum as it was). Lane w here plays fold warp w. All 32 lanes call it and get the
// value. So a GEMM that normalises its input on the fly stores what the norm op would have stored.
template <typename T>
__device__ __forceinline__ float rms_rstd_warp(const T* row, int cols, float eps) {
  constexpr int VEC = Fold16<T>::VEC;
  constexpr int CHUNKS = kNormItems / VEC;
  const int threads = norm_fold_threads(cols);
  const int lane = threadIdx.x & 31;
  const float inv_cols = 1.0f / float(cols);
  float mine = 0.0f;
  for (int w = 0; w < threads / 32; ++w) {
    const int t = 32 * w + lane;
    float ss = 0.0f;
#pragma unroll
    for (int k = 0; k < CHUNKS; ++k) {
      const int start = (t + k * threads) * VEC;
#pragma unroll
      for (int j = 0; j < VEC; ++j) {
        const float d = start + j < cols ? to_f32(row[start + j]) : 0.0f;
        ss += d * d;
      }
    }
    const float s = warp_reduce_sum(ss);
    if (lane == w) mine = s;
  }
  return rsqrtf(warp_reduce_sum(mine) * inv_cols + eps);
}

// Launch shape for a folded row op: THREADS threads per row; a warp per row runs 4 rows per 128-thread block.
// Rows are walked with a grid stride so any row count fits the grid limit.
template <int THREADS>
struct RowShape {
  static constexpr int ROWS = THREADS == 32 ? 4 : 1;  // rows per block
  static constexpr int BLOCK = THREADS * ROWS;
  static dim3 grid(int64_t rows) { return dim3(unsigned(std::min<int64_t>(ceil_div(rows, ROWS), 0x7fffffff))); }
};

}  // namespace EET_KNS

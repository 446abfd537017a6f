// Packs of elements moved with 16-byte loads/stores, and the row tiling shared by the memory-bound ops
// (embedding, act, rope, cast).
//   Pack<T, N>:           N elements of T in registers
//   load_pack/store_pack: N*sizeof(T) a multiple of 16 -> that many 16-byte accesses (the pointer must be
//                         16-byte aligned: launchers check it at run time with aligned16 and otherwise choose a
//                         path with N*sizeof(T) < 16, which moves element by element and needs no alignment)
//   RowTiling:            tpr (a power of two) threads on each row of a matrix: short rows share a block, long
//                         rows span several blocks.
#pragma once
#include <algorithm>
#include <cstring>

#include "common.cuh"

namespace EET_KNS {

// Elements of T in one 16-byte access.
template <typename T> constexpr int kVec = int(16 / sizeof(T));

template <typename T, int N> struct Pack {
  T e[N];
};

template <typename T, int N>
__device__ __forceinline__ Pack<T, N> load_pack(const T* p) {
  Pack<T, N> r;
  if constexpr (N * sizeof(T) % 16 == 0) {
#pragma unroll
    for (int k = 0; k < int(N * sizeof(T) / 16); ++k) {
      const uint4 bits = reinterpret_cast<const uint4*>(p)[k];
      memcpy(reinterpret_cast<char*>(r.e) + 16 * k, &bits, 16);
    }
  } else {
#pragma unroll
    for (int j = 0; j < N; ++j) r.e[j] = p[j];
  }
  return r;
}

template <typename T, int N>
__device__ __forceinline__ void store_pack(T* p, const Pack<T, N>& v) {
  if constexpr (N * sizeof(T) % 16 == 0) {
#pragma unroll
    for (int k = 0; k < int(N * sizeof(T) / 16); ++k) {
      uint4 bits;
      memcpy(&bits, reinterpret_cast<const char*>(v.e) + 16 * k, 16);
      reinterpret_cast<uint4*>(p)[k] = bits;
    }
  } else {
#pragma unroll
    for (int j = 0; j < N; ++j) p[j] = v.e[j];
  }
}


// Threads per row for rows of `units` work units: tpr = 1 << shift, the power of two covering a row, at most
// 1 << kMaxRowShift. Rows shorter than a block share one; longer rows span tpr / block consecutive blocks, so a
// single long row (decode, M = 1) still spreads over several SMs. The grid covers rows * tpr threads, capped at
// 65536 blocks (a multiple of tpr / block, so every row group stays whole); kernels grid-stride over rows.
constexpr int kMaxRowShift = 13;
struct RowTiling {
  int shift = 0;
  unsigned blocks;
  RowTiling(int64_t rows, int64_t units, int block) {
    while ((int64_t(1) << shift) < units && shift < kMaxRowShift) ++shift;
    blocks = unsigned(std::min<int64_t>(std::max<int64_t>(ceil_div(rows << shift, block), 1), 65536));
  }
};

}  // namespace EET_KNS

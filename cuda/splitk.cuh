// Split-K across blocks for the decode-side GEMM kernels (cuda/gemv.cu, cuda/gemv_q8.cu), and the GEMV's epilogue.
//
// A decode GEMM has few outputs (M <= 64 rows) but streams a whole weight matrix: when its output tiles alone
// would leave SMs idle, the K range is also cut into `splits` slices, one block per (tile, slice): grid
// (tiles, splits), tile = blockIdx.x, slice = blockIdx.y. Every block stores its fp32 partial sums in a scratch
// buffer, then takes a ticket for its tile; the block that takes the last ticket adds the slices in slice order
// and runs the epilogue (bias, residual, one rounding). The order of the sum is fixed, so results do not depend
// on which block finished last (no float atomics). Every weight is still read exactly once.
//   scratch  g_splitk_part[(slice * N + n) * M + m]   splits * N * M <= kSplitKFloats (splitk_plan keeps it so)
//   tickets  g_splitk_ticket[tile]                    tiles <= kSplitKTiles; zero between launches: the last block
//                                                      of a tile resets it
// Both are module-scope __device__ arrays: allocated when the module loads, nothing is allocated at run time (so
// a launch can be captured in a CUDA graph). Each .cu that includes this header has its own pair, shared by all
// of its launches on a device, so those launches must run in stream order: they do, a backend owns one stream
// per device (engine/backend.cpp backend_for makes one backend per device).
// Memory ordering (the CUDA guide's "last block" reduction): each thread fences its partial stores before the
// block's ticket; the last block fences again and reads the partials with ld.global.cg (L2), never through an L1
// line that a previous launch on the same SM may have left behind.
//
// gemv_finish: the end of the GEMV kernels. Their block is WARPS warps = (WARPS / ksplit) column groups x ksplit
// K slices; group g of block b owns columns [(b * groups + g) * COLS, + COLS). Each warp reduces its (MAXM, COLS)
// sums across lanes, the in-block slices are added in slice order through shared memory, and the result is
// stored (splits == 1) or goes through the split-K path above.
#pragma once
#include <algorithm>

#include "common.cuh"
#include "gemm_epilogue.cuh"
#include "reduce.cuh"

namespace EET_KNS {

constexpr int64_t kSplitKFloats = int64_t(1) << 20;  // 4 MiB of partial sums per including .cu and device
constexpr int64_t kSplitKTiles = 4096;
constexpr int64_t kSplitKMax = 64;                  // slices per tile

// Internal linkage, like the functions that touch them: each including .cu has its own (an inline function shared
// across translation units would bind to one of them).
static __device__ float g_splitk_part[kSplitKFloats];
static __device__ unsigned g_splitk_ticket[kSplitKTiles];

struct SplitK {
  int splits;             // K slices, grid.y
  int64_t units_per_split;  // of the caller's K unit; the last slice may have fewer
};

// How to cut `units` units of K over `tiles` output tiles so that the grid has about `target_blocks` blocks:
// every slice at least `min_units` units (a block must stream enough to be worth its launch and reduction), and
// the partial sums (floats_per_slice = N * M each) must fit the scratch. One slice when the tiles alone suffice.
inline SplitK splitk_plan(int64_t tiles, int64_t units, int64_t min_units, int64_t target_blocks,
                          int64_t floats_per_slice) {
  int64_t s = ceil_div(target_blocks, std::max<int64_t>(tiles, 1));
  s = std::min(s, units / std::max<int64_t>(min_units, 1));
  s = std::min(s, kSplitKFloats / std::max<int64_t>(floats_per_slice, 1));
  s = std::min(s, kSplitKMax);
  if (tiles > kSplitKTiles || s < 2) return {1, std::max<int64_t>(units, 1)};
  const int64_t per = ceil_div(units, s);
  return {int(ceil_div(units, per)), per};  // no empty slice
}

// This block's partial sum of output (m, n); N, M the GEMM's.
static __device__ __forceinline__ void splitk_put(int64_t N, int64_t M, int64_t m, int64_t n, float v) {
  g_splitk_part[(int64_t(blockIdx.y) * N + n) * M + m] = v;
}

// Called by every thread of the block after its splitk_put calls. True (in every thread) in the block that
// completes its tile, which then sums the slices with splitk_sum; the other blocks are done.
static __device__ __forceinline__ bool splitk_arrive(int splits) {
  __shared__ int last;
  __threadfence();  // this thread's partials are visible device-wide before the block's ticket
  __syncthreads();
  if (threadIdx.x == 0) {
    const unsigned before = atomicAdd(&g_splitk_ticket[blockIdx.x], 1u);
    last = before == unsigned(splits - 1);
    if (last) g_splitk_ticket[blockIdx.x] = 0;  // every slice has arrived: ready for the next launch
  }
  __syncthreads();
  if (last) __threadfence();
  return last;
}

// Output (m, n) summed over the slices in slice order.
static __device__ __forceinline__ float splitk_sum(int splits, int64_t N, int64_t M, int64_t m, int64_t n) {
  float s = 0.0f;
  for (int j = 0; j < splits; ++j) s += __ldcg(&g_splitk_part[(int64_t(j) * N + n) * M + m]);
  return s;
}

// The grid of a GEMV launch (the kernel's structure above, with WARPS warps of COLS columns): K slices over the
// warps of a block first (their sums need no scratch), then over blocks, until the grid holds about warps_per_sm
// warps per SM. `unit` is the K a warp takes in one loop iteration; every slice gets at least one.
struct GemvGrid {
  dim3 grid;
  int ksplit, splits;
  int64_t k_split;  // K per block slice, a multiple of unit
};

inline GemvGrid gemv_grid(int64_t m, int64_t n, int64_t k, int64_t unit, int cols, int warps, int warps_per_sm) {
  const int64_t units = ceil_div(k, unit);
  const int64_t col_groups = ceil_div(n, cols);
  const int64_t slices = ceil_div(int64_t(sm_count()) * warps_per_sm, col_groups);  // wanted per column group
  int ksplit = 1;
  while (ksplit < warps && ksplit * 2 <= slices && ksplit * 2 <= units) ksplit *= 2;
  const int64_t blocks = ceil_div(col_groups, warps / ksplit);
  if (blocks > 0x7fffffff) eet::throw_error(eet::ErrorCode::Unsupported, "gemm: n too large for the gemv grid");
  // Across blocks only for a whole multiple of the in-block slices still wanted; each block slice holds at least
  // one unit per in-block slice.
  const SplitK sk = splitk_plan(blocks, units, ksplit, blocks * std::max<int64_t>(1, slices / ksplit), n * m);
  return {dim3(unsigned(blocks), unsigned(sk.splits)), ksplit, sk.splits, sk.units_per_split * unit};
}

template <int MAXM, int COLS, int WARPS, typename P>
__device__ __forceinline__ void gemv_finish(const P& p, const float (&acc)[MAXM][COLS],
                                            float (&partial)[WARPS][MAXM * COLS], int rows, int ksplit, int splits) {
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
    if (splits == 1) {
      gemm_store(p, m, col, s);
    } else {
      splitk_put(p.n, p.m, m, col, s);
    }
  }
  if (splits == 1 || !splitk_arrive(splits)) return;
  for (int i = threadIdx.x; i < groups * COLS * rows; i += WARPS * 32) {
    const int64_t col = int64_t(blockIdx.x) * groups * COLS + i / rows;
    const int m = i % rows;
    if (col < p.n) gemm_store(p, m, col, splitk_sum(splits, p.n, p.m, m, col));
  }
}

}  // namespace EET_KNS

// The pieces of the tensor-core prefill GEMMs (cuda/gemm.cu gemm_mma_kernel, cuda/gemm_q8.cu gemm_q8_mma_kernel)
// that do not depend on how W is stored:
//   MmaTile<BM, BN, MIN_BLOCKS>  a block tile: BM x BN outputs, K steps of 32, 8 warps as 2 (M) x 4 (N), each warp
//                                (BM / 2) x (BN / 4) as m16n8k16 tiles; STAGES K tiles in flight
//   mma_tile_order               block index -> (M tile, N tile), in groups of 8 M tiles (L2 reuse, below)
//   load_rows                    rows r0.. of a (nrows, K) matrix, K columns k0..k0+31, into a swizzled stage
//   load_a_frags / load_b_frags  a warp's mma fragments of one 16-wide K step, by ldmatrix
//   pick_mma_tile                which tile a launch uses
//
// Shared layout of an operand tile (one stage): ROWS rows of 32 16-bit elements = 64 bytes = 4 chunks of 16
// bytes; chunk c of row r sits at byte r * 64 + 16 * (c ^ ((r >> 1) & 3)) (an XOR swizzle, no padding). Why:
// an ldmatrix phase reads one 16-byte chunk from each of 8 consecutive rows (r0 even). Unswizzled, row r's chunk c
// would sit in bank group (4 r + c) mod 8 - only 2 distinct groups over 8 rows, a 4-way bank conflict. Swizzled it
// sits in group 4 (r & 1) + (c ^ ((r >> 1) & 3)): r & 1 picks the half, (r >> 1) & 3 runs over 0..3 for the 8
// rows, so the 8 chunks hit 8 distinct groups (all 32 banks, conflict free). The copies that fill the tile (8
// consecutive threads = 2 rows x 4 chunks) hit 8 distinct groups too. No padding keeps 4 stages of the largest tile
// at 96 KiB, within sm_86 / sm_89's 99 KiB per block as well as sm_80 / sm_90's.
#pragma once
#include <cstdint>

#include "async_copy.cuh"
#include "common.cuh"
#include "gemm_common.cuh"
#include "ldmatrix.cuh"

namespace EET_KNS {

template <int BM_, int BN_, int MIN_BLOCKS_>
struct MmaTile {
  static constexpr int BM = BM_, BN = BN_, BK = 32, STAGES = 4;
  static constexpr int MIN_BLOCKS = MIN_BLOCKS_;            // __launch_bounds__: blocks an SM should hold
  static constexpr int WARPS_M = 2, WARPS_N = 4;
  static constexpr int WM = BM / WARPS_M, WN = BN / WARPS_N;  // one warp's tile
  static constexpr int MT = WM / 16, NT = WN / 8;             // m16n8k16 tiles per warp
  static constexpr int ROW_BYTES = BK * 2;                    // one row of a 16-bit operand tile
  static constexpr int A_BYTES = BM * ROW_BYTES, B_BYTES = BN * ROW_BYTES;
  static constexpr int A_CHUNKS = BM * 4 / kGemmThreads, B_CHUNKS = BN * 4 / kGemmThreads;  // 16-byte copies a thread
  static_assert(WARPS_M * WARPS_N * 32 == kGemmThreads, "8 warps");
  static_assert(WM % 16 == 0 && WN % 16 == 0, "whole mma tiles; B fragments come two n8 tiles per ldmatrix");
  static_assert(BM * 4 % kGemmThreads == 0 && BN * 4 % kGemmThreads == 0, "whole chunks per thread");
};

// Byte offset of chunk c (16 bytes, K columns 8c..8c+7) of row r in a swizzled operand tile (see the header).
__device__ __forceinline__ int swizzle(int r, int c) { return r * 64 + ((c ^ ((r >> 1) & 3)) << 4); }

// Block index -> (M tile, N tile). Blocks run roughly in index order, so consecutive blocks should share operands:
// groups of 8 M tiles walk over every N tile, M fastest; the blocks on the GPU at once then read a few rows of x and
// a band of W that stay in L2, instead of all of x once per band of W.
__device__ __forceinline__ void mma_tile_order(int64_t block, int64_t tiles_m, int64_t tiles_n, int64_t& tm,
                                               int64_t& tn) {
  constexpr int64_t kGroup = 8;
  const int64_t per_group = kGroup * tiles_n;
  const int64_t first = block / per_group * kGroup;
  const int64_t rows = tiles_m - first < kGroup ? tiles_m - first : kGroup;
  const int64_t in_group = block % per_group;
  tm = first + in_group % rows;
  tn = in_group / rows;
}

// Starts this thread's copies of rows r0..r0+ROWS-1 (those < nrows), K columns k0..k0+31 (those < K), of a matrix
// with row stride ld into the swizzled tile at s; everything outside is zero-filled (src-size).
template <int ROWS, typename T, typename Copier>
__device__ __forceinline__ void load_rows(Copier& cp, unsigned char* s, const T* src, int64_t ld, int64_t r0,
                                          int64_t nrows, int64_t k0, int64_t K) {
  static_assert(sizeof(T) == 2, "16-bit operands");
#pragma unroll
  for (int i = 0; i < ROWS * 4 / kGemmThreads; ++i) {
    const int c = threadIdx.x + i * kGemmThreads;
    const int row = c / 4, chunk = c % 4;
    const int64_t r = r0 + row, k = k0 + chunk * 8;
    const int64_t left = r < nrows ? K - k : 0;  // elements of this chunk inside the matrix
    const int n = left <= 0 ? 0 : left >= 8 ? 8 : int(left);
    cp.copy16(s + swizzle(row, chunk), n > 0 ? src + r * ld + k : src, n * 2);
  }
}

// A fragments of the warp's MT m16 tiles at rows wm.., K step ks (16 columns) of the A tile at s. Lane l gives row
// (l % 16) and chunk 2 ks + l / 16: matrices (rows 0-7, k 0-7), (8-15, 0-7), (0-7, 8-15), (8-15, 8-15) = a[0..3].
template <int MT>
__device__ __forceinline__ void load_a_frags(uint32_t (&af)[MT][4], const unsigned char* s, int wm, int ks, int lane) {
#pragma unroll
  for (int i = 0; i < MT; ++i) ldmatrix_x4(af[i], s + swizzle(wm + i * 16 + (lane & 15), 2 * ks + (lane >> 4)));
}

// B fragments of the warp's NT n8 tiles at rows wn.. of a (BN, 32) W tile at s (B[k][n] = W[n][k]), K step ks. One
// ldmatrix per pair of n8 tiles: lane l gives W row 8 (l / 16) + l % 8 and chunk 2 ks + (l / 8) % 2, so the
// matrices are (n 0-7, k 0-7), (n 0-7, k 8-15), (n 8-15, k 0-7), (n 8-15, k 8-15) = b[0..1] of both tiles.
template <int NT>
__device__ __forceinline__ void load_b_frags(uint32_t (&bf)[NT][2], const unsigned char* s, int wn, int ks, int lane) {
#pragma unroll
  for (int j = 0; j < NT; j += 2) {
    uint32_t r[4];
    ldmatrix_x4(r, s + swizzle(wn + j * 8 + (lane >> 4) * 8 + (lane & 7), 2 * ks + ((lane >> 3) & 1)));
    bf[j][0] = r[0];
    bf[j][1] = r[1];
    bf[j + 1][0] = r[2];
    bf[j + 1][1] = r[3];
  }
}

// ---- which tile a launch uses ----------------------------------------------------------------------------------
// Candidates, largest first. speed: relative throughput of one SM running that tile, a first estimate from its
// shared-memory traffic per mma (ldmatrix + cp.async bytes: 176 / 256 / 352 for warp tiles 64x64 / 64x32 / 32x32;
// the SM moves 128 bytes per clock) until a GPU run measures it. The largest is about 1.4x cheaper in shared memory
// per mma than the next, but leaves SMs idle when the grid is small.
struct MmaTileChoice {
  int bm, bn;
  double speed;
  size_t smem;  // bytes of dynamic shared memory
};

// Estimated time of each candidate = (blocks on the busiest SM) x (outputs per block) / speed, the grid spread over
// sm_count() SMs; the cheapest that fits the device's shared memory wins (ties: the larger tile). Returns its index.
template <int N>
inline int pick_mma_tile(const MmaTileChoice (&c)[N], int64_t m, int64_t n) {
  const int64_t sms = sm_count();
  int best = -1;
  double best_cost = 0.0;
  for (int i = 0; i < N; ++i) {
    if (c[i].smem > smem_per_block_optin()) continue;
    const int64_t blocks = ceil_div(m, c[i].bm) * ceil_div(n, c[i].bn);
    const double cost = double(ceil_div(blocks, sms)) * c[i].bm * c[i].bn / c[i].speed;
    if (best < 0 || cost < best_cost) best = i, best_cost = cost;
  }
  if (best < 0) eet::throw_error(eet::ErrorCode::Unsupported, "gemm: no tensor-core tile fits this device's shared memory");
  return best;
}

}  // namespace EET_KNS

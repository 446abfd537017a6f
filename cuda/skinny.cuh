// The tensor-core skinny GEMM's shared parts (cuda/gemv.cu: f16 / bf16 weights; cuda/gemv_q8.cu: Q8_0 weights),
// for decode batches of M = 2..64 rows with f16 / bf16 activations.
// Layout: the weights are the mma's A side (m16n8k16: 16 W rows per warp) and the activations its B side (8 rows
// of x per mma, M padded to 8 * NT, NT = 1, 2, 4, 8). So a batch of 16 makes the same single pass over W as a batch
// of 1; the padding costs tensor-core time, which these shapes have to spare, not bandwidth. A block is 8 warps =
// 128 W rows (a "tile" of cuda/splitk.cuh), blocks are split over K until the grid holds about kSkinnyBlocksPerSm
// blocks per SM. Fragments are loaded straight from global memory in 16-byte vectors, without shared memory, thanks
// to a permutation of K inside each 32-wide chunk (skinny_step).
#pragma once
#include <type_traits>

#include "common.cuh"
#include "gemm_common.cuh"
#include "gemm_epilogue.cuh"
#include "mma.cuh"
#include "splitk.cuh"

namespace EET_KNS {

constexpr int kSkinnyWarpRows = 16;                                    // W rows per warp: the mma's M side
constexpr int kSkinnyBlockRows = kSkinnyWarpRows * kGemmThreads / 32;  // 128
constexpr int kSkinnyBlocksPerSm = 2;                                  // grid target

// 8 consecutive 16-bit elements of a row, row[k..k+8), as 4 registers of packed pairs (lower k in the low half);
// zeros past kend or when the row does not exist. One 16-byte load when vec (row 16-byte aligned) and in range.
template <typename T>
__device__ __forceinline__ uint4 skinny_load8(const T* row, int64_t k, int64_t kend, bool live, bool vec) {
  if (live && vec && k + 8 <= kend) return *reinterpret_cast<const uint4*>(row + k);
  uint32_t w[4] = {0, 0, 0, 0};
  if (live) {
#pragma unroll
    for (int e = 0; e < 8; ++e) {
      if (k + e < kend) w[e / 2] |= half_bits(row[k + e]) << (16 * (e & 1));
    }
  }
  return make_uint4(w[0], w[1], w[2], w[3]);
}

// d += 32 values of K as two m16n8k16 steps. Lane (g, t) holds 8 consecutive k, k0 + 8t .. k0 + 8t + 7, of W rows g
// and g + 8 (wa, wb) and of x row g of an 8-row group (xv), as packed pairs. The mma's fragments (cuda/mma.cuh)
// want, per step, A[g][2t, 2t+1] and A[g][2t+8, 2t+9] (and the same of row g+8), B[2t, 2t+1][g] and
// B[2t+8, 2t+9][g]: step s takes the step's logical k 2t, 2t+1 from actual k 8t+4s, +1, and logical 2t+8, 2t+9
// from 8t+4s+2, +3. That maps the 32 actual k one to one onto the two steps' 2 x 16 logical k, the same way for A
// (W) and B (x), so every product is the right one; only the order of the additions differs from a plain loop.
template <typename T>
__device__ __forceinline__ void skinny_step(float (&d)[4], const uint4& wa, const uint4& wb, const uint4& xv) {
  const uint32_t a0[4] = {wa.x, wb.x, wa.y, wb.y}, b0[2] = {xv.x, xv.y};
  mma_m16n8k16<T>(d, a0, b0);
  const uint32_t a1[4] = {wa.z, wb.z, wa.w, wb.w}, b1[2] = {xv.z, xv.w};
  mma_m16n8k16<T>(d, a1, b1);
}

// The end of a skinny kernel: acc[j] is the warp's mma tile of W rows n0 + (g, g+8) x activations 8j + (2t, 2t+1)
// (d[e]: row g + 8 (e >> 1), activation 8j + 2t + (e & 1)). Stored, or added over the K slices (cuda/splitk.cuh).
// Every thread of the block calls it.
template <int NT, typename P>
__device__ __forceinline__ void skinny_finish(const P& p, const float (&acc)[NT][4], int64_t n0, int splits) {
  const int lane = threadIdx.x & 31;
  const int g = lane >> 2, t = lane & 3;
#pragma unroll
  for (int j = 0; j < NT; ++j) {
#pragma unroll
    for (int e = 0; e < 4; ++e) {
      const int64_t n = n0 + g + 8 * (e >> 1), m = 8 * j + 2 * t + (e & 1);
      if (n >= p.n || m >= p.m) continue;
      if (splits == 1) {
        gemm_store(p, m, n, acc[j][e]);
      } else {
        splitk_put(p.n, p.m, m, n, acc[j][e]);
      }
    }
  }
  if (splits == 1 || !splitk_arrive(splits)) return;
  for (int64_t i = threadIdx.x; i < kSkinnyBlockRows * p.m; i += kGemmThreads) {
    const int64_t n = int64_t(blockIdx.x) * kSkinnyBlockRows + i / p.m, m = i % p.m;
    if (n < p.n) gemm_store(p, m, n, splitk_sum(splits, p.n, p.m, m, n));
  }
}

// The grid of a skinny launch: one block per 128 W rows, times the K slices; K per slice (a multiple of step_k, the
// kernel's K per loop iteration), each slice at least min_steps iterations.
struct SkinnyGrid {
  dim3 grid;
  int splits;
  int64_t k_split;
};

inline SkinnyGrid skinny_grid(int64_t m, int64_t n, int64_t k, int64_t step_k, int64_t min_steps) {
  const int64_t tiles = ceil_div(n, kSkinnyBlockRows);
  if (tiles > 0x7fffffff) eet::throw_error(eet::ErrorCode::Unsupported, "gemm: n too large for the skinny grid");
  const SplitK sk = splitk_plan(tiles, ceil_div(k, step_k), min_steps, int64_t(sm_count()) * kSkinnyBlocksPerSm, n * m);
  return {dim3(unsigned(tiles), unsigned(sk.splits)), sk.splits, sk.units_per_split * step_k};
}

// Calls launch(std::integral_constant<int, NT>{}) with the n8 tiles per warp of an m-row skinny GEMM (float and
// Q8_0 alike): NT = 1, 2, 4, 8 for m <= 8, 16, 32, 64.
template <typename F>
void skinny_dispatch_nt(int64_t m, F&& launch) {
  if (m <= 8) {
    launch(std::integral_constant<int, 1>{});
  } else if (m <= 16) {
    launch(std::integral_constant<int, 2>{});
  } else if (m <= 32) {
    launch(std::integral_constant<int, 4>{});
  } else {
    launch(std::integral_constant<int, 8>{});
  }
}

// f32 decode calls with a prologue may have 17..64 rows (ops.h), over the GEMV's 16: launch(slice) on each 16 rows
// in turn (x, y and the residual advanced; each slice reads W again — the graph fuses f32 steps only up to 16 rows,
// where one pass does).
template <typename P, typename F>
void for_16_row_slices(const P& p, F&& launch) {
  for (int64_t m0 = 0; m0 < p.m; m0 += 16) {
    P c = p;
    c.x += m0 * p.ldx;
    c.y += m0 * p.ldy;
    if (c.residual) c.residual += m0 * p.ldy;
    c.m = p.m - m0 < 16 ? p.m - m0 : 16;
    launch(c);
  }
}

}  // namespace EET_KNS

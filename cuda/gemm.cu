// GEMM / GEMV: y = x · Wᵀ (+ bias) (+ residual), fp32 accumulation, float32 / float16 / bfloat16.
//   x        (M, K)  row stride ldx
//   W        (N, K)  contiguous, nn.Linear layout (each output column n is one row of W)
//   bias     (N)     optional
//   residual (M, N)  row stride ldy, optional, may alias y (each element is read before it is written, by the
//                    same thread)
//   y        (M, N)  row stride ldy
// Variants, chosen by op_gemm:
//   M <= kDecodeMaxM (64 for f16 / bf16, 16 for f32; decode batches): cuda/gemv.cu, bandwidth-bound kernels that
//                           read every weight once per call: gemv_kernel (M = 1, and f32) and skinny_mma_kernel
//                           (f16 / bf16, M = 2..64, tensor cores), split over K until the GPU is full.
//   M > 64, f16 / bf16      gemm_mma_kernel<T, Tile, Copier>: tensor cores (mma.m16n8k16 via cuda/mma.cuh), 8 warps,
//                           block tiles 128 x 256, 128 x 128 or 64 x 128 (K steps of 32), the largest that keeps
//                           the SMs busy (pick_mma_tile, cuda/gemm_tile.cuh). A 4-stage pipeline: cp.async copies
//                           (cuda/async_copy.cuh) keep 3 K tiles in flight into swizzled shared memory while the
//                           warps multiply the current one, whose fragments come by ldmatrix (cuda/ldmatrix.cuh);
//                           one barrier per K tile. When x's or W's rows are not 16-byte aligned (ldx or K not a
//                           multiple of 8) the same kernel runs with ordinary loads (SyncCopies) on 64 x 128 tiles.
//   M > 16, f32             gemm_simt_kernel: 64 x 64 x 16 tiles, 256 threads, 4 x 4 outputs per thread in
//                           registers; tiles go global -> registers -> shared memory (K-major), double-buffered:
//                           the next tile's loads are in flight during the current one's math.
// Edges (M, N, K not multiples of the tiles) are zero-filled on load and masked on store. Block sizes are fixed
// (256 threads) for every variant.
#include <cstring>

#include "common.cuh"
#include "gemm_common.cuh"
#include "gemm_epilogue.cuh"
#include "gemm_tile.cuh"
#include "mma.cuh"

namespace EET_KNS {

// ---- tiled GEMM on tensor cores: M > 64, f16 / bf16 ---------------------------------------------------------------

// The tiles (cuda/gemm_tile.cuh): 128 x 256 with 64 x 64 per warp (the least shared-memory traffic per mma, one
// block per SM: 128 accumulators a thread), 128 x 128 (64 x 32 per warp, two blocks per SM) and 64 x 128 (32 x 32,
// two per SM) for grids that would leave SMs idle with larger tiles.
using GemmTileL = MmaTile<128, 256, 1>;
using GemmTileM = MmaTile<128, 128, 2>;
using GemmTileS = MmaTile<64, 128, 2>;

// Copier: AsyncCopies (cp.async, rows 16-byte aligned) or SyncCopies (any alignment). tiles_m, tiles_n: the grid's
// tiles in each direction (the grid is one-dimensional: mma_tile_order).
template <typename T, typename Tile, typename Copier>
__global__ void __launch_bounds__(kGemmThreads, Tile::MIN_BLOCKS)
    gemm_mma_kernel(GemmParams<T> p, int64_t tiles_m, int64_t tiles_n) {
  constexpr int BM = Tile::BM, BN = Tile::BN, BK = Tile::BK, S = Tile::STAGES, MT = Tile::MT, NT = Tile::NT;
  constexpr int STAGE = Tile::A_BYTES + Tile::B_BYTES;
  EXTERN_SHARED(unsigned char, smem);  // [S] x (A tile [BM][64 B], W tile [BN][64 B]), swizzled

  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const int wm = (warp / Tile::WARPS_N) * Tile::WM, wn = (warp % Tile::WARPS_N) * Tile::WN;
  int64_t tm, tn;
  mma_tile_order(blockIdx.x, tiles_m, tiles_n, tm, tn);
  const int64_t m0 = tm * BM, n0 = tn * BN;
  const int64_t ktiles = ceil_div(p.k, BK);

  Copier cp;  // at most S - 1 K tiles in flight per thread
  const auto load = [&](int64_t kt) {
    unsigned char* st = smem + int(kt % S) * STAGE;
    load_rows<BM>(cp, st, p.x, p.ldx, m0, p.m, kt * BK, p.k);
    load_rows<BN>(cp, st + Tile::A_BYTES, p.w, p.k, n0, p.n, kt * BK, p.k);
  };

  float acc[MT][NT][4];
#pragma unroll
  for (int i = 0; i < MT; ++i) {
#pragma unroll
    for (int j = 0; j < NT; ++j) {
#pragma unroll
      for (int e = 0; e < 4; ++e) acc[i][j][e] = 0.0f;
    }
  }

  // One commit per K tile, even an empty one past the end, so "tile kt has landed" is always wait<S - 2>.
#pragma unroll
  for (int s = 0; s < S - 1; ++s) {
    if (s < ktiles) load(s);
    cp.commit();
  }
  for (int64_t kt = 0; kt < ktiles; ++kt) {
    cp.template wait<S - 2>();  // this thread's copies of tile kt have landed...
    __syncthreads();            // ...everyone's have, and everyone is done with tile kt - 1's stage
    if (kt + S - 1 < ktiles) load(kt + S - 1);  // into tile kt - 1's stage
    cp.commit();
    const unsigned char* a_s = smem + int(kt % S) * STAGE;
    const unsigned char* b_s = a_s + Tile::A_BYTES;
#pragma unroll
    for (int ks = 0; ks < BK / 16; ++ks) {
      uint32_t af[MT][4], bf[NT][2];
      load_a_frags(af, a_s, wm, ks, lane);
      load_b_frags(bf, b_s, wn, ks, lane);
#pragma unroll
      for (int i = 0; i < MT; ++i) {
#pragma unroll
        for (int j = 0; j < NT; ++j) mma_m16n8k16<T>(acc[i][j], af[i], bf[j]);
      }
    }
  }
  cp.template wait<0>();  // only empty groups are left; nothing may be in flight when the block's memory is reused

  const int g = lane >> 2, t = lane & 3;
#pragma unroll
  for (int i = 0; i < MT; ++i) {
#pragma unroll
    for (int j = 0; j < NT; ++j) {
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        const int64_t row = m0 + wm + i * 16 + g + (e >> 1) * 8;
        const int64_t col = n0 + wn + j * 8 + 2 * t + (e & 1);
        if (row < p.m && col < p.n) gemm_store(p, row, col, acc[i][j][e]);
      }
    }
  }
}

template <typename T, typename Tile, typename Copier>
void gemm_mma_launch_tile(const GemmParams<T>& p, eet::Stream stream) {
  constexpr size_t smem = size_t(Tile::STAGES) * (Tile::A_BYTES + Tile::B_BYTES);
  const int64_t tiles_m = ceil_div(p.m, Tile::BM), tiles_n = ceil_div(p.n, Tile::BN);
  if (tiles_m * tiles_n > 0x7fffffff) eet::throw_error(eet::ErrorCode::Unsupported, "gemm: too many tiles for one grid");
  launch(gemm_mma_kernel<T, Tile, Copier>, dim3(unsigned(tiles_m * tiles_n)), dim3(kGemmThreads), smem, stream, p,
         tiles_m, tiles_n);
}

template <typename Tile>
constexpr MmaTileChoice gemm_tile_choice(double speed) {
  return {Tile::BM, Tile::BN, speed, size_t(Tile::STAGES) * (Tile::A_BYTES + Tile::B_BYTES)};
}

template <typename T>
void gemm_mma_launch(const GemmParams<T>& p, eet::Stream stream) {
  // cp.async moves 16-byte aligned chunks: x's and W's rows must start on 16 bytes (W's stride is K). Otherwise the
  // same pipeline with ordinary loads, on the small tile (a rare layout: every model dimension is a multiple of 8).
  if (p.ldx % 8 != 0 || p.k % 8 != 0 || !aligned16(p.x) || !aligned16(p.w)) {
    return gemm_mma_launch_tile<T, GemmTileS, SyncCopies>(p, stream);
  }
  using Async = AsyncCopies<(GemmTileL::STAGES - 1) * (GemmTileL::A_CHUNKS + GemmTileL::B_CHUNKS)>;
  static constexpr MmaTileChoice kTiles[] = {gemm_tile_choice<GemmTileL>(1.0), gemm_tile_choice<GemmTileM>(0.8),
                                             gemm_tile_choice<GemmTileS>(0.6)};
  switch (pick_mma_tile(kTiles, p.m, p.n)) {
    case 0: return gemm_mma_launch_tile<T, GemmTileL, Async>(p, stream);
    case 1: return gemm_mma_launch_tile<T, GemmTileM, Async>(p, stream);
    default: return gemm_mma_launch_tile<T, GemmTileS, Async>(p, stream);
  }
}

// ---- tiled SIMT GEMM: M > 16, f32 -----------------------------------------------------------------------------------

struct SimtTile {
  static constexpr int BM = 64, BN = 64, BK = 16;
  static constexpr int TM = 4, TN = 4;   // outputs per thread
  static constexpr int LDS = BM + 4;     // shared row stride (floats); K-major: [BK][LDS]
  static constexpr size_t SMEM = size_t(2) * 2 * BK * LDS * 4;
  static_assert((BM / TM) * (BN / TN) == kGemmThreads, "one thread per 4x4 outputs");
  static_assert(BM * BK / 4 == kGemmThreads && BN == BM, "one float4 of A and of W per thread and tile");
};

// This thread's float4 of rows r0.., columns k0..k0+15 of a (nrows, K) matrix; zeros outside.
__device__ __forceinline__ float4 simt_load(const float* src, int64_t ld, int64_t r0, int64_t nrows, int64_t k0,
                                            int64_t K, bool vec) {
  const int64_t row = r0 + threadIdx.x / 4, kc = k0 + (threadIdx.x % 4) * 4;
  float v[4] = {0.0f, 0.0f, 0.0f, 0.0f};
  if (row < nrows) {
    if (vec && kc + 4 <= K) return *reinterpret_cast<const float4*>(src + row * ld + kc);
#pragma unroll
    for (int e = 0; e < 4; ++e) {
      if (kc + e < K) v[e] = src[row * ld + kc + e];
    }
  }
  return make_float4(v[0], v[1], v[2], v[3]);
}

// Stores a thread's float4 transposed: s[k][row].
__device__ __forceinline__ void simt_store(float* s, float4 v) {
  const int row = threadIdx.x / 4, kq = (threadIdx.x % 4) * 4;
  s[(kq + 0) * SimtTile::LDS + row] = v.x;
  s[(kq + 1) * SimtTile::LDS + row] = v.y;
  s[(kq + 2) * SimtTile::LDS + row] = v.z;
  s[(kq + 3) * SimtTile::LDS + row] = v.w;
}

__global__ void __launch_bounds__(kGemmThreads) gemm_simt_kernel(GemmParams<float> p, bool a_vec, bool b_vec) {
  constexpr int BM = SimtTile::BM, BN = SimtTile::BN, BK = SimtTile::BK, LDS = SimtTile::LDS;
  constexpr int TM = SimtTile::TM, TN = SimtTile::TN;
  EXTERN_SHARED(float, smem);
  float* As = smem;                  // [2][BK][LDS]
  float* Bs = smem + 2 * BK * LDS;   // [2][BK][LDS]

  const int tx = threadIdx.x % (BN / TN), ty = threadIdx.x / (BN / TN);
  const int64_t m0 = int64_t(blockIdx.x) * BM, n0 = int64_t(blockIdx.y) * BN;
  const int64_t ktiles = ceil_div(p.k, BK);

  float acc[TM][TN];
#pragma unroll
  for (int i = 0; i < TM; ++i) {
#pragma unroll
    for (int j = 0; j < TN; ++j) acc[i][j] = 0.0f;
  }

  float4 ra = simt_load(p.x, p.ldx, m0, p.m, 0, p.k, a_vec);
  float4 rb = simt_load(p.w, p.k, n0, p.n, 0, p.k, b_vec);
  simt_store(As, ra);
  simt_store(Bs, rb);
  __syncthreads();

  for (int64_t kt = 0; kt < ktiles; ++kt) {
    const int stage = int(kt & 1);
    const bool more = kt + 1 < ktiles;
    if (more) {
      ra = simt_load(p.x, p.ldx, m0, p.m, (kt + 1) * BK, p.k, a_vec);
      rb = simt_load(p.w, p.k, n0, p.n, (kt + 1) * BK, p.k, b_vec);
    }
    const float* a_s = As + stage * BK * LDS;
    const float* b_s = Bs + stage * BK * LDS;
#pragma unroll
    for (int kk = 0; kk < BK; ++kk) {
      const float4 a = *reinterpret_cast<const float4*>(a_s + kk * LDS + ty * TM);
      const float4 b = *reinterpret_cast<const float4*>(b_s + kk * LDS + tx * TN);
      const float av[TM] = {a.x, a.y, a.z, a.w}, bv[TN] = {b.x, b.y, b.z, b.w};
#pragma unroll
      for (int i = 0; i < TM; ++i) {
#pragma unroll
        for (int j = 0; j < TN; ++j) acc[i][j] += av[i] * bv[j];
      }
    }
    if (more) {
      simt_store(As + (stage ^ 1) * BK * LDS, ra);
      simt_store(Bs + (stage ^ 1) * BK * LDS, rb);
    }
    __syncthreads();
  }

#pragma unroll
  for (int i = 0; i < TM; ++i) {
    const int64_t row = m0 + ty * TM + i;
    if (row >= p.m) continue;
#pragma unroll
    for (int j = 0; j < TN; ++j) {
      const int64_t col = n0 + tx * TN + j;
      if (col < p.n) gemm_store(p, row, col, acc[i][j]);
    }
  }
}

inline void gemm_simt_launch(const GemmParams<float>& p, eet::Stream stream) {
  const bool a_vec = p.ldx % 4 == 0 && aligned16(p.x);
  const bool b_vec = p.k % 4 == 0 && aligned16(p.w);
  const int64_t mt = ceil_div(p.m, SimtTile::BM), nt = ceil_div(p.n, SimtTile::BN);
  if (nt > 65535) eet::throw_error(eet::ErrorCode::Unsupported, "gemm: n too large for the tiled grid");
  launch(gemm_simt_kernel, dim3(unsigned(mt), unsigned(nt)), dim3(kGemmThreads), SimtTile::SMEM, stream, p, a_vec,
         b_vec);
}

// ---- entry ----------------------------------------------------------------------------------------------------------

template <typename T>
void gemm_select(const eet::GemmArgs& a, eet::Stream stream) {
  const GemmParams<T> p = gemm_params<T>(a);
  if (a.m <= kDecodeMaxM<T> || a.xform.kind != eet::GemmXForm::None) {  // prologues: decode kernels only
    gemm_decode(p, stream);
  } else if constexpr (std::is_same<T, float>::value) {
    gemm_simt_launch(p, stream);
  } else {
    gemm_mma_launch(p, stream);
  }
}

void op_gemm(const eet::GemmArgs& a, eet::Stream stream) {
  if (a.m == 0) return;
  EET_DISPATCH_FLOAT(a.dtype, T, gemm_select<T>(a, stream));
}

}  // namespace EET_KNS

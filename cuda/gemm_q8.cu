// Weight-only int8 GEMM / GEMV (GGUF Q8_0): y = x · dequant(W)ᵀ (+ bias) (+ residual), fp32 accumulation,
// x / y float32 / float16 / bfloat16.
//   x        (M, K)      row stride ldx
//   wq       (N, K)      int8, contiguous, 16-byte aligned (ops.h GemmQ8Args); K a multiple of 32
//   wscale   (N, K / 32) float16 scales: W[n, k] = wscale[n, k / 32] * wq[n, k]
//   bias     (N)         optional
//   residual (M, N)      row stride ldy, optional, may alias y (read before written, by the same thread)
//   y        (M, N)      row stride ldy
// Every Q8_0 block of 32 weights shares one scale, so the kernels multiply x by the integer q (exact in every
// float type), add up one block, and apply the scale once per block: sum_j d_j * sum_i x_i * q_i. Dequantized
// weights are never rounded to a 16-bit type.
// Variants, chosen by op_gemm_q8:
//   M <= kDecodeMaxM (64 for f16 / bf16, 16 for f32; decode batches): cuda/gemv_q8.cu, bandwidth-bound kernels
//                        that read every weight once per call: gemv_q8_kernel (M = 1, and f32) and
//                        skinny_q8_mma_kernel (f16 / bf16, M = 2..64, tensor cores), split over K until the GPU is
//                        full.
//   M > 64, f16 / bf16   gemm_q8_mma_kernel<T, Tile, ACopier>: tensor cores (mma.m16n8k16 via cuda/mma.cuh), 8
//                        warps, block tiles 128 x 128 or 64 x 128 (pick_mma_tile, cuda/gemm_tile.cuh), BK = 32 = one
//                        Q8_0 block. A 4-stage cp.async pipeline (cuda/async_copy.cuh) brings x tiles and raw int8 W
//                        tiles into shared memory, 3 K tiles in flight; x fragments come by ldmatrix, W fragments are
//                        read as int8 pairs and converted to T in registers (exact). A K tile's products go to fresh
//                        fp32 fragments that are scaled per column (the scales loaded one tile ahead) and added to
//                        the accumulators. x rows that are not 16-byte aligned go by ordinary loads (SyncCopies).
//   M > 16, f32          gemm_q8_simt_kernel: 64 x 64 x 32 tiles, 256 threads, 4 x 4 outputs per thread, W tile
//                        dequantized to fp32 in shared memory (d * q is exact in fp32), next tile prefetched into
//                        registers during the current one's math.
// M and N edges are zero-filled on load and masked on store (K has no edge: a multiple of the 32-wide tiles).
// Block size is fixed at 256 threads for every variant.
#include <cstring>
#include <type_traits>

#include "common.cuh"
#include "gemm_common.cuh"
#include "gemm_epilogue.cuh"
#include "gemm_tile.cuh"
#include "mma.cuh"

namespace EET_KNS {

// ---- tiled GEMM on tensor cores: M > 64, f16 / bf16 ---------------------------------------------------------------

// Tiles (cuda/gemm_tile.cuh; BK = 32 = one Q8_0 block): 128 x 128 (64 x 32 per warp) and 64 x 128 (32 x 32) for
// grids that would leave SMs idle. Per stage: the x tile as in cuda/gemm.cu (BM rows of 64 bytes, swizzled) and
// the W tile as raw int8 (BN rows of 32 bytes: two 16-byte chunks, K 0-15 and 16-31, chunk c of row r stored at
// c ^ ((r >> 2) & 1)). Why that swizzle: a B fragment read is, for rows g = 0..7 and t = 0..3, the 16-bit word at
// byte 32 g + 16 c + 2 t (+ 8): bank 8 g + 4 c + t / 2, where rows g and g + 4 collide; flipping the chunk for
// rows 4-7 moves them 4 banks over (conflict free; the two lanes sharing a word get it by broadcast).
using Q8TileM = MmaTile<128, 128, 1>;
using Q8TileS = MmaTile<64, 128, 2>;

template <typename Tile>
struct Q8Stage {
  static constexpr int W_BYTES = Tile::BN * 32;
  static constexpr int BYTES = Tile::A_BYTES + W_BYTES;
  static constexpr size_t SMEM = size_t(Tile::STAGES) * BYTES;
  static constexpr int W_CHUNKS = Tile::BN * 2 / kGemmThreads;  // 16-byte copies of W per thread and tile
  static_assert(Tile::BN * 2 % kGemmThreads == 0, "whole chunks of W per thread");
};

__device__ __forceinline__ int q8_swizzle(int r, int c) { return r * 32 + ((c ^ ((r >> 2) & 1)) << 4); }

// Two K-adjacent int8 weights at p (2-byte aligned; the lower k in the low byte, little-endian as GPUs and x86 are)
// as one fragment register of T (exact: |q| <= 128).
template <typename T>
__device__ __forceinline__ uint32_t q8_pair(const unsigned char* p) {
  const uint16_t v = *reinterpret_cast<const uint16_t*>(p);  // one 16-bit shared load
  const auto lo = static_cast<int8_t>(v & 0xffu), hi = static_cast<int8_t>(v >> 8);
  return half_bits(from_f32<T>(float(lo))) | (half_bits(from_f32<T>(float(hi))) << 16);
}

// ACopier: AsyncCopies (x's rows 16-byte aligned) or SyncCopies. W always goes by cp.async: its rows are K bytes,
// K a multiple of 32, and wq is 16-byte aligned (ops.h GemmQ8Args).
template <typename T, typename Tile, typename ACopier>
__global__ void __launch_bounds__(kGemmThreads, Tile::MIN_BLOCKS)
    gemm_q8_mma_kernel(GemmQ8Params<T> p, int64_t tiles_m, int64_t tiles_n) {
  using St = Q8Stage<Tile>;
  constexpr int BM = Tile::BM, BN = Tile::BN, BK = Tile::BK, S = Tile::STAGES, MT = Tile::MT, NT = Tile::NT;
  EXTERN_SHARED(unsigned char, smem);  // [S] x (x tile [BM][64 B], W tile [BN][32 B] int8)

  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const int g = lane >> 2, t = lane & 3;
  const int wm = (warp / Tile::WARPS_N) * Tile::WM, wn = (warp % Tile::WARPS_N) * Tile::WN;
  int64_t tm, tn;
  mma_tile_order(blockIdx.x, tiles_m, tiles_n, tm, tn);
  const int64_t m0 = tm * BM, n0 = tn * BN;
  const int64_t ktiles = p.k / BK, kblocks = p.k / 32;

  ACopier acp;
  AsyncCopies<(S - 1) * St::W_CHUNKS> wcp;
  const auto load = [&](int64_t kt) {
    unsigned char* st = smem + int(kt % S) * St::BYTES;
    load_rows<BM>(acp, st, p.x, p.ldx, m0, p.m, kt * BK, p.k);
#pragma unroll
    for (int i = 0; i < St::W_CHUNKS; ++i) {
      const int c = threadIdx.x + i * kGemmThreads, row = c / 2, chunk = c % 2;
      const int64_t n = n0 + row;
      const int8_t* src = n < p.n ? p.wq + n * p.k + kt * BK + chunk * 16 : p.wq;
      wcp.copy16(st + Tile::A_BYTES + q8_swizzle(row, chunk), src, n < p.n ? 16 : 0);
    }
  };
  // The scales of this thread's output columns (2 per n8 tile) for K tile kt; 0 past N.
  const auto scales = [&](int64_t kt, float (&d)[NT][2]) {
#pragma unroll
    for (int j = 0; j < NT; ++j) {
#pragma unroll
      for (int h = 0; h < 2; ++h) {
        const int64_t n = n0 + wn + j * 8 + 2 * t + h;
        d[j][h] = n < p.n ? q8_scale(p.wscale, n * kblocks + kt) : 0.0f;
      }
    }
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

#pragma unroll
  for (int s = 0; s < S - 1; ++s) {
    if (s < ktiles) load(s);
    acp.commit();
    wcp.commit();
  }
  float d[NT][2];
  scales(0, d);
  for (int64_t kt = 0; kt < ktiles; ++kt) {
    acp.template wait<S - 2>();
    wcp.template wait<S - 2>();
    __syncthreads();  // tile kt has landed for everyone; tile kt - 1's stage is free
    if (kt + S - 1 < ktiles) load(kt + S - 1);
    acp.commit();
    wcp.commit();
    float d_next[NT][2] = {};  // the next tile's scales: global loads in flight during this tile's math
    if (kt + 1 < ktiles) scales(kt + 1, d_next);

    const unsigned char* a_s = smem + int(kt % S) * St::BYTES;
    const unsigned char* w_s = a_s + Tile::A_BYTES;
    float part[MT][NT][4];  // this K tile (one Q8_0 block) before its scales
#pragma unroll
    for (int i = 0; i < MT; ++i) {
#pragma unroll
      for (int j = 0; j < NT; ++j) {
#pragma unroll
        for (int e = 0; e < 4; ++e) part[i][j][e] = 0.0f;
      }
    }
#pragma unroll
    for (int ks = 0; ks < BK / 16; ++ks) {
      uint32_t af[MT][4], bf[NT][2];
      load_a_frags(af, a_s, wm, ks, lane);
#pragma unroll
      for (int j = 0; j < NT; ++j) {
        const unsigned char* row = w_s + q8_swizzle(wn + j * 8 + g, ks) + 2 * t;
        bf[j][0] = q8_pair<T>(row);      // k 2t, 2t+1 of this 16-wide step, column g
        bf[j][1] = q8_pair<T>(row + 8);  // k 2t+8, 2t+9
      }
#pragma unroll
      for (int i = 0; i < MT; ++i) {
#pragma unroll
        for (int j = 0; j < NT; ++j) mma_m16n8k16<T>(part[i][j], af[i], bf[j]);
      }
    }
#pragma unroll
    for (int j = 0; j < NT; ++j) {
#pragma unroll
      for (int i = 0; i < MT; ++i) {
#pragma unroll
        for (int e = 0; e < 4; ++e) acc[i][j][e] += d[j][e & 1] * part[i][j][e];
      }
      d[j][0] = d_next[j][0];
      d[j][1] = d_next[j][1];
    }
  }
  acp.template wait<0>();
  wcp.template wait<0>();

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

template <typename T, typename Tile, typename ACopier>
void gemm_q8_mma_launch_tile(const GemmQ8Params<T>& p, eet::Stream stream) {
  const int64_t tiles_m = ceil_div(p.m, Tile::BM), tiles_n = ceil_div(p.n, Tile::BN);
  if (tiles_m * tiles_n > 0x7fffffff) eet::throw_error(eet::ErrorCode::Unsupported, "gemm_q8: too many tiles for one grid");
  launch(gemm_q8_mma_kernel<T, Tile, ACopier>, dim3(unsigned(tiles_m * tiles_n)), dim3(kGemmThreads),
         Q8Stage<Tile>::SMEM, stream, p, tiles_m, tiles_n);
}

template <typename T, typename ACopier>
void gemm_q8_mma_pick(const GemmQ8Params<T>& p, eet::Stream stream) {
  // speed: as for the float tiles (cuda/gemm.cu), a first estimate until a GPU run measures it
  static constexpr MmaTileChoice kTiles[] = {{Q8TileM::BM, Q8TileM::BN, 1.0, Q8Stage<Q8TileM>::SMEM},
                                             {Q8TileS::BM, Q8TileS::BN, 0.75, Q8Stage<Q8TileS>::SMEM}};
  if (pick_mma_tile(kTiles, p.m, p.n) == 0) return gemm_q8_mma_launch_tile<T, Q8TileM, ACopier>(p, stream);
  gemm_q8_mma_launch_tile<T, Q8TileS, ACopier>(p, stream);
}

template <typename T>
void gemm_q8_mma_launch(const GemmQ8Params<T>& p, eet::Stream stream) {
  if (p.ldx % 8 == 0 && aligned16(p.x)) {
    gemm_q8_mma_pick<T, AsyncCopies<(Q8TileM::STAGES - 1) * Q8TileM::A_CHUNKS>>(p, stream);
  } else {
    gemm_q8_mma_pick<T, SyncCopies>(p, stream);
  }
}

// ---- tiled SIMT GEMM: M > 16, f32 -----------------------------------------------------------------------------------

struct Q8SimtTile {
  static constexpr int BM = 64, BN = 64, BK = 32;
  static constexpr int TM = 4, TN = 4;  // outputs per thread
  static constexpr int LDS = BM + 4;    // shared row stride (floats); K-major: [BK][LDS]
  static constexpr size_t SMEM = size_t(2) * BK * LDS * 4;  // A and B, one stage
  static_assert((BM / TM) * (BN / TN) == kGemmThreads, "one thread per 4x4 outputs");
  static_assert(BM * BK / 4 == 2 * kGemmThreads, "two float4 of x per thread and tile");
  static_assert(BN * BK / 8 == kGemmThreads && BN == BM, "8 bytes of W per thread and tile");
};

struct Q8SimtRegs {
  float4 a[2];  // x rows (c / 8), k (c % 8) * 4.. for chunks c = threadIdx.x, threadIdx.x + 256
  uint2 q;      // W row threadIdx.x / 4, k (threadIdx.x % 4) * 8..
  float d;
};

__device__ __forceinline__ void q8_simt_load(Q8SimtRegs& r, const GemmQ8Params<float>& p, int64_t m0, int64_t n0,
                                             int64_t k0, bool a_vec) {
#pragma unroll
  for (int i = 0; i < 2; ++i) {
    const int c = threadIdx.x + i * kGemmThreads;
    const int64_t row = m0 + c / 8, kc = k0 + (c % 8) * 4;
    if (row >= p.m) {
      r.a[i] = make_float4(0.0f, 0.0f, 0.0f, 0.0f);
    } else if (a_vec) {
      r.a[i] = *reinterpret_cast<const float4*>(p.x + row * p.ldx + kc);
    } else {
      const float* s = p.x + row * p.ldx + kc;
      r.a[i] = make_float4(s[0], s[1], s[2], s[3]);
    }
  }
  const int64_t brow = n0 + threadIdx.x / 4, bk = k0 + (threadIdx.x % 4) * 8;
  if (brow < p.n) {
    r.q = *reinterpret_cast<const uint2*>(p.wq + brow * p.k + bk);
    r.d = q8_scale(p.wscale, brow * (p.k / 32) + k0 / 32);
  } else {
    r.q = make_uint2(0, 0);
    r.d = 0.0f;
  }
}

__device__ __forceinline__ void q8_simt_store(float* As, float* Bs, const Q8SimtRegs& r) {
  constexpr int LDS = Q8SimtTile::LDS;
#pragma unroll
  for (int i = 0; i < 2; ++i) {
    const int c = threadIdx.x + i * kGemmThreads;
    const int row = c / 8, kq = (c % 8) * 4;
    As[(kq + 0) * LDS + row] = r.a[i].x;
    As[(kq + 1) * LDS + row] = r.a[i].y;
    As[(kq + 2) * LDS + row] = r.a[i].z;
    As[(kq + 3) * LDS + row] = r.a[i].w;
  }
  int8_t q[8];
  memcpy(q, &r.q, 8);
  const int row = threadIdx.x / 4, kq = (threadIdx.x % 4) * 8;
#pragma unroll
  for (int e = 0; e < 8; ++e) Bs[(kq + e) * LDS + row] = r.d * float(q[e]);  // exact: 11 x 8 significant bits
}

__global__ void __launch_bounds__(kGemmThreads) gemm_q8_simt_kernel(GemmQ8Params<float> p, bool a_vec) {
  constexpr int BM = Q8SimtTile::BM, BN = Q8SimtTile::BN, BK = Q8SimtTile::BK, LDS = Q8SimtTile::LDS;
  constexpr int TM = Q8SimtTile::TM, TN = Q8SimtTile::TN;
  EXTERN_SHARED(float, smem);
  float* As = smem;             // [BK][LDS] x tile, K-major
  float* Bs = smem + BK * LDS;  // [BK][LDS] dequantized W tile, K-major

  const int tx = threadIdx.x % (BN / TN), ty = threadIdx.x / (BN / TN);
  const int64_t m0 = int64_t(blockIdx.x) * BM, n0 = int64_t(blockIdx.y) * BN;
  const int64_t ktiles = p.k / BK;

  float acc[TM][TN];
#pragma unroll
  for (int i = 0; i < TM; ++i) {
#pragma unroll
    for (int j = 0; j < TN; ++j) acc[i][j] = 0.0f;
  }

  Q8SimtRegs r;
  q8_simt_load(r, p, m0, n0, 0, a_vec);
  for (int64_t kt = 0; kt < ktiles; ++kt) {
    q8_simt_store(As, Bs, r);
    __syncthreads();
    if (kt + 1 < ktiles) q8_simt_load(r, p, m0, n0, (kt + 1) * BK, a_vec);  // in flight during the math
#pragma unroll 8
    for (int kk = 0; kk < BK; ++kk) {
      const float4 a = *reinterpret_cast<const float4*>(As + kk * LDS + ty * TM);
      const float4 b = *reinterpret_cast<const float4*>(Bs + kk * LDS + tx * TN);
      const float av[TM] = {a.x, a.y, a.z, a.w}, bv[TN] = {b.x, b.y, b.z, b.w};
#pragma unroll
      for (int i = 0; i < TM; ++i) {
#pragma unroll
        for (int j = 0; j < TN; ++j) acc[i][j] += av[i] * bv[j];
      }
    }
    __syncthreads();  // the tile is read by all before the next store overwrites it
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

inline void gemm_q8_simt_launch(const GemmQ8Params<float>& p, eet::Stream stream) {
  const bool a_vec = p.ldx % 4 == 0 && aligned16(p.x);
  const int64_t mt = ceil_div(p.m, Q8SimtTile::BM), nt = ceil_div(p.n, Q8SimtTile::BN);
  if (nt > 65535) eet::throw_error(eet::ErrorCode::Unsupported, "gemm_q8: n too large for the tiled grid");
  launch(gemm_q8_simt_kernel, dim3(unsigned(mt), unsigned(nt)), dim3(kGemmThreads), Q8SimtTile::SMEM, stream, p, a_vec);
}

// ---- entry ----------------------------------------------------------------------------------------------------------

template <typename T>
void gemm_q8_select(const eet::GemmQ8Args& a, eet::Stream stream) {
  const GemmQ8Params<T> p = gemm_q8_params<T>(a);
  if (a.m <= kDecodeMaxM<T> || a.xform.kind != eet::GemmXForm::None) {  // prologues: decode kernels only
    gemm_q8_decode(p, stream);
  } else if constexpr (std::is_same<T, float>::value) {
    gemm_q8_simt_launch(p, stream);
  } else {
    gemm_q8_mma_launch(p, stream);
  }
}

void op_gemm_q8(const eet::GemmQ8Args& a, eet::Stream stream) {
  if (a.m == 0) return;
  EET_DISPATCH_FLOAT(a.dtype, T, gemm_q8_select<T>(a, stream));
}

}  // namespace EET_KNS

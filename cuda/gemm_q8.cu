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
//   M > 64, f16 / bf16   gemm_q8_mma_kernel<T>: tensor cores (mma.m16n8k16 via cuda/mma.cuh), block tile
//                        64 x 128 x 32 (BK = one Q8_0 block), 8 warps as 2 (M) x 4 (N), each warp 32 x 32. Each
//                        W tile is converted int8 -> T (exact) into shared memory next to its 128 scales; a
//                        K tile's products go to fresh fp32 fragments that are scaled per column and added to
//                        the accumulators. Tiles go global -> registers -> shared, double-buffered.
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
#include "mma.cuh"

namespace EET_KNS {

// ---- tiled GEMM on tensor cores: M > 64, f16 / bf16 ---------------------------------------------------------------

struct Q8MmaTile {
  static constexpr int BM = 64, BN = 128, BK = 32;
  static constexpr int WARPS_M = 2, WARPS_N = 4;
  static constexpr int WM = BM / WARPS_M, WN = BN / WARPS_N;  // one warp's tile
  static constexpr int MT = WM / 16, NT = WN / 8;             // m16n8k16 tiles per warp
  static constexpr int LDS = BK / 2 + 4;                      // shared row stride in 32-bit words (pairs of T)
  // Per stage: A [BM][LDS] words, B [BN][LDS] words, B scales [BN] floats.
  static constexpr int STAGE_WORDS = (BM + BN) * LDS + BN;
  static constexpr size_t SMEM = size_t(2) * STAGE_WORDS * 4;
  static_assert(WARPS_M * WARPS_N * 32 == kGemmThreads, "8 warps");
  static_assert(WM % 16 == 0 && WN % 8 == 0 && BK == 32, "whole mma tiles; one Q8_0 block per K tile");
  static_assert(BM * BK / 8 == kGemmThreads, "one 8-element chunk of x per thread and tile");
  static_assert(BN * BK / 16 == kGemmThreads, "one 16-byte chunk of W per thread and tile");
  // Fragment reads hit word (row * LDS + t) for rows g = 0..7, t = 0..3: LDS = 20 puts them in 32 distinct banks.
  static_assert(LDS % 4 == 0, "16-byte aligned rows");
};

// One thread's share of a K tile in registers: 8 x values (packed pairs), 16 q of one W row and its scale.
struct Q8MmaRegs {
  uint4 a;
  uint4 q;
  float d;
};

template <typename T>
__device__ __forceinline__ void q8_mma_load(Q8MmaRegs& r, const GemmQ8Params<T>& p, int64_t m0, int64_t n0, int64_t k0,
                                            bool a_vec) {
  const int64_t arow = m0 + threadIdx.x / 4, ak = k0 + (threadIdx.x % 4) * 8;
  if (arow < p.m && a_vec) {
    r.a = *reinterpret_cast<const uint4*>(p.x + arow * p.ldx + ak);
  } else {
    uint32_t wd[4] = {0, 0, 0, 0};
    if (arow < p.m) {
#pragma unroll
      for (int e = 0; e < 8; ++e) wd[e / 2] |= half_bits(p.x[arow * p.ldx + ak + e]) << (16 * (e & 1));
    }
    r.a = make_uint4(wd[0], wd[1], wd[2], wd[3]);
  }
  const int64_t brow = n0 + threadIdx.x / 2, bk = k0 + (threadIdx.x % 2) * 16;
  if (brow < p.n) {
    r.q = *reinterpret_cast<const uint4*>(p.wq + brow * p.k + bk);
    r.d = q8_scale(p.wscale, brow * (p.k / 32) + k0 / 32);
  } else {
    r.q = make_uint4(0, 0, 0, 0);
    r.d = 0.0f;
  }
}

// Writes the registers into one stage: x as is, q converted to T (exact for |q| <= 128), the row's scale.
template <typename T>
__device__ __forceinline__ void q8_mma_store(uint32_t* stage, const Q8MmaRegs& r) {
  using Tile = Q8MmaTile;
  constexpr int LDS = Tile::LDS;
  uint32_t* As = stage;
  uint32_t* Bs = stage + Tile::BM * LDS;
  float* Ss = reinterpret_cast<float*>(stage + (Tile::BM + Tile::BN) * LDS);
  *reinterpret_cast<uint4*>(As + (threadIdx.x / 4) * LDS + (threadIdx.x % 4) * 4) = r.a;
  int8_t q[16];
  memcpy(q, &r.q, 16);
  uint32_t wd[8];
#pragma unroll
  for (int i = 0; i < 8; ++i) {
    wd[i] = half_bits(from_f32<T>(float(q[2 * i]))) | (half_bits(from_f32<T>(float(q[2 * i + 1]))) << 16);
  }
  uint32_t* dst = Bs + (threadIdx.x / 2) * LDS + (threadIdx.x % 2) * 8;
  *reinterpret_cast<uint4*>(dst) = make_uint4(wd[0], wd[1], wd[2], wd[3]);
  *reinterpret_cast<uint4*>(dst + 4) = make_uint4(wd[4], wd[5], wd[6], wd[7]);
  if (threadIdx.x % 2 == 0) Ss[threadIdx.x / 2] = r.d;
}

template <typename T>
__global__ void __launch_bounds__(kGemmThreads) gemm_q8_mma_kernel(GemmQ8Params<T> p, bool a_vec) {
  using Tile = Q8MmaTile;
  constexpr int BM = Tile::BM, BN = Tile::BN, BK = Tile::BK, LDS = Tile::LDS, MT = Tile::MT, NT = Tile::NT;
  EXTERN_SHARED(uint32_t, smem);  // [2][STAGE_WORDS]

  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const int g = lane >> 2, t = lane & 3;
  const int wm = (warp / Tile::WARPS_N) * Tile::WM, wn = (warp % Tile::WARPS_N) * Tile::WN;
  const int64_t m0 = int64_t(blockIdx.x) * BM, n0 = int64_t(blockIdx.y) * BN;
  const int64_t ktiles = p.k / BK;

  float acc[MT][NT][4];
#pragma unroll
  for (int i = 0; i < MT; ++i) {
#pragma unroll
    for (int j = 0; j < NT; ++j) {
#pragma unroll
      for (int e = 0; e < 4; ++e) acc[i][j][e] = 0.0f;
    }
  }

  Q8MmaRegs r;
  q8_mma_load(r, p, m0, n0, 0, a_vec);
  q8_mma_store<T>(smem, r);
  __syncthreads();

  for (int64_t kt = 0; kt < ktiles; ++kt) {
    const int stage = int(kt & 1);
    const bool more = kt + 1 < ktiles;
    if (more) q8_mma_load(r, p, m0, n0, (kt + 1) * BK, a_vec);  // in flight during this tile's math
    const uint32_t* a_s = smem + stage * Tile::STAGE_WORDS;
    const uint32_t* b_s = a_s + BM * LDS;
    const float* s_s = reinterpret_cast<const float*>(a_s + (BM + BN) * LDS);

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
#pragma unroll
      for (int i = 0; i < MT; ++i) {
        const uint32_t* pa = a_s + (wm + i * 16 + g) * LDS + ks * 8 + t;
        af[i][0] = pa[0];            // row g,   k 2t..2t+1
        af[i][1] = pa[8 * LDS];      // row g+8, k 2t..2t+1
        af[i][2] = pa[4];            // row g,   k 2t+8..2t+9
        af[i][3] = pa[8 * LDS + 4];  // row g+8, k 2t+8..2t+9
      }
#pragma unroll
      for (int j = 0; j < NT; ++j) {
        const uint32_t* pb = b_s + (wn + j * 8 + g) * LDS + ks * 8 + t;
        bf[j][0] = pb[0];  // k 2t..2t+1,   column g
        bf[j][1] = pb[4];  // k 2t+8..2t+9, column g
      }
#pragma unroll
      for (int i = 0; i < MT; ++i) {
#pragma unroll
        for (int j = 0; j < NT; ++j) mma_m16n8k16<T>(part[i][j], af[i], bf[j]);
      }
    }
#pragma unroll
    for (int j = 0; j < NT; ++j) {
      const float d0 = s_s[wn + j * 8 + 2 * t], d1 = s_s[wn + j * 8 + 2 * t + 1];
#pragma unroll
      for (int i = 0; i < MT; ++i) {
        acc[i][j][0] += d0 * part[i][j][0];
        acc[i][j][1] += d1 * part[i][j][1];
        acc[i][j][2] += d0 * part[i][j][2];
        acc[i][j][3] += d1 * part[i][j][3];
      }
    }
    // The other stage was last read in iteration kt-1, which ended with a barrier.
    if (more) q8_mma_store<T>(smem + (stage ^ 1) * Tile::STAGE_WORDS, r);
    __syncthreads();
  }

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

template <typename T>
void gemm_q8_mma_launch(const GemmQ8Params<T>& p, eet::Stream stream) {
  using Tile = Q8MmaTile;
  const bool a_vec = p.ldx % 8 == 0 && aligned16(p.x);
  const int64_t mt = ceil_div(p.m, Tile::BM), nt = ceil_div(p.n, Tile::BN);
  if (nt > 65535) eet::throw_error(eet::ErrorCode::Unsupported, "gemm_q8: n too large for the tiled grid");
  launch(gemm_q8_mma_kernel<T>, dim3(unsigned(mt), unsigned(nt)), dim3(kGemmThreads), Tile::SMEM, stream, p, a_vec);
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

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
//   M > 64, f16 / bf16      gemm_mma_kernel<T, BM>: tensor cores (mma.m16n8k16 via cuda/mma.cuh), block tile
//                           BM x 128 x 32 (BM = 128, or 64 when 128-row tiles would leave the GPU under-filled),
//                           8 warps as 2 (M) x 4 (N), each warp (BM/2) x 32. Tiles go global -> registers ->
//                           shared memory, double-buffered (the next tile's global loads are in flight while the
//                           current one is multiplied); rows padded so fragment reads are bank-conflict free.
//   M > 16, f32             gemm_simt_kernel: 64 x 64 x 16 tiles, 256 threads, 4 x 4 outputs per thread in
//                           registers, same double-buffered staging (tiles stored K-major in shared memory).
// Edges (M, N, K not multiples of the tiles) are zero-filled on load and masked on store. Block sizes are fixed
// (256 threads) for every variant.
#include <cstring>

#include "common.cuh"
#include "gemm_common.cuh"
#include "gemm_epilogue.cuh"
#include "mma.cuh"

namespace EET_KNS {

// ---- tiled GEMM on tensor cores: M > 64, f16 / bf16 ---------------------------------------------------------------

template <int BM_>
struct MmaTile {
  static constexpr int BM = BM_, BN = 128, BK = 32;
  static constexpr int WARPS_M = 2, WARPS_N = 4;
  static constexpr int WM = BM / WARPS_M, WN = BN / WARPS_N;  // one warp's tile
  static constexpr int MT = WM / 16, NT = WN / 8;             // m16n8k16 tiles per warp
  static constexpr int LDS = BK / 2 + 4;                      // shared row stride in 32-bit words (pairs of T)
  static constexpr int A_CHUNKS = BM * BK / 8 / kGemmThreads; // 16-byte chunks per thread and tile
  static constexpr int B_CHUNKS = BN * BK / 8 / kGemmThreads;
  static constexpr size_t SMEM = size_t(2) * (BM + BN) * LDS * 4;  // two stages of A and B
  static_assert(WARPS_M * WARPS_N * 32 == kGemmThreads, "8 warps");
  static_assert(WM % 16 == 0 && WN % 8 == 0 && BK % 16 == 0, "whole mma tiles");
  static_assert(A_CHUNKS >= 1 && B_CHUNKS >= 1 && BM * BK % (8 * kGemmThreads) == 0, "whole chunks per thread");
  // Fragment reads hit word (row * LDS + t) for rows g = 0..7, t = 0..3: LDS = 20 puts them in 32 distinct banks.
  static_assert(LDS % 4 == 0, "16-byte aligned rows");
};

// Reads chunk i of this thread from a (nrows, K) matrix with row stride ld: rows r0.., K columns k0..k0+31, 8
// elements per chunk, packed in pairs; zeros outside rows < nrows, columns < K.
template <typename T, int CHUNKS>
__device__ __forceinline__ void mma_load_chunks(uint4 (&r)[CHUNKS], const T* src, int64_t ld, int64_t r0, int64_t nrows,
                                                int64_t k0, int64_t K, bool vec) {
#pragma unroll
  for (int i = 0; i < CHUNKS; ++i) {
    const int c = threadIdx.x + i * kGemmThreads;
    const int64_t row = r0 + c / 4, kc = k0 + (c % 4) * 8;
    if (row < nrows && vec && kc + 8 <= K) {
      r[i] = *reinterpret_cast<const uint4*>(src + row * ld + kc);
    } else {
      uint32_t wd[4] = {0, 0, 0, 0};
      if (row < nrows) {
#pragma unroll
        for (int e = 0; e < 8; ++e) {
          if (kc + e < K) wd[e / 2] |= half_bits(src[row * ld + kc + e]) << (16 * (e & 1));
        }
      }
      r[i] = make_uint4(wd[0], wd[1], wd[2], wd[3]);
    }
  }
}

template <int CHUNKS, int LDS>
__device__ __forceinline__ void mma_store_chunks(uint32_t* s, const uint4 (&r)[CHUNKS]) {
#pragma unroll
  for (int i = 0; i < CHUNKS; ++i) {
    const int c = threadIdx.x + i * kGemmThreads;
    *reinterpret_cast<uint4*>(s + (c / 4) * LDS + (c % 4) * 4) = r[i];
  }
}

template <typename T, int BM>
__global__ void __launch_bounds__(kGemmThreads) gemm_mma_kernel(GemmParams<T> p, bool a_vec, bool b_vec) {
  using Tile = MmaTile<BM>;
  constexpr int BN = Tile::BN, BK = Tile::BK, LDS = Tile::LDS, MT = Tile::MT, NT = Tile::NT;
  EXTERN_SHARED(uint32_t, smem);
  uint32_t* As = smem;                   // [2][BM][LDS]
  uint32_t* Bs = smem + 2 * BM * LDS;    // [2][BN][LDS]

  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const int g = lane >> 2, t = lane & 3;
  const int wm = (warp / Tile::WARPS_N) * Tile::WM, wn = (warp % Tile::WARPS_N) * Tile::WN;
  const int64_t m0 = int64_t(blockIdx.x) * BM, n0 = int64_t(blockIdx.y) * BN;
  const int64_t ktiles = ceil_div(p.k, BK);

  float acc[MT][NT][4];
#pragma unroll
  for (int i = 0; i < MT; ++i) {
#pragma unroll
    for (int j = 0; j < NT; ++j) {
#pragma unroll
      for (int e = 0; e < 4; ++e) acc[i][j][e] = 0.0f;
    }
  }

  uint4 ra[Tile::A_CHUNKS], rb[Tile::B_CHUNKS];
  mma_load_chunks(ra, p.x, p.ldx, m0, p.m, 0, p.k, a_vec);
  mma_load_chunks(rb, p.w, p.k, n0, p.n, 0, p.k, b_vec);
  mma_store_chunks<Tile::A_CHUNKS, LDS>(As, ra);
  mma_store_chunks<Tile::B_CHUNKS, LDS>(Bs, rb);
  __syncthreads();

  for (int64_t kt = 0; kt < ktiles; ++kt) {
    const int stage = int(kt & 1);
    const bool more = kt + 1 < ktiles;
    if (more) {  // next tile's global loads in flight during this tile's math
      mma_load_chunks(ra, p.x, p.ldx, m0, p.m, (kt + 1) * BK, p.k, a_vec);
      mma_load_chunks(rb, p.w, p.k, n0, p.n, (kt + 1) * BK, p.k, b_vec);
    }
    const uint32_t* a_s = As + stage * BM * LDS;
    const uint32_t* b_s = Bs + stage * BN * LDS;
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
        for (int j = 0; j < NT; ++j) mma_m16n8k16<T>(acc[i][j], af[i], bf[j]);
      }
    }
    if (more) {  // the other stage was last read in iteration kt-1, which ended with a barrier
      mma_store_chunks<Tile::A_CHUNKS, LDS>(As + (stage ^ 1) * BM * LDS, ra);
      mma_store_chunks<Tile::B_CHUNKS, LDS>(Bs + (stage ^ 1) * BN * LDS, rb);
    }
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

template <typename T, int BM>
void gemm_mma_launch_tile(const GemmParams<T>& p, eet::Stream stream) {
  using Tile = MmaTile<BM>;
  const bool a_vec = p.ldx % 8 == 0 && aligned16(p.x);
  const bool b_vec = p.k % 8 == 0 && aligned16(p.w);
  const int64_t mt = ceil_div(p.m, BM), nt = ceil_div(p.n, Tile::BN);
  if (nt > 65535) eet::throw_error(eet::ErrorCode::Unsupported, "gemm: n too large for the tiled grid");
  launch(gemm_mma_kernel<T, BM>, dim3(unsigned(mt), unsigned(nt)), dim3(kGemmThreads), Tile::SMEM, stream, p, a_vec,
         b_vec);
}

template <typename T>
void gemm_mma_launch(const GemmParams<T>& p, eet::Stream stream) {
  // 128-row tiles when they alone give about one block per SM; otherwise 64-row tiles, twice the blocks.
  if (ceil_div(p.m, 128) * ceil_div(p.n, 128) >= sm_count()) {
    gemm_mma_launch_tile<T, 128>(p, stream);
  } else {
    gemm_mma_launch_tile<T, 64>(p, stream);
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

// GEMM for decode batches (M <= kDecodeMaxM, cuda/gemm_common.cuh): y = x · Wᵀ (+ bias) (+ residual), fp32
// accumulation. The op's entry, its shapes and the M > kDecodeMaxM kernels are in cuda/gemm.cu.
// At these shapes the weights are the whole cost: every kernel here reads each weight exactly once per call, with
// 16-byte loads, and spreads the matrix over the whole GPU (grids sized from the device's SM count, sm_count()).
//   gemv_kernel<T, MAXM>      M = 1 in every dtype, and f32 with M <= 16 (MAXM = 1 or 16). A warp owns kGemvCols
//                             output columns and streams their W rows, 16 bytes per lane, row and pass, two passes
//                             in flight; each W vector meets the M rows of x (16-byte loads, L1/L2-resident, reused
//                             across the warp's columns). K is cut into slices over the warps of a block (ksplit =
//                             1..8, added through shared memory) and then over blocks (split-K, cuda/splitk.cuh)
//                             until the grid holds about kGemvWarpsPerSm warps per SM. Element loads when K, ldx or
//                             a pointer rules the 16-byte path out.
//   skinny_mma_kernel<T, NT>  f16 / bf16 with M = 2..64: tensor cores, the weights as the mma's A side and the
//                             activations as its B side, fragments loaded straight from global memory; split over K
//                             until the GPU is full (layout and K permutation: cuda/skinny.cuh).
// Both take the input prologue (ops.h GemmPrologue: RMSNorm or SwiGLU computed as x is loaded; cuda/gemm_xform.cuh)
// as a template argument XF.
// Block size 256 threads (kGemmThreads) for both.
#include <cstring>
#include <type_traits>

#include "common.cuh"
#include "gemm_common.cuh"
#include "gemm_epilogue.cuh"
#include "gemm_xform.cuh"
#include "skinny.cuh"
#include "splitk.cuh"

namespace EET_KNS {

// ---- GEMV: M = 1, and f32 M <= 16 --------------------------------------------------------------------------------

constexpr int kGemvCols = 4;          // output columns per warp: each x vector loaded is used kGemvCols times
constexpr int kGemvWarpsPerSm = 32;   // grid target (half of an sm_90 SM's 64 resident warps)

// Block: 8 warps = (8 / ksplit) column groups x ksplit K slices. Group c of block b owns columns
// [(b * groups + c) * kGemvCols, +kGemvCols); block (b, s) covers K [s * k_split, (s + 1) * k_split), and in it
// slice j of a group takes vectors (elements, on the element path) j*32 + lane, stepping ksplit*32.
template <typename T, int MAXM, XForm XF>
__global__ void __launch_bounds__(kGemmThreads) gemv_kernel(GemmParams<T> p, int ksplit, int splits, int64_t k_split,
                                                            bool vec) {
  constexpr int VEC = 16 / sizeof(T);
  constexpr int COLS = kGemvCols;
  constexpr int WARPS = kGemmThreads / 32;
  __shared__ float partial[WARPS][MAXM * COLS];  // one warp's sums, [m * COLS + c]
  __shared__ float rstd_s[MAXM];                 // RmsNorm prologue: the rows' rstd

  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const int groups = WARPS / ksplit;
  const int group = warp / ksplit, slice = warp % ksplit;
  const int64_t col0 = (int64_t(blockIdx.x) * groups + group) * COLS;
  const int rows = int(p.m);  // <= MAXM
  const int64_t kbeg = int64_t(blockIdx.y) * k_split, kend = kbeg + k_split < p.k ? kbeg + k_split : p.k;
  const int64_t stride = int64_t(ksplit) * 32;

  const T* wrow[COLS];  // columns past N re-read row N-1; their sums are never stored
#pragma unroll
  for (int c = 0; c < COLS; ++c) wrow[c] = p.w + (col0 + c < p.n ? col0 + c : p.n - 1) * p.k;

  xform_rows_rstd<XF>(p, rows, rstd_s);
  float rstd[MAXM];  // in registers for the loop (RmsNorm; unused otherwise)
#pragma unroll
  for (int m = 0; m < MAXM; ++m) rstd[m] = XF == XForm::RmsNorm && m < rows ? rstd_s[m] : 0.0f;

  float acc[MAXM][COLS];
#pragma unroll
  for (int m = 0; m < MAXM; ++m) {
#pragma unroll
    for (int c = 0; c < COLS; ++c) acc[m][c] = 0.0f;
  }

  if (vec) {  // k_split is a multiple of VEC: slices start on vectors
    const int64_t vend = kend / VEC;
    for (int64_t v = kbeg / VEC + slice * 32 + lane; v < vend; v += 2 * stride) {
      const bool second = v + stride < vend;
      uint4 wr[2][COLS];  // both passes' W loads are issued before any math
#pragma unroll
      for (int c = 0; c < COLS; ++c) {
        wr[0][c] = *reinterpret_cast<const uint4*>(wrow[c] + v * VEC);
        wr[1][c] = second ? *reinterpret_cast<const uint4*>(wrow[c] + (v + stride) * VEC) : make_uint4(0, 0, 0, 0);
      }
#pragma unroll
      for (int u = 0; u < 2; ++u) {
        if (u == 1 && !second) break;
        const int64_t vu = v + u * stride;
        float wv[COLS][VEC];
#pragma unroll
        for (int c = 0; c < COLS; ++c) unpack16_f32<T>(wr[u][c], wv[c]);
#pragma unroll
        for (int m = 0; m < MAXM; ++m) {
          if (m < rows) {
            float xv[VEC];
            xform_load<XF, VEC>(p, m, vu * VEC, rstd[m], true, xv);
#pragma unroll
            for (int c = 0; c < COLS; ++c) {
#pragma unroll
              for (int i = 0; i < VEC; ++i) acc[m][c] += xv[i] * wv[c][i];
            }
          }
        }
      }
    }
  } else {
    for (int64_t kk = kbeg + slice * 32 + lane; kk < kend; kk += stride) {
      float wv[COLS];
#pragma unroll
      for (int c = 0; c < COLS; ++c) wv[c] = to_f32(wrow[c][kk]);
#pragma unroll
      for (int m = 0; m < MAXM; ++m) {
        if (m < rows) {
          float xv[1];
          xform_load<XF, 1>(p, m, kk, rstd[m], false, xv);
#pragma unroll
          for (int c = 0; c < COLS; ++c) acc[m][c] += xv[0] * wv[c];
        }
      }
    }
  }

  gemv_finish<MAXM, COLS, WARPS>(p, acc, partial, rows, ksplit, splits);
}

template <typename T, XForm XF>
void gemv_launch_xf(const GemmParams<T>& p, const GemvGrid& gg, bool vec, eet::Stream stream) {
  if constexpr (std::is_same<T, float>::value) {
    if (p.m > 1) {
      launch(gemv_kernel<T, 16, XF>, gg.grid, dim3(kGemmThreads), 0, stream, p, gg.ksplit, gg.splits, gg.k_split, vec);
      return;
    }
  }
  launch(gemv_kernel<T, 1, XF>, gg.grid, dim3(kGemmThreads), 0, stream, p, gg.ksplit, gg.splits, gg.k_split, vec);
}

template <typename T>
void gemv_launch(const GemmParams<T>& p, eet::Stream stream) {
  constexpr int VEC = 16 / sizeof(T);
  // The gain joins the 16-byte path's condition (the SwiGlu up half, at x + K, is aligned when x is and K a
  // multiple of VEC). The path decides the order of the sums, so a fused call equals its unfused pair bit for bit
  // when both take the same one: aligned rows, and ldx, K multiples of VEC.
  const bool vec = p.k % VEC == 0 && p.ldx % VEC == 0 && aligned16(p.x) && aligned16(p.w) &&
                   (p.xform != XForm::RmsNorm || aligned16(p.gain));
  // A warp's loop iteration takes 2 passes of 32 lanes x VEC elements (one pass of 32 on the element path).
  const GemvGrid gg = gemv_grid(p.m, p.n, p.k, vec ? 64 * VEC : 32, kGemvCols, kGemmThreads / 32, kGemvWarpsPerSm);
  EET_DISPATCH_XFORM(p.xform, XF, gemv_launch_xf<T, XF>(p, gg, vec, stream));
}

// ---- skinny GEMM on tensor cores: f16 / bf16, M = 2..64 (cuda/skinny.cuh) ---------------------------------------

constexpr int kSkinnyChunks = 4;                  // 32-wide K chunks per loop iteration
constexpr int kSkinnyStepK = 32 * kSkinnyChunks;  // K per loop iteration

// Block (b, s): W rows [b * 128, +128), 16 per warp, over K [s * k_split, (s + 1) * k_split) (k_split a multiple
// of kSkinnyStepK). Lane (g, t) reads W rows g and g+8 of its warp and x rows 8j + g at k = 8t.. of every chunk.
// With a prologue (XF), x comes from the block's stage (cuda/gemm_xform.cuh), filled once per iteration.
template <typename T, int NT, XForm XF>
__global__ void __launch_bounds__(kGemmThreads) skinny_mma_kernel(GemmParams<T> p, int splits, int64_t k_split,
                                                                  bool w_vec, bool x_vec) {
  constexpr bool kStaged = XF != XForm::None;
  using Stage = std::conditional_t<kStaged, XStage<NT, kSkinnyStepK>, XStageNone>;
  __shared__ Stage stage;
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const int g = lane >> 2, t = lane & 3;
  const int64_t n0 = int64_t(blockIdx.x) * kSkinnyBlockRows + warp * kSkinnyWarpRows;
  const bool live_a = n0 + g < p.n, live_b = n0 + g + 8 < p.n;
  const T* wa = p.w + (live_a ? n0 + g : 0) * p.k;
  const T* wb = p.w + (live_b ? n0 + g + 8 : 0) * p.k;
  const int64_t kbeg = int64_t(blockIdx.y) * k_split, kend = kbeg + k_split < p.k ? kbeg + k_split : p.k;

  float acc[NT][4];
#pragma unroll
  for (int j = 0; j < NT; ++j) {
#pragma unroll
    for (int e = 0; e < 4; ++e) acc[j][e] = 0.0f;
  }
  if constexpr (kStaged) xform_rows_rstd<XF>(p, int(p.m), stage.rstd);

  // Warps past N skip the loads and the math, but not the stage's barriers (nor the epilogue's).
  if (kStaged || n0 < p.n) {
    for (int64_t kb = kbeg; kb < kend; kb += kSkinnyStepK) {
      uint4 ra[kSkinnyChunks], rb[kSkinnyChunks];  // the iteration's W loads go out before any math
#pragma unroll
      for (int c = 0; c < kSkinnyChunks; ++c) {
        ra[c] = skinny_load8(wa, kb + 32 * c + 8 * t, kend, live_a, w_vec);
        rb[c] = skinny_load8(wb, kb + 32 * c + 8 * t, kend, live_b, w_vec);
      }
      if constexpr (kStaged) {
        __syncthreads();  // every warp is done with the previous iteration's stage
        xform_stage<XF>(p, stage, kb, kend, x_vec);
        __syncthreads();
      }
      if (n0 >= p.n) continue;  // warp-uniform
#pragma unroll
      for (int c = 0; c < kSkinnyChunks; ++c) {
#pragma unroll
        for (int j = 0; j < NT; ++j) {
          if (8 * j < p.m) {  // warp-uniform: 8-row groups wholly past M are skipped
            const int64_t m = 8 * j + g;
            uint4 xv;
            if constexpr (kStaged) {
              xv = xstage_load8(stage, m, 32 * c + 8 * t);
            } else {
              xv = skinny_load8(p.x + (m < p.m ? m : 0) * p.ldx, kb + 32 * c + 8 * t, kend, m < p.m, x_vec);
            }
            skinny_step<T>(acc[j], ra[c], rb[c], xv);
          }
        }
      }
    }
  }
  skinny_finish<NT>(p, acc, n0, splits);
}

template <typename T, int NT>
void skinny_launch_nt(const GemmParams<T>& p, const SkinnyGrid& sg, bool w_vec, bool x_vec, eet::Stream stream) {
  EET_DISPATCH_XFORM(p.xform, XF, launch(skinny_mma_kernel<T, NT, XF>, sg.grid, dim3(kGemmThreads), 0, stream, p,
                                         sg.splits, sg.k_split, w_vec, x_vec));
}

template <typename T>
void skinny_launch(const GemmParams<T>& p, eet::Stream stream) {
  const bool w_vec = p.k % 8 == 0 && aligned16(p.w);
  // x's loads only (not the order of the sums): the gain and, for SwiGlu, the up half at x + K must be aligned too.
  const bool x_vec = p.ldx % 8 == 0 && aligned16(p.x) && (p.xform != XForm::RmsNorm || aligned16(p.gain)) &&
                     (p.xform != XForm::SwiGlu || p.k % 8 == 0);
  // Slices of at least two iterations (256 of K: 64 KiB of f16 weights per block).
  const SkinnyGrid sg = skinny_grid(p.m, p.n, p.k, kSkinnyStepK, 2);
  skinny_dispatch_nt(p.m, [&](auto nt) { skinny_launch_nt<T, decltype(nt)::value>(p, sg, w_vec, x_vec, stream); });
}

// ---- entry (from cuda/gemm.cu) -------------------------------------------------------------------------------------

// M <= 16, or a prologue's 17..64 rows, 16 at a time.
void gemm_decode(const GemmParams<float>& p, eet::Stream stream) {
  for_16_row_slices(p, [&](const GemmParams<float>& c) { gemv_launch(c, stream); });
}

template <typename T>
void gemm_decode_16bit(const GemmParams<T>& p, eet::Stream stream) {
  if (p.m == 1) {
    gemv_launch(p, stream);
  } else {
    skinny_launch(p, stream);
  }
}

void gemm_decode(const GemmParams<__half>& p, eet::Stream stream) { gemm_decode_16bit(p, stream); }
void gemm_decode(const GemmParams<__nv_bfloat16>& p, eet::Stream stream) { gemm_decode_16bit(p, stream); }

}  // namespace EET_KNS

// Weight-only int8 (GGUF Q8_0) GEMM for decode batches (M <= kDecodeMaxM, cuda/gemm_common.cuh):
// y = x · dequant(W)ᵀ (+ bias) (+ residual), fp32 accumulation. The op's entry, the weight layout and the
// M > kDecodeMaxM kernels are in cuda/gemm_q8.cu.
// Every weight is read exactly once per call with 16-byte loads, grids are sized from the device's SM count, and
// each Q8_0 block's scale multiplies that block's integer-weight dot product once (W is never rounded to a 16-bit
// type: q is exact in every float type).
//   gemv_q8_kernel<T, MAXM>      M = 1 in every dtype, and f32 with M <= 16 (MAXM = 1 or 16). A warp owns kQ8Cols
//                                output columns; each lane reads 16 int8 of each column's W row per pass (half a
//                                Q8_0 block; a warp streams 512 contiguous bytes of a row), two passes in flight,
//                                converts them in registers and multiplies them with 16 x values per row of x
//                                (16-byte loads when ldx and x allow, element loads otherwise). K slices over the
//                                warps of a block and over blocks as in cuda/gemv.cu (cuda/splitk.cuh).
//   skinny_q8_mma_kernel<T, NT>  f16 / bf16 with M = 2..64: the tensor-core skinny GEMM of cuda/skinny.cuh with the
//                                int8 weights widened to T in registers. A lane loads 16 int8 of a row (k = 16t.. of
//                                a 64-wide chunk, two Q8_0 blocks); one exchange with lane t ^ 2 gives every lane 8
//                                int8 of each block (q8_regroup), so each mma step stays inside one block and its
//                                fp32 result is scaled per W row before it is added (the scales differ by row and
//                                block, so they cannot go into the operands without rounding W).
// Both take the input prologue (ops.h GemmPrologue: RMSNorm or SwiGLU computed as x is loaded; cuda/gemm_xform.cuh)
// as a template argument XF.
// Block size 256 threads (kGemmThreads) for both.
#include <cstring>
#include <type_traits>

#include "common.cuh"
#include "gemm_common.cuh"
#include "gemm_epilogue.cuh"
#include "gemm_xform.cuh"
#include "reduce.cuh"
#include "skinny.cuh"
#include "splitk.cuh"

namespace EET_KNS {

// ---- GEMV: M = 1, and f32 M <= 16 --------------------------------------------------------------------------------

constexpr int kQ8Cols = 4;              // output columns per warp
constexpr int kQ8GemvWarpsPerSm = 32;   // grid target (half of an sm_90 SM's 64 resident warps)

// 16 int8 (16 raw bytes) as fp32.
__device__ __forceinline__ void q8_unpack16(const uint4& u, float (&v)[16]) {
  int8_t b[16];
  memcpy(b, &u, 16);
#pragma unroll
  for (int i = 0; i < 16; ++i) v[i] = float(b[i]);
}

// Block: 8 warps = (8 / ksplit) column groups x ksplit K slices. Group c of block b owns columns
// [(b * groups + c) * kQ8Cols, +kQ8Cols); block (b, s) covers K [s * k_split, (s + 1) * k_split), and in it slice j
// of a group takes 16-element chunks j*32 + lane, stepping ksplit*32. Chunk v lies in Q8_0 block v / 2.
template <typename T, int MAXM, XForm XF>
__global__ void __launch_bounds__(kGemmThreads) gemv_q8_kernel(GemmQ8Params<T> p, int ksplit, int splits,
                                                               int64_t k_split, bool xvec) {
  constexpr int COLS = kQ8Cols;
  constexpr int WARPS = kGemmThreads / 32;
  __shared__ float partial[WARPS][MAXM * COLS];  // one warp's sums, [m * COLS + c]
  __shared__ float rstd_s[MAXM];                 // RmsNorm prologue: the rows' rstd

  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const int groups = WARPS / ksplit;
  const int group = warp / ksplit, slice = warp % ksplit;
  const int64_t col0 = (int64_t(blockIdx.x) * groups + group) * COLS;
  const int rows = int(p.m);  // <= MAXM
  const int64_t nblocks = p.k / 32;
  const int64_t kbeg = int64_t(blockIdx.y) * k_split, kend = kbeg + k_split < p.k ? kbeg + k_split : p.k;
  const int64_t stride = int64_t(ksplit) * 32;

  const int8_t* wrow[COLS];  // columns past N re-read row N-1; their sums are never stored
  const uint16_t* srow[COLS];
#pragma unroll
  for (int c = 0; c < COLS; ++c) {
    const int64_t n = col0 + c < p.n ? col0 + c : p.n - 1;
    wrow[c] = p.wq + n * p.k;
    srow[c] = p.wscale + n * nblocks;
  }

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

  const int64_t vend = kend / 16;
  for (int64_t v = kbeg / 16 + slice * 32 + lane; v < vend; v += 2 * stride) {
    const bool second = v + stride < vend;
    uint4 qr[2][COLS];  // both passes' W loads are issued before any math
    float d[2][COLS];
#pragma unroll
    for (int c = 0; c < COLS; ++c) {
      qr[0][c] = *reinterpret_cast<const uint4*>(wrow[c] + v * 16);
      d[0][c] = q8_scale(srow[c], v / 2);
      qr[1][c] = second ? *reinterpret_cast<const uint4*>(wrow[c] + (v + stride) * 16) : make_uint4(0, 0, 0, 0);
      d[1][c] = second ? q8_scale(srow[c], (v + stride) / 2) : 0.0f;
    }
#pragma unroll
    for (int u = 0; u < 2; ++u) {
      if (u == 1 && !second) break;
      const int64_t vu = v + u * stride;
      float wv[COLS][16];
#pragma unroll
      for (int c = 0; c < COLS; ++c) q8_unpack16(qr[u][c], wv[c]);
#pragma unroll
      for (int m = 0; m < MAXM; ++m) {
        if (m < rows) {
          float xv[16];
          xform_load<XF, 16>(p, m, vu * 16, rstd[m], xvec, xv);
#pragma unroll
          for (int c = 0; c < COLS; ++c) {
            float s = 0.0f;
#pragma unroll
            for (int i = 0; i < 16; ++i) s += xv[i] * wv[c][i];
            acc[m][c] += d[u][c] * s;
          }
        }
      }
    }
  }

  gemv_finish<MAXM, COLS, WARPS>(p, acc, partial, rows, ksplit, splits);
}

template <typename T, XForm XF>
void gemv_q8_launch_xf(const GemmQ8Params<T>& p, const GemvGrid& gg, bool xvec, eet::Stream stream) {
  if constexpr (std::is_same<T, float>::value) {
    if (p.m > 1) {
      launch(gemv_q8_kernel<T, 16, XF>, gg.grid, dim3(kGemmThreads), 0, stream, p, gg.ksplit, gg.splits, gg.k_split,
             xvec);
      return;
    }
  }
  launch(gemv_q8_kernel<T, 1, XF>, gg.grid, dim3(kGemmThreads), 0, stream, p, gg.ksplit, gg.splits, gg.k_split, xvec);
}

template <typename T>
void gemv_q8_launch(const GemmQ8Params<T>& p, eet::Stream stream) {
  // x's loads only (not the order of the sums); the gain must be aligned too (the SwiGlu up half at x + K is, K
  // being a multiple of 32).
  const bool xvec = p.ldx % (16 / sizeof(T)) == 0 && aligned16(p.x) && (p.xform != XForm::RmsNorm || aligned16(p.gain));
  // A warp's loop iteration takes 2 passes of 32 lanes x 16 int8.
  const GemvGrid gg = gemv_grid(p.m, p.n, p.k, 2 * 32 * 16, kQ8Cols, kGemmThreads / 32, kQ8GemvWarpsPerSm);
  EET_DISPATCH_XFORM(p.xform, XF, gemv_q8_launch_xf<T, XF>(p, gg, xvec, stream));
}

// ---- skinny GEMM on tensor cores: f16 / bf16, M = 2..64 (cuda/skinny.cuh) ---------------------------------------

constexpr int kQ8SkinnyChunks = 4;                    // 64-wide K chunks (two Q8_0 blocks) per loop iteration
constexpr int kQ8SkinnyStepK = 64 * kQ8SkinnyChunks;  // K per loop iteration

// 16 int8 of a row at k (16-byte aligned: rows are 32-byte aligned, k a multiple of 16); zeros past kend or for a
// row that does not exist.
__device__ __forceinline__ uint4 q8_load16(const int8_t* row, int64_t k, int64_t kend, bool live) {
  return live && k < kend ? *reinterpret_cast<const uint4*>(row + k) : make_uint4(0, 0, 0, 0);
}

// Lane t of a 4-lane group holds 16 int8 at k = 16t.. of a 64-wide chunk (q): lanes 0, 1 inside the chunk's first
// Q8_0 block, lanes 2, 3 inside the second. Lanes t and t ^ 2 trade 8 bytes, after which every lane holds 8 int8 of
// each block at the same offset: b0 = block 0 [off, off + 8), b1 = block 1 [off, off + 8), off = 0, 16, 8, 24 for
// t = 0..3. All 32 lanes must call it together.
__device__ __forceinline__ void q8_regroup(const uint4& q, int t, uint2& b0, uint2& b1) {
  const bool low = t < 2;
  const unsigned long long give = low ? (uint64_t(q.w) << 32 | q.z) : (uint64_t(q.y) << 32 | q.x);
  const unsigned long long got = __shfl_xor_sync(kFullMask, give, 2);
  const uint2 g2 = make_uint2(uint32_t(got), uint32_t(got >> 32));
  b0 = low ? make_uint2(q.x, q.y) : g2;
  b1 = low ? g2 : make_uint2(q.z, q.w);
}

// 8 int8 (two registers, in order) as 8 values of T in packed pairs: exact, |q| <= 128.
template <typename T>
__device__ __forceinline__ uint4 q8_widen8(const uint2& q) {
  int8_t b[8];
  memcpy(b, &q.x, 4);
  memcpy(b + 4, &q.y, 4);
  uint32_t w[4];
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    w[i] = half_bits(from_f32<T>(float(b[2 * i]))) | (half_bits(from_f32<T>(float(b[2 * i + 1]))) << 16);
  }
  return make_uint4(w[0], w[1], w[2], w[3]);
}

// Block (b, s): W rows [b * 128, +128), 16 per warp, over K [s * k_split, (s + 1) * k_split) (k_split a multiple
// of kQ8SkinnyStepK). After q8_regroup, lane (g, t) holds 8 k at offset off(t) of each Q8_0 block for W rows g and
// g + 8, and reads x rows 8j + g at the same k: skinny_step's mapping with off(t) in place of 8t. With a prologue
// (XF), x comes from the block's stage (cuda/gemm_xform.cuh), filled once per iteration.
template <typename T, int NT, XForm XF>
__global__ void __launch_bounds__(kGemmThreads) skinny_q8_mma_kernel(GemmQ8Params<T> p, int splits, int64_t k_split,
                                                                     bool x_vec) {
  constexpr bool kStaged = XF != XForm::None;
  using Stage = std::conditional_t<kStaged, XStage<NT, kQ8SkinnyStepK>, XStageNone>;
  __shared__ Stage stage;
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const int g = lane >> 2, t = lane & 3;
  const int off = t < 2 ? 16 * t : 16 * (t - 2) + 8;
  const int64_t n0 = int64_t(blockIdx.x) * kSkinnyBlockRows + warp * kSkinnyWarpRows;
  const int64_t nblocks = p.k / 32;
  const bool live_a = n0 + g < p.n, live_b = n0 + g + 8 < p.n;
  const int64_t row_a = live_a ? n0 + g : 0, row_b = live_b ? n0 + g + 8 : 0;
  const int8_t* wa = p.wq + row_a * p.k;
  const int8_t* wb = p.wq + row_b * p.k;
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
    for (int64_t kb = kbeg; kb < kend; kb += kQ8SkinnyStepK) {
      uint4 qa[kQ8SkinnyChunks], qb[kQ8SkinnyChunks];  // the iteration's W loads go out before any math
#pragma unroll
      for (int c = 0; c < kQ8SkinnyChunks; ++c) {
        qa[c] = q8_load16(wa, kb + 64 * c + 16 * t, kend, live_a);
        qb[c] = q8_load16(wb, kb + 64 * c + 16 * t, kend, live_b);
      }
      if constexpr (kStaged) {
        __syncthreads();  // every warp is done with the previous iteration's stage
        xform_stage<XF>(p, stage, kb, kend, x_vec);
        __syncthreads();
      }
      if (n0 >= p.n) continue;  // warp-uniform
#pragma unroll
      for (int c = 0; c < kQ8SkinnyChunks; ++c) {
        if (kb + 64 * c >= kend) break;  // warp-uniform
        uint2 a8[2], b8[2];
        q8_regroup(qa[c], t, a8[0], a8[1]);
        q8_regroup(qb[c], t, b8[0], b8[1]);
#pragma unroll
        for (int h = 0; h < 2; ++h) {
          const int64_t k0 = kb + 64 * c + 32 * h;  // the Q8_0 block's first k
          if (k0 >= kend) break;                    // warp-uniform: K is a multiple of 32
          const float da = live_a ? q8_scale(p.wscale, row_a * nblocks + k0 / 32) : 0.0f;
          const float db = live_b ? q8_scale(p.wscale, row_b * nblocks + k0 / 32) : 0.0f;
          const uint4 wa8 = q8_widen8<T>(a8[h]), wb8 = q8_widen8<T>(b8[h]);
#pragma unroll
          for (int j = 0; j < NT; ++j) {
            if (8 * j < p.m) {  // warp-uniform: 8-row groups wholly past M are skipped
              const int64_t m = 8 * j + g;
              uint4 xv;
              if constexpr (kStaged) {
                xv = xstage_load8(stage, m, k0 - kb + off);
              } else {
                xv = skinny_load8(p.x + (m < p.m ? m : 0) * p.ldx, k0 + off, kend, m < p.m, x_vec);
              }
              float part[4] = {0.0f, 0.0f, 0.0f, 0.0f};  // this block's products, before its scales
              skinny_step<T>(part, wa8, wb8, xv);
              acc[j][0] += da * part[0];
              acc[j][1] += da * part[1];
              acc[j][2] += db * part[2];
              acc[j][3] += db * part[3];
            }
          }
        }
      }
    }
  }
  skinny_finish<NT>(p, acc, n0, splits);
}

template <typename T, int NT>
void skinny_q8_launch_nt(const GemmQ8Params<T>& p, const SkinnyGrid& sg, bool x_vec, eet::Stream stream) {
  EET_DISPATCH_XFORM(p.xform, XF, launch(skinny_q8_mma_kernel<T, NT, XF>, sg.grid, dim3(kGemmThreads), 0, stream, p,
                                         sg.splits, sg.k_split, x_vec));
}

template <typename T>
void skinny_q8_launch(const GemmQ8Params<T>& p, eet::Stream stream) {
  // x's loads only: the gain must be aligned too (the SwiGlu up half at x + K is, K being a multiple of 32).
  const bool x_vec = p.ldx % 8 == 0 && aligned16(p.x) && (p.xform != XForm::RmsNorm || aligned16(p.gain));
  // Slices of at least one iteration (256 of K: 32 KiB of int8 weights per block).
  const SkinnyGrid sg = skinny_grid(p.m, p.n, p.k, kQ8SkinnyStepK, 1);
  skinny_dispatch_nt(p.m, [&](auto nt) { skinny_q8_launch_nt<T, decltype(nt)::value>(p, sg, x_vec, stream); });
}

// ---- entry (from cuda/gemm_q8.cu) ----------------------------------------------------------------------------------

// M <= 16, or a prologue's 17..64 rows, 16 at a time.
void gemm_q8_decode(const GemmQ8Params<float>& p, eet::Stream stream) {
  for_16_row_slices(p, [&](const GemmQ8Params<float>& c) { gemv_q8_launch(c, stream); });
}

template <typename T>
void gemm_q8_decode_16bit(const GemmQ8Params<T>& p, eet::Stream stream) {
  if (p.m == 1) {
    gemv_q8_launch(p, stream);
  } else {
    skinny_q8_launch(p, stream);
  }
}

void gemm_q8_decode(const GemmQ8Params<__half>& p, eet::Stream stream) { gemm_q8_decode_16bit(p, stream); }
void gemm_q8_decode(const GemmQ8Params<__nv_bfloat16>& p, eet::Stream stream) { gemm_q8_decode_16bit(p, stream); }

}  // namespace EET_KNS

// Elementwise activations on (M, N) matrices with row strides, fp32 math, one rounding to the dtype:
//   gelu_tanh: y = 0.5 h (1 + tanh(sqrt(2/pi) (h + 0.044715 h^3)))   h = x + bias (bias optional, (N))
//   gelu_erf:  y = 0.5 h (1 + erf(h / sqrt(2)))
//   silu:      y = h / (1 + exp(-h))
//   relu:      y = max(h, 0)
//   swiglu:    y = silu(x) * up       x = gate projection (M, N) stride ldx, up (M, N) stride ldu; with
//                                     x = buf, up = buf + F, ldx = ldu = 2F it reads the halves of a fused gate-up
//   geglu_tanh: y = gelu_tanh(x) * up (T5 v1.1's gated-gelu), laid out as swiglu
// The functions themselves are in act.cuh (shared with the GEMM prologue), evaluated without cancellation in the
// negative tail, so tiny outputs (h < -4) keep their relative accuracy.
// x: (M, N) row stride ldx;  y: (M, N) row stride ldy, may alias x (each element is read before it is written,
// by the same thread).
// Variants (one kernel, W elements per access; the kind is a uniform runtime branch):
//   W = 16 / sizeof(T): 16-byte accesses, when x, y, bias, up are 16-byte aligned and N, ldx, ldy, ldu are
//                       multiples of W;
//   W = 1:              element by element otherwise.
// Block policy: 256 threads; tpr threads per row (RowTiling: the power of two covering the row's accesses, at
// most 8192), so short rows share a block and a long row (decode, M = 1) spans several blocks. Grid-stride over
// rows.
#include "act.cuh"
#include "pack.cuh"

namespace EET_KNS {

constexpr int kActBlock = 256;

template <typename T, int W, int BLOCK>
__global__ void __launch_bounds__(BLOCK)
    act_kernel(eet::ActKind kind,
               const T* x,                    // (M, N) stride ldx
               const T* __restrict__ bias,    // (N) or nullptr
               const T* __restrict__ up,      // (M, N) stride ldu, gated kinds only
               T* y,                          // (M, N) stride ldy, may alias x
               int64_t m, int64_t n, int64_t ldx, int64_t ldu, int64_t ldy, int shift) {
  const int64_t g = int64_t(blockIdx.x) * BLOCK + threadIdx.x;
  const int64_t tpr = int64_t(1) << shift;
  const int64_t lane = g & (tpr - 1);
  const int64_t units = n / W;
  const int64_t row_step = (int64_t(gridDim.x) * BLOCK) >> shift;
  for (int64_t r = g >> shift; r < m; r += row_step) {
    for (int64_t u = lane; u < units; u += tpr) {
      const int64_t c = u * W;
      Pack<T, W> v = load_pack<T, W>(x + r * ldx + c);
      if (eet::act_gated(kind)) {
        const Pack<T, W> g = load_pack<T, W>(up + r * ldu + c);
#pragma unroll
        for (int j = 0; j < W; ++j) v.e[j] = from_f32<T>(act_apply(kind, to_f32(v.e[j])) * to_f32(g.e[j]));
      } else if (bias) {
        const Pack<T, W> b = load_pack<T, W>(bias + c);
#pragma unroll
        for (int j = 0; j < W; ++j) v.e[j] = from_f32<T>(act_apply(kind, to_f32(v.e[j]) + to_f32(b.e[j])));
      } else {
#pragma unroll
        for (int j = 0; j < W; ++j) v.e[j] = from_f32<T>(act_apply(kind, to_f32(v.e[j])));
      }
      store_pack<T, W>(y + r * ldy + c, v);
    }
  }
}

template <typename T>
void act_launch(const eet::ActArgs& a, eet::Stream stream) {
  constexpr int V = kVec<T>;
  const bool gated = eet::act_gated(a.kind);
  const T* bias = gated ? nullptr : static_cast<const T*>(a.bias);
  const T* up = gated ? static_cast<const T*>(a.up) : nullptr;
  const bool vec = a.n % V == 0 && a.ldx % V == 0 && a.ldy % V == 0 && aligned16(a.x) && aligned16(a.y) &&
                   (!bias || aligned16(bias)) && (!up || (a.ldu % V == 0 && aligned16(up)));
  const RowTiling tiling(a.m, vec ? a.n / V : a.n, kActBlock);
  if (vec) {
    launch(act_kernel<T, V, kActBlock>, dim3(tiling.blocks), dim3(kActBlock), 0, stream, a.kind,
           static_cast<const T*>(a.x), bias, up, static_cast<T*>(a.y), a.m, a.n, a.ldx, a.ldu, a.ldy, tiling.shift);
  } else {
    launch(act_kernel<T, 1, kActBlock>, dim3(tiling.blocks), dim3(kActBlock), 0, stream, a.kind,
           static_cast<const T*>(a.x), bias, up, static_cast<T*>(a.y), a.m, a.n, a.ldx, a.ldu, a.ldy, tiling.shift);
  }
}

void op_act(const eet::ActArgs& a, eet::Stream stream) {
  if (a.m == 0) return;
  EET_DISPATCH_FLOAT(a.dtype, T, act_launch<T>(a, stream));
}

}  // namespace EET_KNS

// LayerNorm and RMSNorm over the last dimension, optionally fused with the residual add (NormArgs, engine/ops.h).
//   x, residual, residual_out, y: (B*T, C)   weight, bias: (C)        C in [1, 16384]
//   h = x (+ residual), rounded to the dtype; residual_out = h (may alias residual)
//   layer: y = (h - mean(h)) * rsqrt(var(h) + eps) * weight (+ bias)
//   rms:   y = h * rsqrt(mean(h^2) + eps) * weight
// float32 / float16 / bfloat16 storage, fp32 statistics.
//
// One kernel, norm_kernel<T, THREADS, ITEMS>: a row folded onto THREADS threads holding ITEMS elements each in
// registers (norm.cuh), so the row is read from memory once and written once. LayerNorm takes the mean first and
// then the sum of squared deviations from the registers (no E[x^2] - E[x]^2 cancellation). The launcher picks the
// fold from C: each thread holds 16 elements, THREADS the smallest of 32, 128, 256, 512, 1024 with THREADS * 16 >= C
// (so nearly every thread has work):
//   C <= 512:   a warp per row (4 rows per 128-thread block)  -- warp shuffles only, no barriers
//   C <= 2048, 4096, 8192, 16384: a 128-, 256-, 512-, 1024-thread block per row
// 16-byte loads/stores when every pointer is 16-byte aligned and C is a multiple of 16 / sizeof(T); element-wise
// otherwise (any C, any pointer).
#include "norm.cuh"

namespace EET_KNS {

template <typename T, int THREADS, int ITEMS>
__global__ void __launch_bounds__(RowShape<THREADS>::BLOCK)
    norm_kernel(const T* x,           // (rows, cols)
                const T* residual,    // (rows, cols) or nullptr
                T* residual_out,      // (rows, cols) or nullptr; may alias residual
                const T* weight,      // (cols)
                const T* bias,        // (cols) or nullptr
                T* y,                 // (rows, cols)
                int64_t rows, int cols, float eps, bool rms, bool vec) {
  constexpr int VEC = Fold16<T>::VEC;
  constexpr int CHUNKS = ITEMS / VEC;
  static_assert(ITEMS % VEC == 0, "ITEMS must be whole 16-byte chunks");
  using Shape = RowShape<THREADS>;
  __shared__ float scratch[32];

  const int t = int(threadIdx.x) % THREADS;
  const float inv_cols = 1.0f / float(cols);
  for (int64_t row = int64_t(blockIdx.x) * Shape::ROWS + threadIdx.x / THREADS; row < rows;
       row += int64_t(gridDim.x) * Shape::ROWS) {
    const int64_t base = row * cols;  // element offset of the row; columns below are int
    float h[ITEMS];
#pragma unroll
    for (int k = 0; k < CHUNKS; ++k) {
      const int start = (t + k * THREADS) * VEC;
      load_chunk(x + base, start, cols, vec, 0.0f, h + k * VEC);
      if (residual) {
        float r[VEC];
        load_chunk(residual + base, start, cols, vec, 0.0f, r);
#pragma unroll
        for (int j = 0; j < VEC; ++j) h[k * VEC + j] = to_f32(from_f32<T>(h[k * VEC + j] + r[j]));
      }
      if (residual_out) store_chunk(residual_out + base, start, cols, vec, h + k * VEC);
    }

    float mean = 0.0f;
    if (!rms) {
      float s = 0.0f;
#pragma unroll
      for (int i = 0; i < ITEMS; ++i) s += h[i];
      mean = row_reduce_sum<THREADS>(s, scratch) * inv_cols;
    }
    float ss = 0.0f;
#pragma unroll
    for (int k = 0; k < CHUNKS; ++k) {
      const int start = (t + k * THREADS) * VEC;
#pragma unroll
      for (int j = 0; j < VEC; ++j) {
        const float d = start + j < cols ? h[k * VEC + j] - mean : 0.0f;
        ss += d * d;
      }
    }
    const float rstd = rsqrtf(row_reduce_sum<THREADS>(ss, scratch) * inv_cols + eps);

#pragma unroll
    for (int k = 0; k < CHUNKS; ++k) {
      const int start = (t + k * THREADS) * VEC;
      if (start >= cols) break;
      float w[VEC], b[VEC];
      load_chunk(weight, start, cols, vec, 0.0f, w);
      if (bias) load_chunk(bias, start, cols, vec, 0.0f, b);
#pragma unroll
      for (int j = 0; j < VEC; ++j) {
        const float v = (h[k * VEC + j] - mean) * rstd * w[j];
        h[k * VEC + j] = bias ? v + b[j] : v;
      }
      store_chunk(y + base, start, cols, vec, h + k * VEC);
    }
  }
}

template <typename T, int THREADS, int ITEMS>
void norm_launch_fold(const eet::NormArgs& a, bool vec, eet::Stream stream) {
  using Shape = RowShape<THREADS>;
  launch(norm_kernel<T, THREADS, ITEMS>, Shape::grid(a.rows), dim3(Shape::BLOCK), 0, stream,
         static_cast<const T*>(a.x), static_cast<const T*>(a.residual), static_cast<T*>(a.residual_out),
         static_cast<const T*>(a.weight), static_cast<const T*>(a.bias), static_cast<T*>(a.y), a.rows, int(a.cols), a.eps,
         a.kind == eet::NormKind::Rms, vec);
}

// Launch configuration only: the fold from the row length, the 16-byte path from the pointers.
template <typename T>
void norm_launch(const eet::NormArgs& a, eet::Stream stream) {
  const bool vec = a.cols % Fold16<T>::VEC == 0 && aligned16(a.x) && aligned16(a.residual) &&
                   aligned16(a.residual_out) && aligned16(a.weight) && aligned16(a.bias) && aligned16(a.y);
  // norm_fold_threads (norm.cuh) is the one statement of this choice: rms_rstd_warp reproduces its arithmetic.
  switch (norm_fold_threads(a.cols)) {
    case 32: norm_launch_fold<T, 32, kNormItems>(a, vec, stream); break;
    case 128: norm_launch_fold<T, 128, kNormItems>(a, vec, stream); break;
    case 256: norm_launch_fold<T, 256, kNormItems>(a, vec, stream); break;
    case 512: norm_launch_fold<T, 512, kNormItems>(a, vec, stream); break;
    default: norm_launch_fold<T, 1024, kNormItems>(a, vec, stream); break;
  }
}

void op_norm(const eet::NormArgs& a, eet::Stream stream) {
  if (a.rows == 0) return;
  EET_DISPATCH_FLOAT(a.dtype, T, norm_launch<T>(a, stream));
}

}  // namespace EET_KNS

// Softmax over the last dimension (SoftmaxArgs, engine/ops.h).
//   x, y: (B*T, C), C in [1, 32768]; y may alias x
//   y[r, :] = exp(x[r, :] * scale - m) / sum(exp(x[r, :] * scale - m)),  m = max(x[r, :] * scale)
// float32 / float16 / bfloat16 storage, fp32 math.
//
// One kernel, softmax_kernel<T, THREADS, ITEMS>: a row folded onto THREADS threads holding ITEMS elements each in
// registers (norm.cuh); one read, a max reduction, exp in place, a sum reduction, one write. The launcher picks the
// fold from C: each thread holds 16 elements, THREADS the smallest of 32, 128, 256, 512, 1024 with THREADS * 16 >= C
// (so nearly every thread has work), and 32 elements on 1024 threads past that:
//   C <= 512:   a warp per row (4 rows per 128-thread block)  -- warp shuffles only, no barriers
//   C <= 2048, 4096, 8192, 16384: a 128-, 256-, 512-, 1024-thread block per row, 16 items
//   C <= 32768: 1024-thread block per row, 32 items
// 16-byte loads/stores when x and y are 16-byte aligned and C is a multiple of 16 / sizeof(T); element-wise otherwise.
#include "norm.cuh"

namespace EET_KNS {

template <typename T, int THREADS, int ITEMS>
__global__ void __launch_bounds__(RowShape<THREADS>::BLOCK)
    softmax_kernel(const T* x,  // (rows, cols)
                   T* y,        // (rows, cols); may alias x
                   int64_t rows, int cols, float scale, bool vec) {
  constexpr int VEC = Fold16<T>::VEC;
  constexpr int CHUNKS = ITEMS / VEC;
  static_assert(ITEMS % VEC == 0, "ITEMS must be whole 16-byte chunks");
  using Shape = RowShape<THREADS>;
  __shared__ float scratch[32];

  const int t = int(threadIdx.x) % THREADS;
  for (int64_t row = int64_t(blockIdx.x) * Shape::ROWS + threadIdx.x / THREADS; row < rows;
       row += int64_t(gridDim.x) * Shape::ROWS) {
    const int64_t base = row * cols;  // element offset of the row; columns below are int
    float v[ITEMS];
    float m = -INFINITY;
#pragma unroll
    for (int k = 0; k < CHUNKS; ++k) {
      const int start = (t + k * THREADS) * VEC;
      load_chunk(x + base, start, cols, vec, 0.0f, v + k * VEC);
#pragma unroll
      for (int j = 0; j < VEC; ++j) {
        // columns past the row end become -inf, so they add exp(-inf) = 0 to the sum
        v[k * VEC + j] = start + j < cols ? v[k * VEC + j] * scale : -INFINITY;
        m = fmaxf(m, v[k * VEC + j]);
      }
    }
    m = row_reduce_max<THREADS>(m, scratch);

    float s = 0.0f;
#pragma unroll
    for (int i = 0; i < ITEMS; ++i) {
      v[i] = __expf(v[i] - m);
      s += v[i];
    }
    const float inv = 1.0f / row_reduce_sum<THREADS>(s, scratch);

#pragma unroll
    for (int k = 0; k < CHUNKS; ++k) {
      const int start = (t + k * THREADS) * VEC;
      if (start >= cols) break;
#pragma unroll
      for (int j = 0; j < VEC; ++j) v[k * VEC + j] *= inv;
      store_chunk(y + base, start, cols, vec, v + k * VEC);
    }
  }
}

template <typename T, int THREADS, int ITEMS>
void softmax_launch_fold(const eet::SoftmaxArgs& a, bool vec, eet::Stream stream) {
  using Shape = RowShape<THREADS>;
  launch(softmax_kernel<T, THREADS, ITEMS>, Shape::grid(a.rows), dim3(Shape::BLOCK), 0, stream,
         static_cast<const T*>(a.x), static_cast<T*>(a.y), a.rows, int(a.cols), a.scale, vec);
}

// Launch configuration only: the fold from the row length, the 16-byte path from the pointers.
template <typename T>
void softmax_launch(const eet::SoftmaxArgs& a, eet::Stream stream) {
  const bool vec = a.cols % Fold16<T>::VEC == 0 && aligned16(a.x) && aligned16(a.y);
  if (a.cols <= 32 * 16) softmax_launch_fold<T, 32, 16>(a, vec, stream);
  else if (a.cols <= 128 * 16) softmax_launch_fold<T, 128, 16>(a, vec, stream);
  else if (a.cols <= 256 * 16) softmax_launch_fold<T, 256, 16>(a, vec, stream);
  else if (a.cols <= 512 * 16) softmax_launch_fold<T, 512, 16>(a, vec, stream);
  else if (a.cols <= 1024 * 16) softmax_launch_fold<T, 1024, 16>(a, vec, stream);
  else softmax_launch_fold<T, 1024, 32>(a, vec, stream);
}

void op_softmax(const eet::SoftmaxArgs& a, eet::Stream stream) {
  if (a.rows == 0) return;
  EET_DISPATCH_FLOAT(a.dtype, T, softmax_launch<T>(a, stream));
}

}  // namespace EET_KNS

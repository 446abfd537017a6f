// Embedding lookup / row gather:  out[i, :] = table[ids[i], :] (+ pos_table[pos[i], :])
//   ids, pos: (N) int32;  table: (vocab, C);  pos_table: (n_pos, C) or absent;  out: (N, C)
// Also gathers rows of activations (the last token of each sequence before the LM head). The position add is
// done in fp32 and rounded once to the dtype.
// Variants (one kernel, W elements per access):
//   W = 16 / sizeof(T): 16-byte loads/stores, when table, pos_table and out are 16-byte aligned and C is a
//                       multiple of W (every row then starts aligned);
//   W = 1:              element by element otherwise.
// Block policy: 128 threads; tpr threads per row (RowTiling: the power of two covering the row's accesses, at
// most 8192), so short rows share a block and long ones span several blocks. Grid-stride over rows.
#include "pack.cuh"

namespace EET_KNS {

constexpr int kEmbeddingBlock = 128;

template <typename T, int W, int BLOCK>
__global__ void __launch_bounds__(BLOCK)
    embedding_kernel(const int32_t* __restrict__ ids,  // (N)
                     const int32_t* __restrict__ pos,  // (N) or nullptr
                     const T* __restrict__ table,      // (vocab, C)
                     const T* __restrict__ pos_table,  // (n_pos, C) or nullptr
                     T* __restrict__ out,              // (N, C)
                     int64_t n, int64_t cols, int shift) {
  const int64_t g = int64_t(blockIdx.x) * BLOCK + threadIdx.x;
  const int64_t tpr = int64_t(1) << shift;
  const int64_t lane = g & (tpr - 1);
  const int64_t units = cols / W;
  const int64_t row_step = (int64_t(gridDim.x) * BLOCK) >> shift;
  for (int64_t r = g >> shift; r < n; r += row_step) {
    const T* src = table + int64_t(ids[r]) * cols;
    const T* psrc = pos_table ? pos_table + int64_t(pos[r]) * cols : nullptr;
    T* dst = out + r * cols;
    for (int64_t u = lane; u < units; u += tpr) {
      Pack<T, W> v = load_pack<T, W>(src + u * W);
      if (psrc) {
        const Pack<T, W> p = load_pack<T, W>(psrc + u * W);
#pragma unroll
        for (int j = 0; j < W; ++j) v.e[j] = from_f32<T>(to_f32(v.e[j]) + to_f32(p.e[j]));
      }
      store_pack<T, W>(dst + u * W, v);
    }
  }
}

template <typename T>
void embedding_launch(const eet::EmbeddingArgs& a, eet::Stream stream) {
  constexpr int V = kVec<T>;
  const bool vec = a.cols % V == 0 && aligned16(a.table) && aligned16(a.out) && (!a.pos_table || aligned16(a.pos_table));
  const RowTiling tiling(a.n, vec ? a.cols / V : a.cols, kEmbeddingBlock);
  const T* pos_table = static_cast<const T*>(a.pos_table);
  const int32_t* pos = pos_table ? a.pos : nullptr;
  if (vec) {
    launch(embedding_kernel<T, V, kEmbeddingBlock>, dim3(tiling.blocks), dim3(kEmbeddingBlock), 0, stream, a.ids, pos,
           static_cast<const T*>(a.table), pos_table, static_cast<T*>(a.out), a.n, a.cols, tiling.shift);
  } else {
    launch(embedding_kernel<T, 1, kEmbeddingBlock>, dim3(tiling.blocks), dim3(kEmbeddingBlock), 0, stream, a.ids, pos,
           static_cast<const T*>(a.table), pos_table, static_cast<T*>(a.out), a.n, a.cols, tiling.shift);
  }
}

void op_embedding(const eet::EmbeddingArgs& a, eet::Stream stream) {
  if (a.n == 0) return;
  EET_DISPATCH_FLOAT(a.dtype, T, embedding_launch<T>(a, stream));
}

}  // namespace EET_KNS

// The KV cache's device memory (design.md "Attention and KV cache"): for every layer a K and a V array of
// n_blocks blocks, each block (n_kv_heads, block_size, head_dim) as engine/ops.h KvLayout describes; layer l's K
// array at k(l), its V array at v(l). Which sequence holds which block is BlockPool's business (block_pool.h).
// One allocation; its size comes from the context's KV budget, not from maxBatch × maxContext.
#pragma once
#include <memory>

#include "block_pool.h"
#include "weights.h"

namespace eet {

class KvCache {
 public:
  static constexpr int32_t kBlockSize = BlockPool::kBlockSize;

  // Device bytes of one block across all layers, K and V.
  static size_t block_bytes(DType dtype, int32_t n_layers, int32_t n_kv_heads, int32_t head_dim);

  KvCache(std::shared_ptr<Backend> backend, DType dtype, int32_t n_layers, int32_t n_kv_heads, int32_t head_dim,
          int32_t n_blocks);

  const KvLayout& layout() const { return layout_; }
  void* k(int32_t layer) const;
  void* v(int32_t layer) const;
  int32_t n_blocks() const { return n_blocks_; }
  size_t bytes() const { return buffer_->bytes(); }
  // Copies block src's K and V (every layer) into block dst, on the backend's stream (the caller holds the
  // backend mutex). Used when a forked sequence takes a private copy of a shared partial block.
  void copy_block(int32_t dst, int32_t src);

 private:
  std::shared_ptr<Backend> backend_;
  KvLayout layout_{};
  int32_t n_layers_, n_blocks_;
  size_t layer_bytes_, block_bytes_;
  std::unique_ptr<DeviceBuffer> buffer_;
};

}  // namespace eet

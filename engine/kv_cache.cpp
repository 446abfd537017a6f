// KV cache device memory (kv_cache.h).
#include "kv_cache.h"

#include <string>

namespace eet {

size_t KvCache::block_bytes(DType dtype, int32_t n_layers, int32_t n_kv_heads, int32_t head_dim) {
  const int64_t per_layer = checked_mul(int64_t(kBlockSize) * n_kv_heads, head_dim, "kv block size");
  return size_t(checked_mul(checked_mul(per_layer, int64_t(dtype_size(dtype)), "kv block size"), 2 * int64_t(n_layers),
                            "kv block size"));
}

KvCache::KvCache(std::shared_ptr<Backend> backend, DType dtype, int32_t n_layers, int32_t n_kv_heads, int32_t head_dim,
                 int32_t n_blocks)
    : backend_(std::move(backend)), n_layers_(n_layers), n_blocks_(n_blocks) {
  layout_.block_size = kBlockSize;
  layout_.n_kv_heads = n_kv_heads;
  layout_.head_dim = head_dim;
  layout_.head_stride = int64_t(kBlockSize) * head_dim;
  layout_.block_stride = layout_.head_stride * n_kv_heads;
  // Cache slots (block * block_size + offset) are int32 in the ops.
  if (n_blocks < 1 || int64_t(n_blocks) * kBlockSize > INT32_MAX) {
    throw_error(ErrorCode::InvalidArg, "kv cache: " + std::to_string(n_blocks) + " blocks is out of range");
  }
  block_bytes_ = size_t(layout_.block_stride) * dtype_size(dtype);
  layer_bytes_ = size_t(checked_mul(n_blocks, int64_t(block_bytes_), "kv cache size"));
  const size_t total = size_t(checked_mul(int64_t(layer_bytes_), 2 * int64_t(n_layers), "kv cache size"));
  buffer_ = std::make_unique<DeviceBuffer>(backend_, total);
}

void* KvCache::k(int32_t layer) const { return static_cast<uint8_t*>(buffer_->ptr()) + size_t(2 * layer) * layer_bytes_; }

void* KvCache::v(int32_t layer) const {
  return static_cast<uint8_t*>(buffer_->ptr()) + size_t(2 * layer + 1) * layer_bytes_;
}

void KvCache::copy_block(int32_t dst, int32_t src) {
  for (int32_t l = 0; l < n_layers_; ++l) {
    for (void* base : {k(l), v(l)}) {
      auto* p = static_cast<uint8_t*>(base);
      backend_->copy(p + size_t(dst) * block_bytes_, p + size_t(src) * block_bytes_, block_bytes_);
    }
  }
}

}  // namespace eet

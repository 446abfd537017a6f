// Paged KV block pool and slot bookkeeping (kv_pool.h).
#include "kv_pool.h"

#include <algorithm>
#include <cstdint>
#include <string>

namespace eet {

KvPool::KvPool(std::shared_ptr<Backend> backend, DType dtype, int32_t n_layers, int32_t n_kv_heads, int32_t head_dim,
               int32_t max_batch, int32_t max_context)
    : n_layers_(n_layers), max_context_(max_context) {
  layout_.block_size = kBlockSize;
  layout_.n_kv_heads = n_kv_heads;
  layout_.head_dim = head_dim;
  layout_.head_stride = int64_t(kBlockSize) * head_dim;
  layout_.block_stride = layout_.head_stride * n_kv_heads;
  max_blocks_per_seq_ = (max_context + kBlockSize - 1) / kBlockSize;
  n_blocks_ = checked_mul(max_batch, max_blocks_per_seq_, "kv cache blocks");
  // Cache slots (block * block_size + offset) are int32 in the ops.
  if (n_blocks_ * kBlockSize > INT32_MAX) throw_error(ErrorCode::InvalidArg, "kv cache: maxBatch * maxContext is too large");
  layer_bytes_ = size_t(checked_mul(checked_mul(n_blocks_, layout_.block_stride, "kv cache size"),
                                    int64_t(dtype_size(dtype)), "kv cache size"));
  size_t kv_bytes = size_t(checked_mul(int64_t(layer_bytes_), 2 * int64_t(n_layers), "kv cache size"));
  history_offset_ = (kv_bytes + 255) / 256 * 256;
  size_t total = history_offset_ + size_t(checked_mul(int64_t(max_batch) * max_context, 4, "history size"));
  buffer_ = std::make_unique<DeviceBuffer>(std::move(backend), total);
  seqs_.resize(size_t(max_batch));
  // Handed out lowest id first (pop from the back).
  free_blocks_.resize(size_t(n_blocks_));
  for (int64_t i = 0; i < n_blocks_; ++i) free_blocks_[size_t(i)] = int32_t(n_blocks_ - 1 - i);
}

void* KvPool::k_cache(int32_t layer) const {
  return static_cast<uint8_t*>(buffer_->ptr()) + size_t(2 * layer) * layer_bytes_;
}

void* KvPool::v_cache(int32_t layer) const {
  return static_cast<uint8_t*>(buffer_->ptr()) + size_t(2 * layer + 1) * layer_bytes_;
}

int32_t* KvPool::history(int32_t slot) const {
  auto* base = reinterpret_cast<int32_t*>(static_cast<uint8_t*>(buffer_->ptr()) + history_offset_);
  return base + int64_t(slot) * max_context_;
}

int32_t KvPool::acquire() {
  for (size_t s = 0; s < seqs_.size(); ++s) {
    if (!seqs_[s].live) {
      seqs_[s].live = true;
      seqs_[s].length = 0;
      return int32_t(s);
    }
  }
  return -1;
}

void KvPool::release(int32_t slot) {
  Seq& s = seqs_[size_t(slot)];
  // Returned in reverse so the next sequence gets the same blocks in the same order.
  for (auto it = s.blocks.rbegin(); it != s.blocks.rend(); ++it) free_blocks_.push_back(*it);
  s.blocks.clear();
  s.length = 0;
  s.live = false;
}

bool KvPool::live(int32_t slot) const { return slot >= 0 && size_t(slot) < seqs_.size() && seqs_[size_t(slot)].live; }

void KvPool::set_length(int32_t slot, int32_t new_length) {
  Seq& s = seqs_[size_t(slot)];
  if (new_length > max_context_) throw_error(ErrorCode::Internal, "kv pool: length past max_context");
  const size_t need = size_t((new_length + kBlockSize - 1) / kBlockSize);
  while (s.blocks.size() < need) {
    if (free_blocks_.empty()) throw_error(ErrorCode::Internal, "kv pool: out of blocks");
    s.blocks.push_back(free_blocks_.back());
    free_blocks_.pop_back();
  }
  s.length = new_length;
}

int32_t KvPool::cache_slot(int32_t slot, int32_t pos) const {
  return seqs_[size_t(slot)].blocks[size_t(pos / kBlockSize)] * kBlockSize + pos % kBlockSize;
}

}  // namespace eet

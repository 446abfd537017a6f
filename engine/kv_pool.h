// Paged KV cache (design.md "Attention and KV cache"): one pool of fixed-size blocks per model, per-sequence
// block tables, and the slot bookkeeping of the live sequences.
//
// Device memory, one allocation:
//   K and V of every layer: 2 * n_layers arrays of n_blocks blocks, each block (n_kv_heads, block_size, head_dim)
//   (engine/ops.h KvLayout); layer l's K array at k_cache(l), its V array at v_cache(l).
//   history: (max_batch, max_context) int32, the context tokens of every slot (the sampler's repetition penalty).
// n_blocks = max_batch * ceil(max_context / block_size): every slot can always reach max_context, so a step never
// runs out of blocks. Blocks are taken from a free list as a sequence grows and returned when it ends.
//
// Host state (block tables, lengths, the free list) is not synchronised here: the model guards it.
#pragma once
#include <memory>
#include <vector>

#include "weights.h"

namespace eet {

class KvPool {
 public:
  static constexpr int32_t kBlockSize = 16;

  KvPool(std::shared_ptr<Backend> backend, DType dtype, int32_t n_layers, int32_t n_kv_heads, int32_t head_dim,
         int32_t max_batch, int32_t max_context);

  const KvLayout& layout() const { return layout_; }
  void* k_cache(int32_t layer) const;
  void* v_cache(int32_t layer) const;
  int32_t* history(int32_t slot) const;  // (max_context) device row of the slot
  int32_t max_blocks_per_seq() const { return max_blocks_per_seq_; }
  size_t bytes() const { return buffer_->bytes(); }

  // Slots. acquire() returns -1 when every slot is live.
  int32_t acquire();
  void release(int32_t slot);  // returns the slot's blocks to the pool
  bool live(int32_t slot) const;
  int32_t length(int32_t slot) const { return seqs_[size_t(slot)].length; }
  // Grows (allocating blocks) or shrinks (keeping them) the slot's length; new_length <= max_context.
  void set_length(int32_t slot, int32_t new_length);
  const std::vector<int32_t>& blocks(int32_t slot) const { return seqs_[size_t(slot)].blocks; }
  // The cache slot (block * block_size + offset) of the slot's token at position pos (< its block count * 16).
  int32_t cache_slot(int32_t slot, int32_t pos) const;

 private:
  struct Seq {
    bool live = false;
    int32_t length = 0;
    std::vector<int32_t> blocks;
  };

  KvLayout layout_{};
  int32_t n_layers_, max_context_, max_blocks_per_seq_;
  int64_t n_blocks_;
  size_t layer_bytes_, history_offset_;
  std::unique_ptr<DeviceBuffer> buffer_;
  std::vector<Seq> seqs_;
  std::vector<int32_t> free_blocks_;
};

}  // namespace eet

// The KV block pool's bookkeeping (design.md "Memory"; the shape of vLLM's block_pool.py): which of a context's
// n blocks are free, who holds each one, and the prefix cache. Host state only — the K/V memory itself is
// KvCache's — so it is testable without a model (test/native/block_pool_check.cpp).
//
// Reference counts: a block is held by every sequence whose block table lists it (n > 1 samples and requests with
// a common prompt share blocks). release() at count 0 returns it: to the free list, or — when it is a published
// prefix-cache block — to the back of the LRU list of evictable cached blocks, where it stays findable until
// allocate() needs it (the free list is used first, then the least recently released cached block is evicted).
//
// Prefix cache: a *full* block whose K/V are computed is published under the key (hash of the blocks before it,
// its 16 tokens), chain_hash() of the two. A new sequence whose tokens start with published blocks takes them
// (lookup + retain) and computes only the rest. The hash is only an index: lookup() also compares the parent
// hash and the tokens, so a hash collision can cost a cache miss but never a wrong hit.
// Not thread-safe: the context's step mutex guards it.
#pragma once
#include <array>
#include <cstddef>
#include <cstdint>
#include <list>
#include <unordered_map>
#include <vector>

#include "limits.h"

namespace eet {

class BlockPool {
 public:
  static constexpr int32_t kBlockSize = int32_t(Limits::kvBlockSize);
  using BlockTokens = std::array<int32_t, kBlockSize>;

  explicit BlockPool(int32_t n_blocks);

  int32_t total() const { return int32_t(blocks_.size()); }
  // Blocks allocate() can still hand out: free ones plus evictable cached ones.
  int32_t available() const { return int32_t(free_.size() + lru_.size()); }
  int32_t in_use() const { return total() - available(); }       // held by at least one sequence
  int32_t cached() const { return int32_t(table_.size()); }      // published (held or evictable)
  int32_t evictable() const { return int32_t(lru_.size()); }

  // A block with count 1 (free list first, lowest id first; else the LRU cached block, unpublished); -1 when
  // every block is held.
  int32_t allocate();
  void retain(int32_t block);   // one more holder; a cached block at count 0 leaves the LRU list
  void release(int32_t block);  // one holder less (see the header comment for where it goes at 0)
  int32_t ref_count(int32_t block) const { return blocks_[size_t(block)].ref; }

  static uint64_t chain_hash(uint64_t parent, const int32_t* tokens);
  // The published block for (parent, tokens) or -1. Does not retain it.
  int32_t lookup(uint64_t parent, uint64_t hash, const int32_t* tokens) const;
  // Publishes a held, full, computed block. Returns false (and publishes nothing) when the key is already
  // published by another block — e.g. two requests computed the same prompt in the same step — or when the block
  // is already published.
  bool publish(int32_t block, uint64_t parent, uint64_t hash, const int32_t* tokens);

 private:
  struct Block {
    int32_t ref = 0;
    bool published = false;
    bool in_lru = false;
    uint64_t parent = 0, hash = 0;
    BlockTokens tokens{};
    std::list<int32_t>::iterator lru_at;
  };
  void unpublish(int32_t block);

  std::vector<Block> blocks_;
  std::vector<int32_t> free_;          // popped from the back: lowest id first
  std::list<int32_t> lru_;             // evictable cached blocks, least recently released first
  std::unordered_map<uint64_t, int32_t> table_;  // chain hash -> published block
};

}  // namespace eet

// KV block pool bookkeeping (block_pool.h).
#include "block_pool.h"

#include <algorithm>
#include <string>

#include "error.h"

namespace eet {

namespace {

// splitmix64's finaliser: a full-avalanche mix of 64 bits.
uint64_t mix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

}  // namespace

BlockPool::BlockPool(int32_t n_blocks) {
  if (n_blocks < 1) throw_error(ErrorCode::InvalidArg, "kv block pool: needs at least one block, got " + std::to_string(n_blocks));
  blocks_.resize(size_t(n_blocks));
  free_.resize(size_t(n_blocks));
  for (int32_t i = 0; i < n_blocks; ++i) free_[size_t(i)] = n_blocks - 1 - i;
}

int32_t BlockPool::allocate() {
  int32_t b = -1;
  if (!free_.empty()) {
    b = free_.back();
    free_.pop_back();
  } else if (!lru_.empty()) {
    b = lru_.front();
    lru_.pop_front();
    blocks_[size_t(b)].in_lru = false;
    unpublish(b);
  } else {
    return -1;
  }
  blocks_[size_t(b)].ref = 1;
  return b;
}

void BlockPool::retain(int32_t block) {
  Block& b = blocks_[size_t(block)];
  if (b.ref == 0) {
    if (!b.in_lru) throw_error(ErrorCode::Internal, "kv block pool: retain of a free block " + std::to_string(block));
    lru_.erase(b.lru_at);
    b.in_lru = false;
  }
  b.ref++;
}

void BlockPool::release(int32_t block) {
  Block& b = blocks_[size_t(block)];
  if (b.ref <= 0) throw_error(ErrorCode::Internal, "kv block pool: release of an unheld block " + std::to_string(block));
  if (--b.ref > 0) return;
  if (b.published) {
    b.lru_at = lru_.insert(lru_.end(), block);
    b.in_lru = true;
  } else {
    free_.push_back(block);
  }
}

uint64_t BlockPool::chain_hash(uint64_t parent, const int32_t* tokens) {
  uint64_t h = mix64(parent ^ 0x6a09e667f3bcc909ull);
  for (int32_t i = 0; i < kBlockSize; ++i) h = mix64(h ^ uint64_t(uint32_t(tokens[i])));
  return h;
}

int32_t BlockPool::lookup(uint64_t parent, uint64_t hash, const int32_t* tokens) const {
  auto it = table_.find(hash);
  if (it == table_.end()) return -1;
  const Block& b = blocks_[size_t(it->second)];
  if (b.parent != parent || !std::equal(b.tokens.begin(), b.tokens.end(), tokens)) return -1;
  return it->second;
}

bool BlockPool::publish(int32_t block, uint64_t parent, uint64_t hash, const int32_t* tokens) {
  Block& b = blocks_[size_t(block)];
  if (b.ref <= 0) throw_error(ErrorCode::Internal, "kv block pool: publish of an unheld block " + std::to_string(block));
  if (b.published || table_.count(hash)) return false;
  b.published = true;
  b.parent = parent;
  b.hash = hash;
  std::copy(tokens, tokens + kBlockSize, b.tokens.begin());
  table_.emplace(hash, block);
  return true;
}

void BlockPool::unpublish(int32_t block) {
  Block& b = blocks_[size_t(block)];
  if (!b.published) return;
  table_.erase(b.hash);
  b.published = false;
}

}  // namespace eet

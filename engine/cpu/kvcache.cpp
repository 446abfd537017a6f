// cpu reference of the paged KV cache ops (engine/ops.h "paged KV cache"): kv_append scatters token rows into
// cache slots, kv_gather reads one sequence back through its block table. Pure copies: each (token, kv head) row
// of head_dim elements is moved byte for byte.
#include <cstring>

#include "parallel.h"
#include "reference.h"

namespace eet::cpu {

namespace {

// Element offset of (slot, kv head h) in a cache with layout l.
int64_t cache_offset(const KvLayout& l, int64_t slot, int64_t h) {
  const int64_t blk = slot / l.block_size, j = slot % l.block_size;
  return blk * l.block_stride + h * l.head_stride + j * l.head_dim;
}

}  // namespace

void op_kv_append(const KvAppendArgs& a) {
  const KvLayout& l = a.layout;
  const size_t es = dtype_size(a.dtype), row_bytes = size_t(l.head_dim) * es;
  const auto* k = static_cast<const char*>(a.k);
  const auto* v = static_cast<const char*>(a.v);
  auto* kc = static_cast<char*>(a.k_cache);
  auto* vc = static_cast<char*>(a.v_cache);
  parallel_for(a.n_tokens, 64, [&](int64_t t) {
    for (int64_t h = 0; h < l.n_kv_heads; ++h) {
      const int64_t dst = cache_offset(l, a.slots[t], h);
      std::memcpy(kc + dst * es, k + (t * a.ldk + h * l.head_dim) * es, row_bytes);
      std::memcpy(vc + dst * es, v + (t * a.ldv + h * l.head_dim) * es, row_bytes);
    }
  });
}

void op_kv_gather(const KvGatherArgs& a) {
  const KvLayout& l = a.layout;
  const size_t es = dtype_size(a.dtype), row_bytes = size_t(l.head_dim) * es;
  const auto* kc = static_cast<const char*>(a.k_cache);
  const auto* vc = static_cast<const char*>(a.v_cache);
  auto* ko = static_cast<char*>(a.k_out);
  auto* vo = static_cast<char*>(a.v_out);
  const int64_t row = int64_t(l.n_kv_heads) * l.head_dim;
  parallel_for(a.len, 64, [&](int64_t t) {
    const int64_t slot = int64_t(a.block_table[t / l.block_size]) * l.block_size + t % l.block_size;
    for (int64_t h = 0; h < l.n_kv_heads; ++h) {
      const int64_t src = cache_offset(l, slot, h);
      std::memcpy(ko + (t * row + h * l.head_dim) * es, kc + src * es, row_bytes);
      std::memcpy(vo + (t * row + h * l.head_dim) * es, vc + src * es, row_bytes);
    }
  });
}

}  // namespace eet::cpu

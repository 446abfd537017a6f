// Fast cpu attention over the paged KV cache (ops.h AttentionArgs): work items of (sequence, kv head, tile of up
// to kAttentionQueryTile queries), handed out over the thread pool; each runs the ISA's kernel
// (attention_kernel.h) with per-thread fp32 scratch. The decode workspace is not needed: a decode row's whole
// context is one item (the cpu has few threads to fill, unlike a GPU).
#include <vector>

#include "../cpu/parallel.h"
#include "fast.h"
#include "kernels.h"

namespace eet::fast {

void op_attention(const AttentionArgs& a) {
  const Kernels& kn = kernels();
  std::vector<AttentionItem> items;
  for (int32_t b = 0; b < a.batch; ++b) {
    for (int32_t g = 0; g < a.layout.n_kv_heads; ++g) {
      for (int32_t q0 = a.q_start[b]; q0 < a.q_start[b + 1]; q0 += kAttentionQueryTile) {
        items.push_back({b, g, q0, std::min(a.q_start[b + 1], q0 + kAttentionQueryTile)});
      }
    }
  }
  const int64_t floats = kn.attention_scratch_floats(a);
  int64_t work = 0;  // query rows × keys × head_dim, an upper bound (causal rows see fewer keys)
  for (const AttentionItem& it : items) work += int64_t(it.q1 - it.q0) * a.ctx_len[it.seq];
  work *= int64_t(a.n_heads / a.layout.n_kv_heads) * a.layout.head_dim;
  cpu::run_items(int64_t(items.size()), work, [&](int64_t c) {
    thread_local std::vector<float> scratch;
    if (int64_t(scratch.size()) < floats) scratch.resize(size_t(floats));
    kn.attention(a, items[size_t(c)], scratch.data());
  });
}

}  // namespace eet::fast

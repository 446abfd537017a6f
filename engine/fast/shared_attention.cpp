// Fast cpu shared-prefix decode attention (ops.h SharedAttentionArgs): one work item per (group, kv head) and per
// (sequence in no group, kv head), handed out over the thread pool; each runs the ISA's kernel
// (attention_kernel.h shared_attention_item): the group's shared keys read once for all its members' queries, then
// each member's own keys. The workspace is not needed (one item holds a row's whole softmax state).
#include <vector>

#include "../cpu/parallel.h"
#include "fast.h"
#include "kernels.h"

namespace eet::fast {

void op_shared_attention(const SharedAttentionArgs& a) {
  const Kernels& kn = kernels();
  std::vector<char> grouped(size_t(a.batch), 0);
  const int32_t in_groups = a.n_groups > 0 ? a.group_start[a.n_groups] : 0;
  for (int32_t i = 0; i < in_groups; ++i) grouped[size_t(a.group_seqs[i])] = 1;
  std::vector<int32_t> loose;
  for (int32_t b = 0; b < a.batch; ++b)
    if (!grouped[size_t(b)]) loose.push_back(b);
  std::vector<SharedItem> items;
  for (int32_t g = 0; g < a.n_groups; ++g) {
    const int32_t n = a.group_start[g + 1] - a.group_start[g];
    if (n == 0) continue;
    for (int32_t h = 0; h < a.layout.n_kv_heads; ++h) items.push_back({h, n, a.group_seqs + a.group_start[g]});
  }
  for (const int32_t& b : loose)
    for (int32_t h = 0; h < a.layout.n_kv_heads; ++h) items.push_back({h, 1, &b});
  const int64_t floats = kn.shared_attention_scratch_floats(a);
  int64_t work = 0;  // rows × keys × head_dim
  for (int32_t b = 0; b < a.batch; ++b) work += a.ctx_len[b];
  work *= int64_t(a.n_heads) * a.layout.head_dim;
  cpu::run_items(int64_t(items.size()), work, [&](int64_t c) {
    thread_local std::vector<float> scratch;
    if (int64_t(scratch.size()) < floats) scratch.resize(size_t(floats));
    kn.shared_attention(a, items[size_t(c)], scratch.data());
  });
}

}  // namespace eet::fast

// cpu reference of shared-prefix decode attention (engine/ops.h "shared-prefix decode attention"). It follows the
// contract, not the kernels' split: one work item per (sequence b, head h) with b's single query; keys below
// shared_len[b] come through the block table of b's group leader, the rest through b's own, and softmax(q·kᵀ * scale)
// · v over all of them is computed in double in one pass. The output is rounded once to the dtype.
#include <algorithm>
#include <cmath>
#include <vector>

#include "element.h"
#include "parallel.h"
#include "reference.h"

namespace eet::cpu {

void op_shared_attention(const SharedAttentionArgs& a) {
  const KvLayout& l = a.layout;
  const int64_t D = l.head_dim, group = a.n_heads / l.n_kv_heads;
  std::vector<int32_t> leader(static_cast<size_t>(a.batch));
  for (int32_t b = 0; b < a.batch; ++b) leader[size_t(b)] = b;
  for (int32_t g = 0; g < a.n_groups; ++g) {
    for (int32_t i = a.group_start[g]; i < a.group_start[g + 1]; ++i) leader[size_t(a.group_seqs[i])] = a.group_seqs[a.group_start[g]];
  }
  parallel_for(int64_t(a.batch) * a.n_heads, 1, [&](int64_t item) {
    const int64_t b = item / a.n_heads, h = item % a.n_heads, kvh = h / group;
    const int64_t n_keys = a.ctx_len[b], shared = a.shared_len[b];
    std::vector<double> q(static_cast<size_t>(D)), acc(static_cast<size_t>(D), 0.0), score(static_cast<size_t>(n_keys));
    std::vector<int64_t> off(static_cast<size_t>(n_keys));
    for (int64_t d = 0; d < D; ++d) q[size_t(d)] = load(a.dtype, a.q, b * a.ldq + h * D + d);
    double mx = -INFINITY;
    for (int64_t k = 0; k < n_keys; ++k) {
      const int64_t owner = k < shared ? leader[size_t(b)] : b;
      const int64_t blk = a.block_table[owner * a.max_blocks_per_seq + k / l.block_size];
      off[size_t(k)] = blk * l.block_stride + kvh * l.head_stride + (k % l.block_size) * D;
      double dot = 0;
      for (int64_t d = 0; d < D; ++d) dot += q[size_t(d)] * load(a.dtype, a.k_cache, off[size_t(k)] + d);
      score[size_t(k)] = dot * double(a.scale);
      mx = std::max(mx, score[size_t(k)]);
    }
    double sum = 0;
    for (int64_t k = 0; k < n_keys; ++k) {
      const double p = std::exp(score[size_t(k)] - mx);
      sum += p;
      for (int64_t d = 0; d < D; ++d) acc[size_t(d)] += p * load(a.dtype, a.v_cache, off[size_t(k)] + d);
    }
    for (int64_t d = 0; d < D; ++d) store(a.dtype, a.out, b * a.ldo + h * D + d, acc[size_t(d)] / sum);
  });
}

}  // namespace eet::cpu

// cpu reference of fused masked attention over the paged KV cache (engine/ops.h "fused masked attention").
// One work item per (query token t, head h): find t's sequence b, its position pos = ctx_len[b] - n_q + i, the
// keys it sees (by the mask: all ctx_len[b], 0..pos, or pos..ctx_len[b]-1), read them through the block table, and
// compute softmax(q·kᵀ * scale + bias) · v in double, bias = T5's relative position bias when rel_bias.table is set
// (engine/relpos.h). The output is rounded once to the dtype.
#include <algorithm>
#include <cmath>
#include <vector>

#include "element.h"
#include "parallel.h"
#include "reference.h"
#include "../relpos.h"

namespace eet::cpu {

void op_attention(const AttentionArgs& a) {
  const KvLayout& l = a.layout;
  const int64_t D = l.head_dim, group = a.n_heads / l.n_kv_heads;
  std::vector<int32_t> seq_of(static_cast<size_t>(a.n_tokens));
  for (int32_t b = 0; b < a.batch; ++b) {
    for (int32_t t = a.q_start[b]; t < a.q_start[b + 1]; ++t) seq_of[size_t(t)] = b;
  }
  parallel_for(a.n_tokens * a.n_heads, 1, [&](int64_t item) {
    const int64_t t = item / a.n_heads, h = item % a.n_heads, kvh = h / group;
    const int32_t b = seq_of[size_t(t)];
    const int64_t n_q = a.q_start[b + 1] - a.q_start[b], ctx = a.ctx_len[b];
    const int64_t pos = ctx - n_q + (t - a.q_start[b]);
    const int64_t k_begin = a.mask == AttnMask::AntiCausal ? pos : 0;
    const int64_t k_end = a.mask == AttnMask::Causal ? pos + 1 : ctx;
    const int64_t n_keys = k_end - k_begin;
    std::vector<double> q(static_cast<size_t>(D)), acc(static_cast<size_t>(D), 0.0), score(static_cast<size_t>(n_keys));
    std::vector<int64_t> off(static_cast<size_t>(n_keys));
    for (int64_t d = 0; d < D; ++d) q[size_t(d)] = load(a.dtype, a.q, t * a.ldq + h * D + d);
    double mx = -INFINITY;
    for (int64_t k = 0; k < n_keys; ++k) {
      const int64_t key = k_begin + k;
      const int64_t blk = a.block_table[int64_t(b) * a.max_blocks_per_seq + key / l.block_size];
      off[size_t(k)] = blk * l.block_stride + kvh * l.head_stride + (key % l.block_size) * D;
      double dot = 0;
      for (int64_t d = 0; d < D; ++d) dot += q[size_t(d)] * load(a.dtype, a.k_cache, off[size_t(k)] + d);
      score[size_t(k)] = dot * double(a.scale);
      if (const AttnRelBias& r = a.rel_bias; r.table) {
        const int32_t bucket = t5_relative_bucket(int32_t(key - pos), r.bidirectional, r.num_buckets, r.max_distance);
        score[size_t(k)] += double(r.table[h * r.num_buckets + bucket]);
      }
      mx = std::max(mx, score[size_t(k)]);
    }
    double sum = 0;
    for (int64_t k = 0; k < n_keys; ++k) {
      const double p = std::exp(score[size_t(k)] - mx);
      sum += p;
      for (int64_t d = 0; d < D; ++d) acc[size_t(d)] += p * load(a.dtype, a.v_cache, off[size_t(k)] + d);
    }
    for (int64_t d = 0; d < D; ++d) store(a.dtype, a.out, t * a.ldo + h * D + d, acc[size_t(d)] / sum);
  });
}

}  // namespace eet::cpu

// The paged-cache ops of the op runner (runOpSync, native/ops.cpp): kv_append, rope_kv_append, kv_gather,
// attention, shared_attention — their index tensors (slots, block tables, lengths, groups) read back and checked.
#include <algorithm>
#include <vector>

#include "../engine/limits.h"
#include "op_call.h"

namespace eet_node {
namespace ops {

Launch run_kv_append(OpCall& c) {
  eet::KvAppendArgs a{};
  a.dtype = c.dtype();
  a.layout = read_layout(c);
  a.n_tokens = get_int(c.p, "nTokens", 0, int64_t(1) << 31);
  int64_t row = int64_t(a.layout.n_kv_heads) * a.layout.head_dim;
  a.ldk = get_int_or(c.p, "ldk", 1, int64_t(1) << 40, row);
  a.ldv = get_int_or(c.p, "ldv", 1, int64_t(1) << 40, row);
  a.k = c.tensor("k", a.dtype, extent(a.n_tokens, row, a.ldk));
  a.v = c.tensor("v", a.dtype, extent(a.n_tokens, row, a.ldv));
  a.slots = static_cast<const int32_t*>(c.tensor("slots", DType::I32, a.n_tokens));
  a.k_cache = c.tensor("kCache", a.dtype, 1);
  a.v_cache = c.tensor("vCache", a.dtype, 1);
  int64_t blocks = std::min(cache_blocks(c, "kCache", a.layout), cache_blocks(c, "vCache", a.layout));
  c.check_ints("slots", c.read_ints(a.slots, a.n_tokens), 0, blocks * a.layout.block_size - 1);
  return [be = c.backend, a] { be->kv_append(a); };
}

// rope's q and rotation parameters with kv_append's k, v, slots and cache (head_dim and nKvHeads from the layout).
Launch run_rope_kv_append(OpCall& c) {
  eet::RopeKvAppendArgs a{};
  std::string layout = get_string(c.p, "ropeLayout");
  if (layout != "adjacent" && layout != "half") throw_arg(c.env, "ropeLayout", "'adjacent' or 'half'", c.p.Get("ropeLayout"));
  a.rope_layout = layout == "half" ? eet::RopeLayout::HalfSplit : eet::RopeLayout::Adjacent;
  a.dtype = c.dtype();
  a.layout = read_layout(c);
  a.n_tokens = get_int(c.p, "nTokens", 0, int64_t(1) << 31);
  a.n_heads = int32_t(get_int(c.p, "nHeads", 1, 4096));
  a.rot_dim = int32_t(get_int_or(c.p, "rotDim", 2, std::max(a.layout.head_dim, 2), a.layout.head_dim));
  const int64_t row = int64_t(a.layout.n_kv_heads) * a.layout.head_dim;
  a.ldq = get_int_or(c.p, "ldq", 1, int64_t(1) << 40, int64_t(a.n_heads) * a.layout.head_dim);
  a.ldk = get_int_or(c.p, "ldk", 1, int64_t(1) << 40, row);
  a.ldv = get_int_or(c.p, "ldv", 1, int64_t(1) << 40, row);
  a.q = c.tensor("q", a.dtype, extent(a.n_tokens, int64_t(a.n_heads) * a.layout.head_dim, a.ldq));
  a.k = c.tensor("k", a.dtype, extent(a.n_tokens, row, a.ldk));
  a.v = c.tensor("v", a.dtype, extent(a.n_tokens, row, a.ldv));
  a.pos = static_cast<const int32_t*>(c.tensor("pos", DType::I32, a.n_tokens));
  a.inv_freq = static_cast<const float*>(c.tensor("invFreq", DType::F32, a.rot_dim / 2));
  a.slots = static_cast<const int32_t*>(c.tensor("slots", DType::I32, a.n_tokens));
  a.k_cache = c.tensor("kCache", a.dtype, 1);
  a.v_cache = c.tensor("vCache", a.dtype, 1);
  c.check_ints("pos", c.read_ints(a.pos, a.n_tokens), 0, (1 << 30));
  int64_t blocks = std::min(cache_blocks(c, "kCache", a.layout), cache_blocks(c, "vCache", a.layout));
  c.check_ints("slots", c.read_ints(a.slots, a.n_tokens), 0, blocks * a.layout.block_size - 1);
  return [be = c.backend, a] { be->rope_kv_append(a); };
}

Launch run_kv_gather(OpCall& c) {
  eet::KvGatherArgs a{};
  a.dtype = c.dtype();
  a.layout = read_layout(c);
  a.len = get_int(c.p, "len", 0, int64_t(1) << 31);
  int64_t row = int64_t(a.layout.n_kv_heads) * a.layout.head_dim;
  int64_t nblk = (a.len + a.layout.block_size - 1) / a.layout.block_size;
  a.k_cache = c.tensor("kCache", a.dtype, 1);
  a.v_cache = c.tensor("vCache", a.dtype, 1);
  a.block_table = static_cast<const int32_t*>(c.tensor("blockTable", DType::I32, nblk));
  a.k_out = c.tensor("kOut", a.dtype, eet::checked_mul(a.len, row, "kOut"));
  a.v_out = c.tensor("vOut", a.dtype, eet::checked_mul(a.len, row, "vOut"));
  int64_t blocks = std::min(cache_blocks(c, "kCache", a.layout), cache_blocks(c, "vCache", a.layout));
  c.check_ints("blockTable", c.read_ints(a.block_table, nblk), 0, blocks - 1);
  return [be = c.backend, a] { be->kv_gather(a); };
}

Launch run_attention(OpCall& c) {
  eet::AttentionArgs a{};
  a.dtype = c.dtype();
  a.layout = read_layout(c);
  a.batch = int32_t(get_int(c.p, "batch", 1, 1 << 20));
  a.n_heads = int32_t(get_int(c.p, "nHeads", 1, 4096));
  a.n_tokens = get_int(c.p, "nTokens", 1, int64_t(1) << 31);
  a.max_blocks_per_seq = int32_t(get_int(c.p, "maxBlocksPerSeq", 1, 1 << 24));
  a.scale = float(get_number(c.p, "scale"));
  a.mask = to_attn_mask(c.env, "mask", c.p.Get("mask"));
  int64_t row = int64_t(a.n_heads) * a.layout.head_dim;
  a.ldq = get_int_or(c.p, "ldq", 1, int64_t(1) << 40, row);
  a.ldo = get_int_or(c.p, "ldo", 1, int64_t(1) << 40, row);
  a.q = c.tensor("q", a.dtype, extent(a.n_tokens, row, a.ldq));
  a.out = c.tensor("out", a.dtype, extent(a.n_tokens, row, a.ldo));
  a.k_cache = c.tensor("kCache", a.dtype, 1);
  a.v_cache = c.tensor("vCache", a.dtype, 1);
  a.block_table = static_cast<const int32_t*>(
      c.tensor("blockTable", DType::I32, eet::checked_mul(a.batch, a.max_blocks_per_seq, "blockTable")));
  a.q_start = static_cast<const int32_t*>(c.tensor("qStart", DType::I32, int64_t(a.batch) + 1));
  a.ctx_len = static_cast<const int32_t*>(c.tensor("ctxLen", DType::I32, a.batch));
  // Lengths: 0 = q_start[0] <= ... <= q_start[batch] = n_tokens, 1 <= n_q <= ctx_len <= capacity (cross: the keys
  // are another sequence's, 1 <= ctx_len, any n_q >= 1).
  auto qs = c.read_ints(a.q_start, int64_t(a.batch) + 1);
  auto cl = c.read_ints(a.ctx_len, a.batch);
  int64_t cap = int64_t(a.max_blocks_per_seq) * a.layout.block_size;
  if (qs[0] != 0 || qs[size_t(a.batch)] != a.n_tokens) {
    throw make_error(c.env, eet::ErrorCode::InvalidArg, "qStart must start at 0 and end at nTokens");
  }
  int32_t max_q = 0, max_ctx = 0;
  for (int32_t b = 0; b < a.batch; ++b) {
    int64_t nq = int64_t(qs[size_t(b) + 1]) - qs[size_t(b)];
    const bool cross = a.mask == eet::AttnMask::Cross;
    if (nq < 1 || (!cross && nq > cl[size_t(b)]) || cl[size_t(b)] < 1 || cl[size_t(b)] > cap) {
      throw make_error(c.env, eet::ErrorCode::InvalidArg,
                       "sequence " + std::to_string(b) + ": expected 1 <= queries (" + std::to_string(nq) + ")" +
                           (cross ? ", 1" : "") + " <= ctxLen (" + std::to_string(cl[size_t(b)]) + ") <= " + std::to_string(cap));
    }
    max_q = std::max<int32_t>(max_q, int32_t(nq));
    max_ctx = std::max(max_ctx, cl[size_t(b)]);
  }
  a.max_q_len = max_q;
  a.max_ctx_len = max_ctx;
  int64_t blocks = std::min(cache_blocks(c, "kCache", a.layout), cache_blocks(c, "vCache", a.layout));
  auto bt = c.read_ints(a.block_table, int64_t(a.batch) * a.max_blocks_per_seq);
  for (int32_t b = 0; b < a.batch; ++b) {  // only the blocks a sequence uses must be valid
    int64_t used = (cl[size_t(b)] + a.layout.block_size - 1) / a.layout.block_size;
    std::vector<int32_t> mine(bt.begin() + int64_t(b) * a.max_blocks_per_seq, bt.begin() + int64_t(b) * a.max_blocks_per_seq + used);
    c.check_ints("blockTable", mine, 0, blocks - 1);
  }
  // T5's relative position bias: relBiasTable (nHeads, relBuckets) float32, with relBuckets, relMaxDistance and
  // relBidirectional; validate() checks the numbers.
  if (!c.p.Get("relBiasTable").IsUndefined()) {
    a.rel_bias.num_buckets = int32_t(get_int(c.p, "relBuckets", 1, eet::Limits::maxRelPosBuckets));
    a.rel_bias.max_distance = int32_t(get_int(c.p, "relMaxDistance", 1, eet::Limits::maxSeqLen));
    a.rel_bias.bidirectional = get_bool_or(c.p, "relBidirectional", false);
    a.rel_bias.table = static_cast<const float*>(
        c.tensor("relBiasTable", DType::F32, int64_t(a.n_heads) * a.rel_bias.num_buckets));
  }
  a.sm_count = sm_count(c);
  a.simt_prefill = get_bool_or(c.p, "simtPrefill", false);  // tests / op bench: the SIMT prompt kernel (engine/ops.h)
  a.workspace_bytes = eet::attention_workspace_bytes(eet::decode_shape(a));
  a.workspace = a.workspace_bytes ? c.temp(a.workspace_bytes) : nullptr;
  return [be = c.backend, a] { be->attention(a); };
}

Launch run_shared_attention(OpCall& c) {
  eet::SharedAttentionArgs a{};
  a.dtype = c.dtype();
  a.layout = read_layout(c);
  a.batch = int32_t(get_int(c.p, "batch", 1, 1 << 20));
  a.n_heads = int32_t(get_int(c.p, "nHeads", 1, 4096));
  a.n_groups = int32_t(get_int(c.p, "nGroups", 0, a.batch));
  a.max_blocks_per_seq = int32_t(get_int(c.p, "maxBlocksPerSeq", 1, 1 << 24));
  a.scale = float(get_number(c.p, "scale"));
  int64_t row = int64_t(a.n_heads) * a.layout.head_dim;
  a.ldq = get_int_or(c.p, "ldq", 1, int64_t(1) << 40, row);
  a.ldo = get_int_or(c.p, "ldo", 1, int64_t(1) << 40, row);
  a.q = c.tensor("q", a.dtype, extent(a.batch, row, a.ldq));
  a.out = c.tensor("out", a.dtype, extent(a.batch, row, a.ldo));
  a.k_cache = c.tensor("kCache", a.dtype, 1);
  a.v_cache = c.tensor("vCache", a.dtype, 1);
  a.block_table = static_cast<const int32_t*>(
      c.tensor("blockTable", DType::I32, eet::checked_mul(a.batch, a.max_blocks_per_seq, "blockTable")));
  a.ctx_len = static_cast<const int32_t*>(c.tensor("ctxLen", DType::I32, a.batch));
  a.shared_len = static_cast<const int32_t*>(c.tensor("sharedLen", DType::I32, a.batch));
  a.group_start = static_cast<const int32_t*>(c.tensor("groupStart", DType::I32, int64_t(a.n_groups) + 1));
  // The contract of ops.h, from the index tensors: 0 = group_start[0] <= ... <= batch, members distinct and in
  // range, shared_len within each context, equal in a group, and 0 outside every group.
  auto gs = c.read_ints(a.group_start, int64_t(a.n_groups) + 1);
  if (gs[0] != 0) throw make_error(c.env, eet::ErrorCode::InvalidArg, "groupStart must start at 0");
  for (int32_t g = 0; g < a.n_groups; ++g) {
    if (gs[size_t(g) + 1] < gs[size_t(g)]) throw make_error(c.env, eet::ErrorCode::InvalidArg, "groupStart must not decrease");
    a.max_group_size = std::max(a.max_group_size, gs[size_t(g) + 1] - gs[size_t(g)]);
  }
  c.check_ints("groupStart", gs, 0, a.batch);
  std::vector<int32_t> members;
  if (a.n_groups > 0 && gs[size_t(a.n_groups)] > 0) {
    a.group_seqs = static_cast<const int32_t*>(c.tensor("groupSeqs", DType::I32, gs[size_t(a.n_groups)]));
    members = c.read_ints(a.group_seqs, gs[size_t(a.n_groups)]);
    c.check_ints("groupSeqs", members, 0, a.batch - 1);
  } else if (a.n_groups > 0) {
    a.group_seqs = a.group_start;  // every group empty: never read
  }
  auto cl = c.read_ints(a.ctx_len, a.batch);
  auto sl = c.read_ints(a.shared_len, a.batch);
  int64_t cap = int64_t(a.max_blocks_per_seq) * a.layout.block_size;
  std::vector<int32_t> leader(static_cast<size_t>(a.batch), -1);
  for (int32_t g = 0; g < a.n_groups; ++g) {
    for (int32_t i = gs[size_t(g)]; i < gs[size_t(g) + 1]; ++i) {
      const int32_t b = members[size_t(i)], first = members[size_t(gs[size_t(g)])];
      if (leader[size_t(b)] >= 0) {
        throw make_error(c.env, eet::ErrorCode::InvalidArg, "sequence " + std::to_string(b) + " is in two groups");
      }
      leader[size_t(b)] = first;
      if (sl[size_t(b)] != sl[size_t(first)]) {
        throw make_error(c.env, eet::ErrorCode::InvalidArg, "group " + std::to_string(g) + ": sharedLen differs between its sequences");
      }
    }
  }
  for (int32_t b = 0; b < a.batch; ++b) {
    if (cl[size_t(b)] < 1 || cl[size_t(b)] > cap || sl[size_t(b)] < 0 || sl[size_t(b)] > cl[size_t(b)] ||
        (sl[size_t(b)] > 0 && leader[size_t(b)] < 0)) {
      throw make_error(c.env, eet::ErrorCode::InvalidArg,
                       "sequence " + std::to_string(b) + ": expected 0 <= sharedLen (" + std::to_string(sl[size_t(b)]) +
                           ") <= ctxLen (" + std::to_string(cl[size_t(b)]) + "), 1 <= ctxLen <= " + std::to_string(cap) +
                           ", and a group when sharedLen > 0");
    }
    a.max_ctx_len = std::max(a.max_ctx_len, cl[size_t(b)]);
    a.max_shared_len = std::max(a.max_shared_len, sl[size_t(b)]);
  }
  int64_t blocks = std::min(cache_blocks(c, "kCache", a.layout), cache_blocks(c, "vCache", a.layout));
  auto bt = c.read_ints(a.block_table, int64_t(a.batch) * a.max_blocks_per_seq);
  for (int32_t b = 0; b < a.batch; ++b) {  // the blocks of b's own keys; a leader's cover its group's shared keys
    int64_t first = sl[size_t(b)] / a.layout.block_size, used = (cl[size_t(b)] + a.layout.block_size - 1) / a.layout.block_size;
    std::vector<int32_t> mine(bt.begin() + int64_t(b) * a.max_blocks_per_seq + first, bt.begin() + int64_t(b) * a.max_blocks_per_seq + used);
    c.check_ints("blockTable", mine, 0, blocks - 1);
  }
  for (int32_t b = 0; b < a.batch; ++b) {
    if (leader[size_t(b)] != b) continue;
    int64_t used = (sl[size_t(b)] + a.layout.block_size - 1) / a.layout.block_size;
    std::vector<int32_t> shared(bt.begin() + int64_t(b) * a.max_blocks_per_seq, bt.begin() + int64_t(b) * a.max_blocks_per_seq + used);
    c.check_ints("blockTable", shared, 0, blocks - 1);
  }
  a.sm_count = sm_count(c);
  a.workspace_bytes = eet::shared_attention_workspace_bytes(eet::decode_shape(a));
  a.workspace = c.temp(a.workspace_bytes);
  return [be = c.backend, a] { be->shared_attention(a); };
}

}  // namespace ops
}  // namespace eet_node

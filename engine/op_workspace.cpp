// Workspace sizes of the ops that need scratch memory (ops.h). They are part of the op contract: the model plans
// its workspace from them, validate() checks every call against them, and the cuda/emu launchers carve the
// workspace up by the layouts documented in ops.h, with the same split. One definition, so none can disagree.
#include <algorithm>

#include "error.h"
#include "ops.h"

namespace eet {

namespace {
int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

// Blocks of one chunk of every sequence at `heads` query heads per block.
int64_t blocks_per_chunk(const AttnDecodeShape& s, int64_t heads) {
  return int64_t(s.batch) * s.n_kv_heads * ceil_div(s.n_heads / s.n_kv_heads, heads);
}

// The bandwidth split's chunk length: whole kAttentionDecodeChunkMin steps, as many chunks as give about
// kAttentionDecodeBlocksPerSm blocks per SM, capped at kAttentionDecodeChunkMax keys.
int64_t bandwidth_chunk_len(const AttnDecodeShape& s, int64_t per_chunk) {
  const int64_t want = ceil_div(int64_t(kAttentionDecodeBlocksPerSm) * s.sm_count, per_chunk);
  const int64_t len = ceil_div(ceil_div(s.max_ctx_len, want), kAttentionDecodeChunkMin) * kAttentionDecodeChunkMin;
  return std::min<int64_t>(len, kAttentionDecodeChunkMax);
}
}  // namespace

AttentionDecodeSplit attention_decode_split(const AttnDecodeShape& s) {
  const int64_t ctx = s.max_ctx_len, sms = s.sm_count;
  int64_t heads = std::min<int64_t>(kAttentionDecodeHeadsMax, s.n_heads / s.n_kv_heads);
  int64_t len = bandwidth_chunk_len(s, blocks_per_chunk(s, heads));
  const auto blocks = [&] { return blocks_per_chunk(s, heads) * ceil_div(ctx, len); };
  if (blocks() < sms) {
    // Latency: fewer blocks than SMs (here len is kAttentionDecodeChunkMin). First fewer query heads per block: each
    // head group reads its kv head's K/V again, few keys and likely from L2, and no partials are added; then
    // shorter chunks, each another partial for the combine to merge.
    while (heads > 1 && blocks() < sms) heads = ceil_div(heads, 2);
    if (blocks() < sms) {  // the longest chunks that still give a block per SM: ctx / len >= the chunks wanted
      len = std::max<int64_t>(kAttentionDecodeChunkFloor, ctx / ceil_div(sms, blocks_per_chunk(s, heads)));
    }
  }
  return {int32_t(len), int32_t(ceil_div(ctx, len)), int32_t(heads)};
}

size_t attention_workspace_bytes(const AttnDecodeShape& s) {
  const AttentionDecodeSplit split = attention_decode_split(s);
  if (split.n_chunks == 1) return 0;
  // part_ml (2 floats per chunk) then part_acc (head_dim floats per chunk), for every (sequence, query head)
  return sizeof(float) * size_t(s.batch) * size_t(s.n_heads) * size_t(split.n_chunks) * size_t(s.head_dim + 2);
}

namespace {
// The most bytes(shape) over every batch b in [1, max.batch] and context ctx in [1, max.max_ctx_len], for a size that
// grows with the decode split's chunk count at a fixed batch. Two ranges of contexts per batch:
// - latency contexts, where kAttentionDecodeChunkMin-key chunks of whole head groups give fewer blocks than SMs: the
//   contexts up to kAttentionDecodeChunkMin * (ceil(sm_count / per_chunk) - 1), per_chunk the blocks of one chunk.
//   (Past them the bandwidth split has at least a block per SM: with chunks longer than kAttentionDecodeChunkMin it
//   keeps over half the kAttentionDecodeBlocksPerSm * sm_count blocks it aims at, hence the static_assert.) Few
//   (at most kAttentionDecodeChunkMin * sm_count), so every one is tried;
// - bandwidth contexts: the chunk length is a non-decreasing step function of the context, and while it stays put
//   the chunk count ceil(ctx / len) only grows, so the count peaks at the last context of each step, where
//   ceil(ctx / want) reaches a multiple of kAttentionDecodeChunkMin, or at max_ctx_len. Those few contexts are the
//   candidates (the count itself is not monotonic: it drops where the chunk length steps up).
static_assert(kAttentionDecodeBlocksPerSm >= 2, "plan_over_splits: the latency contexts are a prefix");

template <typename Bytes>
size_t plan_over_splits(const AttnDecodeShape& max, Bytes bytes) {
  size_t most = 0;
  for (int32_t b = 1; b <= max.batch; ++b) {
    AttnDecodeShape s = max;
    s.batch = b;
    const auto at = [&](int64_t ctx) {
      s.max_ctx_len = int32_t(ctx);
      most = std::max(most, bytes(s));
    };
    const int64_t per_chunk = blocks_per_chunk(s, std::min<int64_t>(kAttentionDecodeHeadsMax, s.n_heads / s.n_kv_heads));
    const int64_t latency_end = std::min<int64_t>(max.max_ctx_len, kAttentionDecodeChunkMin * (ceil_div(s.sm_count, per_chunk) - 1));
    for (int64_t ctx = 1; ctx <= latency_end; ++ctx) at(ctx);
    const int64_t want = ceil_div(int64_t(kAttentionDecodeBlocksPerSm) * s.sm_count, per_chunk);
    for (int64_t len = kAttentionDecodeChunkMin;; len += kAttentionDecodeChunkMin) {
      const int64_t last = len >= kAttentionDecodeChunkMax ? max.max_ctx_len : std::min<int64_t>(max.max_ctx_len, len * want);
      at(last);
      if (last == max.max_ctx_len) break;
    }
  }
  return most;
}
}  // namespace

size_t attention_workspace_plan(const AttnDecodeShape& max) { return plan_over_splits(max, attention_workspace_bytes); }

size_t shared_attention_workspace_bytes(const AttnDecodeShape& s) {
  const AttentionDecodeSplit split = attention_decode_split(s);
  // n_chunks + 1 slots per (sequence, query head): the chunk slots and the one for a chunk cut by the shared length
  return sizeof(float) * size_t(s.batch) * size_t(s.n_heads) * size_t(split.n_chunks + 1) * size_t(s.head_dim + 2);
}

size_t shared_attention_workspace_plan(const AttnDecodeShape& max) {
  return plan_over_splits(max, shared_attention_workspace_bytes);
}

SampleWorkspaceLayout sample_workspace_layout(int64_t batch, int64_t vocab) {
  const char* what = "sample workspace";
  EET_REQUIRE(batch >= 0 && vocab >= 0, ErrorCode::InvalidArg, "size overflow in sample workspace");
  SampleWorkspaceLayout l{};
  l.n_chunks = ceil_div(vocab, kSampleChunk);
  l.cand_cap = std::min<int64_t>(vocab, kSampleCandidates);
  int64_t end = 0;
  // The next section of `rows` records of `row_bytes` bytes, at a multiple of 256 bytes.
  auto section = [&](int64_t rows, int64_t row_bytes) {
    const int64_t at = checked_add(end, 255, what) / 256 * 256;
    end = checked_add(at, checked_mul(rows, row_bytes, what), what);
    return size_t(at);
  };
  l.logits = section(batch, checked_mul(vocab, int64_t(sizeof(float)), what));
  l.candidates = section(batch, checked_mul(l.cand_cap, int64_t(sizeof(int32_t)), what));
  l.chunks = section(batch, checked_mul(l.n_chunks, kSampleChunkRecordBytes, what));
  l.bin_mass = section(batch, kSampleBins * int64_t(sizeof(uint64_t)));
  l.bin_count = section(batch, kSampleBins * int64_t(sizeof(uint32_t)));
  l.rows = section(batch, kSampleRowRecordBytes);
  l.total = size_t(end);
  return l;
}

size_t sample_workspace_bytes(int64_t batch, int64_t vocab) { return sample_workspace_layout(batch, vocab).total; }

}  // namespace eet

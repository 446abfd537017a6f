// Workspace sizes of the ops that need scratch memory (ops.h). They are part of the op contract: the model plans
// its workspace from them, validate() checks every call against them, and the cuda/emu launchers carve the
// workspace up by the layouts documented in ops.h, with the same split. One definition, so none can disagree.
#include <algorithm>

#include "error.h"
#include "ops.h"

namespace eet {

namespace {
// (sequence, query head, chunk) work items the decode split aims for: enough blocks to fill a large GPU.
constexpr int64_t kDecodeTargetItems = 4096;

int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }
}  // namespace

AttentionDecodeSplit attention_decode_split(int32_t batch, int32_t n_heads, int32_t max_ctx_len) {
  const int64_t want = ceil_div(kDecodeTargetItems, int64_t(batch) * n_heads);  // chunks per (sequence, head)
  int64_t len = ceil_div(ceil_div(max_ctx_len, want), kAttentionDecodeChunkMin) * kAttentionDecodeChunkMin;
  len = std::min<int64_t>(std::max<int64_t>(len, kAttentionDecodeChunkMin), kAttentionDecodeChunkMax);
  return {int32_t(len), int32_t(ceil_div(max_ctx_len, len))};
}

size_t attention_workspace_bytes(int32_t batch, int32_t n_heads, int32_t head_dim, int32_t max_ctx_len) {
  const AttentionDecodeSplit split = attention_decode_split(batch, n_heads, max_ctx_len);
  if (split.n_chunks == 1) return 0;
  // part_ml (2 floats per chunk) then part_acc (head_dim floats per chunk), for every (sequence, query head)
  return sizeof(float) * size_t(batch) * size_t(n_heads) * size_t(split.n_chunks) * size_t(head_dim + 2);
}

namespace {
// The most bytes(b, ctx) over every batch b in [1, max_batch] and context ctx in [1, max_ctx_len], for a size that,
// at a fixed batch, grows with the decode split's chunk count. For a fixed batch the chunk length is a non-decreasing
// step function of the context, and while it stays put the chunk count ceil(ctx / len) only grows: so the count
// peaks at the last context of each step, where ceil(ctx / want) reaches a multiple of kAttentionDecodeChunkMin, or
// at max_ctx_len. Those few contexts per batch are the candidates (the count itself is not monotonic: it drops
// where the chunk length steps up).
template <typename Bytes>
size_t plan_over_splits(int32_t max_batch, int32_t n_heads, int32_t max_ctx_len, Bytes bytes) {
  size_t most = 0;
  for (int32_t b = 1; b <= max_batch; ++b) {
    const int64_t want = ceil_div(kDecodeTargetItems, int64_t(b) * n_heads);
    for (int64_t len = kAttentionDecodeChunkMin;; len += kAttentionDecodeChunkMin) {
      const int64_t last = len >= kAttentionDecodeChunkMax ? max_ctx_len : std::min<int64_t>(max_ctx_len, len * want);
      most = std::max(most, bytes(b, int32_t(last)));
      if (last == max_ctx_len) break;
    }
  }
  return most;
}
}  // namespace

size_t attention_workspace_plan(int32_t max_batch, int32_t n_heads, int32_t head_dim, int32_t max_ctx_len) {
  return plan_over_splits(max_batch, n_heads, max_ctx_len, [&](int32_t b, int32_t ctx) {
    return attention_workspace_bytes(b, n_heads, head_dim, ctx);
  });
}

size_t shared_attention_workspace_bytes(int32_t batch, int32_t n_heads, int32_t head_dim, int32_t max_ctx_len) {
  const AttentionDecodeSplit split = attention_decode_split(batch, n_heads, max_ctx_len);
  // n_chunks + 1 slots per (sequence, query head): the chunk slots and the one for a chunk cut by the shared length
  return sizeof(float) * size_t(batch) * size_t(n_heads) * size_t(split.n_chunks + 1) * size_t(head_dim + 2);
}

size_t shared_attention_workspace_plan(int32_t max_batch, int32_t n_heads, int32_t head_dim, int32_t max_ctx_len) {
  return plan_over_splits(max_batch, n_heads, max_ctx_len, [&](int32_t b, int32_t ctx) {
    return shared_attention_workspace_bytes(b, n_heads, head_dim, ctx);
  });
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

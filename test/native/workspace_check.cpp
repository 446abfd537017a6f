// The attention decode split and workspace plan (engine/op_workspace.cpp) against brute-force sweeps.
// 1. The split's contract (engine/ops.h) at every (batch, context) of each shape: chunks cover the context with none
//    empty, at most kAttentionDecodeHeadsMax query heads per block, and at least one block per SM whenever the finest
//    split (one head per block, kAttentionDecodeChunkFloor-key chunks) would give that many.
// 2. For shapes where the chunk count is not monotonic in the context, every (batch, context) a step can reach must
//    fit in what attention_workspace_plan() reserves, and the plan must be that maximum exactly (no
//    over-reservation). The same for shared_attention_workspace_plan() (the shared-prefix decode op).
// (Issue 11 item 10: a plan taken at the largest context reserved too little for a smaller one.)
// 3. The sampler's workspace layout (ops.h), recomputed from its documented sizes, and its checked arithmetic.
#include <algorithm>
#include <cstdio>
#include <cstdint>

#include "engine/error.h"
#include "engine/ops.h"

namespace {

int failures = 0;

void check(bool ok, const char* what, long long a, long long b) {
  if (!ok && ++failures <= 20) std::printf("FAIL %s: %lld vs %lld\n", what, a, b);
}

struct Shape {
  int32_t heads, kv_heads, head_dim, max_ctx, max_batch, sms;
};

int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

}  // namespace

int main() {
  const Shape shapes[] = {
      {32, 32, 128, 8192, 4, 132},   // Llama-7B on an H100/H200
      {40, 40, 128, 4096, 4, 132},
      {32, 32, 128, 32768, 2, 132},  // long context, small batch
      {8, 8, 64, 20000, 3, 132},     // a context that is no multiple of the chunk step
      {1, 1, 8, 70000, 2, 132},      // one head: the largest chunk counts, chunk length at its cap
      {28, 28, 128, 4096, 33, 132},  // many batches, some with a single chunk
      {32, 4, 64, 4096, 17, 132},    // TinyLlama (GQA 8)
      {32, 4, 64, 4096, 8, 1},       // one SM (the cpu backends' value)
      {6, 1, 64, 3000, 5, 7},        // MQA, a group that halves unevenly, odd SM count
      {16, 2, 128, 5000, 3, 1024},   // the most SMs
      {12, 3, 64, 9000, 2, 108},     // GQA 4 on an A100
      {32, 4, 64, 3000, 4, 46},      // an sm_86 / sm_89 card's SM counts
      {32, 8, 128, 3000, 3, 84},
      {64, 8, 128, 3000, 2, 144},
      {32, 4, 64, 300, 2, 132},      // short maximum contexts: the latency split's chunks set the plan
      {8, 8, 64, 200, 3, 132},
  };
  int non_monotonic = 0;
  for (const Shape& s : shapes) {
    const int32_t group = s.heads / s.kv_heads;
    size_t brute = 0, shared_brute = 0, at_largest = 0;
    int32_t at_b = 0, at_c = 0;
    for (int32_t b = 1; b <= s.max_batch; ++b) {
      for (int32_t c = 1; c <= s.max_ctx; ++c) {
        const eet::AttnDecodeShape sh{b, s.heads, s.kv_heads, s.head_dim, c, s.sms};
        const eet::AttentionDecodeSplit sp = eet::attention_decode_split(sh);
        check(sp.n_chunks >= 1 && int64_t(sp.chunk_len) * sp.n_chunks >= c && int64_t(sp.chunk_len) * (sp.n_chunks - 1) < c,
              "chunks cover the context, none empty", sp.chunk_len, c);
        check(sp.heads_per_block >= 1 && sp.heads_per_block <= std::min(group, eet::kAttentionDecodeHeadsMax),
              "heads per block", sp.heads_per_block, group);
        const int64_t blocks = int64_t(b) * s.kv_heads * ceil_div(group, sp.heads_per_block) * sp.n_chunks;
        const int64_t finest = int64_t(b) * s.heads * ceil_div(c, eet::kAttentionDecodeChunkFloor);
        check(blocks >= std::min<int64_t>(s.sms, finest), "a block per SM where the finest split has one", blocks, s.sms);
        const size_t need = eet::attention_workspace_bytes(sh);
        if (need > brute) brute = need, at_b = b, at_c = c;
        shared_brute = std::max(shared_brute, eet::shared_attention_workspace_bytes(sh));
      }
    }
    const eet::AttnDecodeShape most{s.max_batch, s.heads, s.kv_heads, s.head_dim, s.max_ctx, s.sms};
    for (int32_t b = 1; b <= s.max_batch; ++b) {
      at_largest = std::max(at_largest, eet::attention_workspace_bytes({b, s.heads, s.kv_heads, s.head_dim, s.max_ctx, s.sms}));
    }
    const size_t plan = eet::attention_workspace_plan(most);
    const size_t shared_plan = eet::shared_attention_workspace_plan(most);
    std::printf("heads %d/%d x %d, maxContext %d, maxBatch %d, %d SMs: plan %zu, sweep max %zu (batch %d, context %d), "
                "at the largest context %zu; shared plan %zu, sweep max %zu\n",
                s.heads, s.kv_heads, s.head_dim, s.max_ctx, s.max_batch, s.sms, plan, brute, at_b, at_c, at_largest,
                shared_plan, shared_brute);
    check(plan == brute, "plan == the sweep's maximum", (long long)plan, (long long)brute);
    check(shared_plan == shared_brute, "shared plan == the sweep's maximum", (long long)shared_plan, (long long)shared_brute);
    non_monotonic += brute > at_largest;
  }
  // The sweep is a real check: some shapes need more at a smaller context than at the largest.
  check(non_monotonic > 0, "shapes whose largest context needs less than the sweep's maximum", non_monotonic, 1);
  // The sampler's workspace (ops.h: six sections in order, each at a multiple of 256 bytes), recomputed here from
  // the documented sizes, and its checked arithmetic: a size past int64 is ERR_INVALID_ARG, not a wrapped number.
  const long long sample_shapes[][2] = {{1, 1}, {1, 1000}, {16, 32000}, {64, 151936}, {3, 2049}, {1, 1 << 24}};
  for (const auto& sh : sample_shapes) {
    const long long B = sh[0], V = sh[1], chunks = (V + 2047) / 2048, cap = std::min(V, 16384LL);
    const long long bytes[6] = {B * V * 4, B * cap * 4, B * chunks * 40, B * 2048 * 8, B * 2048 * 4, B * 64};
    const eet::SampleWorkspaceLayout l = eet::sample_workspace_layout(B, V);
    const size_t offs[6] = {l.logits, l.candidates, l.chunks, l.bin_mass, l.bin_count, l.rows};
    long long end = 0;
    for (int i = 0; i < 6; ++i) {
      const long long at = (end + 255) / 256 * 256;
      check((long long)offs[i] == at, "sample section offset", (long long)offs[i], at);
      end = at + bytes[i];
    }
    check((long long)l.total == end && eet::sample_workspace_bytes(B, V) == l.total, "sample total", (long long)l.total, end);
    check(l.n_chunks == chunks && l.cand_cap == cap, "sample chunks and capacity", l.n_chunks, chunks);
  }
  const long long bad_sizes[][2] = {{1LL << 40, 1 << 24}, {-1, 100}, {1, -5}, {1LL << 62, 1}};
  for (const auto& sh : bad_sizes) {
    bool threw = false;
    try {
      eet::sample_workspace_bytes(sh[0], sh[1]);
    } catch (const eet::Error& e) {
      threw = e.code() == eet::ErrorCode::InvalidArg;
    }
    check(threw, "sample workspace size overflow is ERR_INVALID_ARG", sh[0], sh[1]);
  }
  std::printf("%s (%d failures)\n", failures ? "FAILED" : "OK", failures);
  return failures ? 1 : 0;
}

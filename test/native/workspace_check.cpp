// The attention workspace plan (engine/op_workspace.cpp) against a brute-force sweep: for model shapes where the
// decode split's chunk count is not monotonic in the context, every (batch, context) a step can reach must fit in
// what attention_workspace_plan() reserves, and the plan must be that maximum exactly (no over-reservation).
// The same for shared_attention_workspace_plan() (the shared-prefix decode op). And the sampler's workspace layout.
// Issue 11 item 10: 32 heads x 128, maxContext 8192, maxBatch 4 needed 2,146,560 bytes at batch 3, context 5,377
// while the old plan (the value at the largest context) reserved 2,129,920.
#include <algorithm>
#include <cstdio>
#include <cstdint>

#include "engine/error.h"
#include "engine/ops.h"

namespace {

int failures = 0;

void check(bool ok, const char* what, long long a, long long b) {
  if (!ok) {
    ++failures;
    std::printf("FAIL %s: %lld vs %lld\n", what, a, b);
  }
}

struct Shape {
  int32_t heads, head_dim, max_ctx, max_batch;
};

}  // namespace

int main() {
  const Shape shapes[] = {
      {32, 128, 8192, 4},   // the first report
      {40, 128, 4096, 4},   // its second
      {32, 128, 32768, 2},  // long context, small batch
      {8, 64, 20000, 3},    // a context that is no multiple of the chunk step
      {1, 8, 70000, 2},     // one head: the largest chunk counts, chunk length at its cap
      {28, 128, 4096, 33},  // many batches, some with a single chunk
  };
  for (const Shape& s : shapes) {
    size_t brute = 0, old_plan = 0;
    int32_t at_b = 0, at_c = 0;
    for (int32_t b = 1; b <= s.max_batch; ++b) {
      old_plan = std::max(old_plan, eet::attention_workspace_bytes(b, s.heads, s.head_dim, s.max_ctx));
      for (int32_t c = 1; c <= s.max_ctx; ++c) {
        const size_t need = eet::attention_workspace_bytes(b, s.heads, s.head_dim, c);
        if (need > brute) brute = need, at_b = b, at_c = c;
      }
    }
    const size_t plan = eet::attention_workspace_plan(s.max_batch, s.heads, s.head_dim, s.max_ctx);
    std::printf("heads %d x %d, maxContext %d, maxBatch %d: plan %zu, sweep max %zu (batch %d, context %d), at the largest context %zu\n",
                s.heads, s.head_dim, s.max_ctx, s.max_batch, plan, brute, at_b, at_c, old_plan);
    check(plan == brute, "plan == the sweep's maximum", (long long)plan, (long long)brute);
    // The shared-prefix op (n_chunks + 1 partial slots, any context): the same sweep against its own plan.
    size_t shared_brute = 0;
    for (int32_t b = 1; b <= s.max_batch; ++b) {
      for (int32_t c = 1; c <= s.max_ctx; ++c) shared_brute = std::max(shared_brute, eet::shared_attention_workspace_bytes(b, s.heads, s.head_dim, c));
    }
    const size_t shared_plan = eet::shared_attention_workspace_plan(s.max_batch, s.heads, s.head_dim, s.max_ctx);
    std::printf("  shared_attention: plan %zu, sweep max %zu\n", shared_plan, shared_brute);
    check(shared_plan == shared_brute, "shared plan == the sweep's maximum", (long long)shared_plan, (long long)shared_brute);
  }
  // The numbers, from its report (not from the code under test): the shape does need more than the value at
  // the largest context, so the sweep above is a real check.
  check(eet::attention_workspace_bytes(3, 32, 128, 5377) == 2146560, "32x128 batch 3 context 5377", (long long)eet::attention_workspace_bytes(3, 32, 128, 5377), 2146560);
  check(eet::attention_workspace_plan(4, 32, 128, 8192) >= 2146560, "plan covers the issue's case", (long long)eet::attention_workspace_plan(4, 32, 128, 8192), 2146560);
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

// The KV block pool (engine/block_pool.*) and the step scheduler (engine/scheduler.*) without a model: plans are
// checked against what the design says they must be, steps are "run" by a fake that samples token
// f(seed, step, sample) — so a sequence's tokens do not depend on when, with whom or after how many preemptions
// it ran, which is what the scheduler must preserve. Built and run by test/unit/scheduler.test.ts.
// Prints one line per failed check and "OK (0 failures)" at the end.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <map>
#include <set>
#include <string>
#include <tuple>
#include <vector>

#include "../../engine/block_pool.h"
#include "../../engine/scheduler.h"

using namespace eet;

static int failures = 0;
#define CHECK(cond, ...)                                        \
  do {                                                          \
    if (!(cond)) {                                              \
      failures++;                                               \
      std::printf("FAIL %s:%d: %s — ", __FILE__, __LINE__, #cond); \
      std::printf(__VA_ARGS__);                                 \
      std::printf("\n");                                        \
    }                                                           \
  } while (0)

namespace {

int32_t fake_token(uint64_t seed, uint64_t step) { return 3 + int32_t((seed * 31 + step * 7) % 40); }

struct Harness {
  BlockPool pool;
  std::vector<std::pair<int32_t, int32_t>> copies;
  Scheduler sched;
  std::map<uint64_t, std::map<int32_t, std::vector<int32_t>>> tokens;  // request -> sample -> tokens
  std::map<uint64_t, RequestDone> done;
  std::vector<TokenEvent> aborted;
  std::vector<uint64_t> last;  // the requests of the last step's entries (sequences may be freed by commit)
  // Rows for which the fake sampler reports non-finite logits (token -1): (request, sample index, step).
  std::set<std::tuple<uint64_t, int32_t, uint64_t>> poison;

  Harness(int32_t blocks, SchedulerConfig cfg)
      : pool(blocks), sched(cfg, pool, [this](int32_t dst, int32_t src) { copies.push_back({dst, src}); }) {}

  ScheduledStep step() {
    ScheduledStep st = sched.plan();
    StepOutput out;
    for (size_t k = 0; k < st.rows.size(); ++k) {
      const SampleRow& r = st.rows[k];
      const bool bad = poison.count({st.entries[size_t(r.entry)].seq->request, st.row_index[k], r.step}) > 0;
      out.tokens.push_back(bad ? -1 : fake_token(r.seed, r.step));
      out.logprobs.push_back(0.0f);
    }
    StepEvents ev;
    last.clear();
    for (const StepEntry& e : st.entries) last.push_back(e.seq->request);
    if (!st.empty()) sched.commit(st, out, ev);
    for (const TokenEvent& t : ev.tokens) {
      if (t.token >= 0) tokens[t.request][t.index].push_back(t.token);
      if (t.finish == Finish::Abort) aborted.push_back(t);
    }
    for (const RequestDone& d : ev.done) done[d.request] = d;
    return st;
  }
  void run(int max_steps = 1000) {
    for (int i = 0; i < max_steps && !sched.idle(); ++i) step();
  }
};

GenerateRequest request(uint64_t id, std::vector<int32_t> prompt, int32_t max_new, int32_t n = 1, uint64_t seed = 0) {
  GenerateRequest r;
  r.id = id;
  r.prompt = std::move(prompt);
  r.max_new_tokens = max_new;
  r.n = n;
  r.seed = seed;
  r.sampling.temperature = 1.0f;
  return r;
}

std::vector<int32_t> ids(int32_t n, int32_t base = 100) {
  std::vector<int32_t> v;
  for (int32_t i = 0; i < n; ++i) v.push_back(base + i);
  return v;
}

std::vector<int32_t> expected(uint64_t seed, int32_t n) {
  std::vector<int32_t> v;
  for (int32_t k = 0; k < n; ++k) v.push_back(fake_token(seed, uint64_t(k)));
  return v;
}

void block_pool() {
  BlockPool p(4);
  std::vector<int32_t> got;
  for (int i = 0; i < 4; ++i) got.push_back(p.allocate());
  CHECK((got == std::vector<int32_t>{0, 1, 2, 3}), "lowest id first");
  CHECK(p.allocate() == -1 && p.available() == 0, "an empty pool gives -1");
  const std::vector<int32_t> t = ids(16);
  const uint64_t h0 = BlockPool::chain_hash(0, t.data());
  CHECK(p.publish(0, 0, h0, t.data()), "publish a held block");
  CHECK(!p.publish(1, 0, h0, t.data()), "a key is published once");
  CHECK(p.lookup(0, h0, t.data()) == 0, "lookup finds it");
  std::vector<int32_t> other = t;
  other[15] = 7;
  CHECK(p.lookup(0, h0, other.data()) == -1, "a colliding hash with other tokens is a miss, never a wrong hit");
  CHECK(p.lookup(h0, h0, t.data()) == -1, "another parent is a miss");
  CHECK(BlockPool::chain_hash(h0, t.data()) != h0, "the chain hash depends on the parent");
  p.retain(0);
  p.release(0);
  CHECK(p.ref_count(0) == 1 && p.cached() == 1 && p.evictable() == 0, "a held cached block is not evictable");
  p.release(0);
  CHECK(p.evictable() == 1 && p.available() == 1 && p.lookup(0, h0, t.data()) == 0, "released cached: evictable, still found");
  p.retain(0);
  CHECK(p.evictable() == 0 && p.ref_count(0) == 1, "a cache hit takes it off the LRU list");
  p.release(0);
  p.release(1);  // not published: to the free list
  CHECK(p.allocate() == 1, "the free list before evicting");
  CHECK(p.allocate() == 0 && p.lookup(0, h0, t.data()) == -1 && p.cached() == 0, "then the LRU block, unpublished");
  bool threw = false;
  try {
    p.release(0);
    p.release(0);
  } catch (const Error&) {
    threw = true;
  }
  CHECK(threw, "releasing an unheld block is an error, not a silent double free");
}

void admission_and_chunks() {
  Harness h(64, {2, 20, 512, 8});
  h.sched.add(request(1, ids(3), 30));
  h.step();
  h.step();
  h.sched.add(request(2, ids(40), 4));
  h.sched.add(request(3, ids(2), 4));
  // Request 3 waits: two slots, both taken. Request 2's 40 prompt tokens come 8 per step while 1 decodes.
  int32_t fed = 0;
  for (int i = 0; i < 5; ++i) {
    ScheduledStep st = h.step();
    CHECK(st.entries.size() == 2, "step %d: the decode and one prefill chunk (%zu entries)", i, st.entries.size());
    int32_t decode = 0, chunk = 0;
    for (size_t k = 0; k < st.entries.size(); ++k) (h.last[k] == 1 ? decode : chunk) = st.entries[k].count;
    CHECK(decode == 1 && chunk == 8, "step %d: decode %d, chunk %d", i, decode, chunk);
    fed += chunk;
  }
  CHECK(fed == 40 && h.tokens[2][0].size() == 1, "the prompt is read, its first token sampled (%d)", fed);
  h.run();
  CHECK(h.done.count(1) && h.done.count(2) && h.done.count(3), "all three end");
  CHECK(h.tokens[3][0] == expected(0, 4), "the queued request got its tokens once a slot freed");
  CHECK(h.tokens[1][0] == expected(0, 30), "the decoding request was never disturbed");
  CHECK(h.pool.in_use() == 0, "every block is back (%d in use)", h.pool.in_use());
}

void prefix_cache() {
  Harness h(32, {4, 64, 512, 64});
  h.sched.add(request(1, ids(40), 1));
  h.run();
  CHECK(h.pool.cached() == 2, "40 tokens: two full blocks published (%d)", h.pool.cached());
  h.sched.add(request(2, ids(40), 1));
  ScheduledStep st = h.step();
  CHECK(st.entries.size() == 1 && st.entries[0].count == 8, "a hit computes only the last 8 tokens (%d)", st.entries[0].count);
  CHECK(h.done[2].cached_tokens == 32, "32 cached tokens reported (%d)", h.done[2].cached_tokens);
  h.sched.add(request(3, ids(32), 1));
  st = h.step();
  CHECK(st.entries[0].count == 16, "a full hit recomputes the last block: its last token's logits are needed (%d)", st.entries[0].count);
  std::vector<int32_t> diverge = ids(40);
  diverge[20] = 5;
  h.sched.add(request(4, diverge, 1));
  st = h.step();
  CHECK(st.entries[0].count == 24, "a prompt that differs in block 1 reuses block 0 only (%d)", st.entries[0].count);
  h.sched.add(request(5, ids(20), 0));
  h.run();
  CHECK(h.done.count(5) && h.tokens[5].empty(), "prefill only: done, nothing sampled");
  CHECK(h.pool.in_use() == 0, "every block is back");
}

void forks() {
  Harness h(32, {4, 64, 512, 64});
  h.sched.add(request(1, ids(20), 5, 3, 50));
  ScheduledStep st = h.step();
  CHECK(st.entries.size() == 1 && st.entries[0].count == 20, "the prompt is computed once");
  CHECK(st.rows.size() == 3 && st.row_index == (std::vector<int32_t>{0, 1, 2}), "one row per sample");
  CHECK(st.rows[0].seed == 50 && st.rows[1].seed == 51 && st.rows[2].seed == 52, "sample j seeded seed + j");
  CHECK(h.copies.size() == 2, "the partial last block is copied for the two new sequences (%zu)", h.copies.size());
  CHECK(h.pool.ref_count(0) == 3, "the full block is shared by the three (%d)", h.pool.ref_count(0));
  st = h.step();
  CHECK(st.entries.size() == 3, "then three sequences decode");
  std::set<int32_t> last;
  for (const StepEntry& e : st.entries) last.insert(e.seq->blocks[1]);
  CHECK(last.size() == 3, "each writes its own last block");
  h.run();
  for (int32_t j = 0; j < 3; ++j) CHECK(h.tokens[1][j] == expected(50 + j, 5), "sample %d = its seed's tokens", j);
  CHECK(h.pool.in_use() == 0, "every block is back");

  Harness e(32, {4, 64, 512, 64});
  e.sched.add(request(1, ids(32), 3, 2));
  e.step();
  CHECK(e.copies.empty() && e.pool.ref_count(0) == 2 && e.pool.ref_count(1) == 2, "32 tokens: nothing to copy, both blocks shared");

  Harness c(32, {4, 64, 512, 64});
  c.sched.add(request(1, ids(20), 4, 3, 7));
  StepEvents ev;
  c.sched.cancel(1, 1, ev);
  CHECK(ev.tokens.size() == 1 && ev.tokens[0].finish == Finish::Abort && ev.tokens[0].index == 1, "the cancelled sample is reported");
  st = c.step();
  CHECK(st.rows.size() == 2 && st.row_index == (std::vector<int32_t>{0, 2}), "no row for a cancelled sample");
  c.run();
  CHECK(c.tokens[1].count(1) == 0 && c.tokens[1][2] == expected(9, 4) && c.done.count(1), "the others run to the end");
}

void preemption() {
  // 4 blocks: each request may need all of them (20 prompt + 40 new), so they cannot both hold theirs.
  Harness h(4, {2, 64, 512, 64});
  h.sched.add(request(1, ids(20), 40, 1, 1));
  h.sched.add(request(2, ids(20, 300), 40, 1, 2));
  int32_t gaps = 0;  // steps in which the older request, unfinished, computed nothing
  for (int i = 0; i < 1000 && !h.sched.idle(); ++i) {
    h.step();
    const bool older = std::count(h.last.begin(), h.last.end(), 1u) > 0;
    if (!older && !h.done.count(1)) gaps++;
  }
  CHECK(gaps == 0, "the newest is preempted, never the oldest (%d steps without request 1)", gaps);
  ContextStats s;
  h.sched.fill_stats(s);
  CHECK(s.preemptions > 0, "the newest was preempted (%lld)", (long long)s.preemptions);
  CHECK(h.tokens[1][0] == expected(1, 40) && h.tokens[2][0] == expected(2, 40), "both still produce exactly their tokens");
  CHECK(h.pool.in_use() == 0, "every block is back");

  Harness r(4, {2, 64, 512, 64});
  bool threw = false;
  try {
    r.sched.check(request(9, ids(40), 40));
  } catch (const Error& e) {
    threw = std::string(e.what()).find("needs 5 KV blocks") != std::string::npos;
  }
  CHECK(threw, "a request that can never fit is rejected, naming the sizes");
}

void failures_and_cancel() {
  Harness h(16, {2, 64, 512, 64});
  h.sched.add(request(1, ids(10), 5));
  h.sched.add(request(2, ids(10), 5));
  h.sched.add(request(3, ids(10), 5));  // waits for a slot
  ScheduledStep st = h.sched.plan();
  StepEvents ev;
  h.sched.fail(st, Error(ErrorCode::Cuda, "boom"), ev);
  CHECK(ev.done.size() == 2 && ev.done[0].failed && ev.done[0].code == ErrorCode::Cuda, "the step's requests fail with its error");
  CHECK(h.pool.in_use() == 0, "their blocks are back");
  StepEvents ev2;
  h.sched.cancel(3, -1, ev2);
  CHECK(ev2.done.size() == 1 && h.sched.idle() && h.sched.queued_requests() == 0, "a waiting request cancelled is done");
}

// Non-finite logits (the sampler's token -1): the request fails with ERR_NUMERIC, whole (all its samples), in
// the middle of a step whose other rows commit as usual; its blocks come back. ASan catches a commit that walks
// a sequence the failure freed.
void numeric() {
  Harness h(64, {4, 64, 512, 16});
  h.sched.add(request(1, ids(20), 5));
  h.sched.add(request(2, ids(20, 300), 5, 3, 50));  // n = 3: sample 2 goes bad after its first token
  h.sched.add(request(3, ids(20, 500), 5));
  h.poison.insert({1, 0, 2});
  h.poison.insert({2, 2, 1});
  h.run();
  for (uint64_t id : {uint64_t(1), uint64_t(2)}) {
    CHECK(h.done.count(id) && h.done[id].failed && h.done[id].code == ErrorCode::Numeric, "request %llu fails with ERR_NUMERIC",
          (unsigned long long)id);
  }
  CHECK(h.done[1].message.find("position 22 of sample 0") != std::string::npos, "the message names where: %s", h.done[1].message.c_str());
  CHECK(h.tokens[1][0] == expected(0, 2), "the tokens before the bad step were delivered (%zu)", h.tokens[1][0].size());
  CHECK(h.done.count(3) && !h.done[3].failed && h.tokens[3][0] == expected(0, 5), "the request beside them is untouched");
  CHECK(h.pool.in_use() == 0 && h.sched.idle(), "every block is back (%d in use)", h.pool.in_use());
}

// Queue time: from GenerateRequest::submitted to the first admission, or to the end for a request never admitted.
// Submission times set in the past make the bounds hold by construction (no sleeping, no timing assumptions).
void queue_time() {
  Harness h(16, {1, 64, 512, 64});
  const Clock::time_point now = Clock::now();
  GenerateRequest a = request(1, ids(10), 3), b = request(2, ids(10), 3), c = request(3, ids(10), 3);
  a.submitted = now - std::chrono::seconds(5);
  b.submitted = now - std::chrono::seconds(20);
  c.submitted = now - std::chrono::seconds(60);
  h.sched.add(a);
  h.sched.add(b);  // waits for a's slot (maxBatch 1)
  h.sched.add(request(4, ids(10), 3));  // submitted unset: add() stamps it
  h.sched.add(c);
  h.step();
  StepEvents ev;
  h.sched.cancel(3, -1, ev);  // never admitted
  CHECK(ev.done.size() == 1 && ev.done[0].queue_ms >= 60000.0, "a request cancelled in the queue reports its wait (%f)",
        ev.done.empty() ? -1.0 : ev.done[0].queue_ms);
  h.run();
  CHECK(h.done.count(1) && h.done.count(2) && h.done.count(4), "all end");
  CHECK(h.done[1].queue_ms >= 5000.0 && h.done[1].queue_ms < h.done[2].queue_ms,
        "submission to admission: %f, then %f for the one submitted earlier", h.done[1].queue_ms, h.done[2].queue_ms);
  CHECK(h.done[4].queue_ms >= 0.0 && h.done[4].queue_ms < h.done[2].queue_ms,
        "stamped at add(), after the others: %f, less than %f", h.done[4].queue_ms, h.done[2].queue_ms);
}

}  // namespace

int main() {
  block_pool();
  admission_and_chunks();
  prefix_cache();
  forks();
  preemption();
  failures_and_cancel();
  numeric();
  queue_time();
  std::printf("%s (%d failures)\n", failures ? "FAILED" : "OK", failures);
  return failures ? 1 : 0;
}

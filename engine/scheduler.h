// Which tokens of which sequences the next step computes (design.md "Execution and threads"; the shape of vLLM's
// v1 scheduler). It owns the requests and their sequences and asks the block pool (block_pool.h) questions; it
// computes nothing and touches no device memory except through the copy callback, so it is testable without a
// model (test/native/scheduler_check.cpp).
//
// A step, built by plan():
//   1. running sequences, oldest admission first: a decoding sequence (one token pending) feeds 1 token; a
//      prefilling one feeds its next chunk — at most one chunk per sequence per step, at most prefill_chunk
//      tokens, from what the step's token budget leaves after every running decode got its token. So a long
//      prompt is read over several steps while the others keep producing tokens.
//   2. then waiting sequences, first in first out (preempted ones first: they were admitted earlier), while a
//      slot, budget and blocks remain. A new sequence first takes the longest run of published prefix-cache
//      blocks its tokens start with (at least its last token is always computed, so a full hit recomputes the
//      last block) and computes only the rest.
//   Blocks for the step's tokens are allocated as the step is built. When a running sequence needs a block and
//   none is available, the newest running sequence is preempted: its blocks are released (its full blocks stay
//   findable in the prefix cache) and it waits to be recomputed from its tokens; sampling continues where it
//   stopped because the RNG counter is the sequence's generated-token count, not a step count. Waiting sequences
//   never preempt; a sequence that can never fit is rejected by check() before it is queued.
// Queue time: a request's wait from submission (GenerateRequest::submitted, steady clock) to its first admission —
// a later re-admission after preemption does not count — is reported in RequestDone::queue_ms.
// After the step, commit(): computed counts advance, newly full blocks are published, sampled tokens appended,
// finished sequences release their blocks and slots, and the n samples of a prompt fork: the prompt was computed
// once for its first sequence, whose final prefill step sampled one row per sample; each other sample becomes a
// sequence sharing the prompt's full blocks (reference counts) with a private copy of the last partial block
// (copy_block), or — when no block is free for that copy — waits to be recomputed like a preempted one.
// Not thread-safe: the context's step mutex guards it.
#pragma once
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <vector>

#include "block_pool.h"
#include "runner.h"
#include "sequence.h"

namespace eet {

struct SchedulerConfig {
  int32_t max_batch = 1;        // sequences holding a slot at once (running), low-level API sequences included
  int32_t max_step_tokens = 1;  // tokens per step (>= max_batch, so every running decode fits)
  int32_t max_context = 1;      // positions per sequence
  int32_t prefill_chunk = 1;    // most prompt tokens one sequence feeds in one step
  bool prefix_caching = true;   // publish full blocks and reuse them across requests (off: nothing is shared)
};

// A planned step: what to run, and which sequence (or which sample of an unforked prompt) each row feeds.
struct ScheduledStep {
  std::vector<StepEntry> entries;
  std::vector<SampleRow> rows;
  std::vector<int32_t> row_index;  // the request index (0..n-1) each row samples for
  bool empty() const { return entries.empty(); }
};

class Scheduler {
 public:
  using CopyBlock = std::function<void(int32_t dst, int32_t src)>;
  Scheduler(const SchedulerConfig& config, BlockPool& pool, CopyBlock copy_block);
  ~Scheduler();

  // Throws ERR_INVALID_ARG when the request can never run in this context (too long, too many samples, more
  // blocks than the pool holds). Thread-safe (reads constants only), so the context calls it at submission.
  void check(const GenerateRequest& r) const;
  void add(GenerateRequest r);
  // Ends a request's sequences (index -1: all of them, else that sample) and reports them as aborted.
  void cancel(uint64_t request, int32_t index, StepEvents& ev);
  ScheduledStep plan();
  void commit(const ScheduledStep& step, const StepOutput& out, StepEvents& ev);
  // The step threw: every request with a sequence in it fails with the error.
  void fail(const ScheduledStep& step, const Error& e, StepEvents& ev);
  // Ends every request with the error (the context is going away).
  void fail_all(const Error& e, StepEvents& ev);

  bool idle() const { return running_.empty() && waiting_.empty(); }
  int32_t queued_requests() const { return queued_; }  // added, never admitted
  void fill_stats(ContextStats& s) const;

  // Slots of the low-level API's sequences (context.h), taken from the same table so maxBatch bounds both.
  int32_t acquire_slot();  // -1 when none is free
  void release_slot(int32_t slot);

 private:
  struct Request;
  struct Sample {  // a row's output
    int32_t index;  // which of the request's n
    int32_t token;
    float logprob;
    std::vector<float> logits;
    std::optional<RawLogprobs> raw;
  };
  int32_t free_slots() const;
  int32_t forks_pending(const Sequence& s) const;
  void match_prefix(Sequence& s);
  bool grow(Sequence& s, int32_t tokens);  // blocks for that many tokens; false when the pool has none
  int32_t fit(const Sequence& s, int32_t count) const;  // tokens of count the available blocks can hold
  void release_blocks(Sequence& s);
  void preempt(Sequence* s);
  void publish_blocks(Sequence& s);
  void fork(Sequence& parent, std::vector<Sample>& samples, StepEvents& ev);
  // Appends a sampled token; reports it, and ends the sequence when it is finished.
  void take_token(Sequence& s, Sample&& out, StepEvents& ev);
  void finish(Sequence* s, Finish why, StepEvents& ev, bool report);
  void close_if_done(uint64_t request, StepEvents& ev);  // all samples ended: drop what is left, report it
  void drop_all(uint64_t request);
  void fail_request(Request& r, const Error& e, StepEvents& ev);
  void drop(Sequence* s);  // removes it from running / waiting and frees it

  SchedulerConfig cfg_;
  BlockPool& pool_;
  CopyBlock copy_block_;
  std::map<uint64_t, std::unique_ptr<Request>> requests_;
  std::map<int64_t, std::unique_ptr<Sequence>> seqs_;
  std::vector<Sequence*> running_;   // admission order
  std::deque<Sequence*> waiting_;
  std::vector<bool> slot_used_;
  int32_t reserved_ = 0;             // slots held for the samples of unforked prompts
  int32_t queued_ = 0;
  int64_t next_seq_ = 1;
  uint64_t next_order_ = 1;
  ContextStats totals_;
};

}  // namespace eet

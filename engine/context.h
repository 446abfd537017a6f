// A context: what one serving instance owns on top of a model's shared weights (model.h) — the KV block pool
// (kv_cache.h + block_pool.h), the sequences, the workspace (runner.h), step planning (scheduler.h) and the engine
// loop (design.md "Execution and threads").
//
// The engine loop runs on the context's own thread. Requests (GenerateRequest) from any number of callers are
// submitted at any time; between two steps the loop applies what arrived (new requests, cancellations), plans a
// step, runs it and hands the step's events (tokens, finished requests) to the listener — which, in the addon, is
// a thread-safe function into JS. No JS event-loop turn is needed between two steps, and nothing a caller does
// waits for a step except the low-level API below.
//
// Low-level API (teacher forcing, tests, custom loops): start_sequence / step / end_sequence drive sequences
// directly, slot by slot, as one forward pass per call; embed() runs an encoder (bert). These take the same step
// mutex as the loop, so they run between its steps, and their sequences share its slots and blocks.
#pragma once
#include <atomic>
#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "kv_cache.h"
#include "model.h"
#include "runner.h"
#include "scheduler.h"

namespace eet {

struct ContextConfig {
  int32_t max_batch = 4;          // sequences running at once (slots)
  int32_t max_context = 0;        // positions per sequence (<= the model's maxSeqLen); 0 = maxSeqLen
  int32_t max_step_tokens = 512;  // tokens per step (>= max_batch)
  int32_t prefill_chunk = 0;      // most prompt tokens of one sequence per step; 0 = max_step_tokens
  int64_t kv_cache_tokens = 0;    // KV pool size in tokens; 0 = kv_cache_bytes, or the default (context.cpp)
  int64_t kv_cache_bytes = 0;
  int32_t max_queued = 1024;      // requests waiting for admission before submit() rejects with ERR_BUSY
  bool prefix_caching = true;     // share computed prompt blocks across requests (n > 1 forks share regardless)
  bool shared_prefix_attention = true;  // decode: read blocks shared by several sequences once (StepRunner)
  bool cuda_graphs = true;        // decode steps recorded once per shape and replayed (step_graphs.h)
};

enum class LogitsMode { None, Last, All };

// One low-level step: the new tokens of several live slots, packed.
struct StepRequest {
  std::vector<int32_t> slots, tokens, counts;  // counts[i] new tokens of slots[i], packed in tokens
  std::vector<float> temperature, top_p, repetition_penalty;
  std::vector<int32_t> top_k;
  // Optional (empty = 0 for every slot). A low-level sequence has no prompt: they count its whole context.
  std::vector<float> presence_penalty, frequency_penalty;
  LogitsMode logits = LogitsMode::None;
};

struct StepResult {
  std::vector<int32_t> tokens;  // (B) sampled after each slot's last new token
  std::vector<float> logprobs;  // (B)
  std::vector<float> logits;    // (rows, vocab) float32: rows = B ('last') or sum(counts) ('all'); empty for 'none'
};

enum class Pooling { Mean, Cls };

// Sentence embeddings from an encoder (bert): one pass over each sequence, its final hidden states pooled.
struct EmbedRequest {
  std::vector<int32_t> tokens, counts;  // counts[i] tokens of sequence i, packed in tokens
  std::vector<int32_t> token_types;     // one per token, or empty (all 0)
  Pooling pooling = Pooling::Mean;
  bool normalize = false;               // L2-normalise each pooled vector
};

struct MemoryReport {
  size_t weights, kv_cache, workspace;
};

class Context {
 public:
  using Listener = std::function<void(StepEvents&&)>;

  // Validates the config against the model (ERR_INVALID_ARG naming the option), sizes and allocates the KV pool
  // and the workspace. The loop starts with start().
  Context(std::shared_ptr<const Model> model, const ContextConfig& config);
  ~Context();
  Context(const Context&) = delete;
  Context& operator=(const Context&) = delete;

  const ContextConfig& config() const { return cfg_; }  // with the defaults resolved
  const Model& model() const { return *model_; }

  // The engine loop. The listener is called on the loop's thread after every step that produced events, and once
  // more at shutdown with the requests still in flight (failed with ERR_DISPOSED).
  void start(Listener listener);
  // Thread-safe. ERR_INVALID_ARG when a request can never run here, ERR_BUSY when maxQueued requests wait. The
  // requests of one call are queued together (all or none), so the loop sees them in the same step.
  void submit(std::vector<GenerateRequest> requests);
  // Thread-safe. Ends the request's sequences (index -1) or one sample, at the next step boundary; events report
  // them as aborted. Unknown or finished requests are ignored.
  void cancel(uint64_t request, int32_t index);
  // Stops the loop (waits for the step in flight) and fails what is left. Idempotent.
  void shutdown();
  ContextStats stats() const;

  // Encoder-decoder models: one encoder pass over tokens (a whole input: 1 .. min(maxContext, maxStepTokens)
  // tokens), each decoder layer's cross-attention K/V of its output kept in pool blocks — the memory that requests
  // (GenerateRequest::memory) and low-level sequences decode against, shared by all of them. Runs between two
  // steps of the loop, on the caller's thread. When the pool has no room for it, it waits (up to kEncodeWaitMs) while
  // the loop runs sequences that will free blocks; ERR_BUSY when nothing running can make room, or after the wait.
  std::shared_ptr<const EncoderMemory> encode(const std::vector<int32_t>& tokens);
  static constexpr int kEncodeWaitMs = 30000;

  // Low-level API. Encoder-decoder models: a sequence decodes against `memory` (required there, absent elsewhere).
  int32_t start_sequence(uint64_t seed, std::shared_ptr<const EncoderMemory> memory = nullptr);  // ERR_INVALID_ARG when no slot is free
  void end_sequence(int32_t slot);        // ERR_INVALID_ARG when the slot is not one of start_sequence's
  StepResult step(const StepRequest& request);
  // (batch, dim) float32, row-major; ERR_UNSUPPORTED for decoders.
  std::vector<float> embed(const EmbedRequest& request);
  MemoryReport memory() const;

 private:
  struct Command {
    enum Kind { Add, Cancel } kind;
    GenerateRequest request;  // Add
    uint64_t id = 0;          // Cancel
    int32_t index = -1;
  };
  struct Manual {  // a low-level API sequence
    std::unique_ptr<Sequence> seq;
    uint64_t sampled = 0;  // the RNG counter: one draw per step it took part in
  };

  // Where encoder memories' blocks go when the last holder drops them, from any thread; whoever holds the step
  // mutex returns them to the pool (drain_memories). Shared with the memories' deleters, which may outlive us.
  struct MemoryReleases {
    std::mutex mu;
    std::vector<int32_t> blocks;
    int32_t alive = 0;
    std::function<void()> wake;  // the loop's wake-up; cleared when the context goes
  };

  void loop();
  void drain_memories();
  void fill_stats(ContextStats& s) const;
  void check_memory(const std::shared_ptr<const EncoderMemory>& memory, const char* field) const;
  void deliver(StepEvents&& ev);
  void wake();
  size_t embed_chunk(const EmbedRequest& r, size_t s0, size_t s1, int64_t tok0, float* out);
  void release(Sequence& s);

  std::shared_ptr<const Model> model_;
  ContextConfig cfg_;
  std::unique_ptr<KvCache> kv_;
  std::unique_ptr<BlockPool> pool_;
  std::unique_ptr<StepRunner> runner_;
  std::unique_ptr<Scheduler> scheduler_;
  std::vector<Manual> manual_;  // by slot
  std::shared_ptr<MemoryReleases> releases_ = std::make_shared<MemoryReleases>();
  uint64_t next_memory_ = 1;
  int64_t encoder_tokens_ = 0;  // guarded by step_mu_
  // Steps the loop has finished: encode() waits on it for blocks to come back.
  std::mutex steps_mu_;
  std::condition_variable steps_cv_;
  uint64_t steps_done_ = 0;

  FairMutex step_mu_;  // scheduler, pool, runner, manual sequences: one step at a time, callers in arrival order

  mutable std::mutex cmd_mu_;  // commands, the loop's wake-up
  std::condition_variable cmd_cv_;
  std::deque<Command> commands_;
  int32_t pending_adds_ = 0;
  uint64_t wakeups_ = 0;
  bool stop_ = false;
  std::atomic<int32_t> queued_{0};  // the scheduler's never-admitted requests, mirrored after every step

  mutable std::mutex stats_mu_;
  ContextStats stats_;

  Listener listener_;
  std::thread thread_;
  bool started_ = false;
};

}  // namespace eet

// The step runner: one forward pass over the new tokens of several sequences, then the LM head and sampling on
// the device — the work of one engine step, with its workspace. It decides nothing: the scheduler (or the
// low-level API) says which tokens of which sequences to feed and which rows to sample; the runner computes.
//
// Batching without a mask tensor. A step carries the new tokens of B sequences packed back to back:
// (T, C) activations with T = sum(counts), no padding. Everything row-wise (norms, GEMMs, RoPE, activations) does
// not care where one sequence ends; only attention does, and it gets the structure as lengths: q_start (where each
// sequence's rows begin), ctx_len (its context after this step) and its block table into the paged cache. The
// causal and length masks are computed inside the attention kernel from those (EET's fused masking), so
// sequences of any lengths — a prompt chunk of 300 tokens next to three single-token decodes — share one pass, and
// no (B, T, T) mask is ever built or padded. The encoder (bert) uses the same path with its layers' masks
// (bidirectional, or DecBERT's causal / anti-causal), always over whole sequences.
// Shared prefixes: in a decode step (one new token per sequence), sequences whose block tables start with the same
// physical blocks (prefix caching, the n samples of a prompt) form groups; the step's causal attention then runs the
// shared_attention op, which reads each group's shared blocks once for all its members (engine/ops.h).
//
// After the layers (Architecture::forward) leave the residual stream x (T, dim):
//   xl = x[row r's token] for each sampled row r;  logits = output_norm(xl) · headᵀ   (R, vocab)
//   sample each row on the device; download tokens (+ logprobs, + the logits rows asked for — the LM head's
//   output, before any penalty — and, from those, the raw log-probabilities of the rows that asked for them).
// A row names an entry, and several rows may name the same entry: the n samples of a prompt are drawn from its
// last position's logits in one step, each row with its own seed (then the context forks the sequence).
// 'all' logits (teacher forcing, low-level API) normalise every row and run the head in chunks of R rows,
// downloading each chunk, so the workspace never holds (T, vocab).
//
// The residual stream stays in the model dtype and the math is exactly what the ops do; nothing here reorders
// float arithmetic (f32 on cpu/emu must reproduce llama2.c's greedy text).
// Not thread-safe: the caller holds the context's step mutex; run() takes the backend mutex itself.
#pragma once
#include <atomic>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "graph.h"
#include "sequence.h"
#include "step_graphs.h"

namespace eet {

// Feed seq->tokens[seq->computed, seq->computed + count); its blocks must already cover them.
struct StepEntry {
  Sequence* seq;
  int32_t count;
};

struct SampleRow {
  int32_t entry;     // samples after that entry's last fed token
  SamplingParams sampling;
  uint64_t seed, step;  // the RNG counter: (seed, step) -> one uniform draw
  bool logits;       // download this row's logits
  int32_t top_logprobs;  // >= 0: compute the row's RawLogprobs with this many top ids; -1 = off
};

struct StepOutput {
  std::vector<int32_t> tokens;   // (R)
  std::vector<float> logprobs;   // (R)
  std::vector<float> logits;     // (rows with logits, vocab), in row order
  std::vector<float> all_logits; // (T, vocab) when asked for
  std::vector<std::optional<RawLogprobs>> raw;  // (R), set for the rows with top_logprobs >= 0
  int32_t shared_tokens = 0;       // sequences attended through the shared-prefix path (ContextStats)
  int64_t shared_keys_saved = 0;
  int64_t memory_keys_saved = 0;   // encoder-memory keys read once per group instead of once per sequence
};

class StepRunner {
 public:
  // max_rows bounds both the sequences and the sampled rows of a step; max_context the positions of a sequence.
  // shared_prefix: decode steps attend the leading blocks that several of their sequences share once for all of
  // them (the shared_attention op); off, every sequence reads its whole context (the attention op).
  // graphs: decode steps are recorded once per shape and replayed (step_graphs.h), where the backend supports it.
  StepRunner(std::shared_ptr<const Model> model, int32_t max_rows, int32_t max_context, int32_t max_step_tokens,
             bool shared_prefix = true, bool graphs = true);
  ~StepRunner();

  size_t workspace_bytes() const;
  int32_t max_rows() const { return int32_t(ws_.rows_max); }
  int32_t max_step_tokens() const { return int32_t(ws_.tokens_max); }
  int32_t max_context() const { return int32_t(ws_.max_context); }
  // Steps run by replaying a recording, and recordings made (ContextStats graph_steps, graphs_captured); read
  // from any thread.
  int64_t graph_steps() const { return graph_steps_.load(); }
  int64_t graphs_captured() const { return graphs_captured_.load(); }
  // Why recording stopped ("" while it works or is off): the error of the capture that failed.
  std::string graph_error() const {
    std::lock_guard<std::mutex> lock(graph_error_mu_);
    return graph_error_;
  }

  StepOutput run(const KvCache& kv, const std::vector<StepEntry>& entries, const std::vector<SampleRow>& rows,
                 bool all_logits);
  // Encoders: the final hidden states (T, dim), float32, of one pass over the entries (each a whole sequence).
  std::vector<float> hidden(const KvCache& kv, const std::vector<StepEntry>& entries,
                            const std::vector<int32_t>& token_types);
  // Encoder-decoder models: one encoder pass over the entries (each a whole input, in its memory's blocks), then
  // each decoder layer's cross-attention K/V of its output written over those blocks (Architecture::cross_kv).
  void encode(const KvCache& kv, const std::vector<StepEntry>& entries);

 private:
  struct Meta;
  // decoding_memory: an encoder-decoder decoder step (every sequence has an encoder memory: its tables are filled).
  Meta prepare(const std::vector<StepEntry>& entries, const std::vector<SampleRow>& rows,
               const std::vector<int32_t>& token_types, bool decoding_memory);
  void group_shared_prefixes(const std::vector<StepEntry>& entries, Meta& m);
  void group_memories(const std::vector<StepEntry>& entries, Meta& m);
  void upload(const Meta& meta);
  // Whether this step can run as a recording, and under which key.
  bool graph_key(const KvCache& kv, const std::vector<StepEntry>& entries, const std::vector<SampleRow>& rows,
                 const Meta& m, StepGraphKey& key);  // all-logits steps never get here
  // The launches of a step: the layers, then (rows > 0) the head and the sampler; no synchronisation, no transfer.
  void launch_step(const KvCache& kv, const Meta& meta, int64_t rows);
  // Runs the step's launches: replayed, captured then replayed, or eagerly.
  void launch_or_replay(const KvCache& kv, const std::vector<StepEntry>& entries, const std::vector<SampleRow>& rows,
                        const Meta& meta);
  void launch_head(const Meta& meta, int64_t rows);
  void all_logits(const Meta& meta, StepOutput& out);
  void download_samples(const std::vector<SampleRow>& rows, StepOutput& out);
  void final_norm(const void* in, void* y, int64_t rows);
  void* at(size_t offset) const;

  std::shared_ptr<const Model> model_;
  Workspace ws_{};
  bool shared_prefix_;
  bool use_graphs_;
  std::unique_ptr<DeviceBuffer> buffer_;
  StepGraphs graphs_;                // after buffer_: recordings name its addresses, so they go first
  const KvCache* graph_kv_ = nullptr;  // the cache the recordings write (they hold its addresses)
  std::atomic<int64_t> graph_steps_{0}, graphs_captured_{0};
  mutable std::mutex graph_error_mu_;
  std::string graph_error_;
};

}  // namespace eet

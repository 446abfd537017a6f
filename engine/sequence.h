// What a context schedules: requests (one prompt, n samples of it), their sequences, and the events a step
// produces. Plain data shared by the scheduler, the step runner and the context.
#pragma once
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "error.h"

namespace eet {

using Clock = std::chrono::steady_clock;

inline double elapsed_ms(Clock::time_point since) {
  return std::chrono::duration<double, std::milli>(Clock::now() - since).count();
}

struct SamplingParams {
  float temperature = 1.0f;  // 0 = greedy
  float top_p = 1.0f;        // 1 = off
  float repetition_penalty = 1.0f;  // 1 = off; over the whole context, prompt included
  int32_t top_k = 0;         // 0 = off
  float presence_penalty = 0.0f;    // 0 = off; [-2, 2], over the generated tokens only (OpenAI / vLLM)
  float frequency_penalty = 0.0f;   // 0 = off; [-2, 2], times each id's count among the generated tokens
  bool penalised() const { return repetition_penalty != 1.0f || presence_penalty != 0.0f || frequency_penalty != 0.0f; }
};

enum class Finish : int32_t {
  None = 0,
  Eos = 1,      // sampled one of the request's stop ids (the token is reported)
  Length = 2,   // max_new_tokens reached, or the context (maxContext) is full
  Abort = 3,    // cancelled (abort signal, stop string, client gone): no token with it
  Error = 4,    // the step failed; RequestDone carries the error
};

// An encoder's output as a decoder reads it (encoder-decoder models, Context::encode): for every decoder layer l, the
// cross-attention K and V of the encoded input, in KV pool blocks (layer l of those blocks), written once and then
// read-only — shared by every sequence that decodes against it (the prompts of one PiD call, the n samples of one).
// Its blocks return to the pool when the last holder (the caller's handle, a request, a sequence) lets go; `id` is
// unique in its context and seeds the prefix-cache hashes of the sequences decoding against it (their K/V depend
// on it).
struct EncoderMemory {
  uint64_t id = 0;
  const void* owner = nullptr;  // the context whose pool holds the blocks
  std::vector<int32_t> blocks;
  int32_t len = 0;              // encoded tokens
};

struct GenerateRequest {
  uint64_t id = 0;                // chosen by the caller, unique among its live requests
  std::vector<int32_t> prompt;    // at least one token
  int32_t n = 1;                  // sequences sampled from this prompt: its pass runs once, then they fork
  SamplingParams sampling;
  uint64_t seed = 0;              // sequence j samples with seed + j (counter-based RNG: (seed, token index))
  int32_t max_new_tokens = 1;     // 0: prefill only (compute the prompt's KV for the prefix cache; sample nothing)
  std::vector<int32_t> stop_ids;  // a sampled id in this list ends the sequence with Finish::Eos
  bool logits = false;            // report the logits each token was sampled from
  int32_t top_logprobs = -1;      // >= 0: report each token's RawLogprobs with this many most likely ids; -1 = off
  Clock::time_point submitted{};  // when the caller handed it over (Context::submit); Scheduler::add stamps it if unset
  std::shared_ptr<const EncoderMemory> memory;  // encoder-decoder models: what the prompt (the decoder's) attends
};

// A generated token's log-probabilities under the model's raw distribution — log-softmax of the LM head's logits,
// before penalties and temperature (OpenAI's logprobs / top_logprobs) — computed in fp64 on the host.
struct RawLogprobs {
  double token = 0.0;             // of the sampled token
  std::vector<int32_t> top_ids;   // the top_logprobs most likely ids, descending (ties: lower id first)
  std::vector<double> top;        // their log-probabilities
};

// One sequence's token of a step (or its end).
struct TokenEvent {
  uint64_t request = 0;
  int32_t index = 0;              // which of the request's n sequences
  int32_t token = -1;             // -1 with Finish::Abort / Error
  float logprob = 0.0f;
  Finish finish = Finish::None;
  std::vector<float> logits;      // (vocab) when the request asked for them
  std::optional<RawLogprobs> raw; // when the request asked for them (top_logprobs >= 0)
};

// A request whose sequences have all finished (or that failed as a whole).
struct RequestDone {
  uint64_t request = 0;
  int32_t prompt_tokens = 0;
  int32_t cached_tokens = 0;      // prompt tokens whose K/V came from the prefix cache (first admission)
  bool failed = false;
  ErrorCode code = ErrorCode::Internal;
  std::string message;
  double queue_ms = 0.0;          // from submission to its first admission (or to its end, if it never ran)
};

struct ContextStats {
  int32_t blocks_total = 0, blocks_used = 0, blocks_cached = 0, block_size = 0;
  int32_t running = 0;            // sequences in the running batch
  int32_t waiting = 0;            // requests not admitted yet + preempted sequences waiting to resume
  int64_t steps = 0, prompt_tokens_computed = 0, prompt_tokens_cached = 0, generated_tokens = 0;
  int64_t preemptions = 0, prefix_cache_hits = 0, prefix_cache_queries = 0;
  // Decode tokens whose attention read blocks shared with other sequences of their step once for the group (the
  // shared_attention op), and the key reads per layer that saved: sum over groups of shared keys * (members - 1).
  int64_t shared_prefix_tokens = 0, shared_prefix_keys_saved = 0;
  // Encoder-decoder models: encoder memories alive (Context::encode), and the cross-attention key reads per layer
  // that sharing them saved: sum over decode steps and memory groups of memory length * (readers - 1).
  int32_t encoder_memories = 0;
  int64_t memory_keys_saved = 0;
  int64_t encoder_tokens = 0;  // input tokens the encoder has read (Context::encode, embed() excluded)
  // Decode steps run by replaying a recorded device graph, and the recordings made (engine/step_graphs.h).
  int64_t graph_steps = 0, graphs_captured = 0;
  std::string graph_error;  // why the context stopped recording ("": it did not)
};

// What one step of the engine loop hands to its listener.
struct StepEvents {
  std::vector<TokenEvent> tokens;
  std::vector<RequestDone> done;
  ContextStats stats;
};

// A sequence: its tokens, where its K/V are, how to sample it.
struct Sequence {
  int64_t id = 0;
  uint64_t request = 0;           // 0 for the low-level API's sequences
  int32_t index = 0;              // which of the request's n
  int32_t slot = -1;              // its row in the context's slot table while it holds one
  std::vector<int32_t> tokens;    // prompt + generated (the sampler's history lives here, not in the pool)
  int32_t prompt_len = 0;
  int32_t computed = 0;           // leading tokens whose K/V are in the cache
  std::vector<int32_t> blocks;    // block table
  std::vector<uint64_t> hashes;   // chain hashes of the leading full computed blocks (prefix-cache keys)
  SamplingParams sampling;
  uint64_t seed = 0;
  uint64_t order = 0;             // admission order: preemption takes the newest
  std::shared_ptr<const EncoderMemory> memory;  // encoder-decoder models: its cross-attention keys and values
  int32_t generated() const { return int32_t(tokens.size()) - prompt_len; }
  int32_t pending() const { return int32_t(tokens.size()) - computed; }
};

}  // namespace eet

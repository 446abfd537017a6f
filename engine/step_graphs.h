// Decode steps as device graphs (issue 13 item 5). A LLaMA-7B decode step is ~200 kernel launches; once the kernels
// are fast, launching them one by one from the host costs a visible part of the step. The step runner records a
// decode step's launches once (Backend::begin_capture: a CUDA graph on cuda, the emulator's recording on emu) and
// replays the recording for later steps of the same shape, with one host -> device upload of the step's metadata
// before it.
//
// Why a recording can serve many steps: every per-step value that changes between steps of one shape (tokens,
// positions, cache slots, context lengths, block tables, sampling parameters, seeds, RNG counters, penalty
// histories) is read by the kernels from the runner's workspace, whose addresses never change; what the host bakes
// into a launch (pointers, row counts, grid shapes) depends only on the key below:
//   batch     sequences of the step, one new token and one sampled row each (so T = R = batch);
//   context   the attention's max_ctx_len, which sizes its decode split: decode steps round it up to a power of two
//             (StepRunner::run, graphs or not), so a recording serves every step until the longest context doubles;
//   penalty   whether any row has a repetition / presence / frequency penalty (the sampler reads histories then);
//   groups    the shared-prefix groups (shared_attention): how many, the largest, the longest shared prefix. They
//             change when sequences join or leave a group, not from step to step (a group shares its prompt's full
//             blocks; new tokens go to each member's own blocks), so the n samples of a prompt or requests with a
//             common system prompt replay too;
//   memories  encoder-decoder decoders: the longest encoder memory and the memory groups (count, largest), fixed
//             while the same requests decode (PiD: every prompt of an input reads one memory).
// Steps of another form run eagerly: prompt passes (n_q > 1), all-logits steps, steps that sample a sequence twice
// (n > 1 forks are sampled so in their prefill step only).
//
// A key is captured the second time it is seen: the first step of a shape runs eagerly, which also loads the
// kernels' modules and opts them into large shared memory outside any capture. At most kMaxGraphs recordings are
// kept per runner, the least recently used evicted.
#pragma once
#include <cstddef>
#include <cstdint>
#include <list>
#include <memory>
#include <set>
#include <tuple>

#include "backend.h"

namespace eet {

struct StepGraphKey {
  int32_t batch = 0, context = 0;
  bool penalty = false;
  int32_t groups = 0, max_group = 0, max_shared = 0;
  int32_t max_mem = 0, mem_groups = 0, max_mem_group = 0;
  auto tie() const { return std::tie(batch, context, penalty, groups, max_group, max_shared, max_mem, mem_groups, max_mem_group); }
  bool operator<(const StepGraphKey& o) const { return tie() < o.tie(); }
  bool operator==(const StepGraphKey& o) const { return tie() == o.tie(); }
};

// The decode attention's context bound for a step whose longest context is max_ctx: the next power of two, at least
// kGraphContextMin, at most the runner's max_context.
constexpr int32_t kGraphContextMin = 64;
int32_t graph_context_bucket(int32_t max_ctx, int32_t max_context);

class StepGraphs {
 public:
  static constexpr size_t kMaxGraphs = 32;
  // The recording for key, made the most recently used; nullptr when there is none.
  DeviceGraph* find(const StepGraphKey& key);
  // Notes a step of this key that had no recording: true when one ran before (capture it now).
  bool seen_again(const StepGraphKey& key);
  // Keeps a new recording (evicting the least recently used past kMaxGraphs) and returns it.
  DeviceGraph* add(const StepGraphKey& key, std::unique_ptr<DeviceGraph> graph);
  void clear();
  size_t size() const { return graphs_.size(); }

 private:
  struct Entry {
    StepGraphKey key;
    std::unique_ptr<DeviceGraph> graph;
  };
  std::list<Entry> graphs_;    // most recently used first
  std::set<StepGraphKey> seen_;  // keys run eagerly once (bounded: evicted recordings forget theirs too)
};

}  // namespace eet

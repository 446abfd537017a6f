// Encoder memories (context.h Context::encode; engine/sequence.h EncoderMemory): one encoder pass over an input in
// pool blocks, the decoder layers' cross-attention K/V written over them, and the blocks' way back to the pool when the
// last holder lets go (from any thread: through MemoryReleases, drained by whoever holds the step mutex).
#include <algorithm>

#include "context.h"

namespace eet {

namespace {

constexpr int32_t kB = KvCache::kBlockSize;

[[noreturn]] void arg(const std::string& msg) { throw_error(ErrorCode::InvalidArg, msg); }

}  // namespace

// Encoder-decoder models need a memory of this context; others take none.
void Context::check_memory(const std::shared_ptr<const EncoderMemory>& memory, const char* field) const {
  const bool needed = model_->arch().encoder_decoder();
  if (needed && !memory) {
    arg(std::string("Expected an encoder memory (Context::encode) for ") + field + ": a " + model_->arch().name() +
        " model's decoder attends its encoder's output");
  }
  if (!needed && memory) arg(std::string("Expected no ") + field + " for a " + model_->arch().name() + " model (it has no encoder)");
  if (memory && memory->owner != releases_.get()) arg(std::string("Expected an encoder memory of this context for ") + field);
}

std::shared_ptr<const EncoderMemory> Context::encode(const std::vector<int32_t>& tokens) {
  model_->check_alive();
  if (!model_->arch().encoder_decoder()) {
    throw_error(ErrorCode::Unsupported, std::string("encode(): a ") + model_->arch().name() + " model has no encoder-decoder attention");
  }
  const int64_t longest = std::min(cfg_.max_context, cfg_.max_step_tokens);
  if (tokens.empty() || int64_t(tokens.size()) > longest) {
    arg("Expected 1 to " + std::to_string(longest) + " tokens (maxContext, maxStepTokens) for input but received " +
        std::to_string(tokens.size()));
  }
  const int32_t vocab = model_->config().vocab_size;
  for (size_t i = 0; i < tokens.size(); ++i) {
    if (tokens[i] < 0 || tokens[i] >= vocab) {
      arg("Expected a token id in [0, " + std::to_string(vocab) + ") for input[" + std::to_string(i) + "] but received " +
          std::to_string(tokens[i]));
    }
  }
  const int32_t n = int32_t(tokens.size()), need = (n + kB - 1) / kB;
  std::unique_lock<FairMutex> step(step_mu_);
  drain_memories();
  if (need > pool_->total()) {
    arg("The input needs " + std::to_string(need) + " KV blocks (" + std::to_string(n) + " tokens) but the context's KV cache holds " +
        std::to_string(pool_->total()) + " blocks (kvCacheTokens)");
  }
  // Running sequences give their blocks back as they finish: wait for the loop's steps (this is a worker thread, not
  // the JS one) while there are any, up to kEncodeWaitMs.
  const Clock::time_point deadline = Clock::now() + std::chrono::milliseconds(kEncodeWaitMs);
  while (need > pool_->available()) {
    if (scheduler_->idle() || Clock::now() >= deadline) {
      throw_error(ErrorCode::Busy, "the KV cache has no room for an encoder memory of " + std::to_string(n) + " tokens" +
                                       (scheduler_->idle() ? " (its blocks are held by other memories)" : " after waiting " +
                                        std::to_string(kEncodeWaitMs / 1000) + " s for running sequences") + "; retry later");
    }
    uint64_t seen;
    {
      std::lock_guard<std::mutex> lock(steps_mu_);
      seen = steps_done_;
    }
    step.unlock();
    {
      std::unique_lock<std::mutex> lock(steps_mu_);
      steps_cv_.wait_until(lock, std::min(deadline, Clock::now() + std::chrono::milliseconds(100)),
                           [&] { return steps_done_ != seen; });
    }
    model_->check_alive();
    step.lock();
    drain_memories();
  }
  // The memory is born owning its blocks: from here on, every exit returns them through the deleter.
  auto* raw = new EncoderMemory{next_memory_++, releases_.get(), {}, n};
  std::shared_ptr<MemoryReleases> rel = releases_;
  std::shared_ptr<const EncoderMemory> memory(raw, [rel](const EncoderMemory* m) {
    std::lock_guard<std::mutex> lock(rel->mu);
    rel->blocks.insert(rel->blocks.end(), m->blocks.begin(), m->blocks.end());
    rel->alive--;
    delete m;
    if (rel->wake) rel->wake();  // waiting requests may fit now
  });
  {
    std::lock_guard<std::mutex> lock(rel->mu);
    rel->alive++;
  }
  for (int32_t b = 0; b < need; ++b) raw->blocks.push_back(pool_->allocate());
  // The encoder pass runs in a sequence over the memory's blocks (its self-attention K/V go there first, and the
  // cross-attention K/V replace them layer by layer).
  Sequence s;
  s.tokens = tokens;
  s.blocks = raw->blocks;
  runner_->encode(*kv_, {{&s, n}});
  encoder_tokens_ += n;
  return memory;
}

void Context::drain_memories() {
  std::vector<int32_t> blocks;
  {
    std::lock_guard<std::mutex> lock(releases_->mu);
    blocks.swap(releases_->blocks);
  }
  for (auto it = blocks.rbegin(); it != blocks.rend(); ++it) pool_->release(*it);
}

}  // namespace eet

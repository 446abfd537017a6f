// A context: KV pool, sequences, workspace, scheduler and the engine loop (context.h).
#include "context.h"

#include <algorithm>
#include <cmath>

#include "limits.h"

namespace eet {

namespace {

constexpr int32_t kB = KvCache::kBlockSize;

[[noreturn]] void arg(const std::string& msg) { throw_error(ErrorCode::InvalidArg, msg); }

void option_range(const char* name, int64_t v, int64_t lo, int64_t hi) {
  if (v < lo || v > hi) {
    arg("Expected integer between " + std::to_string(lo) + " and " + std::to_string(hi) + " for " + name +
        " but received " + std::to_string(v));
  }
}

void check_sampling(const SamplingParams& s, int32_t vocab, const std::string& at) {
  if (!(s.temperature >= 0.0f) || s.temperature > float(Limits::maxTemperature)) {
    arg("Expected a number in [0, " + std::to_string(Limits::maxTemperature) + "] for temperature" + at + " but received " +
        std::to_string(s.temperature));
  }
  if (s.top_k < 0 || s.top_k > vocab) arg("Expected an integer in [0, " + std::to_string(vocab) + "] for topK" + at + " but received " + std::to_string(s.top_k));
  if (!(s.top_p > 0.0f && s.top_p <= 1.0f)) arg("Expected a number in (0, 1] for topP" + at + " but received " + std::to_string(s.top_p));
  const float rp_max = float(Limits::maxRepetitionPenalty), rp_min = 1.0f / rp_max;
  if (!(s.repetition_penalty >= rp_min && s.repetition_penalty <= rp_max)) {
    arg("Expected a number between " + std::to_string(rp_min) + " and " + std::to_string(rp_max) + " for repetitionPenalty" + at +
        " but received " + std::to_string(s.repetition_penalty));
  }
  const float most = float(Limits::maxPenalty);
  const std::string range = "Expected a number in [-" + std::to_string(Limits::maxPenalty) + ", " + std::to_string(Limits::maxPenalty) + "] for ";
  if (!(std::fabs(s.presence_penalty) <= most)) arg(range + "presencePenalty" + at + " but received " + std::to_string(s.presence_penalty));
  if (!(std::fabs(s.frequency_penalty) <= most)) arg(range + "frequencyPenalty" + at + " but received " + std::to_string(s.frequency_penalty));
}

// The default KV pool: every slot can reach maxContext (twice over on a GPU, where the rest of the pool keeps
// prefixes cached), bounded by memory — 90% of what the device has free, or 1 GiB of host memory for cpu / emu
// (but always at least one full-context sequence there).
int64_t default_kv_blocks(const ContextConfig& c, Backend& be, size_t block_bytes) {
  const int64_t per_seq = (int64_t(c.max_context) + kB - 1) / kB;
  const int64_t full = checked_mul(c.max_batch, per_seq, "kv cache size");
  if (be.kind() == DeviceKind::Cuda) {
    const int64_t fit = int64_t(double(be.free_memory()) * 0.9 / double(block_bytes));
    if (fit < 1) throw_error(ErrorCode::Oom, "no device memory left for the KV cache (kvCacheTokens / kvCacheBytes)");
    return std::min(2 * full, fit);
  }
  const int64_t budget = int64_t((size_t(1) << 30) / block_bytes);
  return std::min(full, std::max(per_seq, budget));
}

}  // namespace

Context::Context(std::shared_ptr<const Model> model, const ContextConfig& config) : model_(std::move(model)), cfg_(config) {
  model_->check_alive();
  if (!model_->finalized()) arg("the model is not finalized (call finalize() first)");
  const ModelConfig& mc = model_->config();
  if (cfg_.max_context == 0) cfg_.max_context = mc.max_seq_len;
  option_range("maxContext", cfg_.max_context, 1, mc.max_seq_len);
  option_range("maxBatch", cfg_.max_batch, 1, Limits::maxBatch);
  // A step never carries more than every slot's whole context; a larger bound would only size workspace that no
  // step can use (it grows linearly: memory().workspace says what it costs).
  option_range("maxStepTokens", cfg_.max_step_tokens, cfg_.max_batch,
               std::min<int64_t>(Limits::maxStepTokens, int64_t(cfg_.max_batch) * cfg_.max_context));
  if (cfg_.prefill_chunk == 0) cfg_.prefill_chunk = cfg_.max_step_tokens;
  option_range("prefillChunk", cfg_.prefill_chunk, 1, cfg_.max_step_tokens);
  option_range("maxQueued", cfg_.max_queued, 0, Limits::maxQueued);
  option_range("kvCacheTokens", cfg_.kv_cache_tokens, 0, int64_t(INT32_MAX / kB) * kB);
  option_range("kvCacheBytes", cfg_.kv_cache_bytes, 0, int64_t(1) << 50);

  const int32_t layers = model_->arch().cache_layers(mc);
  const size_t block_bytes = KvCache::block_bytes(mc.dtype, layers, mc.n_kv_heads, mc.head_dim);
  // What the context does, not what was asked: the cpu backends have no device graphs (config() reports it).
  cfg_.cuda_graphs = cfg_.cuda_graphs && model_->backend()->supports_graphs();
  runner_ = std::make_unique<StepRunner>(model_, cfg_.max_batch, cfg_.max_context, cfg_.max_step_tokens,
                                         cfg_.shared_prefix_attention, cfg_.cuda_graphs);
  int64_t blocks = 0;
  if (cfg_.kv_cache_tokens > 0) {
    blocks = (cfg_.kv_cache_tokens + kB - 1) / kB;
  } else if (cfg_.kv_cache_bytes > 0) {
    blocks = cfg_.kv_cache_bytes / int64_t(block_bytes);
    if (blocks < 1) {
      arg("Expected at least " + std::to_string(block_bytes) + " bytes (one KV block of " + std::to_string(kB) +
          " tokens) for kvCacheBytes but received " + std::to_string(cfg_.kv_cache_bytes));
    }
  } else {
    blocks = default_kv_blocks(cfg_, *model_->backend(), block_bytes);
  }
  blocks = std::min<int64_t>(blocks, INT32_MAX / kB);
  cfg_.kv_cache_tokens = blocks * kB;
  cfg_.kv_cache_bytes = blocks * int64_t(block_bytes);
  {
    std::lock_guard<FairMutex> lock(model_->backend()->mutex());
    kv_ = std::make_unique<KvCache>(model_->backend(), mc.dtype, layers, mc.n_kv_heads, mc.head_dim, int32_t(blocks));
  }
  pool_ = std::make_unique<BlockPool>(int32_t(blocks));
  SchedulerConfig sc{cfg_.max_batch, cfg_.max_step_tokens, cfg_.max_context, cfg_.prefill_chunk, cfg_.prefix_caching};
  scheduler_ = std::make_unique<Scheduler>(sc, *pool_, [this](int32_t dst, int32_t src) {
    std::lock_guard<FairMutex> lock(model_->backend()->mutex());
    kv_->copy_block(dst, src);
  });
  manual_.resize(size_t(cfg_.max_batch));
  releases_->wake = [this] { wake(); };
  fill_stats(stats_);
}

Context::~Context() {
  {
    std::lock_guard<std::mutex> lock(releases_->mu);
    releases_->wake = nullptr;  // memories outliving us return their blocks to nobody
  }
  shutdown();
  std::lock_guard<FairMutex> lock(model_->backend()->mutex());
  kv_.reset();
}

void Context::start(Listener listener) {
  std::lock_guard<std::mutex> lock(cmd_mu_);
  if (started_ || stop_) throw_error(ErrorCode::Internal, "context: the engine loop was started already");
  listener_ = std::move(listener);
  started_ = true;
  thread_ = std::thread([this] { loop(); });
}

void Context::submit(std::vector<GenerateRequest> requests) {
  model_->check_alive();
  const int32_t vocab = model_->config().vocab_size;
  if (!model_->arch().has_lm_head()) {
    throw_error(ErrorCode::Unsupported, std::string("generate: a ") + model_->arch().name() + " model is an encoder; use embed()");
  }
  for (const GenerateRequest& r : requests) {
    check_memory(r.memory, "memory");
    for (size_t i = 0; i < r.prompt.size(); ++i) {
      if (r.prompt[i] < 0 || r.prompt[i] >= vocab) {
        arg("Expected a token id in [0, " + std::to_string(vocab) + ") for prompt[" + std::to_string(i) + "] but received " +
            std::to_string(r.prompt[i]));
      }
    }
    if (int64_t(r.stop_ids.size()) > Limits::maxStopIds) arg("Expected at most " + std::to_string(Limits::maxStopIds) + " stopIds");
    for (int32_t id : r.stop_ids) {
      if (id < 0 || id >= vocab) arg("Expected token ids in [0, " + std::to_string(vocab) + ") for stopIds but received " + std::to_string(id));
    }
    check_sampling(r.sampling, vocab, "");
    if (r.top_logprobs < -1 || r.top_logprobs > Limits::maxTopLogprobs) {
      arg("Expected an integer in [0, " + std::to_string(Limits::maxTopLogprobs) + "] (or -1: off) for topLogprobs but received " +
          std::to_string(r.top_logprobs));
    }
    scheduler_->check(r);  // reads constants only
  }
  const Clock::time_point now = Clock::now();
  for (GenerateRequest& r : requests) r.submitted = now;
  std::lock_guard<std::mutex> lock(cmd_mu_);
  if (!started_ || stop_) throw_error(ErrorCode::Disposed, "the context was disposed");
  if (pending_adds_ + queued_.load() + int64_t(requests.size()) > cfg_.max_queued) {
    throw_error(ErrorCode::Busy, "the request queue is full: " + std::to_string(cfg_.max_queued) +
                                     " requests (maxQueued) are waiting to be admitted; retry later");
  }
  for (GenerateRequest& r : requests) {
    commands_.push_back(Command{Command::Add, std::move(r), 0, -1});
    pending_adds_++;
  }
  cmd_cv_.notify_one();
}

void Context::fill_stats(ContextStats& s) const {
  scheduler_->fill_stats(s);
  s.encoder_tokens = encoder_tokens_;
  s.graph_steps = runner_->graph_steps();
  s.graphs_captured = runner_->graphs_captured();
  s.graph_error = runner_->graph_error();
  std::lock_guard<std::mutex> lock(releases_->mu);
  s.encoder_memories = releases_->alive;
}

void Context::cancel(uint64_t request, int32_t index) {
  std::lock_guard<std::mutex> lock(cmd_mu_);
  if (!started_ || stop_) return;
  Command c{Command::Cancel, {}, request, index};
  commands_.push_back(std::move(c));
  cmd_cv_.notify_one();
}

void Context::wake() {
  std::lock_guard<std::mutex> lock(cmd_mu_);
  wakeups_++;
  cmd_cv_.notify_one();
}

void Context::shutdown() {
  {
    std::lock_guard<std::mutex> lock(cmd_mu_);
    stop_ = true;
    cmd_cv_.notify_one();
  }
  if (thread_.joinable() && thread_.get_id() != std::this_thread::get_id()) thread_.join();
}

ContextStats Context::stats() const {
  std::lock_guard<std::mutex> lock(stats_mu_);
  ContextStats s = stats_;
  // The runner's counters now: low-level steps (step()) do not refresh the loop's snapshot.
  s.graph_steps = runner_->graph_steps();
  s.graphs_captured = runner_->graphs_captured();
  s.graph_error = runner_->graph_error();
  return s;
}

void Context::deliver(StepEvents&& ev) {
  if (!listener_) return;
  try {
    listener_(std::move(ev));
  } catch (...) {
    // The listener (the addon's thread-safe call) must not take the loop down; events are lost, requests stay.
  }
}

// The engine loop: apply commands, plan, run, commit, hand events over; sleep only when there is nothing to do.
void Context::loop() {
  bool ran = false;
  uint64_t seen = 0;
  for (;;) {
    std::deque<Command> cmds;
    {
      std::unique_lock<std::mutex> lock(cmd_mu_);
      if (!ran) cmd_cv_.wait(lock, [&] { return stop_ || !commands_.empty() || wakeups_ != seen; });
      if (stop_) break;
      cmds.swap(commands_);
      // Taken requests count as queued until the step below says which were admitted (no window in which
      // submit() sees them in neither count).
      queued_ += pending_adds_;
      pending_adds_ = 0;
      seen = wakeups_;
    }
    StepEvents ev;
    ran = false;
    {
      std::lock_guard<FairMutex> step(step_mu_);
      drain_memories();
      ScheduledStep st;
      try {
        for (Command& c : cmds) {
          if (c.kind == Command::Cancel) {
            scheduler_->cancel(c.id, c.index, ev);
            continue;
          }
          const uint64_t id = c.request.id;
          const int32_t prompt = int32_t(c.request.prompt.size());
          const Clock::time_point submitted = c.request.submitted;
          try {
            scheduler_->add(std::move(c.request));
          } catch (const Error& e) {
            ev.done.push_back({id, prompt, 0, true, e.code(), e.what(), elapsed_ms(submitted)});
          }
        }
        st = scheduler_->plan();
        if (!st.empty()) {
          ran = true;
          StepOutput out = runner_->run(*kv_, st.entries, st.rows, false);
          scheduler_->commit(st, out, ev);
        }
      } catch (const Error& e) {
        st.empty() ? scheduler_->fail_all(e, ev) : scheduler_->fail(st, e, ev);
      } catch (const std::bad_alloc&) {
        Error e(ErrorCode::Oom, "out of host memory");
        st.empty() ? scheduler_->fail_all(e, ev) : scheduler_->fail(st, e, ev);
      } catch (const std::exception& x) {
        Error e(ErrorCode::Internal, x.what());
        st.empty() ? scheduler_->fail_all(e, ev) : scheduler_->fail(st, e, ev);
      }
      drain_memories();  // the step's finished requests may have held the last reference to a memory
      queued_ = scheduler_->queued_requests();
      fill_stats(ev.stats);
    }
    {
      std::lock_guard<std::mutex> lock(stats_mu_);
      stats_ = ev.stats;
    }
    {
      std::lock_guard<std::mutex> lock(steps_mu_);
      steps_done_++;
    }
    steps_cv_.notify_all();  // encode() calls waiting for blocks
    if (!ev.tokens.empty() || !ev.done.empty()) deliver(std::move(ev));
  }
  StepEvents ev;
  {
    std::lock_guard<FairMutex> step(step_mu_);
    scheduler_->fail_all(Error(ErrorCode::Disposed, "the context was disposed during generation"), ev);
    fill_stats(ev.stats);
  }
  if (!ev.done.empty()) deliver(std::move(ev));
}

// ---- low-level API ---------------------------------------------------------------------------------------------

int32_t Context::start_sequence(uint64_t seed, std::shared_ptr<const EncoderMemory> memory) {
  model_->check_alive();
  check_memory(memory, "memory");
  std::lock_guard<FairMutex> step(step_mu_);
  const int32_t slot = scheduler_->acquire_slot();
  if (slot < 0) {
    arg("no free sequence slot: all " + std::to_string(cfg_.max_batch) + " (maxBatch) sequences are live; end one first");
  }
  auto s = std::make_unique<Sequence>();
  s->id = -int64_t(slot) - 1;
  s->slot = slot;
  s->seed = seed;
  s->memory = std::move(memory);
  manual_[size_t(slot)] = {std::move(s), 0};
  return slot;
}

void Context::release(Sequence& s) {
  for (auto it = s.blocks.rbegin(); it != s.blocks.rend(); ++it) pool_->release(*it);
  s.blocks.clear();
}

void Context::end_sequence(int32_t slot) {
  model_->check_alive();
  {
    std::lock_guard<FairMutex> step(step_mu_);
    if (slot < 0 || slot >= cfg_.max_batch || !manual_[size_t(slot)].seq) {
      arg("Expected a live sequence slot for slot but received " + std::to_string(slot));
    }
    release(*manual_[size_t(slot)].seq);
    manual_[size_t(slot)] = {};
    scheduler_->release_slot(slot);
  }
  wake();  // the loop may have been waiting for a slot or blocks
}

StepResult Context::step(const StepRequest& r) {
  model_->check_alive();
  std::lock_guard<FairMutex> lock(step_mu_);
  if (!model_->arch().has_lm_head()) {
    throw_error(ErrorCode::Unsupported, std::string("step(): a ") + model_->arch().name() + " model has no LM head; use embed()");
  }
  const size_t B = r.slots.size();
  const int32_t vocab = model_->config().vocab_size;
  if (B < 1 || int64_t(B) > runner_->max_rows()) {
    arg("Expected 1.." + std::to_string(runner_->max_rows()) + " slots for slots but received " + std::to_string(B));
  }
  auto same_length = [&](const char* name, size_t n) {
    if (n != B) arg("Expected " + std::to_string(B) + " values (one per slot) for " + name + " but received " + std::to_string(n));
  };
  same_length("counts", r.counts.size());
  same_length("temperature", r.temperature.size());
  same_length("topK", r.top_k.size());
  same_length("topP", r.top_p.size());
  same_length("repetitionPenalty", r.repetition_penalty.size());
  // Optional: absent = 0 for every slot.
  if (!r.presence_penalty.empty()) same_length("presencePenalty", r.presence_penalty.size());
  if (!r.frequency_penalty.empty()) same_length("frequencyPenalty", r.frequency_penalty.size());
  auto sampling = [&](size_t b) {
    SamplingParams p{r.temperature[b], r.top_p[b], r.repetition_penalty[b], r.top_k[b]};
    p.presence_penalty = r.presence_penalty.empty() ? 0.0f : r.presence_penalty[b];
    p.frequency_penalty = r.frequency_penalty.empty() ? 0.0f : r.frequency_penalty[b];
    return p;
  };
  std::vector<bool> seen(size_t(cfg_.max_batch), false);
  int64_t total = 0;
  for (size_t b = 0; b < B; ++b) {
    const int32_t s = r.slots[b];
    const std::string at = "[" + std::to_string(b) + "]";
    if (s < 0 || s >= cfg_.max_batch || !manual_[size_t(s)].seq) {
      arg("Expected a live sequence slot for slots" + at + " but received " + std::to_string(s));
    }
    if (seen[size_t(s)]) arg("Expected distinct slots but slot " + std::to_string(s) + " appears twice");
    seen[size_t(s)] = true;
    const int32_t n = r.counts[b];
    if (n < 1) arg("Expected a positive integer for counts" + at + " but received " + std::to_string(n));
    total += n;
    const int64_t len = int64_t(manual_[size_t(s)].seq->computed) + n;
    if (len > cfg_.max_context) {
      arg("sequence in slot " + std::to_string(s) + " would hold " + std::to_string(len) +
          " tokens, more than maxContext (" + std::to_string(cfg_.max_context) + ")");
    }
    check_sampling(sampling(b), vocab, at);
  }
  if (total != int64_t(r.tokens.size())) {
    arg("Expected tokens.length equal to the sum of counts (" + std::to_string(total) + ") but received " + std::to_string(r.tokens.size()));
  }
  if (total > cfg_.max_step_tokens) {
    arg("step carries " + std::to_string(total) + " tokens, more than maxStepTokens (" + std::to_string(cfg_.max_step_tokens) + ")");
  }
  for (size_t i = 0; i < r.tokens.size(); ++i) {
    if (r.tokens[i] < 0 || r.tokens[i] >= vocab) {
      arg("Expected a token id in [0, " + std::to_string(vocab) + ") for tokens[" + std::to_string(i) +
          "] but received " + std::to_string(r.tokens[i]));
    }
  }
  // Valid: append the tokens and take blocks for them (rolled back if anything fails; blocks stay with the slot).
  std::vector<StepEntry> entries;
  std::vector<SampleRow> rows;
  auto rollback = [&] {
    for (size_t b = 0; b < entries.size(); ++b) entries[b].seq->tokens.resize(size_t(entries[b].seq->computed));
  };
  int64_t row = 0;
  for (size_t b = 0; b < B; ++b) {
    Manual& m = manual_[size_t(r.slots[b])];
    Sequence& s = *m.seq;
    s.tokens.insert(s.tokens.end(), r.tokens.begin() + row, r.tokens.begin() + row + r.counts[b]);
    row += r.counts[b];
    entries.push_back({&s, r.counts[b]});
    const int32_t need = (s.computed + r.counts[b] + kB - 1) / kB;
    while (int32_t(s.blocks.size()) < need) {
      const int32_t blk = pool_->allocate();
      if (blk < 0) {
        rollback();
        arg("the KV cache is full: no free block for slot " + std::to_string(r.slots[b]) + " (kvCacheTokens " +
            std::to_string(cfg_.kv_cache_tokens) + ")");
      }
      s.blocks.push_back(blk);
    }
    rows.push_back({int32_t(b), sampling(b), s.seed, m.sampled, r.logits == LogitsMode::Last, -1});
  }
  StepOutput out;
  try {
    out = runner_->run(*kv_, entries, rows, r.logits == LogitsMode::All);
  } catch (...) {
    rollback();
    throw;
  }
  for (size_t b = 0; b < B; ++b) {
    entries[b].seq->computed += entries[b].count;
    manual_[size_t(r.slots[b])].sampled++;
  }
  // The KV of the step stands (the sequences stay usable); a row with non-finite logits (token -1) fails the call.
  for (size_t b = 0; b < B; ++b) {
    if (out.tokens[b] < 0) {
      throw_error(ErrorCode::Numeric, "the model produced non-finite logits (NaN or infinity) for slot " +
                  std::to_string(r.slots[b]) + " at position " + std::to_string(entries[b].seq->computed - 1) +
                  ": broken weights, or activations that overflow the model's dtype");
    }
  }
  StepResult res;
  res.tokens = std::move(out.tokens);
  res.logprobs = std::move(out.logprobs);
  if (r.logits == LogitsMode::Last) res.logits = std::move(out.logits);
  if (r.logits == LogitsMode::All) res.logits = std::move(out.all_logits);
  return res;
}

std::vector<float> Context::embed(const EmbedRequest& r) {
  model_->check_alive();
  std::lock_guard<FairMutex> lock(step_mu_);
  if (model_->arch().has_lm_head() && !model_->arch().encoder_decoder()) {
    throw_error(ErrorCode::Unsupported, "embed(): only models with an encoder (bert, t5) compute embeddings; use step()");
  }
  const size_t B = r.counts.size();
  if (B < 1) arg("Expected at least one sequence for counts but received 0");
  const int64_t longest = std::min(cfg_.max_context, cfg_.max_step_tokens);
  int64_t total = 0;
  for (size_t i = 0; i < B; ++i) {
    if (r.counts[i] < 1 || r.counts[i] > longest) {
      arg("Expected an integer in [1, " + std::to_string(longest) + "] (maxContext, maxStepTokens) for counts[" +
          std::to_string(i) + "] but received " + std::to_string(r.counts[i]));
    }
    total += r.counts[i];
  }
  if (total != int64_t(r.tokens.size())) {
    arg("Expected tokens.length equal to the sum of counts (" + std::to_string(total) + ") but received " + std::to_string(r.tokens.size()));
  }
  const int32_t vocab = model_->config().vocab_size;
  for (size_t i = 0; i < r.tokens.size(); ++i) {
    if (r.tokens[i] < 0 || r.tokens[i] >= vocab) {
      arg("Expected a token id in [0, " + std::to_string(vocab) + ") for tokens[" + std::to_string(i) +
          "] but received " + std::to_string(r.tokens[i]));
    }
  }
  if (!r.token_types.empty() && r.token_types.size() != r.tokens.size()) {
    arg("Expected tokenTypes.length equal to tokens.length (" + std::to_string(r.tokens.size()) + ") but received " +
        std::to_string(r.token_types.size()));
  }
  const int32_t types = model_->config().n_token_types;
  for (size_t i = 0; i < r.token_types.size(); ++i) {
    if (r.token_types[i] < 0 || r.token_types[i] >= types) {
      arg("Expected a token type in [0, " + std::to_string(types) + ") for tokenTypes[" + std::to_string(i) +
          "] but received " + std::to_string(r.token_types[i]));
    }
  }
  // Chunks of whole sequences that fit one pass (maxBatch rows, maxStepTokens tokens, free slots and blocks).
  std::vector<float> out(B * size_t(model_->config().dim));
  size_t s0 = 0;
  int64_t tok0 = 0;
  while (s0 < B) {
    size_t s1 = s0;
    int64_t n = 0;
    while (s1 < B && int64_t(s1 - s0) < runner_->max_rows() && n + r.counts[s1] <= cfg_.max_step_tokens) n += r.counts[s1++];
    const size_t done = embed_chunk(r, s0, s1, tok0, out.data());
    for (size_t i = s0; i < done; ++i) tok0 += r.counts[i];
    s0 = done;
  }
  return out;
}

// One pass over sequences s0..s1-1 (fewer when slots or blocks run short; returns the end) in temporary
// sequences, then pooling of their final hidden states on the host into out (batch, dim).
size_t Context::embed_chunk(const EmbedRequest& r, size_t s0, size_t s1, int64_t tok0, float* out) {
  std::vector<std::unique_ptr<Sequence>> seqs;
  struct Release {
    Context& c;
    std::vector<std::unique_ptr<Sequence>>& seqs;
    ~Release() {
      for (auto& s : seqs) {
        c.release(*s);
        c.scheduler_->release_slot(s->slot);
      }
    }
  } release{*this, seqs};
  int64_t at = tok0;
  for (size_t i = s0; i < s1; ++i) {
    const int32_t n = r.counts[i];
    if ((n + kB - 1) / kB > pool_->available()) break;
    const int32_t slot = scheduler_->acquire_slot();
    if (slot < 0) break;
    auto s = std::make_unique<Sequence>();
    s->slot = slot;
    s->tokens.assign(r.tokens.begin() + at, r.tokens.begin() + at + n);
    at += n;
    for (int32_t b = 0; b < (n + kB - 1) / kB; ++b) s->blocks.push_back(pool_->allocate());
    seqs.push_back(std::move(s));
  }
  if (seqs.empty()) {
    arg("embed(): no free sequence slot or KV block: all " + std::to_string(cfg_.max_batch) +
        " (maxBatch) slots are live or the KV cache is full; end a sequence first");
  }
  s1 = s0 + seqs.size();
  std::vector<StepEntry> entries;
  for (auto& s : seqs) entries.push_back({s.get(), int32_t(s->tokens.size())});
  const int64_t n = at - tok0;
  std::vector<int32_t> types;
  if (!r.token_types.empty()) types.assign(r.token_types.begin() + tok0, r.token_types.begin() + tok0 + n);
  std::vector<float> hidden = runner_->hidden(*kv_, entries, types);

  const size_t dim = size_t(model_->config().dim);
  size_t row = 0;
  for (size_t b = 0; b < seqs.size(); ++b) {
    const size_t len = seqs[b]->tokens.size();
    std::vector<double> acc(dim, 0.0);
    const size_t rows = r.pooling == Pooling::Cls ? 1 : len;
    for (size_t i = 0; i < rows; ++i) {
      for (size_t d = 0; d < dim; ++d) acc[d] += hidden[(row + i) * dim + d];
    }
    double ss = 0.0;
    for (size_t d = 0; d < dim; ++d) {
      acc[d] /= double(rows);
      ss += acc[d] * acc[d];
    }
    const double scale = r.normalize && ss > 0.0 ? 1.0 / std::sqrt(ss) : 1.0;
    for (size_t d = 0; d < dim; ++d) out[(s0 + b) * dim + d] = float(acc[d] * scale);
    row += len;
  }
  return s1;
}

MemoryReport Context::memory() const {
  model_->check_alive();
  return {model_->bytes(), kv_->bytes(), runner_->workspace_bytes()};
}

}  // namespace eet

// The step scheduler (scheduler.h).
#include "scheduler.h"

#include <algorithm>
#include <string>

#include "limits.h"

namespace eet {

namespace {

constexpr int32_t kB = BlockPool::kBlockSize;

int32_t blocks_for(int64_t tokens) { return int32_t((tokens + kB - 1) / kB); }

bool older(const Sequence* a, const Sequence* b) { return a->order != b->order ? a->order < b->order : a->id < b->id; }

// The parent hash of a sequence's first block. A decoder's K/V past its first layer depend on the encoder memory it
// attends, so its blocks are only the same as another's when the memory is the same too: the memory's id (mixed,
// odd, so never the 0 of sequences without one) roots its chains.
uint64_t root_hash(const Sequence& s) {
  if (!s.memory) return 0;
  uint64_t z = s.memory->id + 0x9e3779b97f4a7c15ULL;  // splitmix64's finaliser
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return (z ^ (z >> 31)) | 1;
}

[[noreturn]] void arg(const std::string& msg) { throw_error(ErrorCode::InvalidArg, msg); }

}  // namespace

struct Scheduler::Request {
  GenerateRequest req;
  std::vector<bool> ended;  // per sample: finished or cancelled
  int32_t alive = 0;        // samples not ended
  bool forked = false;      // its samples exist as sequences (or n == 1)
  bool admitted = false;    // left the queue once
  int32_t cached_tokens = 0;
  int32_t reserved = 0;     // slots held for its unforked samples
  double queue_ms = 0.0;    // submission to first admission
  // What RequestDone reports when it ends: its queue time, or, never admitted, how long it waited until now.
  double queued_for() const { return admitted ? queue_ms : elapsed_ms(req.submitted); }
};

Scheduler::Scheduler(const SchedulerConfig& config, BlockPool& pool, CopyBlock copy_block)
    : cfg_(config), pool_(pool), copy_block_(std::move(copy_block)), slot_used_(size_t(config.max_batch), false) {
  if (cfg_.max_batch < 1 || cfg_.max_step_tokens < cfg_.max_batch || cfg_.max_context < 1 || cfg_.prefill_chunk < 1) {
    throw_error(ErrorCode::Internal, "scheduler: inconsistent limits");
  }
}

Scheduler::~Scheduler() = default;

void Scheduler::check(const GenerateRequest& r) const {
  const int64_t p = int64_t(r.prompt.size());
  if (p < 1) arg("Expected a non-empty prompt but received 0 tokens");
  if (p > cfg_.max_context) {
    arg("Expected at most " + std::to_string(cfg_.max_context) + " tokens (maxContext) for prompt but received " +
        std::to_string(p) + " tokens");
  }
  if (r.n < 1 || r.n > cfg_.max_batch) {
    arg("Expected integer between 1 and " + std::to_string(cfg_.max_batch) + " (maxBatch) for n but received " + std::to_string(r.n));
  }
  if (r.max_new_tokens < 0) arg("Expected integer >= 0 for maxNewTokens but received " + std::to_string(r.max_new_tokens));
  if (r.max_new_tokens == 0 && r.n != 1) arg("Expected n 1 for a prefill-only request (maxNewTokens 0) but received " + std::to_string(r.n));
  // The longest this request's sequence can get in the cache: its last sampled token is never fed.
  const int64_t longest = std::min<int64_t>(p + std::max<int64_t>(int64_t(r.max_new_tokens) - 1, 0), cfg_.max_context);
  if (blocks_for(longest) > pool_.total()) {
    arg("The request needs " + std::to_string(blocks_for(longest)) + " KV blocks (" + std::to_string(longest) +
        " tokens: prompt " + std::to_string(p) + " + maxNewTokens " + std::to_string(r.max_new_tokens) +
        ", at most maxContext " + std::to_string(cfg_.max_context) + ") but the context's KV cache holds " +
        std::to_string(pool_.total()) + " blocks of " + std::to_string(kB) + " tokens (kvCacheTokens " +
        std::to_string(int64_t(pool_.total()) * kB) + ")");
  }
}

void Scheduler::add(GenerateRequest r) {
  check(r);
  if (requests_.count(r.id)) throw_error(ErrorCode::Internal, "scheduler: request " + std::to_string(r.id) + " exists");
  if (r.submitted == Clock::time_point{}) r.submitted = Clock::now();
  auto req = std::make_unique<Request>();
  req->req = std::move(r);
  req->ended.assign(size_t(req->req.n), false);
  req->alive = req->req.n;
  req->forked = req->req.n == 1;
  auto s = std::make_unique<Sequence>();
  s->id = next_seq_++;
  s->request = req->req.id;
  s->index = 0;
  s->tokens = req->req.prompt;
  s->prompt_len = int32_t(s->tokens.size());
  s->sampling = req->req.sampling;
  s->seed = req->req.seed;
  s->memory = req->req.memory;
  waiting_.push_back(s.get());
  seqs_[s->id] = std::move(s);
  requests_[req->req.id] = std::move(req);
  queued_++;
}

int32_t Scheduler::acquire_slot() {
  if (free_slots() < 1) return -1;
  for (size_t i = 0; i < slot_used_.size(); ++i) {
    if (!slot_used_[i]) {
      slot_used_[i] = true;
      return int32_t(i);
    }
  }
  return -1;
}

void Scheduler::release_slot(int32_t slot) {
  if (slot >= 0 && size_t(slot) < slot_used_.size()) slot_used_[size_t(slot)] = false;
}

int32_t Scheduler::free_slots() const {
  return int32_t(std::count(slot_used_.begin(), slot_used_.end(), false)) - reserved_;
}

int32_t Scheduler::forks_pending(const Sequence& s) const {
  if (s.request == 0 || s.index != 0) return 0;
  const Request& r = *requests_.at(s.request);
  if (r.forked) return 0;
  int32_t n = 0;
  for (int32_t j = 1; j < r.req.n; ++j) n += r.ended[size_t(j)] ? 0 : 1;
  return n;
}

void Scheduler::match_prefix(Sequence& s) {
  if (!cfg_.prefix_caching) return;
  // Leave at least the last token to compute: its logits are what the step samples from.
  const int32_t full = (int32_t(s.tokens.size()) - 1) / kB;
  uint64_t parent = root_hash(s);
  int32_t hit = 0;
  for (int32_t i = 0; i < full; ++i) {
    const int32_t* t = s.tokens.data() + int64_t(i) * kB;
    const uint64_t h = BlockPool::chain_hash(parent, t);
    const int32_t b = pool_.lookup(parent, h, t);
    if (b < 0) break;
    pool_.retain(b);
    s.blocks.push_back(b);
    s.hashes.push_back(h);
    parent = h;
    hit++;
  }
  s.computed = hit * kB;
  totals_.prefix_cache_queries += full;
  totals_.prefix_cache_hits += hit;
  totals_.prompt_tokens_cached += int64_t(hit) * kB;
}

bool Scheduler::grow(Sequence& s, int32_t tokens) {
  const int32_t need = blocks_for(tokens);
  while (int32_t(s.blocks.size()) < need) {
    const int32_t b = pool_.allocate();
    if (b < 0) return false;
    s.blocks.push_back(b);
  }
  return true;
}

int32_t Scheduler::fit(const Sequence& s, int32_t count) const {
  const int64_t capacity = (int64_t(s.blocks.size()) + pool_.available()) * kB - s.computed;
  return int32_t(std::max<int64_t>(0, std::min<int64_t>(count, capacity)));
}

void Scheduler::release_blocks(Sequence& s) {
  // Tail first: in the LRU list a chain's deeper blocks are then evicted before the prefix they depend on.
  for (auto it = s.blocks.rbegin(); it != s.blocks.rend(); ++it) pool_.release(*it);
  s.blocks.clear();
  s.hashes.clear();
  s.computed = 0;
}

void Scheduler::publish_blocks(Sequence& s) {
  if (!cfg_.prefix_caching) return;
  const int32_t full = s.computed / kB;
  for (int32_t i = int32_t(s.hashes.size()); i < full; ++i) {
    const uint64_t parent = i ? s.hashes[size_t(i - 1)] : root_hash(s);
    const int32_t* t = s.tokens.data() + int64_t(i) * kB;
    const uint64_t h = BlockPool::chain_hash(parent, t);
    pool_.publish(s.blocks[size_t(i)], parent, h, t);  // false: an identical block is published; ours stays private
    s.hashes.push_back(h);
  }
}

void Scheduler::preempt(Sequence* s) {
  running_.erase(std::find(running_.begin(), running_.end(), s));
  release_slot(s->slot);
  s->slot = -1;
  if (s->request) {
    Request& r = *requests_.at(s->request);
    reserved_ -= r.reserved;
    r.reserved = 0;
  }
  release_blocks(*s);
  waiting_.push_front(s);
  totals_.preemptions++;
}

ScheduledStep Scheduler::plan() {
  ScheduledStep st;
  int32_t decodes = 0;
  for (const Sequence* s : running_) decodes += s->pending() == 1 ? 1 : 0;
  int32_t budget = cfg_.max_step_tokens - decodes;  // what prefill chunks may take; decodes are accounted apart
  const std::vector<Sequence*> order = running_;
  for (Sequence* s : order) {
    if (std::find(running_.begin(), running_.end(), s) == running_.end()) continue;  // preempted meanwhile
    const bool decode = s->pending() == 1;
    int32_t want = decode ? 1 : std::min({s->pending(), cfg_.prefill_chunk, budget});
    if (want < 1) continue;
    while (fit(*s, want) < want) {
      if (!decode && fit(*s, want) > 0) {
        want = fit(*s, want);  // a prefill takes a shorter chunk rather than preempt anyone
        break;
      }
      Sequence* victim = running_.back();  // the newest; never one already in this step (those are older than s)
      preempt(victim);
      if (victim == s) break;
    }
    if (s->slot < 0 || fit(*s, want) < want) continue;
    grow(*s, s->computed + want);
    st.entries.push_back({s, want});
    if (!decode) budget -= want;
  }
  // Admission: first in first out while a slot, budget and blocks remain. Once something runs, keep a few
  // blocks free so that running decodes are not preempted by the very next step.
  const int32_t watermark = std::max(1, pool_.total() / 100);
  while (!waiting_.empty() && budget > 0) {
    Sequence* s = waiting_.front();
    if (free_slots() < 1 + forks_pending(*s)) break;
    match_prefix(*s);
    const int32_t reserve = running_.empty() ? 0 : watermark;
    const int64_t capacity = (int64_t(s->blocks.size()) + std::max(0, pool_.available() - reserve)) * kB - s->computed;
    const int32_t want = int32_t(std::min<int64_t>({s->pending(), cfg_.prefill_chunk, budget, capacity}));
    if (want < 1) {
      release_blocks(*s);
      break;
    }
    waiting_.pop_front();
    s->slot = acquire_slot();
    if (s->order == 0) s->order = next_order_++;
    if (s->request) {
      Request& r = *requests_.at(s->request);
      r.reserved = forks_pending(*s);
      reserved_ += r.reserved;
      if (!r.admitted) {
        r.admitted = true;
        r.queue_ms = elapsed_ms(r.req.submitted);
        r.cached_tokens = s->computed;
        queued_--;
      }
    }
    running_.insert(std::upper_bound(running_.begin(), running_.end(), s, older), s);
    grow(*s, s->computed + want);
    st.entries.push_back({s, want});
    budget -= want;
  }
  // Rows: every entry whose chunk reaches its last token samples — an unforked prompt once per live sample.
  for (size_t e = 0; e < st.entries.size(); ++e) {
    const Sequence& s = *st.entries[e].seq;
    if (s.computed + st.entries[e].count != int32_t(s.tokens.size())) continue;
    const Request& r = *requests_.at(s.request);
    if (r.req.max_new_tokens == 0) continue;  // prefill only: its KV is the point, nothing is sampled
    const bool parent = !r.forked;
    for (int32_t j = parent ? 0 : s.index; j < (parent ? r.req.n : s.index + 1); ++j) {
      if (r.ended[size_t(j)]) continue;
      const uint64_t seed = parent ? r.req.seed + uint64_t(j) : s.seed;
      st.rows.push_back({int32_t(e), s.sampling, seed, uint64_t(s.generated()), r.req.logits, r.req.top_logprobs});
      st.row_index.push_back(j);
    }
  }
  return st;
}

void Scheduler::commit(const ScheduledStep& st, const StepOutput& out, StepEvents& ev) {
  totals_.steps++;
  totals_.shared_prefix_tokens += out.shared_tokens;
  totals_.shared_prefix_keys_saved += out.shared_keys_saved;
  totals_.memory_keys_saved += out.memory_keys_saved;
  std::vector<Sequence*> prefilled;  // prefill-only requests whose prompt is now in the cache
  for (const StepEntry& e : st.entries) {
    Sequence& s = *e.seq;
    totals_.prompt_tokens_computed += std::max(0, std::min(s.prompt_len, s.computed + e.count) - s.computed);
    s.computed += e.count;
    publish_blocks(s);
    if (s.computed == int32_t(s.tokens.size()) && requests_.at(s.request)->req.max_new_tokens == 0) prefilled.push_back(&s);
  }
  // The runner packs the logits of the rows that asked for them, in row order.
  std::vector<std::vector<float>> logits(st.rows.size());
  size_t asked = 0;
  for (const SampleRow& row : st.rows) asked += row.logits ? 1 : 0;
  const size_t width = asked ? out.logits.size() / asked : 0;
  for (size_t r = 0, k = 0; r < st.rows.size(); ++r) {
    if (!st.rows[r].logits) continue;
    logits[r].assign(out.logits.begin() + ptrdiff_t(k * width), out.logits.begin() + ptrdiff_t((k + 1) * width));
    ++k;
  }
  // Rows whose logits were non-finite (the sampler's token -1) fail their request with ERR_NUMERIC; the other
  // requests of the step go on. Failing frees the request's sequences, so their entries are skipped below.
  std::vector<uint64_t> entry_request(st.entries.size()), failed;
  for (size_t e = 0; e < st.entries.size(); ++e) entry_request[e] = st.entries[e].seq->request;
  auto is_failed = [&](uint64_t id) { return std::find(failed.begin(), failed.end(), id) != failed.end(); };
  for (size_t r = 0; r < st.rows.size(); ++r) {
    const uint64_t id = entry_request[size_t(st.rows[r].entry)];
    if (out.tokens[r] >= 0 || is_failed(id)) continue;
    const Sequence& s = *st.entries[size_t(st.rows[r].entry)].seq;
    const std::string where = "step " + std::to_string(totals_.steps) + ", position " + std::to_string(s.tokens.size()) +
                              " of sample " + std::to_string(st.row_index[r]);
    failed.push_back(id);
    fail_request(*requests_.at(id), Error(ErrorCode::Numeric, "the model produced non-finite logits (NaN or infinity) at " +
                 where + ": broken weights, or activations that overflow the model's dtype"), ev);
  }
  auto sample = [&](size_t r) {
    return Sample{st.row_index[r], out.tokens[r], out.logprobs[r], std::move(logits[r]),
                  r < out.raw.size() ? out.raw[r] : std::nullopt};
  };
  // Rows of one entry are adjacent (plan() adds them entry by entry).
  for (size_t r = 0; r < st.rows.size();) {
    const int32_t e = st.rows[r].entry;
    size_t end = r;
    while (end < st.rows.size() && st.rows[end].entry == e) ++end;
    if (is_failed(entry_request[size_t(e)])) {
      r = end;
      continue;
    }
    Sequence& s = *st.entries[size_t(e)].seq;
    if (requests_.at(s.request)->forked) {
      take_token(s, sample(r), ev);
    } else {
      std::vector<Sample> samples;
      for (size_t k = r; k < end; ++k) samples.push_back(sample(k));
      fork(s, samples, ev);
    }
    r = end;
  }
  for (Sequence* s : prefilled) finish(s, Finish::Length, ev, false);
}

void Scheduler::fork(Sequence& parent, std::vector<Sample>& samples, StepEvents& ev) {
  Request& r = *requests_.at(parent.request);
  r.forked = true;
  reserved_ -= r.reserved;
  r.reserved = 0;
  const int32_t full = parent.computed / kB;
  const bool partial = parent.computed % kB != 0;
  Sample* own = nullptr;
  std::vector<std::pair<Sequence*, Sample*>> children;
  for (Sample& sample : samples) {
    if (sample.index == 0) {
      own = &sample;
      continue;
    }
    auto c = std::make_unique<Sequence>();
    c->id = next_seq_++;
    c->request = parent.request;
    c->index = sample.index;
    c->tokens = parent.tokens;
    c->prompt_len = parent.prompt_len;
    c->sampling = parent.sampling;
    c->seed = r.req.seed + uint64_t(sample.index);
    c->order = parent.order;
    c->memory = parent.memory;
    Sequence* child = c.get();
    seqs_[c->id] = std::move(c);
    for (int32_t i = 0; i < full; ++i) {
      pool_.retain(parent.blocks[size_t(i)]);
      child->blocks.push_back(parent.blocks[size_t(i)]);
    }
    child->hashes.assign(parent.hashes.begin(), parent.hashes.begin() + std::min<ptrdiff_t>(full, ptrdiff_t(parent.hashes.size())));
    child->computed = full * kB;
    bool runs = true;
    if (partial) {
      const int32_t b = pool_.allocate();
      if (b >= 0) {
        copy_block_(b, parent.blocks[size_t(full)]);
        child->blocks.push_back(b);
        child->computed = parent.computed;
      } else {
        runs = false;
      }
    }
    if (runs) child->slot = acquire_slot();
    if (!runs || child->slot < 0) {
      // No block for its private copy (or, impossibly, no slot): it waits and recomputes, like a preempted one.
      release_blocks(*child);
      child->slot = -1;
      waiting_.push_front(child);
    } else {
      running_.insert(std::upper_bound(running_.begin(), running_.end(), child, older), child);
    }
    children.push_back({child, &sample});
  }
  // The parent first: a child's token can end the whole request (and drop every sequence of it).
  if (own) {
    take_token(parent, std::move(*own), ev);
  } else {
    drop(&parent);  // sample 0 was cancelled while the prompt computed: the carrier goes now
  }
  for (auto& [child, sample] : children) take_token(*child, std::move(*sample), ev);
}

void Scheduler::take_token(Sequence& s, Sample&& out, StepEvents& ev) {
  const Request& r = *requests_.at(s.request);
  const int32_t token = out.token;
  s.tokens.push_back(token);
  totals_.generated_tokens++;
  Finish f = Finish::None;
  if (std::find(r.req.stop_ids.begin(), r.req.stop_ids.end(), token) != r.req.stop_ids.end()) {
    f = Finish::Eos;
  } else if (s.generated() >= r.req.max_new_tokens || s.computed >= cfg_.max_context) {
    f = Finish::Length;
  }
  ev.tokens.push_back({r.req.id, s.index, token, out.logprob, f, std::move(out.logits), std::move(out.raw)});
  if (f != Finish::None) finish(&s, f, ev, false);
}

void Scheduler::finish(Sequence* s, Finish why, StepEvents& ev, bool report) {
  Request& r = *requests_.at(s->request);
  if (!r.ended[size_t(s->index)]) {
    r.ended[size_t(s->index)] = true;
    r.alive--;
    if (report) ev.tokens.push_back({r.req.id, s->index, -1, 0.0f, why, {}, std::nullopt});
  }
  // An unforked prompt keeps computing for its other samples even when its own sample 0 ended.
  if (r.forked || r.alive == 0) drop(s);
  close_if_done(r.req.id, ev);
}

void Scheduler::close_if_done(uint64_t id, StepEvents& ev) {
  Request& r = *requests_.at(id);
  if (r.alive > 0) return;
  drop_all(id);
  ev.done.push_back({id, int32_t(r.req.prompt.size()), r.cached_tokens, false, ErrorCode::Internal, "", r.queued_for()});
  if (!r.admitted) queued_--;
  reserved_ -= r.reserved;
  requests_.erase(id);
}

void Scheduler::drop_all(uint64_t request) {
  std::vector<Sequence*> mine;
  for (auto& kv : seqs_) {
    if (kv.second->request == request) mine.push_back(kv.second.get());
  }
  for (Sequence* s : mine) drop(s);
}

void Scheduler::drop(Sequence* s) {
  auto run = std::find(running_.begin(), running_.end(), s);
  if (run != running_.end()) running_.erase(run);
  auto wait = std::find(waiting_.begin(), waiting_.end(), s);
  if (wait != waiting_.end()) waiting_.erase(wait);
  release_slot(s->slot);
  release_blocks(*s);
  seqs_.erase(s->id);
}

void Scheduler::cancel(uint64_t request, int32_t index, StepEvents& ev) {
  auto it = requests_.find(request);
  if (it == requests_.end()) return;
  Request& r = *it->second;
  if (index >= r.req.n) return;
  for (int32_t j = 0; j < r.req.n; ++j) {
    if ((index >= 0 && j != index) || r.ended[size_t(j)]) continue;
    Sequence* s = nullptr;
    for (auto& kv : seqs_) {
      if (kv.second->request == request && kv.second->index == j) s = kv.second.get();
    }
    if (s && (r.forked || j != 0)) {
      finish(s, Finish::Abort, ev, true);
    } else {
      // A sample of an unforked prompt (or its sample 0, whose sequence carries the prompt for the others): it is
      // just not forked; a reserved slot is free again.
      r.ended[size_t(j)] = true;
      r.alive--;
      ev.tokens.push_back({request, j, -1, 0.0f, Finish::Abort, {}, std::nullopt});
      if (j > 0 && r.reserved > 0) {
        r.reserved--;
        reserved_--;
      }
      close_if_done(request, ev);
    }
    if (!requests_.count(request)) return;
  }
}

void Scheduler::fail_request(Request& r, const Error& e, StepEvents& ev) {
  const uint64_t id = r.req.id;
  drop_all(id);
  if (!r.admitted) queued_--;
  reserved_ -= r.reserved;
  ev.done.push_back({id, int32_t(r.req.prompt.size()), r.cached_tokens, true, e.code(), e.what(), r.queued_for()});
  requests_.erase(id);
}

void Scheduler::fail(const ScheduledStep& st, const Error& e, StepEvents& ev) {
  std::vector<uint64_t> ids;
  for (const StepEntry& en : st.entries) {
    if (std::find(ids.begin(), ids.end(), en.seq->request) == ids.end()) ids.push_back(en.seq->request);
  }
  for (uint64_t id : ids) {
    auto it = requests_.find(id);
    if (it != requests_.end()) fail_request(*it->second, e, ev);
  }
}

void Scheduler::fail_all(const Error& e, StepEvents& ev) {
  while (!requests_.empty()) fail_request(*requests_.begin()->second, e, ev);
}

void Scheduler::fill_stats(ContextStats& s) const {
  s = totals_;
  s.blocks_total = pool_.total();
  s.blocks_used = pool_.in_use();
  s.blocks_cached = pool_.cached();
  s.block_size = kB;
  s.running = int32_t(running_.size());
  s.waiting = int32_t(waiting_.size());
}

}  // namespace eet

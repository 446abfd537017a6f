// The step runner (runner.h): workspace plan, per-step metadata, forward, head and sampling.
#include "runner.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <mutex>
#include <numeric>

#include "half.h"

namespace eet {

namespace {

constexpr size_t kAlign = 256;

// Byte offsets of a plan of 256-byte aligned regions.
struct Planner {
  size_t total = 0;
  size_t add(size_t bytes) {
    size_t at = (total + kAlign - 1) / kAlign * kAlign;
    total = at + bytes;
    return at;
  }
};

// Downloads n values of the model dtype and appends them as float32.
void download_f32(Backend& be, DType dtype, const void* src, int64_t n, std::vector<float>& out) {
  const size_t at = out.size();
  out.resize(at + size_t(n));
  if (dtype == DType::F32) {
    be.download(out.data() + at, src, size_t(n) * 4);
    return;
  }
  std::vector<uint16_t> bits(static_cast<size_t>(n));
  be.download(bits.data(), src, size_t(n) * 2);
  for (int64_t i = 0; i < n; ++i) {
    out[at + size_t(i)] = dtype == DType::F16 ? f16_to_f32(bits[size_t(i)]) : bf16_to_f32(bits[size_t(i)]);
  }
}

[[noreturn]] void internal(const std::string& what) { throw_error(ErrorCode::Internal, "step runner: " + what); }

// The float metadata region: one array of rows_max values each, in this order.
enum FloatMeta : int64_t { kTemperature, kTopP, kRepetition, kPresence, kFrequency, kFloatArrays };

// Log-softmax of one row of LM-head logits in fp64: the token's value and the top_n largest, descending, the lower
// id first on ties (so equal logits are listed in one order, whatever the sort does).
RawLogprobs raw_logprobs(const float* l, int64_t vocab, int32_t token, int32_t top_n) {
  double mx = l[0];
  for (int64_t i = 1; i < vocab; ++i) mx = std::max(mx, double(l[i]));
  double z = 0.0;
  for (int64_t i = 0; i < vocab; ++i) z += std::exp(double(l[i]) - mx);
  const double lse = mx + std::log(z);
  RawLogprobs r;
  r.token = double(l[token]) - lse;
  const int64_t n = std::min<int64_t>(top_n, vocab);
  std::vector<int32_t> ids(static_cast<size_t>(vocab));
  std::iota(ids.begin(), ids.end(), 0);
  std::partial_sort(ids.begin(), ids.begin() + n, ids.end(),
                    [l](int32_t a, int32_t b) { return l[a] > l[b] || (l[a] == l[b] && a < b); });
  r.top_ids.assign(ids.begin(), ids.begin() + n);
  for (int32_t id : r.top_ids) r.top.push_back(double(l[id]) - lse);
  return r;
}

}  // namespace

// Host copies of the metadata regions, plus the plan.
struct StepRunner::Meta {
  StepPlan plan;
  std::vector<int32_t> ints;
  std::vector<float> floats;
  std::vector<uint64_t> u64s;
  bool penalty = false;
  int32_t shared_tokens = 0;  // StepOutput's shared-prefix statistics
  int64_t shared_keys_saved = 0;
  int64_t memory_keys_saved = 0;  // encoder-memory keys read once for a group instead of per member
};

StepRunner::StepRunner(std::shared_ptr<const Model> model, int32_t max_rows, int32_t max_context, int32_t max_step_tokens,
                       bool shared_prefix, bool graphs)
    : model_(std::move(model)), shared_prefix_(shared_prefix), use_graphs_(graphs && model_->backend()->supports_graphs()) {
  const ModelConfig& c = model_->config();
  const Architecture& arch = model_->arch();
  Workspace& ws = ws_;
  const int64_t T = max_step_tokens, R = std::min<int64_t>(max_rows, max_step_tokens);
  const int64_t es = int64_t(dtype_size(c.dtype));
  ws.tokens_max = T;
  ws.rows_max = R;
  ws.max_context = max_context;
  ws.max_blocks_per_seq = (max_context + KvCache::kBlockSize - 1) / KvCache::kBlockSize;
  ws.buf1_width = arch.buffer_width(c);
  const bool decoder = arch.has_lm_head();
  auto bytes = [&](int64_t rows, int64_t cols) {
    return size_t(checked_mul(checked_mul(rows, cols, "workspace size"), es, "workspace size"));
  };
  Planner p;
  ws.x = p.add(bytes(T, c.dim));
  ws.h = p.add(bytes(T, c.dim));
  ws.buf1 = p.add(bytes(T, ws.buf1_width));
  ws.att = p.add(bytes(T, int64_t(c.n_heads) * c.head_dim));
  ws.last_x = p.add(bytes(R, c.dim));
  ws.last_h = p.add(bytes(R, c.dim));
  ws.logits = p.add(decoder ? bytes(R, c.vocab_size) : 0);
  // The ops' scratch: the most any reachable (batch, context) needs (checked per step by validate()); attention and
  // shared_attention never run at once, so they share it.
  // The backend's SM count now: every step's attention uses this one, so the plan holds whatever changes later
  // (the emu's setting).
  ws.sm_count = model_->backend()->sm_count();
  const AttnDecodeShape most{int32_t(R), c.n_heads, c.n_kv_heads, c.head_dim, max_context, ws.sm_count};
  ws.attn_ws_bytes = attention_workspace_plan(most);
  if (shared_prefix_ && decoder) ws.attn_ws_bytes = std::max(ws.attn_ws_bytes, shared_attention_workspace_plan(most));
  ws.sample_ws_bytes = decoder ? sample_workspace_bytes(R, c.vocab_size) : 0;
  ws.attn_ws = p.add(ws.attn_ws_bytes);
  ws.sample_ws = p.add(ws.sample_ws_bytes);
  ws.i_tokens = 0;
  ws.i_pos = T;
  ws.i_kv_slot = 2 * T;
  ws.i_q_start = 3 * T;
  ws.i_ctx_len = ws.i_q_start + R + 1;
  ws.i_last = ws.i_ctx_len + R;
  ws.i_block_table = ws.i_last + R;
  ws.i_top_k = ws.i_block_table + R * ws.max_blocks_per_seq;
  ws.i_history_len = ws.i_top_k + R;
  ws.i_history_start = ws.i_history_len + R;
  ws.i_types = ws.i_history_start + R;
  ws.i_shared_len = ws.i_types + T;
  ws.i_group_start = ws.i_shared_len + R;
  ws.i_group_seqs = ws.i_group_start + R + 1;
  // Memory tables exist for encoder-decoder models only (width 0 otherwise: the arrays are empty).
  const int64_t mem_blocks = arch.encoder_decoder() ? ws.max_blocks_per_seq : 0, mem_rows = mem_blocks ? R : 0;
  ws.i_mem_len = ws.i_group_seqs + R;
  ws.i_mem_table = ws.i_mem_len + mem_rows;
  ws.i_xshared_len = ws.i_mem_table + mem_rows * mem_blocks;
  ws.i_xgroup_start = ws.i_xshared_len + mem_rows;
  ws.i_xgroup_seqs = ws.i_xgroup_start + (mem_rows ? R + 1 : 0);
  ws.i_out = ws.i_xgroup_seqs + mem_rows;
  // The sampler's outputs, R token ids then R log-probabilities (float bits): one download brings both back.
  ws.n_ints = ws.i_out + 2 * R;
  ws.ints = p.add(size_t(ws.n_ints) * 4);
  ws.floats = p.add(size_t(kFloatArrays * R) * 4);
  ws.u64s = p.add(size_t(2 * R) * 8);
  // (R, max_context) int32: each sampled row's context, for the penalties.
  ws.history = p.add(decoder ? size_t(checked_mul(R, max_context, "workspace size")) * 4 : 0);
  ws.total = std::max(p.total, size_t(1));
  std::lock_guard<FairMutex> lock(model_->backend()->mutex());
  buffer_ = std::make_unique<DeviceBuffer>(model_->backend(), ws.total);
}

StepRunner::~StepRunner() {
  std::lock_guard<FairMutex> lock(model_->backend()->mutex());
  graphs_.clear();
  buffer_.reset();
}

size_t StepRunner::workspace_bytes() const { return buffer_->bytes(); }

void* StepRunner::at(size_t offset) const { return static_cast<uint8_t*>(buffer_->ptr()) + offset; }

StepRunner::Meta StepRunner::prepare(const std::vector<StepEntry>& entries, const std::vector<SampleRow>& rows,
                                     const std::vector<int32_t>& token_types, bool decoding_memory) {
  const Workspace& ws = ws_;
  const int64_t B = int64_t(entries.size()), R = ws.rows_max, mbps = ws.max_blocks_per_seq;
  if (B < 1 || B > R) internal("batch of " + std::to_string(B) + " sequences");
  if (int64_t(rows.size()) > R) internal(std::to_string(rows.size()) + " sampled rows");
  Meta m;
  m.ints.assign(size_t(ws.n_ints), 0);
  m.floats.assign(size_t(kFloatArrays * R), 0.0f);
  m.u64s.assign(size_t(2 * R), 0);
  int32_t* I = m.ints.data();
  std::vector<int32_t> last(static_cast<size_t>(B));
  int32_t row = 0;
  for (int64_t b = 0; b < B; ++b) {
    const Sequence& s = *entries[size_t(b)].seq;
    const int32_t n = entries[size_t(b)].count, old_len = s.computed, new_len = old_len + n;
    if (n < 1 || new_len > int32_t(s.tokens.size()) || new_len > ws.max_context ||
        int64_t(s.blocks.size()) * KvCache::kBlockSize < new_len || int64_t(s.blocks.size()) > mbps) {
      internal("inconsistent entry for sequence " + std::to_string(s.id));
    }
    if (row + n > ws.tokens_max) internal("step of more than " + std::to_string(ws.tokens_max) + " tokens");
    m.plan.max_q = std::max(m.plan.max_q, n);
    m.plan.max_ctx = std::max(m.plan.max_ctx, new_len);
    I[ws.i_q_start + b] = row;
    for (int32_t i = 0; i < n; ++i, ++row) {
      const int32_t pos = old_len + i;
      I[ws.i_tokens + row] = s.tokens[size_t(pos)];
      I[ws.i_pos + row] = pos;
      I[ws.i_kv_slot + row] = s.blocks[size_t(pos / KvCache::kBlockSize)] * KvCache::kBlockSize + pos % KvCache::kBlockSize;
      if (!token_types.empty()) I[ws.i_types + row] = token_types[size_t(row)];
    }
    I[ws.i_ctx_len + b] = new_len;
    last[size_t(b)] = row - 1;
    std::copy(s.blocks.begin(), s.blocks.end(), I + ws.i_block_table + b * mbps);
    if (decoding_memory) {
      const EncoderMemory* mem = s.memory.get();
      if (!mem || mem->len < 1 || int64_t(mem->blocks.size()) > mbps ||
          int64_t(mem->blocks.size()) * KvCache::kBlockSize < mem->len) {
        internal("sequence " + std::to_string(s.id) + " has no usable encoder memory");
      }
      I[ws.i_mem_len + b] = mem->len;
      std::copy(mem->blocks.begin(), mem->blocks.end(), I + ws.i_mem_table + b * mbps);
      m.plan.max_mem = std::max(m.plan.max_mem, mem->len);
    }
  }
  I[ws.i_q_start + B] = row;
  m.plan.batch = int32_t(B);
  m.plan.n_tokens = row;
  if (shared_prefix_ && m.plan.max_q == 1 && B > 1 && token_types.empty()) {
    // T5's decoder self-attention carries a position bias, which shared_attention lacks: it shares memories only.
    decoding_memory ? group_memories(entries, m) : group_shared_prefixes(entries, m);
  }
  for (size_t r = 0; r < rows.size(); ++r) {
    const SampleRow& sr = rows[r];
    if (sr.entry < 0 || sr.entry >= B) internal("sampled row of entry " + std::to_string(sr.entry));
    const Sequence& s = *entries[size_t(sr.entry)].seq;
    I[ws.i_last + int64_t(r)] = last[size_t(sr.entry)];
    I[ws.i_top_k + int64_t(r)] = sr.sampling.top_k;
    const bool penalised = sr.sampling.penalised();
    const int32_t history = penalised ? s.computed + entries[size_t(sr.entry)].count : 0;
    I[ws.i_history_len + int64_t(r)] = history;
    // The generated tokens follow the prompt (a low-level API sequence has none: all of its context counts).
    I[ws.i_history_start + int64_t(r)] = std::min(s.prompt_len, history);
    m.penalty = m.penalty || penalised;
    float* F = m.floats.data();
    F[kTemperature * R + int64_t(r)] = sr.sampling.temperature;
    F[kTopP * R + int64_t(r)] = sr.sampling.top_p;
    F[kRepetition * R + int64_t(r)] = sr.sampling.repetition_penalty;
    F[kPresence * R + int64_t(r)] = sr.sampling.presence_penalty;
    F[kFrequency * R + int64_t(r)] = sr.sampling.frequency_penalty;
    m.u64s[r] = sr.seed;
    m.u64s[size_t(R) + r] = sr.step;
  }
  return m;
}

// Groups the sequences of a decode step by their leading physical blocks: those whose tables start with the same
// block form a candidate group, which shares the blocks common to all of its tables (a block is shared memory, so
// its keys are the same for every table that holds it), up to the shortest member's context. Groups of one, or
// sharing no key, are left out: their sequences attend as plain decode inside the op (shared_len 0).
void StepRunner::group_shared_prefixes(const std::vector<StepEntry>& entries, Meta& m) {
  const Workspace& ws = ws_;
  const int32_t B = int32_t(entries.size());
  int32_t* I = m.ints.data();
  std::vector<int32_t> order(static_cast<size_t>(B));
  std::iota(order.begin(), order.end(), 0);
  const auto first_block = [&](int32_t b) { return entries[size_t(b)].seq->blocks[0]; };
  std::stable_sort(order.begin(), order.end(), [&](int32_t x, int32_t y) { return first_block(x) < first_block(y); });
  int32_t n_groups = 0, listed = 0;
  for (int32_t i = 0; i < B;) {
    int32_t j = i + 1;
    while (j < B && first_block(order[size_t(j)]) == first_block(order[size_t(i)])) ++j;
    if (j - i > 1) {
      const std::vector<int32_t>& lead = entries[size_t(order[size_t(i)])].seq->blocks;
      size_t common = lead.size();
      int64_t min_ctx = INT64_MAX;
      for (int32_t k = i; k < j; ++k) {
        const Sequence& s = *entries[size_t(order[size_t(k)])].seq;
        size_t n = 0;
        while (n < common && n < s.blocks.size() && s.blocks[n] == lead[n]) ++n;
        common = n;
        min_ctx = std::min<int64_t>(min_ctx, s.computed + entries[size_t(order[size_t(k)])].count);
      }
      const int32_t shared = int32_t(std::min<int64_t>(int64_t(common) * KvCache::kBlockSize, min_ctx));
      if (shared > 0) {
        I[ws.i_group_start + n_groups] = listed;
        for (int32_t k = i; k < j; ++k) {
          I[ws.i_group_seqs + listed++] = order[size_t(k)];
          I[ws.i_shared_len + order[size_t(k)]] = shared;
        }
        ++n_groups;
        m.plan.max_group_size = std::max(m.plan.max_group_size, j - i);
        m.plan.max_shared = std::max(m.plan.max_shared, shared);
        m.shared_tokens += j - i;
        m.shared_keys_saved += int64_t(shared) * (j - i - 1);
      }
    }
    i = j;
  }
  I[ws.i_group_start + n_groups] = listed;
  m.plan.n_groups = n_groups;
}

// Encoder-decoder decode steps: the sequences decoding against one encoder memory (the prompts of a PiD call, the
// n samples of one) form a cross-attention group that reads the memory once; every key of it is shared. A memory
// with one reader is left out: shared_len 0, a plain decode over its table inside the op.
void StepRunner::group_memories(const std::vector<StepEntry>& entries, Meta& m) {
  const Workspace& ws = ws_;
  const int32_t B = int32_t(entries.size());
  int32_t* I = m.ints.data();
  std::vector<int32_t> order(static_cast<size_t>(B));
  std::iota(order.begin(), order.end(), 0);
  const auto memory = [&](int32_t b) { return entries[size_t(b)].seq->memory->id; };
  std::stable_sort(order.begin(), order.end(), [&](int32_t x, int32_t y) { return memory(x) < memory(y); });
  int32_t n_groups = 0, listed = 0;
  for (int32_t i = 0; i < B;) {
    int32_t j = i + 1;
    while (j < B && memory(order[size_t(j)]) == memory(order[size_t(i)])) ++j;
    if (j - i > 1) {
      const int32_t len = entries[size_t(order[size_t(i)])].seq->memory->len;
      I[ws.i_xgroup_start + n_groups++] = listed;
      for (int32_t k = i; k < j; ++k) {
        I[ws.i_xgroup_seqs + listed++] = order[size_t(k)];
        I[ws.i_xshared_len + order[size_t(k)]] = len;
      }
      m.plan.x_max_group_size = std::max(m.plan.x_max_group_size, j - i);
      m.memory_keys_saved += int64_t(len) * (j - i - 1);
    }
    i = j;
  }
  I[ws.i_xgroup_start + n_groups] = listed;
  m.plan.x_groups = n_groups;
}

// One transfer for the three metadata regions, which the plan lays out back to back (ints, floats, u64s): a step
// starts with one upload (plus the penalised rows' histories), whether it then launches or replays.
void StepRunner::upload(const Meta& m) {
  const size_t end = ws_.u64s + m.u64s.size() * 8;
  std::vector<uint8_t> staging(end - ws_.ints, 0);
  std::memcpy(staging.data(), m.ints.data(), m.ints.size() * 4);
  std::memcpy(staging.data() + (ws_.floats - ws_.ints), m.floats.data(), m.floats.size() * 4);
  std::memcpy(staging.data() + (ws_.u64s - ws_.ints), m.u64s.data(), m.u64s.size() * 8);
  model_->backend()->upload(at(ws_.ints), staging.data(), staging.size());
}

bool StepRunner::graph_key(const KvCache& kv, const std::vector<StepEntry>& entries, const std::vector<SampleRow>& rows,
                           const Meta& m, StepGraphKey& key) {
  if (!use_graphs_ || m.plan.max_q != 1) return false;
  if (rows.size() != entries.size()) return false;
  for (size_t r = 0; r < rows.size(); ++r) {
    if (rows[r].entry != int32_t(r)) return false;
  }
  if (graph_kv_ != &kv) {  // recordings write the cache they were made with
    graphs_.clear();
    graph_kv_ = &kv;
  }
  const StepPlan& p = m.plan;
  key = StepGraphKey{p.batch, p.max_ctx, m.penalty, p.n_groups, p.max_group_size, p.max_shared, p.max_mem, p.x_groups,
                     p.x_max_group_size};
  return true;
}

void StepRunner::launch_step(const KvCache& kv, const Meta& m, int64_t rows) {
  Graph g(*model_, kv, ws_, static_cast<uint8_t*>(buffer_->ptr()), m.plan);
  model_->arch().forward(g);
  if (rows > 0) launch_head(m, rows);
}

void StepRunner::launch_or_replay(const KvCache& kv, const std::vector<StepEntry>& entries,
                                  const std::vector<SampleRow>& rows, const Meta& m) {
  Backend& be = *model_->backend();
  StepGraphKey key;
  if (!graph_key(kv, entries, rows, m, key)) {
    launch_step(kv, m, int64_t(rows.size()));
    return;
  }
  DeviceGraph* graph = graphs_.find(key);
  if (!graph) {
    if (!graphs_.seen_again(key)) {
      launch_step(kv, m, int64_t(rows.size()));
      return;
    }
    try {
      be.begin_capture();
      launch_step(kv, m, int64_t(rows.size()));
      graph = graphs_.add(key, be.end_capture());
    } catch (const Error& e) {
      // A step that cannot be recorded here (a driver that refuses something in it) must not fail every request:
      // this runner launches from the host from now on, and stats() says why. A lost device fails the eager
      // launch below, as it would have anyway.
      be.abort_capture();
      use_graphs_ = false;
      graphs_.clear();
      {
        std::lock_guard<std::mutex> lock(graph_error_mu_);
        graph_error_ = e.what();
      }
      launch_step(kv, m, int64_t(rows.size()));
      return;
    }
    graphs_captured_++;
  }
  // A capture only records: this step's work runs here, as every later step of the key does.
  be.replay(*graph);
  graph_steps_++;
}

StepOutput StepRunner::run(const KvCache& kv, const std::vector<StepEntry>& entries, const std::vector<SampleRow>& rows,
                           bool all_logits) {
  if (!model_->arch().has_lm_head()) {
    throw_error(ErrorCode::Unsupported, std::string("step(): a ") + model_->arch().name() + " model has no LM head; use embed()");
  }
  Meta m = prepare(entries, rows, {}, model_->arch().encoder_decoder());
  // Decode steps size the attention's split by a power-of-two bound of their contexts, so one recording serves many
  // steps (step_graphs.h); eager steps do the same, so a replayed step computes exactly what an eager one would.
  if (m.plan.max_q == 1) m.plan.max_ctx = graph_context_bucket(m.plan.max_ctx, ws_.max_context);
  StepOutput out;
  std::lock_guard<FairMutex> device(model_->backend()->mutex());
  model_->check_alive();
  upload(m);
  if (m.penalty) {
    // Each penalised row's context (its sequence's tokens up to this step's last) into its history row.
    int32_t* history = static_cast<int32_t*>(at(ws_.history));
    for (size_t r = 0; r < rows.size(); ++r) {
      if (!rows[r].sampling.penalised()) continue;
      const StepEntry& e = entries[size_t(rows[r].entry)];
      model_->backend()->upload(history + int64_t(r) * ws_.max_context, e.seq->tokens.data(),
                                size_t(e.seq->computed + e.count) * 4);
    }
  }
  if (all_logits) {
    launch_step(kv, m, 0);
    this->all_logits(m, out);
    if (!rows.empty()) launch_head(m, int64_t(rows.size()));
  } else {
    launch_or_replay(kv, entries, rows, m);
  }
  download_samples(rows, out);
  out.shared_tokens = m.shared_tokens;
  out.shared_keys_saved = m.shared_keys_saved;
  out.memory_keys_saved = m.memory_keys_saved;
  return out;
}

std::vector<float> StepRunner::hidden(const KvCache& kv, const std::vector<StepEntry>& entries,
                                     const std::vector<int32_t>& token_types) {
  Meta m = prepare(entries, {}, token_types, false);
  std::lock_guard<FairMutex> device(model_->backend()->mutex());
  model_->check_alive();
  upload(m);
  Graph g(*model_, kv, ws_, static_cast<uint8_t*>(buffer_->ptr()), m.plan);
  model_->arch().encoder(g);
  Backend& be = *model_->backend();
  be.synchronize();
  std::vector<float> out;
  download_f32(be, model_->config().dtype, at(ws_.x), int64_t(m.plan.n_tokens) * model_->config().dim, out);
  return out;
}

void StepRunner::encode(const KvCache& kv, const std::vector<StepEntry>& entries) {
  const Architecture& arch = model_->arch();
  if (!arch.encoder_decoder()) internal(std::string("encode() on a ") + arch.name() + " model");
  Meta m = prepare(entries, {}, {}, false);
  std::lock_guard<FairMutex> device(model_->backend()->mutex());
  model_->check_alive();
  upload(m);
  Graph g(*model_, kv, ws_, static_cast<uint8_t*>(buffer_->ptr()), m.plan);
  arch.encoder(g);
  arch.cross_kv(g);
  model_->backend()->synchronize();
}

void StepRunner::final_norm(const void* in, void* y, int64_t rows) {
  const Architecture& arch = model_->arch();
  apply_norm(*model_, arch.output_norm_kind(), in, nullptr, arch.output_norm_name(), arch.output_norm_bias(), y, rows);
}

// 'all' logits: every row's final norm and LM head, in chunks of R rows, each downloaded (synchronises).
void StepRunner::all_logits(const Meta& m, StepOutput& out) {
  const ModelConfig& c = model_->config();
  Backend& be = *model_->backend();
  const int64_t es = int64_t(dtype_size(c.dtype)), T = m.plan.n_tokens, R = ws_.rows_max, vocab = c.vocab_size;
  void* logits = at(ws_.logits);
  final_norm(at(ws_.x), at(ws_.h), T);
  out.all_logits.reserve(size_t(T) * size_t(vocab));
  for (int64_t r0 = 0; r0 < T; r0 += R) {
    const int64_t n = std::min(R, T - r0);
    lm_head(*model_, static_cast<uint8_t*>(at(ws_.h)) + r0 * c.dim * es, n, logits);
    be.synchronize();
    download_f32(be, c.dtype, logits, n * vocab, out.all_logits);
  }
}

// Each sampled row's token -> final norm -> LM head -> sampling: launches only (a recorded step ends here).
void StepRunner::launch_head(const Meta& m, int64_t NR) {
  const Workspace& ws = ws_;
  const ModelConfig& c = model_->config();
  Backend& be = *model_->backend();
  const DType dt = c.dtype;
  const int64_t T = m.plan.n_tokens, R = ws.rows_max;
  const int64_t dim = c.dim, vocab = c.vocab_size;
  int32_t* ints = static_cast<int32_t*>(at(ws.ints));
  float* floats = static_cast<float*>(at(ws.floats));
  uint64_t* u64s = static_cast<uint64_t*>(at(ws.u64s));
  void* logits = at(ws.logits);

  EmbeddingArgs gather{};
  gather.dtype = dt;
  gather.ids = ints + ws.i_last;
  gather.table = at(ws.x);
  gather.out = at(ws.last_x);
  gather.n = NR;
  gather.cols = dim;
  gather.vocab = T;
  be.embedding(gather);
  normed_lm_head(*model_, at(ws.last_x), at(ws.last_h), NR, logits);

  SampleArgs s{};
  s.dtype = dt;
  s.logits = logits;
  s.batch = NR;
  s.vocab = vocab;
  s.temperature = floats + kTemperature * R;
  s.top_k = ints + ws.i_top_k;
  s.top_p = floats + kTopP * R;
  s.repetition_penalty = floats + kRepetition * R;
  s.presence_penalty = floats + kPresence * R;
  s.frequency_penalty = floats + kFrequency * R;
  s.history = m.penalty ? static_cast<int32_t*>(at(ws.history)) : nullptr;
  s.history_len = m.penalty ? ints + ws.i_history_len : nullptr;
  s.history_start = m.penalty ? ints + ws.i_history_start : nullptr;
  s.history_stride = ws.max_context;
  s.seed = u64s;
  s.step = u64s + R;
  s.tokens_out = ints + ws.i_out;
  s.logprob_out = reinterpret_cast<float*>(ints + ws.i_out + R);
  s.workspace = ws.sample_ws_bytes ? at(ws.sample_ws) : nullptr;
  s.workspace_bytes = ws.sample_ws_bytes;
  be.sample(s);
}

// Waits for the step, then downloads each row's token and log-probability (one transfer, which waits for the step
// as it follows it on the stream), and the LM-head logits of the rows that asked (sampling penalised a copy in its
// workspace, not these).
void StepRunner::download_samples(const std::vector<SampleRow>& rows, StepOutput& out) {
  const ModelConfig& c = model_->config();
  Backend& be = *model_->backend();
  const DType dt = c.dtype;
  const int64_t es = int64_t(dtype_size(dt)), R = ws_.rows_max, NR = int64_t(rows.size()), vocab = c.vocab_size;
  const int32_t* ints = static_cast<const int32_t*>(at(ws_.ints));
  const void* logits = at(ws_.logits);
  if (NR == 0) {
    be.synchronize();
    return;
  }
  out.tokens.resize(size_t(NR));
  out.logprobs.resize(size_t(NR));
  std::vector<int32_t> got(static_cast<size_t>(R + NR));
  be.download(got.data(), ints + ws_.i_out, got.size() * 4);
  std::copy(got.begin(), got.begin() + NR, out.tokens.begin());
  std::memcpy(out.logprobs.data(), got.data() + R, size_t(NR) * 4);
  out.raw.resize(size_t(NR));
  std::vector<float> row;
  for (int64_t r = 0; r < NR; ++r) {
    const SampleRow& sr = rows[size_t(r)];
    if (!sr.logits && sr.top_logprobs < 0) continue;
    std::vector<float>& dst = sr.logits ? out.logits : row;
    if (!sr.logits) row.clear();
    const size_t at_row = dst.size();
    download_f32(be, dt, static_cast<const uint8_t*>(logits) + r * vocab * es, vocab, dst);
    if (sr.top_logprobs >= 0 && out.tokens[size_t(r)] >= 0) out.raw[size_t(r)] = raw_logprobs(dst.data() + at_row, vocab, out.tokens[size_t(r)], sr.top_logprobs);
  }
}

}  // namespace eet

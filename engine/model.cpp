// The model: config, memory plan, sequences and one forward step (model.h). The architectures' weights and
// layers are in engine/arch_*.cpp, built from the Graph helpers (graph.h); this file runs what they share.
//
// Batching without a mask tensor. A step carries the new tokens of B sequences packed back to back:
// (T, C) activations with T = sum(counts), no padding. Everything row-wise (norms, GEMMs, RoPE, activations) does
// not care where one sequence ends; only attention does, and it gets the structure as lengths: q_start (where each
// sequence's rows begin), ctx_len (its context after this step) and its block table into the paged cache. The
// causal and length masks are computed inside the attention kernel from those (EET's fused masking), so
// sequences of any lengths — a prompt of 300 tokens next to three single-token decodes — share one pass, and no
// (B, T, T) mask is ever built or padded. The encoder (bert) uses the same path, non-causal, over free slots.
//
// One step of a decoder: embedding and layers (arch_*.cpp) leave the residual stream x (T, dim); then
//   xl = x[last row of each sequence]; logits = final_norm(xl) · headᵀ   (B, vocab), head = token_embd when tied;
//   sample per slot on the device; download tokens (+ logprobs, + logits when asked).
// 'all' logits additionally normalise every row and run the head GEMM in chunks of the workspace's logits rows,
// downloading each chunk, so the workspace never holds (T, vocab).
//
// The residual stream stays in the model dtype and the math is exactly what the ops do; nothing here reorders
// float arithmetic (f32 on cpu/emu must reproduce llama2.c's greedy text).
#include "model.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "graph.h"
#include "half.h"

namespace eet {

namespace {

constexpr size_t kAlign = 256;

[[noreturn]] void bad_config(const std::string& field, const std::string& expected, int64_t got) {
  throw_error(ErrorCode::InvalidArg, "Expected " + expected + " for " + field + " but received " + std::to_string(got));
}

void config_range(const char* field, int64_t v, int64_t lo, int64_t hi) {
  if (v < lo || v > hi) bad_config(field, "integer in [" + std::to_string(lo) + ", " + std::to_string(hi) + "]", v);
}

void validate_config(const ModelConfig& c) {
  config_range("dim", c.dim, 1, 16384);
  config_range("hiddenDim", c.hidden_dim, 1, int64_t(1) << 20);
  config_range("nLayers", c.n_layers, 1, 4096);
  config_range("nHeads", c.n_heads, 1, 4096);
  config_range("nKvHeads", c.n_kv_heads, 1, c.n_heads);
  if (c.n_heads % c.n_kv_heads) bad_config("nKvHeads", "a divisor of nHeads (" + std::to_string(c.n_heads) + ")", c.n_kv_heads);
  config_range("headDim", c.head_dim, 8, 256);
  if (c.head_dim % 2) bad_config("headDim", "an even number", c.head_dim);
  config_range("vocabSize", c.vocab_size, 1, 1 << 24);
  config_range("maxSeqLen", c.max_seq_len, 1, 1 << 20);
  config_range("maxContext", c.max_context, 1, c.max_seq_len);
  config_range("maxBatch", c.max_batch, 1, 4096);
  config_range("maxStepTokens", c.max_step_tokens, 1, 1 << 20);
  if (!(c.norm_eps >= 0.0f) || !std::isfinite(c.norm_eps)) throw_error(ErrorCode::InvalidArg, "Expected a finite number >= 0 for normEps");
  auto positive = [](const char* field, float v) {
    if (!(v > 0.0f) || !std::isfinite(v)) throw_error(ErrorCode::InvalidArg, std::string("Expected a finite number > 0 for ") + field);
  };
  if (c.arch == Arch::Llama) {
    positive("ropeTheta", c.rope_theta);
    if (c.rope_scaling != RopeScaling::None) positive("ropeScaling.factor", c.rope_factor);
    if (c.rope_scaling == RopeScaling::Llama3) {
      positive("ropeScaling.lowFreqFactor", c.rope_low_freq_factor);
      positive("ropeScaling.highFreqFactor", c.rope_high_freq_factor);
      if (!(c.rope_high_freq_factor > c.rope_low_freq_factor)) {
        throw_error(ErrorCode::InvalidArg, "Expected ropeScaling.highFreqFactor > ropeScaling.lowFreqFactor");
      }
      config_range("ropeScaling.originalMaxPositionEmbeddings", c.rope_original_max_pos, 1, 1 << 24);
    }
  } else if (c.n_kv_heads != c.n_heads) {
    bad_config("nKvHeads", "nHeads (" + std::to_string(c.n_heads) + ") for this architecture", c.n_kv_heads);
  }
  if (c.arch == Arch::Bert) config_range("nTokenTypes", c.n_token_types, 1, 1 << 16);
  if (!is_float(c.dtype)) throw_error(ErrorCode::Unsupported, std::string("model dtype ") + dtype_name(c.dtype) + " is not supported");
}

// RoPE inverse frequencies, computed as llama2.c does: 1 / theta^(2i / head_dim) in float; then the scaling, in
// double from that float and rounded once:
//   linear: freq / factor  (positions divided by factor)
//   llama3 (Llama 3.1): the wavelength 2π / freq against the original context L decides:
//     wavelength < L / high_freq_factor: freq (the high frequencies are kept);
//     wavelength > L / low_freq_factor:  freq / factor;
//     in between, s = (L / wavelength - low_freq_factor) / (high_freq_factor - low_freq_factor) interpolates:
//     (1 - s) * freq / factor + s * freq.
std::vector<float> rope_inv_freq(const ModelConfig& c) {
  const double pi = 3.14159265358979323846;
  std::vector<float> inv_freq(size_t(c.head_dim / 2));
  for (size_t i = 0; i < inv_freq.size(); ++i) {
    const float base = 1.0f / powf(c.rope_theta, float(2 * i) / float(c.head_dim));
    const double f = base, factor = c.rope_factor;
    switch (c.rope_scaling) {
      case RopeScaling::None: inv_freq[i] = base; break;
      case RopeScaling::Linear: inv_freq[i] = float(f / factor); break;
      case RopeScaling::Llama3: {
        const double L = c.rope_original_max_pos, lo = c.rope_low_freq_factor, hi = c.rope_high_freq_factor;
        const double wavelength = 2.0 * pi / f;
        if (wavelength < L / hi) {
          inv_freq[i] = base;
        } else if (wavelength > L / lo) {
          inv_freq[i] = float(f / factor);
        } else {
          const double s = (L / wavelength - lo) / (hi - lo);
          inv_freq[i] = float((1.0 - s) * f / factor + s * f);
        }
        break;
      }
    }
  }
  return inv_freq;
}

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

// Byte offsets of a plan of 256-byte aligned regions.
struct Planner {
  size_t total = 0;
  size_t add(size_t bytes) {
    size_t at = (total + kAlign - 1) / kAlign * kAlign;
    total = at + bytes;
    return at;
  }
};

}  // namespace

Model::Model(const ModelConfig& config, std::shared_ptr<Backend> backend)
    : cfg_(config), backend_(std::move(backend)), weights_(config.dtype, config.q8_weights) {
  validate_config(cfg_);
  plan_weights();
  weights_.check_q8_names();
  plan_workspace();
  std::lock_guard<std::mutex> lock(backend_->mutex());
  weights_.allocate(backend_);
  kv_ = std::make_unique<KvPool>(backend_, cfg_.dtype, cfg_.n_layers, cfg_.n_kv_heads, cfg_.head_dim, cfg_.max_batch,
                                 cfg_.max_context);
  size_t total = std::max(wsl_->history + size_t(wsl_->rows_max) * size_t(cfg_.max_context) * 4, size_t(1));
  ws_ = std::make_unique<DeviceBuffer>(backend_, total);
  slots_.resize(size_t(cfg_.max_batch));
}

Model::~Model() {
  std::lock_guard<std::mutex> lock(backend_->mutex());
  ws_.reset();
  kv_.reset();
  weights_.release();
}

void Model::check_alive() const {
  if (disposed_) throw_error(ErrorCode::Disposed, "the model was disposed");
}

void Model::plan_weights() {
  switch (cfg_.arch) {
    case Arch::Llama: plan_weights_llama(); break;
    case Arch::Gpt2: plan_weights_gpt2(); break;
    case Arch::Bert: plan_weights_bert(); break;
  }
}

void Model::plan_workspace() {
  auto ws = std::make_unique<Workspace>();
  const int64_t T = cfg_.max_step_tokens, R = std::min<int64_t>(cfg_.max_batch, cfg_.max_step_tokens);
  const int64_t es = int64_t(dtype_size(cfg_.dtype));
  const int64_t qkv_width = int64_t(cfg_.n_heads + 2 * cfg_.n_kv_heads) * cfg_.head_dim;
  const int64_t mbps = (cfg_.max_context + KvPool::kBlockSize - 1) / KvPool::kBlockSize;
  ws->tokens_max = T;
  ws->rows_max = R;
  const bool decoder = cfg_.arch != Arch::Bert;
  const int64_t ffn_width = int64_t(cfg_.hidden_dim) * (cfg_.arch == Arch::Llama ? 2 : 1);  // llama: gate|up
  ws->buf1_width = std::max<int64_t>({qkv_width, ffn_width, cfg_.dim});
  auto bytes = [&](int64_t rows, int64_t cols) {
    return size_t(checked_mul(checked_mul(rows, cols, "workspace size"), es, "workspace size"));
  };
  Planner p;
  ws->x = p.add(bytes(T, cfg_.dim));
  ws->h = p.add(bytes(T, cfg_.dim));
  ws->buf1 = p.add(bytes(T, ws->buf1_width));
  ws->att = p.add(bytes(T, int64_t(cfg_.n_heads) * cfg_.head_dim));
  ws->last_x = p.add(bytes(R, cfg_.dim));
  ws->last_h = p.add(bytes(R, cfg_.dim));
  ws->logits = p.add(decoder ? bytes(R, cfg_.vocab_size) : 0);
  // The ops' scratch needs are maximal at the largest batch and context (checked per step by validate()).
  ws->attn_ws_bytes = 0;
  ws->sample_ws_bytes = 0;
  for (int64_t b = 1; b <= R; ++b) {
    ws->attn_ws_bytes = std::max(ws->attn_ws_bytes,
                                 attention_workspace_bytes(int32_t(b), cfg_.n_heads, cfg_.head_dim, cfg_.max_context));
    if (decoder) ws->sample_ws_bytes = std::max(ws->sample_ws_bytes, sample_workspace_bytes(b, cfg_.vocab_size));
  }
  ws->attn_ws = p.add(ws->attn_ws_bytes);
  ws->sample_ws = p.add(ws->sample_ws_bytes);
  ws->i_tokens = 0;
  ws->i_pos = T;
  ws->i_kv_slot = 2 * T;
  ws->i_q_start = 3 * T;
  ws->i_ctx_len = ws->i_q_start + R + 1;
  ws->i_last = ws->i_ctx_len + R;
  ws->i_block_table = ws->i_last + R;
  ws->i_top_k = ws->i_block_table + R * mbps;
  ws->i_history_len = ws->i_top_k + R;
  ws->i_types = ws->i_history_len + R;
  ws->i_out = ws->i_types + T;
  ws->n_ints = ws->i_out + R;
  ws->ints = p.add(size_t(ws->n_ints) * 4);
  ws->floats = p.add(size_t(4 * R) * 4);
  ws->u64s = p.add(size_t(2 * R) * 8);
  ws->history = p.add(0);  // (R, max_context) int32: each sampled row's context, for the repetition penalty
  wsl_ = std::move(ws);
}

void Model::load_tensor(const std::string& name, const TensorSource& src) {
  check_alive();
  {
    std::lock_guard<std::mutex> lock(state_mu_);
    if (finalized_) throw_error(ErrorCode::InvalidArg, "tensor '" + name + "': the model is already finalized");
  }
  weights_.load(name, src);
}

void Model::finalize() {
  check_alive();
  std::vector<std::string> missing = weights_.missing();
  if (!missing.empty()) {
    std::string list;
    for (size_t i = 0; i < missing.size() && i < 16; ++i) list += (i ? ", " : "") + missing[i];
    if (missing.size() > 16) list += ", … (" + std::to_string(missing.size()) + " in all)";
    throw_error(ErrorCode::ModelFormat, "missing tensors: " + list);
  }
  if (cfg_.arch == Arch::Llama) {
    std::vector<float> inv_freq = rope_inv_freq(cfg_);
    std::lock_guard<std::mutex> lock(backend_->mutex());
    backend_->upload(weights_.ptr("rope.inv_freq"), inv_freq.data(), inv_freq.size() * 4);
    backend_->synchronize();
  }
  std::lock_guard<std::mutex> lock(state_mu_);
  finalized_ = true;
}

int32_t Model::start_sequence(uint64_t seed) {
  check_alive();
  std::lock_guard<std::mutex> lock(state_mu_);
  int32_t slot = kv_->acquire();
  if (slot < 0) {
    throw_error(ErrorCode::InvalidArg, "no free sequence slot: all " + std::to_string(cfg_.max_batch) +
                                           " (maxBatch) sequences are live; end one first");
  }
  SlotState& s = slots_[size_t(slot)];
  s.seed = seed;
  s.step = 0;
  s.epoch++;
  return slot;
}

void Model::end_sequence(int32_t slot) {
  check_alive();
  std::lock_guard<std::mutex> lock(state_mu_);
  if (!kv_->live(slot)) {
    throw_error(ErrorCode::InvalidArg, "Expected a live sequence slot for slot but received " + std::to_string(slot));
  }
  kv_->release(slot);
}

MemoryReport Model::memory() const {
  check_alive();
  return {weights_.bytes(), kv_->bytes(), ws_->bytes()};
}

// Validates the request against the live state, reserves the new positions and builds the step's metadata.
Model::StepPlan Model::prepare(const StepRequest& r, const std::vector<int32_t>& token_types) {
  std::lock_guard<std::mutex> lock(state_mu_);
  if (!finalized_) throw_error(ErrorCode::InvalidArg, "step(): the model is not finalized (call finalize() first)");
  const Workspace& ws = *wsl_;
  const size_t B = r.slots.size();
  auto arg = [](const std::string& msg) { throw_error(ErrorCode::InvalidArg, msg); };
  if (B < 1 || int64_t(B) > ws.rows_max) {
    arg("Expected 1.." + std::to_string(ws.rows_max) + " slots for slots but received " + std::to_string(B));
  }
  auto same_length = [&](const char* name, size_t n) {
    if (n != B) arg("Expected " + std::to_string(B) + " values (one per slot) for " + name + " but received " + std::to_string(n));
  };
  same_length("counts", r.counts.size());
  same_length("temperature", r.temperature.size());
  same_length("topK", r.top_k.size());
  same_length("topP", r.top_p.size());
  same_length("repetitionPenalty", r.repetition_penalty.size());

  StepPlan p;
  p.batch = int32_t(B);
  std::vector<bool> seen(size_t(cfg_.max_batch), false);
  int64_t total = 0;
  for (size_t b = 0; b < B; ++b) {
    const int32_t s = r.slots[b];
    const std::string at = "[" + std::to_string(b) + "]";
    if (!kv_->live(s)) arg("Expected a live sequence slot for slots" + at + " but received " + std::to_string(s));
    if (seen[size_t(s)]) arg("Expected distinct slots but slot " + std::to_string(s) + " appears twice");
    seen[size_t(s)] = true;
    const int32_t n = r.counts[b];
    if (n < 1) arg("Expected a positive integer for counts" + at + " but received " + std::to_string(n));
    total += n;
    const int64_t len = int64_t(kv_->length(s)) + n;
    if (len > cfg_.max_context) {
      arg("sequence in slot " + std::to_string(s) + " would hold " + std::to_string(len) +
          " tokens, more than maxContext (" + std::to_string(cfg_.max_context) + ")");
    }
    const float t = r.temperature[b], tp = r.top_p[b], pen = r.repetition_penalty[b];
    if (!(t >= 0.0f) || !std::isfinite(t)) arg("Expected a finite number >= 0 for temperature" + at + " but received " + std::to_string(t));
    if (r.top_k[b] < 0) arg("Expected an integer >= 0 for topK" + at + " but received " + std::to_string(r.top_k[b]));
    if (!(tp > 0.0f && tp <= 1.0f)) arg("Expected a number in (0, 1] for topP" + at + " but received " + std::to_string(tp));
    if (!(pen > 0.0f) || !std::isfinite(pen)) arg("Expected a finite number > 0 for repetitionPenalty" + at + " but received " + std::to_string(pen));
  }
  if (total != int64_t(r.tokens.size())) {
    arg("Expected tokens.length equal to the sum of counts (" + std::to_string(total) + ") but received " + std::to_string(r.tokens.size()));
  }
  if (total > cfg_.max_step_tokens) {
    arg("step carries " + std::to_string(total) + " tokens, more than maxStepTokens (" + std::to_string(cfg_.max_step_tokens) + ")");
  }
  for (size_t i = 0; i < r.tokens.size(); ++i) {
    if (r.tokens[i] < 0 || r.tokens[i] >= cfg_.vocab_size) {
      arg("Expected a token id in [0, " + std::to_string(cfg_.vocab_size) + ") for tokens[" + std::to_string(i) +
          "] but received " + std::to_string(r.tokens[i]));
    }
  }

  // Everything is valid: reserve the positions (allocating blocks) and lay out the metadata.
  const int64_t R = ws.rows_max, mbps = kv_->max_blocks_per_seq();
  p.n_tokens = int32_t(total);
  p.ints.assign(size_t(ws.n_ints), 0);
  p.floats.assign(size_t(4 * R), 0.0f);
  p.u64s.assign(size_t(2 * R), 0);
  int32_t* I = p.ints.data();
  int32_t row = 0;
  for (size_t b = 0; b < B; ++b) {
    const int32_t s = r.slots[b], n = r.counts[b];
    const int32_t old_len = kv_->length(s), new_len = old_len + n;
    kv_->set_length(s, new_len);
    p.old_len.push_back(old_len);
    p.new_len.push_back(new_len);
    p.epoch.push_back(slots_[size_t(s)].epoch);
    p.max_q = std::max(p.max_q, n);
    p.max_ctx = std::max(p.max_ctx, new_len);
    I[ws.i_q_start + int64_t(b)] = row;
    for (int32_t i = 0; i < n; ++i, ++row) {
      I[ws.i_tokens + row] = r.tokens[size_t(row)];
      I[ws.i_pos + row] = old_len + i;
      I[ws.i_kv_slot + row] = kv_->cache_slot(s, old_len + i);
      if (!token_types.empty()) I[ws.i_types + row] = token_types[size_t(row)];
    }
    I[ws.i_ctx_len + int64_t(b)] = new_len;
    I[ws.i_last + int64_t(b)] = row - 1;
    const std::vector<int32_t>& blocks = kv_->blocks(s);
    std::copy(blocks.begin(), blocks.end(), I + ws.i_block_table + int64_t(b) * mbps);
    I[ws.i_top_k + int64_t(b)] = r.top_k[b];
    const bool penalised = r.repetition_penalty[b] != 1.0f;
    I[ws.i_history_len + int64_t(b)] = penalised ? new_len : 0;
    p.penalty = p.penalty || penalised;
    p.floats[b] = r.temperature[b];
    p.floats[size_t(R) + b] = r.top_p[b];
    p.floats[size_t(2 * R) + b] = r.repetition_penalty[b];
    p.u64s[b] = slots_[size_t(s)].seed;
    p.u64s[size_t(R) + b] = slots_[size_t(s)].step;
  }
  I[ws.i_q_start + int64_t(B)] = row;
  return p;
}

StepResult Model::step(const StepRequest& r) {
  std::lock_guard<std::mutex> device(backend_->mutex());
  check_alive();
  if (cfg_.arch == Arch::Bert) throw_error(ErrorCode::Unsupported, "step(): a bert model has no LM head; use embed()");
  StepPlan p = prepare(r, {});
  StepResult out;
  try {
    forward_layers(r, p);
    head_and_sample(r, p, out);
  } catch (...) {
    // Give back the positions this step reserved (the blocks stay with the sequence).
    std::lock_guard<std::mutex> lock(state_mu_);
    for (size_t b = 0; b < r.slots.size(); ++b) {
      const int32_t s = r.slots[b];
      if (kv_->live(s) && slots_[size_t(s)].epoch == p.epoch[b] && kv_->length(s) == p.new_len[b]) {
        kv_->set_length(s, p.old_len[b]);
      }
    }
    throw;
  }
  std::lock_guard<std::mutex> lock(state_mu_);
  for (size_t b = 0; b < r.slots.size(); ++b) {
    const int32_t s = r.slots[b];
    if (kv_->live(s) && slots_[size_t(s)].epoch == p.epoch[b]) slots_[size_t(s)].step++;
  }
  return out;
}

std::vector<float> Model::embed(const EmbedRequest& r) {
  std::lock_guard<std::mutex> device(backend_->mutex());
  check_alive();
  if (cfg_.arch != Arch::Bert) {
    throw_error(ErrorCode::Unsupported, "embed(): only encoder models (bert) compute embeddings; use step()");
  }
  {
    std::lock_guard<std::mutex> lock(state_mu_);
    if (!finalized_) throw_error(ErrorCode::InvalidArg, "embed(): the model is not finalized (call finalize() first)");
  }
  auto arg = [](const std::string& msg) { throw_error(ErrorCode::InvalidArg, msg); };
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
  for (size_t i = 0; i < r.tokens.size(); ++i) {
    if (r.tokens[i] < 0 || r.tokens[i] >= cfg_.vocab_size) {
      arg("Expected a token id in [0, " + std::to_string(cfg_.vocab_size) + ") for tokens[" + std::to_string(i) +
          "] but received " + std::to_string(r.tokens[i]));
    }
  }
  if (!r.token_types.empty() && r.token_types.size() != r.tokens.size()) {
    arg("Expected tokenTypes.length equal to tokens.length (" + std::to_string(r.tokens.size()) + ") but received " +
        std::to_string(r.token_types.size()));
  }
  for (size_t i = 0; i < r.token_types.size(); ++i) {
    if (r.token_types[i] < 0 || r.token_types[i] >= cfg_.n_token_types) {
      arg("Expected a token type in [0, " + std::to_string(cfg_.n_token_types) + ") for tokenTypes[" + std::to_string(i) +
          "] but received " + std::to_string(r.token_types[i]));
    }
  }
  // Chunks of whole sequences that fit one pass (maxBatch rows, maxStepTokens tokens, the free slots).
  std::vector<float> out(B * size_t(cfg_.dim));
  size_t s0 = 0;
  int64_t tok0 = 0;
  while (s0 < B) {
    size_t s1 = s0;
    int64_t n = 0;
    while (s1 < B && int64_t(s1 - s0) < wsl_->rows_max && n + r.counts[s1] <= cfg_.max_step_tokens) n += r.counts[s1++];
    const size_t done = embed_chunk(r, s0, s1, tok0, out.data());
    for (size_t i = s0; i < done; ++i) tok0 += r.counts[i];
    s0 = done;
  }
  return out;
}

// One pass over sequences s0..s1-1 (fewer when not enough slots are free; returns the end) in temporary slots,
// then pooling of their final hidden states on the host into out (batch, dim).
size_t Model::embed_chunk(const EmbedRequest& r, size_t s0, size_t s1, int64_t tok0, float* out) {
  std::vector<int32_t> slots;
  struct Release {
    Model& m;
    std::vector<int32_t>& slots;
    ~Release() {
      std::lock_guard<std::mutex> lock(m.state_mu_);
      for (int32_t s : slots) {
        if (m.kv_->live(s)) m.kv_->release(s);
      }
    }
  } release{*this, slots};
  {
    std::lock_guard<std::mutex> lock(state_mu_);
    for (size_t i = s0; i < s1; ++i) {
      const int32_t slot = kv_->acquire();
      if (slot < 0) break;
      slots_[size_t(slot)].epoch++;
      slots.push_back(slot);
    }
  }
  if (slots.empty()) {
    throw_error(ErrorCode::InvalidArg, "embed(): no free sequence slot: all " + std::to_string(cfg_.max_batch) +
                                           " (maxBatch) slots are live; end a sequence first");
  }
  s1 = s0 + slots.size();
  StepRequest sr;
  sr.slots = slots;
  sr.counts.assign(r.counts.begin() + ptrdiff_t(s0), r.counts.begin() + ptrdiff_t(s1));
  int64_t n = 0;
  for (int32_t c : sr.counts) n += c;
  sr.tokens.assign(r.tokens.begin() + tok0, r.tokens.begin() + tok0 + n);
  std::vector<int32_t> types;
  if (!r.token_types.empty()) types.assign(r.token_types.begin() + tok0, r.token_types.begin() + tok0 + n);
  sr.temperature.assign(slots.size(), 0.0f);
  sr.top_k.assign(slots.size(), 0);
  sr.top_p.assign(slots.size(), 1.0f);
  sr.repetition_penalty.assign(slots.size(), 1.0f);
  StepPlan p = prepare(sr, types);
  forward_layers(sr, p);
  backend_->synchronize();
  std::vector<float> hidden;
  download_f32(*backend_, cfg_.dtype, static_cast<uint8_t*>(ws_->ptr()) + wsl_->x, n * cfg_.dim, hidden);

  const size_t dim = size_t(cfg_.dim);
  size_t row = 0;
  for (size_t b = 0; b < slots.size(); ++b) {
    const size_t len = size_t(sr.counts[b]);
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

// logits (rows, vocab) = h_rows (rows, dim) · headᵀ
void Model::head_logits_rows(const void* h_rows, int64_t rows, void* logits) {
  const std::string head = cfg_.tied_embeddings ? "token_embd" : "output";
  if (weights_.is_q8(head)) {
    GemmQ8Args q{};
    q.dtype = cfg_.dtype;
    q.x = h_rows;
    q.wq = static_cast<const int8_t*>(w(head));
    q.wscale = weights_.scales(head);
    q.y = logits;
    q.m = rows;
    q.n = cfg_.vocab_size;
    q.k = cfg_.dim;
    q.ldx = cfg_.dim;
    q.ldy = cfg_.vocab_size;
    backend_->gemm_q8(q);
    return;
  }
  GemmArgs g{};
  g.dtype = cfg_.dtype;
  g.x = h_rows;
  g.w = w(head);
  g.y = logits;
  g.m = rows;
  g.n = cfg_.vocab_size;
  g.k = cfg_.dim;
  g.ldx = cfg_.dim;
  g.ldy = cfg_.vocab_size;
  backend_->gemm(g);
}


void Model::forward_layers(const StepRequest& r, const StepPlan& p) {
  const Workspace& ws = *wsl_;
  uint8_t* base = static_cast<uint8_t*>(ws_->ptr());
  // Metadata up, and (decoders) the new tokens into each slot's history row.
  backend_->upload(base + ws.ints, p.ints.data(), size_t(ws.i_out) * 4);
  backend_->upload(base + ws.floats, p.floats.data(), p.floats.size() * 4);
  backend_->upload(base + ws.u64s, p.u64s.data(), p.u64s.size() * 8);
  if (cfg_.arch != Arch::Bert) {
    for (int64_t b = 0, row = 0; b < p.batch; row += r.counts[size_t(b)], ++b) {
      const int32_t s = r.slots[size_t(b)];
      backend_->upload(kv_->history(s) + p.old_len[size_t(b)], r.tokens.data() + row, size_t(r.counts[size_t(b)]) * 4);
    }
  }
  switch (cfg_.arch) {
    case Arch::Llama: layers_llama(p); break;
    case Arch::Gpt2: layers_gpt2(p); break;
    case Arch::Bert: layers_bert(p); break;
  }
}

void Model::final_norm(const void* in, void* y, int64_t rows) {
  NormArgs a{};
  a.kind = cfg_.arch == Arch::Llama ? NormKind::Rms : NormKind::Layer;
  a.dtype = cfg_.dtype;
  a.x = in;
  a.weight = w("output_norm");
  a.bias = cfg_.arch == Arch::Gpt2 ? w("output_norm.bias") : nullptr;
  a.y = y;
  a.rows = rows;
  a.cols = cfg_.dim;
  a.eps = cfg_.norm_eps;
  backend_->norm(a);
}

void Model::head_and_sample(const StepRequest& r, const StepPlan& p, StepResult& out) {
  const Workspace& ws = *wsl_;
  const DType dt = cfg_.dtype;
  const int64_t es = int64_t(dtype_size(dt));
  const int64_t T = p.n_tokens, B = p.batch, R = ws.rows_max;
  const int64_t dim = cfg_.dim;
  uint8_t* base = static_cast<uint8_t*>(ws_->ptr());
  auto at = [&](size_t offset) { return static_cast<void*>(base + offset); };
  auto elems = [&](void* ptr, int64_t n) { return static_cast<void*>(static_cast<uint8_t*>(ptr) + n * es); };
  void* x = at(ws.x);
  void* h = at(ws.h);
  int32_t* ints = static_cast<int32_t*>(at(ws.ints));
  float* floats = static_cast<float*>(at(ws.floats));
  uint64_t* u64s = static_cast<uint64_t*>(at(ws.u64s));

  void* logits = at(ws.logits);
  if (r.logits == LogitsMode::All) {
    final_norm(x, h, T);
    out.logits.reserve(size_t(T) * size_t(cfg_.vocab_size));
    for (int64_t r0 = 0; r0 < T; r0 += R) {
      const int64_t rows = std::min(R, T - r0);
      head_logits_rows(elems(h, r0 * dim), rows, logits);
      backend_->synchronize();
      download_f32(*backend_, dt, logits, rows * cfg_.vocab_size, out.logits);
    }
  }

  // Each sequence's last row → final norm → LM head → sampling.
  EmbeddingArgs gather{};
  gather.dtype = dt;
  gather.ids = ints + ws.i_last;
  gather.table = x;
  gather.out = at(ws.last_x);
  gather.n = B;
  gather.cols = dim;
  gather.vocab = T;
  backend_->embedding(gather);
  final_norm(at(ws.last_x), at(ws.last_h), B);
  head_logits_rows(at(ws.last_h), B, logits);

  int32_t* history = nullptr;
  if (p.penalty) {
    history = static_cast<int32_t*>(at(ws.history));
    for (int64_t b = 0; b < B; ++b) {
      if (r.repetition_penalty[size_t(b)] == 1.0f) continue;
      backend_->copy(history + b * cfg_.max_context, kv_->history(r.slots[size_t(b)]), size_t(p.new_len[size_t(b)]) * 4);
    }
  }
  SampleArgs s{};
  s.dtype = dt;
  s.logits = logits;
  s.batch = B;
  s.vocab = cfg_.vocab_size;
  s.temperature = floats;
  s.top_k = ints + ws.i_top_k;
  s.top_p = floats + R;
  s.repetition_penalty = floats + 2 * R;
  s.history = history;
  s.history_len = history ? ints + ws.i_history_len : nullptr;
  s.history_stride = cfg_.max_context;
  s.seed = u64s;
  s.step = u64s + R;
  s.tokens_out = ints + ws.i_out;
  s.logprob_out = floats + 3 * R;
  s.workspace = ws.sample_ws_bytes ? at(ws.sample_ws) : nullptr;
  s.workspace_bytes = ws.sample_ws_bytes;
  backend_->sample(s);

  backend_->synchronize();
  out.tokens.resize(size_t(B));
  out.logprobs.resize(size_t(B));
  backend_->download(out.tokens.data(), ints + ws.i_out, size_t(B) * 4);
  backend_->download(out.logprobs.data(), floats + 3 * R, size_t(B) * 4);
  if (r.logits == LogitsMode::Last) download_f32(*backend_, dt, logits, B * cfg_.vocab_size, out.logits);
}

}  // namespace eet

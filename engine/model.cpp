// Model weights: config validation, the architecture registry, loading and finalizing (model.h).
#include "model.h"

#include <cmath>
#include <map>

#include "limits.h"

namespace eet {

namespace {

[[noreturn]] void bad_config(const std::string& field, const std::string& expected, int64_t got) {
  throw_error(ErrorCode::InvalidArg, "Expected " + expected + " for " + field + " but received " + std::to_string(got));
}

void config_range(const char* field, int64_t v, int64_t lo, int64_t hi) {
  if (v < lo || v > hi) bad_config(field, "integer in [" + std::to_string(lo) + ", " + std::to_string(hi) + "]", v);
}

// The checks every architecture shares; the architecture adds its own (Architecture::validate).
void validate_config(const ModelConfig& c) {
  config_range("dim", c.dim, 1, Limits::maxDim);
  config_range("hiddenDim", c.hidden_dim, 1, Limits::maxHiddenDim);
  config_range("nLayers", c.n_layers, 1, Limits::maxLayers);
  config_range("nHeads", c.n_heads, 1, Limits::maxHeads);
  config_range("nKvHeads", c.n_kv_heads, 1, c.n_heads);
  if (c.n_heads % c.n_kv_heads) bad_config("nKvHeads", "a divisor of nHeads (" + std::to_string(c.n_heads) + ")", c.n_kv_heads);
  config_range("headDim", c.head_dim, Limits::minHeadDim, Limits::maxHeadDim);
  if (c.head_dim % 2) bad_config("headDim", "an even number", c.head_dim);
  config_range("vocabSize", c.vocab_size, 1, Limits::maxVocab);
  config_range("maxSeqLen", c.max_seq_len, 1, Limits::maxSeqLen);
  if (!(c.norm_eps >= 0.0f) || !std::isfinite(c.norm_eps)) throw_error(ErrorCode::InvalidArg, "Expected a finite number >= 0 for normEps");
  if (!is_float(c.dtype)) throw_error(ErrorCode::Unsupported, std::string("model dtype ") + dtype_name(c.dtype) + " is not supported");
  if (!c.attention_masks.empty() && c.attention_masks.size() != size_t(c.n_layers)) {
    bad_config("attentionMaskModes.length", "nLayers (" + std::to_string(c.n_layers) + ")", int64_t(c.attention_masks.size()));
  }
  for (size_t l = 0; l < c.attention_masks.size(); ++l) {
    // Cross attends another sequence's keys (an encoder's output): not a mode of a layer's self-attention.
    if (c.attention_masks[l] == AttnMask::Cross) {
      bad_config("attentionMaskModes[" + std::to_string(l) + "]", "'bidirectional', 'causal' or 'anticausal'", 3);
    }
  }
}

std::map<std::string, std::unique_ptr<Architecture>>& registry() {
  static std::map<std::string, std::unique_ptr<Architecture>> archs;
  return archs;
}

const Architecture& architecture_or_throw(const std::string& name) {
  const Architecture* a = find_architecture(name);
  if (a) return *a;
  std::string list;
  for (const std::string& n : architecture_names()) list += (list.empty() ? "'" : ", '") + n + "'";
  throw_error(ErrorCode::Unsupported, "arch '" + name + "' is not supported (supported: " + list + ")");
}

}  // namespace

namespace detail {
void register_architecture(std::unique_ptr<Architecture> arch) {
  std::string name = arch->name();
  registry()[name] = std::move(arch);
}
}  // namespace detail

int32_t Architecture::cache_layers(const ModelConfig& c) const { return c.n_layers; }

const Architecture* find_architecture(const std::string& name) {
  auto it = registry().find(name);
  return it == registry().end() ? nullptr : it->second.get();
}

std::vector<std::string> architecture_names() {
  std::vector<std::string> out;
  for (const auto& kv : registry()) out.push_back(kv.first);
  return out;
}

Model::Model(const ModelConfig& config, std::shared_ptr<Backend> backend)
    : cfg_(config), arch_(&architecture_or_throw(config.arch)), backend_(std::move(backend)),
      weights_(config.dtype, config.q8_weights) {
  validate_config(cfg_);
  if (arch_->has_lm_head() && !cfg_.attention_masks.empty()) {
    // A decoder generates over its KV cache one token at a time: only the causal mask it was trained with works.
    throw_error(ErrorCode::InvalidArg, std::string("Expected no attentionMaskModes for a ") + arch_->name() +
                                           " model (a decoder attends causally) but received " +
                                           std::to_string(cfg_.attention_masks.size()) + " entries");
  }
  arch_->validate(cfg_);
  arch_->plan_weights(cfg_, weights_);
  weights_.check_q8_names();
  std::lock_guard<FairMutex> lock(backend_->mutex());
  weights_.allocate(backend_);
}

Model::~Model() {
  std::lock_guard<FairMutex> lock(backend_->mutex());
  weights_.release();
}

void Model::check_alive() const {
  if (disposed_) throw_error(ErrorCode::Disposed, "the model was disposed");
}

void Model::load_tensor(const std::string& name, const TensorSource& src) {
  check_alive();
  if (finalized_) throw_error(ErrorCode::InvalidArg, "tensor '" + name + "': the model is already finalized");
  weights_.load(name, src);
}

void Model::finalize() {
  check_alive();
  std::lock_guard<std::mutex> once(finalize_mu_);
  if (finalized_) return;
  std::vector<std::string> missing = weights_.missing();
  if (!missing.empty()) {
    std::string list;
    for (size_t i = 0; i < missing.size() && i < 16; ++i) list += (i ? ", " : "") + missing[i];
    if (missing.size() > 16) list += ", … (" + std::to_string(missing.size()) + " in all)";
    throw_error(ErrorCode::ModelFormat, "missing tensors: " + list);
  }
  {
    std::lock_guard<FairMutex> lock(backend_->mutex());
    arch_->finalize(cfg_, *backend_, weights_);
    backend_->synchronize();
  }
  finalized_ = true;
}

}  // namespace eet

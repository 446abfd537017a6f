// A model's weights on one backend: the config, the architecture object (arch.h) and the weights arena. Loaded
// once and immutable after finalize(), so several contexts (context.h: KV pool, sequences, engine loop) can share
// one Model. Nothing here depends on batch sizes or context lengths.
// Thread use: load_tensor may run on several threads at once (it takes the backend mutex around each upload);
// everything after finalize() is read-only.
#pragma once
#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "arch.h"
#include "weights.h"

namespace eet {

enum class RopeScaling : int32_t { None = 0, Linear = 1, Llama3 = 2 };

// The hyperparameters every architecture draws from; each architecture's validate() says which it needs.
struct ModelConfig {
  std::string arch = "llama";  // a registered architecture (arch.h)
  int32_t dim = 0, hidden_dim = 0, n_layers = 0, n_heads = 0, n_kv_heads = 0, head_dim = 0, vocab_size = 0;
  int32_t max_seq_len = 0;  // positions the model was trained for (learned position tables have this many rows)
  float norm_eps = 1e-5f, rope_theta = 10000.0f;
  RopeLayout rope_layout = RopeLayout::Adjacent;
  bool tied_embeddings = true;  // decoders: LM head = token_embd unless false ('output')
  bool qkv_bias = false;        // llama: blk.N.attn_{q,k,v}.bias (Qwen2)
  // llama: RoPE frequency scaling, applied on the host to the inverse frequencies (arch_llama.cpp).
  RopeScaling rope_scaling = RopeScaling::None;
  float rope_factor = 1.0f, rope_low_freq_factor = 1.0f, rope_high_freq_factor = 4.0f;
  int32_t rope_original_max_pos = 0;
  int32_t n_token_types = 0;  // bert: rows of token_types
  // t5: relative position buckets and the distance beyond which all share the last (AttnRelBias); the FFN's
  // activation (Relu: v1.0, GegluTanh: v1.1's gated-gelu).
  int32_t rel_buckets = 0, rel_max_distance = 0;
  ActKind ffn_act = ActKind::Relu;
  // Encoder-decoder models (t5): the decoder's layers (n_layers counts the encoder's), the id its generation starts
  // from, and whether its output is scaled by dim^-0.5 before the LM head (T5 v1.0's tied head).
  int32_t n_dec_layers = 0, decoder_start_token = 0;
  bool scale_decoder_outputs = false;
  // Encoders (bert): each layer's attention mask (DecBERT); empty = every layer bidirectional. Decoders: empty.
  std::vector<AttnMask> attention_masks;
  // Matrix weights kept in Q8_0 on the device (weights.h) and multiplied by gemm_q8, whatever the dtype.
  std::set<std::string> q8_weights;
  DType dtype = DType::F32;
};

class Model {
 public:
  // Validates the config (ERR_INVALID_ARG / ERR_UNSUPPORTED) and allocates the weights arena.
  Model(const ModelConfig& config, std::shared_ptr<Backend> backend);
  ~Model();
  Model(const Model&) = delete;
  Model& operator=(const Model&) = delete;

  const ModelConfig& config() const { return cfg_; }
  const Architecture& arch() const { return *arch_; }
  const std::shared_ptr<Backend>& backend() const { return backend_; }
  const WeightArena& weights() const { return weights_; }
  const void* w(const std::string& name) const { return weights_.ptr(name); }

  void load_tensor(const std::string& name, const TensorSource& src);
  // ERR_MODEL_FORMAT listing the tensors not loaded; then the architecture's derived weights.
  void finalize();
  bool finalized() const { return finalized_; }
  size_t bytes() const { return weights_.bytes(); }

  // Disposal: marks the model so later calls fail with ERR_DISPOSED; memory goes with the last owner (contexts
  // hold the model too).
  void mark_disposed() { disposed_ = true; }
  void check_alive() const;

 private:
  ModelConfig cfg_;
  const Architecture* arch_;
  std::shared_ptr<Backend> backend_;
  WeightArena weights_;
  std::atomic<bool> finalized_{false};
  std::atomic<bool> disposed_{false};
  std::mutex finalize_mu_;
};

}  // namespace eet

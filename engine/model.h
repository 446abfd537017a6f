// A transformer on one backend: weights arena, paged KV cache, workspace, and one forward step over the new tokens
// of several sequences followed by sampling (model.cpp explains the step). Architectures (engine/arch_*.cpp):
// LLaMA family (llama, mistral, qwen2: RMSNorm, RoPE, SwiGLU, optional q/k/v biases), GPT-2 (learned positions,
// LayerNorm, GELU) and BERT encoders (post-LN, bidirectional attention; embed() instead of step()).
// Thread use: load_tensor may run on several threads at once; step() takes the backend mutex for its whole
// duration; start/end_sequence and memory() are cheap and may run on the JS thread while a step is in flight.
#pragma once
#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "kv_pool.h"
#include "weights.h"

namespace eet {

enum class Arch : int32_t { Llama = 0, Gpt2 = 1, Bert = 2 };
enum class RopeScaling : int32_t { None = 0, Linear = 1, Llama3 = 2 };

struct ModelConfig {
  Arch arch = Arch::Llama;
  int32_t dim = 0, hidden_dim = 0, n_layers = 0, n_heads = 0, n_kv_heads = 0, head_dim = 0, vocab_size = 0;
  int32_t max_seq_len = 0;
  float norm_eps = 1e-5f, rope_theta = 10000.0f;
  RopeLayout rope_layout = RopeLayout::Adjacent;
  bool tied_embeddings = true;  // llama, gpt2: LM head = token_embd unless false ('output')
  bool qkv_bias = false;        // llama: blk.N.attn_{q,k,v}.bias (Qwen2)
  // llama: RoPE frequency scaling, applied on the host to the inverse frequencies (model.cpp rope_inv_freq).
  RopeScaling rope_scaling = RopeScaling::None;
  float rope_factor = 1.0f, rope_low_freq_factor = 1.0f, rope_high_freq_factor = 4.0f;
  int32_t rope_original_max_pos = 0;
  int32_t n_token_types = 0;  // bert: rows of token_types
  // Matrix weights kept in Q8_0 on the device (weights.h) and multiplied by gemm_q8, whatever the dtype.
  std::set<std::string> q8_weights;
  DType dtype = DType::F32;
  int32_t max_batch = 1, max_context = 1, max_step_tokens = 1;
};

enum class LogitsMode { None, Last, All };

struct StepRequest {
  std::vector<int32_t> slots, tokens, counts;  // counts[i] new tokens of slots[i], packed in tokens
  std::vector<float> temperature, top_p, repetition_penalty;
  std::vector<int32_t> top_k;
  LogitsMode logits = LogitsMode::None;
};

enum class Pooling { Mean, Cls };

// Sentence embeddings from an encoder (bert): one pass over each sequence, its final hidden states pooled.
struct EmbedRequest {
  std::vector<int32_t> tokens, counts;  // counts[i] tokens of sequence i, packed in tokens
  std::vector<int32_t> token_types;     // one per token, or empty (all 0)
  Pooling pooling = Pooling::Mean;
  bool normalize = false;               // L2-normalise each pooled vector
};

struct StepResult {
  std::vector<int32_t> tokens;  // (B) sampled after each slot's last new token
  std::vector<float> logprobs;  // (B)
  std::vector<float> logits;    // (rows, vocab) float32: rows = B ('last') or sum(counts) ('all'); empty for 'none'
};

struct MemoryReport {
  size_t weights, kv_cache, workspace;
};

class Model {
 public:
  // Validates the config (ERR_INVALID_ARG / ERR_UNSUPPORTED) and allocates every device buffer.
  Model(const ModelConfig& config, std::shared_ptr<Backend> backend);
  ~Model();
  Model(const Model&) = delete;
  Model& operator=(const Model&) = delete;

  const ModelConfig& config() const { return cfg_; }
  void load_tensor(const std::string& name, const TensorSource& src);
  // ERR_MODEL_FORMAT listing the tensors not loaded; precomputes the RoPE inverse frequencies.
  void finalize();
  int32_t start_sequence(uint64_t seed);  // ERR_INVALID_ARG when every slot is live
  void end_sequence(int32_t slot);        // ERR_INVALID_ARG when the slot is not live
  StepResult step(const StepRequest& request);  // ERR_UNSUPPORTED for bert
  // (batch, dim) float32, row-major; ERR_UNSUPPORTED for decoders. Uses free slots for the one pass (in chunks
  // of sequences that fit maxBatch / maxStepTokens) and frees them again.
  std::vector<float> embed(const EmbedRequest& request);
  MemoryReport memory() const;

  // Disposal: marks the model so queued calls fail with ERR_DISPOSED; memory goes with the last owner.
  void mark_disposed() { disposed_ = true; }
  void check_alive() const;

 private:
  struct SlotState {
    uint64_t seed = 0, step = 0;
    uint64_t epoch = 0;  // bumped by start_sequence: a step's results only land on the sequence it ran for
  };
  struct Workspace;  // offsets into ws_ (graph.h)
  struct StepPlan;
  friend struct Graph;

  void plan_weights();
  void plan_weights_llama();  // arch_llama.cpp
  void plan_weights_gpt2();   // arch_gpt2.cpp
  void plan_weights_bert();   // arch_bert.cpp
  void plan_workspace();
  // token_types: per token of r.tokens, or empty.
  StepPlan prepare(const StepRequest& r, const std::vector<int32_t>& token_types);
  // Embedding and every layer: the final hidden states (T, dim) are left in the workspace's x.
  void forward_layers(const StepRequest& r, const StepPlan& p);
  void layers_llama(const StepPlan& p);
  void layers_gpt2(const StepPlan& p);
  void layers_bert(const StepPlan& p);
  // Final norm, LM head and sampling after forward_layers (decoders).
  void head_and_sample(const StepRequest& r, const StepPlan& p, StepResult& out);
  void final_norm(const void* x, void* y, int64_t rows);
  void head_logits_rows(const void* h_rows, int64_t rows, void* logits);
  size_t embed_chunk(const EmbedRequest& r, size_t s0, size_t s1, int64_t tok0, float* out);
  const void* w(const std::string& name) const { return weights_.ptr(name); }

  ModelConfig cfg_;
  std::shared_ptr<Backend> backend_;
  WeightArena weights_;
  std::unique_ptr<KvPool> kv_;
  std::unique_ptr<DeviceBuffer> ws_;
  std::unique_ptr<Workspace> wsl_;
  std::vector<SlotState> slots_;
  bool finalized_ = false;
  std::atomic<bool> disposed_{false};
  mutable std::mutex state_mu_;  // slots_, kv_ host state, finalized_
};

}  // namespace eet

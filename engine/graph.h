// The ops of one forward pass with the engine's conventions, for the architectures (arch_*.cpp): activations in
// the step runner's workspace, weights by name (a bias is NAME.bias), T packed tokens, attention over the paged
// cache from the step's metadata. Also the workspace layout and the step plan the runner (runner.h) fills.
#pragma once
#include <string>
#include <vector>

#include "kv_cache.h"
#include "model.h"

namespace eet {

inline std::string layer_name(int32_t l, const char* what) { return "blk." + std::to_string(l) + "." + what; }

// Workspace regions (byte offsets) and the index layout of the per-step host → device metadata.
struct Workspace {
  int64_t tokens_max, rows_max;  // T and R capacity (R: sequences and sampled rows of a step)
  int64_t buf1_width;            // Architecture::buffer_width
  int64_t max_blocks_per_seq, max_context;
  size_t x, h, buf1, att, last_x, last_h, logits, attn_ws, sample_ws, ints, floats, u64s, history, total;
  size_t attn_ws_bytes, sample_ws_bytes;
  int32_t sm_count;              // the attention decode split's, as attn_ws_bytes was planned with
  // int32 metadata, offsets in elements (i_types: token types, bert)
  int64_t i_tokens, i_pos, i_kv_slot, i_q_start, i_ctx_len, i_last, i_block_table, i_top_k, i_history_len,
      i_history_start, i_types, i_shared_len, i_group_start, i_group_seqs, i_out, n_ints;
  // Encoder-decoder models: each sequence's encoder memory (length, block table) and its cross-attention groups
  // (the shared_attention layout over the memories: sequences decoding against one memory read it once).
  int64_t i_mem_len, i_mem_table, i_xshared_len, i_xgroup_start, i_xgroup_seqs;
  // float metadata (rows_max each, runner.cpp FloatMeta): temperature, top_p, repetition / presence / frequency
  // penalties, logprob out; u64: seed, step
};

// The shape of one step, computed on the host by the runner. n_groups > 0: a decode step with sequences that share
// leading blocks (i_shared_len, i_group_start, i_group_seqs hold the groups), whose causal attention is shared_attention.
// x_groups > 0: a decode step of an encoder-decoder model where sequences share an encoder memory (i_xshared_len,
// i_xgroup_start, i_xgroup_seqs); its cross-attention is shared_attention.
struct StepPlan {
  int32_t batch = 0, n_tokens = 0, max_q = 0, max_ctx = 0;
  int32_t n_groups = 0, max_group_size = 0, max_shared = 0;
  int32_t max_mem = 0, x_groups = 0, x_max_group_size = 0;
};

struct Graph {
  Graph(const Model& model, const KvCache& kv, const Workspace& ws, uint8_t* base, const StepPlan& plan);

  const Model& m;
  const KvCache& kv;
  const Workspace& ws;
  uint8_t* base;
  const StepPlan& p;
  const ModelConfig& cfg;
  Backend& be;
  DType dt;
  int64_t T;                  // packed tokens of the step
  int64_t q_width, kv_width;  // n_heads * head_dim, n_kv_heads * head_dim
  int64_t qkv_width;          // q | k | v row of the fused projection
  void *x, *h, *buf1, *att;   // workspace activations
  int32_t* ints;              // the step's metadata (Workspace::i_*)

  void* at(size_t offset) const { return base + offset; }
  void* elems(void* ptr, int64_t n) const;  // ptr + n elements of the model dtype
  const void* w(const std::string& name) const { return m.w(name); }
  const int32_t* tokens() const { return ints + ws.i_tokens; }
  const int32_t* token_types() const { return ints + ws.i_types; }

  // out (T, dim) = table[ids] (+ pos_table[pos] at the step's positions, when pos_table is given); table has
  // `rows` rows, pos_table maxSeqLen.
  void embedding(const std::string& table, int64_t rows, const int32_t* ids, const std::string* pos_table, void* out);
  // y (rows, dim) = norm(in (+ residual)) * weight (+ weight.bias when bias)
  void norm(NormKind kind, const void* in, const void* residual, const std::string& weight, bool bias, void* y,
            int64_t rows);
  // y (T, n) [ldy] = in (T, k) [ldx] · Wᵀ (+ W.bias when bias) (+ residual [ldy] when given; may be y); gemm_q8
  // when W is a Q8_0 weight (weights.h)
  void gemm(const void* in, int64_t ldx, const std::string& weight, bool bias, int64_t n, int64_t k, void* y,
            int64_t ldy, const void* residual);
  // A decode step's GEMMs take a norm or activation as their input prologue (ops.h GemmPrologue) instead of running
  // it as an op of its own: T within the decode kernels' bound (gemm_decode_max_m), which are the kernels that
  // fuse it. Larger steps run the unfused pair.
  bool fused_prologue() const { return T <= gemm_decode_max_m(dt); }
  // y (T, n) [ldy] = rmsnorm(in (T, dim)) * norm_weight · Wᵀ (+ W.bias when bias) (+ residual [ldy]): one GEMM with
  // the norm as its prologue when fused_prologue() (and eps > 0), else the norm into h and the GEMM over h.
  void rms_norm_gemm(const void* in, const std::string& norm_weight, const std::string& weight, bool bias, int64_t n,
                     void* y, int64_t ldy, const void* residual);
  // y (T, n) [ldy] = swiglu(gate_up) · Wᵀ (+ residual [ldy]), gate_up (T, 2 hid) holding gate|up: one GEMM with
  // SwiGLU as its prologue when fused_prologue(), else act_gated in place over the gate half and the GEMM over it.
  void swiglu_gemm(void* gate_up, int64_t hid, const std::string& weight, int64_t n, void* y, int64_t ldy,
                   const void* residual);
  // y = act(y) in place over (T, n) with row stride ld (gelu / silu kinds)
  void act(ActKind kind, void* y, int64_t n, int64_t ld);
  // Gated kinds (SwiGLU, GEGLU): gate_up (T, 2n) holds gate|up adjacent; act(gate) * up goes to its first n columns.
  void act_gated(ActKind kind, void* gate_up, int64_t n);
  // RoPE on q of qkv (T, qkv_width) in place at the step's positions, and k (rotated) and v written into layer l
  // of the cache at the step's slots, in one op (rope_kv_append). k in qkv stays unrotated: only the cache's is read.
  void rope_kv_store(int32_t layer, void* qkv);
  // Appends k, v of qkv to layer l's cache, then attend(): att = attention of q over the cache.
  void attention(int32_t layer, const void* qkv, AttnMask mask, const AttnRelBias* rel = nullptr, float scale = 0.0f);
  // att (T, q_width) = attention of q of qkv over layer l's cache under mask, the step's k, v already stored there
  // (kv_store, rope_kv_store). Causal decode steps with shared-prefix groups (p.n_groups > 0) run shared_attention
  // instead. T5: rel (its relative position bias) and scale 1; scale 0 = 1/sqrt(head_dim).
  void attend(int32_t layer, const void* qkv, AttnMask mask, const AttnRelBias* rel = nullptr, float scale = 0.0f);
  void shared_attention(int32_t layer, const void* qkv, float scale);
  // Encoder-decoder models: att (T, q_width) = attention of q (T, q_width) [ldq] over each sequence's encoder memory
  // (layer l of its blocks), every key visible (AttnMask::Cross); decode steps whose sequences share a memory read
  // it once per group (shared_attention). scale 0 = 1/sqrt(head_dim).
  void cross_attention(int32_t layer, const void* q, int64_t ldq, float scale);
  // Writes k, v (T, kv_width) [ld] into layer l of the cache at the step's slots.
  void kv_store(int32_t layer, const void* k, const void* v, int64_t ld);
};

// y (rows, dim) = norm(in (+ residual)) * weight (+ weight.bias when bias)
void apply_norm(const Model& m, NormKind kind, const void* in, const void* residual, const std::string& weight,
                bool bias, void* y, int64_t rows);
// y (rows, n) [ldy] = in (rows, k) [ldx] · Wᵀ (+ W.bias) (+ residual [ldy]); gemm_q8 for a Q8_0 weight. xform: the
// GEMM's input prologue (ops.h GemmPrologue; at most Limits::gemmDecodeMaxM rows when it is not none).
void matmul(const Model& m, const void* in, int64_t ldx, const std::string& weight, bool bias, int64_t rows, int64_t n,
            int64_t k, void* y, int64_t ldy, const void* residual, const GemmPrologue& xform = GemmPrologue{});
// logits (rows, vocab) = h_rows (rows, dim) · headᵀ, head = token_embd when tied, else output.
void lm_head(const Model& m, const void* h_rows, int64_t rows, void* logits, const GemmPrologue& xform = {});
// logits (rows, vocab) = output_norm(x_rows) · headᵀ: one GEMM with the norm as its prologue where the decode GEMM
// kernels take it (an RMS norm without bias, rows <= gemm_decode_max_m, eps > 0: the sampled rows of a step), else
// the norm into h_rows (rows, dim) and the head over them.
void normed_lm_head(const Model& m, const void* x_rows, void* h_rows, int64_t rows, void* logits);

}  // namespace eet

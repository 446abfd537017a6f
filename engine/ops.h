// The op contract: one plain argument struct per op, shared by the three implementations
//   eet::cpu::op_X(const XArgs&)                    engine/cpu/X.cpp   (reference, fp32/fp64 accumulation)
//   eet_cuda::op_X(const XArgs&, eet::Stream)       cuda/X.cu          (nvcc)
//   eet_emu::op_X(const XArgs&, eet::Stream)        cuda/X.cu          (host compiler + SIMT emulator)
// All pointers are backend ("device") pointers; element offsets and strides are int64_t. Shapes are written
// (B, T, C)-style in the comments. Optional pointers are nullptr when absent. Every struct is validated by
// validate_X() (engine/ops.cpp) before any backend sees it, so kernels may assume consistent arguments.
#pragma once
#include <cstddef>
#include <cstdint>

#include "limits.h"

namespace eet {

enum class DType : int32_t { F32 = 0, F16 = 1, BF16 = 2, I32 = 3, I8 = 4 };
inline size_t dtype_size(DType t) {
  switch (t) {
    case DType::F32: case DType::I32: return 4;
    case DType::F16: case DType::BF16: return 2;
    case DType::I8: return 1;
  }
  return 0;
}
const char* dtype_name(DType t);
inline bool is_float(DType t) { return t == DType::F32 || t == DType::F16 || t == DType::BF16; }

using Stream = void*;  // cudaStream_t under cuda; unused by emu

// ---- embedding / row gather --------------------------------------------------------------------------------
// out[i, :] = table[ids[i], :] (+ pos_table[pos[i], :]). Also used to gather rows of activations (the last
// token of each sequence before the LM head): table = activations, ids = row indices.
struct EmbeddingArgs {
  DType dtype;             // table, pos_table and out share it
  const int32_t* ids;      // (N) row ids, each in [0, vocab)
  const int32_t* pos;      // (N) positions, each in [0, n_pos); nullptr when pos_table is nullptr
  const void* table;       // (vocab, C)
  const void* pos_table;   // (n_pos, C) learned position embedding, or nullptr
  void* out;               // (N, C)
  int64_t n, cols, vocab, n_pos;
};

// ---- LayerNorm / RMSNorm, optionally fused with the residual add -----------------------------------------------
// h = x (+ residual); residual_out = h (when given); y = norm(h) * weight (+ bias)
//   layer: (h - mean) / sqrt(var + eps)     rms: h / sqrt(mean(h^2) + eps)
// Statistics in fp32 from the values as stored (h is rounded to dtype before it is normalized, so that
// residual_out and y agree).
enum class NormKind : int32_t { Layer = 0, Rms = 1 };
struct NormArgs {
  NormKind kind;
  DType dtype;             // x, residual, residual_out, weight, bias, y
  const void* x;           // (rows, cols)
  const void* residual;    // (rows, cols) or nullptr
  void* residual_out;      // (rows, cols) or nullptr; may alias residual
  const void* weight;      // (cols)
  const void* bias;        // (cols) or nullptr (LayerNorm only)
  void* y;                 // (rows, cols)
  int64_t rows, cols;      // cols in [1, 16384]
  float eps;
};

// ---- softmax over rows (folded: rows up to 32768) -----------------------------------------------------------------
// y[r, :] = softmax(x[r, :] * scale)
struct SoftmaxArgs {
  DType dtype;
  const void* x;           // (rows, cols)
  void* y;                 // (rows, cols); may alias x
  int64_t rows, cols;      // cols in [1, 32768]
  float scale;
};

// ---- GEMM / GEMV: y = x · Wᵀ (+ bias) (+ residual) --------------------------------------------------------------
// W is stored (N, K) row-major, as nn.Linear / llama2.c / GGUF store it. fp32 accumulation.
// Decode batches (M <= gemm_decode_max_m: 64 in f16/bf16, 16 in f32): bandwidth-bound kernels that read W once per
// call (GEMV, and a tensor-core skinny GEMM for M >= 2); larger M: tiled kernel (tensor cores for f16/bf16 on sm_80+).
//
// Input prologue (GemmPrologue, optional): the GEMM's input is computed from x as it is loaded, so the op that would
// have produced it (a norm or an activation writing (M, K) for the GEMM to read back) is not launched. Defined as
// the unfused pair, element for element, including the rounding of the intermediate to the dtype:
//   None     x_eff = x
//   RmsNorm  x_eff = norm(NormArgs{Rms, x, weight = gain, eps, no residual, no bias}) -- the y that op stores (dtype)
//   SwiGlu   x_eff = act(ActArgs{SwiGlu, x = gate, up}) -- the y that op stores (dtype), where x holds gate|up:
//            gate[m, k] = x[m*ldx + k], up[m, k] = x[m*ldx + K + k] (LLaMA's fused gate|up projection's output)
// Only decode batches take a prologue: M <= Limits::gemmDecodeMaxM (64) in every dtype, the rows of the kernels that
// fuse it (f32's GEMV takes 16 rows at a time: 17..64 rows run it once per 16, each time reading W). A caller with
// more rows runs the norm / activation op and then the plain GEMM; the graph fuses up to gemm_decode_max_m(dtype)
// rows, where one pass over W does (engine/graph.cpp).
enum class GemmXForm : int32_t { None = 0, RmsNorm = 1, SwiGlu = 2 };
struct GemmPrologue {
  GemmXForm kind;          // None: x as given (gain nullptr, eps unused)
  const void* gain;        // (K) RmsNorm's weight, the GEMM's dtype; nullptr otherwise
  float eps;               // RmsNorm: finite, > 0
};

// The largest M the decode kernels serve in one pass over W: f16 / bf16 have the tensor-core skinny GEMM up to 64
// rows, f32 the SIMT GEMV up to 16 (engine/limits.h). The one definition: cuda/gemm_common.cuh's kDecodeMaxM and
// the graph's choice of fused forms read it (and the op bench's plan, through the exported limits).
constexpr int64_t gemm_decode_max_m(DType t) { return t == DType::F32 ? Limits::gemmDecodeMaxMF32 : Limits::gemmDecodeMaxM; }

struct GemmArgs {
  DType dtype;             // x, w, bias, residual, y, xform.gain
  const void* x;           // (M, K), row stride ldx (elements); SwiGlu: (M, 2K) gate|up, ldx >= 2K
  const void* w;           // (N, K) contiguous
  const void* bias;        // (N) or nullptr
  const void* residual;    // (M, N) or nullptr, row stride ldy; may alias y
  void* y;                 // (M, N), row stride ldy; must not overlap x
  int64_t m, n, k, ldx, ldy;
  GemmPrologue xform;      // zero-initialised: none
};

// ---- weight-only int8 GEMM / GEMV (GGUF Q8_0): y = x · dequant(W)ᵀ (+ bias) (+ residual) -------------------------
// W (N, K) is Q8_0: every run of 32 weights of a row is W[n, 32j + i] = d[n, j] * q[n, 32j + i], d an IEEE float16
// scale, q an int8 (GGUF stores blocks of 34 bytes: d then the 32 q). Device layout: split, so that every row of q
// starts 32-byte aligned and is read with 16-byte loads (GGUF's 34-byte blocks would not be):
//   wq     (N, K)     int8, contiguous                       (byte 32j + i of row n = q[n, 32j + i])
//   wscale (N, K / 32) float16 bits, contiguous               (d[n, j])
// One buffer holds both where weights are stored (loaders, the op runner): wq at byte 0, wscale at byte N*K.
// fp32 accumulation. Decode batches (M <= 64 in f16/bf16, M <= 16 in f32): bandwidth-bound kernels that read W once
// per call; larger M: tiled (tensor cores for f16/bf16 on sm_80+).
struct GemmQ8Args {
  DType dtype;             // x, bias, residual, y, xform.gain (float types)
  const void* x;           // (M, K), row stride ldx (elements); SwiGlu: (M, 2K) gate|up, ldx >= 2K
  const int8_t* wq;        // (N, K), 16-byte aligned
  const uint16_t* wscale;  // (N, K / 32) float16 bits, 2-byte aligned
  const void* bias;        // (N) or nullptr
  const void* residual;    // (M, N) or nullptr, row stride ldy; may alias y
  void* y;                 // (M, N), row stride ldy; must not overlap x
  int64_t m, n, k, ldx, ldy;  // k a multiple of 32
  GemmPrologue xform;      // as GemmArgs::xform
};

// ---- elementwise activations ---------------------------------------------------------------------------------
// gelu_tanh / gelu_erf / silu / relu: y = act(x + bias)
// swiglu:                      y = silu(x) * up            (x is the gate projection; LLaMA)
// geglu_tanh:                  y = gelu_tanh(x) * up       (T5 v1.1 / Flan-T5's gated-gelu, HF's gelu_new)
enum class ActKind : int32_t { GeluTanh = 0, GeluErf = 1, Silu = 2, SwiGlu = 3, Relu = 4, GegluTanh = 5 };
// The gated kinds: y = act(x) * up, no bias. (constexpr: the CUDA kernels call it too.)
constexpr bool act_gated(ActKind k) { return k == ActKind::SwiGlu || k == ActKind::GegluTanh; }
struct ActArgs {
  ActKind kind;
  DType dtype;
  const void* x;           // (M, N), row stride ldx
  const void* bias;        // (N) or nullptr (not used by the gated kinds)
  const void* up;          // (M, N), row stride ldu; gated kinds only
  void* y;                 // (M, N), row stride ldy; may alias x
  int64_t m, n, ldx, ldu, ldy;
};

// ---- rotary position embedding, in place on q and k ------------------------------------------------------------
// For token t at position p = pos[t], pair i (i < rot_dim/2) of every head is rotated by angle p * inv_freq[i].
// Pairs: Adjacent = (2i, 2i+1) (llama2.c, GGUF llama);  HalfSplit = (i, i + rot_dim/2) (HF, NeoX).
// inv_freq is computed by the host (theta, Llama-3 scaling, linear scaling all live there).
enum class RopeLayout : int32_t { Adjacent = 0, HalfSplit = 1 };
struct RopeArgs {
  RopeLayout layout;
  DType dtype;
  void* q;                 // (T, n_heads, head_dim), token stride ldq
  void* k;                 // (T, n_kv_heads, head_dim), token stride ldk; may be nullptr
  const int32_t* pos;      // (T)
  const float* inv_freq;   // (rot_dim / 2)
  int64_t n_tokens, ldq, ldk;
  int32_t n_heads, n_kv_heads, head_dim, rot_dim;  // rot_dim even, <= head_dim
};

// ---- paged KV cache ----------------------------------------------------------------------------------------------
// A cache is a pool of blocks; a block holds block_size consecutive tokens of one sequence for all kv heads:
//   element (block b, head h, token-in-block j, dim d) at  b*block_stride + h*head_stride + j*head_dim + d
// (per layer: the model passes k_cache/v_cache already offset to its layer). A sequence's token at position p
// lives in block block_table[seq][p / block_size] at j = p % block_size. A "slot" is b*block_size + j.
struct KvLayout {
  int64_t block_stride, head_stride;
  int32_t block_size, n_kv_heads, head_dim;
};

// Writes new k/v rows into the cache: token i goes to slot slots[i].
struct KvAppendArgs {
  DType dtype;
  const void* k;           // (T, n_kv_heads, head_dim), token stride ldk
  const void* v;           // (T, n_kv_heads, head_dim), token stride ldv
  const int32_t* slots;    // (T)
  void* k_cache;
  void* v_cache;
  KvLayout layout;
  int64_t n_tokens, ldk, ldv;
};

// ---- fused RoPE + KV append (the LLaMA attention prologue) ------------------------------------------------------
// One pass over a step's fused q|k|v rows: q is rotated in place, exactly as rope does it (same layouts, rot_dim,
// per-token positions, host-computed inv_freq); k is rotated on its way into the cache and v copied, token t going to
// slot slots[t] as kv_append does. Equal element for element to rope(q, k) followed by kv_append(k, v).
// k itself is left as it was (not rotated in place): nothing reads the projection's k after the append (attention
// reads the cache), so writing it back would only cost bandwidth.
struct RopeKvAppendArgs {
  RopeLayout rope_layout;
  DType dtype;
  void* q;                 // (T, n_heads, head_dim), token stride ldq; rotated in place
  const void* k;           // (T, n_kv_heads, head_dim), token stride ldk; read only
  const void* v;           // (T, n_kv_heads, head_dim), token stride ldv
  const int32_t* pos;      // (T)
  const float* inv_freq;   // (rot_dim / 2)
  const int32_t* slots;    // (T)
  void* k_cache;
  void* v_cache;
  KvLayout layout;         // n_kv_heads and head_dim of k, v and the cache
  int64_t n_tokens, ldq, ldk, ldv;
  int32_t n_heads, rot_dim;  // rot_dim even, <= layout.head_dim
};

// Reads one sequence's first len tokens back into contiguous (len, n_kv_heads, head_dim) arrays.
struct KvGatherArgs {
  DType dtype;
  const void* k_cache;
  const void* v_cache;
  KvLayout layout;
  const int32_t* block_table;  // (ceil(len / block_size)) this sequence's blocks
  void* k_out;             // (len, n_kv_heads, head_dim)
  void* v_out;
  int64_t len;
};

// ---- fused masked attention over the paged cache -----------------------------------------------------------------
// Sequences are packed: the queries of sequence b are rows q_start[b] .. q_start[b+1]-1 of q, and are the LAST
// n_q = q_start[b+1]-q_start[b] tokens of its context of ctx_len[b] tokens (whose k/v are already in the cache).
// Query i of b sits at position p = ctx_len[b] - n_q + i and sees, by `mask`:
//   Bidirectional  all ctx_len[b] keys (BERT)
//   Causal         keys 0..p (decoders)
//   AntiCausal     keys p..ctx_len[b]-1 (DecBERT's encoder layers that look ahead only)
//   Cross          all ctx_len[b] keys, which are another sequence's (an encoder's output: T5's cross-attention), so
//                  the queries have no position among them and n_q may exceed ctx_len[b]; no rel_bias
// No mask tensor: the masks come from these lengths inside the kernel. AntiCausal is for whole-sequence passes:
// on the decode path (every n_q = 1) it is accepted only when every context is 1 token (where the three masks
// agree); a decode step over a longer cache would let the query see itself alone.
// GQA/MQA: query head h reads kv head h / (n_heads / n_kv_heads).
// The prompt pass (any n_q) runs a tiled flash-style kernel; when every n_q is 1 (decode) a split-KV
// flash-decoding kernel runs instead, using `workspace` for its partial results.
enum class AttnMask : int32_t { Bidirectional = 0, Causal = 1, AntiCausal = 2, Cross = 3 };
// "bidirectional", "causal", "anticausal", "cross" (the config and op-runner spelling)
const char* attn_mask_name(AttnMask m);

// T5's relative position bias (optional): score(query at position i, key j of head h) += table[h, bucket(j - i)],
// bucket = t5_relative_bucket() (engine/relpos.h), added to q·k * scale before the softmax. Computed in the kernels
// from positions, as the masks are: no (T, T) bias tensor exists. T5 uses it with scale = 1.
struct AttnRelBias {
  const float* table;      // (n_heads, num_buckets) fp32 whatever the dtype, or nullptr: no bias
  int32_t num_buckets;     // [2, Limits::maxRelPosBuckets], >= 4 when bidirectional
  int32_t max_distance;    // > the exact range (num_buckets / 2, or / 4 when bidirectional)
  bool bidirectional;      // encoder: keys after the query get buckets of their own
};

struct AttentionArgs {
  DType dtype;
  const void* q;           // (T, n_heads, head_dim), token stride ldq
  void* out;               // (T, n_heads, head_dim), token stride ldo
  const void* k_cache;
  const void* v_cache;
  KvLayout layout;
  const int32_t* block_table;  // (batch, max_blocks_per_seq)
  const int32_t* q_start;  // (batch + 1), q_start[0] = 0, q_start[batch] = T
  const int32_t* ctx_len;  // (batch), 1 <= n_q <= ctx_len <= max_blocks_per_seq * block_size (Cross: any n_q >= 1)
  int64_t n_tokens, ldq, ldo;
  int32_t batch, n_heads, max_blocks_per_seq;
  int32_t max_q_len, max_ctx_len;  // host-side bounds over the batch, for grid sizing
  float scale;             // usually 1/sqrt(head_dim); 1 for T5
  AttnMask mask;
  void* workspace;         // scratch for the decode kernel, attention_workspace_bytes() bytes
  size_t workspace_bytes;
  AttnRelBias rel_bias;    // table nullptr: none
  int32_t sm_count;        // the SMs the decode split aims to fill: Backend::sm_count(), [1, kMaxSmCount]; any value
                           //   gives the same results (it sizes the split and so the workspace, never the math)
  bool simt_prefill;       // tests and the op bench only: the cuda/emu prompt pass runs its fp32 SIMT kernel even
                           //   where the tensor-core one applies (f16/bf16), so both stay tested and timed
};

// Decode split (flash-decoding): on the decode path the work of each sequence is cut into blocks of up to
// heads_per_block query heads of one kv head (GQA: they read the kv head's K/V once) times one chunk of chunk_len
// keys (the last one shorter); n_chunks = ceil(max_ctx_len / chunk_len) chunks, merged by log-sum-exp when there
// are several. A launch has batch * n_kv_heads * ceil(group / heads_per_block) * n_chunks blocks. The split comes
// from the device's SM count and the context (engine/op_workspace.cpp):
//   bandwidth  all query heads of a kv head per block (up to kAttentionDecodeHeadsMax), chunks of a multiple of
//              kAttentionDecodeChunkMin keys, at most kAttentionDecodeChunkMax, aiming at kAttentionDecodeBlocksPerSm
//              blocks per SM: long contexts;
//   latency    when that gives fewer blocks than SMs (short contexts, small batches): fewer query heads per block
//              (halving) and then chunks shorter than kAttentionDecodeChunkMin (at least kAttentionDecodeChunkFloor
//              keys) until there is a block per SM, or nothing is left to cut.
struct AttnDecodeShape {
  int32_t batch, n_heads, n_kv_heads, head_dim, max_ctx_len;
  int32_t sm_count;  // AttentionArgs::sm_count
};
struct AttentionDecodeSplit {
  int32_t chunk_len, n_chunks, heads_per_block;
};
constexpr int32_t kAttentionDecodeChunkMin = 128;
constexpr int32_t kAttentionDecodeChunkMax = 4096;
constexpr int32_t kAttentionDecodeChunkFloor = 8;
constexpr int32_t kAttentionDecodeHeadsMax = 8;
constexpr int32_t kAttentionDecodeBlocksPerSm = 4;
constexpr int32_t kMaxSmCount = 1024;
AttentionDecodeSplit attention_decode_split(const AttnDecodeShape& s);

// Bytes of AttentionArgs::workspace: the decode path's per-chunk partial results when n_chunks > 1, else 0 (one
// chunk writes `out` directly). It depends on max_ctx_len, not on the query lengths, so validate() requires it for
// prompt passes too, which leave it unused. fp32, the second region right after the first:
//   part_ml   (batch, n_heads, n_chunks, 2)         each chunk's max score (log2 domain) and sum of exp2(score - max)
//   part_acc  (batch, n_heads, n_chunks, head_dim)  each chunk's unnormalised output
size_t attention_workspace_bytes(const AttnDecodeShape& s);
// What a step runner must reserve: the most attention_workspace_bytes() over every batch in [1, max.batch] and
// every context in [1, max.max_ctx_len]. Not the value at the largest ones: the chunk count is not monotonic in the
// context (the chunk length steps).
size_t attention_workspace_plan(const AttnDecodeShape& max);

// ---- shared-prefix decode attention (cascade) ----------------------------------------------------------------------
// The decode case of fused masked attention (one query per sequence: row b of q, at position ctx_len[b] - 1, so no
// mask applies) for a batch where groups of sequences share the leading keys of their contexts (prefix caching, the
// n samples of one prompt). Group g lists sequences group_seqs[group_start[g] .. group_start[g+1]-1]; keys
// 0..shared_len[b]-1 of each of them are the group's shared keys, read once for the whole group through the block
// table of its first listed sequence (the leader); keys shared_len[b]..ctx_len[b]-1 are b's own tail, read through
// its own table. The result is exactly the attention of each query over its whole context:
//   out[b, h] = softmax(q[b, h]·Kᵀ * scale) · V over keys 0..ctx_len[b]-1 of b, query head h on kv head h / group.
// The shared part is attended non-causally as one matrix of queries (every query head of every member on one kv
// head) against the shared keys — so N queries against one memory (cross-attention) are N "sequences" of one group
// with ctx_len = shared_len. A sequence in no group has shared_len 0 and is plain decode attention.
// Contract (the op runner checks it from the index tensors; the engine builds it so): 0 <= shared_len[b] <=
// ctx_len[b]; the members of a group have equal shared_len and the same keys 0..shared_len-1; a sequence is in at most
// one group, and in one if its shared_len > 0; group sizes <= max_group_size; shared_len <= max_shared_len.
struct SharedAttentionArgs {
  DType dtype;
  const void* q;               // (batch, n_heads, head_dim), token stride ldq
  void* out;                   // (batch, n_heads, head_dim), token stride ldo
  const void* k_cache;
  const void* v_cache;
  KvLayout layout;
  const int32_t* block_table;  // (batch, max_blocks_per_seq)
  const int32_t* ctx_len;      // (batch), 1 <= ctx_len <= max_blocks_per_seq * block_size
  const int32_t* shared_len;   // (batch)
  const int32_t* group_start;  // (n_groups + 1), group_start[0] = 0, non-decreasing
  const int32_t* group_seqs;   // (group_start[n_groups]) sequence indices
  int64_t ldq, ldo;
  int32_t batch, n_heads, max_blocks_per_seq, n_groups, max_group_size;
  int32_t max_ctx_len, max_shared_len;  // host-side bounds over the batch, for grid sizing
  float scale;
  void* workspace;             // shared_attention_workspace_bytes() bytes
  size_t workspace_bytes;
  int32_t sm_count;            // as AttentionArgs::sm_count
};
// Bytes of SharedAttentionArgs::workspace. The keys of every sequence are cut into chunks by the decode split
// (attention_decode_split() of the op's shape): chunk c is keys [c*chunk_len, (c+1)*chunk_len). Each
// (sequence, query head) has n_chunks + 1 partial slots: slot c holds chunk c's partial (from the shared kernel when
// the chunk lies in the shared keys, from the tail decode otherwise, its tail part when the shared length cuts it),
// slot n_chunks the shared part of the chunk the shared length cuts. fp32, the second region right after the first:
//   part_ml   (batch, n_heads, n_chunks + 1, 2)         max score (log2 domain) and sum of exp2(score - max)
//   part_acc  (batch, n_heads, n_chunks + 1, head_dim)  unnormalised output
size_t shared_attention_workspace_bytes(const AttnDecodeShape& s);
// The most shared_attention_workspace_bytes() over every batch in [1, max.batch] and context in [1, max.max_ctx_len].
size_t shared_attention_workspace_plan(const AttnDecodeShape& max);

// The decode split's view of an op call (validate() and the launchers use the same one).
inline AttnDecodeShape decode_shape(const AttentionArgs& a) {
  return {a.batch, a.n_heads, a.layout.n_kv_heads, a.layout.head_dim, a.max_ctx_len, a.sm_count};
}
inline AttnDecodeShape decode_shape(const SharedAttentionArgs& a) {
  return {a.batch, a.n_heads, a.layout.n_kv_heads, a.layout.head_dim, a.max_ctx_len, a.sm_count};
}

// ---- sampling on the device ----------------------------------------------------------------------------------------
// Per row b of logits (B, V), in this order:
//   1. penalties over the row's history h = history[b, 0:history_len[b]] (none when history is nullptr), where
//      the generated tokens are g = h[history_start[b]:] (the prompt before them):
//      a. repetition penalty (CTRL / HF rule) on each distinct id in h, prompt included:
//         l = l > 0 ? l / penalty : l * penalty
//      b. presence and frequency penalties (OpenAI / vLLM) on each id with c = its count in g, c > 0:
//         l = fma(-frequency_penalty, c, l), then l -= presence_penalty (each rounded once, in this order)
//   2. temperature[b] == 0: token = argmax (lowest id on ties); done.
//   3. l /= temperature; p = softmax(l)
//   4. top_k[b] > 0: keep ids whose l >= the k-th largest l (ties at the boundary kept)
//   5. top_p[b] < 1: among the kept, sorted by p descending, keep the smallest prefix whose mass >= top_p * kept
//      mass, i.e. keep p >= tau for the largest tau with sum(p >= tau) >= top_p * kept mass
//   6. u = uniform01(seed[b], step[b]) (eet_rand_uniform, engine/rng.h); token = the first id in vocab order where
//      the running sum of kept p exceeds u * kept mass (the last kept id if rounding leaves none).
// logprob_out[b] (optional) = log softmax(l / temperature)[token] (temperature 0: of the raw penalised logits).
// A row with any non-finite penalised logit (NaN, +-infinity) gets token -1 and logprob NaN instead: the caller
// reports ERR_NUMERIC for it.
struct SampleArgs {
  DType dtype;             // logits dtype
  const void* logits;      // (B, V)
  int64_t batch, vocab;
  const float* temperature;        // (B)
  const int32_t* top_k;            // (B), 0 = off
  const float* top_p;              // (B), 1 = off
  const float* repetition_penalty; // (B), 1 = off
  const float* presence_penalty;   // (B), 0 = off
  const float* frequency_penalty;  // (B), 0 = off
  const int32_t* history;          // (B, history_stride) or nullptr; ids in [0, vocab)
  const int32_t* history_len;      // (B), each in [0, history_stride]
  const int32_t* history_start;    // (B), each in [0, history_len[b]]: where the row's generated tokens begin
  int64_t history_stride;
  const uint64_t* seed;            // (B)
  const uint64_t* step;            // (B) counter, advanced by the caller per generated token
  int32_t* tokens_out;             // (B)
  float* logprob_out;              // (B) or nullptr
  void* workspace;                 // sample_workspace_bytes() bytes
  size_t workspace_bytes;
};
// SampleArgs::workspace: the device sampler's scratch (cuda/sample.cu), sections in this order, each starting at a
// multiple of 256 bytes (sample_workspace_layout() gives the offsets; the kernels carve it up by the same numbers):
//   logits     (batch, vocab) fp32: the logits after the penalties (step 1), read again by every later step
//   candidates (batch, cand_cap) int32, cand_cap = min(vocab, kSampleCandidates): ids whose selection is undecided
//              after the first radix digit; a row with more falls back to re-reading its whole row of logits
//   chunks     (batch, n_chunks) records of kSampleChunkRecordBytes, n_chunks = ceil(vocab / kSampleChunk): one per
//              block (max / argmax / non-finite flag, softmax partial sum, probability masses)
//   bin_mass   (batch, kSampleBins) uint64, bin_count (batch, kSampleBins) uint32: the first-digit histograms
//   rows       (batch) records of kSampleRowRecordBytes: block counters and what the selection pass needs
// Sizes come from checked arithmetic (ERR_INVALID_ARG on overflow). The workspace pointer must be 8-byte aligned
// (64-bit atomics); validate() checks it.
constexpr int64_t kSampleChunk = 2048;           // vocab ids per block of the sampling kernels
constexpr int64_t kSampleBins = 2048;            // first radix digit: the top 11 bits of a logit's order key
constexpr int64_t kSampleCandidates = 16384;     // candidate ids kept per row
constexpr int64_t kSampleChunkRecordBytes = 40;
constexpr int64_t kSampleRowRecordBytes = 64;
struct SampleWorkspaceLayout {
  int64_t n_chunks, cand_cap;
  size_t logits, candidates, chunks, bin_mass, bin_count, rows;  // byte offsets
  size_t total;                                                  // bytes
};
SampleWorkspaceLayout sample_workspace_layout(int64_t batch, int64_t vocab);
size_t sample_workspace_bytes(int64_t batch, int64_t vocab);  // sample_workspace_layout(batch, vocab).total

// ---- dtype conversion (weights to the requested dtype on load) -------------------------------------------------------
struct CastArgs {
  DType src_dtype, dst_dtype;  // float types
  const void* src;
  void* dst;
  int64_t n;
};

// Validation of every struct (throws eet::Error ERR_INVALID_ARG naming the field).
void validate(const EmbeddingArgs&);
void validate(const NormArgs&);
void validate(const SoftmaxArgs&);
void validate(const GemmArgs&);
void validate(const GemmQ8Args&);
void validate(const ActArgs&);
void validate(const RopeArgs&);
void validate(const KvAppendArgs&);
void validate(const RopeKvAppendArgs&);
void validate(const KvGatherArgs&);
void validate(const AttentionArgs&);
void validate(const SharedAttentionArgs&);
void validate(const SampleArgs&);
void validate(const CastArgs&);

// X-macro over all ops: name, args struct. Backends, the emu/cuda forwarders and the JS op runner use it.
#define EET_OPS(X)                         \
  X(embedding, EmbeddingArgs)              \
  X(norm, NormArgs)                        \
  X(softmax, SoftmaxArgs)                  \
  X(gemm, GemmArgs)                        \
  X(gemm_q8, GemmQ8Args)                   \
  X(act, ActArgs)                          \
  X(rope, RopeArgs)                        \
  X(kv_append, KvAppendArgs)               \
  X(rope_kv_append, RopeKvAppendArgs)      \
  X(kv_gather, KvGatherArgs)               \
  X(attention, AttentionArgs)              \
  X(shared_attention, SharedAttentionArgs) \
  X(sample, SampleArgs)                    \
  X(cast, CastArgs)

}  // namespace eet

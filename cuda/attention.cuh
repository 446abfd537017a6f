// What the attention kernels share: cuda/attention.cu (prompt pass, decode, combine) and cuda/shared_attention.cu
// (the shared-prefix partials, whose results the decode's combine merges). Tile shapes, the parameter block, cache
// addressing and the cooperative row loads; and the decode + combine launcher that both ops use.
#pragma once
#include <cmath>
#include <initializer_list>
#include <string>

#include "../engine/relpos.h"
#include "reduce.cuh"

namespace EET_KNS {

// Tile shapes shared by the prompt and decode kernels. (AttnTile and AttnParams are outside the anonymous namespace:
// kernels taking them keep external linkage, so the emu's launch trace can name them.)
struct AttnTile {
  static constexpr int kWarps = 4;
  static constexpr int kBlock = kWarps * 32;      // threads per block
  static constexpr int kRows = 8;                 // prefill: query rows per warp
  static constexpr int kRowsSmall = 4;            // prefill: ... where the kRows tile exceeds the device's shared memory
  static constexpr int kBk = 32;                  // keys per tile: one per lane
  static constexpr int kHeads = 8;                // decode: the most query heads per block (the split may use fewer)
  static_assert(kBk == 32, "lane-per-key score layout");
  static_assert(kHeads == eet::kAttentionDecodeHeadsMax, "the decode split (engine/ops.h) sizes head groups by it");
};

constexpr int kCombineBlock = 128;
constexpr float kLog2e = 1.4426950408889634f;

// Everything the kernels read; built once by op_attention or op_shared_attention.
struct AttnParams {
  const void* q;                 // (T, n_heads, D), token stride ldq
  void* out;                     // (T, n_heads, D), token stride ldo
  const void* k_cache;
  const void* v_cache;
  const int32_t* block_table;    // (batch, max_blocks_per_seq)
  const int32_t* q_start;        // (batch + 1)
  const int32_t* ctx_len;        // (batch)
  const int32_t* key_begin;      // decode: (batch) each sequence's first key, the ones before are attended by the
                                 //   shared-prefix kernel (its shared_len); nullptr: 0
  float* part_ml;                // decode with partials: (batch, n_heads, part_stride, 2) slot max (log2) and sum
  float* part_acc;               //   (batch, n_heads, part_stride, D) unnormalised slot outputs; nullptr otherwise.
                                 //   Slot c < n_chunks: chunk c (its part from key_begin on); slot n_chunks (shared
                                 //   op only): the shared part of the chunk that key_begin cuts (op_workspace.cpp)
  int64_t ldq, ldo, block_stride, head_stride;
  int32_t block_size, head_dim, n_heads, group, max_blocks_per_seq;  // group = n_heads / n_kv_heads
  int32_t q_tiles;               // prefill: query tiles per sequence
  int32_t n_chunks, chunk_len;   // decode: context chunks, keys per chunk (any length >= 1)
  int32_t heads_per_block;       // decode: query heads of one kv head per block, <= AttnTile::kHeads
  int32_t head_groups;           // decode: blocks per kv head, ceil(group / heads_per_block)
  int32_t part_stride;           // decode: partial slots per (sequence, query head): n_chunks, or n_chunks + 1
  float scale_log2;              // scale * log2(e)
  eet::AttnRelBias rel;          // T5 relative position bias (rel.table nullptr: none); the kernels add
                                 //   table[h, bucket] * log2(e): scores are in the log2 domain
  eet::AttnMask mask;
  bool vec;                      // q, caches, D and strides allow 16-byte loads
};

namespace {

// Element offset of key k of sequence b, kv head kvh, in the cache.
__device__ __forceinline__ int64_t key_offset(const AttnParams& p, int b, int kvh, int k) {
  const int64_t blk = p.block_table[int64_t(b) * p.max_blocks_per_seq + k / p.block_size];
  return blk * p.block_stride + int64_t(kvh) * p.head_stride + int64_t(k % p.block_size) * p.head_dim;
}

// 16 bytes of T at src (16-byte aligned) as fp32.
template <typename T>
__device__ __forceinline__ void load16(const T* src, float* out) {
  constexpr int VEC = 16 / int(sizeof(T));
  const uint4 raw = *reinterpret_cast<const uint4*>(src);
  const T* e = reinterpret_cast<const T*>(&raw);
#pragma unroll
  for (int j = 0; j < VEC; ++j) out[j] = to_f32(e[j]);
}

// Block-cooperative copy of n_rows rows of D elements into shared fp32 rows of stride ld, times mul. Row r comes
// from src + row_off(r), or is zeros where row_off(r) < 0. vec: 16-byte loads (every row offset and D are
// multiples of 16 bytes).
template <int BLOCK, typename T, typename RowOff>
__device__ __forceinline__ void load_rows(float* dst, int ld, const T* src, int n_rows, int D, bool vec, float mul,
                                          RowOff row_off) {
  if (vec) {
    constexpr int VEC = 16 / int(sizeof(T));
    const int per_row = D / VEC;
    for (int u = threadIdx.x; u < n_rows * per_row; u += BLOCK) {
      const int r = u / per_row, d = (u - r * per_row) * VEC;
      const int64_t off = row_off(r);
      float v[VEC];
      if (off >= 0) {
        load16(src + off + d, v);
      } else {
#pragma unroll
        for (int j = 0; j < VEC; ++j) v[j] = 0.0f;
      }
#pragma unroll
      for (int j = 0; j < VEC; ++j) dst[r * ld + d + j] = v[j] * mul;
    }
  } else {
    for (int u = threadIdx.x; u < n_rows * D; u += BLOCK) {
      const int r = u / D, d = u - r * D;
      const int64_t off = row_off(r);
      dst[r * ld + d] = off >= 0 ? to_f32(src[off + d]) * mul : 0.0f;
    }
  }
}

// T5's relative position bias of head h for key - query = rel, in the log2 domain of the scores (0 without a table).
__device__ __forceinline__ float rel_bias_log2(const AttnParams& p, int h, int rel) {
  if (p.rel.table == nullptr) return 0.0f;
  const int bucket = t5_relative_bucket(rel, p.rel.bidirectional, p.rel.num_buckets, p.rel.max_distance);
  return p.rel.table[int64_t(h) * p.rel.num_buckets + bucket] * kLog2e;
}

// No bias: RowTiles::tile's default.
struct NoScoreBias {
  __device__ __forceinline__ float operator()(int, int) const { return 0.0f; }
};

}  // namespace

// The prompt-style tile walk shared by attention_prefill_kernel and shared_attention_partial_kernel: a block of
// kWarps warps holds kBq = kWarps * ROWS query rows in shared memory (warp w owns rows ROWS*w..ROWS*w+ROWS-1) and
// attends them to 32-key tiles. Scores: lane = key (ROWS running dot products, q read as float4 broadcasts; the K
// tile's odd row stride keeps the lane-per-key reads conflict-free). Online softmax: 32 / ROWS lanes per row (ROWS
// scores each, log2(32 / ROWS) shuffle steps per reduction), state m_row (running max, log2 domain) and l_row (sum)
// held by the row's lanes. P·V: lane = dims lane + 32*i (i < NI) of the warp's ROWS rows, unnormalised, in o.
// Shared memory: tile_smem_bytes(D, ROWS). ROWS is AttnTile::kRows, or kRowsSmall where that does not fit
// (tile_rows()). (Outside the anonymous namespace, like AttnParams: the kernels' lambdas capture it and keep
// external linkage.)
template <int NI, int ROWS>
struct RowTiles {
  using Tl = AttnTile;
  static constexpr int kBq = Tl::kWarps * ROWS;  // query rows per block
  static constexpr int kLanesPerRow = 32 / ROWS, kKeysPerLane = Tl::kBk / kLanesPerRow;
  static_assert(kLanesPerRow * ROWS == 32 && (kLanesPerRow & (kLanesPerRow - 1)) == 0, "row lane groups");
  static_assert(kBq <= Tl::kBk, "load_queries' pad loop covers the K tile's rows");

  float* qs;  // (kBq, DP) query rows * scale * log2(e), zero-padded to DP
  float* ks;  // (kBk, DP + 1) key tile
  float* vs;  // (kBk, D) value tile
  float* ps;  // (kBq, kBk) scores, then probabilities, of each warp's rows
  float* rs;  // (kBq) per row: the current tile's rescale factor (free for the caller after the walk)
  int D, DP, lane, row0, my_row, my_c0;
  float m_row = -INFINITY, l_row = 0.0f;
  float o[ROWS][NI];

  __device__ __forceinline__ RowTiles(float* smem, int head_dim) : D(head_dim), DP((head_dim + 3) & ~3) {
    qs = smem;
    ks = qs + kBq * DP;
    vs = ks + Tl::kBk * (DP + 1);
    ps = vs + Tl::kBk * D;
    rs = ps + kBq * Tl::kBk;
    lane = threadIdx.x % 32;
    row0 = threadIdx.x / 32 * ROWS;
    my_row = row0 + lane / kLanesPerRow;
    my_c0 = lane % kLanesPerRow * kKeysPerLane;
#pragma unroll
    for (int r = 0; r < ROWS; ++r) {
#pragma unroll
      for (int i = 0; i < NI; ++i) o[r][i] = 0.0f;
    }
  }

  // Loads the kBq query rows (row r from q + q_off(r), zeros where q_off(r) < 0), scaled by mul, and zeroes the pad
  // columns of Q and K once (tile loads never write them). The first tile() call's barrier publishes them.
  template <typename T, typename RowOff>
  __device__ __forceinline__ void load_queries(const T* q, bool vec, float mul, RowOff q_off) {
    load_rows<Tl::kBlock>(qs, DP, q, kBq, D, vec, mul, q_off);
    const int pad = DP - D;
    for (int u = threadIdx.x; u < Tl::kBk * pad; u += Tl::kBlock) {
      const int r = u / pad, j = D + u % pad;
      if (r < kBq) qs[r * DP + j] = 0.0f;
      ks[r * (DP + 1) + j] = 0.0f;
    }
  }

  // One tile: keys 0..nk-1 (nk >= 1) at cache offsets key_off(r) (-1 past nk); visible(r, lane): whether row
  // row0 + r sees key lane; bias(r, lane): added to that visible score (log2 domain). Every row must see a key in
  // the first tile, so the running max is finite from then on.
  template <typename T, typename KeyOff, typename Visible, typename Bias = NoScoreBias>
  __device__ __forceinline__ void tile(const T* kc, const T* vc, bool vec, int nk, KeyOff key_off, Visible visible,
                                       Bias bias = Bias()) {
    __syncthreads();  // the previous tile's readers are done; Q and the pads are written
    load_rows<Tl::kBlock>(ks, DP + 1, kc, Tl::kBk, D, vec, 1.0f, key_off);
    load_rows<Tl::kBlock>(vs, D, vc, Tl::kBk, D, vec, 1.0f, key_off);
    __syncthreads();

    float s[ROWS];
#pragma unroll
    for (int r = 0; r < ROWS; ++r) s[r] = 0.0f;
    const float* kr = ks + lane * (DP + 1);
    for (int d = 0; d < DP; d += 4) {
      const float k0 = kr[d], k1 = kr[d + 1], k2 = kr[d + 2], k3 = kr[d + 3];
#pragma unroll
      for (int r = 0; r < ROWS; ++r) {
        const float4 qv = *reinterpret_cast<const float4*>(qs + (row0 + r) * DP + d);
        s[r] = fmaf(qv.w, k3, fmaf(qv.z, k2, fmaf(qv.y, k1, fmaf(qv.x, k0, s[r]))));
      }
    }
#pragma unroll
    for (int r = 0; r < ROWS; ++r) ps[(row0 + r) * Tl::kBk + lane] = visible(r, lane) ? s[r] + bias(r, lane) : -INFINITY;
    __syncwarp(kFullMask);
    {  // online softmax, lanes regrouped by row: kKeysPerLane scores each, shuffles within the row's lanes
      float* prow = ps + my_row * Tl::kBk + my_c0;
      float sv[kKeysPerLane], mx = -INFINITY;
#pragma unroll
      for (int j = 0; j < kKeysPerLane; ++j) {
        sv[j] = prow[j];
        mx = fmaxf(mx, sv[j]);
      }
#pragma unroll
      for (int x = 1; x < kLanesPerRow; x <<= 1) mx = fmaxf(mx, __shfl_xor_sync(kFullMask, mx, x));
      const float m_new = fmaxf(m_row, mx);
      float sum = 0.0f;
#pragma unroll
      for (int j = 0; j < kKeysPerLane; ++j) {
        prow[j] = exp2f(sv[j] - m_new);
        sum += prow[j];
      }
#pragma unroll
      for (int x = 1; x < kLanesPerRow; x <<= 1) sum += __shfl_xor_sync(kFullMask, sum, x);
      const float alpha = exp2f(m_row - m_new);  // 0 on the first tile
      l_row = l_row * alpha + sum;
      m_row = m_new;
      if (my_c0 == 0) rs[my_row] = alpha;
    }
    __syncwarp(kFullMask);
#pragma unroll
    for (int r = 0; r < ROWS; ++r) {
      const float alpha = rs[row0 + r];
#pragma unroll
      for (int i = 0; i < NI; ++i) o[r][i] *= alpha;
    }

    for (int c = 0; c < nk; ++c) {
      float v[NI];
#pragma unroll
      for (int i = 0; i < NI; ++i) {
        const int d = lane + 32 * i;
        v[i] = d < D ? vs[c * D + d] : 0.0f;
      }
#pragma unroll
      for (int r = 0; r < ROWS; ++r) {
        const float pr = ps[(row0 + r) * Tl::kBk + c];
#pragma unroll
        for (int i = 0; i < NI; ++i) o[r][i] = fmaf(pr, v[i], o[r][i]);
      }
    }
  }
};

// Dynamic shared memory of RowTiles for head_dim D and `rows` query rows per warp, in bytes.
inline size_t tile_smem_bytes(int D, int rows) {
  using Tl = AttnTile;
  const size_t DP = size_t(D + 3) & ~size_t(3), bq = size_t(Tl::kWarps) * rows;
  return sizeof(float) * (bq * DP + Tl::kBk * (DP + 1) + Tl::kBk * size_t(D) + bq * Tl::kBk + bq);
}

// Query rows per warp of the prompt-style tile walk at head_dim D on this device: AttnTile::kRows where that tile
// fits the per-block opt-in shared memory (smem_per_block_optin(): cudaDevAttrMaxSharedMemoryPerBlockOptin, or the
// emu's setting), else kRowsSmall. Only D > 128 (register tile NI = 8) has the small variant: at D = 256 the 8-row
// tile takes 102,656 bytes, over the 99 KiB of sm_86/sm_89; up to D = 128 it takes under 54 KB, within every
// sm_80+ device's limit. ERR_UNSUPPORTED when nothing fits.
inline int tile_rows(int D, const char* op) {
  using Tl = AttnTile;
  const size_t limit = smem_per_block_optin();
  if (tile_smem_bytes(D, Tl::kRows) <= limit) return Tl::kRows;
  if (D > 128 && tile_smem_bytes(D, Tl::kRowsSmall) <= limit) return Tl::kRowsSmall;
  eet::throw_error(eet::ErrorCode::Unsupported,
                   std::string(op) + ": head_dim " + std::to_string(D) + " needs " +
                       std::to_string(tile_smem_bytes(D, D > 128 ? Tl::kRowsSmall : Tl::kRows)) +
                       " bytes of shared memory per block, over this device's limit of " + std::to_string(limit));
}

// The fields every attention op fills alike: pointers, cache layout, strides, heads, scale and whether 16-byte loads
// are possible (q, caches, D and strides aligned).
inline AttnParams attn_params(eet::DType dtype, const void* q, void* out, const void* k_cache, const void* v_cache,
                              const eet::KvLayout& l, const int32_t* block_table, int64_t ldq, int64_t ldo,
                              int32_t n_heads, int32_t max_blocks_per_seq, float scale) {
  AttnParams p{};
  p.q = q;
  p.out = out;
  p.k_cache = k_cache;
  p.v_cache = v_cache;
  p.block_table = block_table;
  p.ldq = ldq;
  p.ldo = ldo;
  p.block_stride = l.block_stride;
  p.head_stride = l.head_stride;
  p.block_size = l.block_size;
  p.head_dim = l.head_dim;
  p.n_heads = n_heads;
  p.group = n_heads / l.n_kv_heads;
  p.max_blocks_per_seq = max_blocks_per_seq;
  p.scale_log2 = scale * kLog2e;
  const int64_t vec = 16 / int64_t(eet::dtype_size(dtype));
  bool aligned = l.head_dim % vec == 0 && ldq % vec == 0 && l.head_stride % vec == 0 && l.block_stride % vec == 0;
  for (const void* ptr : {q, k_cache, v_cache}) aligned = aligned && reinterpret_cast<uintptr_t>(ptr) % 16 == 0;
  p.vec = aligned;
  return p;
}

// The decode split's fields of p (engine/ops.h attention_decode_split(), the same one validate() sized the
// workspace by).
inline void set_decode_split(AttnParams& p, const eet::AttentionDecodeSplit& split) {
  p.chunk_len = split.chunk_len;
  p.n_chunks = split.n_chunks;
  p.heads_per_block = split.heads_per_block;
  p.head_groups = int32_t(ceil_div(p.group, split.heads_per_block));
}

// The decode path of cuda/attention.cu: attention_decode_kernel over chunks 0..n_chunks-1 of every sequence's keys
// from key_begin[b] (none when n_chunks is 0) and head groups of heads_per_block query heads, then, when p.part_acc
// is set, attention_combine_kernel over the partial slots (see AttnParams). dtype picks T, head_dim the register
// tile.
void attention_decode_run(const AttnParams& p, eet::DType dtype, int32_t batch, int32_t n_kv_heads, eet::Stream stream);

// The prompt pass on tensor cores (cuda/attention_prefill_mma.cu): whether it takes this dtype and head_dim on this
// device (float16 / bfloat16, head_dim a multiple of 16 in [16, 256], its tile within the shared memory opt-in
// limit), and its launch over p with p.q_tiles = ceil(max_q_len / kMmaAttnRows).
constexpr int kMmaAttnRows = 64;  // query rows per block (MmaAttnTile::kBq)
bool attention_prefill_mma_supported(eet::DType dtype, int32_t head_dim);
void attention_prefill_mma_run(const AttnParams& p, eet::DType dtype, int32_t batch, eet::Stream stream);

}  // namespace EET_KNS

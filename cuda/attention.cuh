// What the attention kernels share: cuda/attention.cu (prompt pass, decode, combine) and cuda/shared_attention.cu
// (the shared-prefix partials, whose results the decode's combine merges). Tile shapes, the parameter block, cache
// addressing and the cooperative row loads; and the decode + combine launcher that both ops use.
#pragma once
#include <cmath>

#include "reduce.cuh"

namespace EET_KNS {

// Tile shapes shared by the prompt and decode kernels. (AttnTile and AttnParams are outside the anonymous namespace:
// kernels taking them keep external linkage, so the emu's launch trace can name them.)
struct AttnTile {
  static constexpr int kWarps = 4;
  static constexpr int kBlock = kWarps * 32;      // threads per block
  static constexpr int kRows = 8;                 // prefill: query rows per warp
  static constexpr int kBq = kWarps * kRows;      // prefill: queries per block
  static constexpr int kBk = 32;                  // keys per tile: one per lane
  static constexpr int kHeads = 8;                // decode: query heads per block
  static constexpr int kPass = kWarps * kBk;      // decode: keys one pass of the block covers, a 32-key slice per warp
  static_assert(kBk == 32 && kBq == kBk, "lane-per-key score layout; Q and K tiles share the pad loop");
  static_assert(eet::kAttentionDecodeChunkMin % kPass == 0 && eet::kAttentionDecodeChunkMax % kPass == 0,
                "decode chunks (engine/ops.h) are whole passes: every warp walks whole 32-key slices");
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
  int32_t n_chunks, chunk_len, head_groups;  // decode: context chunks, keys per chunk, blocks per kv head
  int32_t part_stride;           // decode: partial slots per (sequence, query head): n_chunks, or n_chunks + 1
  float scale_log2;              // scale * log2(e)
  bool causal;
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

}  // namespace

// The decode path of cuda/attention.cu: attention_decode_kernel over chunks 0..n_chunks-1 of every sequence's keys
// from key_begin[b] (none when n_chunks is 0), then, when p.part_acc is set, attention_combine_kernel over the
// partial slots (see AttnParams). dtype picks T, head_dim the register tile.
void attention_decode_run(const AttnParams& p, eet::DType dtype, int32_t batch, int32_t n_kv_heads, eet::Stream stream);

}  // namespace EET_KNS

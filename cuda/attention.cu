// Fused masked attention over the paged KV cache (engine/ops.h "fused masked attention").
//   q    (T, n_heads, D)  packed queries: sequence b owns rows q_start[b] .. q_start[b+1]-1, the last n_q tokens of
//                         its ctx_len[b]-token context; query i of b sits at position ctx_len[b] - n_q + i
//   K, V paged cache: key k of sequence b is token k % block_size of block block_table[b][k / block_size]
//   out  (T, n_heads, D)  softmax(q·Kᵀ * scale) · V, per query head h over kv head h / (n_heads / n_kv_heads)
// The mask (eet::AttnMask): a query at position pos sees all ctx_len[b] keys (bidirectional, BERT), keys 0..pos
// (causal) or keys pos..ctx_len[b]-1 (anti-causal, DecBERT). Masks and per-sequence lengths are applied in the
// kernels; no mask tensor exists. D is any value in [8, 256].
//
// All math is fp32 (scores kept in the log2 domain: q is pre-scaled by scale * log2(e), softmax uses exp2f), the
// output is rounded once to the dtype. Two paths, chosen by the host from max_q_len:
//
// 1. Prompt pass (any n_q; max_q_len > 1): attention_prefill_kernel, flash-attention style with online softmax.
//    One block of 128 threads (4 warps) per (32-query tile, head, sequence); grid.x = batch * q_tiles with
//    q_tiles = ceil(max_q_len / 32), tiles past a sequence's n_q return at once (whole block, before any barrier).
//    The Q tile and each 32-key K/V tile, read through the block table, sit in shared memory as fp32. A warp owns
//    8 query rows: for the scores a lane owns one key (8 running dot products, q read as float4 broadcasts, the K
//    tile's odd row stride keeps the lane-per-key reads conflict-free); for the online softmax 4 lanes own a row
//    (8 scores each, 2 shuffle steps per reduction); for P·V a lane owns dims lane + 32*i (i < NI, NI = 2/4/8 for
//    D <= 64/128/256) of its 8 output rows, in registers. Causal tiles stop at the key of the tile's last query and
//    anti-causal tiles start at the key of its first query: keys no row of the tile sees are skipped, not masked, so
//    only key tiles crossing the diagonal are masked partially (anti-causal: exactly the first). The tiles with the
//    most keys are scheduled first (a sequence's last query tiles when causal, its first when anti-causal).
// 2. Decode (every n_q == 1; max_q_len == 1): flash-decoding. One block of 4 warps per (sequence, kv head, group
//    of up to 8 of its query heads, chunk of the context): K/V are read once for all query heads of a kv head
//    (GQA/MQA). Each warp walks 32-key slices of the chunk (lane = key for the scores, with 16-byte K loads when
//    aligned; lane = dims for P·V, V rows read coalesced), the 4 warps' states are merged in shared memory. With
//    one chunk the block writes the output; with several (long contexts, small batch: eet::attention_decode_split(),
//    engine/op_workspace.cpp, chooses the chunks) each block writes its partial (max, sum, unnormalised output) to
//    the workspace and attention_combine_kernel merges them, one block per (sequence, query head). No mask: a lone
//    query at the end of its context sees every key when bidirectional or causal, and validate() admits anti-causal
//    here only for 1-token contexts, where the masks agree.
// The workspace layout and eet::attention_workspace_bytes() are in engine/ops.h, computed from the same split.
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

// Everything the kernels read; built once by op_attention.
struct AttnParams {
  const void* q;                 // (T, n_heads, D), token stride ldq
  void* out;                     // (T, n_heads, D), token stride ldo
  const void* k_cache;
  const void* v_cache;
  const int32_t* block_table;    // (batch, max_blocks_per_seq)
  const int32_t* q_start;        // (batch + 1)
  const int32_t* ctx_len;        // (batch)
  float* part_ml;                // decode with n_chunks > 1: (batch, n_heads, n_chunks, 2) chunk max (log2) and sum
  float* part_acc;               //   (batch, n_heads, n_chunks, D) unnormalised chunk outputs; nullptr otherwise
  int64_t ldq, ldo, block_stride, head_stride;
  int32_t block_size, head_dim, n_heads, group, max_blocks_per_seq;  // group = n_heads / n_kv_heads
  int32_t q_tiles;               // prefill: query tiles per sequence
  int32_t n_chunks, chunk_len, head_groups;  // decode: context chunks, keys per chunk, blocks per kv head
  float scale_log2;              // scale * log2(e)
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

// Decode: one online-softmax step for a row whose 32 scores (one per lane, -inf where masked) are s; at least one
// lane is unmasked once m is finite or in this step. Returns this lane's probability; rescales the row's state.
template <int NI>
__device__ __forceinline__ float online_softmax_step(float s, float& m, float& l, float (&o)[NI]) {
  const float m_new = fmaxf(m, warp_reduce_max(s));
  const float alpha = exp2f(m - m_new);  // 0 while m is -inf
  const float p = exp2f(s - m_new);
  l = l * alpha + warp_reduce_sum(p);
  m = m_new;
#pragma unroll
  for (int i = 0; i < NI; ++i) o[i] *= alpha;
  return p;
}

}  // namespace

// ---- prompt pass ------------------------------------------------------------------------------------------------
template <typename T, int NI>
__global__ __launch_bounds__(AttnTile::kBlock) void attention_prefill_kernel(AttnParams p) {
  using Tl = AttnTile;
  const bool anti = p.mask == eet::AttnMask::AntiCausal, causal = p.mask == eet::AttnMask::Causal;
  const int b = int(blockIdx.x) / p.q_tiles, order = int(blockIdx.x) % p.q_tiles;
  const int tile = anti ? order : p.q_tiles - 1 - order;  // the tiles with the most keys first
  const int h = blockIdx.y;
  const int q_begin = p.q_start[b], n_q = p.q_start[b + 1] - q_begin, ctx = p.ctx_len[b];
  const int qt0 = tile * Tl::kBq;
  if (qt0 >= n_q) return;  // whole block, before any barrier
  const int D = p.head_dim, DP = (D + 3) & ~3, kvh = h / p.group;
  const int rows = min(Tl::kBq, n_q - qt0);
  const int pos0 = ctx - n_q + qt0;  // position of the tile's first query
  const int key_begin = anti ? pos0 : 0;                           // no query of the tile sees a key before
  const int key_end = causal ? min(ctx, pos0 + rows) : ctx;        // ... or after these
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, row0 = warp * Tl::kRows;

  EXTERN_SHARED(float, smem);
  float* qs = smem;                      // (kBq, DP) queries * scale * log2(e), zero-padded to DP
  float* ks = qs + Tl::kBq * DP;         // (kBk, DP + 1) key tile; the odd stride: conflict-free lane-per-key reads
  float* vs = ks + Tl::kBk * (DP + 1);   // (kBk, D) value tile
  float* ps = vs + Tl::kBk * D;          // (kBq, kBk) scores, then probabilities, of each warp's rows
  float* rs = ps + Tl::kBq * Tl::kBk;    // (kBq) per row: this tile's rescale factor; at the end 1 / sum

  const T* kc = static_cast<const T*>(p.k_cache);
  const T* vc = static_cast<const T*>(p.v_cache);
  const int64_t q_row0 = int64_t(q_begin) + qt0;
  load_rows<Tl::kBlock>(qs, DP, static_cast<const T*>(p.q), Tl::kBq, D, p.vec, p.scale_log2,
                        [&](int r) -> int64_t { return r < rows ? (q_row0 + r) * p.ldq + int64_t(h) * D : -1; });
  const int pad = DP - D;  // zero the pad columns of Q and K once; tile loads never write them
  for (int u = threadIdx.x; u < Tl::kBq * pad; u += Tl::kBlock) {
    const int r = u / pad, j = D + u % pad;
    qs[r * DP + j] = 0.0f;
    ks[r * (DP + 1) + j] = 0.0f;
  }

  // Softmax state: the kLanesPerRow lanes of row my_row hold its running max (log2 domain) and sum.
  constexpr int kLanesPerRow = 32 / Tl::kRows, kKeysPerLane = Tl::kBk / kLanesPerRow;
  static_assert(kLanesPerRow * Tl::kRows == 32 && (kLanesPerRow & (kLanesPerRow - 1)) == 0, "row lane groups");
  const int my_row = row0 + lane / kLanesPerRow, my_c0 = lane % kLanesPerRow * kKeysPerLane;
  float m_row = -INFINITY, l_row = 0.0f;
  float o[Tl::kRows][NI];
#pragma unroll
  for (int r = 0; r < Tl::kRows; ++r) {
#pragma unroll
    for (int i = 0; i < NI; ++i) o[r][i] = 0.0f;
  }

  for (int kt = key_begin; kt < key_end; kt += Tl::kBk) {
    __syncthreads();  // the previous tile's readers are done; Q and the pads are written
    const int nk = min(Tl::kBk, key_end - kt);
    const auto key_off = [&](int r) -> int64_t { return r < nk ? key_offset(p, b, kvh, kt + r) : -1; };
    load_rows<Tl::kBlock>(ks, DP + 1, kc, Tl::kBk, D, p.vec, 1.0f, key_off);
    load_rows<Tl::kBlock>(vs, D, vc, Tl::kBk, D, p.vec, 1.0f, key_off);
    __syncthreads();

    float s[Tl::kRows];
#pragma unroll
    for (int r = 0; r < Tl::kRows; ++r) s[r] = 0.0f;
    const float* kr = ks + lane * (DP + 1);
    for (int d = 0; d < DP; d += 4) {
      const float k0 = kr[d], k1 = kr[d + 1], k2 = kr[d + 2], k3 = kr[d + 3];
#pragma unroll
      for (int r = 0; r < Tl::kRows; ++r) {
        const float4 qv = *reinterpret_cast<const float4*>(qs + (row0 + r) * DP + d);
        s[r] = fmaf(qv.w, k3, fmaf(qv.z, k2, fmaf(qv.y, k1, fmaf(qv.x, k0, s[r]))));
      }
    }
    const int key = kt + lane;
#pragma unroll
    for (int r = 0; r < Tl::kRows; ++r) {
      const int qpos = pos0 + min(row0 + r, rows - 1);  // pad rows (past n_q) mask as the tile's last query
      const bool visible = lane < nk && (causal ? key <= qpos : !anti || key >= qpos);
      ps[(row0 + r) * Tl::kBk + lane] = visible ? s[r] : -INFINITY;
    }
    __syncwarp(kFullMask);
    {  // online softmax, lanes regrouped by row: kKeysPerLane scores each, 2-step shuffles within the row's lanes.
       // Every row sees a key of the first tile (key 0; anti-causal: its own position, < key_begin + kBk), so the
       // running max is finite from then on.
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
    for (int r = 0; r < Tl::kRows; ++r) {
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
      for (int r = 0; r < Tl::kRows; ++r) {
        const float pr = ps[(row0 + r) * Tl::kBk + c];
#pragma unroll
        for (int i = 0; i < NI; ++i) o[r][i] = fmaf(pr, v[i], o[r][i]);
      }
    }
  }

  __syncwarp(kFullMask);  // every lane has read the last tile's rescale factors
  if (my_c0 == 0) rs[my_row] = 1.0f / l_row;
  __syncwarp(kFullMask);
  T* out = static_cast<T*>(p.out);
#pragma unroll
  for (int r = 0; r < Tl::kRows; ++r) {
    if (row0 + r >= rows) break;
    const float inv = rs[row0 + r];
    T* orow = out + (q_row0 + row0 + r) * p.ldo + int64_t(h) * D;
#pragma unroll
    for (int i = 0; i < NI; ++i) {
      const int d = lane + 32 * i;
      if (d < D) orow[d] = from_f32<T>(o[r][i] * inv);
    }
  }
}

// ---- decode -----------------------------------------------------------------------------------------------------
template <typename T, int NI>
__global__ __launch_bounds__(AttnTile::kBlock) void attention_decode_kernel(AttnParams p) {
  using Tl = AttnTile;
  constexpr int HG = Tl::kHeads, W = Tl::kWarps;
  const int b = int(blockIdx.x) / p.n_chunks, chunk = int(blockIdx.x) % p.n_chunks;
  const int kvh = int(blockIdx.y) / p.head_groups, hg = int(blockIdx.y) % p.head_groups;
  const int ctx = p.ctx_len[b];
  const int k_begin = chunk * p.chunk_len;
  if (k_begin >= ctx) return;  // whole block, before any barrier
  const int k_end = min(ctx, k_begin + p.chunk_len);
  const int h0 = kvh * p.group + hg * HG, ng = min(HG, p.group - hg * HG);
  const int D = p.head_dim, DP = (D + 3) & ~3;
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int64_t q_row = p.q_start[b];

  EXTERN_SHARED(float, smem);
  int64_t* offs = reinterpret_cast<int64_t*>(smem);  // (W, 32) cache offsets of each warp's current keys
  float* qs = smem + 2 * W * 32;                      // (HG, DP) queries * scale * log2(e)
  float* ps = qs + HG * DP;                           // (W, HG, 32) probabilities of each warp's current keys
  float* wm = ps + W * HG * 32;                       // (W, HG) each warp's running max
  float* wl = wm + W * HG;                            // (W, HG) each warp's running sum
  float* acc = wl + W * HG;                           // (HG, D) the warps' outputs merged

  load_rows<Tl::kBlock>(qs, DP, static_cast<const T*>(p.q), HG, D, p.vec, p.scale_log2,
                        [&](int g) -> int64_t { return g < ng ? q_row * p.ldq + int64_t(h0 + g) * D : -1; });
  __syncthreads();

  const T* kc = static_cast<const T*>(p.k_cache);
  const T* vc = static_cast<const T*>(p.v_cache);
  int64_t* woffs = offs + warp * 32;
  float* wps = ps + warp * HG * 32;
  float m[HG], l[HG], o[HG][NI];
#pragma unroll
  for (int g = 0; g < HG; ++g) {
    m[g] = -INFINITY;
    l[g] = 0.0f;
#pragma unroll
    for (int i = 0; i < NI; ++i) o[g][i] = 0.0f;
  }

  for (int kb = k_begin + warp * 32; kb < k_end; kb += W * 32) {  // this warp's 32-key slices
    const int key = kb + lane;
    const bool valid = key < k_end;
    const int64_t off = valid ? key_offset(p, b, kvh, key) : 0;
    float s[HG];
#pragma unroll
    for (int g = 0; g < HG; ++g) s[g] = 0.0f;
    if (valid) {
      const T* kr = kc + off;
      if (p.vec) {
        constexpr int VEC = 16 / int(sizeof(T));
        for (int d = 0; d < D; d += VEC) {
          float kf[VEC];
          load16(kr + d, kf);
#pragma unroll
          for (int g = 0; g < HG; ++g) {
            if (g < ng) {
#pragma unroll
              for (int j = 0; j < VEC; ++j) s[g] = fmaf(qs[g * DP + d + j], kf[j], s[g]);
            }
          }
        }
      } else {
        for (int d = 0; d < D; ++d) {
          const float kf = to_f32(kr[d]);
#pragma unroll
          for (int g = 0; g < HG; ++g) {
            if (g < ng) s[g] = fmaf(qs[g * DP + d], kf, s[g]);
          }
        }
      }
    }
#pragma unroll
    for (int g = 0; g < HG; ++g) {
      if (g < ng) wps[g * 32 + lane] = online_softmax_step(valid ? s[g] : -INFINITY, m[g], l[g], o[g]);
    }
    woffs[lane] = off;
    __syncwarp(kFullMask);
    const int nk = min(32, k_end - kb);
    for (int c = 0; c < nk; ++c) {
      const T* vr = vc + woffs[c];
      float v[NI];
#pragma unroll
      for (int i = 0; i < NI; ++i) {
        const int d = lane + 32 * i;
        v[i] = d < D ? to_f32(vr[d]) : 0.0f;
      }
#pragma unroll
      for (int g = 0; g < HG; ++g) {
        if (g < ng) {
          const float pr = wps[g * 32 + c];
#pragma unroll
          for (int i = 0; i < NI; ++i) o[g][i] = fmaf(pr, v[i], o[g][i]);
        }
      }
    }
    __syncwarp(kFullMask);
  }

  // Merge the warps: a warp that saw no key has m = -inf and weight 0; warp 0 always saw one.
  if (lane == 0) {
#pragma unroll
    for (int g = 0; g < HG; ++g) {
      wm[warp * HG + g] = m[g];
      wl[warp * HG + g] = l[g];
    }
  }
  __syncthreads();
  float mx[HG];
#pragma unroll
  for (int g = 0; g < HG; ++g) {
    mx[g] = wm[g];
    for (int w = 1; w < W; ++w) mx[g] = fmaxf(mx[g], wm[w * HG + g]);
  }
  for (int w = 0; w < W; ++w) {
    if (warp == w) {
#pragma unroll
      for (int g = 0; g < HG; ++g) {
        if (g >= ng) continue;
        const float f = exp2f(m[g] - mx[g]);
#pragma unroll
        for (int i = 0; i < NI; ++i) {
          const int d = lane + 32 * i;
          if (d < D) acc[g * D + d] = (w == 0 ? 0.0f : acc[g * D + d]) + o[g][i] * f;
        }
      }
    }
    __syncthreads();
  }

  T* out = static_cast<T*>(p.out);
  const int64_t part0 = (int64_t(b) * p.n_heads + h0) * p.n_chunks + chunk;  // partial of head h0 + g: + g*n_chunks
  for (int e = threadIdx.x; e < ng * D; e += Tl::kBlock) {
    const int g = e / D, d = e - g * D;
    float mg = wm[g];
    for (int w = 1; w < W; ++w) mg = fmaxf(mg, wm[w * HG + g]);
    float lg = 0.0f;
    for (int w = 0; w < W; ++w) lg += wl[w * HG + g] * exp2f(wm[w * HG + g] - mg);
    if (p.part_acc == nullptr) {
      out[q_row * p.ldo + int64_t(h0 + g) * D + d] = from_f32<T>(acc[e] / lg);
    } else {
      const int64_t part = part0 + int64_t(g) * p.n_chunks;
      p.part_acc[part * D + d] = acc[e];
      if (d == 0) {
        p.part_ml[part * 2] = mg;
        p.part_ml[part * 2 + 1] = lg;
      }
    }
  }
}

// Merges the chunk partials of one (sequence, query head): out = Σ acc_c·2^(m_c−M) / Σ l_c·2^(m_c−M).
template <typename T, int BLOCK>
__global__ __launch_bounds__(BLOCK) void attention_combine_kernel(AttnParams p) {
  const int b = blockIdx.x, h = blockIdx.y, D = p.head_dim;
  const int n = int(ceil_div(p.ctx_len[b], p.chunk_len));  // chunks this sequence filled
  const int64_t part0 = (int64_t(b) * p.n_heads + h) * p.n_chunks;
  EXTERN_SHARED(float, smem);
  float* red = smem;     // 32 floats of block_reduce scratch
  float* w = smem + 32;  // (n_chunks) weight 2^(m_c - M) of each chunk

  float mx = -INFINITY;
  for (int c = threadIdx.x; c < n; c += BLOCK) mx = fmaxf(mx, p.part_ml[(part0 + c) * 2]);
  mx = block_reduce_max<BLOCK>(mx, red);
  float sum = 0.0f;
  for (int c = threadIdx.x; c < n; c += BLOCK) {
    const float wc = exp2f(p.part_ml[(part0 + c) * 2] - mx);
    w[c] = wc;
    sum += wc * p.part_ml[(part0 + c) * 2 + 1];
  }
  sum = block_reduce_sum<BLOCK>(sum, red);  // its barriers also publish w
  const float inv = 1.0f / sum;
  T* out = static_cast<T*>(p.out) + int64_t(p.q_start[b]) * p.ldo + int64_t(h) * D;
  for (int d = threadIdx.x; d < D; d += BLOCK) {
    float a = 0.0f;
    for (int c = 0; c < n; ++c) a = fmaf(w[c], p.part_acc[(part0 + c) * D + d], a);
    out[d] = from_f32<T>(a * inv);
  }
}

// ---- host side ----------------------------------------------------------------------------------------------------
namespace {

template <typename T, int NI>
void attention_prefill_launch(const AttnParams& p, int32_t batch, eet::Stream stream) {
  using Tl = AttnTile;
  const int D = p.head_dim, DP = (D + 3) & ~3;
  const size_t smem =
      sizeof(float) * size_t(Tl::kBq * DP + Tl::kBk * (DP + 1) + Tl::kBk * D + Tl::kBq * Tl::kBk + Tl::kBq);
  launch(attention_prefill_kernel<T, NI>, dim3(unsigned(int64_t(batch) * p.q_tiles), unsigned(p.n_heads)),
         dim3(Tl::kBlock), smem, stream, p);
}

template <typename T, int NI>
void attention_decode_launch(const AttnParams& p, int32_t batch, int32_t n_kv_heads, eet::Stream stream) {
  using Tl = AttnTile;
  const int D = p.head_dim, DP = (D + 3) & ~3;
  const size_t smem = sizeof(float) * size_t(2 * Tl::kWarps * 32 + Tl::kHeads * DP + Tl::kWarps * Tl::kHeads * 32 +
                                             2 * Tl::kWarps * Tl::kHeads + Tl::kHeads * D);
  launch(attention_decode_kernel<T, NI>, dim3(unsigned(int64_t(batch) * p.n_chunks), unsigned(n_kv_heads * p.head_groups)),
         dim3(Tl::kBlock), smem, stream, p);
  if (p.part_acc) {
    launch(attention_combine_kernel<T, kCombineBlock>, dim3(unsigned(batch), unsigned(p.n_heads)), dim3(kCombineBlock),
           sizeof(float) * size_t(32 + p.n_chunks), stream, p);
  }
}

template <typename T, int NI>
void attention_launch(const eet::AttentionArgs& a, AttnParams& p, eet::Stream stream) {
  if (a.max_q_len > 1) {
    attention_prefill_launch<T, NI>(p, a.batch, stream);
  } else {
    attention_decode_launch<T, NI>(p, a.batch, a.layout.n_kv_heads, stream);
  }
}

}  // namespace

void op_attention(const eet::AttentionArgs& a, eet::Stream stream) {
  using Tl = AttnTile;
  const eet::KvLayout& l = a.layout;
  AttnParams p{};
  p.q = a.q;
  p.out = a.out;
  p.k_cache = a.k_cache;
  p.v_cache = a.v_cache;
  p.block_table = a.block_table;
  p.q_start = a.q_start;
  p.ctx_len = a.ctx_len;
  p.ldq = a.ldq;
  p.ldo = a.ldo;
  p.block_stride = l.block_stride;
  p.head_stride = l.head_stride;
  p.block_size = l.block_size;
  p.head_dim = l.head_dim;
  p.n_heads = a.n_heads;
  p.group = a.n_heads / l.n_kv_heads;
  p.max_blocks_per_seq = a.max_blocks_per_seq;
  p.scale_log2 = a.scale * kLog2e;
  p.mask = a.mask;
  const int64_t vec = 16 / int64_t(eet::dtype_size(a.dtype));
  bool aligned = l.head_dim % vec == 0 && a.ldq % vec == 0 && l.head_stride % vec == 0 && l.block_stride % vec == 0;
  for (const void* ptr : {a.q, a.k_cache, a.v_cache}) aligned = aligned && reinterpret_cast<uintptr_t>(ptr) % 16 == 0;
  p.vec = aligned;

  if (a.max_q_len > 1) {
    p.q_tiles = int32_t(ceil_div(a.max_q_len, Tl::kBq));
    if (int64_t(a.batch) * p.q_tiles > INT32_MAX) {
      eet::throw_error(eet::ErrorCode::Unsupported, "attention: batch * query tiles exceeds the grid limit");
    }
  } else {
    const eet::AttentionDecodeSplit split = eet::attention_decode_split(a.batch, a.n_heads, a.max_ctx_len);
    p.chunk_len = split.chunk_len;
    p.n_chunks = split.n_chunks;
    p.head_groups = int32_t(ceil_div(p.group, Tl::kHeads));
    if (int64_t(a.batch) * p.n_chunks > INT32_MAX) {
      eet::throw_error(eet::ErrorCode::Unsupported, "attention: batch * context chunks exceeds the grid limit");
    }
    if (p.n_chunks > 1) {  // the workspace layout of engine/ops.h; validate() checked its size
      p.part_ml = static_cast<float*>(a.workspace);
      p.part_acc = p.part_ml + int64_t(a.batch) * a.n_heads * p.n_chunks * 2;
    }
  }
  const int ni = l.head_dim <= 64 ? 2 : l.head_dim <= 128 ? 4 : 8;
  EET_DISPATCH_FLOAT(a.dtype, T, {
    switch (ni) {
      case 2: attention_launch<T, 2>(a, p, stream); break;
      case 4: attention_launch<T, 4>(a, p, stream); break;
      default: attention_launch<T, 8>(a, p, stream); break;
    }
  });
}

}  // namespace EET_KNS

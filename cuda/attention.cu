// Fused masked attention over the paged KV cache (engine/ops.h "fused masked attention").
//   q    (T, n_heads, D)  packed queries: sequence b owns rows q_start[b] .. q_start[b+1]-1, the last n_q tokens of
//                         its ctx_len[b]-token context; query i of b sits at position ctx_len[b] - n_q + i
//   K, V paged cache: key k of sequence b is token k % block_size of block block_table[b][k / block_size]
//   out  (T, n_heads, D)  softmax(q·Kᵀ * scale) · V, per query head h over kv head h / (n_heads / n_kv_heads)
// The mask (eet::AttnMask): a query at position pos sees all ctx_len[b] keys (bidirectional, BERT), keys 0..pos
// (causal) or keys pos..ctx_len[b]-1 (anti-causal, DecBERT). Masks and per-sequence lengths are applied in the
// kernels; no mask tensor exists. T5's relative position bias (AttentionArgs::rel_bias) is computed there too, from
// the key and query positions (t5_relative_bucket, engine/relpos.h) and a per-head table: added to the score, times
// log2(e) as the scores are in the log2 domain. D is any value in [8, 256].
//
// All math is fp32 (scores kept in the log2 domain: q is pre-scaled by scale * log2(e), softmax uses exp2f), the
// output is rounded once to the dtype. Two paths, chosen by the host from max_q_len:
//
// 1. Prompt pass (any n_q; max_q_len > 1). float16 / bfloat16 with head_dim a multiple of 16 (<= 256) run on tensor
//    cores: attention_prefill_mma_kernel (cuda/attention_prefill_mma.cu: 64-query tiles, the probabilities rounded
//    to the dtype for P·V, its header derives the error that adds). The rest (float32, other head dims, and calls
//    with AttentionArgs::simt_prefill, a test / bench switch) run attention_prefill_kernel, described here: SIMT,
//    flash-attention style with online softmax.
//    One block of 128 threads (4 warps) per (query tile, head, sequence); grid.x = batch * q_tiles with
//    q_tiles = ceil(max_q_len / kBq), tiles past a sequence's n_q return at once (whole block, before any barrier).
//    The Q tile and each 32-key K/V tile, read through the block table, sit in shared memory as fp32; the tile walk
//    (RowTiles, attention.cuh) gives a warp ROWS query rows: for the scores a lane owns one key, for the online
//    softmax 32 / ROWS lanes own a row, for P·V a lane owns dims lane + 32*i (i < NI, NI = 2/4/8 for
//    D <= 64/128/256) of its ROWS output rows, in registers. ROWS = 8 (32-query tiles), or 4 (16-query tiles) where
//    the device's per-block shared memory is too small for the 8-row tile (tile_rows(): head_dim 256 on sm_86/89).
//    Causal tiles stop at the key of the tile's last query and anti-causal tiles start at the key of its first
//    query: keys no row of the tile sees are skipped, not masked, so only key tiles crossing the diagonal are masked
//    partially (anti-causal: exactly the first). The tiles with the most keys are scheduled first (a sequence's last
//    query tiles when causal, its first when anti-causal).
// 2. Decode (every n_q == 1; max_q_len == 1): flash-decoding. One block of 4 warps per (sequence, kv head, group
//    of heads_per_block <= 8 of its query heads, chunk of the context): K/V are read once for the query heads of a
//    group (GQA/MQA). Each warp walks 32-key slices of the chunk (lane = key for the scores, with 16-byte K loads
//    when aligned; lane = dims for P·V, V rows read coalesced), the 4 warps' states are merged in shared memory.
//    eet::attention_decode_split() (engine/op_workspace.cpp) chooses the head groups and chunks from the device's SM
//    count and the context: whole GQA groups and long chunks when there are blocks enough, smaller groups and then
//    chunks down to a few keys (a chunk may end anywhere, inside a warp's slice or a cache block) so that short
//    contexts at small batches still give a block per SM. With one chunk the block writes the output; with several
//    each block writes its partial (max, sum, unnormalised output) to the workspace and attention_combine_kernel
//    merges them, one block per (sequence, query head). No mask: a lone query at the end of its context sees every
//    key when bidirectional or causal, and validate() admits anti-causal here only for 1-token contexts, where the
//    masks agree.
// The workspace layout and eet::attention_workspace_bytes() are in engine/ops.h, computed from the same split.
// The shared-prefix op (shared_attention.cu) reuses the decode path through attention_decode_run(): key_begin starts
// each sequence's keys after the ones its group shares, every block writes partials (part_stride = n_chunks + 1
// slots, the extra one for the shared part of a chunk that the shared length cuts), and the combine merges those.
#include "attention.cuh"

namespace EET_KNS {

namespace {

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
template <typename T, int NI, int ROWS>
__global__ __launch_bounds__(AttnTile::kBlock) void attention_prefill_kernel(AttnParams p) {
  using Tl = AttnTile;
  using Tiles = RowTiles<NI, ROWS>;
  const bool anti = p.mask == eet::AttnMask::AntiCausal, causal = p.mask == eet::AttnMask::Causal;
  const int b = int(blockIdx.x) / p.q_tiles, order = int(blockIdx.x) % p.q_tiles;
  const int tile = anti ? order : p.q_tiles - 1 - order;  // the tiles with the most keys first
  const int h = blockIdx.y;
  const int q_begin = p.q_start[b], n_q = p.q_start[b + 1] - q_begin, ctx = p.ctx_len[b];
  const int qt0 = tile * Tiles::kBq;
  if (qt0 >= n_q) return;  // whole block, before any barrier
  const int D = p.head_dim, kvh = h / p.group;
  const int rows = min(Tiles::kBq, n_q - qt0);
  const int pos0 = ctx - n_q + qt0;  // position of the tile's first query
  const int key_begin = anti ? pos0 : 0;                           // no query of the tile sees a key before
  const int key_end = causal ? min(ctx, pos0 + rows) : ctx;        // ... or after these

  EXTERN_SHARED(float, smem);
  Tiles t(smem, D);
  const int64_t q_row0 = int64_t(q_begin) + qt0;
  t.load_queries(static_cast<const T*>(p.q), p.vec, p.scale_log2,
                 [&](int r) -> int64_t { return r < rows ? (q_row0 + r) * p.ldq + int64_t(h) * D : -1; });
  const T* kc = static_cast<const T*>(p.k_cache);
  const T* vc = static_cast<const T*>(p.v_cache);
  // Every row sees a key of the first tile (key 0; anti-causal: its own position, < key_begin + kBk), so the
  // running max is finite from then on. Pad rows (past n_q) mask as the tile's last query.
  for (int kt = key_begin; kt < key_end; kt += Tl::kBk) {
    const int nk = min(Tl::kBk, key_end - kt);
    const auto key_off = [&](int r) -> int64_t { return r < nk ? key_offset(p, b, kvh, kt + r) : -1; };
    const auto visible = [&](int r, int lane) {
      const int key = kt + lane, qpos = pos0 + min(t.row0 + r, rows - 1);
      return lane < nk && (causal ? key <= qpos : !anti || key >= qpos);
    };
    if (p.rel.table) {
      t.tile(kc, vc, p.vec, nk, key_off, visible,
             [&](int r, int lane) { return rel_bias_log2(p, h, kt + lane - (pos0 + min(t.row0 + r, rows - 1))); });
    } else {
      t.tile(kc, vc, p.vec, nk, key_off, visible);
    }
  }

  __syncwarp(kFullMask);  // every lane has read the last tile's rescale factors
  if (t.my_c0 == 0) t.rs[t.my_row] = 1.0f / t.l_row;
  __syncwarp(kFullMask);
  const int row0 = t.row0, lane = t.lane;
  const float* rs = t.rs;
  T* out = static_cast<T*>(p.out);
#pragma unroll
  for (int r = 0; r < ROWS; ++r) {
    if (row0 + r >= rows) break;
    const float inv = rs[row0 + r];
    T* orow = out + (q_row0 + row0 + r) * p.ldo + int64_t(h) * D;
#pragma unroll
    for (int i = 0; i < NI; ++i) {
      const int d = lane + 32 * i;
      if (d < D) orow[d] = from_f32<T>(t.o[r][i] * inv);
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
  const int k_begin = max(p.key_begin ? p.key_begin[b] : 0, chunk * p.chunk_len);
  const int k_end = min(ctx, (chunk + 1) * p.chunk_len);
  if (k_begin >= k_end) return;  // whole block, before any barrier
  const int h0 = kvh * p.group + hg * p.heads_per_block, ng = min(p.heads_per_block, p.group - hg * p.heads_per_block);
  const int D = p.head_dim, DP = (D + 3) & ~3;
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int64_t q_row = p.q_start ? p.q_start[b] : b;  // shared-prefix op: one query per sequence, row b

  EXTERN_SHARED(float, smem);
  int64_t* offs = reinterpret_cast<int64_t*>(smem);  // (W, 32) cache offsets of each warp's current keys
  float* qs = smem + 2 * W * 32;                      // (HG, DP) queries * scale * log2(e); rows ng.. zero
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
    if (valid && p.rel.table) {  // T5: the query sits at ctx - 1
#pragma unroll
      for (int g = 0; g < HG; ++g) {
        if (g < ng) s[g] = rel_bias_log2(p, h0 + g, key - (ctx - 1));
      }
    }
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
  const int64_t part0 = (int64_t(b) * p.n_heads + h0) * p.part_stride + chunk;  // head h0 + g: + g*part_stride
  for (int e = threadIdx.x; e < ng * D; e += Tl::kBlock) {
    const int g = e / D, d = e - g * D;
    float mg = wm[g];
    for (int w = 1; w < W; ++w) mg = fmaxf(mg, wm[w * HG + g]);
    float lg = 0.0f;
    for (int w = 0; w < W; ++w) lg += wl[w * HG + g] * exp2f(wm[w * HG + g] - mg);
    if (p.part_acc == nullptr) {
      out[q_row * p.ldo + int64_t(h0 + g) * D + d] = from_f32<T>(acc[e] / lg);
    } else {
      const int64_t part = part0 + int64_t(g) * p.part_stride;
      p.part_acc[part * D + d] = acc[e];
      if (d == 0) {
        p.part_ml[part * 2] = mg;
        p.part_ml[part * 2 + 1] = lg;
      }
    }
  }
}

// Slot of partial i (i <= n_chunks) of a sequence with context ctx whose keys from k0 on are its own (k0 = 0 but for
// the shared-prefix op), or -1 where that partial does not exist. Chunk c (slot c) exists when it lies wholly in the
// shared keys or has keys of its own; the shared part of a chunk cut by k0 is slot n_chunks.
__device__ __forceinline__ int combine_slot(const AttnParams& p, int i, int k0, int ctx) {
  const int L = p.chunk_len, c0 = i * L, c1 = c0 + L;  // < 2^21 + 4096: max_ctx_len <= 2^20 (validate)
  if (i == p.n_chunks) return k0 % L != 0 ? i : -1;
  return c1 <= k0 || max(k0, c0) < min(ctx, c1) ? i : -1;
}

// Merges the partials of one (sequence, query head): out = Σ acc_c·2^(m_c−M) / Σ l_c·2^(m_c−M).
template <typename T, int BLOCK>
__global__ __launch_bounds__(BLOCK) void attention_combine_kernel(AttnParams p) {
  const int b = blockIdx.x, h = blockIdx.y, D = p.head_dim;
  const int ctx = p.ctx_len[b], k0 = p.key_begin ? p.key_begin[b] : 0;
  const int n = p.part_stride;  // candidate slots; combine_slot() says which exist
  const int64_t part0 = (int64_t(b) * p.n_heads + h) * p.part_stride;
  EXTERN_SHARED(float, smem);
  float* red = smem;     // 32 floats of block_reduce scratch
  float* w = smem + 32;  // (part_stride) weight 2^(m_c - M) of each slot, 0 for the missing ones

  float mx = -INFINITY;
  for (int c = threadIdx.x; c < n; c += BLOCK) {
    if (combine_slot(p, c, k0, ctx) >= 0) mx = fmaxf(mx, p.part_ml[(part0 + c) * 2]);
  }
  mx = block_reduce_max<BLOCK>(mx, red);
  float sum = 0.0f;
  for (int c = threadIdx.x; c < n; c += BLOCK) {
    const bool has = combine_slot(p, c, k0, ctx) >= 0;
    const float wc = has ? exp2f(p.part_ml[(part0 + c) * 2] - mx) : 0.0f;
    w[c] = wc;
    if (has) sum += wc * p.part_ml[(part0 + c) * 2 + 1];
  }
  sum = block_reduce_sum<BLOCK>(sum, red);  // its barriers also publish w
  const float inv = 1.0f / sum;
  T* out = static_cast<T*>(p.out) + int64_t(p.q_start ? p.q_start[b] : b) * p.ldo + int64_t(h) * D;
  for (int d = threadIdx.x; d < D; d += BLOCK) {
    float a = 0.0f;
    for (int c = 0; c < n; ++c) {
      if (w[c] != 0.0f) a = fmaf(w[c], p.part_acc[(part0 + c) * D + d], a);  // missing slots hold stale data
    }
    out[d] = from_f32<T>(a * inv);
  }
}

// ---- host side ----------------------------------------------------------------------------------------------------
namespace {

template <typename T, int NI, int ROWS>
void attention_prefill_launch(const AttnParams& p, int32_t batch, eet::Stream stream) {
  using Tl = AttnTile;
  launch(attention_prefill_kernel<T, NI, ROWS>, dim3(unsigned(int64_t(batch) * p.q_tiles), unsigned(p.n_heads)),
         dim3(Tl::kBlock), tile_smem_bytes(p.head_dim, ROWS), stream, p);
}

template <typename T, int NI>
void attention_decode_launch(const AttnParams& p, int32_t batch, int32_t n_kv_heads, eet::Stream stream) {
  using Tl = AttnTile;
  const int D = p.head_dim, DP = (D + 3) & ~3;
  const size_t smem = sizeof(float) * size_t(2 * Tl::kWarps * 32 + Tl::kHeads * DP + Tl::kWarps * Tl::kHeads * 32 +
                                             2 * Tl::kWarps * Tl::kHeads + Tl::kHeads * D);
  if (p.n_chunks > 0) {
    launch(attention_decode_kernel<T, NI>, dim3(unsigned(int64_t(batch) * p.n_chunks), unsigned(n_kv_heads * p.head_groups)),
           dim3(Tl::kBlock), smem, stream, p);
  }
  if (p.part_acc) {
    launch(attention_combine_kernel<T, kCombineBlock>, dim3(unsigned(batch), unsigned(p.n_heads)), dim3(kCombineBlock),
           sizeof(float) * size_t(32 + p.part_stride), stream, p);
  }
}

template <typename T>
void attention_decode_dispatch(const AttnParams& p, int32_t batch, int32_t n_kv_heads, eet::Stream stream) {
  const int ni = p.head_dim <= 64 ? 2 : p.head_dim <= 128 ? 4 : 8;
  switch (ni) {
    case 2: attention_decode_launch<T, 2>(p, batch, n_kv_heads, stream); break;
    case 4: attention_decode_launch<T, 4>(p, batch, n_kv_heads, stream); break;
    default: attention_decode_launch<T, 8>(p, batch, n_kv_heads, stream); break;
  }
}

}  // namespace

void op_attention(const eet::AttentionArgs& a, eet::Stream stream) {
  using Tl = AttnTile;
  const eet::KvLayout& l = a.layout;
  AttnParams p = attn_params(a.dtype, a.q, a.out, a.k_cache, a.v_cache, l, a.block_table, a.ldq, a.ldo, a.n_heads,
                             a.max_blocks_per_seq, a.scale);
  p.q_start = a.q_start;
  p.ctx_len = a.ctx_len;
  p.mask = a.mask;
  p.rel = a.rel_bias;

  const auto set_q_tiles = [&](int tile_queries) {
    p.q_tiles = int32_t(ceil_div(a.max_q_len, tile_queries));
    if (int64_t(a.batch) * p.q_tiles > INT32_MAX) {
      eet::throw_error(eet::ErrorCode::Unsupported, "attention: batch * query tiles exceeds the grid limit");
    }
  };
  if (a.max_q_len > 1 && !a.simt_prefill && attention_prefill_mma_supported(a.dtype, l.head_dim)) {
    set_q_tiles(kMmaAttnRows);
    attention_prefill_mma_run(p, a.dtype, a.batch, stream);
    return;
  }
  const int rows = a.max_q_len > 1 ? tile_rows(l.head_dim, "attention") : Tl::kRows;
  if (a.max_q_len > 1) {
    set_q_tiles(Tl::kWarps * rows);
  } else {
    set_decode_split(p, eet::attention_decode_split(eet::decode_shape(a)));
    if (int64_t(a.batch) * p.n_chunks > INT32_MAX) {
      eet::throw_error(eet::ErrorCode::Unsupported, "attention: batch * context chunks exceeds the grid limit");
    }
    p.part_stride = p.n_chunks;
    if (p.n_chunks > 1) {  // the workspace layout of engine/ops.h; validate() checked its size
      p.part_ml = static_cast<float*>(a.workspace);
      p.part_acc = p.part_ml + int64_t(a.batch) * a.n_heads * p.n_chunks * 2;
    }
    attention_decode_run(p, a.dtype, a.batch, l.n_kv_heads, stream);
    return;
  }
  const int ni = l.head_dim <= 64 ? 2 : l.head_dim <= 128 ? 4 : 8;  // tile_rows(): the small tile only at ni 8
  EET_DISPATCH_FLOAT(a.dtype, T, {
    switch (ni) {
      case 2: attention_prefill_launch<T, 2, Tl::kRows>(p, a.batch, stream); break;
      case 4: attention_prefill_launch<T, 4, Tl::kRows>(p, a.batch, stream); break;
      default:
        if (rows == Tl::kRows) attention_prefill_launch<T, 8, Tl::kRows>(p, a.batch, stream);
        else attention_prefill_launch<T, 8, Tl::kRowsSmall>(p, a.batch, stream);
        break;
    }
  });
}

void attention_decode_run(const AttnParams& p, eet::DType dtype, int32_t batch, int32_t n_kv_heads, eet::Stream stream) {
  EET_DISPATCH_FLOAT(dtype, T, attention_decode_dispatch<T>(p, batch, n_kv_heads, stream));
}

}  // namespace EET_KNS

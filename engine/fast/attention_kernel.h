// Fused masked attention over the paged KV cache (ops.h AttentionArgs) over a vector type V (vec_*.h): included
// by each isa_*.cpp inside its own namespace, after V.
//
// One work item = one sequence, one kv head, a tile of up to kQT of its query tokens; its rows are those tokens ×
// the query heads that read that kv head (GQA: every key is converted once for all of them). Keys go by tiles of
// kKT: the tile's K and V rows are converted once to fp32 (zero-padded to the vector width); each row's kKT
// scores are vector dot products; the mask (ops.h AttnMask) and the lengths, e^x and the online softmax (running max and sum,
// flash-attention style) work on whole vectors of scores, and V is accumulated with one broadcast-FMA per key and
// vector. The output is acc / sum, rounded once to the dtype.
#pragma once

constexpr int kQT = eet::fast::kAttentionQueryTile;
constexpr int kKT = 16;  // keys per tile: one zmm of scores (two ymm)
static_assert(kKT % V::W == 0, "a key tile is whole vectors");

inline int64_t attn_dp(int64_t d) { return (d + V::W - 1) / V::W * V::W; }

// One cached row of D elements as fp32 into dst (Dp floats, zero beyond D).
inline void attn_row_f32(eet::DType t, const void* src, int64_t D, int64_t Dp, float* dst) {
  int64_t d = 0;
  switch (t) {
    case eet::DType::F16:
      for (; d + V::W <= D; d += V::W) V::store(dst + d, V::load_f16(static_cast<const uint16_t*>(src) + d));
      break;
    case eet::DType::BF16:
      for (; d + V::W <= D; d += V::W) V::store(dst + d, V::load_bf16(static_cast<const uint16_t*>(src) + d));
      break;
    default:
      for (; d + V::W <= D; d += V::W) V::store(dst + d, V::load(static_cast<const float*>(src) + d));
  }
  for (; d < D; ++d) dst[d] = gemm_load(t, src, d);
  for (; d < Dp; ++d) dst[d] = 0.0f;
}

inline int64_t attention_scratch_floats(const eet::AttentionArgs& a) {
  const int64_t Dp = attn_dp(a.layout.head_dim), group = a.n_heads / a.layout.n_kv_heads;
  const int64_t R = kQT * group;
  return R * (2 * Dp + 2) + 2 * Dp * kKT + kKT;
}

inline void attention_item(const eet::AttentionArgs& a, const eet::fast::AttentionItem& it, float* scratch) {
  using F = typename V::F;
  const eet::KvLayout& l = a.layout;
  const int64_t D = l.head_dim, Dp = attn_dp(D), group = a.n_heads / l.n_kv_heads;
  const int32_t b = it.seq;
  const int64_t n_q = a.q_start[b + 1] - a.q_start[b], ctx = a.ctx_len[b];
  const int64_t pos0 = ctx - n_q + (it.q0 - a.q_start[b]);  // position of the tile's first query
  const int64_t R = int64_t(it.q1 - it.q0) * group;
  float* q = scratch;               // (R, Dp) scaled queries
  float* acc = q + R * Dp;          // (R, Dp)
  float* mx = acc + R * Dp;         // (R) running max
  float* sum = mx + R;              // (R) running sum of e^(score - max)
  float* kb = sum + R;              // (kKT, Dp) this key tile's K in fp32, zero-padded
  float* vt = kb + kKT * Dp;        // (kKT, Dp) and its V
  float* p = vt + kKT * Dp;         // (kKT) one row's probabilities
  const float* krow[kKT];           // this tile's key and value rows in fp32 (in kb / vt, or in the cache)
  const float* vrow[kKT];
  const bool direct = a.dtype == eet::DType::F32 && D == Dp;

  for (int64_t r = 0; r < R; ++r) {
    const int64_t t = it.q0 + r / group, h = int64_t(it.kv_head) * group + r % group;
    for (int64_t d = 0; d < Dp; ++d) q[r * Dp + d] = d < D ? gemm_load(a.dtype, a.q, t * a.ldq + h * D + d) * a.scale : 0.0f;
    for (int64_t d = 0; d < Dp; ++d) acc[r * Dp + d] = 0.0f;
    mx[r] = -INFINITY;
    sum[r] = 0.0f;
  }
  // Keys a row sees (ops.h AttnMask): bidirectional all ctx; causal 0..pos; anti-causal pos..ctx-1. The item's key
  // loop covers the union over its rows: [k_first, k_end).
  const int64_t last_pos = pos0 + (it.q1 - it.q0) - 1;
  const bool causal = a.mask == eet::AttnMask::Causal, anti = a.mask == eet::AttnMask::AntiCausal;
  const int64_t k_first = anti ? pos0 : 0;
  const int64_t k_end = causal ? last_pos + 1 : ctx;
  const int32_t* table = a.block_table + int64_t(b) * a.max_blocks_per_seq;
  const size_t es = eet::dtype_size(a.dtype);

  for (int64_t k0 = k_first; k0 < k_end; k0 += kKT) {
    const int64_t nk = std::min<int64_t>(kKT, k_end - k0);
    for (int64_t j = 0; j < nk; ++j) {
      const int64_t key = k0 + j;
      const int64_t off = int64_t(table[key / l.block_size]) * l.block_stride + int64_t(it.kv_head) * l.head_stride +
                          (key % l.block_size) * D;
      const char* kp = static_cast<const char*>(a.k_cache) + off * int64_t(es);
      const char* vp = static_cast<const char*>(a.v_cache) + off * int64_t(es);
      if (direct) {  // fp32 rows of whole vectors: read in place
        krow[j] = reinterpret_cast<const float*>(kp);
        vrow[j] = reinterpret_cast<const float*>(vp);
      } else {
        attn_row_f32(a.dtype, kp, D, Dp, kb + j * Dp);
        attn_row_f32(a.dtype, vp, D, Dp, vt + j * Dp);
        krow[j] = kb + j * Dp;
        vrow[j] = vt + j * Dp;
      }
    }
    // The next tile's K and V rows, asked for now: a tile is at most a block or two of the paged cache, runs of a
    // few KB that the hardware prefetcher does not pick up by itself before the tile is read.
    for (int64_t key = k0 + kKT; key < std::min<int64_t>(k0 + 2 * kKT, k_end); ++key) {
      const int64_t off = int64_t(table[key / l.block_size]) * l.block_stride + int64_t(it.kv_head) * l.head_stride +
                          (key % l.block_size) * D;
      for (int64_t byte = 0; byte < D * int64_t(es); byte += 64) {
        __builtin_prefetch(static_cast<const char*>(a.k_cache) + off * int64_t(es) + byte);
        __builtin_prefetch(static_cast<const char*>(a.v_cache) + off * int64_t(es) + byte);
      }
    }
    for (int64_t r = 0; r < R; ++r) {
      const int64_t pos = pos0 + r / group;
      const int64_t visible = causal ? pos + 1 : ctx;  // keys [lo, visible) for this row
      const int64_t valid = std::min<int64_t>(nk, visible - k0);
      const int64_t lo = anti ? std::max<int64_t>(0, pos - k0) : 0;  // tile keys before the row's own: masked
      if (valid <= lo) continue;
      const float* qr = q + r * Dp;
      for (int64_t j = 0; j < lo; ++j) p[j] = -INFINITY;  // e^-inf = 0: they add nothing to the sum or to P·V
      for (int64_t j = lo; j < valid; ++j) {
        F dot = V::zero();
        for (int64_t d = 0; d < Dp; d += V::W) dot = V::fma(V::load(qr + d), V::load(krow[j] + d), dot);
        p[j] = V::hsum(dot);
      }
      F s[kKT / V::W];
      float m_tile = -INFINITY;
#pragma GCC unroll 4
      for (int v = 0; v < kKT / V::W; ++v) {
        s[v] = V::mask_from(V::load(p + v * V::W), int(valid) - v * V::W);
        m_tile = std::max(m_tile, V::hmax(s[v]));
      }
      const float m_new = std::max(mx[r], m_tile);
      const float corr = std::exp(mx[r] - m_new);  // 0 on the first tile (max was -inf)
      float tile_sum = 0.0f;
#pragma GCC unroll 4
      for (int v = 0; v < kKT / V::W; ++v) {
        const F e = V::exp(V::sub(s[v], V::set1(m_new)));
        tile_sum += V::hsum(e);
        V::store(p + v * V::W, e);
      }
      sum[r] = sum[r] * corr + tile_sum;
      mx[r] = m_new;
      float* ar = acc + r * Dp;
      const F c = V::set1(corr);
      for (int64_t d = 0; d < Dp; d += V::W) {
        F o = V::mul(V::load(ar + d), c);
        for (int64_t j = lo; j < valid; ++j) o = V::fma(V::set1(p[j]), V::load(vrow[j] + d), o);
        V::store(ar + d, o);
      }
    }
  }
  for (int64_t r = 0; r < R; ++r) {
    const int64_t t = it.q0 + r / group, h = int64_t(it.kv_head) * group + r % group;
    const float inv = 1.0f / sum[r];
    for (int64_t d = 0; d < D; ++d) gemm_store(a.dtype, a.out, t * a.ldo + h * D + d, acc[r * Dp + d] * inv);
  }
}

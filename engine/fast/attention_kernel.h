// Fused masked attention over the paged KV cache (ops.h AttentionArgs) over a vector type V (vec_*.h): included
// by each isa_*.cpp inside its own namespace, after V.
//
// One work item = one sequence, one kv head, a tile of up to kQT of its query tokens; its rows are those tokens ×
// the query heads that read that kv head (GQA: every key is converted once for all of them). Keys go by tiles of
// kKT: the tile's K and V rows are converted once to fp32 (zero-padded to the vector width); each row's kKT
// scores are vector dot products; the mask (ops.h AttnMask) and the lengths, e^x and the online softmax (running max and sum,
// flash-attention style) work on whole vectors of scores, and V is accumulated with one broadcast-FMA per key and
// vector. T5's relative position bias (rel_bias.table set) is added to each score before the softmax, its bucket
// from t5_relative_bucket() (engine/relpos.h). The output is acc / sum, rounded once to the dtype.
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

// The K and V rows of keys [k0, k0 + nk) of kv head `kv_head`, found through `table`, as fp32: in place when the
// cache is fp32 of whole vectors (direct), else converted into kb / vt. Then the next tile's rows (up to k_end) are
// asked for: a tile is a block or two of the paged cache, runs of a few KB that the hardware prefetcher does not pick
// up by itself before the tile is read.
inline void attn_load_tile(const eet::KvLayout& l, eet::DType dtype, const void* k_cache, const void* v_cache,
                           const int32_t* table, int32_t kv_head, int64_t k0, int64_t nk, int64_t k_end, bool direct,
                           float* kb, float* vt, const float** krow, const float** vrow) {
  const int64_t D = l.head_dim, Dp = attn_dp(D);
  const int64_t es = int64_t(eet::dtype_size(dtype));
  const auto at = [&](const void* cache, int64_t key) {
    const int64_t off = int64_t(table[key / l.block_size]) * l.block_stride + int64_t(kv_head) * l.head_stride + (key % l.block_size) * D;
    return static_cast<const char*>(cache) + off * es;
  };
  for (int64_t j = 0; j < nk; ++j) {
    const char* kp = at(k_cache, k0 + j);
    const char* vp = at(v_cache, k0 + j);
    if (direct) {
      krow[j] = reinterpret_cast<const float*>(kp);
      vrow[j] = reinterpret_cast<const float*>(vp);
    } else {
      attn_row_f32(dtype, kp, D, Dp, kb + j * Dp);
      attn_row_f32(dtype, vp, D, Dp, vt + j * Dp);
      krow[j] = kb + j * Dp;
      vrow[j] = vt + j * Dp;
    }
  }
  for (int64_t key = k0 + kKT; key < std::min<int64_t>(k0 + 2 * kKT, k_end); ++key) {
    const char* kp = at(k_cache, key);
    const char* vp = at(v_cache, key);
    for (int64_t byte = 0; byte < D * es; byte += 64) {
      __builtin_prefetch(kp + byte);
      __builtin_prefetch(vp + byte);
    }
  }
}

// One key tile in the online softmax of one query row qr (scaled, Dp floats): keys [lo, valid) of the tile are
// visible (at least one). Updates the row's running max mx, sum and unnormalised output ar (Dp floats); p is kKT
// floats of scratch. With rb (T5's relative position bias), the row's head's bucket table trow is added to each
// score, key j of the tile sitting at relative position rel0 + j from the query.
inline void attn_row_tile(const float* qr, const float* const* krow, const float* const* vrow, int64_t lo, int64_t valid,
                          int64_t Dp, float& mx, float& sum, float* ar, float* p, const eet::AttnRelBias* rb = nullptr,
                          const float* trow = nullptr, int64_t rel0 = 0) {
  using F = typename V::F;
  for (int64_t j = 0; j < lo; ++j) p[j] = -INFINITY;  // e^-inf = 0: they add nothing to the sum or to P·V
  for (int64_t j = lo; j < valid; ++j) {
    F dot = V::zero();
    for (int64_t d = 0; d < Dp; d += V::W) dot = V::fma(V::load(qr + d), V::load(krow[j] + d), dot);
    p[j] = V::hsum(dot);
  }
  if (rb) {
    for (int64_t j = lo; j < valid; ++j) p[j] += trow[t5_relative_bucket(int32_t(rel0 + j), rb->bidirectional, rb->num_buckets, rb->max_distance)];
  }
  F s[kKT / V::W];
  float m_tile = -INFINITY;
#pragma GCC unroll 4
  for (int v = 0; v < kKT / V::W; ++v) {
    s[v] = V::mask_from(V::load(p + v * V::W), int(valid) - v * V::W);
    m_tile = std::max(m_tile, V::hmax(s[v]));
  }
  const float m_new = std::max(mx, m_tile);
  const float corr = std::exp(mx - m_new);  // 0 on the first tile (max was -inf)
  float tile_sum = 0.0f;
#pragma GCC unroll 4
  for (int v = 0; v < kKT / V::W; ++v) {
    const F e = V::exp(V::sub(s[v], V::set1(m_new)));
    tile_sum += V::hsum(e);
    V::store(p + v * V::W, e);
  }
  sum = sum * corr + tile_sum;
  mx = m_new;
  const F c = V::set1(corr);
  for (int64_t d = 0; d < Dp; d += V::W) {
    F o = V::mul(V::load(ar + d), c);
    for (int64_t j = lo; j < valid; ++j) o = V::fma(V::set1(p[j]), V::load(vrow[j] + d), o);
    V::store(ar + d, o);
  }
}

// Rows' query (scaled, zero-padded to Dp) and a fresh softmax state.
inline void attn_row_start(eet::DType dtype, const void* q, int64_t q_off, int64_t D, int64_t Dp, float scale,
                           float* qr, float* ar, float& mx, float& sum) {
  for (int64_t d = 0; d < Dp; ++d) qr[d] = d < D ? gemm_load(dtype, q, q_off + d) * scale : 0.0f;
  for (int64_t d = 0; d < Dp; ++d) ar[d] = 0.0f;
  mx = -INFINITY;
  sum = 0.0f;
}

inline void attention_item(const eet::AttentionArgs& a, const eet::fast::AttentionItem& it, float* scratch) {
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
    attn_row_start(a.dtype, a.q, t * a.ldq + h * D, D, Dp, a.scale, q + r * Dp, acc + r * Dp, mx[r], sum[r]);
  }
  // Keys a row sees (ops.h AttnMask): bidirectional all ctx; causal 0..pos; anti-causal pos..ctx-1. The item's key
  // loop covers the union over its rows: [k_first, k_end).
  const int64_t last_pos = pos0 + (it.q1 - it.q0) - 1;
  const bool causal = a.mask == eet::AttnMask::Causal, anti = a.mask == eet::AttnMask::AntiCausal;
  const int64_t k_first = anti ? pos0 : 0;
  const int64_t k_end = causal ? last_pos + 1 : ctx;
  const int32_t* table = a.block_table + int64_t(b) * a.max_blocks_per_seq;

  for (int64_t k0 = k_first; k0 < k_end; k0 += kKT) {
    const int64_t nk = std::min<int64_t>(kKT, k_end - k0);
    attn_load_tile(l, a.dtype, a.k_cache, a.v_cache, table, it.kv_head, k0, nk, k_end, direct, kb, vt, krow, vrow);
    for (int64_t r = 0; r < R; ++r) {
      const int64_t pos = pos0 + r / group;
      const int64_t visible = causal ? pos + 1 : ctx;  // keys [lo, visible) for this row
      const int64_t valid = std::min<int64_t>(nk, visible - k0);
      const int64_t lo = anti ? std::max<int64_t>(0, pos - k0) : 0;  // tile keys before the row's own: masked
      if (valid <= lo) continue;
      const eet::AttnRelBias& rb = a.rel_bias;
      const float* trow = rb.table ? rb.table + (int64_t(it.kv_head) * group + r % group) * rb.num_buckets : nullptr;
      attn_row_tile(q + r * Dp, krow, vrow, lo, valid, Dp, mx[r], sum[r], acc + r * Dp, p, trow ? &rb : nullptr, trow, k0 - pos);
    }
  }
  for (int64_t r = 0; r < R; ++r) {
    const int64_t t = it.q0 + r / group, h = int64_t(it.kv_head) * group + r % group;
    const float inv = 1.0f / sum[r];
    for (int64_t d = 0; d < D; ++d) gemm_store(a.dtype, a.out, t * a.ldo + h * D + d, acc[r * Dp + d] * inv);
  }
}

// ---- shared-prefix decode attention (ops.h SharedAttentionArgs) ------------------------------------------------------
// One item = one group (or one sequence in none) and one kv head; its rows are the members' single queries × the
// query heads of that kv head. The shared keys [0, shared_len) are read once, through the group leader's block table,
// for all rows (each key converted once, each row updated); then each member's own keys [shared_len, ctx_len)
// continue that member's rows' online softmax through its own table. No merge is needed: on the cpu one item runs
// both parts in order.

inline int64_t shared_attention_scratch_floats(const eet::SharedAttentionArgs& a) {
  const int64_t Dp = attn_dp(a.layout.head_dim), group = a.n_heads / a.layout.n_kv_heads;
  const int64_t R = int64_t(std::max(1, a.max_group_size)) * group;
  return R * (2 * Dp + 2) + 2 * Dp * kKT + kKT;
}

inline void shared_attention_item(const eet::SharedAttentionArgs& a, const eet::fast::SharedItem& it, float* scratch) {
  const eet::KvLayout& l = a.layout;
  const int64_t D = l.head_dim, Dp = attn_dp(D), group = a.n_heads / l.n_kv_heads;
  const int64_t members = it.n;
  const int64_t R = members * group;
  float* q = scratch;          // (R, Dp): member i's query heads of this kv head are rows i*group ..
  float* acc = q + R * Dp;
  float* mx = acc + R * Dp;
  float* sum = mx + R;
  float* kb = sum + R;
  float* vt = kb + kKT * Dp;
  float* p = vt + kKT * Dp;
  const float* krow[kKT];
  const float* vrow[kKT];
  const bool direct = a.dtype == eet::DType::F32 && D == Dp;
  const auto seq = [&](int64_t i) -> int64_t { return it.seqs[i]; };

  for (int64_t r = 0; r < R; ++r) {
    const int64_t b = seq(r / group), h = int64_t(it.kv_head) * group + r % group;
    attn_row_start(a.dtype, a.q, b * a.ldq + h * D, D, Dp, a.scale, q + r * Dp, acc + r * Dp, mx[r], sum[r]);
  }
  const int64_t shared = a.shared_len[seq(0)];  // equal for every member (validated)
  const int32_t* leader = a.block_table + seq(0) * a.max_blocks_per_seq;
  for (int64_t k0 = 0; k0 < shared; k0 += kKT) {
    const int64_t nk = std::min<int64_t>(kKT, shared - k0);
    attn_load_tile(l, a.dtype, a.k_cache, a.v_cache, leader, it.kv_head, k0, nk, shared, direct, kb, vt, krow, vrow);
    for (int64_t r = 0; r < R; ++r) attn_row_tile(q + r * Dp, krow, vrow, 0, nk, Dp, mx[r], sum[r], acc + r * Dp, p);
  }
  for (int64_t i = 0; i < members; ++i) {
    const int64_t b = seq(i), ctx = a.ctx_len[b];
    const int32_t* table = a.block_table + b * a.max_blocks_per_seq;
    for (int64_t k0 = shared; k0 < ctx; k0 += kKT) {
      const int64_t nk = std::min<int64_t>(kKT, ctx - k0);
      attn_load_tile(l, a.dtype, a.k_cache, a.v_cache, table, it.kv_head, k0, nk, ctx, direct, kb, vt, krow, vrow);
      for (int64_t r = i * group; r < (i + 1) * group; ++r) attn_row_tile(q + r * Dp, krow, vrow, 0, nk, Dp, mx[r], sum[r], acc + r * Dp, p);
    }
  }
  for (int64_t r = 0; r < R; ++r) {
    const int64_t b = seq(r / group), h = int64_t(it.kv_head) * group + r % group;
    const float inv = 1.0f / sum[r];
    for (int64_t d = 0; d < D; ++d) gemm_store(a.dtype, a.out, b * a.ldo + h * D + d, acc[r * Dp + d] * inv);
  }
}

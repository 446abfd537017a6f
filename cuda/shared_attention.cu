// Shared-prefix decode attention (engine/ops.h "shared-prefix decode attention"), cascade style: the keys a group of
// sequences shares are read once for the whole group, each sequence's own tail as in plain decode, and the parts are
// merged exactly through their log-sum-exp.
//   q    (batch, n_heads, D)  one query per sequence (row b); out (batch, n_heads, D)
//   keys of b: 0..shared_len[b]-1 through its group leader's block table, the rest through its own
//
// Every sequence's keys are cut into the decode split's chunks (eet::attention_decode_split over max_ctx_len, chunk
// c = keys [c*L, (c+1)*L)), and each (sequence, query head) gets a partial (max, sum, unnormalised output) per chunk
// in the workspace (layout in engine/ops.h, AttnParams in attention.cuh). Three launches, in stream order:
// 1. shared_attention_partial_kernel: one block of 4 warps per (group, tile of 32 query rows, chunk of the shared
//    keys, kv head). The rows of a group on kv head kvh are every member's query heads of kvh, stacked: row r is
//    member r / group, query head kvh * group + r % group — so the shared K/V tiles are read once per 32 rows instead
//    of once per sequence. No mask: every query sits at or after the last shared key. The tile loop is the prompt
//    kernel's (attention.cu): Q tile and each 32-key K/V tile in shared memory as fp32, lane = key for the scores,
//    4 lanes per row for the online softmax, lane = dims for P·V. Each row's partial goes to slot c, or to slot
//    n_chunks when the shared length cuts chunk c (the tail part of that chunk is then slot c).
// 2. attention_decode_kernel (attention.cu) over every sequence's keys from shared_len[b] on (AttnParams::key_begin),
//    writing its chunk partials to the same slots; chunks wholly shared return at once.
// 3. attention_combine_kernel (attention.cu) merges each (sequence, query head)'s existing slots into out.
// All math fp32 in the log2 domain (q pre-scaled by scale * log2(e)), the output rounded once, in the combine.
#include "attention.cuh"

namespace EET_KNS {

// The shared kernel's view: AttnParams plus the groups. Outside the anonymous namespace, like AttnParams, so the
// kernel keeps external linkage and the emu's launch trace can name it.
struct SharedParams {
  AttnParams a;
  const int32_t* shared_len;   // (batch)
  const int32_t* group_start;  // (n_groups + 1)
  const int32_t* group_seqs;   // members, leader first
  int32_t row_tiles;           // 32-row tiles of the largest group's rows on one kv head
};

template <typename T, int NI>
__global__ __launch_bounds__(AttnTile::kBlock) void shared_attention_partial_kernel(SharedParams sp) {
  using Tl = AttnTile;
  const AttnParams& p = sp.a;
  const int g = int(blockIdx.x) / sp.row_tiles, tile = int(blockIdx.x) % sp.row_tiles;
  const int chunk = blockIdx.y, kvh = blockIdx.z;
  const int gs = sp.group_start[g], n_rows = (sp.group_start[g + 1] - gs) * p.group, r0 = tile * Tl::kBq;
  if (r0 >= n_rows) return;  // whole block, before any barrier
  const int leader = sp.group_seqs[gs], shared = sp.shared_len[leader];
  const int k_begin = chunk * p.chunk_len, k_end = min(shared, k_begin + p.chunk_len);
  if (k_begin >= k_end) return;
  const int rows = min(Tl::kBq, n_rows - r0);
  const int D = p.head_dim, DP = (D + 3) & ~3;
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, row0 = warp * Tl::kRows;

  EXTERN_SHARED(float, smem);
  float* qs = smem;                      // (kBq, DP) query rows * scale * log2(e), zero-padded to DP
  float* ks = qs + Tl::kBq * DP;         // (kBk, DP + 1) key tile; the odd stride: conflict-free lane-per-key reads
  float* vs = ks + Tl::kBk * (DP + 1);   // (kBk, D) value tile
  float* ps = vs + Tl::kBk * D;          // (kBq, kBk) scores, then probabilities, of each warp's rows
  float* rs = ps + Tl::kBq * Tl::kBk;    // (kBq) per row: this tile's rescale factor

  // Row r of the tile: its sequence and query head.
  const auto seq_of = [&](int r) { return sp.group_seqs[gs + (r0 + r) / p.group]; };
  const auto head_of = [&](int r) { return kvh * p.group + (r0 + r) % p.group; };
  load_rows<Tl::kBlock>(qs, DP, static_cast<const T*>(p.q), Tl::kBq, D, p.vec, p.scale_log2, [&](int r) -> int64_t {
    return r < rows ? int64_t(seq_of(r)) * p.ldq + int64_t(head_of(r)) * D : -1;
  });
  const int pad = DP - D;  // zero the pad columns of Q and K once; tile loads never write them
  for (int u = threadIdx.x; u < Tl::kBq * pad; u += Tl::kBlock) {
    const int r = u / pad, j = D + u % pad;
    qs[r * DP + j] = 0.0f;
    ks[r * (DP + 1) + j] = 0.0f;
  }

  // Softmax state: the kLanesPerRow lanes of row my_row hold its running max (log2 domain) and sum.
  constexpr int kLanesPerRow = 32 / Tl::kRows, kKeysPerLane = Tl::kBk / kLanesPerRow;
  const int my_row = row0 + lane / kLanesPerRow, my_c0 = lane % kLanesPerRow * kKeysPerLane;
  float m_row = -INFINITY, l_row = 0.0f;
  float o[Tl::kRows][NI];
#pragma unroll
  for (int r = 0; r < Tl::kRows; ++r) {
#pragma unroll
    for (int i = 0; i < NI; ++i) o[r][i] = 0.0f;
  }

  const T* kc = static_cast<const T*>(p.k_cache);
  const T* vc = static_cast<const T*>(p.v_cache);
  for (int kt = k_begin; kt < k_end; kt += Tl::kBk) {
    __syncthreads();  // the previous tile's readers are done; Q and the pads are written
    const int nk = min(Tl::kBk, k_end - kt);
    const auto key_off = [&](int r) -> int64_t { return r < nk ? key_offset(p, leader, kvh, kt + r) : -1; };
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
#pragma unroll
    for (int r = 0; r < Tl::kRows; ++r) ps[(row0 + r) * Tl::kBk + lane] = lane < nk ? s[r] : -INFINITY;
    __syncwarp(kFullMask);
    {  // online softmax, lanes regrouped by row; every tile has a key (nk >= 1), so the max is finite from the first
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

  // Each row's partial into its sequence's slot for this chunk (the combine normalises).
  const int slot = (chunk + 1) * p.chunk_len <= shared ? chunk : p.n_chunks;
  const auto part_of = [&](int r) { return (int64_t(seq_of(r)) * p.n_heads + head_of(r)) * p.part_stride + slot; };
  if (my_c0 == 0 && my_row < rows) {
    p.part_ml[part_of(my_row) * 2] = m_row;
    p.part_ml[part_of(my_row) * 2 + 1] = l_row;
  }
#pragma unroll
  for (int r = 0; r < Tl::kRows; ++r) {
    if (row0 + r >= rows) break;
    float* acc = p.part_acc + part_of(row0 + r) * D;
#pragma unroll
    for (int i = 0; i < NI; ++i) {
      const int d = lane + 32 * i;
      if (d < D) acc[d] = o[r][i];
    }
  }
}

namespace {

template <typename T, int NI>
void shared_partial_launch(const SharedParams& sp, int32_t n_groups, int32_t shared_chunks, int32_t n_kv_heads,
                           eet::Stream stream) {
  using Tl = AttnTile;
  const int D = sp.a.head_dim, DP = (D + 3) & ~3;
  const size_t smem =
      sizeof(float) * size_t(Tl::kBq * DP + Tl::kBk * (DP + 1) + Tl::kBk * D + Tl::kBq * Tl::kBk + Tl::kBq);
  launch(shared_attention_partial_kernel<T, NI>,
         dim3(unsigned(int64_t(n_groups) * sp.row_tiles), unsigned(shared_chunks), unsigned(n_kv_heads)),
         dim3(Tl::kBlock), smem, stream, sp);
}

}  // namespace

void op_shared_attention(const eet::SharedAttentionArgs& a, eet::Stream stream) {
  using Tl = AttnTile;
  const eet::KvLayout& l = a.layout;
  SharedParams sp{};
  AttnParams& p = sp.a;
  p.q = a.q;
  p.out = a.out;
  p.k_cache = a.k_cache;
  p.v_cache = a.v_cache;
  p.block_table = a.block_table;
  p.q_start = nullptr;  // one query per sequence: row b
  p.ctx_len = a.ctx_len;
  p.key_begin = a.shared_len;
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
  const int64_t vec = 16 / int64_t(eet::dtype_size(a.dtype));
  bool aligned = l.head_dim % vec == 0 && a.ldq % vec == 0 && l.head_stride % vec == 0 && l.block_stride % vec == 0;
  for (const void* ptr : {a.q, a.k_cache, a.v_cache}) aligned = aligned && reinterpret_cast<uintptr_t>(ptr) % 16 == 0;
  p.vec = aligned;
  const eet::AttentionDecodeSplit split = eet::attention_decode_split(a.batch, a.n_heads, a.max_ctx_len);
  p.chunk_len = split.chunk_len;
  p.n_chunks = split.n_chunks;
  p.part_stride = split.n_chunks + 1;
  p.head_groups = int32_t(ceil_div(p.group, Tl::kHeads));
  // the workspace layout of engine/ops.h; validate() checked its size
  p.part_ml = static_cast<float*>(a.workspace);
  p.part_acc = p.part_ml + int64_t(a.batch) * a.n_heads * p.part_stride * 2;
  sp.shared_len = a.shared_len;
  sp.group_start = a.group_start;
  sp.group_seqs = a.group_seqs;
  sp.row_tiles = int32_t(ceil_div(int64_t(a.max_group_size) * p.group, Tl::kBq));
  const int32_t shared_chunks = int32_t(ceil_div(a.max_shared_len, p.chunk_len));
  if (int64_t(a.batch) * p.n_chunks > INT32_MAX || int64_t(a.n_groups) * sp.row_tiles > INT32_MAX) {
    eet::throw_error(eet::ErrorCode::Unsupported, "shared_attention: the batch exceeds the grid limit");
  }

  const int ni = l.head_dim <= 64 ? 2 : l.head_dim <= 128 ? 4 : 8;
  if (a.n_groups > 0 && shared_chunks > 0) {
    EET_DISPATCH_FLOAT(a.dtype, T, {
      switch (ni) {
        case 2: shared_partial_launch<T, 2>(sp, a.n_groups, shared_chunks, l.n_kv_heads, stream); break;
        case 4: shared_partial_launch<T, 4>(sp, a.n_groups, shared_chunks, l.n_kv_heads, stream); break;
        default: shared_partial_launch<T, 8>(sp, a.n_groups, shared_chunks, l.n_kv_heads, stream); break;
      }
    });
  }
  attention_decode_run(p, a.dtype, a.batch, l.n_kv_heads, stream);
}

}  // namespace EET_KNS

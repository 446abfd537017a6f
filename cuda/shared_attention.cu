// Shared-prefix decode attention (engine/ops.h "shared-prefix decode attention"), cascade style: the keys a group of
// sequences shares are read once for the whole group, each sequence's own tail as in plain decode, and the parts are
// merged exactly through their log-sum-exp.
//   q    (batch, n_heads, D)  one query per sequence (row b); out (batch, n_heads, D)
//   keys of b: 0..shared_len[b]-1 through its group leader's block table, the rest through its own
//
// Every sequence's keys are cut into the decode split's chunks (eet::attention_decode_split of the op's shape, chunk
// c = keys [c*L, (c+1)*L)), and each (sequence, query head) gets a partial (max, sum, unnormalised output) per chunk
// in the workspace (layout in engine/ops.h, AttnParams in attention.cuh). Three launches, in stream order:
// 1. shared_attention_partial_kernel: one block of 4 warps per (group, tile of kBq query rows, chunk of the shared
//    keys, kv head). The rows of a group on kv head kvh are every member's query heads of kvh, stacked: row r is
//    member r / group, query head kvh * group + r % group — so the shared K/V tiles are read once per kBq rows
//    instead of once per sequence. kBq is 32, or 16 where the device's shared memory is too small (tile_rows()). No mask: every query sits at or after the last shared key. The tile walk is the prompt
//    kernel's (RowTiles, attention.cuh): Q tile and each 32-key K/V tile in shared memory as fp32, lane = key for
//    the scores, 4 lanes per row for the online softmax, lane = dims for P·V. Each row's partial goes to slot c, or
//    to slot n_chunks when the shared length cuts chunk c (the tail part of that chunk is then slot c).
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
  int32_t row_tiles;           // kBq-row tiles of the largest group's rows on one kv head
};

template <typename T, int NI, int ROWS>
__global__ __launch_bounds__(AttnTile::kBlock) void shared_attention_partial_kernel(SharedParams sp) {
  using Tl = AttnTile;
  using Tiles = RowTiles<NI, ROWS>;
  const AttnParams& p = sp.a;
  const int g = int(blockIdx.x) / sp.row_tiles, tile = int(blockIdx.x) % sp.row_tiles;
  const int chunk = blockIdx.y, kvh = blockIdx.z;
  const int gs = sp.group_start[g], n_rows = (sp.group_start[g + 1] - gs) * p.group, r0 = tile * Tiles::kBq;
  if (r0 >= n_rows) return;  // whole block, before any barrier
  const int leader = sp.group_seqs[gs], shared = sp.shared_len[leader];
  const int k_begin = chunk * p.chunk_len, k_end = min(shared, k_begin + p.chunk_len);
  if (k_begin >= k_end) return;
  const int rows = min(Tiles::kBq, n_rows - r0);
  const int D = p.head_dim;

  EXTERN_SHARED(float, smem);
  Tiles t(smem, D);
  // Row r of the tile: its sequence and query head.
  const auto seq_of = [&](int r) { return sp.group_seqs[gs + (r0 + r) / p.group]; };
  const auto head_of = [&](int r) { return kvh * p.group + (r0 + r) % p.group; };
  t.load_queries(static_cast<const T*>(p.q), p.vec, p.scale_log2, [&](int r) -> int64_t {
    return r < rows ? int64_t(seq_of(r)) * p.ldq + int64_t(head_of(r)) * D : -1;
  });
  const T* kc = static_cast<const T*>(p.k_cache);
  const T* vc = static_cast<const T*>(p.v_cache);
  for (int kt = k_begin; kt < k_end; kt += Tl::kBk) {  // no mask: every row sees every key of the tile
    const int nk = min(Tl::kBk, k_end - kt);
    t.tile(kc, vc, p.vec, nk, [&](int r) -> int64_t { return r < nk ? key_offset(p, leader, kvh, kt + r) : -1; },
           [&](int, int lane) { return lane < nk; });
  }

  // Each row's partial into its sequence's slot for this chunk (the combine normalises).
  const int slot = (chunk + 1) * p.chunk_len <= shared ? chunk : p.n_chunks;
  const auto part_of = [&](int r) { return (int64_t(seq_of(r)) * p.n_heads + head_of(r)) * p.part_stride + slot; };
  if (t.my_c0 == 0 && t.my_row < rows) {
    p.part_ml[part_of(t.my_row) * 2] = t.m_row;
    p.part_ml[part_of(t.my_row) * 2 + 1] = t.l_row;
  }
#pragma unroll
  for (int r = 0; r < ROWS; ++r) {
    if (t.row0 + r >= rows) break;
    float* acc = p.part_acc + part_of(t.row0 + r) * D;
#pragma unroll
    for (int i = 0; i < NI; ++i) {
      const int d = t.lane + 32 * i;
      if (d < D) acc[d] = t.o[r][i];
    }
  }
}

namespace {

template <typename T, int NI, int ROWS>
void shared_partial_launch(const SharedParams& sp, int32_t n_groups, int32_t shared_chunks, int32_t n_kv_heads,
                           eet::Stream stream) {
  using Tl = AttnTile;
  launch(shared_attention_partial_kernel<T, NI, ROWS>,
         dim3(unsigned(int64_t(n_groups) * sp.row_tiles), unsigned(shared_chunks), unsigned(n_kv_heads)),
         dim3(Tl::kBlock), tile_smem_bytes(sp.a.head_dim, ROWS), stream, sp);
}

}  // namespace

void op_shared_attention(const eet::SharedAttentionArgs& a, eet::Stream stream) {
  using Tl = AttnTile;
  const eet::KvLayout& l = a.layout;
  SharedParams sp{};
  AttnParams& p = sp.a;
  p = attn_params(a.dtype, a.q, a.out, a.k_cache, a.v_cache, l, a.block_table, a.ldq, a.ldo, a.n_heads,
                  a.max_blocks_per_seq, a.scale);
  p.q_start = nullptr;  // one query per sequence: row b
  p.ctx_len = a.ctx_len;
  p.key_begin = a.shared_len;
  set_decode_split(p, eet::attention_decode_split(eet::decode_shape(a)));
  p.part_stride = p.n_chunks + 1;
  // the workspace layout of engine/ops.h; validate() checked its size
  p.part_ml = static_cast<float*>(a.workspace);
  p.part_acc = p.part_ml + int64_t(a.batch) * a.n_heads * p.part_stride * 2;
  sp.shared_len = a.shared_len;
  sp.group_start = a.group_start;
  sp.group_seqs = a.group_seqs;
  const bool any_shared = a.n_groups > 0 && a.max_shared_len > 0;
  const int rows = any_shared ? tile_rows(l.head_dim, "shared_attention") : Tl::kRows;
  sp.row_tiles = int32_t(ceil_div(int64_t(a.max_group_size) * p.group, Tl::kWarps * rows));
  const int32_t shared_chunks = int32_t(ceil_div(a.max_shared_len, p.chunk_len));
  if (int64_t(a.batch) * p.n_chunks > INT32_MAX || int64_t(a.n_groups) * sp.row_tiles > INT32_MAX) {
    eet::throw_error(eet::ErrorCode::Unsupported, "shared_attention: the batch exceeds the grid limit");
  }

  const int ni = l.head_dim <= 64 ? 2 : l.head_dim <= 128 ? 4 : 8;  // tile_rows(): the small tile only at ni 8
  if (any_shared) {
    EET_DISPATCH_FLOAT(a.dtype, T, {
      switch (ni) {
        case 2: shared_partial_launch<T, 2, Tl::kRows>(sp, a.n_groups, shared_chunks, l.n_kv_heads, stream); break;
        case 4: shared_partial_launch<T, 4, Tl::kRows>(sp, a.n_groups, shared_chunks, l.n_kv_heads, stream); break;
        default:
          if (rows == Tl::kRows) shared_partial_launch<T, 8, Tl::kRows>(sp, a.n_groups, shared_chunks, l.n_kv_heads, stream);
          else shared_partial_launch<T, 8, Tl::kRowsSmall>(sp, a.n_groups, shared_chunks, l.n_kv_heads, stream);
          break;
      }
    });
  }
  attention_decode_run(p, a.dtype, a.batch, l.n_kv_heads, stream);
}

}  // namespace EET_KNS

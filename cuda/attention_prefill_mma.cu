// The prompt pass of fused masked attention (cuda/attention.cu, engine/ops.h) on tensor cores: float16 / bfloat16,
// head_dim D a multiple of 16 in [16, 256]. op_attention runs it for every prompt pass (max_q_len > 1) of those
// dtypes and head dims whose tile fits the device's shared memory (attention_prefill_mma_supported()); the SIMT
// attention_prefill_kernel keeps float32, the other head dims (8..256, not a multiple of 16), and any call with
// AttentionArgs::simt_prefill (a switch for tests and the op bench only). Same inputs, masks, T5 bias, GQA and
// packing as attention_prefill_kernel; see the header of cuda/attention.cu.
//
// Tiles (MmaAttnTile): one block of 4 warps per (64-query tile, query head, sequence), grid as the SIMT kernel's
// (grid.x = batch * q_tiles, the tiles with the most keys first; grid.y = head). Warp w owns query rows 16w..16w+15,
// one m16 tile of mma.m16n8k16 (cuda/mma.cuh). Key tiles of kBk keys: 64 up to D = 128, 32 above (the 16 x D fp32
// output fragments already take 128 registers a lane at D = 256).
//   S = Q·Kᵀ   A = Q (16 rows x 16 dims), B = Kᵀ: K sits in shared memory as (kBk keys, D) rows of element pairs, so
//              a B register is one word (two dim-adjacent elements of one key). Q fragments are read once into
//              registers and kept for the whole key walk (D <= 128), or read from shared memory at every tile
//              (D > 128: registers are short).
//   softmax    on the accumulator fragments: a lane holds rows g and g+8 (g = lane / 4) of each key n-tile; the row
//              max is reduced over the 4 lanes of a quad (shuffles 1 and 2). Scores are scaled by scale * log2(e)
//              in fp32 (Q stays exact in 16 bits), masked and T5-biased there, exponentiated with exp2f.
//   O += P·V   P is rounded to T and reused as the A operand directly: the C layout of key n-tiles 2k and 2k+1 is
//              the A layout of key k-step k. V is stored transposed, (D dims, kBk/2 key pairs) words, so a B
//              register (two key-adjacent elements of one dim) is one word too. Its columns are XOR-swizzled by the
//              dim's 8-chunk c ((4c) & (kBk/2 - 4) words), so the transposing stores of a warp hit 32 different
//              banks (64-key tiles, D >= 64; at most 2 lanes a bank otherwise).
//   Row strides of D/2 + 4 and kBk/2 + 4 words (4 * odd) make every fragment read conflict-free.
// Loads: at the top of each key tile every thread issues all its 16-byte K and V loads (through the block table),
// then stores them to the one shared stage; the other resident blocks hide the latency. Holding the next tile in
// registers during the math (tried) cost 64 registers at D = 64 (ptxas for sm_90: 192 instead of 128, half the
// resident blocks) and spilled at D = 128, so there is none. ptxas (sm_90, CUDA 13): 128 registers a thread at
// D <= 64 (4 blocks of 4 warps per SM), about 240 at D <= 128 and 254 at D <= 256 (2 blocks), no spills. Rows of keys
// past the tile's end are zeros (their P is 0, and 0 * NaN garbage would not be).
// Key ranges as the SIMT kernel: causal tiles stop at the tile's last query, anti-causal ones start at its first, so
// only tiles crossing the diagonal are masked; pad rows (past n_q) mask as the tile's last query and are not stored.
// A row that sees no key of a tile yet (anti-causal with 32-key tiles, pad rows) keeps max -inf: exponentials are
// then taken against 0, which gives 0, never NaN.
//
// Precision. Q, K and V are exact in T; the products and the sums are fp32 as in the SIMT kernel. The one new
// rounding is P: p~ = p (1 + d), |d| <= u (u = 2^-11 for f16, 2^-8 for bf16; p <= 1, and f16's subnormal range
// below 2^-14 adds at most 2^-25 absolute). The row sum l adds the rounded p~, so the output is the exact convex
// combination O~ = Σ p~_j v_j / Σ p~_j, and O~ - O = Σ p_j d_j (v_j - O) / l + O(u²): at most u · max|v_j - O|, and
// for independent roundings an rms of about u/√3 · sqrt(Σ p_j² (v_j - O)²) / l. For n comparable weights that is
// u/√3 · σ_v / √n, the size of the output's own rounding (|O| ~ σ_v / √n, rms error u/√3 · |O|), which the cpu
// reference in T also makes. So the device's rms error is at most about √2 times the cpu's, inside the harness's 2x
// rule for float16/bfloat16 (test/ops/harness.ts); a peaked softmax (one p near 1, rounded exactly) errs less. The
// tests use that rule unchanged; their cases measure 1.02x to 1.23x on the emulator.
#include "attention.cuh"
#include "mma.cuh"

namespace EET_KNS {

// Tile shapes of attention_prefill_mma_kernel for head dims up to DMAX (64, 128, 256); the runtime D (a multiple of
// 16, <= DMAX) guards the dim loops. Outside the anonymous namespace, like AttnParams (the emu trace names kernels).
template <int DMAX>
struct MmaAttnTile {
  static constexpr int kWarps = 4, kBlock = kWarps * 32;
  static constexpr int kBq = kWarps * 16;             // query rows per block: one m16 tile per warp
  static constexpr int kBk = DMAX <= 128 ? 64 : 32;   // keys per tile
  static constexpr bool kQRegs = DMAX <= 128;         // Q fragments in registers for the walk (else from shared)
  static constexpr int kKs = DMAX / 16;               // 16-dim k-steps of Q·Kᵀ
  static constexpr int kDn = DMAX / 8;                // 8-dim n-tiles of P·V (the output fragments)
  static constexpr int kKn = kBk / 8;                 // 8-key n-tiles of Q·Kᵀ
  static constexpr int kLdv = kBk / 2 + 4;            // V tile row stride in words
  static constexpr int kSwz = kBk / 2 - 4;            // V column swizzle mask: multiples of 4 below kBk / 2
  static constexpr int kKChunks = kBk * DMAX / 8 / kBlock;      // 16-byte K chunks per thread and tile at D = DMAX
  static constexpr int kVUnits = kBk / 2 * DMAX / 8 / kBlock;   // V units (2 keys x 8 dims) per thread and tile
  static_assert(DMAX == 64 || DMAX == 128 || DMAX == 256, "head-dim classes");
  static_assert(kBq == kMmaAttnRows, "op_attention sizes the grid by kMmaAttnRows");
  static_assert(!kQRegs || kBq <= kBk, "the Q tile is staged in the K tile's place");
  static_assert(kKChunks >= 1 && kVUnits >= 1 && kBk % 16 == 0 && (kBk / 2) % 4 == 0, "whole chunks and k-steps");
  static_assert(kLdv % 8 == 4, "kLdv = 4 * odd: fragment reads of rows g = 0..7 fall in distinct banks");
};

// Dynamic shared memory of the tile for head_dim D, in bytes: K (kBk, D/2 + 4) words, V transposed (D, kLdv) words,
// and the Q tile (kBq, D/2 + 4) words when it is not held in registers (else it is staged in K's place).
template <int DMAX>
constexpr size_t mma_attn_smem_bytes(int D) {
  using Tl = MmaAttnTile<DMAX>;
  const size_t ldk = size_t(D / 2 + 4);
  return 4 * (Tl::kBk * ldk + size_t(D) * Tl::kLdv + (Tl::kQRegs ? 0 : Tl::kBq * ldk));
}

namespace {

// 8 consecutive elements at src as 4 words of element pairs (the lower index in the low half), matching the
// fragment layout; vec: one 16-byte load (src 16-byte aligned).
template <typename T>
__device__ __forceinline__ uint4 load8(const T* src, bool vec) {
  if (vec) return *reinterpret_cast<const uint4*>(src);
  uint32_t w[4];
#pragma unroll
  for (int e = 0; e < 4; ++e) w[e] = half_bits(src[2 * e]) | (half_bits(src[2 * e + 1]) << 16);
  return make_uint4(w[0], w[1], w[2], w[3]);
}

// Two fp32 values rounded to T and packed as an A-fragment word; lo/hi receive the rounded values.
template <typename T>
__device__ __forceinline__ uint32_t round_pair(float& lo, float& hi) {
  const T a = from_f32<T>(lo), b = from_f32<T>(hi);
  lo = to_f32(a);
  hi = to_f32(b);
  return half_bits(a) | (half_bits(b) << 16);
}

// The K and V tile of keys kt..kt+nk-1 on their way to shared memory: every load of a thread is issued before its
// first store.
// K: chunk i of this thread is unit u = tid + i * kBlock, row u / cpr, dims (u % cpr) * 8..+7 (consecutive threads
// read consecutive 16 bytes of a row). V: unit u is key pair j and dim chunk c, with j's low 2 bits from u's
// (4 pairs x 8 chunks per warp: each key row is read 128 bytes at a time, and the swizzled stores spread over all
// banks).
template <typename T, int DMAX>
struct KvStage {
  using Tl = MmaAttnTile<DMAX>;
  uint4 k[Tl::kKChunks];
  uint4 v[Tl::kVUnits][2];  // keys 2j and 2j+1

  __device__ __forceinline__ void load(const AttnParams& p, int b, int kvh, int kt, int nk, int cpr) {
    const T* kc = static_cast<const T*>(p.k_cache);
    const T* vc = static_cast<const T*>(p.v_cache);
    const uint4 zero = make_uint4(0, 0, 0, 0);
#pragma unroll
    for (int i = 0; i < Tl::kKChunks; ++i) {
      const int u = threadIdx.x + i * Tl::kBlock, r = u / cpr;
      k[i] = zero;
      if (r < nk) k[i] = load8(kc + key_offset(p, b, kvh, kt + r) + (u - r * cpr) * 8, p.vec);
    }
#pragma unroll
    for (int i = 0; i < Tl::kVUnits; ++i) {
      const int u = threadIdx.x + i * Tl::kBlock, rest = u >> 2, c = rest % cpr, j = (rest / cpr) * 4 + (u & 3);
      v[i][0] = v[i][1] = zero;
      if (2 * j < nk) v[i][0] = load8(vc + key_offset(p, b, kvh, kt + 2 * j) + c * 8, p.vec);
      if (2 * j + 1 < nk) v[i][1] = load8(vc + key_offset(p, b, kvh, kt + 2 * j + 1) + c * 8, p.vec);
    }
  }

  // ks: (kBk, ldk) words; vt: (D, kLdv) words, word (d, j) = {V[2j][d], V[2j+1][d]} at column j ^ swizzle(d / 8).
  __device__ __forceinline__ void store(uint32_t* ks, uint32_t* vt, int cpr, int ldk) const {
#pragma unroll
    for (int i = 0; i < Tl::kKChunks; ++i) {
      const int u = threadIdx.x + i * Tl::kBlock, r = u / cpr;
      if (r < Tl::kBk) *reinterpret_cast<uint4*>(ks + r * ldk + (u - r * cpr) * 4) = k[i];
    }
#pragma unroll
    for (int i = 0; i < Tl::kVUnits; ++i) {
      const int u = threadIdx.x + i * Tl::kBlock, rest = u >> 2, c = rest % cpr, j = (rest / cpr) * 4 + (u & 3);
      if (2 * j >= Tl::kBk) continue;
      const uint32_t a[4] = {v[i][0].x, v[i][0].y, v[i][0].z, v[i][0].w};
      const uint32_t b[4] = {v[i][1].x, v[i][1].y, v[i][1].z, v[i][1].w};
      uint32_t* col = vt + c * 8 * Tl::kLdv + (j ^ ((c << 2) & Tl::kSwz));
#pragma unroll
      for (int e = 0; e < 4; ++e) {  // dims 2e (low halves) and 2e+1 (high halves)
        col[(2 * e) * Tl::kLdv] = (a[e] & 0xffffu) | (b[e] << 16);
        col[(2 * e + 1) * Tl::kLdv] = (a[e] >> 16) | (b[e] & 0xffff0000u);
      }
    }
  }
};

}  // namespace

template <typename T, int DMAX>
__global__ __launch_bounds__(MmaAttnTile<DMAX>::kBlock) void attention_prefill_mma_kernel(AttnParams p) {
  using Tl = MmaAttnTile<DMAX>;
  constexpr int kBq = Tl::kBq, kBk = Tl::kBk;
  const bool anti = p.mask == eet::AttnMask::AntiCausal, causal = p.mask == eet::AttnMask::Causal;
  const int b = int(blockIdx.x) / p.q_tiles, order = int(blockIdx.x) % p.q_tiles;
  const int tile = anti ? order : p.q_tiles - 1 - order;  // the tiles with the most keys first
  const int h = blockIdx.y;
  const int q_begin = p.q_start[b], n_q = p.q_start[b + 1] - q_begin, ctx = p.ctx_len[b];
  const int qt0 = tile * kBq;
  if (qt0 >= n_q) return;  // whole block, before any barrier
  const int D = p.head_dim, kvh = h / p.group, cpr = D / 8, ldk = D / 2 + 4;
  const int rows = min(kBq, n_q - qt0);
  const int pos0 = ctx - n_q + qt0;                          // position of the tile's first query
  const int key_begin = anti ? pos0 : 0;                     // no query of the tile sees a key before
  const int key_end = causal ? min(ctx, pos0 + rows) : ctx;  // ... or after these
  const int lane = threadIdx.x % 32, g = lane >> 2, t = lane & 3;
  const int r0 = threadIdx.x / 32 * 16 + g;  // this lane's rows: r0 and r0 + 8

  EXTERN_SHARED(uint32_t, smem);
  uint32_t* ks = smem;                                       // (kBk, ldk) K tile
  uint32_t* vt = ks + kBk * ldk;                             // (D, kLdv) V tile, transposed
  uint32_t* qs = Tl::kQRegs ? ks : vt + D * Tl::kLdv;        // (kBq, ldk) Q tile

  const int64_t q_row0 = int64_t(q_begin) + qt0;
  const T* q = static_cast<const T*>(p.q) + q_row0 * p.ldq + int64_t(h) * D;
  for (int u = threadIdx.x; u < kBq * cpr; u += Tl::kBlock) {
    const int r = u / cpr, c = u - r * cpr;
    *reinterpret_cast<uint4*>(qs + r * ldk + c * 4) = r < rows ? load8(q + r * p.ldq + c * 8, p.vec) : make_uint4(0, 0, 0, 0);
  }
  __syncthreads();
  uint32_t qa[Tl::kQRegs ? Tl::kKs : 1][4];
  if constexpr (Tl::kQRegs) {
#pragma unroll
    for (int kk = 0; kk < Tl::kKs; ++kk) {
      if (kk * 16 >= D) break;
      const uint32_t* pq = qs + r0 * ldk + kk * 8 + t;
      qa[kk][0] = pq[0];            // row g,   dims 2t, 2t+1
      qa[kk][1] = pq[8 * ldk];      // row g+8
      qa[kk][2] = pq[4];            // row g,   dims 2t+8, 2t+9
      qa[kk][3] = pq[8 * ldk + 4];  // row g+8
    }
  }

  float o[Tl::kDn][4];
#pragma unroll
  for (int j = 0; j < Tl::kDn; ++j) o[j][0] = o[j][1] = o[j][2] = o[j][3] = 0.0f;
  float m[2] = {-INFINITY, -INFINITY}, l[2] = {0.0f, 0.0f};  // m: the row's (quad-uniform); l: this lane's part
  const int qpos[2] = {pos0 + min(r0, rows - 1), pos0 + min(r0 + 8, rows - 1)};  // pad rows as the last query

  for (int kt = key_begin; kt < key_end; kt += kBk) {
    const int nk = min(kBk, key_end - kt);
    KvStage<T, DMAX> stage;
    stage.load(p, b, kvh, kt, nk, cpr);
    __syncthreads();  // the previous tile's readers (the Q fragment reads the first time) are done
    stage.store(ks, vt, cpr, ldk);
    __syncthreads();

    // S = Q·Kᵀ for the key n-tiles holding keys (those past nk stay 0 and are masked below).
    float s[Tl::kKn][4];
#pragma unroll
    for (int n = 0; n < Tl::kKn; ++n) s[n][0] = s[n][1] = s[n][2] = s[n][3] = 0.0f;
#pragma unroll
    for (int kk = 0; kk < Tl::kKs; ++kk) {
      if (kk * 16 >= D) break;
      uint32_t a[4];
      if constexpr (Tl::kQRegs) {
        a[0] = qa[kk][0], a[1] = qa[kk][1], a[2] = qa[kk][2], a[3] = qa[kk][3];
      } else {
        const uint32_t* pq = qs + r0 * ldk + kk * 8 + t;
        a[0] = pq[0], a[1] = pq[8 * ldk], a[2] = pq[4], a[3] = pq[8 * ldk + 4];
      }
#pragma unroll
      for (int n = 0; n < Tl::kKn; ++n) {
        if (n * 8 >= nk) break;
        const uint32_t* pk = ks + (n * 8 + g) * ldk + kk * 8 + t;
        const uint32_t bk[2] = {pk[0], pk[4]};  // key n*8+g, dims 2t.. and 2t+8..
        mma_m16n8k16<T>(s[n], a, bk);
      }
    }

    // Scale, mask and bias in the log2 domain; the rows' new maxima over the quad.
    float mx[2] = {-INFINITY, -INFINITY};
#pragma unroll
    for (int n = 0; n < Tl::kKn; ++n) {
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        const int kofs = n * 8 + 2 * t + (e & 1), key = kt + kofs, qp = qpos[e >> 1];
        const bool visible = kofs < nk && (causal ? key <= qp : !anti || key >= qp);
        float x = -INFINITY;
        if (visible) x = s[n][e] * p.scale_log2 + rel_bias_log2(p, h, key - qp);
        s[n][e] = x;
        mx[e >> 1] = fmaxf(mx[e >> 1], x);
      }
    }
    float alpha[2], ref[2];
#pragma unroll
    for (int r = 0; r < 2; ++r) {
      mx[r] = fmaxf(mx[r], __shfl_xor_sync(kFullMask, mx[r], 1));
      mx[r] = fmaxf(mx[r], __shfl_xor_sync(kFullMask, mx[r], 2));
      const float m_new = fmaxf(m[r], mx[r]);
      ref[r] = m_new == -INFINITY ? 0.0f : m_new;  // no key seen yet: exp2f(-inf - 0) = 0, not NaN
      alpha[r] = exp2f(m[r] - ref[r]);              // 0 while m was -inf
      m[r] = m_new;
      l[r] *= alpha[r];
    }

    // P in T (the A fragments of P·V), its rounded values summed into l.
    uint32_t pa[kBk / 16][4];
#pragma unroll
    for (int kq = 0; kq < kBk / 16; ++kq) {
#pragma unroll
      for (int half = 0; half < 2; ++half) {
        float* sn = s[2 * kq + half];
        float p0 = exp2f(sn[0] - ref[0]), p1 = exp2f(sn[1] - ref[0]);
        float p2 = exp2f(sn[2] - ref[1]), p3 = exp2f(sn[3] - ref[1]);
        pa[kq][2 * half] = round_pair<T>(p0, p1);      // row g,   keys 16kq + 8half + 2t, +1
        pa[kq][2 * half + 1] = round_pair<T>(p2, p3);  // row g+8
        l[0] += p0 + p1;
        l[1] += p2 + p3;
      }
    }

    // O = O * alpha + P·V over the key k-steps holding keys.
#pragma unroll
    for (int j = 0; j < Tl::kDn; ++j) {
      if (j * 8 >= D) break;
      o[j][0] *= alpha[0], o[j][1] *= alpha[0], o[j][2] *= alpha[1], o[j][3] *= alpha[1];
      const uint32_t* pv = vt + (j * 8 + g) * Tl::kLdv;  // dim j*8+g
      const int swz = (j << 2) & Tl::kSwz;
#pragma unroll
      for (int kq = 0; kq < kBk / 16; ++kq) {
        if (kq * 16 >= nk) break;
        const uint32_t bv[2] = {pv[(kq * 8 + t) ^ swz], pv[(kq * 8 + t + 4) ^ swz]};  // keys 16kq + 2t.., + 2t+8..
        mma_m16n8k16<T>(o[j], pa[kq], bv);
      }
    }
  }

  // Normalise: the rows' sums over the quad; pad rows (possibly l = 0) are not stored.
  T* out = static_cast<T*>(p.out) + q_row0 * p.ldo + int64_t(h) * D;
#pragma unroll
  for (int r = 0; r < 2; ++r) {
    l[r] += __shfl_xor_sync(kFullMask, l[r], 1);
    l[r] += __shfl_xor_sync(kFullMask, l[r], 2);
    const int row = r0 + 8 * r;
    if (row >= rows) continue;
    const float inv = 1.0f / l[r];
    T* orow = out + row * p.ldo + 2 * t;
#pragma unroll
    for (int j = 0; j < Tl::kDn; ++j) {
      if (j * 8 >= D) break;
      orow[j * 8] = from_f32<T>(o[j][2 * r] * inv);
      orow[j * 8 + 1] = from_f32<T>(o[j][2 * r + 1] * inv);
    }
  }
}

// ---- host side ----------------------------------------------------------------------------------------------------
namespace {

// The head-dim class of D: the smallest of 64, 128, 256 holding it.
int mma_dmax(int D) { return D <= 64 ? 64 : D <= 128 ? 128 : 256; }

size_t mma_smem(int D) {
  switch (mma_dmax(D)) {
    case 64: return mma_attn_smem_bytes<64>(D);
    case 128: return mma_attn_smem_bytes<128>(D);
    default: return mma_attn_smem_bytes<256>(D);
  }
}

template <typename T, int DMAX>
void mma_launch(const AttnParams& p, int32_t batch, eet::Stream stream) {
  launch(attention_prefill_mma_kernel<T, DMAX>, dim3(unsigned(int64_t(batch) * p.q_tiles), unsigned(p.n_heads)),
         dim3(MmaAttnTile<DMAX>::kBlock), mma_attn_smem_bytes<DMAX>(p.head_dim), stream, p);
}

template <typename T>
void mma_dispatch(const AttnParams& p, int32_t batch, eet::Stream stream) {
  switch (mma_dmax(p.head_dim)) {
    case 64: mma_launch<T, 64>(p, batch, stream); break;
    case 128: mma_launch<T, 128>(p, batch, stream); break;
    default: mma_launch<T, 256>(p, batch, stream); break;
  }
}

}  // namespace

bool attention_prefill_mma_supported(eet::DType dtype, int32_t head_dim) {
  if (dtype != eet::DType::F16 && dtype != eet::DType::BF16) return false;
  if (head_dim < 16 || head_dim > 256 || head_dim % 16 != 0) return false;
  return mma_smem(head_dim) <= smem_per_block_optin();
}

void attention_prefill_mma_run(const AttnParams& p, eet::DType dtype, int32_t batch, eet::Stream stream) {
  if (dtype == eet::DType::BF16) mma_dispatch<__nv_bfloat16>(p, batch, stream);
  else mma_dispatch<__half>(p, batch, stream);
}

}  // namespace EET_KNS

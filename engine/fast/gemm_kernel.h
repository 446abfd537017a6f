// GEMM / GEMV tiles over a vector type V (vec_*.h): y (M, N) = x (M, K) · Wᵀ (+ bias) (+ residual), W (N, K) rows
// as stored (f32, f16, bf16, or Q8_0 int8 with a float16 scale per 32). Included by each isa_*.cpp inside its
// own namespace, after V.
//
// Dot-product form: a register tile of MR rows of x by NR rows of W keeps MR×NR vector accumulators along K;
// each step loads MR x vectors and NR W vectors (converted to fp32 in registers: F16C, a shift for bf16,
// sign-extend + convert + scale for Q8_0) and does MR×NR FMAs. Both operands are read in their natural row-major
// layout, so decode (M = 1..few) streams every weight byte exactly once with no packing, and the same tile code
// serves prefill. The summation order of an element (kernels.h GemmJob) is the same in every tile shape.
//
// Prefill (M > gemm_rows) blocks for the caches: an n-block of NB weight rows (converted once to fp32 in
// scratch when they are not fp32: the conversion is then paid once per block instead of once per row tile) stays
// in L2 while m-blocks of MB rows of x pass over it; within them an NR-row tile of W stays in L1 across the
// x tiles. NB and MB follow K so both blocks stay about 256 KiB.

#pragma once

constexpr int kNR = 4;  // weight rows per register tile

struct WRowF32 {
  static constexpr int kDecodeRows = 1;
  static constexpr bool kPrefetch = false;
  static constexpr int kBytes = 4;  // bytes per weight (of the int8 part for Q8_0)
  const float* p;
  const void* addr(int64_t k) const { return p + k; }
  typename V::F vec(int64_t k) const { return V::load(p + k); }
  float at(int64_t k) const { return p[k]; }
};
struct WRowF16 {
  static constexpr int kDecodeRows = 1;
  static constexpr bool kPrefetch = true;
  static constexpr int kBytes = 2;
  const uint16_t* p;
  const void* addr(int64_t k) const { return p + k; }
  typename V::F vec(int64_t k) const { return V::load_f16(p + k); }
  float at(int64_t k) const { return V::f16_to_f32(p[k]); }
};
struct WRowBF16 {
  static constexpr int kDecodeRows = 1;
  static constexpr bool kPrefetch = true;
  static constexpr int kBytes = 2;
  const uint16_t* p;
  const void* addr(int64_t k) const { return p + k; }
  typename V::F vec(int64_t k) const { return V::load_bf16(p + k); }
  float at(int64_t k) const { return eet::bf16_to_f32(p[k]); }
};
// Q8_0: d * q is exact in fp32 (an 11-bit by 8-bit product), so this equals the packed fp32 weight bit for bit.
// ds: the row's scales already in fp32 (q8_scales below), so a step costs a broadcast, not a conversion.
struct WRowQ8 {
  static constexpr int kDecodeRows = 4;
  static constexpr bool kPrefetch = true;
  static constexpr int kBytes = 1;
  const int8_t* q;
  const uint16_t* d;
  const float* ds;
  const void* addr(int64_t k) const { return q + k; }
  typename V::F vec(int64_t k) const { return V::mul(V::load_i8(q + k), V::set1(ds[k >> 5])); }
  float at(int64_t k) const { return float(q[k]) * ds[k >> 5]; }
};

// Converts the float16 scales of rows w[0..n) into buf (n × K/32 floats) and points the rows at them; other
// weight types have nothing to prepare.
template <class WR>
void prepare_rows(WR*, int64_t, int64_t, float*) {}
inline void prepare_rows(WRowQ8* w, int64_t n, int64_t K, float* buf) {
  const int64_t nb = K / 32;
  for (int64_t r = 0; r < n; ++r) {
    float* ds = buf + r * nb;
    for (int64_t b = 0; b < nb; ++b) ds[b] = V::f16_to_f32(w[r].d[b]);
    w[r].ds = ds;
  }
}

inline float gemm_load(eet::DType t, const void* p, int64_t i) {
  switch (t) {
    case eet::DType::F16: return V::f16_to_f32(static_cast<const uint16_t*>(p)[i]);
    case eet::DType::BF16: return eet::bf16_to_f32(static_cast<const uint16_t*>(p)[i]);
    default: return static_cast<const float*>(p)[i];
  }
}

inline void gemm_store(eet::DType t, void* p, int64_t i, float v) {
  switch (t) {
    case eet::DType::F16: static_cast<uint16_t*>(p)[i] = V::f32_to_f16(v); break;
    case eet::DType::BF16: static_cast<uint16_t*>(p)[i] = eet::f32_to_bf16(v); break;
    default: static_cast<float*>(p)[i] = v;
  }
}

// Output element (m, n) from its dot product: + bias, + residual (read before y is written: it may alias), rounded
// once to the dtype.
inline void gemm_out(const eet::fast::GemmJob& j, int64_t m, int64_t n, float s) {
  if (j.bias) s += gemm_load(j.dtype, j.bias, n);
  if (j.residual) s += gemm_load(j.dtype, j.residual, m * j.ldy + n);
  gemm_store(j.dtype, j.y, m * j.ldy + n, s);
}

// One MR × NR tile: rows m0.. of x, weight rows w[0..NR) for outputs n0..
// prefetch > 0 (decode, weights streamed from memory): each step also asks for the same columns of the weight
// rows `prefetch` bytes further on (the next tile's rows), so the memory has the next rows in flight while this
// tile computes: rows of a few KB are too short for the hardware prefetcher to ramp up on its own.
template <int MR, int NR, class WR>
void gemm_tile(const eet::fast::GemmJob& j, int64_t m0, int64_t n0, const WR* w, int64_t prefetch = 0) {
  using F = typename V::F;
  const float* x = j.x + m0 * j.ldx;
  const int64_t K = j.k, ldx = j.ldx;
  F acc[MR][NR];
#pragma GCC unroll 8
  for (int i = 0; i < MR; ++i)
#pragma GCC unroll 8
    for (int c = 0; c < NR; ++c) acc[i][c] = V::zero();
  int64_t k = 0;
  for (; k + V::W <= K; k += V::W) {
    if (prefetch && (k * WR::kBytes) % 64 == 0) {  // once per 64-byte line
#pragma GCC unroll 8
      for (int c = 0; c < NR; ++c) __builtin_prefetch(static_cast<const char*>(w[c].addr(k)) + prefetch);
    }
    F xv[MR];
#pragma GCC unroll 8
    for (int i = 0; i < MR; ++i) xv[i] = V::load(x + i * ldx + k);
#pragma GCC unroll 8
    for (int c = 0; c < NR; ++c) {
      const F wv = w[c].vec(k);
#pragma GCC unroll 8
      for (int i = 0; i < MR; ++i) acc[i][c] = V::fma(xv[i], wv, acc[i][c]);
    }
  }
  for (int i = 0; i < MR; ++i) {
    for (int c = 0; c < NR; ++c) {
      float s = V::hsum(acc[i][c]);
      for (int64_t t = k; t < K; ++t) s = V::fmas(x[i * ldx + t], w[c].at(t), s);
      gemm_out(j, m0 + i, n0 + c, s);
    }
  }
}

// A tile of mr (<= MR) rows by nr (<= kNR) weight rows: the remainders use smaller instances of the same code.
template <int MR, class WR>
void gemm_tile_any(const eet::fast::GemmJob& j, int64_t m0, int mr, int64_t n0, int nr, const WR* w, int64_t prefetch = 0) {
  static_assert(MR <= 4 && kNR == 4, "instances below cover MR, kNR <= 4");
#define EET_TILE_NR(M)                                  \
  switch (nr) {                                         \
    case 1: gemm_tile<M, 1>(j, m0, n0, w, prefetch); return;      \
    case 2: gemm_tile<M, 2>(j, m0, n0, w, prefetch); return;      \
    case 3: gemm_tile<M, 3>(j, m0, n0, w, prefetch); return;      \
    default: gemm_tile<M, 4>(j, m0, n0, w, prefetch); return;     \
  }
  switch (mr) {
    case 1: EET_TILE_NR(1)
    case 2: if (MR >= 2) { EET_TILE_NR(2 <= MR ? 2 : 1) } return;
    case 3: if (MR >= 3) { EET_TILE_NR(3 <= MR ? 3 : 1) } return;
    default: EET_TILE_NR(MR)
  }
#undef EET_TILE_NR
}

inline int64_t gemm_nb(int64_t k) {  // weight rows per n-block: about 256 KiB of fp32, a multiple of kNR
  const int64_t nb = (int64_t(64) * 1024 / std::max<int64_t>(k, 1)) / kNR * kNR;
  return std::min<int64_t>(64, std::max<int64_t>(kNR, nb));
}

inline int64_t gemm_pack_floats(int64_t k) { return gemm_nb(k) * k; }

// Rows [n0, n0 + rows) of W as fp32 into dst (rows, K).
template <class WR>
void gemm_pack(const WR* rows, int64_t n_rows, int64_t K, float* dst) {
  for (int64_t r = 0; r < n_rows; ++r) {
    float* d = dst + r * K;
    int64_t k = 0;
    for (; k + V::W <= K; k += V::W) V::store(d + k, rows[r].vec(k));
    for (; k < K; ++k) d[k] = rows[r].at(k);
  }
}

// Outputs [n0, n1) of every row. row(n) gives weight row n's loader.
template <int MR, class WR, class RowOf>
void gemm_range(const eet::fast::GemmJob& j, int64_t n0, int64_t n1, float* scratch, RowOf row) {
  const int64_t M = j.m, K = j.k;
  WR w[kNR];
  thread_local std::vector<float> scales;  // Q8_0: fp32 scales of the rows in use (prepare_rows)
  if (int64_t(scales.size()) < 64 * (K / 32 + 1)) scales.resize(size_t(64 * (K / 32 + 1)));
  if (M <= MR) {  // decode: stream the weights once, converted in registers
    // Software prefetch, when WR::kPrefetch: whole rows ahead (they are contiguous; Q8_0: the int8 part), at least
    // kNR of them and at least 8 KiB, about what must be in flight to cover the memory latency at full bandwidth.
    // fp32 rows go one at a time as one sequential stream, which the hardware prefetcher follows better alone
    // (measured on the 85M F32 model, 1 thread: ~5% faster decode without; Q8_0's four short rows at once are 2x
    // slower without).
    const int64_t row_bytes = static_cast<const char*>(row(1).addr(0)) - static_cast<const char*>(row(0).addr(0));
    const int64_t ahead = !WR::kPrefetch ? 0 : row_bytes * std::max<int64_t>(kNR, (8192 + row_bytes - 1) / std::max<int64_t>(row_bytes, 1));
    // As few weight rows at a time as keep the FMA chains ahead of the memory (WR::kDecodeRows: one fp32 row, a
    // 64-byte line per dependent FMA; more rows for the narrower types, whose FMAs cover fewer bytes each): the
    // rows are contiguous, so fewer rows at once is closer to one sequential stream, which the hardware prefetcher
    // follows best.
    constexpr int R = WR::kDecodeRows;
    for (int64_t n = n0; n < n1; n += R) {
      const int nr = int(std::min<int64_t>(R, n1 - n));
      for (int c = 0; c < nr; ++c) w[c] = row(n + c);
      prepare_rows(w, nr, K, scales.data());
      gemm_tile_any<MR>(j, 0, int(M), n, nr, w, ahead);
    }
    return;
  }
  const int64_t NB = gemm_nb(K);
  const int64_t MB = std::max<int64_t>(MR, std::min<int64_t>(256, (int64_t(64) * 1024 / std::max<int64_t>(K, 1)) / MR * MR));
  constexpr bool kPack = !std::is_same<WR, WRowF32>::value;
  WRowF32 wf[kNR];
  WR block[64];
  for (int64_t nb = n0; nb < n1; nb += NB) {
    const int64_t rows = std::min<int64_t>(NB, n1 - nb);
    if (kPack) {
      for (int64_t r = 0; r < rows; ++r) block[r] = row(nb + r);
      prepare_rows(block, rows, K, scales.data());
      gemm_pack(block, rows, K, scratch);
    }
    for (int64_t mb = 0; mb < M; mb += MB) {
      const int64_t m_end = std::min(M, mb + MB);
      for (int64_t n = nb; n < nb + rows; n += kNR) {
        const int nr = int(std::min<int64_t>(kNR, nb + rows - n));
        for (int c = 0; c < nr; ++c) {
          if (kPack) wf[c] = WRowF32{scratch + (n - nb + c) * K};
          else w[c] = row(n + c);
        }
        if (!kPack) prepare_rows(w, nr, K, scales.data());
        for (int64_t m = mb; m < m_end; m += MR) {
          const int mr = int(std::min<int64_t>(MR, m_end - m));
          if (kPack) gemm_tile_any<MR>(j, m, mr, n, nr, wf);
          else gemm_tile_any<MR>(j, m, mr, n, nr, w);
        }
      }
    }
  }
}

template <int MR>
void gemm_entry(const eet::fast::GemmJob& j, int64_t n0, int64_t n1, float* scratch) {
  using eet::fast::WKind;
  const int64_t K = j.k;
  switch (j.wkind) {
    case WKind::F32: {
      const float* w = static_cast<const float*>(j.w);
      gemm_range<MR, WRowF32>(j, n0, n1, scratch, [&](int64_t n) { return WRowF32{w + n * K}; });
      break;
    }
    case WKind::F16: {
      const uint16_t* w = static_cast<const uint16_t*>(j.w);
      gemm_range<MR, WRowF16>(j, n0, n1, scratch, [&](int64_t n) { return WRowF16{w + n * K}; });
      break;
    }
    case WKind::BF16: {
      const uint16_t* w = static_cast<const uint16_t*>(j.w);
      gemm_range<MR, WRowBF16>(j, n0, n1, scratch, [&](int64_t n) { return WRowBF16{w + n * K}; });
      break;
    }
    case WKind::Q8: {
      const int8_t* q = static_cast<const int8_t*>(j.w);
      const uint16_t* d = j.wscale;
      gemm_range<MR, WRowQ8>(j, n0, n1, scratch, [&](int64_t n) { return WRowQ8{q + n * K, d + n * (K / 32), nullptr}; });
      break;
    }
  }
}

// Device helpers of the sampler (cuda/sample.cu): the workspace records, order keys and fixed-point probability
// masses, block-wide scans of 64-bit integers, the radix select inside one first-digit bin, and the draw.
// Every function here that contains a barrier must be called by all threads of the block.
#pragma once
#include "common.cuh"
#include "reduce.cuh"

namespace EET_KNS {
namespace sample {

using u64 = unsigned long long;

constexpr int kBlock = 512;                            // threads of every sampling block
constexpr int kWarps = kBlock / 32;
constexpr int64_t kChunk = eet::kSampleChunk;          // vocab ids per block
constexpr int kPer = int(kChunk / kBlock);             // ids per thread in a chunk
constexpr int kBins = int(eet::kSampleBins);           // first radix digit: key >> kBinShift
constexpr int kBinShift = 21;
constexpr int kBinsPerThread = kBins / kBlock;
constexpr float kMassScale = 0x1p39f;                  // fixed-point unit of probability mass
static_assert(kChunk % kBlock == 0 && kBins % kBlock == 0 && kBinsPerThread >= 1, "block shape");
static_assert(kBins == 1 << (32 - kBinShift), "the first digit is the top bits of the key");

// Per (row, chunk). Written by the scan kernel (all fields), then sum_exp / mass by the histogram kernel, sure by
// the selection kernel, extra (atomically) by the selection kernel's last block of the row.
struct ChunkRecord {
  float max;      // largest penalised logit of the chunk
  int32_t argmax; // its lowest id
  int32_t bad;    // a non-finite value occurs in the chunk
  float sum_exp;  // sum of exp((l - row max) / temperature) over the chunk (fp32, for the log-probability)
  u64 mass;       // sum of the chunk's masses
  u64 sure;       // mass of the chunk's ids in bins above the candidate bins (kept whatever the exact threshold)
  u64 extra;      // mass of the chunk's candidates at or above the exact threshold
};
static_assert(sizeof(ChunkRecord) == eet::kSampleChunkRecordBytes, "ops.h sizes the chunk records");

constexpr int32_t kModeDone = 0;    // the histogram kernel wrote the row's token (or the row was non-finite)
constexpr int32_t kModeSelect = 1;  // top-k / top-p: the selection kernel decides the row

// Per row. Zeroed by the scan kernel; counters advanced by the later kernels; the rest written by the histogram
// kernel's last block for the selection kernel.
struct RowRecord {
  uint32_t ticket_hist, ticket_select;  // blocks of the row done with the histogram / selection kernel
  uint32_t n_cand;                      // candidates found (may exceed the capacity: then the row is re-read)
  int32_t mode;
  float mx, temp, log_z;  // row max, temperature, log of the softmax denominator
  int32_t best;           // argmax (lowest id on ties)
  int32_t bin_k;          // top-k: the bin holding the k-th largest key, -1 when top-k is off
  int32_t bin_lo, bin_hi; // candidate bins: [bin_lo, bin_hi] and bin_k
  int32_t k_rest;         // k minus the count of ids in bins above bin_k
  u64 mass_above_k;       // mass of the bins above bin_k
  u64 total_mass;         // mass of the row
};
static_assert(sizeof(RowRecord) == eet::kSampleRowRecordBytes, "ops.h sizes the row records");

// The workspace carved up by eet::sample_workspace_layout(); rows of each section are contiguous.
struct Workspace {
  float* x;               // (B, V) penalised logits
  int32_t* cand;          // (B, cand_cap) candidate ids
  ChunkRecord* chunk;     // (B, n_chunks)
  u64* bin_mass;          // (B, kBins)
  uint32_t* bin_count;    // (B, kBins)
  RowRecord* row;         // (B)
  int64_t cand_cap, n_chunks;
};

// Reads what another block of the same launch wrote (after its fence and the ticket): volatile, so the load goes
// to L2 rather than to a line this SM's L1 might hold.
template <typename T>
__device__ __forceinline__ T vload(const T* p) { return *static_cast<const volatile T*>(p); }

// NaN or an infinity, by the exponent bits: immune to fast-math assumptions about finiteness.
__device__ __forceinline__ bool non_finite(float v) { return (__float_as_uint(v) & 0x7f800000u) == 0x7f800000u; }

// Larger float -> larger key; -0 and +0 share a key, as they compare equal.
__device__ __forceinline__ uint32_t order_key(float v) {
  if (v == 0.0f) v = 0.0f;
  const uint32_t u = __float_as_uint(v);
  return (u & 0x80000000u) ? ~u : (u | 0x80000000u);
}

__device__ __forceinline__ int bin_of(uint32_t key) { return int(key >> kBinShift); }

// Unnormalised probability of a (penalised) logit in fixed point: exp((v - mx) / temp) in [0, 1] times 2^39, so a
// row of 2^24 ids cannot overflow 64 bits. Integer sums are exact, whatever order threads and atomics run in.
__device__ __forceinline__ u64 mass_of(float v, float mx, float temp) {
  return u64(expf((v - mx) / temp) * kMassScale);
}

// top-p's target: ceil(top_p * kept) clamped to [1, kept] (top_p <= 0 keeps the top group only).
__device__ __forceinline__ u64 mass_target(u64 kept, float top_p) {
  const double t = ceil(double(top_p > 0.0f ? top_p : 0.0f) * double(kept));
  return t < 1.0 ? u64(1) : t >= double(kept) ? kept : u64(t);
}

// (value, id) pairs: the larger value wins, the lower id on ties; id < 0 is "none".
__device__ __forceinline__ void argmax_merge(float& v, int& i, float ov, int oi) {
  if (oi >= 0 && (i < 0 || ov > v || (ov == v && oi < i))) {
    v = ov;
    i = oi;
  }
}

__device__ __forceinline__ u64 warp_inclusive_scan_u64(u64 v) {
  const int lane = threadIdx.x & 31;
#pragma unroll
  for (int o = 1; o < 32; o <<= 1) {
    const u64 t = __shfl_up_sync(kFullMask, v, o);
    if (lane >= o) v += t;
  }
  return v;
}

// Shared scratch of the block-wide helpers below.
struct BlockScratch {
  u64 warp_u64[32];
  float warp_f[32];  // also block_reduce_sum's scratch (reduce.cuh: 32 floats)
  int warp_i[32];
};

// Exclusive prefix of v over the threads in index order; total = the sum over the block. Ends with a barrier.
__device__ __forceinline__ u64 block_scan_u64(u64 v, u64& total, BlockScratch& s) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const u64 incl = warp_inclusive_scan_u64(v);
  if (lane == 31) s.warp_u64[warp] = incl;
  __syncthreads();
  u64 before = 0, all = 0;
  for (int w = 0; w < kWarps; ++w) {
    const u64 t = s.warp_u64[w];
    if (w < warp) before += t;
    all += t;
  }
  __syncthreads();
  total = all;
  return before + incl - v;
}

__device__ __forceinline__ u64 block_sum_u64(u64 v, BlockScratch& s) {
  u64 total;
  block_scan_u64(v, total, s);
  return total;
}

// Every thread gets the block's (max, lowest id of the max). Ends with a barrier.
__device__ __forceinline__ void block_argmax(float& v, int& i, BlockScratch& s) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) {
    const float ov = __shfl_xor_sync(kFullMask, v, o);
    const int oi = __shfl_xor_sync(kFullMask, i, o);
    argmax_merge(v, i, ov, oi);
  }
  if (lane == 0) {
    s.warp_f[warp] = v;
    s.warp_i[warp] = i;
  }
  __syncthreads();
  for (int w = 0; w < kWarps; ++w) argmax_merge(v, i, s.warp_f[w], s.warp_i[w]);
  __syncthreads();
}

// Thread t owns bins kBins-1-t*kBinsPerThread downwards (slot e = 0 is its highest), so the block scan of per-thread
// sums runs from the top bin down.
__device__ __forceinline__ int top_bin(int e) { return kBins - 1 - (int(threadIdx.x) * kBinsPerThread + e); }

// For the thread holding it: the slot of the highest bin j with weight(bins >= j) >= target (excl = the weight of
// the bins above this thread's), and the weight of the bins above j; -1 in the other threads.
__device__ __forceinline__ int find_crossing(const u64 (&w)[kBinsPerThread], u64 excl, u64 target, u64& above) {
  if (!(excl < target)) return -1;
  u64 acc = excl;
  for (int e = 0; e < kBinsPerThread; ++e) {
    if (acc + w[e] >= target) {
      above = acc;
      return e;
    }
    acc += w[e];
  }
  return -1;
}

constexpr int kSharedItems = 2048;  // candidates the last block copies into shared memory (ids and values)

// The ids the last block of a row selects among: the row's candidate list (copied into shared memory when it fits,
// so the select rounds do not wait on L2 twice per item), or (ids == nullptr, when the list overflowed) every id of
// the row; callers filter by bin either way.
struct Items {
  const float* x;       // (V) the row's penalised logits
  const int32_t* ids;   // (n) candidate ids in global memory, or nullptr
  int64_t n;
  const int32_t* sid;   // (n) shared copies of ids and values, or nullptr
  const float* sv;
  __device__ __forceinline__ int64_t id(int64_t j) const {
    return sid ? int64_t(sid[j]) : ids ? int64_t(vload(ids + j)) : j;
  }
  __device__ __forceinline__ float value(int64_t j) const { return sv ? sv[j] : x[id(j)]; }
};

struct SelectScratch {
  u64 hist[256];
  u64 above;
  uint32_t digit;
};

// Radix select below the first digit: among the items whose key is in bin `bin`, the largest key t such that the
// weight of those with key >= t (counts, or masses when by_mass) reaches target (1 <= target <= their weight). Three more digits (bits 20..13, 12..5, 4..0), each an integer histogram in shared memory;
// warp 0 finds the digit where the running weight from the top reaches the target (lanes own 8 buckets each, a warp
// scan finds the lane, the lane finds the bucket). The result is the key of an item of positive weight.
__device__ uint32_t select_in_bin(const Items& it, int bin, bool by_mass, u64 target, float mx, float temp,
                                  SelectScratch& sh) {
  const int tid = threadIdx.x, lane = tid & 31;
  uint32_t prefix = uint32_t(bin) << kBinShift, himask = ~0u << kBinShift;
  u64 above = 0;
  for (int r = 0; r < 3; ++r) {
    const int shift = r == 0 ? 13 : r == 1 ? 5 : 0;  // digits: bits 20..13, 12..5, 4..0
    const uint32_t dmask = r == 2 ? 31u : 255u;
    for (int d = tid; d < 256; d += kBlock) sh.hist[d] = 0;
    __syncthreads();
    for (int64_t j = tid; j < it.n; j += kBlock) {
      const float v = it.value(j);
      const uint32_t key = order_key(v);
      if ((key & himask) == prefix) {
        atomicAdd(&sh.hist[(key >> shift) & dmask], by_mass ? mass_of(v, mx, temp) : u64(1));
      }
    }
    __syncthreads();
    if (tid < 32) {
      u64 own = 0;
#pragma unroll
      for (int j = 0; j < 8; ++j) own += sh.hist[255 - 8 * lane - j];
      const u64 incl = warp_inclusive_scan_u64(own);
      const unsigned hit = __ballot_sync(kFullMask, above + incl >= target);
      const int src = hit ? __ffs(int(hit)) - 1 : 31;
      if (lane == src) {
        u64 acc = above + incl - own;
        int digit = 255 - 8 * lane - 7;
        for (int j = 0; j < 8; ++j) {
          const u64 w = sh.hist[255 - 8 * lane - j];
          if (acc + w >= target) {
            digit = 255 - 8 * lane - j;
            break;
          }
          acc += w;
        }
        sh.digit = uint32_t(digit);
        sh.above = acc;
      }
    }
    __syncthreads();
    prefix |= sh.digit << shift;
    himask |= dmask << shift;
    above = sh.above;  // sh is next written after two more barriers, which every thread reaches after this read
  }
  return prefix;
}

// Kept mass of chunk c of a row: its whole mass (no selection), or the selection's sure + extra parts.
struct KeptOfChunk {
  const ChunkRecord* rec;  // (n_chunks) the row's records
  bool selected;
  __device__ __forceinline__ u64 operator()(int64_t c) const {
    return selected ? vload(&rec[c].sure) + vload(&rec[c].extra) : vload(&rec[c].mass);
  }
};

struct DrawScratch {
  int64_t chunk;
  u64 base;
  int token;
};

// The draw (ops.h step 6) in vocab order: with thr = u * (kept mass of the row), the first id whose running kept
// mass exceeds thr (compared in double, as the integer sums convert). Kept = key >= lo. Level 1: per-chunk kept
// masses (kept_of), scanned in tiles of kBlock chunks, find the crossing chunk; level 2: inside it each thread sums
// kPer contiguous ids, a block scan finds the crossing thread, which walks its ids. The sums are exact integers, so
// the token does not depend on thread order. Returns -1 only if nothing crosses (not reached: u < 1 and the row
// max is always kept, so kept mass > thr).
__device__ int draw_token(const KeptOfChunk& kept_of, int64_t n_chunks, const float* x, int64_t vocab, uint32_t lo,
                          float mx, float temp, double u, DrawScratch& sh, BlockScratch& bs) {
  const int tid = threadIdx.x;
  u64 t = 0;
  for (int64_t c = tid; c < n_chunks; c += kBlock) t += kept_of(c);
  const double thr = u * double(block_sum_u64(t, bs));
  if (tid == 0) {
    sh.chunk = -1;
    sh.token = -1;
  }
  __syncthreads();
  u64 base = 0;
  for (int64_t c0 = 0; c0 < n_chunks; c0 += kBlock) {
    const int64_t c = c0 + tid;
    const u64 own = c < n_chunks ? kept_of(c) : 0;
    u64 tile;
    const u64 excl = base + block_scan_u64(own, tile, bs);
    if (!(double(excl) > thr) && double(excl + own) > thr) {
      sh.chunk = c;
      sh.base = excl;
    }
    __syncthreads();
    if (sh.chunk >= 0) break;  // block-uniform
    base += tile;
  }
  if (sh.chunk < 0) return -1;
  const int64_t i0 = sh.chunk * kChunk + int64_t(tid) * kPer;
  const int64_t i1 = i0 + kPer < vocab ? i0 + kPer : vocab;
  u64 own = 0;
  for (int64_t i = i0; i < i1; ++i) {
    const float v = x[i];
    if (order_key(v) >= lo) own += mass_of(v, mx, temp);
  }
  u64 unused;
  u64 acc = sh.base + block_scan_u64(own, unused, bs);
  if (!(double(acc) > thr) && double(acc + own) > thr) {
    for (int64_t i = i0; i < i1; ++i) {
      const float v = x[i];
      if (order_key(v) < lo) continue;
      acc += mass_of(v, mx, temp);
      if (double(acc) > thr) {
        sh.token = int(i);
        break;
      }
    }
  }
  __syncthreads();
  return sh.token;
}

}  // namespace sample
}  // namespace EET_KNS

// Sampling on the device: one token id per row of logits (B, V), following SampleArgs (engine/ops.h) step by step:
// repetition, frequency and presence penalties, greedy argmax, temperature, top-k, top-p, a draw in vocab order
// from a counter-based RNG (engine/rng.h), optional log-probability of the token.
//
// Two kernels:
//   sample_prepare_kernel<T>  grid (B, ceil(V / 4096)), 256 threads: ws (B, V) fp32 = logits with the penalties
//       applied. A row without penalties is a plain conversion. Otherwise each block walks the row's whole
//       history and tallies the ids that fall in its chunk in shared memory, one int32 word per id: the count of
//       its occurrences among the generated tokens (atomicAdd of 1) and a bit for "occurs in the prompt"
//       (atomicOr). Integer atomics commute, so the tally — and the penalised value computed from it and the
//       read-only input, once per id — does not depend on the order in which threads run.
//   sample_kernel<BLOCK>  one block per row, BLOCK = 256 (V <= 4096) or 512, streaming the row of ws (a few
//       hundred KB at most, L2-resident) several times:
//       1. max and argmax (lowest id on ties) by a block reduction; greedy rows (temperature <= 0) stop here.
//          A row with a non-finite value stops here too, with token -1.
//       2. top-k: the exact k-th largest penalised logit by radix select on the order-preserving uint32 key of
//          the float: 4 passes of 8-bit digit histograms in shared memory (no sorting, ties at the boundary kept).
//       3. top-p: the same radix select weighted by probability mass instead of counts, over the ids kept by
//          top-k: the largest key whose kept-and-above mass reaches top_p of the kept mass.
//       4. the draw: u * kept mass located by a two-level prefix scan in vocab order: per-warp sums over
//          contiguous warp ranges (coalesced), then inside the crossing warp's range a block scan of per-thread
//          sums over short contiguous pieces; the thread whose piece crosses walks it to the token.
//   Probability mass is unnormalised, exp((l - max) / temperature) in [0, 1], held in fixed point (x 2^39, so a
//   row of 2^24 ids cannot overflow 64 bits): histograms and prefix sums are integer adds, so they are exact and
//   the token does not depend on the order in which threads or atomics happen to run.
//   Top-k/top-p compare penalised logits, not probabilities: for temperature > 0 they have the same order and
//   ties, and the comparison is then exact; the cpu reference (engine/cpu/sample.cpp) decides on the same floats.
#include "common.cuh"
#include "reduce.cuh"
#include "../engine/rng.h"

namespace EET_KNS {
namespace {

constexpr int kPrepareBlock = 256;
constexpr int64_t kPrepareChunk = 4096;  // ids per prepare block: its tally is 16 KiB of shared memory
// A tally word: bit 30 = the id occurs in the prompt; bits 0..29 = its count among the generated tokens (at most
// history_stride <= 2^24, so the count never reaches the flag).
constexpr int32_t kInPrompt = 1 << 30;
constexpr int32_t kCountMask = kInPrompt - 1;
constexpr float kMassScale = 0x1p39f;    // fixed-point unit of probability mass

using u64 = unsigned long long;

__device__ __forceinline__ int64_t imin(int64_t a, int64_t b) { return a < b ? a : b; }

__device__ __forceinline__ float penalize(float x, float penalty) { return x > 0.0f ? x / penalty : x * penalty; }

// NaN or an infinity, by the exponent bits: immune to fast-math assumptions about finiteness.
__device__ __forceinline__ bool non_finite(float v) { return (__float_as_uint(v) & 0x7f800000u) == 0x7f800000u; }

// Larger float -> larger key; -0 and +0 share a key, as they compare equal.
__device__ __forceinline__ uint32_t order_key(float v) {
  if (v == 0.0f) v = 0.0f;
  const uint32_t u = __float_as_uint(v);
  return (u & 0x80000000u) ? ~u : (u | 0x80000000u);
}

// Unnormalised probability of a (penalised) logit in fixed point.
__device__ __forceinline__ u64 mass_of(float v, float mx, float temp) {
  return u64(expf((v - mx) / temp) * kMassScale);
}

__device__ __forceinline__ u64 warp_sum_u64(u64 v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(kFullMask, v, o);
  return v;
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

// (value, id) pairs: the larger value wins, the lower id on ties; id < 0 is "none".
__device__ __forceinline__ void argmax_merge(float& v, int& i, float ov, int oi) {
  if (oi >= 0 && (i < 0 || ov > v || (ov == v && oi < i))) {
    v = ov;
    i = oi;
  }
}

struct SampleShared {
  float red[32];          // block_reduce_sum scratch
  float arg_v[32];        // per-warp argmax
  int arg_i[32];
  u64 hist[256];          // radix-select digit histogram (counts or mass)
  u64 warp_mass[32];      // draw, level 1: kept mass per warp range
  u64 thread_mass[32];    // draw, level 2: per-warp totals of the block scan
  u64 sel_above, sel_target;
  uint32_t sel_digit;
  int token;
};

// Radix select over the keys of x[0, n) that are >= lo: returns the largest key t such that the weight of
// {key >= t} reaches the target. Weights are counts (target = count_target), or, when frac >= 0, masses with
// target = ceil(frac * total kept mass) clamped to [1, total]. Each pass histograms one 8-bit digit of the
// keys matching the digits chosen so far; warp 0 then finds the bucket where the running weight from the top
// reaches the target (lanes own 8 buckets each, a warp scan finds the lane, the lane finds the bucket).
template <int BLOCK>
__device__ uint32_t radix_select(const float* __restrict__ x, int64_t n, uint32_t lo, u64 count_target, float frac,
                                 float mx, float temp, SampleShared& sh) {
  const int tid = threadIdx.x, lane = tid & 31;
  const bool by_mass = frac >= 0.0f;
  uint32_t prefix = 0;
  u64 above = 0, target = count_target;
  for (int shift = 24; shift >= 0; shift -= 8) {
    const uint32_t himask = shift == 24 ? 0u : 0xffffffffu << (shift + 8);
    for (int d = tid; d < 256; d += BLOCK) sh.hist[d] = 0;
    __syncthreads();
    for (int64_t i = tid; i < n; i += BLOCK) {
      const float v = x[i];
      const uint32_t key = order_key(v);
      if (key >= lo && (key & himask) == prefix) {
        atomicAdd(&sh.hist[(key >> shift) & 255u], by_mass ? mass_of(v, mx, temp) : u64(1));
      }
    }
    __syncthreads();
    if (tid < 32) {
      u64 own = 0;
#pragma unroll
      for (int j = 0; j < 8; ++j) own += sh.hist[255 - 8 * lane - j];
      const u64 incl = warp_inclusive_scan_u64(own);
      if (by_mass && shift == 24) {
        const u64 total = __shfl_sync(kFullMask, incl, 31);
        const double t = ceil(double(frac) * double(total));
        target = t < 1.0 ? u64(1) : t >= double(total) ? total : u64(t);
      }
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
        sh.sel_digit = uint32_t(digit);
        sh.sel_above = acc;
        sh.sel_target = target;
      }
    }
    __syncthreads();
    prefix |= sh.sel_digit << shift;
    above = sh.sel_above;
    target = sh.sel_target;
  }
  return prefix;
}

}  // namespace

// ws (B, V) fp32 = penalised logits. grid (B, ceil(V / kPrepareChunk)).
template <typename T>
__global__ void __launch_bounds__(kPrepareBlock)
    sample_prepare_kernel(const T* __restrict__ logits,               // (B, V)
                          float* __restrict__ ws,                     // (B, V)
                          int64_t vocab,
                          const int32_t* __restrict__ history,        // (B, history_stride) or nullptr
                          const int32_t* __restrict__ history_len,    // (B)
                          const int32_t* __restrict__ history_start,  // (B) first generated token of each row
                          int64_t history_stride,
                          const float* __restrict__ penalty,          // (B) repetition
                          const float* __restrict__ presence,         // (B)
                          const float* __restrict__ frequency) {      // (B)
  __shared__ int32_t tally[kPrepareChunk];
  const int64_t b = blockIdx.x;
  const int64_t c0 = int64_t(blockIdx.y) * kPrepareChunk, c1 = imin(vocab, c0 + kPrepareChunk);
  const T* x = logits + b * vocab;
  float* y = ws + b * vocab;
  const float pen = penalty[b], pres = presence[b], freq = frequency[b];
  // Uniform over the block (one row), so the barriers below are reached by every thread or by none.
  if (history == nullptr || (pen == 1.0f && pres == 0.0f && freq == 0.0f)) {
    for (int64_t i = c0 + threadIdx.x; i < c1; i += kPrepareBlock) y[i] = to_f32(x[i]);
    return;
  }
  for (int64_t i = threadIdx.x; i < c1 - c0; i += kPrepareBlock) tally[i] = 0;
  __syncthreads();
  const int32_t* h = history + b * history_stride;
  const int64_t start = history_start[b];
  for (int64_t j = threadIdx.x; j < history_len[b]; j += kPrepareBlock) {
    const int64_t id = h[j];
    if (id < c0 || id >= c1) continue;
    if (j >= start) {
      atomicAdd(&tally[id - c0], 1);
    } else {
      atomicOr(&tally[id - c0], kInPrompt);
    }
  }
  __syncthreads();
  for (int64_t i = c0 + threadIdx.x; i < c1; i += kPrepareBlock) {
    const int32_t t = tally[i - c0];
    float v = to_f32(x[i]);
    if (t != 0) v = penalize(v, pen);
    if ((t & kCountMask) != 0) v = fmaf(-freq, float(t & kCountMask), v) - pres;
    y[i] = v;
  }
}

// One block per row of ws: the token (and its log-probability). grid (B).
template <int BLOCK>
__global__ void __launch_bounds__(BLOCK) sample_kernel(const float* __restrict__ ws,  // (B, V) penalised logits
                                                       eet::SampleArgs a) {
  constexpr int NW = BLOCK / 32;
  __shared__ SampleShared sh;
  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
  const int64_t b = blockIdx.x, n = a.vocab;
  const float* x = ws + b * n;

  // 1. max / argmax
  float mx = -INFINITY;
  int best = -1;
  bool bad = false;
  for (int64_t i = tid; i < n; i += BLOCK) {
    const float v = x[i];
    bad |= non_finite(v);
    argmax_merge(mx, best, v, int(i));
  }
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) {
    const float ov = __shfl_xor_sync(kFullMask, mx, o);
    const int oi = __shfl_xor_sync(kFullMask, best, o);
    argmax_merge(mx, best, ov, oi);
  }
  if (lane == 0) {
    sh.arg_v[warp] = mx;
    sh.arg_i[warp] = best;
  }
  if (tid == 0) sh.token = -1;
  // A non-finite logit leaves nothing meaningful to sample (NaN compares false, infinities make NaN masses): the
  // row reports token -1 and the engine fails its request with ERR_NUMERIC. The barrier's vote is block-uniform.
  if (__syncthreads_or(bad)) {
    if (tid == 0) {
      a.tokens_out[b] = -1;
      if (a.logprob_out != nullptr) a.logprob_out[b] = __int_as_float(0x7fc00000);
    }
    return;
  }
  for (int w = 0; w < NW; ++w) argmax_merge(mx, best, sh.arg_v[w], sh.arg_i[w]);

  const float temperature = a.temperature[b];
  const bool greedy = !(temperature > 0.0f);
  const float temp = greedy ? 1.0f : temperature;
  float log_z = 0.0f;
  if (a.logprob_out != nullptr) {
    float s = 0.0f;
    for (int64_t i = tid; i < n; i += BLOCK) s += expf((x[i] - mx) / temp);
    log_z = logf(block_reduce_sum<BLOCK>(s, sh.red));
  }
  if (greedy) {
    if (tid == 0) {
      a.tokens_out[b] = best;
      if (a.logprob_out != nullptr) a.logprob_out[b] = -log_z;
    }
    return;
  }

  // 2, 3. top-k, top-p: the kept ids are those with order_key >= lo
  uint32_t lo = 0;
  const int32_t k = a.top_k[b];
  if (k > 0 && k < n) lo = radix_select<BLOCK>(x, n, 0u, u64(k), -1.0f, mx, temp, sh);
  const float top_p = a.top_p[b];
  if (top_p < 1.0f) lo = radix_select<BLOCK>(x, n, lo, 0, top_p > 0.0f ? top_p : 0.0f, mx, temp, sh);

  // 4. the draw. Level 1: kept mass of each warp's contiguous range.
  const double u = eet_rand_uniform(a.seed[b], a.step[b]);
  const int64_t range = ceil_div(ceil_div(n, NW), 32) * 32;
  u64 m = 0;
  for (int64_t i = warp * range + lane; i < imin(n, (warp + 1) * range); i += 32) {
    const float v = x[i];
    if (order_key(v) >= lo) m += mass_of(v, mx, temp);
  }
  m = warp_sum_u64(m);
  if (lane == 0) sh.warp_mass[warp] = m;
  __syncthreads();
  u64 kept = 0;
  for (int w = 0; w < NW; ++w) kept += sh.warp_mass[w];
  const double thr = u * double(kept);
  u64 base = 0;
  int cw = NW - 1;
  for (int w = 0; w < NW; ++w) {
    if (double(base + sh.warp_mass[w]) > thr) {
      cw = w;
      break;
    }
    base += sh.warp_mass[w];
  }

  // Level 2: the crossing warp's range in short contiguous pieces, one per thread; block scan of their masses.
  const int64_t r0 = cw * range, r1 = imin(n, r0 + range);
  const int64_t piece = r1 > r0 ? ceil_div(r1 - r0, BLOCK) : 0;
  const int64_t p0 = r0 + tid * piece, p1 = imin(r1, p0 + piece);
  u64 own = 0;
  for (int64_t i = p0; i < p1; ++i) {
    const float v = x[i];
    if (order_key(v) >= lo) own += mass_of(v, mx, temp);
  }
  const u64 incl = warp_inclusive_scan_u64(own);
  if (lane == 31) sh.thread_mass[warp] = incl;
  __syncthreads();
  u64 acc = base + incl - own;
  for (int w = 0; w < warp; ++w) acc += sh.thread_mass[w];
  if (double(acc + own) > thr && !(double(acc) > thr)) {
    for (int64_t i = p0; i < p1; ++i) {
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
  if (tid == 0) {
    const int token = sh.token >= 0 ? sh.token : best;  // not reached with finite logits: kept mass > thr
    a.tokens_out[b] = token;
    if (a.logprob_out != nullptr) a.logprob_out[b] = (x[token] - mx) / temp - log_z;
  }
}

template <typename T>
void sample_launch(const eet::SampleArgs& a, float* ws, eet::Stream stream) {
  const dim3 prep_grid(unsigned(a.batch), unsigned(ceil_div(a.vocab, kPrepareChunk)));
  launch(sample_prepare_kernel<T>, prep_grid, dim3(kPrepareBlock), 0, stream, static_cast<const T*>(a.logits), ws,
         a.vocab, a.history, a.history_len, a.history_start, a.history_stride, a.repetition_penalty,
         a.presence_penalty, a.frequency_penalty);
  if (a.vocab <= 4096) {
    launch(sample_kernel<256>, dim3(unsigned(a.batch)), dim3(256), 0, stream, ws, a);
  } else {
    launch(sample_kernel<512>, dim3(unsigned(a.batch)), dim3(512), 0, stream, ws, a);
  }
}

void op_sample(const eet::SampleArgs& a, eet::Stream stream) {
  float* ws = static_cast<float*>(a.workspace);  // (B, V), eet::sample_workspace_bytes(); validate() checked its size
  EET_DISPATCH_FLOAT(a.dtype, T, sample_launch<T>(a, ws, stream));
}

}  // namespace EET_KNS

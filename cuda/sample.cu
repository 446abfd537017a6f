// Sampling on the device: one token id per row of logits (B, V), following SampleArgs (engine/ops.h) step by step:
// repetition, frequency and presence penalties, greedy argmax, temperature, top-k, top-p, a draw in vocab order
// from a counter-based RNG (engine/rng.h), optional log-probability of the token.
//
// Three kernels, each on grid (B, ceil(V / 2048)): block (b, c) handles ids [2048c, 2048c + 2048) of row b with 512
// threads, so a row is spread over many SMs (75 blocks at V = 151,936). Each kernel's last block of a row to finish
// (a ticket counter in the row's record, after a fence) does the row-wide step that needs every block's result; no
// block ever waits for another. Helpers and the workspace records: cuda/sample.cuh.
//   sample_scan_kernel<T>  penalised logits ws (B, V) fp32; per chunk: max, argmax (lowest id), non-finite flag.
//       Penalties: the block walks the row's history and tallies the ids of its chunk in shared memory, one int32
//       per id: the count among the generated tokens (atomicAdd of 1) and a bit for "occurs in the prompt"
//       (atomicOr); integer atomics commute, so the result does not depend on thread order. It also zeroes the
//       row's histograms and record for the next two kernels.
//   sample_hist_kernel     every block reduces the chunk records to the row max / argmax / non-finite flag (a
//       non-finite row: token -1, log-probability NaN, done). Per chunk: the softmax partial sum (fp32) and the
//       probability mass; for rows with top-k or top-p, histograms of count and mass over the first radix digit
//       (the top 11 bits of the order-preserving key of the float), merged into the row's by integer atomics.
//       Last block: log_z; greedy rows take the argmax, rows without top-k / top-p draw at once from the chunk
//       masses; the others get, from the histograms, the bin holding the k-th largest key (bin_k) and the bins
//       where top-p's threshold can lie ([bin_lo, bin_hi]: its target depends on the mass kept by top-k, known to
//       within the mass of bin_k).
//   sample_select_kernel   rows with top-k / top-p only. Per chunk: the mass of ids in bins above bin_hi (kept
//       whatever the exact thresholds) and the ids in the candidate bins, appended to the row's list (16,384 ids
//       at most; beyond, the last block re-reads the row instead). Last block: radix select over the remaining
//       21 bits of the candidates (select_in_bin): lo_k = the k-th largest key; then top-p's target from the
//       exact kept mass, its bin, and tau = the largest key whose kept-and-above mass reaches the target; the
//       threshold lo = max(lo_k, tau) and the draw.
// Selection and candidate order: top-k and top-p decide by thresholds on the key (value order, ties at a
// threshold kept, as in the cpu reference), so no candidate order is involved; the draw walks ids in vocab order
// (chunks in order, then ids inside the crossing chunk), as the cpu reference does, so for the same uniform number
// both pick the first id whose running kept mass exceeds u * kept mass.
// Probability mass is unnormalised, exp((l - max) / temperature) in [0, 1], held in fixed point (x 2^39):
// histograms and prefix sums are integer adds, exact and independent of the order threads or atomics run in.
// Top-k / top-p compare penalised logits, not probabilities: for temperature > 0 they have the same order and ties.
#include "sample.cuh"
#include "../engine/rng.h"

namespace EET_KNS {

using namespace sample;

namespace {

constexpr int32_t kInPrompt = 1 << 30;  // tally bit: the id occurs in the prompt; bits 0..29: its generated count
constexpr int32_t kCountMask = kInPrompt - 1;

__device__ __forceinline__ float penalize(float x, float penalty) { return x > 0.0f ? x / penalty : x * penalty; }

// After the block's writes: every thread fences, thread 0 takes a ticket. True in all threads of the block that
// finishes the row last; that block then sees the others' writes (read them with vload).
__device__ __forceinline__ bool last_of_row(uint32_t* ticket, uint32_t n_blocks, int* flag) {
  __threadfence();
  __syncthreads();
  if (threadIdx.x == 0) {
    *flag = atomicAdd(ticket, 1u) == n_blocks - 1;
    __threadfence();
  }
  __syncthreads();
  return *flag != 0;
}

__device__ __forceinline__ void write_token(const eet::SampleArgs& a, int64_t b, int token, float logprob) {
  a.tokens_out[b] = token;
  if (a.logprob_out != nullptr) a.logprob_out[b] = logprob;
}

}  // namespace

// ws = penalised logits; chunk records; zeroed histograms and row record. grid (B, n_chunks).
template <typename T>
__global__ void __launch_bounds__(kBlock)
    sample_scan_kernel(const T* __restrict__ logits,               // (B, V)
                       Workspace w, int64_t vocab,
                       const int32_t* __restrict__ history,        // (B, history_stride) or nullptr
                       const int32_t* __restrict__ history_len,    // (B)
                       const int32_t* __restrict__ history_start,  // (B) first generated token of each row
                       int64_t history_stride,
                       const float* __restrict__ penalty,          // (B) repetition
                       const float* __restrict__ presence,         // (B)
                       const float* __restrict__ frequency) {      // (B)
  __shared__ int32_t tally[kChunk];
  __shared__ BlockScratch bs;
  const int tid = threadIdx.x;
  const int64_t b = blockIdx.x, c = blockIdx.y, C = w.n_chunks;
  const int64_t c0 = c * kChunk, c1 = c0 + kChunk < vocab ? c0 + kChunk : vocab;
  const T* x = logits + b * vocab;
  float* y = w.x + b * vocab;
  const float pen = penalty[b], pres = presence[b], freq = frequency[b];
  // Uniform over the block (one row), so the barriers below are reached by every thread or by none.
  const bool penalised = history != nullptr && !(pen == 1.0f && pres == 0.0f && freq == 0.0f);
  if (penalised) {
    for (int64_t i = tid; i < c1 - c0; i += kBlock) tally[i] = 0;
    __syncthreads();
    const int32_t* h = history + b * history_stride;
    const int64_t start = history_start[b];
    for (int64_t j = tid; j < history_len[b]; j += kBlock) {
      const int64_t id = h[j];
      if (id < c0 || id >= c1) continue;
      if (j >= start) {
        atomicAdd(&tally[id - c0], 1);
      } else {
        atomicOr(&tally[id - c0], kInPrompt);
      }
    }
    __syncthreads();
  }
  float mx = -INFINITY;
  int best = -1;
  bool bad = false;
  for (int64_t i = c0 + tid; i < c1; i += kBlock) {
    float v = to_f32(x[i]);
    if (penalised) {
      const int32_t t = tally[i - c0];
      if (t != 0) v = penalize(v, pen);
      if ((t & kCountMask) != 0) v = fmaf(-freq, float(t & kCountMask), v) - pres;
    }
    y[i] = v;
    bad |= non_finite(v);
    argmax_merge(mx, best, v, int(i));
  }
  block_argmax(mx, best, bs);
  bad = __syncthreads_or(bad);
  if (tid == 0) w.chunk[b * C + c] = ChunkRecord{mx, best, bad ? 1 : 0, 0.0f, 0, 0, 0};
  // The row's histograms, spread over its blocks; the row record by block 0.
  for (int64_t j = c * kBlock + tid; j < kBins; j += C * kBlock) {
    w.bin_mass[b * kBins + j] = 0;
    w.bin_count[b * kBins + j] = 0;
  }
  if (c == 0 && tid == 0) w.row[b] = RowRecord{};
}

// Row max, softmax partial sums, masses, first-digit histograms; the last block finishes greedy and unfiltered
// rows and prepares the selection of the others. grid (B, n_chunks).
__global__ void __launch_bounds__(kBlock) sample_hist_kernel(Workspace w, eet::SampleArgs a) {
  __shared__ u64 hist_mass[kBins];
  __shared__ uint32_t hist_count[kBins];
  __shared__ BlockScratch bs;
  __shared__ DrawScratch ds;
  __shared__ int last;
  __shared__ int sel_bin[3];  // bin_k, bin_lo, bin_hi
  __shared__ int32_t sel_k_rest;
  __shared__ u64 sel_mass_above_k, sel_mass_bin_k;
  const int tid = threadIdx.x;
  const int64_t b = blockIdx.x, c = blockIdx.y, C = w.n_chunks, V = a.vocab;
  const int64_t c0 = c * kChunk, c1 = c0 + kChunk < V ? c0 + kChunk : V;
  const float* x = w.x + b * V;
  ChunkRecord* rec = w.chunk + b * C;
  RowRecord* row = w.row + b;

  float mx = -INFINITY;
  int best = -1;
  bool bad = false;
  for (int64_t j = tid; j < C; j += kBlock) {
    const ChunkRecord r = rec[j];
    bad |= r.bad != 0;
    argmax_merge(mx, best, r.max, r.argmax);
  }
  block_argmax(mx, best, bs);
  // A non-finite logit leaves nothing meaningful to sample (NaN compares false, infinities make NaN masses): the row
  // reports token -1 and the engine fails its request with ERR_NUMERIC. The barrier's vote is block-uniform.
  if (__syncthreads_or(bad)) {
    if (c == 0 && tid == 0) write_token(a, b, -1, __int_as_float(0x7fc00000));
    return;
  }
  const float temperature = a.temperature[b];
  const bool greedy = !(temperature > 0.0f);
  const bool need_z = a.logprob_out != nullptr;
  if (greedy && !need_z) {  // the argmax is all there is to it
    if (c == 0 && tid == 0) a.tokens_out[b] = best;
    return;
  }
  const float temp = greedy ? 1.0f : temperature;
  const int32_t k = a.top_k[b];
  const float top_p = a.top_p[b];
  const bool top_k_on = k > 0 && k < V, top_p_on = top_p < 1.0f;
  const bool select = !greedy && (top_k_on || top_p_on);

  if (select) {
    for (int j = tid; j < kBins; j += kBlock) {
      hist_mass[j] = 0;
      hist_count[j] = 0;
    }
    __syncthreads();
  }
  float s = 0.0f;
  u64 m = 0;
  for (int64_t i = c0 + tid; i < c1; i += kBlock) {
    const float v = x[i];
    if (need_z) s += expf((v - mx) / temp);
    if (!greedy) {
      const u64 mv = mass_of(v, mx, temp);
      m += mv;
      if (select) {
        const int bin = bin_of(order_key(v));
        atomicAdd(&hist_count[bin], 1u);
        atomicAdd(&hist_mass[bin], mv);
      }
    }
  }
  s = block_reduce_sum<kBlock>(s, bs.warp_f);  // its barriers also complete the shared histograms
  m = block_sum_u64(m, bs);
  if (select) {
    for (int j = tid; j < kBins; j += kBlock) {
      if (hist_count[j] == 0) continue;
      atomicAdd(&w.bin_count[b * kBins + j], hist_count[j]);
      atomicAdd(&w.bin_mass[b * kBins + j], hist_mass[j]);
    }
  }
  if (tid == 0) {
    rec[c].sum_exp = s;
    rec[c].mass = m;
  }
  if (!last_of_row(&row->ticket_hist, uint32_t(C), &last)) return;

  // ---- the row's last block ----
  float zs = 0.0f;
  for (int64_t j = tid; j < C; j += kBlock) zs += vload(&rec[j].sum_exp);
  const float log_z = logf(block_reduce_sum<kBlock>(zs, bs.warp_f));  // unused (log 0) without logprob_out
  if (greedy) {
    if (tid == 0) write_token(a, b, best, -log_z);
    return;
  }
  if (!select) {
    const double u = eet_rand_uniform(a.seed[b], a.step[b]);
    int token = draw_token(KeptOfChunk{rec, false}, C, x, V, 0u, mx, temp, u, ds, bs);
    if (tid == 0) {
      if (token < 0) token = best;  // not reached (see draw_token)
      write_token(a, b, token, (x[token] - mx) / temp - log_z);
    }
    return;
  }
  // Bins from the top, kBinsPerThread per thread: counts and masses, and their scans.
  u64 cnt[kBinsPerThread], mas[kBinsPerThread];
  u64 own_c = 0, own_m = 0;
  for (int e = 0; e < kBinsPerThread; ++e) {
    const int j = top_bin(e);
    cnt[e] = vload(&w.bin_count[b * kBins + j]);
    mas[e] = vload(&w.bin_mass[b * kBins + j]);
    own_c += cnt[e];
    own_m += mas[e];
  }
  u64 total_c, total_m;
  const u64 excl_c = block_scan_u64(own_c, total_c, bs);
  const u64 excl_m = block_scan_u64(own_m, total_m, bs);
  if (tid == 0) {
    sel_bin[0] = sel_bin[1] = sel_bin[2] = -1;  // all found below: targets are in [1, total]
    sel_k_rest = 0;
    sel_mass_above_k = 0;
    sel_mass_bin_k = 0;
  }
  __syncthreads();
  if (top_k_on) {
    u64 above;
    const int e = find_crossing(cnt, excl_c, u64(k), above);
    if (e >= 0) {
      u64 m_above = excl_m;
      for (int f = 0; f < e; ++f) m_above += mas[f];
      sel_bin[0] = top_bin(e);
      sel_k_rest = int32_t(u64(k) - above);
      sel_mass_above_k = m_above;
      sel_mass_bin_k = mas[e];
    }
    __syncthreads();
  }
  const int bin_k = sel_bin[0];
  if (top_p_on) {
    // The target follows the mass kept by top-k, which lies in [above bin_k, above bin_k + bin_k's mass] (and is
    // at least 1: the row max is always kept). The target's bin moves down as the target grows.
    const u64 kept_lo = top_k_on ? (sel_mass_above_k > 0 ? sel_mass_above_k : 1) : total_m;
    const u64 kept_hi = top_k_on ? sel_mass_above_k + sel_mass_bin_k : total_m;
    u64 above;
    const int e_hi = find_crossing(mas, excl_m, mass_target(kept_lo, top_p), above);
    if (e_hi >= 0) sel_bin[2] = top_bin(e_hi);
    const int e_lo = find_crossing(mas, excl_m, mass_target(kept_hi, top_p), above);
    if (e_lo >= 0) sel_bin[1] = top_bin(e_lo);
  } else if (tid == 0) {
    sel_bin[1] = sel_bin[2] = bin_k;
  }
  __syncthreads();
  if (tid == 0) {
    row->mode = kModeSelect;
    row->mx = mx;
    row->temp = temp;
    row->log_z = log_z;
    row->best = best;
    row->bin_k = bin_k;
    row->bin_lo = sel_bin[1];
    row->bin_hi = sel_bin[2];
    row->k_rest = sel_k_rest;
    row->mass_above_k = sel_mass_above_k;
    row->total_mass = total_m;
  }
}

// Rows with top-k / top-p: sure masses and candidates per chunk; the last block selects exactly and draws.
// grid (B, n_chunks).
__global__ void __launch_bounds__(kBlock) sample_select_kernel(Workspace w, eet::SampleArgs a) {
  __shared__ BlockScratch bs;
  __shared__ SelectScratch ss;
  __shared__ DrawScratch ds;
  __shared__ int last;
  __shared__ uint32_t cand_base;
  __shared__ int tau_bin;
  __shared__ u64 tau_above;
  __shared__ int32_t items_id[kSharedItems];
  __shared__ float items_v[kSharedItems];
  const int tid = threadIdx.x;
  const int64_t b = blockIdx.x, c = blockIdx.y, C = w.n_chunks, V = a.vocab;
  RowRecord* row = w.row + b;
  if (row->mode != kModeSelect) return;  // uniform over the block
  const float mx = row->mx, temp = row->temp;
  const int bin_k = row->bin_k, bin_lo = row->bin_lo, bin_hi = row->bin_hi;
  const float* x = w.x + b * V;
  ChunkRecord* rec = w.chunk + b * C;
  int32_t* cand = w.cand + b * w.cand_cap;

  // Candidates of this chunk in vocab order (a block scan of per-thread counts), appended at a base taken once.
  const int64_t c0 = c * kChunk;
  u64 sure = 0;
  unsigned is_cand = 0;
  for (int e = 0; e < kPer; ++e) {
    const int64_t i = c0 + int64_t(tid) * kPer + e;
    if (i >= V) break;
    const float v = x[i];
    const int bin = bin_of(order_key(v));
    if (bin > bin_hi) {
      sure += mass_of(v, mx, temp);
    } else if (bin >= bin_lo || bin == bin_k) {
      is_cand |= 1u << e;
    }
  }
  u64 n_block;
  const u64 excl = block_scan_u64(u64(__popc(is_cand)), n_block, bs);
  if (tid == 0) cand_base = n_block ? atomicAdd(&row->n_cand, uint32_t(n_block)) : 0u;
  sure = block_sum_u64(sure, bs);  // its barriers publish cand_base
  int64_t slot = int64_t(cand_base) + int64_t(excl);
  for (int e = 0; e < kPer; ++e) {
    if (!(is_cand >> e & 1u)) continue;
    if (slot < w.cand_cap) cand[slot] = int32_t(c0 + int64_t(tid) * kPer + e);
    ++slot;
  }
  if (tid == 0) rec[c].sure = sure;
  if (!last_of_row(&row->ticket_select, uint32_t(C), &last)) return;

  // ---- the row's last block ----
  const int64_t n_cand = vload(&row->n_cand);
  const bool listed = n_cand <= w.cand_cap, in_shared = n_cand <= kSharedItems;
  if (in_shared) {
    for (int64_t j = tid; j < n_cand; j += kBlock) {
      const int32_t id = vload(cand + j);
      items_id[j] = id;
      items_v[j] = x[id];
    }
    __syncthreads();
  }
  const Items it{x, listed ? cand : nullptr, listed ? n_cand : V, in_shared ? items_id : nullptr,
                 in_shared ? items_v : nullptr};
  uint32_t lo = 0, lo_k = 0;
  u64 kept = row->total_mass;
  if (bin_k >= 0) {
    lo_k = select_in_bin(it, bin_k, false, u64(row->k_rest), mx, temp, ss);
    u64 m = 0;
    for (int64_t j = tid; j < it.n; j += kBlock) {
      const float v = it.value(j);
      const uint32_t key = order_key(v);
      if (bin_of(key) == bin_k && key >= lo_k) m += mass_of(v, mx, temp);
    }
    kept = row->mass_above_k + block_sum_u64(m, bs);
    lo = lo_k;
  }
  const float top_p = a.top_p[b];
  if (top_p < 1.0f) {
    // tau's bin: the bins above bin_k whole, bin_k's kept part, nothing below.
    const u64 target = mass_target(kept, top_p);
    u64 wts[kBinsPerThread], own = 0;
    for (int e = 0; e < kBinsPerThread; ++e) {
      const int j = top_bin(e);
      wts[e] = j > bin_k ? w.bin_mass[b * kBins + j] : j == bin_k ? kept - row->mass_above_k : 0;
      own += wts[e];
    }
    if (tid == 0) tau_bin = bin_k;  // found below: the target is in [1, kept]
    u64 total, above;
    const u64 ex = block_scan_u64(own, total, bs);
    const int e = find_crossing(wts, ex, target, above);
    if (e >= 0) {
      tau_bin = top_bin(e);
      tau_above = above;
    }
    __syncthreads();
    // In bin_k the ids below lo_k are not kept, but they cannot move tau: the weight at and above any key >= lo_k is
    // the same with or without them, and the target is reached at or above lo_k (it is at most bin_k's kept part).
    const uint32_t tau = select_in_bin(it, tau_bin, true, target - tau_above, mx, temp, ss);
    lo = tau > lo ? tau : lo;
  }
  // Kept mass per chunk: sure (bins above bin_hi) + the candidates at or above lo (all in bins <= bin_hi).
  for (int64_t j = tid; j < it.n; j += kBlock) {
    const float v = it.value(j);
    const uint32_t key = order_key(v);
    if (key >= lo && bin_of(key) <= bin_hi) atomicAdd(&rec[it.id(j) / kChunk].extra, mass_of(v, mx, temp));
  }
  __threadfence_block();
  __syncthreads();
  const double u = eet_rand_uniform(a.seed[b], a.step[b]);
  int token = draw_token(KeptOfChunk{rec, true}, C, x, V, lo, mx, temp, u, ds, bs);
  if (tid == 0) {
    if (token < 0) token = row->best;  // not reached (see draw_token)
    write_token(a, b, token, (x[token] - mx) / temp - row->log_z);
  }
}

template <typename T>
void sample_launch(const eet::SampleArgs& a, eet::Stream stream) {
  // The layout ops.h documents, from the one definition validate() sized the workspace with.
  const eet::SampleWorkspaceLayout l = eet::sample_workspace_layout(a.batch, a.vocab);
  char* base = static_cast<char*>(a.workspace);
  const Workspace w{reinterpret_cast<float*>(base + l.logits),     reinterpret_cast<int32_t*>(base + l.candidates),
                    reinterpret_cast<ChunkRecord*>(base + l.chunks), reinterpret_cast<u64*>(base + l.bin_mass),
                    reinterpret_cast<uint32_t*>(base + l.bin_count), reinterpret_cast<RowRecord*>(base + l.rows),
                    l.cand_cap,                                     l.n_chunks};
  const dim3 grid(unsigned(a.batch), unsigned(l.n_chunks));
  launch(sample_scan_kernel<T>, grid, dim3(kBlock), 0, stream, static_cast<const T*>(a.logits), w, a.vocab, a.history,
         a.history_len, a.history_start, a.history_stride, a.repetition_penalty, a.presence_penalty,
         a.frequency_penalty);
  launch(sample_hist_kernel, grid, dim3(kBlock), 0, stream, w, a);
  launch(sample_select_kernel, grid, dim3(kBlock), 0, stream, w, a);
}

void op_sample(const eet::SampleArgs& a, eet::Stream stream) {
  EET_DISPATCH_FLOAT(a.dtype, T, sample_launch<T>(a, stream));
}

}  // namespace EET_KNS

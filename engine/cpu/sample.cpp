// cpu reference of sampling (SampleArgs in engine/ops.h, whose steps this follows one by one).
// The penalised logits are kept in float, computed exactly as the kernels compute them, so that argmax, top-k
// boundaries and ties are decided on identical values; everything after (softmax, masses, the draw) is fp64.
// Top-k and top-p sort a copy of the row; the draw walks the row in vocab order with a running sum.
// The selection thresholds compare penalised logits l rather than p: for temperature > 0 the order and the ties
// of p = softmax(l / temperature) are those of l, so this is the same rule without rounding in the way.
// Candidate order: top-k and top-p only produce thresholds (keep l >= a value, ties at it kept), so the order in
// which they look at ids does not matter; the draw's order does, and it is vocab order here and in the device
// sampler (cuda/sample.cu: chunks of ids in order, then ids in order inside the crossing chunk): for the same u
// both return the first id whose running kept mass exceeds u * kept mass. (The device sums fixed-point masses from
// fp32 exponentials, this file fp64 probabilities: a u within rounding of a boundary could still split them.)
#include <algorithm>
#include <cmath>
#include <functional>
#include <vector>

#include "../rng.h"
#include "element.h"
#include "parallel.h"
#include "reference.h"

namespace eet::cpu {

namespace {

struct RowResult {
  int32_t token;
  double logprob;
};

RowResult sample_row(const SampleArgs& a, int64_t b) {
  const int64_t V = a.vocab;
  std::vector<float> l(size_t(V), 0.0f);
  for (int64_t i = 0; i < V; ++i) l[size_t(i)] = float(load(a.dtype, a.logits, b * V + i));

  // 1. penalties: the repetition penalty once per distinct id of the history, then frequency (times the id's count
  // among the generated tokens) and presence, with the kernel's roundings
  if (a.history) {
    const float pen = a.repetition_penalty[b], presence = a.presence_penalty[b], frequency = a.frequency_penalty[b];
    std::vector<bool> seen(size_t(V), false);
    std::vector<int32_t> count(size_t(V), 0);
    const int32_t* h = a.history + b * a.history_stride;
    for (int64_t j = 0; j < a.history_len[b]; ++j) {
      seen[size_t(h[j])] = true;
      if (j >= a.history_start[b]) count[size_t(h[j])]++;
    }
    for (int64_t i = 0; i < V; ++i) {
      if (!seen[size_t(i)]) continue;
      float x = l[size_t(i)];
      x = x > 0.0f ? x / pen : x * pen;
      if (const int32_t c = count[size_t(i)]; c > 0) x = std::fma(-frequency, float(c), x) - presence;
      l[size_t(i)] = x;
    }
  }

  // Non-finite logits: nothing meaningful to sample (and NaN would break the sorts below); the engine turns
  // token -1 into ERR_NUMERIC.
  for (int64_t i = 0; i < V; ++i)
    if (!std::isfinite(l[size_t(i)])) return {-1, std::nan("")};

  int64_t best = 0;
  for (int64_t i = 1; i < V; ++i)
    if (l[size_t(i)] > l[size_t(best)]) best = i;
  const double mx = l[size_t(best)];

  // 2. greedy
  const float temp = a.temperature[b];
  if (!(temp > 0.0f)) {
    double z = 0;
    for (int64_t i = 0; i < V; ++i) z += std::exp(double(l[size_t(i)]) - mx);
    return {int32_t(best), -std::log(z)};
  }

  // 3. temperature, softmax
  std::vector<double> p(static_cast<size_t>(V));
  double z = 0;
  for (int64_t i = 0; i < V; ++i) z += (p[size_t(i)] = std::exp((double(l[size_t(i)]) - mx) / double(temp)));
  for (auto& v : p) v /= z;

  // 4. top-k: keep l >= the k-th largest l
  std::vector<bool> keep(size_t(V), true);
  const int32_t k = a.top_k[b];
  if (k > 0 && k < V) {
    std::vector<float> sorted(l);
    std::nth_element(sorted.begin(), sorted.begin() + (k - 1), sorted.end(), std::greater<float>());
    const float kth = sorted[size_t(k - 1)];
    for (int64_t i = 0; i < V; ++i) keep[size_t(i)] = l[size_t(i)] >= kth;
  }

  // 5. top-p: the largest threshold whose kept-and-above mass reaches top_p of the kept mass
  const float top_p = a.top_p[b];
  if (top_p < 1.0f) {
    std::vector<int64_t> ids;
    for (int64_t i = 0; i < V; ++i)
      if (keep[size_t(i)]) ids.push_back(i);
    std::sort(ids.begin(), ids.end(), [&](int64_t x, int64_t y) { return l[size_t(x)] > l[size_t(y)]; });
    double kept = 0;
    for (int64_t i : ids) kept += p[size_t(i)];
    const double target = double(top_p) * kept;
    float tau = l[size_t(ids.back())];
    double cum = 0;
    for (size_t j = 0; j < ids.size(); ++j) {
      cum += p[size_t(ids[j])];
      const bool group_end = j + 1 == ids.size() || l[size_t(ids[j + 1])] != l[size_t(ids[j])];
      if (group_end && cum >= target) {
        tau = l[size_t(ids[j])];
        break;
      }
    }
    for (int64_t i = 0; i < V; ++i) keep[size_t(i)] = keep[size_t(i)] && l[size_t(i)] >= tau;
  }

  // 6. the draw, in vocab order
  double kept = 0;
  int64_t last = 0;
  for (int64_t i = 0; i < V; ++i)
    if (keep[size_t(i)]) kept += p[size_t(i)], last = i;
  const double thr = double(eet_rand_uniform(a.seed[b], a.step[b])) * kept;
  int64_t token = last;
  double run = 0;
  for (int64_t i = 0; i < V; ++i) {
    if (!keep[size_t(i)]) continue;
    run += p[size_t(i)];
    if (run > thr) {
      token = i;
      break;
    }
  }
  return {int32_t(token), (double(l[size_t(token)]) - mx) / double(temp) - std::log(z)};
}

}  // namespace

void op_sample(const SampleArgs& a) {
  parallel_for(a.batch, 1, [&](int64_t b) {
    const RowResult r = sample_row(a, b);
    a.tokens_out[b] = r.token;
    if (a.logprob_out) a.logprob_out[b] = float(r.logprob);
  });
}

}  // namespace eet::cpu

// T5's relative position buckets (Raffel et al. 2020; HF T5Attention._relative_position_bucket): the bias a T5
// attention layer adds to the score of (query at position i, key at position j) is table[h, bucket(j - i)], a learned
// scalar per head and bucket. Part of the attention contract (AttentionArgs::rel_bias in ops.h), so it lives in
// engine/: the cpu reference, the fast cpu kernel and the CUDA kernels (which include this header) share this one
// definition, and the host and device compute the same buckets.
//
// rel = key - query. Bidirectional (encoder): half the buckets for keys after the query, half for the rest;
// unidirectional (decoder): keys after the query (never visible under the causal mask) share bucket 0 with rel = 0.
// Within a half of n buckets: |rel| < n/2 exact, then logarithmic up to max_distance, beyond it all in bucket n - 1.
// The log branch is evaluated in fp32 as HF does (float division, log, multiply, truncation toward zero), so ties
// fall the same way; test/ops/attention checks the buckets against a table HF computed.
#pragma once
#include <cmath>
#include <cstdint>

#if defined(__CUDACC__)
#define EET_HD __host__ __device__
#else
#define EET_HD
#endif

// Requires num_buckets >= 2 (>= 4 when bidirectional) and max_distance > the exact range (validate() checks).
EET_HD inline int32_t t5_relative_bucket(int32_t rel, bool bidirectional, int32_t num_buckets, int32_t max_distance) {
  int32_t bucket = 0, n = num_buckets;
  if (bidirectional) {
    n /= 2;
    if (rel > 0) bucket = n;
    rel = rel < 0 ? -rel : rel;
  } else {
    rel = rel < 0 ? -rel : 0;
  }
  const int32_t max_exact = n / 2;
  if (rel < max_exact) return bucket + rel;
  const float v = logf(float(rel) / float(max_exact)) / logf(float(max_distance) / float(max_exact)) *
                  float(n - max_exact);
  const int32_t large = max_exact + int32_t(v);
  return bucket + (large < n - 1 ? large : n - 1);
}

// parallel_for for the cpu reference ops: splits [0, n) into contiguous chunks run on a persistent pool of
// worker threads (one per core; the caller works too). Work items must be independent. An exception in any
// chunk is rethrown on the caller's thread. A call made while the pool is busy (another thread's op, or a
// parallel_for nested inside one) runs inline, so nothing ever waits on itself.
#pragma once
#include <algorithm>
#include <cstdint>
#include <functional>

namespace eet::cpu {

// Runs chunk(c) for c in [0, chunks) on the pool; returns when all are done.
void run_chunks(int64_t chunks, const std::function<void(int64_t)>& chunk);
int64_t pool_threads();

template <typename F>
void parallel_for(int64_t n, int64_t grain, F&& f) {
  if (n <= 0) return;
  const int64_t chunks = std::min<int64_t>(pool_threads(), (n + grain - 1) / std::max<int64_t>(grain, 1));
  if (chunks <= 1) {
    for (int64_t i = 0; i < n; ++i) f(i);
    return;
  }
  const int64_t per = (n + chunks - 1) / chunks;
  run_chunks(chunks, [&](int64_t c) {
    const int64_t lo = c * per, hi = std::min(n, lo + per);
    for (int64_t i = lo; i < hi; ++i) f(i);
  });
}

}  // namespace eet::cpu

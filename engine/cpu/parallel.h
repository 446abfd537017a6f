// parallel_for for the cpu reference ops: splits [0, n) into contiguous chunks over the machine's cores.
// Work items must be independent; each chunk runs on its own std::thread (ops are coarse, so the spawn cost is
// small next to the work), and an exception in any chunk is rethrown on the caller's thread.
#pragma once
#include <algorithm>
#include <cstdint>
#include <exception>
#include <thread>
#include <vector>

namespace eet::cpu {

template <typename F>
void parallel_for(int64_t n, int64_t grain, F&& f) {
  if (n <= 0) return;
  int64_t hw = std::max<int64_t>(1, std::thread::hardware_concurrency());
  int64_t chunks = std::min<int64_t>(hw, (n + grain - 1) / std::max<int64_t>(grain, 1));
  if (chunks <= 1) {
    for (int64_t i = 0; i < n; ++i) f(i);
    return;
  }
  std::vector<std::thread> threads;
  std::vector<std::exception_ptr> errors(static_cast<size_t>(chunks));
  int64_t per = (n + chunks - 1) / chunks;
  for (int64_t c = 0; c < chunks; ++c) {
    int64_t lo = c * per, hi = std::min(n, lo + per);
    threads.emplace_back([&, c, lo, hi] {
      try {
        for (int64_t i = lo; i < hi; ++i) f(i);
      } catch (...) {
        errors[size_t(c)] = std::current_exception();
      }
    });
  }
  for (auto& t : threads) t.join();
  for (auto& e : errors)
    if (e) std::rethrow_exception(e);
}

}  // namespace eet::cpu

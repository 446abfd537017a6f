// The process's one thread pool, shared by the cpu reference ops (engine/cpu/) and the fast cpu kernels
// (engine/fast/). parallel_for splits [0, n) into contiguous chunks; run_chunks runs chunk(c) for c in
// [0, chunks). The calling thread works too, so a job of T threads wakes T - 1 workers: with the libuv thread (or
// the engine loop thread) that calls, exactly T threads compute. Work items must be independent; an exception in
// any chunk is rethrown on the caller's thread. A call made while the pool is busy (another thread's op, or a
// nested call) runs inline on the caller, so nothing ever waits on itself.
//
// How many threads a job uses is the calling thread's op_threads() (ThreadsScope sets it around an op: the cpu
// backend passes its model's `threads` option). Workers are started on first need, up to the most ever asked for.
// Idle workers sleep on a condition variable: after a job they spin for a short while (a step's ops follow each
// other within microseconds, and a futex wake-up costs more than many small ops), then block — nothing spins
// while the engine is idle.
#pragma once
#include <algorithm>
#include <cstdint>
#include <type_traits>

namespace eet::cpu {

// Physical cores available to this process (Linux: distinct (package, core id) pairs among the CPUs of the
// affinity mask, so SMT siblings count once); std::thread::hardware_concurrency() where that cannot be read.
// The environment variable EET_CPU_THREADS, when set to an integer in [1, Limits::maxThreads], replaces it.
int default_threads();

// Threads a job started by this thread uses (default_threads() unless a ThreadsScope says otherwise).
int op_threads();

class ThreadsScope {
 public:
  explicit ThreadsScope(int threads);
  ~ThreadsScope();
  ThreadsScope(const ThreadsScope&) = delete;
  ThreadsScope& operator=(const ThreadsScope&) = delete;

 private:
  int saved_;
};

using ChunkFn = void (*)(void* ctx, int64_t chunk);
// Runs fn(ctx, c) for c in [0, chunks) on op_threads() threads; returns when all are done.
void run_chunks(int64_t chunks, ChunkFn fn, void* ctx);

template <typename F>
void run_chunks(int64_t chunks, F&& f) {
  using Fn = std::remove_reference_t<F>;
  run_chunks(chunks, [](void* ctx, int64_t c) { (*static_cast<Fn*>(ctx))(c); }, const_cast<void*>(static_cast<const void*>(&f)));
}

// Runs f(i) for the n work items, on the pool when their total work (in multiply-adds, say) is worth it: waking
// workers and waiting for them costs microseconds, and a worker the OS has descheduled (another busy thread on the
// core) costs a time slice, so a job of a few thousand multiply-adds runs on the calling thread alone.
constexpr int64_t kInlineWork = int64_t(1) << 16;

template <typename F>
void run_items(int64_t n, int64_t work, F&& f) {
  if (work < kInlineWork) {
    for (int64_t i = 0; i < n; ++i) f(i);
    return;
  }
  run_chunks(n, std::forward<F>(f));
}

template <typename F>
void parallel_for(int64_t n, int64_t grain, F&& f) {
  if (n <= 0) return;
  const int64_t chunks = std::min<int64_t>(op_threads(), (n + grain - 1) / std::max<int64_t>(grain, 1));
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

// The process's thread pool (parallel.h). One job at a time: the caller publishes (fn, ctx, chunks) and bumps a
// state word that packs the job's generation with how many workers help; helpers and the caller claim chunks
// from an atomic counter; the caller returns once every helper has checked out of the job, so a slow worker can
// never touch the next job's fields. Workers that are not helpers only note the generation.
#include "parallel.h"

#include "../limits.h"

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <condition_variable>
#include <exception>
#include <fstream>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#if defined(__linux__)
#include <sched.h>
#endif
#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define EET_CPU_RELAX() _mm_pause()
#elif defined(__aarch64__)
#define EET_CPU_RELAX() asm volatile("yield")
#else
#define EET_CPU_RELAX() ((void)0)
#endif

namespace eet::cpu {
namespace {

// How long an idle worker polls for the next job before it blocks. The ops of one step are microseconds apart;
// between two steps the engine loop samples and plans, tens of microseconds.
constexpr auto kSpin = std::chrono::microseconds(300);
constexpr int kMaxHelpers = 0xffff;

thread_local int tl_threads = 0;  // 0: default_threads()

class Pool {
 public:
  ~Pool() = delete;  // never destroyed (see pool()): workers may outlive static destruction order at exit

  void run(int64_t chunks, ChunkFn fn, void* ctx, int threads) {
    std::unique_lock<std::mutex> busy(busy_, std::try_to_lock);
    if (!busy.owns_lock() || threads <= 1 || chunks <= 1) {  // in use (another thread or nested): inline
      for (int64_t c = 0; c < chunks; ++c) fn(ctx, c);
      return;
    }
    const int helpers = int(std::min<int64_t>({int64_t(threads) - 1, chunks - 1, kMaxHelpers}));
    start_workers(helpers);
    fn_ = fn;
    ctx_ = ctx;
    chunks_ = chunks;
    next_.store(0, std::memory_order_relaxed);
    checked_out_.store(0, std::memory_order_relaxed);
    error_ = nullptr;
    {
      std::lock_guard<std::mutex> lock(mu_);
      const uint64_t gen = (state_.load(std::memory_order_relaxed) >> 16) + 1;
      state_.store((gen << 16) | uint64_t(helpers), std::memory_order_release);
      if (sleeping_) wake_.notify_all();
    }
    drain();
    // Wait for the helpers to finish their last chunks. They are running (they claimed work), so this is short;
    // on an oversubscribed machine one may be descheduled: yield rather than burn the core it needs.
    for (int spins = 0; checked_out_.load(std::memory_order_acquire) < helpers; ++spins) {
      if (spins < 4096) EET_CPU_RELAX(); else std::this_thread::yield();
    }
    if (error_) std::rethrow_exception(error_);
  }

 private:
  void start_workers(int n) {
    // A new worker starts from the generation before this job's, so it cannot miss the job it was started for.
    const uint64_t gen = state_.load(std::memory_order_relaxed) >> 16;
    while (int(workers_.size()) < n) {
      const int index = int(workers_.size());
      workers_.emplace_back([this, index, gen] { work(index, gen); });
      workers_.back().detach();
    }
  }

  void drain() {
    for (int64_t c; (c = next_.fetch_add(1, std::memory_order_relaxed)) < chunks_;) {
      try {
        fn_(ctx_, c);
      } catch (...) {
        std::lock_guard<std::mutex> lock(mu_);
        if (!error_) error_ = std::current_exception();
      }
    }
  }

  void work(int index, uint64_t seen) {
    for (;;) {
      uint64_t s = state_.load(std::memory_order_acquire);
      if ((s >> 16) == seen) {
        const auto until = std::chrono::steady_clock::now() + kSpin;
        for (int i = 1; (s = state_.load(std::memory_order_acquire)) >> 16 == seen; ++i) {
          EET_CPU_RELAX();
          if ((i & 255) == 0 && std::chrono::steady_clock::now() > until) {
            std::unique_lock<std::mutex> lock(mu_);
            ++sleeping_;
            wake_.wait(lock, [&] { return (state_.load(std::memory_order_acquire) >> 16) != seen; });
            --sleeping_;
          }
        }
      }
      seen = s >> 16;
      if (index < int(s & 0xffff)) {
        drain();
        checked_out_.fetch_add(1, std::memory_order_release);
      }
    }
  }

  std::vector<std::thread> workers_;  // grown by the caller that holds busy_
  std::mutex busy_;                   // one job at a time
  std::mutex mu_;                     // sleeping_, error_, and the state change that wakes sleepers
  std::condition_variable wake_;
  std::atomic<uint64_t> state_{0};    // generation << 16 | helpers of the current job
  std::atomic<int64_t> next_{0};
  std::atomic<int> checked_out_{0};
  ChunkFn fn_ = nullptr;
  void* ctx_ = nullptr;
  int64_t chunks_ = 0;
  int sleeping_ = 0;
  std::exception_ptr error_;
};

Pool& pool() {
  static Pool* p = new Pool();
  return *p;
}

int physical_cores() {
#if defined(__linux__)
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof(set), &set) == 0) {
    std::set<std::pair<std::string, std::string>> cores;
    bool ok = true;
    for (int c = 0; c < CPU_SETSIZE && ok; ++c) {
      if (!CPU_ISSET(c, &set)) continue;
      const std::string dir = "/sys/devices/system/cpu/cpu" + std::to_string(c) + "/topology/";
      std::ifstream pkg(dir + "physical_package_id"), core(dir + "core_id");
      std::string p, k;
      if (!(pkg >> p) || !(core >> k)) ok = false;
      cores.insert({p, k});
    }
    if (ok && !cores.empty()) return int(cores.size());
    const int n = CPU_COUNT(&set);
    if (n > 0) return n;
  }
#endif
  return int(std::max(1u, std::thread::hardware_concurrency()));
}

}  // namespace

int default_threads() {
  static const int n = [] {
    // EET_CPU_THREADS overrides the detected count (a positive integer up to Limits::maxThreads).
    const char* env = std::getenv("EET_CPU_THREADS");
    if (env && *env) {
      char* end = nullptr;
      const long v = std::strtol(env, &end, 10);
      if (end && *end == '\0' && v >= 1 && v <= Limits::maxThreads) return int(v);
    }
    return physical_cores();
  }();
  return n;
}

int op_threads() { return tl_threads > 0 ? tl_threads : default_threads(); }

ThreadsScope::ThreadsScope(int threads) : saved_(tl_threads) { tl_threads = threads; }
ThreadsScope::~ThreadsScope() { tl_threads = saved_; }

void run_chunks(int64_t chunks, ChunkFn fn, void* ctx) { pool().run(chunks, fn, ctx, op_threads()); }

}  // namespace eet::cpu

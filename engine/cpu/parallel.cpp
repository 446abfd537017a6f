// The cpu backend's thread pool (see parallel.h). Workers sleep on a condition variable between ops; a job is a
// generation number plus an atomic chunk counter that the caller and the workers drain together.
#include "parallel.h"

#include <atomic>
#include <condition_variable>
#include <exception>
#include <mutex>
#include <thread>
#include <vector>

namespace eet::cpu {
namespace {

class Pool {
 public:
  Pool() {
    const unsigned hw = std::max(1u, std::thread::hardware_concurrency());
    for (unsigned i = 1; i < hw; ++i) workers_.emplace_back([this] { work(); });
  }
  ~Pool() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stop_ = true;
    }
    wake_.notify_all();
    for (auto& t : workers_) t.join();
  }
  int64_t threads() const { return int64_t(workers_.size()) + 1; }

  void run(int64_t chunks, const std::function<void(int64_t)>& chunk) {
    std::unique_lock<std::mutex> busy(busy_, std::try_to_lock);
    if (!busy.owns_lock() || workers_.empty()) {  // pool in use (other thread or nested): run inline
      for (int64_t c = 0; c < chunks; ++c) chunk(c);
      return;
    }
    {
      std::lock_guard<std::mutex> lock(mu_);
      job_.store(&chunk);
      chunks_.store(chunks);
      next_.store(0);  // after job_ and chunks_: a worker that claims a chunk sees this job's values
      pending_ = chunks;
      error_ = nullptr;
      ++generation_;
    }
    wake_.notify_all();
    drain();
    std::unique_lock<std::mutex> lock(mu_);
    done_.wait(lock, [&] { return pending_ == 0; });
    job_.store(nullptr);
    if (error_) std::rethrow_exception(error_);
  }

 private:
  void drain() {
    int64_t finished = 0;
    for (int64_t c; (c = next_.fetch_add(1)) < chunks_.load();) {
      try {
        (*job_.load())(c);
      } catch (...) {
        std::lock_guard<std::mutex> lock(mu_);
        if (!error_) error_ = std::current_exception();
      }
      ++finished;
    }
    if (finished) {
      std::lock_guard<std::mutex> lock(mu_);
      pending_ -= finished;
      if (pending_ == 0) done_.notify_all();
    }
  }

  void work() {
    uint64_t seen = 0;
    for (;;) {
      {
        std::unique_lock<std::mutex> lock(mu_);
        wake_.wait(lock, [&] { return stop_ || generation_ != seen; });
        if (stop_) return;
        seen = generation_;
      }
      drain();
    }
  }

  std::vector<std::thread> workers_;
  std::mutex busy_;  // one job at a time
  std::mutex mu_;
  std::condition_variable wake_, done_;
  std::atomic<const std::function<void(int64_t)>*> job_{nullptr};
  std::atomic<int64_t> chunks_{0}, next_{0};
  int64_t pending_ = 0;  // guarded by mu_
  uint64_t generation_ = 0;
  bool stop_ = false;
  std::exception_ptr error_;
};

Pool& pool() {
  static Pool* p = new Pool();  // never destroyed: workers may outlive static destruction order at exit
  return *p;
}

}  // namespace

void run_chunks(int64_t chunks, const std::function<void(int64_t)>& chunk) { pool().run(chunks, chunk); }
int64_t pool_threads() { return pool().threads(); }

}  // namespace eet::cpu

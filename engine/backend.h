// One interface, three implementations (design.md "Backends"):
//   cpu  — engine/backend_cpu.cpp: engine/fast/ (vectorised, threaded) where it has the op, else engine/cpu/
//   cpu-ref — engine/backend_cpu.cpp: engine/cpu/*.cpp, the plain reference of every op (the op tests' baseline)
//   emu  — cuda/backend_emu.cpp: cuda/*.cu compiled by the host compiler against the SIMT emulator (cuda/emu/)
//   cuda — cuda/backend_cuda.cpp: cuda/*.cu compiled by nvcc (only in builds where nvcc was found)
// engine/ declares the emu and cuda factories and controls below and cuda/ defines them: cuda/ implements this
// interface and engine/ includes nothing from it (scripts/check-deps.js).
// Memory returned by alloc() belongs to the backend; cpu and emu use host memory, cuda device memory.
// All methods throw eet::Error on failure. A backend is used by one thread at a time (the model's engine
// thread, or the op runner under its lock); the emu serialises its launches process-wide.
#pragma once
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "error.h"
#include "ops.h"

namespace eet {

enum class DeviceKind { Cpu, Emu, Cuda };

struct CudaDeviceInfo {
  int index;
  std::string name;
  int cc_major, cc_minor;
  size_t total_memory;
  int sm_count;
};

struct CudaStatus {
  bool usable;
  std::string reason;  // why not, when !usable ("no NVIDIA driver", "no CUDA device", "not built with CUDA" …)
  std::vector<CudaDeviceInfo> devices;
};

// A first-come first-served mutex. The backend's lock is taken by an engine loop once per step, back to back, and
// by others between (op calls, tensor uploads, another context's loop, a low-level step): std::mutex may hand it to
// the loop again and again, starving them for a whole generation (seen: a worker thread's tensor() waited 35 s on
// emu). Tickets serve waiters in arrival order.
class FairMutex {
 public:
  void lock() {
    std::unique_lock<std::mutex> l(m_);
    const uint64_t ticket = next_++;
    cv_.wait(l, [&] { return serving_ == ticket; });
  }
  void unlock() {
    {
      std::lock_guard<std::mutex> l(m_);
      serving_++;
    }
    cv_.notify_all();
  }

 private:
  std::mutex m_;
  std::condition_variable cv_;
  uint64_t next_ = 0, serving_ = 0;
};

// A recorded sequence of launches (Backend::end_capture), replayed by Backend::replay: a CUDA graph on cuda, the
// emulator's list of launches on emu. Its destructor never throws (it may run after the device was lost).
class DeviceGraph {
 public:
  virtual ~DeviceGraph() = default;
  virtual size_t launches() const = 0;  // kernel launches recorded (emu); 0 where the backend does not count them
};

// What Backend::time_launches measured: one time per timed repetition, and how.
struct LaunchTimes {
  std::vector<double> ms;
  std::string clock;          // "cuda-event" (device events on the backend's stream) or "host" (steady clock)
  bool cache_scrubbed = false;  // whether each repetition began with the device's L2 holding none of its data
};

class Backend {
 public:
  virtual ~Backend() = default;
  virtual DeviceKind kind() const = 0;
  virtual std::string name() const = 0;  // "cpu", "emu", "cuda:0"

  virtual void* alloc(size_t bytes) = 0;  // ERR_OOM when it cannot; bytes may be 0 (returns a unique pointer)
  virtual void free(void* p) noexcept = 0;  // never throws: it runs from destructors
  virtual void upload(void* dst, const void* host_src, size_t bytes) = 0;
  virtual void download(void* host_dst, const void* src, size_t bytes) = 0;
  virtual void copy(void* dst, const void* src, size_t bytes) = 0;
  virtual void fill(void* dst, uint8_t byte, size_t bytes) = 0;
  virtual void synchronize() = 0;
  virtual size_t free_memory() const = 0;  // what alloc can still give, best effort
  // Streaming multiprocessors the attention decode split aims to fill (AttentionArgs::sm_count): cuda queries its
  // device once, emu reports its setting (set_emu_options), the cpu backends 1 (their kernels ignore the split).
  virtual int32_t sm_count() const { return 1; }

#define EET_DECLARE_OP(name, Args) virtual void name(const Args& a) = 0;
  EET_OPS(EET_DECLARE_OP)
#undef EET_DECLARE_OP

  // The per-op benchmark's clock (native/ops.cpp timeOpSync). launch() enqueues one op; it runs `warmup` times
  // untimed, then `reps` times, each timed alone. This default times on the host: launch() then synchronize()
  // between two steady-clock reads (the cpu backends, and the emulator, whose times say nothing about a GPU).
  // scrub_cache asks for a cold L2 before each repetition; only the cuda backend has one to scrub.
  virtual LaunchTimes time_launches(const std::function<void()>& launch, int warmup, int reps, bool scrub_cache);

  // Device graphs: the step runner records a decode step's launches once and replays them (engine/step_graphs.h).
  // begin_capture() makes the ops this thread calls on the backend record their launches instead of running them,
  // with their arguments by value (pointers, sizes, grid shapes are fixed at capture: every per-step value must be
  // read by the kernels from device memory); end_capture() returns the recording; replay() runs it on the stream,
  // asynchronously like any op. While capturing, only ops may be called: upload, download, copy, fill, synchronize,
  // alloc and free throw ERR_INTERNAL (nothing may synchronise or allocate inside a recorded step) and the capture
  // must then be ended with abort_capture(). supports_graphs() is false on the cpu backends (their ops run on the
  // host and cannot be recorded) and on cuda with EET_CUDA_SYNC=1 (it synchronises after every launch).
  virtual bool supports_graphs() const { return false; }
  virtual void begin_capture();
  virtual std::unique_ptr<DeviceGraph> end_capture();
  virtual void abort_capture() noexcept {}
  virtual void replay(DeviceGraph& graph);

  // Held by whoever drives the backend (an async worker, the model's engine thread) for the duration of a
  // sequence of calls, so one stream is never used by two host threads at once.
  FairMutex& mutex() { return mu_; }

 private:
  FairMutex mu_;
};

// threads: how many threads its ops use (0: cpu_default_threads(), the physical cores).
std::shared_ptr<Backend> make_cpu_backend(int threads);
std::shared_ptr<Backend> make_cpu_ref_backend();
int cpu_default_threads();
std::string cpu_isa();  // the instruction set of the fast cpu kernels here: "avx512", "avx2" or "generic"
std::shared_ptr<Backend> make_emu_backend();
std::shared_ptr<Backend> make_cuda_backend(int device_index);  // ERR_UNSUPPORTED when not built with CUDA
CudaStatus cuda_status();
bool cuda_compiled();
// Test hook (the GPU suite, with EET_TEST_HOOKS=1): an illegal address on the backend's device, which loses its
// context; throws ERR_CUDA as any later call does.
void cuda_inject_fault_for_test(Backend& backend);

// The emu backend's controls, for the Node layer and the tests:
//   set_emu_reverse_order(r)  thread scheduling order of the SIMT emulator for later launches: forward (thread 0
//                             first, the default unless EET_EMU_ORDER=reverse) or reverse; a kernel race shows up
//                             as a difference between the two
//   set_emu_target(t)         the emulated device: its SM count (the emu backend's sm_count()) and its per-block
//                             opt-in limit of dynamic shared memory (launches above it fail, launchers that read
//                             it pick smaller tiles); EmuTarget{} is sm_90's (an H100/H200: 132 SMs, 227 KiB)
//   set_emu_fail_next_capture(f)  a test hook: the next device-graph capture on emu fails at its end (as a driver
//                             refusing something in a step would), so the step runner's fallback runs in CI
//   emu_selftest_cases()      names of the emulator's self-test cases (cuda/emu/selftest.cu)
//   emu_selftest(name)        runs one on the emu: "ok: ..." or throws eet::Error
void set_emu_reverse_order(bool reverse);
struct EmuTarget {
  int32_t sm_count = 132;
  int64_t max_smem_per_block_optin = 227 * 1024;
};
void set_emu_target(const EmuTarget& t);
void set_emu_fail_next_capture(bool fail);
std::vector<std::string> emu_selftest_cases();
std::string emu_selftest(const std::string& name);

// Parses 'cpu' | 'cpu-ref' | 'emu' | 'cuda' | 'cuda:N' and returns a shared backend for it (one per device per
// process; for 'cpu', one per thread count: threads 0 means the default). threads is ignored by other devices.
std::shared_ptr<Backend> backend_for(const std::string& device, int threads = 0);

}  // namespace eet

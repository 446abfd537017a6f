// SIMT emulator: launch, block scheduler, block barriers, crash containment, options and "device" memory.
// Warp collectives live in warp.cpp, fibers in fiber.cpp.
//
// Scheduling: the blocks of a grid run one after another. Within a block every thread is a fiber; the scheduler
// sweeps the threads in forward (or reverse) order and resumes each ready one, which runs until it parks at a
// __syncthreads or a warp collective, or returns. When no thread is ready:
//   * all returned             -> the block is done;
//   * all wait at one barrier  -> the barrier releases;
//   * anything else            -> no thread can ever move again: the launch fails with a description (no hang).
// Errors found on a fiber (bad mask, a kernel that throws) are recorded and the fiber parks forever; the scheduler
// throws once it has switched back, so no exception ever unwinds through a fiber stack.
//
// Crash containment (best effort): during a launch, SIGSEGV/SIGBUS/SIGFPE/SIGILL handlers run on an alternate
// signal stack. A fault raised while a fiber runs on the launching thread siglongjmps back to the scheduler, which
// abandons the launch's fibers and throws eet::Error(Kernel). Caveats:
//   * the previous handlers are restored when the launch ends; faults on other threads (or outside fibers) are
//     chained to them, so V8's wasm trap handler keeps working, but a handler that another thread installs *during*
//     a launch is overwritten on restore;
//   * an abandoned kernel's frames are not unwound (kernels hold no resources, so nothing leaks but their stacks,
//     which are reused), and memory it wrote before the fault stays written;
//   * a fault that corrupted emulator state or the heap cannot be repaired; a stray write that does not fault is
//     not detected (build with AddressSanitizer for that);
//   * an infinite loop in a kernel hangs: put a timeout on kernel test processes.
#include <cxxabi.h>
#include <dlfcn.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <sys/mman.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <memory>
#include <mutex>
#include <set>

#include "internal.h"

uint3 threadIdx;
uint3 blockIdx;
dim3 blockDim;
dim3 gridDim;

namespace eet_emu {

// ---- options ---------------------------------------------------------------------------------------------------
namespace {
std::atomic<int> g_reverse{-1};  // -1: not read from the environment yet
std::atomic<int> g_sm_count{132};                    // sm_90 (H100 SXM, H200)
std::atomic<size_t> g_smem_optin{227 * 1024};        // sm_90's cudaDevAttrMaxSharedMemoryPerBlockOptin
}

void set_target(int sm_count, size_t smem_per_block_optin) {
  g_sm_count.store(sm_count);
  g_smem_optin.store(smem_per_block_optin);
}
int sm_count() { return g_sm_count.load(); }
size_t smem_per_block_optin() { return g_smem_optin.load(); }

void set_reverse_order(bool reverse) { g_reverse.store(reverse ? 1 : 0); }

bool reverse_order() {
  int r = g_reverse.load();
  if (r < 0) {
    const char* env = std::getenv("EET_EMU_ORDER");
    int from_env = (env && std::strcmp(env, "reverse") == 0) ? 1 : 0;
    g_reverse.compare_exchange_strong(r, from_env);  // a concurrent set_reverse_order() wins
    r = g_reverse.load();
  }
  return r == 1;
}

// ---- device memory -----------------------------------------------------------------------------------------------
void* dev_malloc(size_t bytes) {
  void* p = nullptr;
  if (posix_memalign(&p, 64, bytes) != 0) p = nullptr;
  if (!p && bytes == 0 && posix_memalign(&p, 64, 1) != 0) p = nullptr;  // size 0 must still be unique non-null
  return p;
}

void dev_free(void* p) { std::free(p); }

void* dynamic_smem() { return detail::g.smem_buf; }

namespace detail {

Launch g;

std::string site(const char* file, int line) {
  const char* slash = file ? std::strrchr(file, '/') : nullptr;
  std::string s = slash ? slash + 1 : (file ? file : "?");
  return line > 0 ? s + ":" + std::to_string(line) : s;
}

namespace {

std::mutex& launch_mutex() {
  static std::mutex m;
  return m;
}

std::string dim_str(unsigned x, unsigned y, unsigned z) {
  return "(" + std::to_string(x) + "," + std::to_string(y) + "," + std::to_string(z) + ")";
}

// The kernel's demangled name when the dynamic symbol table has it, else its address and parameter types.
std::string kernel_name(const KernelInfo& k) {
  Dl_info info{};
  if (dladdr(k.address, &info) && info.dli_sname && info.dli_saddr == k.address) {
    int status = 0;
    std::unique_ptr<char, void (*)(void*)> dem(abi::__cxa_demangle(info.dli_sname, nullptr, nullptr, &status),
                                               std::free);
    return status == 0 && dem ? std::string(dem.get()) : std::string(info.dli_sname);
  }
  char addr[32];
  std::snprintf(addr, sizeof addr, "%p", k.address);
  std::string sig = k.signature ? k.signature : "";
  const size_t p = sig.find("P = {");
  const size_t e = p == std::string::npos ? p : sig.find('}', p);
  return std::string(addr) + (e == std::string::npos ? "" : "(" + sig.substr(p + 5, e - p - 5) + ")");
}

// With EET_EMU_TRACE=<file>, each kernel's first launch in this process appends a line to the file:
//   <shared object> <offset of the kernel in it, hex> <name>
// scripts/kernel-coverage.js maps the offsets to symbols (nm) to check every __global__ ran under the emu.
void trace_launch(const KernelInfo& k) {
  static const char* path = std::getenv("EET_EMU_TRACE");
  static std::set<const void*> seen;  // guarded by the launch mutex
  if (!path || !*path || !seen.insert(k.address).second) return;
  Dl_info info{};
  if (!dladdr(k.address, &info) || !info.dli_fname) return;
  if (FILE* f = std::fopen(path, "a")) {
    std::fprintf(f, "%s %lx %s\n", info.dli_fname,
                 static_cast<unsigned long>(reinterpret_cast<uintptr_t>(k.address) - reinterpret_cast<uintptr_t>(info.dli_fbase)),
                 kernel_name(k).c_str());
    std::fclose(f);
  }
}

std::string launch_prefix() {
  return "emu: kernel " + kernel_name(*g.kernel) + " <<<grid " + dim_str(g.grid.x, g.grid.y, g.grid.z) + ", block " +
         dim_str(g.block.x, g.block.y, g.block.z) + ", smem " + std::to_string(g.smem) + ">>>";
}

[[noreturn]] void throw_kernel(const std::string& what) {
  eet::throw_error(eet::ErrorCode::Kernel, launch_prefix() + ": " + what);
}

std::string block_str() { return "block " + dim_str(blockIdx.x, blockIdx.y, blockIdx.z); }

void validate(dim3 grid, dim3 block, size_t smem) {
  const uint64_t threads = uint64_t(block.x) * block.y * block.z;
  if (block.x == 0 || block.y == 0 || block.z == 0 || block.x > 1024 || block.y > 1024 || block.z > 64 ||
      threads > kMaxThreads)
    throw_kernel("invalid block size (each dim >= 1, x,y <= 1024, z <= 64, at most 1024 threads)");
  if (grid.x == 0 || grid.y == 0 || grid.z == 0 || grid.x > 0x7fffffffu || grid.y > 65535 || grid.z > 65535)
    throw_kernel("invalid grid size (each dim >= 1, x < 2^31, y,z <= 65535)");
  const size_t limit = smem_per_block_optin();
  if (smem > limit) {
    throw_kernel("dynamic shared memory of " + std::to_string(smem) + " bytes is over the emulated target's per-block opt-in limit of " +
                 std::to_string(limit) + " bytes (cudaDevAttrMaxSharedMemoryPerBlockOptin; sm_90: 232448, sm_86 and sm_89: 101376)");
  }
}

// ---- signals: crash containment -------------------------------------------------------------------------------
constexpr int kSignals[] = {SIGSEGV, SIGBUS, SIGFPE, SIGILL};
constexpr int kNumSignals = sizeof(kSignals) / sizeof(kSignals[0]);
constexpr size_t kAltStackBytes = 64 * 1024;

struct sigaction g_old_actions[kNumSignals];
sigjmp_buf g_crash_jmp;
volatile sig_atomic_t g_armed = 0;     // a launch is running and g_crash_jmp is valid
volatile sig_atomic_t g_in_fiber = 0;  // the launching thread is executing on a fiber
pthread_t g_launch_thread;
struct Crash {
  int sig;
  void* addr;
  uint3 block, thread;
  bool overflow;
} g_crash;

const char* sig_name(int sig) {
  switch (sig) {
    case SIGSEGV: return "SIGSEGV";
    case SIGBUS: return "SIGBUS";
    case SIGFPE: return "SIGFPE";
    case SIGILL: return "SIGILL";
  }
  return "signal";
}

// Hands a signal that is not a contained kernel fault to whoever handled it before the launch.
void chain(int sig, siginfo_t* info, void* uctx) {
  for (int i = 0; i < kNumSignals; ++i) {
    if (kSignals[i] != sig) continue;
    const struct sigaction& old = g_old_actions[i];
    if ((old.sa_flags & SA_SIGINFO) && old.sa_sigaction) {
      old.sa_sigaction(sig, info, uctx);
      return;
    }
    if (old.sa_handler != SIG_DFL && old.sa_handler != SIG_IGN) {
      old.sa_handler(sig);
      return;
    }
  }
  // Default action: reinstate it; a fault re-executes and terminates, a sent signal is raised again.
  signal(sig, SIG_DFL);
  if (info->si_code <= 0) raise(sig);
}

void on_signal(int sig, siginfo_t* info, void* uctx) {
  if (g_armed && g_in_fiber && pthread_equal(pthread_self(), g_launch_thread)) {
    g_in_fiber = 0;
    g_crash.sig = sig;
    g_crash.addr = info->si_addr;
    g_crash.block = blockIdx;
    g_crash.thread = threadIdx;
    g_crash.overflow = g.current && fiber::in_guard(&g.current->ctx, info->si_addr);
    fiber::abandon_begin(&g.sched);
    siglongjmp(g_crash_jmp, 1);
  }
  chain(sig, info, uctx);
}

// Installs the handlers and an alternate signal stack (a fiber that overflowed has no stack left to run a handler
// on) for the duration of one launch; the destructor restores the previous ones.
class SignalGuard {
 public:
  SignalGuard() {
    static void* alt = mmap(nullptr, kAltStackBytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    stack_t ss{};
    ss.ss_sp = alt;
    ss.ss_size = kAltStackBytes;
    have_alt_ = alt != MAP_FAILED && sigaltstack(&ss, &old_ss_) == 0;
    struct sigaction sa{};
    sa.sa_sigaction = &on_signal;
    sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
    sigemptyset(&sa.sa_mask);
    for (int i = 0; i < kNumSignals; ++i) sigaction(kSignals[i], &sa, &g_old_actions[i]);
    g_launch_thread = pthread_self();
  }
  ~SignalGuard() {
    g_armed = 0;
    g_in_fiber = 0;
    for (int i = 0; i < kNumSignals; ++i) sigaction(kSignals[i], &g_old_actions[i], nullptr);
    if (have_alt_) sigaltstack(&old_ss_, nullptr);
  }
  SignalGuard(const SignalGuard&) = delete;
  SignalGuard& operator=(const SignalGuard&) = delete;

 private:
  stack_t old_ss_{};
  bool have_alt_ = false;
};

std::string crash_message() {
  char addr[32];
  std::snprintf(addr, sizeof addr, "%p", g_crash.addr);
  std::string m = std::string("kernel crashed (") + sig_name(g_crash.sig) + " at address " + addr + ") in block " +
                  dim_str(g_crash.block.x, g_crash.block.y, g_crash.block.z) + " thread " +
                  dim_str(g_crash.thread.x, g_crash.thread.y, g_crash.thread.z);
  if (g_crash.overflow)
    m += ": fiber stack overflow (" + std::to_string(fiber::kStackBytes / 1024) +
         " KiB per thread; large local arrays?)";
  return m;
}

// ---- the block scheduler -------------------------------------------------------------------------------------
void thread_main(void* p) {
  Thread* t = static_cast<Thread*>(p);
  try {
    g.kernel->invoke(g.kernel->call);
  } catch (const std::exception& e) {
    if (!g.failed) g.error = std::string("kernel threw: ") + e.what();
    g.failed = true;
  } catch (...) {
    if (!g.failed) g.error = "kernel threw a non-standard exception";
    g.failed = true;
  }
  g.n_ready--;
  if (!g.failed) {
    t->state = State::Done;
    g.n_done++;
    g.warps[t->linear / 32].done |= 1u << (t->linear % 32);
    detail::warp_lane_exited(t->linear / 32);
  } else {
    t->state = State::Stuck;
  }
  fiber::yield(&t->ctx, true);
}

void run_thread(Thread* t) {
  threadIdx = t->tid;
  g.current = t;
  g_in_fiber = 1;
  fiber::resume(&g.sched, &t->ctx);
  g_in_fiber = 0;
  g.current = nullptr;
}

bool same_barrier(const Thread& a, const Thread& b) {
  return a.bar_line == b.bar_line && a.bar_kind == b.bar_kind &&
         (a.bar_file == b.bar_file || std::strcmp(a.bar_file, b.bar_file) == 0);
}

void release_barrier() {
  const unsigned n = g.nthreads;
  int count = 0;
  for (unsigned i = 0; i < n; ++i) count += g.threads[i].pred;
  const int kind = g.bar_first->bar_kind;
  const int result = kind == 1 ? count : kind == 2 ? int(count == int(n)) : kind == 3 ? int(count > 0) : 0;
  for (unsigned i = 0; i < n; ++i) {
    g.threads[i].result = result;
    g.threads[i].state = State::Ready;
  }
  g.n_ready = n;
  g.n_barrier = 0;
  g.bar_first = nullptr;
  g.bar_mismatch = false;
}

// Why no thread of the block can move: barrier sites with counts, exited threads, pending warp collectives.
std::string describe_stall() {
  std::map<std::string, unsigned> sites;
  for (unsigned i = 0; i < g.nthreads; ++i) {
    const Thread& t = g.threads[i];
    if (t.state == State::Barrier) sites[site(t.bar_file, t.bar_line)]++;
  }
  std::string m = "deadlock in " + block_str() + " (" + std::to_string(g.nthreads) + " threads):";
  for (const auto& s : sites) m += " " + std::to_string(s.second) + " wait at __syncthreads (" + s.first + ");";
  if (g.n_done) m += " " + std::to_string(g.n_done) + " have exited;";
  m += describe_warps();
  if (!sites.empty())
    m += " every thread of a block must reach the same __syncthreads (an early return before one is a bug)";
  return m;
}

void run_block() {
  const unsigned n = g.nthreads;
  const unsigned bx = g.block.x, by = g.block.y;
  for (unsigned i = 0; i < n; ++i) {
    Thread& t = g.threads[i];
    t.tid = uint3{i % bx, (i / bx) % by, i / (bx * by)};
    t.linear = i;
    t.state = State::Ready;
    t.pred = 0;
    t.arrival = nullptr;
    fiber::prepare(&t.ctx, &g.sched, &thread_main, &t);
  }
  for (unsigned w = 0; w < (n + 31) / 32; ++w) {
    const unsigned lanes = n - w * 32 >= 32 ? 32 : n - w * 32;
    g.warps[w].lanes = lanes == 32 ? 0xffffffffu : (1u << lanes) - 1;
    g.warps[w].done = 0;
    g.warps[w].open.clear();
  }
  g.n_ready = n;
  g.n_done = 0;
  g.n_barrier = 0;
  g.bar_first = nullptr;
  g.bar_mismatch = false;
  const bool reverse = reverse_order();
  for (;;) {
    if (g.n_ready > 0) {
      for (unsigned k = 0; k < n; ++k) {
        Thread* t = &g.threads[reverse ? n - 1 - k : k];
        if (t->state != State::Ready) continue;
        run_thread(t);
        if (g.failed) throw_kernel(g.error + " (" + block_str() + ")");
      }
    } else if (g.n_done == n) {
      return;
    } else if (g.n_barrier == n && !g.bar_mismatch) {
      release_barrier();
    } else {
      throw_kernel(describe_stall());
    }
  }
}

// Blocks run one at a time, in launch order — or, in the reversed thread order, in reverse launch order too, so a
// kernel whose blocks hand work to whichever finishes last (split-K tickets, the sampler's row finish) is run with
// the last launched block finishing first as well: a GPU promises no order.
void run_grid() {
  const bool reverse = reverse_order();
  const auto at = [reverse](unsigned i, unsigned n) { return reverse ? n - 1 - i : i; };
  for (unsigned z = 0; z < g.grid.z; ++z)
    for (unsigned y = 0; y < g.grid.y; ++y)
      for (unsigned x = 0; x < g.grid.x; ++x) {
        blockIdx = uint3{at(x, g.grid.x), at(y, g.grid.y), at(z, g.grid.z)};
        if (g.smem) std::memset(g.smem_buf, 0xff, g.smem);  // uninitialised shared memory reads as NaN
        run_block();
      }
}

}  // namespace

void park(State s) {
  Thread* t = g.current;
  t->state = s;
  g.n_ready--;
  fiber::yield(&t->ctx, false);
}

void fail_in_fiber(std::string msg) {
  Thread* t = g.current;
  if (!g.failed) g.error = std::move(msg) + " [thread " + dim_str(t->tid.x, t->tid.y, t->tid.z) + "]";
  g.failed = true;
  msg = std::string();  // nothing owned may stay on a stack that is never unwound
  t->state = State::Stuck;
  g.n_ready--;
  fiber::yield(&t->ctx, false);  // not "exiting": its kernel frames stay behind (see fiber::prepare)
  __builtin_trap();              // never resumed
}

int block_sync(const char* file, int line, int kind, int pred) {
  Thread* t = g.current;
  if (!t) eet::throw_error(eet::ErrorCode::Kernel, "emu: __syncthreads called outside a kernel");
  t->bar_file = file;
  t->bar_line = line;
  t->bar_kind = kind;
  t->pred = pred;
  if (g.n_barrier == 0)
    g.bar_first = t;
  else if (!same_barrier(*g.bar_first, *t))
    g.bar_mismatch = true;
  g.n_barrier++;
  park(State::Barrier);
  return t->result;
}

void run_launch(const KernelInfo& k, dim3 grid, dim3 block, size_t smem) {
  if (g_in_fiber && pthread_equal(pthread_self(), g_launch_thread))  // would deadlock on the launch mutex
    fail_in_fiber("launch() called from inside a kernel (dynamic parallelism is not emulated)");
  std::lock_guard<std::mutex> lock(launch_mutex());
  trace_launch(k);
  g.kernel = &k;
  g.grid = grid;
  g.block = block;
  g.smem = smem;
  g.failed = false;
  g.error.clear();
  g.current = nullptr;
  validate(grid, block, smem);
  g.nthreads = block.x * block.y * block.z;
  for (unsigned i = 0; i < g.nthreads; ++i) fiber::ensure_stack(&g.threads[i].ctx);
  // Exactly `smem` bytes (16-byte aligned or better) so AddressSanitizer flags overruns of the dynamic buffer.
  std::unique_ptr<void, void (*)(void*)> smem_buf(dev_malloc(smem), &dev_free);
  if (!smem_buf) eet::throw_error(eet::ErrorCode::Oom, "emu: cannot allocate dynamic shared memory");
  g.smem_buf = static_cast<unsigned char*>(smem_buf.get());
  blockDim = block;
  gridDim = grid;

  SignalGuard signals;
  if (sigsetjmp(g_crash_jmp, 1) != 0) {  // a fiber faulted: its launch is abandoned
    fiber::abandon_end();
    g.current = nullptr;
    g.smem_buf = nullptr;
    throw_kernel(crash_message());
  }
  g_armed = 1;
  try {
    run_grid();
  } catch (...) {
    g.smem_buf = nullptr;
    throw;
  }
  g.smem_buf = nullptr;
}

// ---- device-graph capture ----------------------------------------------------------------------------------------
namespace {
// The open recording of this thread: the thread that holds the backend's mutex (Backend::mutex) is the only one that
// launches on it, so a capture on one thread never sees another thread's launches.
thread_local std::vector<RecordedLaunch>* t_recording = nullptr;
}  // namespace

bool recording() { return t_recording != nullptr; }
void record(RecordedLaunch launch) { t_recording->push_back(std::move(launch)); }

}  // namespace detail

void begin_recording() {
  if (detail::t_recording) eet::throw_error(eet::ErrorCode::Internal, "emu: a capture is already open on this thread");
  detail::t_recording = new std::vector<detail::RecordedLaunch>();
}

std::vector<detail::RecordedLaunch> end_recording() {
  std::unique_ptr<std::vector<detail::RecordedLaunch>> r(detail::t_recording);
  detail::t_recording = nullptr;
  return r ? std::move(*r) : std::vector<detail::RecordedLaunch>();
}

}  // namespace eet_emu

// Internals shared by the emulator's .cpp files (fiber.cpp, emu.cpp, warp.cpp). Kernels never include this.
#pragma once
#include <string>
#include <vector>

#include "emu.h"

#if defined(__x86_64__) && !defined(EET_EMU_UCONTEXT)
#define EET_EMU_ASM_SWITCH 1  // hand-written context switch: ~4 ns, vs ~400 ns for swapcontext's sigprocmask
#else
#define EET_EMU_ASM_SWITCH 0
#include <ucontext.h>
#endif

#if defined(__SANITIZE_ADDRESS__)
#define EET_EMU_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define EET_EMU_ASAN 1
#endif
#endif
#ifndef EET_EMU_ASAN
#define EET_EMU_ASAN 0
#endif

namespace eet_emu {

// ---- fibers (fiber.cpp) ------------------------------------------------------------------------------------------
namespace fiber {

constexpr size_t kStackBytes = 64 * 1024;  // usable per thread; kernels keep a few KiB of locals at most
// Fiber stacks are mapped kStackBytes + kStaggerBytes apart and each one's top is moved down by a different
// multiple of 64 bytes: with identical page offsets the hot top lines of 1024 stacks would all compete for the
// same L1/L2 cache sets (measured: ~2x slower block reductions).
constexpr size_t kStaggerBytes = 16 * 1024;

// A saved execution context: one fiber, or the scheduler on the launching OS thread's own stack.
struct Context {
#if EET_EMU_ASM_SWITCH
  void* sp = nullptr;  // saved stack pointer while switched out
#else
  ucontext_t uc;
#endif
  const void* stack_lo = nullptr;  // usable stack (above the guard page); the scheduler's is learnt from ASan
  size_t stack_size = 0;
  size_t stagger = 0;  // bytes left unused at the top of this fiber's stack (see kStaggerBytes)
  bool exited = true;  // the fiber's last run ended in yield(exiting): only its bottom frames are left behind
  void* asan_fake = nullptr;  // ASan's fake-stack handle while switched out
  Context* sched = nullptr;   // the context a fiber yields to
  void (*entry)(void*) = nullptr;
  void* arg = nullptr;
};

// Gives c a stack of at least kStackBytes with a PROT_NONE guard page below (once; stacks are kept and reused).
// Throws eet::Error(ErrorCode::Oom) when the address space is exhausted.
void ensure_stack(Context* c);
// Makes c start entry(arg) at the top of its stack at the next resume. entry must end with yield(c, true).
void prepare(Context* c, Context* sched, void (*entry)(void*), void* arg);
// Scheduler -> fiber; returns when the fiber yields.
void resume(Context* sched, Context* fib);
// Fiber -> its scheduler; returns when resumed. `exiting`: it will never be resumed again.
void yield(Context* fib, bool exiting);
// True when addr lies in c's guard page (a stack overflow).
bool in_guard(const Context* c, const void* addr);
// ASan bookkeeping when a signal handler jumps from a fiber straight back to the scheduler: begin in the handler
// before siglongjmp, end on the scheduler's stack after landing.
void abandon_begin(Context* sched);
void abandon_end();

}  // namespace fiber

// ---- launch state (emu.cpp, warp.cpp) ----------------------------------------------------------------------------
namespace detail {

constexpr unsigned kMaxThreads = 1024;
constexpr unsigned kMaxWarps = kMaxThreads / 32;

enum class State : unsigned char { Ready, Barrier, Warp, Done, Stuck };

struct Thread {
  fiber::Context ctx;
  uint3 tid{0, 0, 0};
  unsigned linear = 0;  // x + y * bx + z * bx * by: lane = linear % 32, warp = linear / 32
  State state = State::Done;
  // at a barrier
  const char* bar_file = nullptr;
  int bar_line = 0, bar_kind = 0, pred = 0, result = 0;
  // at a warp collective
  Arrival* arrival = nullptr;
};

// One pending warp collective: lanes of `mask` meeting in the same op (sites may differ, as on hardware).
struct Rendezvous {
  WarpOp op;
  unsigned mask, arrived;
  unsigned in_bytes, out_bytes;
  CollectiveFn fn;
};

struct Warp {
  unsigned lanes = 0;  // lanes that exist (a partial last warp has fewer than 32)
  unsigned done = 0;   // lanes that returned
  std::vector<Rendezvous> open;
};

struct Launch {
  const KernelInfo* kernel = nullptr;
  dim3 grid, block;
  size_t smem = 0;
  unsigned nthreads = 0;
  unsigned char* smem_buf = nullptr;
  fiber::Context sched;
  Thread* current = nullptr;  // the running fiber's thread, null on the scheduler
  unsigned n_ready = 0, n_done = 0, n_barrier = 0;
  const Thread* bar_first = nullptr;  // first thread at the pending barrier
  bool bar_mismatch = false;          // some thread waits at a different barrier site
  bool failed = false;                // a fiber recorded an error in `error`
  std::string error;
  Thread threads[kMaxThreads];
  Warp warps[kMaxWarps];
  std::vector<unsigned char> scratch;  // generic collectives' gathered inputs/outputs
};

extern Launch g;  // one launch at a time: guarded by the launch mutex

// Parks the running fiber in `s` and returns when the scheduler resumes it.
void park(State s);
// Records a kernel error found on a fiber and parks that fiber forever; the scheduler throws it.
[[noreturn]] void fail_in_fiber(std::string msg);
// "file:line" with the directory part dropped.
std::string site(const char* file, int line);
// A lane of warp w returned: completes collectives that were only waiting for exited lanes.
void warp_lane_exited(unsigned w);
// Warps' pending collectives for a deadlock message ("" when none).
std::string describe_warps();
const char* op_name(WarpOp op);

}  // namespace detail
}  // namespace eet_emu

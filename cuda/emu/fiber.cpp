// Fibers for the SIMT emulator: stacks with guard pages and the context switch.
//
// x86-64 uses a hand-written switch (push the callee-saved registers, swap rsp, pop, ret): ~4 ns. Elsewhere
// ucontext's swapcontext is the portable fallback; it makes a sigprocmask syscall per switch (~10x slower suites).
// The switch does not save MXCSR / the x87 control word: kernels never change rounding modes.
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>

#include "internal.h"

#if EET_EMU_ASAN
#include <sanitizer/asan_interface.h>
#include <sanitizer/common_interface_defs.h>
#endif

#if EET_EMU_ASM_SWITCH
// eet_emu_switch(save, to): saves the callee-saved registers on the current stack, stores rsp in *save, continues
// the context whose saved rsp is `to`.
// eet_emu_fiber_start: a new fiber's first "return address"; calls r13(r12) and never returns. `.cfi_undefined rip`
// ends unwinding (gdb backtraces, exceptions) at the fiber's bottom.
asm(R"(
  .pushsection .text
  .p2align 4
  .globl eet_emu_switch
  .hidden eet_emu_switch
  .type eet_emu_switch, @function
eet_emu_switch:
  .cfi_startproc
  pushq %rbp
  pushq %rbx
  pushq %r12
  pushq %r13
  pushq %r14
  pushq %r15
  movq %rsp, (%rdi)
  movq %rsi, %rsp
  popq %r15
  popq %r14
  popq %r13
  popq %r12
  popq %rbx
  popq %rbp
  ret
  .cfi_endproc
  .size eet_emu_switch, .-eet_emu_switch

  .p2align 4
  .globl eet_emu_fiber_start
  .hidden eet_emu_fiber_start
  .type eet_emu_fiber_start, @function
eet_emu_fiber_start:
  .cfi_startproc
  .cfi_undefined rip
  movq %r12, %rdi
  callq *%r13
  ud2
  .cfi_endproc
  .size eet_emu_fiber_start, .-eet_emu_fiber_start
  .popsection
)");
extern "C" void eet_emu_switch(void** save, void* to);
extern "C" void eet_emu_fiber_start();
#endif

namespace eet_emu {
namespace fiber {
namespace {

size_t page_size() {
  static const size_t p = size_t(sysconf(_SC_PAGESIZE));
  return p;
}

// First code on a new fiber's stack.
void fiber_main(void* p) {
  Context* c = static_cast<Context*>(p);
#if EET_EMU_ASAN
  __sanitizer_finish_switch_fiber(nullptr, &c->sched->stack_lo, &c->sched->stack_size);
#endif
  c->entry(c->arg);
  __builtin_trap();  // entry yields for good instead of returning
}

#if !EET_EMU_ASM_SWITCH
void uc_trampoline(unsigned hi, unsigned lo) {  // makecontext passes ints only
  fiber_main(reinterpret_cast<void*>((uintptr_t(hi) << 32) | uintptr_t(lo)));
}
#endif

void do_switch(Context* from, Context* to) {
#if EET_EMU_ASM_SWITCH
  eet_emu_switch(&from->sp, to->sp);
#else
  swapcontext(&from->uc, &to->uc);
#endif
}

}  // namespace

void ensure_stack(Context* c) {
  if (c->stack_lo) return;
  static unsigned count = 0;  // stacks mapped so far: picks the stagger (callers hold the launch mutex)
  const size_t guard = page_size(), bytes = kStackBytes + kStaggerBytes;
  void* base = mmap(nullptr, guard + bytes, PROT_READ | PROT_WRITE,
                    MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_STACK, -1, 0);
  if (base == MAP_FAILED) eet::throw_error(eet::ErrorCode::Oom, "emu: cannot map a fiber stack");
  if (mprotect(base, guard, PROT_NONE) != 0) {
    munmap(base, guard + bytes);
    eet::throw_error(eet::ErrorCode::Oom, "emu: cannot protect a fiber stack's guard page");
  }
  c->stack_lo = static_cast<char*>(base) + guard;
  c->stack_size = bytes;
  c->stagger = (count++ * 17u) % (kStaggerBytes / 64) * 64;  // 17 is odd: 256 distinct offsets in turn
}

void prepare(Context* c, Context* sched, void (*entry)(void*), void* arg) {
  c->sched = sched;
  c->entry = entry;
  c->arg = arg;
  c->asan_fake = nullptr;
#if EET_EMU_ASAN
  // Frames that never returned keep their poisoned redzones, and the next kernel's frames reuse the memory. A fiber
  // that exited leaves only its first frames (fiber_main, the scheduler's thread_main, yield) near the top; an
  // abandoned one (kernel error, crash) may leave any depth.
  const size_t dirty = c->exited ? std::min<size_t>(16 * 1024, c->stack_size) : c->stack_size;
  __asan_unpoison_memory_region(static_cast<const char*>(c->stack_lo) + c->stack_size - dirty, dirty);
#endif
  c->exited = false;
#if EET_EMU_ASM_SWITCH
  // Frame popped by eet_emu_switch: r15 r14 r13 r12 rbx rbp, return address. After the `ret` rsp must be 16-byte
  // aligned so that fiber_main, entered through a call, sees the ABI's alignment.
  const uintptr_t top = (uintptr_t(c->stack_lo) + c->stack_size - c->stagger) & ~uintptr_t(15);
  void** sp = reinterpret_cast<void**>(top - 16 - 7 * sizeof(void*));
  sp[0] = nullptr;                                     // r15
  sp[1] = nullptr;                                     // r14
  sp[2] = reinterpret_cast<void*>(&fiber_main);        // r13: function
  sp[3] = c;                                           // r12: argument
  sp[4] = nullptr;                                     // rbx
  sp[5] = nullptr;                                     // rbp
  sp[6] = reinterpret_cast<void*>(&eet_emu_fiber_start);
  c->sp = sp;
#else
  getcontext(&c->uc);
  c->uc.uc_stack.ss_sp = const_cast<void*>(c->stack_lo);
  c->uc.uc_stack.ss_size = c->stack_size - c->stagger;
  c->uc.uc_link = nullptr;
  const uintptr_t p = uintptr_t(c);
  makecontext(&c->uc, reinterpret_cast<void (*)()>(&uc_trampoline), 2, unsigned(p >> 32), unsigned(p));
#endif
}

void resume(Context* sched, Context* fib) {
#if EET_EMU_ASAN
  __sanitizer_start_switch_fiber(&sched->asan_fake, fib->stack_lo, fib->stack_size);
#endif
  do_switch(sched, fib);
#if EET_EMU_ASAN
  __sanitizer_finish_switch_fiber(sched->asan_fake, nullptr, nullptr);
#endif
}

void yield(Context* fib, bool exiting) {
  Context* sched = fib->sched;
  fib->exited = exiting;
#if EET_EMU_ASAN
  // A null save slot tells ASan the fiber is gone, so it can free its fake stack.
  __sanitizer_start_switch_fiber(exiting ? nullptr : &fib->asan_fake, sched->stack_lo, sched->stack_size);
#endif
  do_switch(fib, sched);
#if EET_EMU_ASAN
  __sanitizer_finish_switch_fiber(fib->asan_fake, &sched->stack_lo, &sched->stack_size);
#endif
}

bool in_guard(const Context* c, const void* addr) {
  const uintptr_t lo = uintptr_t(c->stack_lo), a = uintptr_t(addr);
  return c->stack_lo && a < lo && a >= lo - page_size();
}

void abandon_begin(Context* sched) {
#if EET_EMU_ASAN
  __sanitizer_start_switch_fiber(nullptr, sched->stack_lo, sched->stack_size);
#else
  (void)sched;
#endif
}

void abandon_end() {
#if EET_EMU_ASAN
  __sanitizer_finish_switch_fiber(nullptr, nullptr, nullptr);
#endif
}

}  // namespace fiber
}  // namespace eet_emu

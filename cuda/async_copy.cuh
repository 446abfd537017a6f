// Asynchronous global -> shared memory copies (PTX `cp.async.cg.shared.global`, sm_80+): a thread starts 16-byte
// copies that land in shared memory while it goes on computing, so a GEMM can keep several K tiles in flight
// without staging them through registers.
//
//   AsyncCopies<kMaxPending> cp;     one per thread, a local of the kernel (kMaxPending: the most copies this thread
//                                    has in flight at once; only the emu uses it)
//   cp.copy16(dst, src, src_bytes)   copies src_bytes (0..16) bytes from global src to shared dst and zero-fills the
//                                    other 16 - src_bytes bytes of dst (the src-size operand: zero fill at the edges
//                                    of a matrix without a branch around the copy). dst and src 16-byte aligned; with
//                                    src_bytes = 0 nothing is read, but pass a valid pointer (the matrix base)
//   cp.commit()                      closes a group: the copies started since the last commit
//   cp.wait<N>()                     returns once at most N of this thread's committed groups are still in flight
// A copy's bytes are visible to its own thread after the wait that covers it, and to other threads only after a
// barrier that follows that wait (the usual pattern: wait<STAGES - 2>(); __syncthreads(); read the tile).
//
// nvcc: inline PTX (compiled for __CUDA_ARCH__ >= 800; older device code traps: these kernels are launched on
// sm_80+ only). Host (emu) build: a twin that models the asynchrony instead of ignoring it. copy16 fills its 16
// destination bytes with 0xFF (NaN: on hardware they are undefined until the copy lands) and queues the copy on this
// object; the copy lands (is performed, in issue order) only when a wait<N>() covers its group, or when the object
// goes out of scope (the hardware completes every copy). So a read before the wait, a missing barrier after it
// (another thread's copy has not landed yet in one of the emu's two thread orders) and a copy into a stage that
// other threads still read (a missing barrier before reuse: the NaN fill clobbers it) all give wrong outputs, which
// the op tests catch. What the emu cannot show is timing: it says nothing about how well the copies overlap math.
// The twin also checks what the hardware faults on: alignment, and dst inside the block's dynamic shared memory
// (so kernels using it keep their tiles in EXTERN_SHARED memory; a static __shared__ array is a host static here).
#pragma once
#include <cstdint>
#include <cstdio>
#include <cstring>

#include "common.cuh"

namespace EET_KNS {

template <int kMaxPending>
class AsyncCopies {
 public:
  static_assert(kMaxPending >= 1, "at least one copy in flight");

  __device__ __forceinline__ void copy16(void* dst, const void* src, int src_bytes) {
#if defined(__CUDACC__)
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
    const unsigned s = static_cast<unsigned>(__cvta_generic_to_shared(dst));
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(s), "l"(__cvta_generic_to_global(src)),
                 "r"(src_bytes)
                 : "memory");
#elif defined(__CUDA_ARCH__)
    __trap();
#endif
#else
    check(dst, src, src_bytes);
    std::memset(dst, 0xff, 16);
    pending_[n_++] = Pending{static_cast<unsigned char*>(dst), static_cast<const unsigned char*>(src), src_bytes,
                             committed_};
#endif
  }

  __device__ __forceinline__ void commit() {
#if defined(__CUDACC__)
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
    asm volatile("cp.async.commit_group;\n" ::: "memory");
#elif defined(__CUDA_ARCH__)
    __trap();
#endif
#else
    ++committed_;
#endif
  }

  template <int N>
  __device__ __forceinline__ void wait() {
    static_assert(N >= 0, "a count of groups");
#if defined(__CUDACC__)
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
    asm volatile("cp.async.wait_group %0;\n" ::"n"(N) : "memory");
#elif defined(__CUDA_ARCH__)
    __trap();
#endif
#else
    land(committed_ - N);
#endif
  }

#if !defined(__CUDACC__)
  AsyncCopies() = default;
  AsyncCopies(const AsyncCopies&) = delete;
  AsyncCopies& operator=(const AsyncCopies&) = delete;
  ~AsyncCopies() { land(committed_ + 1); }  // every copy, committed or not, lands

 private:
  struct Pending {
    unsigned char* dst;
    const unsigned char* src;
    int bytes;
    int group;  // the number of commits before it was issued: its group's index
  };

  // Performs, in issue order, the queued copies of groups below `group`; keeps the rest queued.
  void land(int group) {
    int kept = 0;
    for (int i = 0; i < n_; ++i) {
      const Pending& c = pending_[i];
      if (c.group < group) {
        if (c.bytes > 0) std::memcpy(c.dst, c.src, size_t(c.bytes));
        std::memset(c.dst + c.bytes, 0, size_t(16 - c.bytes));
      } else {
        pending_[kept++] = c;
      }
    }
    n_ = kept;
  }

  void check(const void* dst, const void* src, int src_bytes) const {
    char msg[160];
    const auto* base = static_cast<const unsigned char*>(dynamic_smem());
    const auto* d = static_cast<const unsigned char*>(dst);
    const char* why = nullptr;
    if (src_bytes < 0 || src_bytes > 16) why = "src-size outside 0..16";
    else if ((reinterpret_cast<uintptr_t>(dst) & 15u) || (src_bytes > 0 && (reinterpret_cast<uintptr_t>(src) & 15u)))
      why = "address not 16-byte aligned";
    else if (!base || d < base || d + 16 > base + dynamic_smem_bytes()) why = "dst outside the block's dynamic shared memory";
    else if (n_ == kMaxPending) why = "more copies in flight than AsyncCopies<kMaxPending> holds";
    if (!why) return;
    std::snprintf(msg, sizeof msg, "cp.async: %s (dst %p, src %p, src-size %d)", why, dst, src, src_bytes);
    fault(msg);
  }

  Pending pending_[kMaxPending];
  int n_ = 0;
  int committed_ = 0;
#endif
};

// The same interface done with ordinary loads and stores, for operands whose rows are not 16-byte aligned (where
// cp.async cannot be used): copy16 reads src_bytes / 2 16-bit elements (src 2-byte aligned), zero-fills the rest and
// stores 16 bytes at once (dst 16-byte aligned); commit and wait have nothing to do. A kernel templated on the
// copier runs one pipeline either way.
class SyncCopies {
 public:
  __device__ __forceinline__ void copy16(void* dst, const void* src, int src_bytes) {
    uint16_t e[8];
    const auto* s = static_cast<const uint16_t*>(src);
#pragma unroll
    for (int i = 0; i < 8; ++i) e[i] = 2 * i < src_bytes ? s[i] : uint16_t(0);
    uint4 v;
    memcpy(&v, e, 16);
    *static_cast<uint4*>(dst) = v;
  }
  __device__ __forceinline__ void commit() {}
  template <int N>
  __device__ __forceinline__ void wait() {}
};

}  // namespace EET_KNS

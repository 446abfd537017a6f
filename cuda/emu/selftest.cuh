// Shared by the SIMT emulator's self-test files (cuda/emu/selftest*.cu): device buffers for both builds, the
// failure helper, and the case functions the registry (selftest.cu) lists. Each family of cases has its file:
//   selftest_block.cu   block-level: reductions, 3-D blocks, dynamic shared memory, atomics, intrinsics, the race,
//                       a LayerNorm-like kernel (timed)
//   selftest_warp.cu    warp collectives: shuffles, votes, partial warps, exited lanes, the generic collective
//   selftest_ptx.cu     emulated inline PTX: ldmatrix (cuda/ldmatrix.cuh), cp.async (cuda/async_copy.cuh)
//   selftest_faults.cu  emu only: kernels that break CUDA's rules, each of which must become an ERR_KERNEL error
// Every file compiles under nvcc (eet_cuda, a real GPU) and the host compiler (eet_emu); cases that are correct
// CUDA can run on both, cases that break CUDA's rules exist in the emu build only (on a GPU they hang or kill the
// context).
#pragma once
#include "../common.cuh"
#include "../../engine/half.h"

#include <cstring>
#include <string>
#include <vector>

namespace EET_KNS {
namespace selftest {

constexpr unsigned kFull = 0xffffffffu;

[[noreturn]] inline void fail(const std::string& what) { eet::throw_error(eet::ErrorCode::Internal, "selftest: " + what); }

// Device memory for both builds: cudaMalloc under nvcc, the emu's host "device" memory otherwise.
class DevBuf {
 public:
  explicit DevBuf(size_t bytes) : bytes_(bytes) {
#if defined(__CUDACC__)
    check_cuda(cudaMalloc(&p_, bytes), "cudaMalloc");
#else
    p_ = dev_malloc(bytes);
    if (!p_) eet::throw_error(eet::ErrorCode::Oom, "selftest: dev_malloc failed");
#endif
  }
  ~DevBuf() {
#if defined(__CUDACC__)
    cudaFree(p_);
#else
    dev_free(p_);
#endif
  }
  DevBuf(const DevBuf&) = delete;
  DevBuf& operator=(const DevBuf&) = delete;
  template <typename T> T* as() const { return static_cast<T*>(p_); }
  void upload(const void* src) {
#if defined(__CUDACC__)
    check_cuda(cudaMemcpy(p_, src, bytes_, cudaMemcpyHostToDevice), "cudaMemcpy");
#else
    std::memcpy(p_, src, bytes_);
#endif
  }
  void download(void* dst, eet::Stream stream) const {
#if defined(__CUDACC__)
    check_cuda(cudaStreamSynchronize(static_cast<cudaStream_t>(stream)), "cudaStreamSynchronize");
    check_cuda(cudaMemcpy(dst, p_, bytes_, cudaMemcpyDeviceToHost), "cudaMemcpy");
#else
    (void)stream;
    std::memcpy(dst, p_, bytes_);
#endif
  }

 private:
  void* p_ = nullptr;
  size_t bytes_;
};

template <typename T>
std::vector<T> download(const DevBuf& b, size_t n, eet::Stream s) {
  std::vector<T> v(n);
  b.download(v.data(), s);
  return v;
}

#if !defined(__CUDACC__)
template <typename F>
std::string expect_kernel_error(F run, std::vector<std::string> expect) {
  try {
    run();
  } catch (const eet::Error& e) {
    if (e.code() != eet::ErrorCode::Kernel) fail(std::string("wrong error code for: ") + e.what());
    const std::string m = e.what();
    for (const auto& want : expect)
      if (m.find(want) == std::string::npos) fail("error message lacks \"" + want + "\": " + m);
    return "ok: reported: " + m;
  }
  fail("expected an ERR_KERNEL error, the launch succeeded");
}
#endif

// One case: "ok: ..." or throws eet::Error (ErrorCode::Internal when a check fails).
using CaseFn = std::string (*)(eet::Stream);
struct Case {
  const char* name;
  CaseFn run;
};
// Each family's cases, in the order they run (the emu-only ones only in the host build).
std::vector<Case> block_cases();
std::vector<Case> warp_cases();
std::vector<Case> ptx_cases();
std::vector<Case> fault_cases();

}  // namespace selftest
}  // namespace EET_KNS

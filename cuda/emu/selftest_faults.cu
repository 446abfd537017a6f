// Self-test, emu only: kernels that break CUDA's rules (divergent barriers, deadlocked or malformed collectives, a
// null store, a fiber stack overflow, bad launch sizes, dynamic shared memory over the target's limit). Each must
// become an ERR_KERNEL error naming the problem, never a hang or a crash of the process. On a GPU these hang or kill
// the context, so the nvcc build has no cases here.
#include "selftest.cuh"

namespace EET_KNS {
namespace selftest {

#if !defined(__CUDACC__)
// (No anonymous namespace: scripts/kernel-coverage.js reads kernel names from the emu's demangled trace.)

__global__ void divergent_barrier_kernel(int* out) {
  if (threadIdx.x < 16) __syncthreads();
  out[threadIdx.x] = 1;
}

__global__ void early_return_kernel(const float* x, float* y, int n) {
  __shared__ float sh[64];
  const int i = threadIdx.x;
  if (i >= n) return;  // threads past n never reach the barrier below
  sh[i] = x[i];
  __syncthreads();
  y[i] = sh[(i + 1) % n];
}

__global__ void two_barriers_kernel(int* out) {
  if (threadIdx.x < 16) {
    __syncthreads();
  } else {
    __syncthreads();
  }
  out[threadIdx.x] = 1;
}

__global__ void mismatched_op_kernel(int* out) {
  if (threadIdx.x < 16)
    out[threadIdx.x] = int(__ballot_sync(kFull, 1));
  else
    out[threadIdx.x] = __shfl_xor_sync(kFull, int(threadIdx.x), 1);
}

__global__ void not_in_mask_kernel(int* out) { out[threadIdx.x] = __shfl_sync(0x1u, int(threadIdx.x), 0); }

__global__ void null_store_kernel(int* p) { p[threadIdx.x] = 42; }

__device__ __noinline__ int deep_recursion(int depth) {
  volatile char frame[4096];
  frame[0] = char(depth);
  frame[4095] = char(depth);
  return depth > 0 ? deep_recursion(depth - 1) + frame[0] + frame[4095] : 0;
}
__global__ void stack_overflow_kernel(int* out) { out[threadIdx.x] = deep_recursion(1000); }

// Writes its dynamic shared memory's last word to out (a launch that uses `smem` bytes).
__global__ void smem_user_kernel(unsigned* out) {
  EXTERN_SHARED(unsigned, buf);
  buf[threadIdx.x] = threadIdx.x;
  __syncthreads();
  out[threadIdx.x] = buf[blockDim.x - 1 - threadIdx.x];
}

// Each case launches into a scratch buffer of 1024 ints.
struct Scratch {
  DevBuf buf{1024 * sizeof(int)};
  int* out() const { return buf.as<int>(); }
};

std::string expect_divergent_barrier(eet::Stream s) {
  Scratch b;
  return expect_kernel_error([&] { launch(divergent_barrier_kernel, dim3(1), dim3(32), 0, s, b.out()); },
                             {"deadlock", "16 wait at __syncthreads (selftest_faults.cu:", "16 have exited"});
}

std::string expect_early_return_barrier(eet::Stream s) {
  Scratch b;
  float* f = b.buf.as<float>();
  return expect_kernel_error([&] { launch(early_return_kernel, dim3(1), dim3(64), 0, s, (const float*)f, f + 64, 40); },
                             {"40 wait at __syncthreads", "24 have exited"});
}

std::string expect_two_barrier_sites(eet::Stream s) {
  Scratch b;
  return expect_kernel_error([&] { launch(two_barriers_kernel, dim3(1), dim3(32), 0, s, b.out()); },
                             {"deadlock", "16 wait at __syncthreads", "selftest_faults.cu"});
}

std::string expect_mismatched_op(eet::Stream s) {
  Scratch b;
  return expect_kernel_error([&] { launch(mismatched_op_kernel, dim3(1), dim3(32), 0, s, b.out()); },
                             {"deadlock", "__ballot_sync", "__shfl_xor_sync"});
}

std::string expect_not_in_mask(eet::Stream s) {
  Scratch b;
  return expect_kernel_error([&] { launch(not_in_mask_kernel, dim3(1), dim3(32), 0, s, b.out()); }, {"not in the mask"});
}

std::string expect_null_store(eet::Stream s) {
  return expect_kernel_error([&] { launch(null_store_kernel, dim3(2), dim3(64), 0, s, (int*)nullptr); },
                             {"kernel crashed (SIGSEGV at address",
                              reverse_order() ? "block (1,0,0) thread (" : "block (0,0,0) thread ("});
}

std::string expect_stack_overflow(eet::Stream s) {
  Scratch b;
  return expect_kernel_error([&] { launch(stack_overflow_kernel, dim3(1), dim3(4), 0, s, b.out()); },
                             {"kernel crashed", "stack overflow"});
}

std::string expect_bad_config(eet::Stream s) {
  Scratch b;
  return expect_kernel_error([&] { launch(divergent_barrier_kernel, dim3(1), dim3(2048), 0, s, b.out()); },
                             {"invalid block size"});
}

// The emulated target's per-block shared memory (setEmuOptions): a launch at the limit runs, 16 bytes over it is
// refused with the sizes in the message.
std::string expect_smem_over_limit(eet::Stream s) {
  Scratch b;
  const size_t limit = smem_per_block_optin();
  unsigned* u = b.buf.as<unsigned>();
  launch(smem_user_kernel, dim3(1), dim3(128), limit, s, u);
  return expect_kernel_error([&] { launch(smem_user_kernel, dim3(1), dim3(128), limit + 16, s, u); },
                             {"dynamic shared memory of " + std::to_string(limit + 16) + " bytes",
                              "opt-in limit of " + std::to_string(limit) + " bytes"});
}

#endif  // !__CUDACC__

std::vector<Case> fault_cases() {
#if defined(__CUDACC__)
  return {};
#else
  return {{"expect_divergent_barrier", expect_divergent_barrier},
          {"expect_early_return_barrier", expect_early_return_barrier},
          {"expect_two_barrier_sites", expect_two_barrier_sites},
          {"expect_mismatched_op", expect_mismatched_op},
          {"expect_not_in_mask", expect_not_in_mask},
          {"expect_null_store", expect_null_store},
          {"expect_stack_overflow", expect_stack_overflow},
          {"expect_bad_config", expect_bad_config},
          {"expect_smem_over_limit", expect_smem_over_limit}};
#endif
}

}  // namespace selftest
}  // namespace EET_KNS

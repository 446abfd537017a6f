// Included first by every cuda/*.cu. The same sources compile two ways:
//   nvcc (__CUDACC__)  -> namespace eet_cuda, real <<<>>> launches on a stream
//   host C++ compiler  -> namespace eet_emu, launched on the SIMT emulator (cuda/emu/emu.h)
// Kernel sources differ from plain CUDA in two places only: EXTERN_SHARED(T, name) for dynamic shared memory and
// launch(kernel, grid, block, smem_bytes, stream, args...) instead of <<<>>>. Everything else is ordinary CUDA:
// no `static __shared__`, no cooperative_groups, no CUB, no __activemask(); warp collectives use explicit masks.
#pragma once
#include <cstdint>
#include <utility>

#include "../engine/error.h"
#include "../engine/ops.h"

#if defined(__CUDACC__)
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#define EET_KNS eet_cuda
#define EXTERN_SHARED(T, name)                                    \
  extern __shared__ __align__(16) unsigned char eet_dyn_smem_[]; \
  T* name = reinterpret_cast<T*>(eet_dyn_smem_)

namespace eet_cuda {
// Throws eet::Error (ERR_CUDA, or ERR_OOM for allocation failures) if err is not cudaSuccess.
void check_cuda(cudaError_t err, const char* what);

// The current device's per-block opt-in limit of dynamic shared memory (cudaDevAttrMaxSharedMemoryPerBlockOptin,
// queried once per device): launchers with large tiles pick one that fits (the emu has the same function).
size_t smem_per_block_optin();

// launch()'s non-template parts (backend_cuda.cpp), each error naming the kernel and the op that launched it: the
// opt-in to more than 48 KiB of dynamic shared memory, and the check after a launch (with EET_CUDA_SYNC=1 a
// synchronisation too, so a fault is reported by the launch that caused it).
void opt_in_smem(const void* kernel, size_t smem);
void after_launch(const void* kernel, cudaStream_t stream);

// Streaming multiprocessors of the current device (cudaDevAttrMultiProcessorCount, read once per device): launchers
// size their grids and split-K from it. Defined in cuda/backend_cuda.cpp.
int sm_count();

// The one way kernels are launched (the emu has the same signature); failures become an eet::Error.
template <typename... P, typename... A>
inline void launch(void (*kernel)(P...), dim3 grid, dim3 block, size_t smem, eet::Stream stream, A&&... args) {
  if (smem > 48 * 1024) opt_in_smem(reinterpret_cast<const void*>(kernel), smem);
  kernel<<<grid, block, smem, static_cast<cudaStream_t>(stream)>>>(P(std::forward<A>(args))...);
  after_launch(reinterpret_cast<const void*>(kernel), static_cast<cudaStream_t>(stream));
}
}  // namespace eet_cuda

#else
#include "emu/emu.h"
#define EET_KNS eet_emu
#endif

namespace EET_KNS {

// ---- element conversions: kernels load any float dtype to fp32 and store back ---------------------------------
__device__ __forceinline__ float to_f32(float x) { return x; }
__device__ __forceinline__ float to_f32(__half x) { return __half2float(x); }
__device__ __forceinline__ float to_f32(__nv_bfloat16 x) { return __bfloat162float(x); }

template <typename T> __device__ __forceinline__ T from_f32(float x);
template <> __device__ __forceinline__ float from_f32<float>(float x) { return x; }
template <> __device__ __forceinline__ __half from_f32<__half>(float x) { return __float2half_rn(x); }
template <> __device__ __forceinline__ __nv_bfloat16 from_f32<__nv_bfloat16>(float x) { return __float2bfloat16_rn(x); }

__host__ __device__ __forceinline__ int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

// Launchers choose 16-byte vector paths only for pointers aligned this way (checked at run time).
inline bool aligned16(const void* p) { return (reinterpret_cast<uintptr_t>(p) & 15u) == 0; }

}  // namespace EET_KNS

// Runs BODY with T bound to the C++ type of a float dtype (float, __half, __nv_bfloat16).
#define EET_DISPATCH_FLOAT(dtype, T, ...)                                                           \
  do {                                                                                              \
    switch (dtype) {                                                                                \
      case ::eet::DType::F32: { using T = float; __VA_ARGS__; break; }                              \
      case ::eet::DType::F16: { using T = __half; __VA_ARGS__; break; }                             \
      case ::eet::DType::BF16: { using T = __nv_bfloat16; __VA_ARGS__; break; }                     \
      default: ::eet::throw_error(::eet::ErrorCode::Unsupported, "dtype not supported by this op"); \
    }                                                                                               \
  } while (0)

// The cuda backend: device memory, one non-blocking stream per device, ops forwarded to cuda/*.cu (eet_cuda).
// Compiled only when nvcc was found (EET_WITH_CUDA); otherwise the stubs at the bottom say why CUDA is absent.
// The addon links cudart statically, so it loads on machines with no driver: any error from
// cudaGetDeviceCount is reported as a reason, never thrown.
#include <mutex>
#include <string>

#include "../engine/backend.h"
#include "entry.h"

#ifdef EET_WITH_CUDA
#include <cuda_runtime.h>

namespace eet_cuda {
void check_cuda(cudaError_t err, const char* what) {
  if (err == cudaSuccess) return;
  cudaGetLastError();  // clear a sticky non-fatal error so the next call does not report it again
  auto code = err == cudaErrorMemoryAllocation ? eet::ErrorCode::Oom : eet::ErrorCode::Cuda;
  eet::throw_error(code, std::string(what) + " failed: " + cudaGetErrorName(err) + " (" + cudaGetErrorString(err) + ")");
}
}  // namespace eet_cuda

namespace eet {
namespace {
using eet_cuda::check_cuda;

class CudaBackend final : public Backend {
 public:
  explicit CudaBackend(int index) : index_(index) {
    check_cuda(cudaSetDevice(index_), "cudaSetDevice");
    check_cuda(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking), "cudaStreamCreate");
  }
  ~CudaBackend() override {
    cudaSetDevice(index_);
    cudaStreamDestroy(stream_);
  }
  DeviceKind kind() const override { return DeviceKind::Cuda; }
  std::string name() const override { return "cuda:" + std::to_string(index_); }
  void* alloc(size_t bytes) override {
    use();
    void* p = nullptr;
    check_cuda(cudaMalloc(&p, bytes ? bytes : 1), ("cudaMalloc(" + std::to_string(bytes) + " bytes)").c_str());
    return p;
  }
  void free(void* p) override {
    use();
    cudaStreamSynchronize(stream_);  // nothing queued may still read it
    cudaFree(p);
  }
  void upload(void* dst, const void* src, size_t n) override {
    use();
    check_cuda(cudaMemcpyAsync(dst, src, n, cudaMemcpyHostToDevice, stream_), "cudaMemcpy(host to device)");
    check_cuda(cudaStreamSynchronize(stream_), "cudaStreamSynchronize");
  }
  void download(void* dst, const void* src, size_t n) override {
    use();
    check_cuda(cudaMemcpyAsync(dst, src, n, cudaMemcpyDeviceToHost, stream_), "cudaMemcpy(device to host)");
    check_cuda(cudaStreamSynchronize(stream_), "cudaStreamSynchronize");
  }
  void copy(void* dst, const void* src, size_t n) override {
    use();
    check_cuda(cudaMemcpyAsync(dst, src, n, cudaMemcpyDeviceToDevice, stream_), "cudaMemcpy(device to device)");
  }
  void fill(void* dst, uint8_t byte, size_t n) override {
    use();
    check_cuda(cudaMemsetAsync(dst, byte, n, stream_), "cudaMemset");
  }
  void synchronize() override {
    use();
    check_cuda(cudaStreamSynchronize(stream_), "cudaStreamSynchronize");
  }
  size_t free_memory() const override {
    cudaSetDevice(index_);
    size_t free_b = 0, total = 0;
    if (cudaMemGetInfo(&free_b, &total) != cudaSuccess) return 0;
    return free_b;
  }

#define EET_CUDA_FORWARD(name, Args) \
  void name(const Args& a) override { validate(a); use(); eet_cuda::op_##name(a, stream_); }
  EET_OPS(EET_CUDA_FORWARD)
#undef EET_CUDA_FORWARD

 private:
  void use() { check_cuda(cudaSetDevice(index_), "cudaSetDevice"); }
  int index_;
  cudaStream_t stream_ = nullptr;
};

}  // namespace

bool cuda_compiled() { return true; }

CudaStatus cuda_status() {
  CudaStatus s{false, "", {}};
  int n = 0;
  cudaError_t err = cudaGetDeviceCount(&n);
  if (err != cudaSuccess) {
    cudaGetLastError();
    if (err == cudaErrorInsufficientDriver) s.reason = "no usable NVIDIA driver (cudaErrorInsufficientDriver)";
    else if (err == cudaErrorNoDevice) s.reason = "no CUDA device found";
    else s.reason = std::string("CUDA unavailable: ") + cudaGetErrorName(err);
    return s;
  }
  if (n == 0) {
    s.reason = "no CUDA device found";
    return s;
  }
  for (int i = 0; i < n; ++i) {
    cudaDeviceProp p{};
    if (cudaGetDeviceProperties(&p, i) != cudaSuccess) continue;
    s.devices.push_back({i, p.name, p.major, p.minor, p.totalGlobalMem, p.multiProcessorCount});
  }
  bool any = false;
  for (auto& d : s.devices) any = any || d.cc_major >= 8;
  s.usable = any;
  if (!any) s.reason = "no device of compute capability 8.0 or newer (this build targets sm_80+)";
  return s;
}

std::shared_ptr<Backend> make_cuda_backend(int index) {
  CudaStatus s = cuda_status();
  if (!s.usable) throw_error(ErrorCode::Unsupported, "cuda: " + s.reason);
  for (auto& d : s.devices) {
    if (d.index == index) {
      if (d.cc_major < 8) throw_error(ErrorCode::Unsupported, "cuda:" + std::to_string(index) + " (" + d.name + ") has compute capability " + std::to_string(d.cc_major) + "." + std::to_string(d.cc_minor) + "; sm_80 or newer is required");
      return std::make_shared<CudaBackend>(index);
    }
  }
  throw_error(ErrorCode::InvalidArg, "cuda: no device with index " + std::to_string(index));
}

}  // namespace eet

#else  // !EET_WITH_CUDA

namespace eet {
bool cuda_compiled() { return false; }
CudaStatus cuda_status() {
  return {false, "this build of the addon has no CUDA support (nvcc was not found when it was built)", {}};
}
std::shared_ptr<Backend> make_cuda_backend(int) {
  throw_error(ErrorCode::Unsupported, "cuda: " + cuda_status().reason);
}
}  // namespace eet

#endif

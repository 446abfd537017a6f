// The cuda backend: device memory, one non-blocking stream per device, ops forwarded to cuda/*.cu (eet_cuda).
// Compiled only when nvcc was found (EET_WITH_CUDA); otherwise the stubs at the bottom say why CUDA is absent.
// The addon links cudart statically, so it loads on machines with no driver: any error from
// cudaGetDeviceCount is reported as a reason, never thrown.
// EET_CUDA_SYNC=1 (read once): every kernel launch is followed by a stream synchronisation, so an asynchronous
// fault (an illegal address, a trap) is reported by the launch that caused it, naming the kernel and the op
// (README "Troubleshooting"); without it a fault surfaces at the next synchronising call, whatever that is.
#include <cxxabi.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "../engine/backend.h"
#include "entry.h"

#ifdef EET_WITH_CUDA
#include <cuda_runtime.h>

namespace eet_cuda {
namespace {

// Devices whose CUDA context a sticky error destroyed (an illegal address, a trap, a failed launch...): every later
// runtime call on them fails with that same error, so each is reported once, and from then on every call says
// the one thing that helps — the context is gone, restart the process — instead of blaming whichever op ran next.
std::mutex g_lost_mu;
std::map<int, std::string> g_lost;  // device -> what was lost, and where

bool is_sticky(cudaError_t err) {
  switch (err) {
    case cudaErrorIllegalAddress:
    case cudaErrorLaunchFailure:
    case cudaErrorHardwareStackError:
    case cudaErrorIllegalInstruction:
    case cudaErrorMisalignedAddress:
    case cudaErrorInvalidAddressSpace:
    case cudaErrorInvalidPc:
    case cudaErrorAssert:
    case cudaErrorLaunchTimeout:
    case cudaErrorECCUncorrectable:
    case cudaErrorContextIsDestroyed:
      return true;
    default:
      return false;
  }
}

std::string lost_message(int device, const std::string& what) {
  return "cuda:" + std::to_string(device) + ": the device context was lost (" + what +
         "); every later call on this device fails: restart the process";
}

// Records a sticky error of the current device. Either the known sticky codes, or an error that survives being
// read (cudaGetLastError resets every error that is not sticky).
bool mark_if_lost(cudaError_t err, const char* what) {
  cudaGetLastError();
  if (!is_sticky(err) && cudaPeekAtLastError() == cudaSuccess) return false;
  int device = -1;
  cudaGetDevice(&device);
  std::lock_guard<std::mutex> lock(g_lost_mu);
  g_lost.emplace(device, std::string(cudaGetErrorName(err)) + " in " + what);
  return true;
}

}  // namespace

void check_cuda(cudaError_t err, const char* what) {
  if (err == cudaSuccess) return;
  if (mark_if_lost(err, what)) {
    int device = -1;
    cudaGetDevice(&device);
    eet::throw_error(eet::ErrorCode::Cuda, lost_message(device, std::string(cudaGetErrorName(err)) + " (" + cudaGetErrorString(err) +
                                                                     ") in " + what));
  }
  auto code = err == cudaErrorMemoryAllocation ? eet::ErrorCode::Oom : eet::ErrorCode::Cuda;
  eet::throw_error(code, std::string(what) + " failed: " + cudaGetErrorName(err) + " (" + cudaGetErrorString(err) + ")");
}

// The lost state of a device, as the error every call on it throws; "" while it is healthy.
std::string lost_reason(int device) {
  std::lock_guard<std::mutex> lock(g_lost_mu);
  auto it = g_lost.find(device);
  return it == g_lost.end() ? std::string() : lost_message(device, it->second);
}

// ---- device limits, queried once per device ----------------------------------------------------------------------
struct DeviceLimits {
  int sm_count;
  size_t smem_per_block_optin;
};

DeviceLimits device_limits(int device) {
  static std::mutex mu;
  static std::map<int, DeviceLimits> known;
  std::lock_guard<std::mutex> lock(mu);
  auto it = known.find(device);
  if (it != known.end()) return it->second;
  int sms = 0, smem = 0;
  check_cuda(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device), "cudaDeviceGetAttribute(MultiProcessorCount)");
  check_cuda(cudaDeviceGetAttribute(&smem, cudaDevAttrMaxSharedMemoryPerBlockOptin, device),
             "cudaDeviceGetAttribute(MaxSharedMemoryPerBlockOptin)");
  return known.emplace(device, DeviceLimits{sms, size_t(smem)}).first->second;
}

// The current device's limits, cached per thread: launchers ask on every launch, and device_limits() takes a lock.
const DeviceLimits& current_limits() {
  thread_local int device = -1;
  thread_local DeviceLimits limits{1, 0};
  int now = -1;
  check_cuda(cudaGetDevice(&now), "cudaGetDevice");
  if (now != device) {
    limits = device_limits(now);
    device = now;
  }
  return limits;
}

size_t smem_per_block_optin() { return current_limits().smem_per_block_optin; }

int sm_count() { return std::max(current_limits().sm_count, 1); }

// ---- launches: errors that name the kernel and the op ------------------------------------------------------------
namespace {

thread_local const char* t_op = nullptr;  // the op the backend is running on this thread (OpScope)

bool sync_launches() {
  static const bool on = [] {
    const char* v = std::getenv("EET_CUDA_SYNC");
    return v != nullptr && std::string(v) == "1";
  }();
  return on;
}

// "kernel <its demangled name> (op <name>)". cudaFuncGetName fails once the context is lost: call it before a
// synchronisation that may report a fault.
std::string launch_site(const void* kernel) {
  std::string name = "?";
#if CUDART_VERSION >= 12030  // cudaFuncGetName is CUDA 12.3's; older toolkits name the op only
  const char* mangled = nullptr;
  if (cudaFuncGetName(&mangled, kernel) == cudaSuccess && mangled != nullptr) {
    int status = 0;
    std::unique_ptr<char, void (*)(void*)> dem(abi::__cxa_demangle(mangled, nullptr, nullptr, &status), std::free);
    name = status == 0 && dem ? dem.get() : mangled;
  }
#else
  (void)kernel;
#endif
  return "kernel " + name + " (op " + (t_op ? t_op : "?") + ")";
}

}  // namespace

bool sync_launches_on() { return sync_launches(); }

// Names the op for the launches made while it lives (the backend's op forwarders).
class OpScope {
 public:
  explicit OpScope(const char* op) : prev_(t_op) { t_op = op; }
  ~OpScope() { t_op = prev_; }
  OpScope(const OpScope&) = delete;
  OpScope& operator=(const OpScope&) = delete;

 private:
  const char* prev_;
};

// The attribute is set once per (device, kernel) to the most any launch asked for: cudaFuncSetAttribute waits for
// the device's pending copies (a stall per launch otherwise), and a decode step captured as a graph must not call
// it at all (it ran eagerly first, with the same sizes, so its kernels are opted in by then).
void opt_in_smem(const void* kernel, size_t smem) {
  const size_t limit = smem_per_block_optin();
  if (smem > limit) {
    eet::throw_error(eet::ErrorCode::Unsupported, launch_site(kernel) + " needs " + std::to_string(smem) +
                                                      " bytes of dynamic shared memory, over this device's per-block limit of " +
                                                      std::to_string(limit));
  }
  int device = -1;
  check_cuda(cudaGetDevice(&device), "cudaGetDevice");
  static std::mutex mu;
  static std::map<std::pair<int, const void*>, size_t> opted;  // (device, kernel) -> bytes set
  std::lock_guard<std::mutex> lock(mu);
  size_t& done = opted[{device, kernel}];
  if (smem <= done) return;
  const cudaError_t err = cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, int(smem));
  if (err != cudaSuccess) check_cuda(err, ("cudaFuncSetAttribute(MaxDynamicSharedMemorySize) of " + launch_site(kernel)).c_str());
  done = smem;
}

void after_launch(const void* kernel, cudaStream_t stream) {
  cudaError_t err = cudaGetLastError();
  if (err != cudaSuccess) check_cuda(err, ("the launch of " + launch_site(kernel)).c_str());
  if (!sync_launches()) return;  // (the backend offers no graphs in this mode: nothing is captured here)
  const std::string site = launch_site(kernel);
  err = cudaStreamSynchronize(stream);
  if (err != cudaSuccess) check_cuda(err, (site + ", EET_CUDA_SYNC=1").c_str());
}

}  // namespace eet_cuda

namespace eet {
namespace {
using eet_cuda::check_cuda;

// A decode step's launches captured from the stream and instantiated (cudaGraphExec_t).
class CudaGraph final : public DeviceGraph {
 public:
  CudaGraph(int device, cudaGraphExec_t exec) : device_(device), exec_(exec) {}
  ~CudaGraph() override {
    if (!eet_cuda::lost_reason(device_).empty()) return;  // it went with the context
    cudaError_t err = cudaSetDevice(device_);
    if (err == cudaSuccess) err = cudaGraphExecDestroy(exec_);
    if (err != cudaSuccess) eet_cuda::mark_if_lost(err, "cudaGraphExecDestroy");
  }
  size_t launches() const override { return 0; }
  cudaGraphExec_t exec() const { return exec_; }

 private:
  int device_;
  cudaGraphExec_t exec_;
};

class CudaBackend final : public Backend {
 public:
  explicit CudaBackend(int index) : index_(index) {
    use();
    check_cuda(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking), "cudaStreamCreate");
    sm_count_ = std::min(std::max(eet_cuda::device_limits(index).sm_count, 1), kMaxSmCount);
  }
  ~CudaBackend() override {
    if (!eet_cuda::lost_reason(index_).empty()) return;
    cudaSetDevice(index_);
    cudaStreamDestroy(stream_);
  }
  DeviceKind kind() const override { return DeviceKind::Cuda; }
  std::string name() const override { return "cuda:" + std::to_string(index_); }
  void* alloc(size_t bytes) override {
    use();
    not_capturing("alloc");
    void* p = nullptr;
    check_cuda(cudaMalloc(&p, bytes ? bytes : 1), ("cudaMalloc(" + std::to_string(bytes) + " bytes)").c_str());
    return p;
  }
  // Runs from buffer destructors, so it never throws: errors are recorded (a sticky one marks the device lost)
  // and the pointer is dropped. After a loss the memory went with the context; there is nothing to free.
  void free(void* p) noexcept override {
    if (!eet_cuda::lost_reason(index_).empty()) return;
    cudaError_t err = cudaSetDevice(index_);
    if (err == cudaSuccess) err = cudaStreamSynchronize(stream_);  // nothing queued may still read it
    if (err == cudaSuccess) err = cudaFree(p);
    if (err != cudaSuccess) eet_cuda::mark_if_lost(err, "cudaFree");
  }
  void upload(void* dst, const void* src, size_t n) override {
    use();
    not_capturing("upload");
    check_cuda(cudaMemcpyAsync(dst, src, n, cudaMemcpyHostToDevice, stream_), "cudaMemcpy(host to device)");
    check_cuda(cudaStreamSynchronize(stream_), "cudaStreamSynchronize");
  }
  void download(void* dst, const void* src, size_t n) override {
    use();
    not_capturing("download");
    check_cuda(cudaMemcpyAsync(dst, src, n, cudaMemcpyDeviceToHost, stream_), "cudaMemcpy(device to host)");
    check_cuda(cudaStreamSynchronize(stream_), "cudaStreamSynchronize");
  }
  void copy(void* dst, const void* src, size_t n) override {
    use();
    not_capturing("copy");
    check_cuda(cudaMemcpyAsync(dst, src, n, cudaMemcpyDeviceToDevice, stream_), "cudaMemcpy(device to device)");
  }
  void fill(void* dst, uint8_t byte, size_t n) override {
    use();
    not_capturing("fill");
    check_cuda(cudaMemsetAsync(dst, byte, n, stream_), "cudaMemset");
  }
  void synchronize() override {
    use();
    not_capturing("synchronize");
    check_cuda(cudaStreamSynchronize(stream_), "cudaStreamSynchronize");
  }
  size_t free_memory() const override {
    if (!eet_cuda::lost_reason(index_).empty()) return 0;
    if (cudaSetDevice(index_) != cudaSuccess) return 0;
    size_t free_b = 0, total = 0;
    if (cudaMemGetInfo(&free_b, &total) != cudaSuccess) return 0;
    return free_b;
  }

  int32_t sm_count() const override { return sm_count_; }

  // Stream capture in thread-local mode: only this thread's calls are affected, and the stream is non-blocking, so
  // work other threads put on the legacy stream cannot join the capture. A step is captured only after it ran once
  // eagerly (engine/step_graphs.cpp), so lazy module loading and the shared-memory opt-ins happened outside.
  bool supports_graphs() const override { return !eet_cuda::sync_launches_on(); }
  void begin_capture() override {
    use();
    if (capturing_) throw_error(ErrorCode::Internal, "cuda: a capture is already open");
    check_cuda(cudaStreamBeginCapture(stream_, cudaStreamCaptureModeThreadLocal), "cudaStreamBeginCapture");
    capturing_ = true;
  }
  std::unique_ptr<DeviceGraph> end_capture() override {
    if (!capturing_) throw_error(ErrorCode::Internal, "cuda: end_capture() without begin_capture()");
    capturing_ = false;
    use();
    cudaGraph_t graph = nullptr;
    check_cuda(cudaStreamEndCapture(stream_, &graph), "cudaStreamEndCapture");
    cudaGraphExec_t exec = nullptr;
    const cudaError_t err = cudaGraphInstantiateWithFlags(&exec, graph, 0);
    cudaGraphDestroy(graph);  // the executable graph is independent of it
    check_cuda(err, "cudaGraphInstantiate");
    return std::make_unique<CudaGraph>(index_, exec);
  }
  // Ends a capture that failed half way (an op threw): the stream leaves capture mode, the partial graph is dropped,
  // and the error a broken capture leaves (cudaErrorStreamCaptureInvalidated...) is cleared, being reported already.
  void abort_capture() noexcept override {
    if (!capturing_) return;
    capturing_ = false;
    if (!eet_cuda::lost_reason(index_).empty() || cudaSetDevice(index_) != cudaSuccess) return;
    cudaGraph_t graph = nullptr;
    if (cudaStreamEndCapture(stream_, &graph) == cudaSuccess && graph) cudaGraphDestroy(graph);
    cudaGetLastError();
  }
  void replay(DeviceGraph& graph) override {
    use();
    not_capturing("replay");
    auto* g = dynamic_cast<CudaGraph*>(&graph);
    if (!g) throw_error(ErrorCode::Internal, "cuda: replay() of another backend's graph");
    check_cuda(cudaGraphLaunch(g->exec(), stream_), "cudaGraphLaunch");
  }

#define EET_CUDA_FORWARD(name, Args) \
  void name(const Args& a) override {      \
    validate(a);                           \
    use();                                 \
    eet_cuda::OpScope scope(#name);        \
    eet_cuda::op_##name(a, stream_);       \
  }
  EET_OPS(EET_CUDA_FORWARD)
#undef EET_CUDA_FORWARD

  // Device events around each repetition on this backend's stream, all recorded before one synchronize, so the
  // host never waits between repetitions. With scrub_cache, a fill of twice the L2's size precedes each start
  // event: it evicts the op's data from the L2 (the weights of a decode step come from DRAM, not from the previous
  // repetition), and the op's launches are enqueued while the fill runs (~30 us for an H200's 2 × 50 MB), so their
  // latency stays out of its time unless the host takes longer than that to enqueue them.
  LaunchTimes time_launches(const std::function<void()>& launch, int warmup, int reps, bool scrub_cache) override {
    use();
    struct Events {  // destroyed whatever happens; a failure here is only recorded (a lost device)
      std::vector<cudaEvent_t> e;
      ~Events() {
        for (cudaEvent_t x : e) {
          const cudaError_t err = cudaEventDestroy(x);
          if (err != cudaSuccess) eet_cuda::mark_if_lost(err, "cudaEventDestroy");
        }
      }
    } ev;
    struct Scratch {
      CudaBackend* be;
      void* p = nullptr;
      size_t bytes = 0;
      ~Scratch() { if (p) be->free(p); }
    } scrub{this};
    if (scrub_cache) {
      int l2 = 0;
      check_cuda(cudaDeviceGetAttribute(&l2, cudaDevAttrL2CacheSize, index_), "cudaDeviceGetAttribute(L2 size)");
      scrub.bytes = std::max<size_t>(size_t(2) * size_t(l2), size_t(1) << 20);
      scrub.p = alloc(scrub.bytes);
    }
    for (int i = 0; i < 2 * reps; ++i) {
      cudaEvent_t x = nullptr;
      check_cuda(cudaEventCreate(&x), "cudaEventCreate");
      ev.e.push_back(x);
    }
    for (int i = 0; i < warmup; ++i) launch();
    for (int i = 0; i < reps; ++i) {
      if (scrub.p) check_cuda(cudaMemsetAsync(scrub.p, i & 0xff, scrub.bytes, stream_), "cudaMemset (L2 scrub)");
      check_cuda(cudaEventRecord(ev.e[size_t(2 * i)], stream_), "cudaEventRecord");
      launch();
      check_cuda(cudaEventRecord(ev.e[size_t(2 * i + 1)], stream_), "cudaEventRecord");
    }
    check_cuda(cudaStreamSynchronize(stream_), "cudaStreamSynchronize");
    LaunchTimes t;
    t.clock = "cuda-event";
    t.cache_scrubbed = scrub.p != nullptr;
    for (int i = 0; i < reps; ++i) {
      float ms = 0.0f;
      check_cuda(cudaEventElapsedTime(&ms, ev.e[size_t(2 * i)], ev.e[size_t(2 * i + 1)]), "cudaEventElapsedTime");
      t.ms.push_back(double(ms));
    }
    return t;
  }

  // A deliberate illegal address (a store through a bogus pointer, by the embedding kernel called past its
  // validation), then the synchronisation that reports it: the GPU suite's check of the lost-context path.
  void inject_fault() {
    use();
    int32_t* ids = static_cast<int32_t*>(alloc(4));
    fill(ids, 0, 4);
    EmbeddingArgs a{};
    a.dtype = DType::F32;
    a.ids = ids;
    a.table = ids;
    a.out = reinterpret_cast<void*>(uintptr_t(16));
    a.n = 1;
    a.cols = 1;
    a.vocab = 1;
    {
      eet_cuda::OpScope scope("embedding, an injected fault");
      eet_cuda::op_embedding(a, stream_);
    }
    cudaError_t err = cudaStreamSynchronize(stream_);
    free(ids);
    check_cuda(err, "an injected fault (EET_TEST_HOOKS)");
  }

 private:
  void not_capturing(const char* what) const {
    if (capturing_) throw_error(ErrorCode::Internal, std::string("cuda: ") + what + "() while capturing a device graph");
  }
  void use() {
    const std::string lost = eet_cuda::lost_reason(index_);
    if (!lost.empty()) throw_error(ErrorCode::Cuda, lost);
    check_cuda(cudaSetDevice(index_), "cudaSetDevice");
  }
  int index_;
  int32_t sm_count_ = 1;
  cudaStream_t stream_ = nullptr;
  bool capturing_ = false;  // guarded by the backend's mutex
};

}  // namespace

void cuda_inject_fault_for_test(Backend& be) {
  auto* cuda = dynamic_cast<CudaBackend*>(&be);
  if (cuda == nullptr) throw_error(ErrorCode::InvalidArg, "injectFault: the device must be cuda");
  cuda->inject_fault();
}

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
void cuda_inject_fault_for_test(Backend&) { throw_error(ErrorCode::Unsupported, "cuda: " + cuda_status().reason); }
}  // namespace eet

#endif

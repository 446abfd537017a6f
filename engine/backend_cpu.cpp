// The two host backends with the cpu's memory:
//   cpu      the fast kernels (engine/fast/: vectorised, blocked, threaded) for the ops that dominate a forward pass
//            (gemm, gemm_q8, attention, norm, act, rope, rope_kv_append), the reference ops for the rest; `threads` threads
//   cpu-ref  the plain reference of every op (engine/cpu/), the baseline the op tests compare every backend with
#include <cstdlib>
#include <fstream>
#include <string>

#include "backend_host.h"
#include "cpu/parallel.h"
#include "cpu/reference.h"
#include "fast/fast.h"

namespace eet {

size_t HostMemoryBackend::free_memory() const {
  // MemAvailable from /proc/meminfo; 0 when it cannot be read.
  std::ifstream f("/proc/meminfo");
  std::string key;
  size_t kb = 0;
  while (f >> key) {
    if (key == "MemAvailable:") {
      f >> kb;
      return kb * 1024;
    }
    f.ignore(1 << 10, '\n');
  }
  return 0;
}

namespace {

// Host memory, 64-byte aligned so vector loads never split a cache line at a row start.
class HostAllocBackend : public HostMemoryBackend {
 public:
  DeviceKind kind() const override { return DeviceKind::Cpu; }
  void* alloc(size_t bytes) override {
    void* p = nullptr;
    if (posix_memalign(&p, 64, bytes ? bytes : 1) != 0 || !p) {
      throw_error(ErrorCode::Oom, "cpu: out of memory allocating " + std::to_string(bytes) + " bytes");
    }
    return p;
  }
  void free(void* p) noexcept override { std::free(p); }
};

// Which implementation the cpu backend runs for each op: the fast one where engine/fast has it.
template <class Args> struct FastOp { static constexpr void (*fn)(const Args&) = nullptr; };
template <> struct FastOp<GemmArgs> { static constexpr void (*fn)(const GemmArgs&) = fast::op_gemm; };
template <> struct FastOp<GemmQ8Args> { static constexpr void (*fn)(const GemmQ8Args&) = fast::op_gemm_q8; };
template <> struct FastOp<AttentionArgs> { static constexpr void (*fn)(const AttentionArgs&) = fast::op_attention; };
template <> struct FastOp<SharedAttentionArgs> { static constexpr void (*fn)(const SharedAttentionArgs&) = fast::op_shared_attention; };
template <> struct FastOp<NormArgs> { static constexpr void (*fn)(const NormArgs&) = fast::op_norm; };
template <> struct FastOp<ActArgs> { static constexpr void (*fn)(const ActArgs&) = fast::op_act; };
template <> struct FastOp<RopeArgs> { static constexpr void (*fn)(const RopeArgs&) = fast::op_rope; };
template <> struct FastOp<RopeKvAppendArgs> { static constexpr void (*fn)(const RopeKvAppendArgs&) = fast::op_rope_kv_append; };

class CpuBackend final : public HostAllocBackend {
 public:
  explicit CpuBackend(int threads) : threads_(threads) {}
  std::string name() const override { return "cpu"; }

#define EET_CPU_FORWARD(name, Args)                                      \
  void name(const Args& a) override {                                     \
    validate(a);                                                          \
    cpu::ThreadsScope scope(threads_);                                    \
    if constexpr (FastOp<Args>::fn != nullptr) FastOp<Args>::fn(a);       \
    else cpu::op_##name(a);                                               \
  }
  EET_OPS(EET_CPU_FORWARD)
#undef EET_CPU_FORWARD

 private:
  int threads_;
};

class CpuRefBackend final : public HostAllocBackend {
 public:
  std::string name() const override { return "cpu-ref"; }

#define EET_CPU_REF_FORWARD(name, Args) \
  void name(const Args& a) override { validate(a); cpu::op_##name(a); }
  EET_OPS(EET_CPU_REF_FORWARD)
#undef EET_CPU_REF_FORWARD
};

}  // namespace

std::shared_ptr<Backend> make_cpu_backend(int threads) {
  return std::make_shared<CpuBackend>(threads > 0 ? threads : cpu::default_threads());
}
std::shared_ptr<Backend> make_cpu_ref_backend() { return std::make_shared<CpuRefBackend>(); }
int cpu_default_threads() { return cpu::default_threads(); }
std::string cpu_isa() { return fast::isa_name(); }

}  // namespace eet

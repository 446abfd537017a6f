// The cpu backend: host memory and the reference implementation of every op (engine/cpu/).
#include <cstdlib>
#include <fstream>
#include <string>

#include "backend_host.h"
#include "cpu/reference.h"

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

class CpuBackend final : public HostMemoryBackend {
 public:
  DeviceKind kind() const override { return DeviceKind::Cpu; }
  std::string name() const override { return "cpu"; }
  void* alloc(size_t bytes) override {
    // 64-byte aligned so vectorised reference loops and 16-byte device-style loads are both fine.
    void* p = nullptr;
    if (posix_memalign(&p, 64, bytes ? bytes : 1) != 0 || !p) {
      throw_error(ErrorCode::Oom, "cpu: out of memory allocating " + std::to_string(bytes) + " bytes");
    }
    return p;
  }
  void free(void* p) noexcept override { std::free(p); }

#define EET_CPU_FORWARD(name, Args) \
  void name(const Args& a) override { validate(a); cpu::op_##name(a); }
  EET_OPS(EET_CPU_FORWARD)
#undef EET_CPU_FORWARD
};

}  // namespace

std::shared_ptr<Backend> make_cpu_backend() { return std::make_shared<CpuBackend>(); }

}  // namespace eet

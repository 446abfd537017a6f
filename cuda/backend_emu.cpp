// The emu backend: the cuda/*.cu kernels compiled for the host and run by the SIMT emulator (cuda/emu/).
// Memory is host memory of the exact requested size (so AddressSanitizer's redzone sits right after it).
// Also defines the emulator controls that engine/backend.h declares for the Node layer.
#include <string>
#include <vector>

#include "../engine/backend_host.h"
#include "emu/emu.h"
#include "entry.h"

namespace eet {
namespace {

class EmuBackend final : public HostMemoryBackend {
 public:
  DeviceKind kind() const override { return DeviceKind::Emu; }
  std::string name() const override { return "emu"; }
  void* alloc(size_t bytes) override {
    void* p = eet_emu::dev_malloc(bytes);
    if (!p) throw_error(ErrorCode::Oom, "emu: out of memory allocating " + std::to_string(bytes) + " bytes");
    return p;
  }
  void free(void* p) noexcept override { eet_emu::dev_free(p); }
  int32_t sm_count() const override { return eet_emu::sm_count(); }

#define EET_EMU_FORWARD(name, Args) \
  void name(const Args& a) override { validate(a); eet_emu::op_##name(a, nullptr); }
  EET_OPS(EET_EMU_FORWARD)
#undef EET_EMU_FORWARD
};

}  // namespace

std::shared_ptr<Backend> make_emu_backend() { return std::make_shared<EmuBackend>(); }

void set_emu_reverse_order(bool reverse) { eet_emu::set_reverse_order(reverse); }
void set_emu_target(const EmuTarget& t) {
  // Shared memory down to 1 KiB, below any real GPU's (sm_80+: >= 99 KiB), so tests can make every config too large.
  if (t.sm_count < 1 || t.sm_count > kMaxSmCount || t.max_smem_per_block_optin < 1024 || t.max_smem_per_block_optin > 227 * 1024) {
    throw_error(ErrorCode::InvalidArg, "emu target: expected sm_count in [1, " + std::to_string(kMaxSmCount) +
                                           "] and max_smem_per_block_optin in [1024, 232448] but received " +
                                           std::to_string(t.sm_count) + " and " + std::to_string(t.max_smem_per_block_optin));
  }
  eet_emu::set_target(t.sm_count, size_t(t.max_smem_per_block_optin));
}
std::vector<std::string> emu_selftest_cases() { return eet_emu::emu_selftest_cases(); }
std::string emu_selftest(const std::string& name) { return eet_emu::emu_selftest(name.c_str(), nullptr); }

}  // namespace eet

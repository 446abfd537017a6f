// The emu backend: the cuda/*.cu kernels compiled for the host and run by the SIMT emulator (cuda/emu/).
// Memory is host memory of the exact requested size (so AddressSanitizer's redzone sits right after it).
// Also defines the emulator controls that engine/backend.h declares for the Node layer.
#include <atomic>
#include <memory>
#include <string>
#include <vector>

#include "../engine/backend_host.h"
#include "emu/emu.h"
#include "entry.h"

namespace eet {
namespace {

std::atomic<bool> g_fail_next_capture{false};  // set_emu_fail_next_capture

// A recording of launches (eet_emu::begin_recording), replayed in order.
class EmuGraph final : public DeviceGraph {
 public:
  explicit EmuGraph(std::vector<eet_emu::detail::RecordedLaunch> l) : launches_(std::move(l)) {}
  size_t launches() const override { return launches_.size(); }
  void replay() const {
    for (const auto& launch : launches_) launch();
  }

 private:
  std::vector<eet_emu::detail::RecordedLaunch> launches_;
};

class EmuBackend final : public HostMemoryBackend {
 public:
  DeviceKind kind() const override { return DeviceKind::Emu; }
  std::string name() const override { return "emu"; }
  void* alloc(size_t bytes) override {
    not_capturing("alloc");
    void* p = eet_emu::dev_malloc(bytes);
    if (!p) throw_error(ErrorCode::Oom, "emu: out of memory allocating " + std::to_string(bytes) + " bytes");
    return p;
  }
  void free(void* p) noexcept override { eet_emu::dev_free(p); }
  int32_t sm_count() const override { return eet_emu::sm_count(); }
  // What a CUDA stream capture forbids, refused here too, so CI catches a step that synchronises or moves memory
  // between its launches before a GPU does (the emu's memory is host memory: these would otherwise just work).
  void upload(void* dst, const void* src, size_t n) override { not_capturing("upload"); HostMemoryBackend::upload(dst, src, n); }
  void download(void* dst, const void* src, size_t n) override { not_capturing("download"); HostMemoryBackend::download(dst, src, n); }
  void copy(void* dst, const void* src, size_t n) override { not_capturing("copy"); HostMemoryBackend::copy(dst, src, n); }
  void fill(void* dst, uint8_t byte, size_t n) override { not_capturing("fill"); HostMemoryBackend::fill(dst, byte, n); }
  void synchronize() override { not_capturing("synchronize"); }

  bool supports_graphs() const override { return true; }
  void begin_capture() override {
    eet_emu::begin_recording();
    capturing_ = true;
  }
  std::unique_ptr<DeviceGraph> end_capture() override {
    if (!capturing_) throw_error(ErrorCode::Internal, "emu: end_capture() without begin_capture()");
    if (g_fail_next_capture.exchange(false)) {  // still capturing: the caller's abort_capture() ends it
      throw_error(ErrorCode::Internal, "emu: the capture failed (injected: setEmuOptions({ failNextCapture: true }))");
    }
    capturing_ = false;
    return std::make_unique<EmuGraph>(eet_emu::end_recording());
  }
  void abort_capture() noexcept override {
    if (!capturing_) return;
    capturing_ = false;
    eet_emu::end_recording();
  }
  void replay(DeviceGraph& graph) override {
    not_capturing("replay");
    auto* g = dynamic_cast<EmuGraph*>(&graph);
    if (!g) throw_error(ErrorCode::Internal, "emu: replay() of another backend's graph");
    g->replay();
  }

#define EET_EMU_FORWARD(name, Args) \
  void name(const Args& a) override { validate(a); eet_emu::op_##name(a, nullptr); }
  EET_OPS(EET_EMU_FORWARD)
#undef EET_EMU_FORWARD

 private:
  void not_capturing(const char* what) const {
    if (capturing_) throw_error(ErrorCode::Internal, std::string("emu: ") + what + "() while capturing a device graph");
  }
  bool capturing_ = false;  // guarded by the backend's mutex, like every use of the backend
};

}  // namespace

std::shared_ptr<Backend> make_emu_backend() { return std::make_shared<EmuBackend>(); }

void set_emu_reverse_order(bool reverse) { eet_emu::set_reverse_order(reverse); }
void set_emu_fail_next_capture(bool fail) { g_fail_next_capture = fail; }
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

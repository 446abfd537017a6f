// Device strings -> backends. One backend per device per process, created on first use and shared. And the
// backends' default per-op clock.
#include <chrono>
#include <map>
#include <mutex>

#include "backend.h"

namespace eet {

LaunchTimes Backend::time_launches(const std::function<void()>& launch, int warmup, int reps, bool) {
  for (int i = 0; i < warmup; ++i) launch();
  synchronize();
  LaunchTimes t;
  t.clock = "host";
  t.ms.reserve(size_t(reps > 0 ? reps : 0));
  for (int i = 0; i < reps; ++i) {
    const auto t0 = std::chrono::steady_clock::now();
    launch();
    synchronize();
    t.ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
  }
  return t;
}

void Backend::begin_capture() { throw_error(ErrorCode::Unsupported, name() + ": device graphs are not supported"); }
std::unique_ptr<DeviceGraph> Backend::end_capture() {
  throw_error(ErrorCode::Unsupported, name() + ": device graphs are not supported");
}
void Backend::replay(DeviceGraph&) { throw_error(ErrorCode::Unsupported, name() + ": device graphs are not supported"); }

std::shared_ptr<Backend> backend_for(const std::string& device, int threads) {
  static std::mutex mu;
  static std::map<std::string, std::shared_ptr<Backend>> made;
  if (device == "cpu" && threads <= 0) threads = cpu_default_threads();
  std::string key = device == "cuda" ? "cuda:0" : device == "cpu" ? "cpu/" + std::to_string(threads) : device;
  std::lock_guard<std::mutex> lock(mu);
  auto it = made.find(key);
  if (it != made.end()) return it->second;
  std::shared_ptr<Backend> b;
  if (device == "cpu") {
    b = make_cpu_backend(threads);
  } else if (key == "cpu-ref") {
    b = make_cpu_ref_backend();
  } else if (key == "emu") {
    b = make_emu_backend();
  } else if (key.rfind("cuda:", 0) == 0) {
    const std::string idx = key.substr(5);
    if (idx.empty() || idx.size() > 3 || idx.find_first_not_of("0123456789") != std::string::npos) {
      throw_error(ErrorCode::InvalidArg, "Expected 'cpu', 'cpu-ref', 'emu', 'cuda' or 'cuda:N' for device but received '" + device + "'");
    }
    b = make_cuda_backend(std::stoi(idx));
  } else {
    throw_error(ErrorCode::InvalidArg, "Expected 'cpu', 'cpu-ref', 'emu', 'cuda' or 'cuda:N' for device but received '" + device + "'");
  }
  made[key] = b;
  return b;
}

}  // namespace eet

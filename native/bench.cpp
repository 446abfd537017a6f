// Measurements for the benchmarks (lib/bench/).
// benchCopyBandwidth(device, bytes, iters): the device's copy bandwidth, for `eet bench`'s decode roofline.
// Allocates two buffers of `bytes` on the backend, copies one into the other `iters` times (after one warm-up
// copy) with the backend's copy(), and times the loop in C++ between two synchronize() calls. A copy reads and
// writes every byte, so the bandwidth counts 2 × bytes per copy (the convention of CUDA's bandwidthTest and of
// memory rooflines). Runs on the JS thread: keep bytes × iters modest (1 GiB × 10 takes ~7 ms on an H100).
// timeOpSync(op, device, params, { warmup = 1, reps, scrubCache = false }): one op of runOpSync's (same op names and params,
// checked the same way once), launched warmup times untimed and then reps times, each timed alone by the backend's
// clock (Backend::time_launches: device events on cuda; the host clock elsewhere, which says nothing about a GPU).
// Returns { clock, cacheScrubbed, ms: one time per repetition }. For the per-op benchmark (lib/bench/ops.ts).
#include <chrono>
#include <mutex>

#include "addon.h"

namespace eet_node {
namespace {

Napi::Value BenchCopyBandwidth(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, [&]() -> Napi::Value {
    if (!info[0].IsString()) throw_arg(env, "device", "string", info[0]);
    if (!info[1].IsObject()) throw_arg(env, "options", "object", info[1]);
    Napi::Object o = info[1].As<Napi::Object>();
    const int64_t bytes = get_int(o, "bytes", 1, int64_t(1) << 40);
    const int64_t iters = get_int(o, "iters", 1, 1000);
    auto backend = eet::backend_for(info[0].As<Napi::String>().Utf8Value());
    std::lock_guard<eet::FairMutex> lock(backend->mutex());
    Buffer src(backend, size_t(bytes)), dst(backend, size_t(bytes));
    backend->fill(src.ptr, 0x3c, size_t(bytes));
    backend->copy(dst.ptr, src.ptr, size_t(bytes));  // warm-up: first-touch, clocks
    backend->synchronize();
    const auto t0 = std::chrono::steady_clock::now();
    for (int64_t i = 0; i < iters; ++i) backend->copy(dst.ptr, src.ptr, size_t(bytes));
    backend->synchronize();
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    Napi::Object out = Napi::Object::New(env);
    out.Set("device", backend->name());
    out.Set("bytes", double(bytes));
    out.Set("iters", double(iters));
    out.Set("seconds", seconds);
    out.Set("bytesPerSecond", seconds > 0 ? 2.0 * double(bytes) * double(iters) / seconds : 0.0);
    return out;
  });
}

Napi::Value TimeOpSync(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, [&]() -> Napi::Value {
    if (!info[0].IsString()) throw_arg(env, "op", "string", info[0]);
    if (!info[1].IsString()) throw_arg(env, "device", "string", info[1]);
    if (!info[2].IsObject()) throw_arg(env, "params", "object", info[2]);
    if (!info[3].IsObject()) throw_arg(env, "options", "object", info[3]);
    Napi::Object o = info[3].As<Napi::Object>();
    const int warmup = int(get_int_or(o, "warmup", 0, 10000, 1));
    const int reps = int(get_int(o, "reps", 1, 10000));
    const bool scrub = get_bool_or(o, "scrubCache", false);
    auto backend = eet::backend_for(info[1].As<Napi::String>().Utf8Value());
    std::lock_guard<eet::FairMutex> lock(backend->mutex());
    PreparedOp op = prepare_op(env, info[0].As<Napi::String>().Utf8Value(), backend, info[2].As<Napi::Object>());
    const eet::LaunchTimes t = backend->time_launches(op.launch, warmup, reps, scrub);
    backend->synchronize();
    Napi::Object out = Napi::Object::New(env);
    out.Set("clock", t.clock);
    out.Set("cacheScrubbed", t.cache_scrubbed);
    Napi::Float64Array ms = Napi::Float64Array::New(env, t.ms.size());
    for (size_t i = 0; i < t.ms.size(); ++i) ms[i] = t.ms[i];
    out.Set("ms", ms);
    return out;
  });
}

}  // namespace

void init_bench(Napi::Env env, Napi::Object exports) {
  exports.Set("benchCopyBandwidth", Napi::Function::New(env, BenchCopyBandwidth));
  exports.Set("timeOpSync", Napi::Function::New(env, TimeOpSync));
}

}  // namespace eet_node

// Module entry: the error factory, argument helpers, device listing, emu options.
#include "addon.h"

#include <cmath>
#include <cstdlib>
#include <string>
#include <vector>

namespace eet_node {

EnvData* env_data(Napi::Env env) { return env.GetInstanceData<EnvData>(); }

bool js_usable(napi_env env) {
  napi_value probe = nullptr, undefined = nullptr;
  if (env == nullptr || napi_create_object(env, &probe) != napi_ok || napi_get_undefined(env, &undefined) != napi_ok) {
    return false;
  }
  return napi_set_named_property(env, probe, "probe", undefined) == napi_ok;  // refused when JS cannot run
}

EnvCleanup::EnvCleanup(napi_env env, std::function<void()> teardown)
    : env_(env), teardown_(std::move(teardown)), hooked_(napi_add_env_cleanup_hook(env, &EnvCleanup::Run, this) == napi_ok) {}

EnvCleanup::~EnvCleanup() {
  if (hooked_) napi_remove_env_cleanup_hook(env_, &EnvCleanup::Run, this);
}

void EnvCleanup::Run(void* self) {
  auto* c = static_cast<EnvCleanup*>(self);
  c->hooked_ = false;
  c->teardown_();
}

Napi::Error make_error(Napi::Env env, eet::ErrorCode code, const std::string& message) {
  const char* name = eet::error_code_name(code);
  EnvData* d = env_data(env);
  if (d && !d->error_factory.IsEmpty()) {
    Napi::Value v = d->error_factory.Call({Napi::String::New(env, name), Napi::String::New(env, message)});
    if (v.IsObject()) return Napi::Error(env, v);
  }
  Napi::Error e = Napi::Error::New(env, message);
  e.Set("code", Napi::String::New(env, name));
  return e;
}

Napi::Error make_error(Napi::Env env, const eet::Error& e) { return make_error(env, e.code(), e.what()); }

static std::string describe(const Napi::Value& v) {
  if (v.IsUndefined()) return "undefined";
  if (v.IsNull()) return "null";
  if (v.IsNumber() || v.IsBoolean() || v.IsString() || v.IsBigInt()) {
    std::string type = v.IsNumber() ? "number" : v.IsBoolean() ? "boolean" : v.IsString() ? "string" : "bigint";
    return v.ToString().Utf8Value() + " of type " + type;
  }
  return "a value of type object";
}

void throw_arg(Napi::Env env, const std::string& name, const std::string& expected, const Napi::Value& got) {
  throw make_error(env, eet::ErrorCode::InvalidArg, "Expected " + expected + " for " + name + " but received " + describe(got));
}

int64_t get_int(const Napi::Object& o, const char* name, int64_t lo, int64_t hi) {
  Napi::Value v = o.Get(name);
  std::string expected = "integer in [" + std::to_string(lo) + ", " + std::to_string(hi) + "]";
  if (!v.IsNumber()) throw_arg(o.Env(), name, expected, v);
  double d = v.As<Napi::Number>().DoubleValue();
  if (!std::isfinite(d) || d != std::floor(d) || d < double(lo) || d > double(hi)) throw_arg(o.Env(), name, expected, v);
  return int64_t(d);
}

int64_t get_int_or(const Napi::Object& o, const char* name, int64_t lo, int64_t hi, int64_t fallback) {
  Napi::Value v = o.Get(name);
  return v.IsUndefined() || v.IsNull() ? fallback : get_int(o, name, lo, hi);
}

double get_number(const Napi::Object& o, const char* name) {
  Napi::Value v = o.Get(name);
  if (!v.IsNumber() || !std::isfinite(v.As<Napi::Number>().DoubleValue())) throw_arg(o.Env(), name, "finite number", v);
  return v.As<Napi::Number>().DoubleValue();
}

double get_number_or(const Napi::Object& o, const char* name, double fallback) {
  Napi::Value v = o.Get(name);
  return v.IsUndefined() || v.IsNull() ? fallback : get_number(o, name);
}

bool get_bool_or(const Napi::Object& o, const char* name, bool fallback) {
  Napi::Value v = o.Get(name);
  if (v.IsUndefined() || v.IsNull()) return fallback;
  if (!v.IsBoolean()) throw_arg(o.Env(), name, "boolean", v);
  return v.As<Napi::Boolean>().Value();
}

eet::AttnMask to_attn_mask(Napi::Env env, const std::string& name, const Napi::Value& v) {
  constexpr eet::AttnMask kAll[] = {eet::AttnMask::Bidirectional, eet::AttnMask::Causal, eet::AttnMask::AntiCausal,
                                    eet::AttnMask::Cross};
  const std::string s = v.IsString() ? v.As<Napi::String>().Utf8Value() : "";
  for (eet::AttnMask m : kAll) {
    if (s == eet::attn_mask_name(m)) return m;
  }
  throw_arg(env, name, "'bidirectional', 'causal', 'anticausal' or 'cross'", v);
}

std::string get_string(const Napi::Object& o, const char* name) {
  Napi::Value v = o.Get(name);
  if (!v.IsString()) throw_arg(o.Env(), name, "string", v);
  return v.As<Napi::String>().Utf8Value();
}

namespace {

Napi::Value SetErrorFactory(const Napi::CallbackInfo& info) {
  if (!info[0].IsFunction()) throw Napi::TypeError::New(info.Env(), "setErrorFactory expects a function");
  env_data(info.Env())->error_factory = Napi::Persistent(info[0].As<Napi::Function>());
  return info.Env().Undefined();
}

// devices(): { cudaCompiled, cudaUsable, reason, cuda: [{index, name, computeCapability, totalMemory, smCount}],
//              cpuIsa, cpuThreads } (the fast cpu kernels' instruction set, the default thread count)
Napi::Value Devices(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, [&]() -> Napi::Value {
    eet::CudaStatus s = eet::cuda_status();
    Napi::Object out = Napi::Object::New(env);
    out.Set("cudaCompiled", Napi::Boolean::New(env, eet::cuda_compiled()));
    out.Set("cudaUsable", Napi::Boolean::New(env, s.usable));
    out.Set("reason", s.reason.empty() ? env.Null() : Napi::String::New(env, s.reason));
    Napi::Array list = Napi::Array::New(env, s.devices.size());
    for (size_t i = 0; i < s.devices.size(); ++i) {
      const auto& d = s.devices[i];
      Napi::Object o = Napi::Object::New(env);
      o.Set("index", d.index);
      o.Set("name", d.name);
      o.Set("computeCapability", std::to_string(d.cc_major) + "." + std::to_string(d.cc_minor));
      o.Set("totalMemory", double(d.total_memory));
      o.Set("smCount", d.sm_count);
      list.Set(uint32_t(i), o);
    }
    out.Set("cuda", list);
    out.Set("cpuIsa", eet::cpu_isa());
    out.Set("cpuThreads", eet::cpu_default_threads());
    return out;
  });
}

// setEmuOptions({ reverseOrder, smCount, maxSharedMemoryPerBlockOptin, failNextCapture }): the SIMT emulator's
// thread scheduling order (races show up as differences), the device it emulates (eet::EmuTarget), and a test hook
// that makes the next device-graph capture fail. Every option not given takes its default: forward order, sm_90's
// 132 SMs and 227 KiB (232448 bytes) of shared memory per block, no failure.
Napi::Value SetEmuOptions(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsObject()) throw_arg(env, "options", "object", info[0]);
  const Napi::Object o = info[0].As<Napi::Object>();
  const eet::EmuTarget def;
  eet::EmuTarget t;
  t.sm_count = int32_t(get_int_or(o, "smCount", 1, eet::kMaxSmCount, def.sm_count));
  t.max_smem_per_block_optin = get_int_or(o, "maxSharedMemoryPerBlockOptin", 1024, def.max_smem_per_block_optin, def.max_smem_per_block_optin);
  const bool reverse = get_bool_or(o, "reverseOrder", false);
  const bool fail_capture = get_bool_or(o, "failNextCapture", false);
  return guarded(env, [&]() -> Napi::Value {
    eet::set_emu_target(t);
    eet::set_emu_reverse_order(reverse);
    eet::set_emu_fail_next_capture(fail_capture);
    return env.Undefined();
  });
}

// emuSelfTestCases() -> string[];  emuSelfTest(name) -> "ok: …" or throws (ERR_KERNEL for the cases that expect
// the emulator to catch a kernel bug is converted to "ok" by the self-test itself).
Napi::Value EmuSelfTestCases(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto cases = eet::emu_selftest_cases();
  Napi::Array out = Napi::Array::New(env, cases.size());
  for (size_t i = 0; i < cases.size(); ++i) out.Set(uint32_t(i), cases[i]);
  return out;
}

Napi::Value EmuSelfTest(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsString()) throw_arg(env, "name", "string", info[0]);
  std::string name = info[0].As<Napi::String>().Utf8Value();
  return guarded(env, [&]() -> Napi::Value { return Napi::String::New(env, eet::emu_selftest(name)); });
}

// injectCudaFault(device): EET_TEST_HOOKS=1 only. Loses the device's CUDA context on purpose (an illegal
// address), so that the GPU suite can check what every later call reports; the process must be discarded after.
Napi::Value InjectCudaFault(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsString()) throw_arg(env, "device", "string", info[0]);
  const std::string device = info[0].As<Napi::String>().Utf8Value();
  return guarded(env, [&]() -> Napi::Value {
    std::shared_ptr<eet::Backend> be = eet::backend_for(device);
    std::lock_guard<eet::FairMutex> lock(be->mutex());
    eet::cuda_inject_fault_for_test(*be);
    return env.Undefined();
  });
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  env.SetInstanceData(new EnvData());
  exports.Set("setErrorFactory", Napi::Function::New(env, SetErrorFactory));
  exports.Set("devices", Napi::Function::New(env, Devices));
  exports.Set("setEmuOptions", Napi::Function::New(env, SetEmuOptions));
  exports.Set("emuSelfTestCases", Napi::Function::New(env, EmuSelfTestCases));
  exports.Set("emuSelfTest", Napi::Function::New(env, EmuSelfTest));
  const char* hooks = std::getenv("EET_TEST_HOOKS");
  if (hooks != nullptr && std::string(hooks) == "1") exports.Set("injectCudaFault", Napi::Function::New(env, InjectCudaFault));
  init_tensor(env, exports);
  init_ops(env, exports);
  init_model(env, exports);
  init_context(env, exports);
  init_bench(env, exports);
  return exports;
}

}  // namespace
}  // namespace eet_node

static Napi::Object InitModule(Napi::Env env, Napi::Object exports) { return eet_node::Init(env, exports); }
NODE_API_MODULE(eet, InitModule)

// Shared declarations of the N-API glue. No math here: argument conversion, object lifetimes, errors.
#pragma once
#include <napi.h>

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "../engine/backend.h"
#include "../engine/error.h"

namespace eet {
class Model;
}

namespace eet_node {

// Per-environment state (one per Node worker thread that loads the addon).
struct EnvData {
  Napi::FunctionReference error_factory;  // set by lib/: (code, message) => EetError subclass instance
  Napi::FunctionReference tensor_ctor;    // AddonTensor
  Napi::FunctionReference model_ctor;     // AddonModel
};
EnvData* env_data(Napi::Env env);

// Whether JS can run in env. False while the environment is terminating (a worker thread ending): then every N-API
// call that may run JS fails, and node-addon-api turns a failure into a fatal error — so completions that arrive
// then (async work, thread-safe calls) must check this first and leave JS alone.
bool js_usable(napi_env env);

// Creates the JS error for an eet::Error through the factory lib/ registered (an EetError subclass with .code).
Napi::Error make_error(Napi::Env env, eet::ErrorCode code, const std::string& message);
Napi::Error make_error(Napi::Env env, const eet::Error& e);
// Runs f and converts eet::Error / std::exception into a thrown JS error.
template <typename F>
auto guarded(Napi::Env env, F&& f) -> decltype(f()) {
  try {
    return f();
  } catch (const eet::Error& e) {
    throw make_error(env, e);
  } catch (const Napi::Error&) {
    throw;
  } catch (const std::bad_alloc&) {
    throw make_error(env, eet::ErrorCode::Oom, "out of host memory");
  } catch (const std::exception& e) {
    throw make_error(env, eet::ErrorCode::Internal, e.what());
  }
}

// An environment cleanup hook (a worker thread's environment going away) that runs `teardown` once; destroying the
// hook first removes it (the owner's destructor then tears down itself). Register it after what the teardown
// must outlive was created: hooks run in reverse order of registration.
class EnvCleanup {
 public:
  EnvCleanup(napi_env env, std::function<void()> teardown);
  ~EnvCleanup();
  EnvCleanup(const EnvCleanup&) = delete;
  EnvCleanup& operator=(const EnvCleanup&) = delete;

 private:
  static void Run(void* self);
  napi_env env_;
  std::function<void()> teardown_;
  bool hooked_;
};

// Argument helpers: message format "Expected <what> for <name> but received <value>" (style.md).
[[noreturn]] void throw_arg(Napi::Env env, const std::string& name, const std::string& expected, const Napi::Value& got);
int64_t get_int(const Napi::Object& o, const char* name, int64_t lo, int64_t hi);
int64_t get_int_or(const Napi::Object& o, const char* name, int64_t lo, int64_t hi, int64_t fallback);
double get_number(const Napi::Object& o, const char* name);
double get_number_or(const Napi::Object& o, const char* name, double fallback);
bool get_bool_or(const Napi::Object& o, const char* name, bool fallback);
std::string get_string(const Napi::Object& o, const char* name);
// An attention mask by its name (eet::attn_mask_name: 'bidirectional', 'causal', 'anticausal'); name is the field.
eet::AttnMask to_attn_mask(Napi::Env env, const std::string& name, const Napi::Value& v);

// Device memory owned by a backend, freed when the last reference goes.
struct Buffer {
  std::shared_ptr<eet::Backend> backend;
  void* ptr = nullptr;
  size_t bytes = 0;
  Buffer(std::shared_ptr<eet::Backend> b, size_t n) : backend(std::move(b)), ptr(backend->alloc(n)), bytes(n) {}
  ~Buffer() { if (ptr) backend->free(ptr); }
  Buffer(const Buffer&) = delete;
  Buffer& operator=(const Buffer&) = delete;
};

void init_tensor(Napi::Env env, Napi::Object exports);
void init_context(Napi::Env env, Napi::Object exports);
void init_ops(Napi::Env env, Napi::Object exports);
void init_model(Napi::Env env, Napi::Object exports);
void init_bench(Napi::Env env, Napi::Object exports);

// The AddonTensor behind a JS object, or nullptr when v is not one.
struct TensorView {
  std::shared_ptr<Buffer> buffer;
  eet::DType dtype;
  int64_t numel;
};
bool unwrap_tensor(const Napi::Value& v, TensorView* out);

// One op of engine/ops.h with its arguments from JS (runOpSync's params), checked and ready (native/ops.cpp):
// launch() enqueues it on the backend; keep holds the tensors and temporaries it reads and writes. Prepare and
// launch with the backend's mutex held. Bad arguments throw as runOpSync reports them (ERR_INVALID_ARG).
struct PreparedOp {
  std::function<void()> launch;
  std::vector<std::shared_ptr<Buffer>> keep;
};
PreparedOp prepare_op(Napi::Env env, const std::string& name, const std::shared_ptr<eet::Backend>& backend,
                      const Napi::Object& params);

// The model (weights) behind an AddonModel object; ERR_INVALID_ARG when v is not one, ERR_DISPOSED when disposed.
std::shared_ptr<eet::Model> unwrap_model(const Napi::Value& v);

}  // namespace eet_node

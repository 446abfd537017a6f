// A promise-returning AsyncWorker (style.md: node-llama-cpp's AddonContextDecodeBatchWorker): holds a reference to
// its JS owner and a shared_ptr to the engine object, so neither goes away while the work runs on a libuv thread;
// errors keep their eet::Error code and become rejections with the EetError subclass.
// Errors are kept here rather than through SetError: node-addon-api would build a JS error for OnError before any
// check could run, which is fatal when the completion arrives while a worker thread's environment terminates.
// OnOK settles the promise only when JS can run (js_usable); otherwise the result is dropped.
#pragma once
#include <memory>
#include <utility>
#include <string>
#include <vector>

#include "addon.h"

namespace eet_node {

template <typename T>
class PromiseWorker : public Napi::AsyncWorker {
 public:
  PromiseWorker(Napi::Env env, Napi::Object owner, std::shared_ptr<T> target)
      : Napi::AsyncWorker(env), deferred_(Napi::Promise::Deferred::New(env)), target_(std::move(target)) {
    owner_ = Napi::Persistent(owner);
  }
  Napi::Promise promise() { return deferred_.Promise(); }

 protected:
  virtual void run(T& target) = 0;
  virtual Napi::Value result(Napi::Env env) { return env.Undefined(); }
  std::shared_ptr<T>& target() { return target_; }

  void Execute() override {
    try {
      run(*target_);
    } catch (const eet::Error& e) {
      fail(e.code(), e.what());
    } catch (const std::bad_alloc&) {
      fail(eet::ErrorCode::Oom, "out of host memory");
    } catch (const std::exception& e) {
      fail(eet::ErrorCode::Internal, e.what());
    }
  }
  void OnOK() override {
    Napi::Env env = Env();
    if (!js_usable(env)) return;
    if (failed_) {
      deferred_.Reject(make_error(env, code_, message_).Value());
    } else {
      deferred_.Resolve(result(env));
    }
  }

 private:
  Napi::Promise::Deferred deferred_;
  Napi::ObjectReference owner_;
  void fail(eet::ErrorCode code, const std::string& message) {
    failed_ = true;
    code_ = code;
    message_ = message;
  }

  std::shared_ptr<T> target_;
  bool failed_ = false;
  eet::ErrorCode code_ = eet::ErrorCode::Internal;
  std::string message_;
};

// Creates a worker, queues it and returns its promise.
template <typename W, typename... Args>
Napi::Value queue_worker(Args&&... args) {
  auto* w = new W(std::forward<Args>(args)...);
  Napi::Promise p = w->promise();
  w->Queue();
  return p;
}

// Runs f (which returns a promise); any synchronous failure becomes a rejected promise.
template <typename F>
Napi::Value promise_guarded(Napi::Env env, F&& f) {
  try {
    return guarded(env, f);
  } catch (const Napi::Error& e) {
    Napi::Promise::Deferred d = Napi::Promise::Deferred::New(env);
    d.Reject(e.Value());
    return d.Promise();
  }
}

// Copies a typed array argument (o[name]) of the given type, or throws the argument error.
template <typename V>
std::vector<V> typed_array(const Napi::Object& o, const char* name, napi_typedarray_type type, const char* type_name) {
  Napi::Value v = o.Get(name);
  if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != type) throw_arg(o.Env(), name, type_name, v);
  Napi::TypedArrayOf<V> a = v.As<Napi::TypedArrayOf<V>>();
  return std::vector<V>(a.Data(), a.Data() + a.ElementLength());
}

}  // namespace eet_node

// AddonTensor: a flat buffer of one dtype on one backend. Shape lives in lib/tensor.ts; native code only needs
// the element count. Reads and device moves have async (AsyncWorker) and sync forms; lib/ uses the async ones,
// the op-test child process the sync ones.
#include <cstring>
#include <vector>

#include "addon.h"

namespace eet_node {
namespace {

eet::DType parse_dtype(const Napi::Value& v) {
  if (!v.IsNumber()) throw_arg(v.Env(), "dtype", "dtype code 0..4", v);
  int32_t d = v.As<Napi::Number>().Int32Value();
  if (d < 0 || d > 4) throw_arg(v.Env(), "dtype", "dtype code 0..4", v);
  return eet::DType(d);
}

class AddonTensor : public Napi::ObjectWrap<AddonTensor> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "AddonTensor",
                       {InstanceMethod("readSync", &AddonTensor::ReadSync), InstanceMethod("read", &AddonTensor::Read),
                        InstanceMethod("toDeviceSync", &AddonTensor::ToDeviceSync),
                        InstanceMethod("dispose", &AddonTensor::Dispose),
                        InstanceAccessor("bytes", &AddonTensor::Bytes, nullptr),
                        InstanceAccessor("disposed", &AddonTensor::Disposed, nullptr),
                        InstanceAccessor("device", &AddonTensor::Device, nullptr)});
  }

  // new AddonTensor(device, dtype, numel, data: TypedArray | null, fill: 'poison' | 'zero' | undefined)
  explicit AddonTensor(const Napi::CallbackInfo& info) : Napi::ObjectWrap<AddonTensor>(info) {
    Napi::Env env = info.Env();
    guarded(env, [&] {
      if (!info[0].IsString()) throw_arg(env, "device", "string", info[0]);
      auto backend = eet::backend_for(info[0].As<Napi::String>().Utf8Value());
      dtype_ = parse_dtype(info[1]);
      if (!info[2].IsNumber()) throw_arg(env, "numel", "non-negative integer", info[2]);
      double n = info[2].As<Napi::Number>().DoubleValue();
      if (!(n >= 0) || n != double(int64_t(n)) || n > double(int64_t(1) << 40)) throw_arg(env, "numel", "non-negative integer", info[2]);
      numel_ = int64_t(n);
      size_t bytes = size_t(eet::checked_mul(numel_, int64_t(eet::dtype_size(dtype_)), "tensor size"));
      buffer_ = std::make_shared<Buffer>(backend, bytes);
      std::lock_guard<eet::FairMutex> lock(backend->mutex());
      if (info[3].IsTypedArray()) {
        Napi::TypedArray ta = info[3].As<Napi::TypedArray>();
        if (ta.ByteLength() != bytes) {
          throw_arg(env, "data", "a typed array of " + std::to_string(bytes) + " bytes", Napi::Number::New(env, double(ta.ByteLength())));
        }
        auto* src = static_cast<uint8_t*>(ta.ArrayBuffer().Data()) + ta.ByteOffset();
        backend->upload(buffer_->ptr, src, bytes);
      } else if (info[4].IsString()) {
        std::string fill = info[4].As<Napi::String>().Utf8Value();
        // 0xFF bytes are NaN in every float dtype: an element a kernel never writes fails the comparison.
        backend->fill(buffer_->ptr, fill == "poison" ? 0xFF : 0x00, bytes);
        backend->synchronize();
      } else if (!info[3].IsNull() && !info[3].IsUndefined()) {
        throw_arg(env, "data", "typed array or null", info[3]);
      }
    });
  }

  TensorView view() const { return {buffer_, dtype_, numel_}; }

 private:
  void check_alive(Napi::Env env) const {
    if (!buffer_) throw make_error(env, eet::ErrorCode::Disposed, "the tensor was disposed");
  }

  Napi::Value ReadSync(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    check_alive(env);
    return guarded(env, [&]() -> Napi::Value {
      Napi::ArrayBuffer ab = Napi::ArrayBuffer::New(env, buffer_->bytes);
      std::lock_guard<eet::FairMutex> lock(buffer_->backend->mutex());
      buffer_->backend->synchronize();
      buffer_->backend->download(ab.Data(), buffer_->ptr, buffer_->bytes);
      return typed_view(env, ab);
    });
  }

  Napi::Value typed_view(Napi::Env env, Napi::ArrayBuffer ab) const {
    size_t n = size_t(numel_);
    switch (dtype_) {
      case eet::DType::F32: return Napi::Float32Array::New(env, n, ab, 0);
      case eet::DType::F16:
      case eet::DType::BF16: return Napi::Uint16Array::New(env, n, ab, 0);
      case eet::DType::I32: return Napi::Int32Array::New(env, n, ab, 0);
      case eet::DType::I8: return Napi::Int8Array::New(env, n, ab, 0);
    }
    return env.Undefined();
  }

  class ReadWorker : public Napi::AsyncWorker {
   public:
    ReadWorker(Napi::Env env, AddonTensor* t, Napi::Object self)
        : Napi::AsyncWorker(env), deferred_(Napi::Promise::Deferred::New(env)), buffer_(t->buffer_), tensor_(t),
          data_(t->buffer_->bytes) {
      self_ = Napi::Persistent(self);  // keeps the tensor alive until OnOK/OnError
    }
    Napi::Promise promise() { return deferred_.Promise(); }
    void Execute() override {
      try {
        std::lock_guard<eet::FairMutex> lock(buffer_->backend->mutex());
        buffer_->backend->synchronize();
        buffer_->backend->download(data_.data(), buffer_->ptr, buffer_->bytes);
      } catch (const eet::Error& e) {
        failed_ = true;
        code_ = e.code();
        message_ = e.what();
      } catch (const std::exception& e) {
        failed_ = true;
        message_ = e.what();
      }
    }
    // Errors bypass SetError/OnError and nothing touches JS when it cannot run (worker.h says why).
    void OnOK() override {
      Napi::Env env = Env();
      if (!js_usable(env)) return;
      if (failed_) {
        deferred_.Reject(make_error(env, code_, message_).Value());
        return;
      }
      Napi::ArrayBuffer ab = Napi::ArrayBuffer::New(env, data_.size());
      if (!data_.empty()) std::memcpy(ab.Data(), data_.data(), data_.size());
      deferred_.Resolve(tensor_->typed_view(env, ab));
    }

   private:
    Napi::Promise::Deferred deferred_;
    std::shared_ptr<Buffer> buffer_;
    AddonTensor* tensor_;
    Napi::ObjectReference self_;
    std::vector<uint8_t> data_;
    bool failed_ = false;
    eet::ErrorCode code_ = eet::ErrorCode::Internal;
    std::string message_;
  };

  Napi::Value Read(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    check_alive(env);
    auto* w = new ReadWorker(env, this, info.This().As<Napi::Object>());
    Napi::Promise p = w->promise();
    w->Queue();
    return p;
  }

  // toDeviceSync(device) -> AddonTensor on that device with the same contents (staged through host memory).
  Napi::Value ToDeviceSync(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    check_alive(env);
    return guarded(env, [&]() -> Napi::Value {
      if (!info[0].IsString()) throw_arg(env, "device", "string", info[0]);
      std::vector<uint8_t> host(buffer_->bytes);
      {
        std::lock_guard<eet::FairMutex> lock(buffer_->backend->mutex());
        buffer_->backend->synchronize();
        buffer_->backend->download(host.data(), buffer_->ptr, host.size());
      }
      Napi::Object t = env_data(env)->tensor_ctor.New({info[0], Napi::Number::New(env, double(dtype_)),
                                             Napi::Number::New(env, double(numel_)), env.Null(), env.Undefined()});
      AddonTensor* dst = Unwrap(t);
      std::lock_guard<eet::FairMutex> lock(dst->buffer_->backend->mutex());
      dst->buffer_->backend->upload(dst->buffer_->ptr, host.data(), host.size());
      return t;
    });
  }

  Napi::Value Dispose(const Napi::CallbackInfo& info) {
    buffer_.reset();  // freed now unless an in-flight worker still holds it
    return info.Env().Undefined();
  }
  Napi::Value Bytes(const Napi::CallbackInfo& info) {
    return Napi::Number::New(info.Env(), buffer_ ? double(buffer_->bytes) : 0.0);
  }
  Napi::Value Disposed(const Napi::CallbackInfo& info) { return Napi::Boolean::New(info.Env(), !buffer_); }
  Napi::Value Device(const Napi::CallbackInfo& info) {
    check_alive(info.Env());
    return Napi::String::New(info.Env(), buffer_->backend->name());
  }

  std::shared_ptr<Buffer> buffer_;
  eet::DType dtype_ = eet::DType::F32;
  int64_t numel_ = 0;
};

}  // namespace

bool unwrap_tensor(const Napi::Value& v, TensorView* out) {
  if (!v.IsObject()) return false;
  Napi::Object o = v.As<Napi::Object>();
  if (!o.InstanceOf(env_data(v.Env())->tensor_ctor.Value())) return false;
  *out = AddonTensor::Unwrap(o)->view();
  if (!out->buffer) throw make_error(v.Env(), eet::ErrorCode::Disposed, "the tensor was disposed");
  return true;
}

void init_tensor(Napi::Env env, Napi::Object exports) {
  Napi::Function ctor = AddonTensor::Define(env);
  env_data(env)->tensor_ctor = Napi::Persistent(ctor);
  exports.Set("AddonTensor", ctor);
}
}  // namespace eet_node

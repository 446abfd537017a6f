// AddonModel (lib/binding.ts): the JS face of eet::Model. Argument conversion and lifetimes only.
// loadTensor, finalize and step are AsyncWorkers: the work runs on a libuv thread, the worker holds a reference
// to the JS object and a shared_ptr to the model, so neither goes away while it runs. Errors from the methods
// that return promises come back as rejections (also argument errors), with the eet::Error code.
// dispose() marks the model (queued calls then fail with ERR_DISPOSED) and drops this object's reference; the
// memory is freed when the last in-flight worker finishes. The GC finalizer and an environment cleanup hook
// (worker threads going away) do the same.
#include <node_api.h>

#include "../engine/model.h"
#include "addon.h"

namespace eet_node {
namespace {

using eet::ErrorCode;

eet::DType parse_float_dtype(const Napi::Object& o, const char* name) {
  std::string s = get_string(o, name);
  if (s == "float32") return eet::DType::F32;
  if (s == "float16") return eet::DType::F16;
  if (s == "bfloat16") return eet::DType::BF16;
  throw_arg(o.Env(), name, "'float32', 'float16' or 'bfloat16'", o.Get(name));
}

// ropeScaling?: { type: 'linear', factor } | { type: 'llama3', factor, lowFreqFactor, highFreqFactor,
// originalMaxPositionEmbeddings }; absent or null: none.
void parse_rope_scaling(const Napi::Object& config, eet::ModelConfig& c) {
  Napi::Value v = config.Get("ropeScaling");
  if (v.IsUndefined() || v.IsNull()) return;
  if (!v.IsObject()) throw_arg(config.Env(), "ropeScaling", "object, null or undefined", v);
  Napi::Object o = v.As<Napi::Object>();
  std::string type = o.Get("type").IsString() ? o.Get("type").As<Napi::String>().Utf8Value() : "";
  if (type == "linear") {
    c.rope_scaling = eet::RopeScaling::Linear;
  } else if (type == "llama3") {
    c.rope_scaling = eet::RopeScaling::Llama3;
    c.rope_low_freq_factor = float(get_number(o, "lowFreqFactor"));
    c.rope_high_freq_factor = float(get_number(o, "highFreqFactor"));
    c.rope_original_max_pos = int32_t(get_int(o, "originalMaxPositionEmbeddings", 1, int64_t(1) << 30));
  } else {
    throw_arg(config.Env(), "ropeScaling.type", "'linear' or 'llama3'", o.Get("type"));
  }
  c.rope_factor = float(get_number(o, "factor"));
}

eet::ModelConfig parse_config(const Napi::Object& o) {
  Napi::Env env = o.Env();
  std::string arch = get_string(o, "arch");
  constexpr int64_t big = int64_t(1) << 30;
  eet::ModelConfig c;
  if (arch == "llama") {
    c.arch = eet::Arch::Llama;
  } else if (arch == "gpt2") {
    c.arch = eet::Arch::Gpt2;
  } else if (arch == "bert") {
    c.arch = eet::Arch::Bert;
  } else {
    throw make_error(env, ErrorCode::Unsupported, "arch '" + arch + "' is not supported (supported: 'llama', 'gpt2', 'bert')");
  }
  c.dim = int32_t(get_int(o, "dim", 1, big));
  c.hidden_dim = int32_t(get_int(o, "hiddenDim", 1, big));
  c.n_layers = int32_t(get_int(o, "nLayers", 1, big));
  c.n_heads = int32_t(get_int(o, "nHeads", 1, big));
  c.n_kv_heads = int32_t(get_int(o, "nKvHeads", 1, big));
  c.head_dim = int32_t(get_int(o, "headDim", 1, big));
  c.vocab_size = int32_t(get_int(o, "vocabSize", 1, big));
  c.max_seq_len = int32_t(get_int(o, "maxSeqLen", 1, big));
  c.norm_eps = float(get_number(o, "normEps"));
  if (c.arch == eet::Arch::Llama) {  // RoPE: llama only (gpt2 and bert have learned positions)
    c.rope_theta = float(get_number(o, "ropeTheta"));
    std::string layout = get_string(o, "ropeLayout");
    if (layout == "adjacent") {
      c.rope_layout = eet::RopeLayout::Adjacent;
    } else if (layout == "half") {
      c.rope_layout = eet::RopeLayout::HalfSplit;
    } else {
      throw_arg(env, "ropeLayout", "'adjacent' or 'half'", o.Get("ropeLayout"));
    }
    c.qkv_bias = get_bool_or(o, "qkvBias", false);
    parse_rope_scaling(o, c);
  }
  if (c.arch == eet::Arch::Bert) c.n_token_types = int32_t(get_int(o, "nTokenTypes", 1, big));
  Napi::Value tied = o.Get("tiedEmbeddings");
  if (!tied.IsBoolean()) throw_arg(env, "tiedEmbeddings", "boolean", tied);
  c.tied_embeddings = tied.As<Napi::Boolean>().Value();
  c.dtype = parse_float_dtype(o, "dtype");
  Napi::Value q8 = o.Get("q8Weights");
  if (!q8.IsUndefined() && !q8.IsNull()) {
    if (!q8.IsArray()) throw_arg(env, "q8Weights", "array of tensor names", q8);
    Napi::Array a = q8.As<Napi::Array>();
    for (uint32_t i = 0; i < a.Length(); ++i) {
      Napi::Value n = a.Get(i);
      if (!n.IsString()) throw_arg(env, "q8Weights[" + std::to_string(i) + "]", "string", n);
      c.q8_weights.insert(n.As<Napi::String>().Utf8Value());
    }
  }
  c.max_batch = int32_t(get_int(o, "maxBatch", 1, big));
  c.max_context = int32_t(get_int(o, "maxContext", 1, big));
  c.max_step_tokens = int32_t(get_int(o, "maxStepTokens", 1, big));
  return c;
}

eet::TensorSource parse_source(const Napi::Value& v) {
  Napi::Env env = v.Env();
  if (!v.IsObject()) throw_arg(env, "source", "object", v);
  Napi::Object o = v.As<Napi::Object>();
  constexpr int64_t max_safe = (int64_t(1) << 53) - 1;
  eet::TensorSource s;
  Napi::Value random = o.Get("random");
  if (!random.IsUndefined()) {
    if (!random.IsObject()) throw_arg(env, "random", "object { seed, std, mean? }", random);
    Napi::Object r = random.As<Napi::Object>();
    s.random.enabled = true;
    s.random.seed = uint64_t(get_int(r, "seed", 0, max_safe));
    s.random.std = float(get_number(r, "std"));
    s.random.mean = float(get_number_or(r, "mean", 0.0));
    if (s.random.std < 0) throw_arg(env, "std", "number >= 0", r.Get("std"));
  } else {
    s.path = get_string(o, "path");
    s.offset = get_int(o, "offset", 0, max_safe);
    s.bytes = get_int(o, "bytes", 0, max_safe);
    Napi::Value dt = o.Get("dtype");
    if (dt.IsString() && dt.As<Napi::String>().Utf8Value() == "q8_0") {
      s.q8 = true;
    } else {
      s.dtype = parse_float_dtype(o, "dtype");
    }
    Napi::Value tr = o.Get("transpose");
    if (!tr.IsUndefined()) {
      if (!tr.IsBoolean()) throw_arg(env, "transpose", "boolean", tr);
      s.transpose = tr.As<Napi::Boolean>().Value();
    }
  }
  Napi::Value shape = o.Get("shape");
  if (!shape.IsArray()) throw_arg(env, "shape", "array of positive integers", shape);
  Napi::Array a = shape.As<Napi::Array>();
  for (uint32_t i = 0; i < a.Length(); ++i) {
    Napi::Value d = a.Get(i);
    double x = d.IsNumber() ? d.As<Napi::Number>().DoubleValue() : -1.0;
    if (!(x >= 1.0) || x != double(int64_t(x)) || x > double(max_safe)) {
      throw_arg(env, "shape[" + std::to_string(i) + "]", "positive integer", d);
    }
    s.shape.push_back(int64_t(x));
  }
  return s;
}

template <typename T>
std::vector<T> typed_array(const Napi::Object& o, const char* name, napi_typedarray_type type, const char* type_name) {
  Napi::Value v = o.Get(name);
  if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != type) throw_arg(o.Env(), name, type_name, v);
  Napi::TypedArrayOf<T> a = v.As<Napi::TypedArrayOf<T>>();
  return std::vector<T>(a.Data(), a.Data() + a.ElementLength());
}

eet::StepRequest parse_request(const Napi::Value& v) {
  Napi::Env env = v.Env();
  if (!v.IsObject()) throw_arg(env, "request", "object", v);
  Napi::Object o = v.As<Napi::Object>();
  eet::StepRequest r;
  r.slots = typed_array<int32_t>(o, "slots", napi_int32_array, "Int32Array");
  r.tokens = typed_array<int32_t>(o, "tokens", napi_int32_array, "Int32Array");
  r.counts = typed_array<int32_t>(o, "counts", napi_int32_array, "Int32Array");
  r.temperature = typed_array<float>(o, "temperature", napi_float32_array, "Float32Array");
  r.top_k = typed_array<int32_t>(o, "topK", napi_int32_array, "Int32Array");
  r.top_p = typed_array<float>(o, "topP", napi_float32_array, "Float32Array");
  r.repetition_penalty = typed_array<float>(o, "repetitionPenalty", napi_float32_array, "Float32Array");
  Napi::Value logits = o.Get("logits");
  if (!logits.IsUndefined()) {
    std::string s = logits.IsString() ? logits.As<Napi::String>().Utf8Value() : "";
    if (s == "none") {
      r.logits = eet::LogitsMode::None;
    } else if (s == "last") {
      r.logits = eet::LogitsMode::Last;
    } else if (s == "all") {
      r.logits = eet::LogitsMode::All;
    } else {
      throw_arg(env, "logits", "'none', 'last' or 'all'", logits);
    }
  }
  return r;
}

eet::EmbedRequest parse_embed_request(const Napi::Value& v) {
  Napi::Env env = v.Env();
  if (!v.IsObject()) throw_arg(env, "request", "object", v);
  Napi::Object o = v.As<Napi::Object>();
  eet::EmbedRequest r;
  r.tokens = typed_array<int32_t>(o, "tokens", napi_int32_array, "Int32Array");
  r.counts = typed_array<int32_t>(o, "counts", napi_int32_array, "Int32Array");
  if (!o.Get("tokenTypes").IsUndefined()) {
    r.token_types = typed_array<int32_t>(o, "tokenTypes", napi_int32_array, "Int32Array or undefined");
  }
  Napi::Value pooling = o.Get("pooling");
  std::string s = pooling.IsString() ? pooling.As<Napi::String>().Utf8Value() : "";
  if (s == "mean") {
    r.pooling = eet::Pooling::Mean;
  } else if (s == "cls") {
    r.pooling = eet::Pooling::Cls;
  } else {
    throw_arg(env, "pooling", "'mean' or 'cls'", pooling);
  }
  Napi::Value normalize = o.Get("normalize");
  if (!normalize.IsBoolean()) throw_arg(env, "normalize", "boolean", normalize);
  r.normalize = normalize.As<Napi::Boolean>().Value();
  return r;
}

Napi::Value rejected(Napi::Env env, const Napi::Value& error) {
  Napi::Promise::Deferred d = Napi::Promise::Deferred::New(env);
  d.Reject(error);
  return d.Promise();
}

// Runs f (which returns a promise); any synchronous failure becomes a rejected promise.
template <typename F>
Napi::Value promise_guarded(Napi::Env env, F&& f) {
  try {
    return guarded(env, f);
  } catch (const Napi::Error& e) {
    return rejected(env, e.Value());
  }
}

// Base of the model's workers: the model is checked alive when the work starts, errors keep their code.
class ModelWorker : public Napi::AsyncWorker {
 public:
  ModelWorker(Napi::Env env, Napi::Object self, std::shared_ptr<eet::Model> model)
      : Napi::AsyncWorker(env), deferred_(Napi::Promise::Deferred::New(env)), model_(std::move(model)) {
    self_ = Napi::Persistent(self);
  }
  Napi::Promise promise() { return deferred_.Promise(); }

 protected:
  virtual void run(eet::Model& m) = 0;
  virtual Napi::Value result(Napi::Env env) { return env.Undefined(); }

  void Execute() override {
    try {
      model_->check_alive();
      run(*model_);
    } catch (const eet::Error& e) {
      code_ = e.code();
      SetError(e.what());
    } catch (const std::bad_alloc&) {
      code_ = ErrorCode::Oom;
      SetError("out of host memory");
    } catch (const std::exception& e) {
      code_ = ErrorCode::Internal;
      SetError(e.what());
    }
  }
  void OnOK() override { deferred_.Resolve(result(Env())); }
  void OnError(const Napi::Error& e) override { deferred_.Reject(make_error(Env(), code_, e.Message()).Value()); }

 private:
  Napi::Promise::Deferred deferred_;
  Napi::ObjectReference self_;
  std::shared_ptr<eet::Model> model_;
  ErrorCode code_ = ErrorCode::Internal;
};

class LoadWorker final : public ModelWorker {
 public:
  LoadWorker(Napi::Env env, Napi::Object self, std::shared_ptr<eet::Model> m, std::string name, eet::TensorSource src)
      : ModelWorker(env, self, std::move(m)), name_(std::move(name)), src_(std::move(src)) {}

 protected:
  void run(eet::Model& m) override { m.load_tensor(name_, src_); }

 private:
  std::string name_;
  eet::TensorSource src_;
};

class FinalizeWorker final : public ModelWorker {
 public:
  using ModelWorker::ModelWorker;

 protected:
  void run(eet::Model& m) override { m.finalize(); }
};

class StepWorker final : public ModelWorker {
 public:
  StepWorker(Napi::Env env, Napi::Object self, std::shared_ptr<eet::Model> m, eet::StepRequest r)
      : ModelWorker(env, self, std::move(m)), request_(std::move(r)) {}

 protected:
  void run(eet::Model& m) override { result_ = m.step(request_); }
  Napi::Value result(Napi::Env env) override {
    Napi::Object o = Napi::Object::New(env);
    Napi::Int32Array tokens = Napi::Int32Array::New(env, result_.tokens.size());
    std::copy(result_.tokens.begin(), result_.tokens.end(), tokens.Data());
    Napi::Float32Array logprobs = Napi::Float32Array::New(env, result_.logprobs.size());
    std::copy(result_.logprobs.begin(), result_.logprobs.end(), logprobs.Data());
    o.Set("tokens", tokens);
    o.Set("logprobs", logprobs);
    if (request_.logits != eet::LogitsMode::None) {
      Napi::Float32Array logits = Napi::Float32Array::New(env, result_.logits.size());
      std::copy(result_.logits.begin(), result_.logits.end(), logits.Data());
      o.Set("logits", logits);
    }
    return o;
  }

 private:
  eet::StepRequest request_;
  eet::StepResult result_;
};

class EmbedWorker final : public ModelWorker {
 public:
  EmbedWorker(Napi::Env env, Napi::Object self, std::shared_ptr<eet::Model> m, eet::EmbedRequest r)
      : ModelWorker(env, self, std::move(m)), request_(std::move(r)) {}

 protected:
  void run(eet::Model& m) override { result_ = m.embed(request_); }
  Napi::Value result(Napi::Env env) override {
    Napi::Float32Array out = Napi::Float32Array::New(env, result_.size());
    std::copy(result_.begin(), result_.end(), out.Data());
    return out;
  }

 private:
  eet::EmbedRequest request_;
  std::vector<float> result_;
};

class AddonModel : public Napi::ObjectWrap<AddonModel> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "AddonModel",
                       {InstanceMethod("loadTensor", &AddonModel::LoadTensor),
                        InstanceMethod("finalize", &AddonModel::Finalize),
                        InstanceMethod("startSequence", &AddonModel::StartSequence),
                        InstanceMethod("endSequence", &AddonModel::EndSequence),
                        InstanceMethod("step", &AddonModel::Step), InstanceMethod("embed", &AddonModel::Embed),
                        InstanceMethod("memory", &AddonModel::Memory),
                        InstanceMethod("dispose", &AddonModel::Dispose)});
  }

  // new AddonModel(config: AddonModelConfig)
  explicit AddonModel(const Napi::CallbackInfo& info) : Napi::ObjectWrap<AddonModel>(info) {
    Napi::Env env = info.Env();
    guarded(env, [&] {
      if (!info[0].IsObject()) throw_arg(env, "config", "object", info[0]);
      Napi::Object o = info[0].As<Napi::Object>();
      eet::ModelConfig c = parse_config(o);
      auto backend = eet::backend_for(get_string(o, "device"));
      model_ = std::make_shared<eet::Model>(c, backend);
    });
    hooked_ = napi_add_env_cleanup_hook(env, &AddonModel::Cleanup, this) == napi_ok;
  }

  ~AddonModel() override {
    if (hooked_) napi_remove_env_cleanup_hook(Env(), &AddonModel::Cleanup, this);
    Release();
  }

 private:
  static void Cleanup(void* arg) {
    auto* self = static_cast<AddonModel*>(arg);
    self->hooked_ = false;
    self->Release();
  }

  void Release() {
    if (!model_) return;
    model_->mark_disposed();
    model_.reset();
  }

  std::shared_ptr<eet::Model> alive(Napi::Env env) const {
    if (!model_) throw make_error(env, ErrorCode::Disposed, "the model was disposed");
    return model_;
  }

  Napi::Value LoadTensor(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    return promise_guarded(env, [&]() -> Napi::Value {
      auto m = alive(env);
      if (!info[0].IsString()) throw_arg(env, "name", "string", info[0]);
      auto* w = new LoadWorker(env, info.This().As<Napi::Object>(), m, info[0].As<Napi::String>().Utf8Value(),
                               parse_source(info[1]));
      Napi::Promise p = w->promise();
      w->Queue();
      return p;
    });
  }

  Napi::Value Finalize(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    return promise_guarded(env, [&]() -> Napi::Value {
      auto* w = new FinalizeWorker(env, info.This().As<Napi::Object>(), alive(env));
      Napi::Promise p = w->promise();
      w->Queue();
      return p;
    });
  }

  Napi::Value Step(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    return promise_guarded(env, [&]() -> Napi::Value {
      auto m = alive(env);
      auto* w = new StepWorker(env, info.This().As<Napi::Object>(), m, parse_request(info[0]));
      Napi::Promise p = w->promise();
      w->Queue();
      return p;
    });
  }

  Napi::Value Embed(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    return promise_guarded(env, [&]() -> Napi::Value {
      auto m = alive(env);
      auto* w = new EmbedWorker(env, info.This().As<Napi::Object>(), m, parse_embed_request(info[0]));
      Napi::Promise p = w->promise();
      w->Queue();
      return p;
    });
  }

  // startSequence(seed: bigint) -> slot
  Napi::Value StartSequence(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    return guarded(env, [&]() -> Napi::Value {
      auto m = alive(env);
      bool lossless = false;
      uint64_t seed = info[0].IsBigInt() ? info[0].As<Napi::BigInt>().Uint64Value(&lossless) : 0;
      if (!lossless) throw_arg(env, "seed", "bigint in [0, 2^64)", info[0]);
      return Napi::Number::New(env, m->start_sequence(seed));
    });
  }

  Napi::Value EndSequence(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    return guarded(env, [&]() -> Napi::Value {
      auto m = alive(env);
      double d = info[0].IsNumber() ? info[0].As<Napi::Number>().DoubleValue() : -1.0;
      if (!(d >= 0.0) || d != double(int32_t(d))) throw_arg(env, "slot", "non-negative integer", info[0]);
      m->end_sequence(int32_t(d));
      return env.Undefined();
    });
  }

  Napi::Value Memory(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    return guarded(env, [&]() -> Napi::Value {
      eet::MemoryReport r = alive(env)->memory();
      Napi::Object o = Napi::Object::New(env);
      o.Set("weights", double(r.weights));
      o.Set("kvCache", double(r.kv_cache));
      o.Set("workspace", double(r.workspace));
      return o;
    });
  }

  Napi::Value Dispose(const Napi::CallbackInfo& info) {
    Release();
    return info.Env().Undefined();
  }

  std::shared_ptr<eet::Model> model_;
  bool hooked_ = false;
};

}  // namespace

void init_model(Napi::Env env, Napi::Object exports) { exports.Set("AddonModel", AddonModel::Define(env)); }

}  // namespace eet_node

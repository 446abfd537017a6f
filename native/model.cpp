// AddonModel (lib/binding.ts): the JS face of eet::Model, a model's weights. Argument conversion and lifetimes
// only. loadTensor and finalize are promise workers (worker.h): the work runs on a libuv thread. Contexts
// (native/context.cpp) hold the model too; its memory goes with the last owner.
// dispose() marks the model (queued calls then fail with ERR_DISPOSED) and drops this object's reference. The GC
// finalizer and an environment cleanup hook (worker threads going away) do the same.
#include <node_api.h>

#include "../engine/limits.h"
#include "../engine/model.h"
#include "worker.h"

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

// The hyperparameters every architecture draws from (engine/model.h ModelConfig); the architecture's own
// validation (engine/arch_*.cpp) decides which it needs. Optional ones keep their defaults when absent.
eet::ModelConfig parse_config(const Napi::Object& o) {
  Napi::Env env = o.Env();
  constexpr int64_t big = int64_t(1) << 30;
  eet::ModelConfig c;
  c.arch = get_string(o, "arch");
  c.dim = int32_t(get_int(o, "dim", 1, big));
  c.hidden_dim = int32_t(get_int(o, "hiddenDim", 1, big));
  c.n_layers = int32_t(get_int(o, "nLayers", 1, big));
  c.n_heads = int32_t(get_int(o, "nHeads", 1, big));
  c.n_kv_heads = int32_t(get_int(o, "nKvHeads", 1, big));
  c.head_dim = int32_t(get_int(o, "headDim", 1, big));
  c.vocab_size = int32_t(get_int(o, "vocabSize", 1, big));
  c.max_seq_len = int32_t(get_int(o, "maxSeqLen", 1, big));
  c.norm_eps = float(get_number(o, "normEps"));
  c.rope_theta = float(get_number_or(o, "ropeTheta", c.rope_theta));
  Napi::Value layout = o.Get("ropeLayout");
  if (!layout.IsUndefined()) {
    std::string l = layout.IsString() ? layout.As<Napi::String>().Utf8Value() : "";
    if (l == "adjacent") {
      c.rope_layout = eet::RopeLayout::Adjacent;
    } else if (l == "half") {
      c.rope_layout = eet::RopeLayout::HalfSplit;
    } else {
      throw_arg(env, "ropeLayout", "'adjacent' or 'half'", layout);
    }
  }
  c.qkv_bias = get_bool_or(o, "qkvBias", false);
  parse_rope_scaling(o, c);
  c.n_token_types = int32_t(get_int_or(o, "nTokenTypes", 0, big, 0));
  c.rel_buckets = int32_t(get_int_or(o, "relBuckets", 0, big, 0));  // t5 (its validate() checks them)
  c.rel_max_distance = int32_t(get_int_or(o, "relMaxDistance", 0, big, 0));
  Napi::Value ffn = o.Get("ffnActivation");
  if (!ffn.IsUndefined()) {
    std::string f = ffn.IsString() ? ffn.As<Napi::String>().Utf8Value() : "";
    if (f == "relu") {
      c.ffn_act = eet::ActKind::Relu;
    } else if (f == "geglu_tanh") {
      c.ffn_act = eet::ActKind::GegluTanh;
    } else {
      throw_arg(env, "ffnActivation", "'relu' or 'geglu_tanh'", ffn);
    }
  }
  c.n_dec_layers = int32_t(get_int_or(o, "nDecoderLayers", 0, big, 0));  // t5 (its validate() checks them)
  c.decoder_start_token = int32_t(get_int_or(o, "decoderStartTokenId", 0, big, 0));
  c.scale_decoder_outputs = get_bool_or(o, "scaleDecoderOutputs", false);
  Napi::Value masks = o.Get("attentionMaskModes");  // encoders: one mask per layer; absent: all bidirectional
  if (!masks.IsUndefined() && !masks.IsNull()) {
    if (!masks.IsArray()) throw_arg(env, "attentionMaskModes", "array of mask names", masks);
    Napi::Array a = masks.As<Napi::Array>();
    if (a.Length() > uint32_t(eet::Limits::maxLayers)) throw_arg(env, "attentionMaskModes.length", "at most maxLayers", Napi::Number::New(env, a.Length()));
    for (uint32_t i = 0; i < a.Length(); ++i) {
      c.attention_masks.push_back(to_attn_mask(env, "attentionMaskModes[" + std::to_string(i) + "]", a.Get(i)));
    }
  }
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

class LoadWorker final : public PromiseWorker<eet::Model> {
 public:
  LoadWorker(Napi::Env env, Napi::Object self, std::shared_ptr<eet::Model> m, std::string name, eet::TensorSource src)
      : PromiseWorker(env, self, std::move(m)), name_(std::move(name)), src_(std::move(src)) {}

 protected:
  void run(eet::Model& m) override { m.load_tensor(name_, src_); }

 private:
  std::string name_;
  eet::TensorSource src_;
};

class FinalizeWorker final : public PromiseWorker<eet::Model> {
 public:
  using PromiseWorker::PromiseWorker;

 protected:
  void run(eet::Model& m) override { m.finalize(); }
};

class AddonModel : public Napi::ObjectWrap<AddonModel> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "AddonModel",
                       {InstanceMethod("loadTensor", &AddonModel::LoadTensor),
                        InstanceMethod("finalize", &AddonModel::Finalize),
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
      const int threads = int(get_int_or(o, "threads", 0, eet::Limits::maxThreads, 0));
      auto backend = eet::backend_for(get_string(o, "device"), threads);
      model_ = std::make_shared<eet::Model>(c, backend);
    });
    cleanup_ = std::make_unique<EnvCleanup>(env, [this] { Release(); });
  }

  ~AddonModel() override {
    cleanup_.reset();
    Release();
  }

  std::shared_ptr<eet::Model> alive(Napi::Env env) const {
    if (!model_) throw make_error(env, ErrorCode::Disposed, "the model was disposed");
    model_->check_alive();
    return model_;
  }

 private:
  void Release() {
    if (!model_) return;
    model_->mark_disposed();
    model_.reset();
  }

  Napi::Value LoadTensor(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    return promise_guarded(env, [&]() -> Napi::Value {
      auto m = alive(env);
      if (!info[0].IsString()) throw_arg(env, "name", "string", info[0]);
      return queue_worker<LoadWorker>(env, info.This().As<Napi::Object>(), m, info[0].As<Napi::String>().Utf8Value(),
                               parse_source(info[1]));
    });
  }

  Napi::Value Finalize(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    return promise_guarded(env, [&]() -> Napi::Value {
      return queue_worker<FinalizeWorker>(env, info.This().As<Napi::Object>(), alive(env));
    });
  }

  Napi::Value Memory(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    return guarded(env, [&]() -> Napi::Value {
      Napi::Object o = Napi::Object::New(env);
      o.Set("weights", double(alive(env)->bytes()));
      return o;
    });
  }

  Napi::Value Dispose(const Napi::CallbackInfo& info) {
    Release();
    return info.Env().Undefined();
  }

  std::shared_ptr<eet::Model> model_;
  std::unique_ptr<EnvCleanup> cleanup_;
};

// limits(): the engine's bounds (engine/limits.h), for lib/limits.ts.
Napi::Value Limits(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object o = Napi::Object::New(env);
#define EET_LIMIT_EXPORT(name, value, what) o.Set(#name, Napi::Number::New(env, double(eet::Limits::name)));
  EET_LIMITS(EET_LIMIT_EXPORT)
#undef EET_LIMIT_EXPORT
  return o;
}

// architectures(): the registered architectures' names (engine/arch_*.cpp).
Napi::Value Architectures(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::vector<std::string> names = eet::architecture_names();
  Napi::Array a = Napi::Array::New(env, names.size());
  for (size_t i = 0; i < names.size(); ++i) a.Set(uint32_t(i), names[i]);
  return a;
}

}  // namespace

std::shared_ptr<eet::Model> unwrap_model(const Napi::Value& v) {
  Napi::Env env = v.Env();
  if (!v.IsObject() || !v.As<Napi::Object>().InstanceOf(env_data(env)->model_ctor.Value())) {
    throw_arg(env, "model", "AddonModel", v);
  }
  return AddonModel::Unwrap(v.As<Napi::Object>())->alive(env);
}

void init_model(Napi::Env env, Napi::Object exports) {
  Napi::Function ctor = AddonModel::Define(env);
  env_data(env)->model_ctor = Napi::Persistent(ctor);
  exports.Set("AddonModel", ctor);
  exports.Set("limits", Napi::Function::New(env, Limits));
  exports.Set("architectures", Napi::Function::New(env, Architectures));
}

}  // namespace eet_node

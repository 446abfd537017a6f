// AddonContext (lib/binding.ts): the JS face of eet::Context — a KV pool, sequences and the engine loop over an
// AddonModel's weights. Argument conversion and lifetimes only.
//
// Events: the engine loop runs on the context's own thread and hands each step's events to a thread-safe function
// (non-blocking, unbounded queue), which calls the JS listener given to the constructor. The function is unref'd
// while no request is in flight, so an idle context does not keep the process alive.
// Teardown: dispose() stops the loop off the JS thread (a promise worker joins it), then releases the function.
// The GC finalizer and the environment cleanup hook (a worker thread going away) stop it synchronously; the hook
// is registered after the thread-safe function was created, so it runs before the function's own cleanup and the
// loop never calls into a torn-down environment (calls after teardown return napi_closing and are dropped).
// The low-level API (startSequence / step / endSequence, embed) runs steps as promise workers on libuv threads.
#include <node_api.h>

#include <cmath>

#include "../engine/context.h"
#include "../engine/limits.h"
#include "encoder_memory.h"
#include "worker.h"

namespace eet_node {
namespace {

using eet::ErrorCode;

struct EventSink;
void deliver(Napi::Env env, Napi::Function listener, EventSink* sink, eet::StepEvents* data);
using EventsFn = Napi::TypedThreadSafeFunction<EventSink, eet::StepEvents, deliver>;

// Lives as long as the thread-safe function (deleted by its finalizer): what the JS-thread callback needs.
struct EventSink {
  int64_t in_flight = 0;  // requests submitted and not done: the function is ref'd while > 0
  EventsFn tsfn;
};

eet::ContextConfig parse_options(const Napi::Value& v) {
  Napi::Env env = v.Env();
  if (!v.IsObject()) throw_arg(env, "options", "object", v);
  Napi::Object o = v.As<Napi::Object>();
  constexpr int64_t big = int64_t(1) << 52;
  eet::ContextConfig c;
  c.max_batch = int32_t(get_int(o, "maxBatch", 1, INT32_MAX));
  c.max_context = int32_t(get_int_or(o, "maxContext", 0, INT32_MAX, 0));
  c.max_step_tokens = int32_t(get_int(o, "maxStepTokens", 1, INT32_MAX));
  c.prefill_chunk = int32_t(get_int_or(o, "prefillChunk", 0, INT32_MAX, 0));
  c.kv_cache_tokens = get_int_or(o, "kvCacheTokens", 0, big, 0);
  c.kv_cache_bytes = get_int_or(o, "kvCacheBytes", 0, big, 0);
  c.max_queued = int32_t(get_int_or(o, "maxQueued", 0, INT32_MAX, c.max_queued));
  c.prefix_caching = get_bool_or(o, "prefixCaching", true);
  c.shared_prefix_attention = get_bool_or(o, "sharedPrefixAttention", true);
  c.cuda_graphs = get_bool_or(o, "cudaGraphs", true);
  return c;
}

uint64_t get_u64(const Napi::Object& o, const char* name) {
  Napi::Value v = o.Get(name);
  bool lossless = false;
  uint64_t x = v.IsBigInt() ? v.As<Napi::BigInt>().Uint64Value(&lossless) : 0;
  if (!lossless) throw_arg(o.Env(), name, "bigint in [0, 2^64)", v);
  return x;
}

eet::GenerateRequest parse_generate(const Napi::Value& v) {
  Napi::Env env = v.Env();
  if (!v.IsObject()) throw_arg(env, "request", "object", v);
  Napi::Object o = v.As<Napi::Object>();
  eet::GenerateRequest r;
  r.id = uint64_t(get_int(o, "id", 1, (int64_t(1) << 53) - 1));
  r.prompt = typed_array<int32_t>(o, "prompt", napi_int32_array, "Int32Array");
  r.n = int32_t(get_int(o, "n", 1, INT32_MAX));
  r.sampling.temperature = float(get_number(o, "temperature"));
  r.sampling.top_k = int32_t(get_int(o, "topK", 0, INT32_MAX));
  r.sampling.top_p = float(get_number(o, "topP"));
  r.sampling.repetition_penalty = float(get_number(o, "repetitionPenalty"));
  r.sampling.presence_penalty = float(get_number_or(o, "presencePenalty", 0.0));   // range: Context::submit
  r.sampling.frequency_penalty = float(get_number_or(o, "frequencyPenalty", 0.0));
  r.seed = get_u64(o, "seed");
  r.max_new_tokens = int32_t(get_int(o, "maxNewTokens", 0, INT32_MAX));  // 0: prefill only
  r.stop_ids = typed_array<int32_t>(o, "stopIds", napi_int32_array, "Int32Array");
  r.logits = get_bool_or(o, "logits", false);
  r.top_logprobs = int32_t(get_int_or(o, "topLogprobs", 0, eet::Limits::maxTopLogprobs, -1));  // absent: off
  r.memory = unwrap_memory(env, o.Get("memory"), "memory");  // encoder-decoder models (Context::submit checks)
  return r;
}

eet::StepRequest parse_step(const Napi::Value& v) {
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
  // Optional: absent = 0 for every slot.
  if (!o.Get("presencePenalty").IsUndefined()) {
    r.presence_penalty = typed_array<float>(o, "presencePenalty", napi_float32_array, "Float32Array or undefined");
  }
  if (!o.Get("frequencyPenalty").IsUndefined()) {
    r.frequency_penalty = typed_array<float>(o, "frequencyPenalty", napi_float32_array, "Float32Array or undefined");
  }
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

eet::EmbedRequest parse_embed(const Napi::Value& v) {
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

Napi::Object stats_object(Napi::Env env, const eet::ContextStats& s) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("blocksTotal", s.blocks_total);
  o.Set("blocksUsed", s.blocks_used);
  o.Set("blocksCached", s.blocks_cached);
  o.Set("blockSize", s.block_size);
  o.Set("running", s.running);
  o.Set("waiting", s.waiting);
  o.Set("steps", double(s.steps));
  o.Set("promptTokensComputed", double(s.prompt_tokens_computed));
  o.Set("promptTokensCached", double(s.prompt_tokens_cached));
  o.Set("generatedTokens", double(s.generated_tokens));
  o.Set("preemptions", double(s.preemptions));
  o.Set("prefixCacheHits", double(s.prefix_cache_hits));
  o.Set("prefixCacheQueries", double(s.prefix_cache_queries));
  o.Set("sharedPrefixTokens", double(s.shared_prefix_tokens));
  o.Set("sharedPrefixKeysSaved", double(s.shared_prefix_keys_saved));
  o.Set("encoderMemories", s.encoder_memories);
  o.Set("memoryKeysSaved", double(s.memory_keys_saved));
  o.Set("encoderTokens", double(s.encoder_tokens));
  o.Set("graphSteps", double(s.graph_steps));
  o.Set("graphsCaptured", double(s.graphs_captured));
  if (!s.graph_error.empty()) o.Set("graphError", s.graph_error);
  return o;
}

// On the JS thread: one step's events → the listener. env is null when the function is being torn down.
Napi::Object batch_object(Napi::Env env, const eet::StepEvents* ev);

// On the JS thread: one step's events → the listener. env is null when the function is being torn down; when the
// environment is terminating (a worker thread ending) every N-API call fails: nothing may throw out of here then,
// or the process aborts — so failures are caught, and a listener's own exception goes to 'uncaughtException' as
// it would from any callback.
void deliver(Napi::Env env, Napi::Function listener, EventSink* sink, eet::StepEvents* data) {
  std::unique_ptr<eet::StepEvents> ev(data);
  if (env == nullptr || listener.IsEmpty() || !js_usable(env)) return;
  sink->in_flight -= int64_t(ev->done.size());
  try {
    if (sink->in_flight <= 0) {
      sink->in_flight = 0;
      sink->tsfn.Unref(env);
    }
    listener.Call({batch_object(env, ev.get())});
  } catch (const Napi::Error& e) {
    napi_fatal_exception(env, e.Value());
  } catch (const std::exception&) {
    // Out of host memory building the batch: the events are lost; their requests stay in flight until disposed.
  }
}

// The raw log-probabilities of a batch's events (AddonRawLogprobs): parallel typed arrays, the top lists packed
// back to back (event i's at [topOffset[i], topOffset[i + 1])); undefined when no event has them.
Napi::Value raw_object(Napi::Env env, const eet::StepEvents* ev) {
  const size_t n = ev->tokens.size();
  size_t total = 0;
  bool any = false;
  for (const eet::TokenEvent& t : ev->tokens) {
    if (!t.raw) continue;
    any = true;
    total += t.raw->top_ids.size();
  }
  if (!any) return env.Undefined();
  Napi::Float64Array logprob = Napi::Float64Array::New(env, n);
  Napi::Int32Array offset = Napi::Int32Array::New(env, n + 1), ids = Napi::Int32Array::New(env, total);
  Napi::Float64Array top = Napi::Float64Array::New(env, total);
  size_t at = 0;
  for (size_t i = 0; i < n; ++i) {
    const eet::TokenEvent& t = ev->tokens[i];
    offset[i] = int32_t(at);
    logprob[i] = t.raw ? t.raw->token : std::nan("");
    if (!t.raw) continue;
    std::copy(t.raw->top_ids.begin(), t.raw->top_ids.end(), ids.Data() + at);
    std::copy(t.raw->top.begin(), t.raw->top.end(), top.Data() + at);
    at += t.raw->top_ids.size();
  }
  offset[n] = int32_t(at);
  Napi::Object o = Napi::Object::New(env);
  o.Set("logprob", logprob);
  o.Set("topOffset", offset);
  o.Set("topIds", ids);
  o.Set("topLogprob", top);
  return o;
}

Napi::Object batch_object(Napi::Env env, const eet::StepEvents* ev) {
  const size_t n = ev->tokens.size();
  Napi::Float64Array request = Napi::Float64Array::New(env, n);
  Napi::Int32Array index = Napi::Int32Array::New(env, n), token = Napi::Int32Array::New(env, n);
  Napi::Int32Array finish = Napi::Int32Array::New(env, n);
  Napi::Float32Array logprob = Napi::Float32Array::New(env, n);
  Napi::Value logits = env.Undefined();
  for (size_t i = 0; i < n; ++i) {
    const eet::TokenEvent& t = ev->tokens[i];
    request[i] = double(t.request);
    index[i] = t.index;
    token[i] = t.token;
    finish[i] = int32_t(t.finish);
    logprob[i] = t.logprob;
    if (t.logits.empty()) continue;
    if (logits.IsUndefined()) logits = Napi::Array::New(env, n);
    Napi::Float32Array l = Napi::Float32Array::New(env, t.logits.size());
    std::copy(t.logits.begin(), t.logits.end(), l.Data());
    logits.As<Napi::Array>().Set(uint32_t(i), l);
  }
  Napi::Array done = Napi::Array::New(env, ev->done.size());
  for (size_t i = 0; i < ev->done.size(); ++i) {
    const eet::RequestDone& d = ev->done[i];
    Napi::Object o = Napi::Object::New(env);
    o.Set("request", double(d.request));
    o.Set("promptTokens", d.prompt_tokens);
    o.Set("cachedTokens", d.cached_tokens);
    o.Set("queueMs", d.queue_ms);
    if (d.failed) o.Set("error", make_error(env, d.code, d.message).Value());
    done.Set(uint32_t(i), o);
  }
  Napi::Object batch = Napi::Object::New(env);
  batch.Set("request", request);
  batch.Set("index", index);
  batch.Set("token", token);
  batch.Set("logprob", logprob);
  batch.Set("finish", finish);
  batch.Set("logits", logits);
  batch.Set("raw", raw_object(env, ev));
  batch.Set("done", done);
  batch.Set("stats", stats_object(env, ev->stats));
  return batch;
}

class StepWorker final : public PromiseWorker<eet::Context> {
 public:
  StepWorker(Napi::Env env, Napi::Object self, std::shared_ptr<eet::Context> c, eet::StepRequest r)
      : PromiseWorker(env, self, std::move(c)), request_(std::move(r)) {}

 protected:
  void run(eet::Context& c) override { result_ = c.step(request_); }
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

class EmbedWorker final : public PromiseWorker<eet::Context> {
 public:
  EmbedWorker(Napi::Env env, Napi::Object self, std::shared_ptr<eet::Context> c, eet::EmbedRequest r)
      : PromiseWorker(env, self, std::move(c)), request_(std::move(r)) {}

 protected:
  void run(eet::Context& c) override { result_ = c.embed(request_); }
  Napi::Value result(Napi::Env env) override {
    Napi::Float32Array out = Napi::Float32Array::New(env, result_.size());
    std::copy(result_.begin(), result_.end(), out.Data());
    return out;
  }

 private:
  eet::EmbedRequest request_;
  std::vector<float> result_;
};

class EncodeWorker final : public PromiseWorker<eet::Context> {
 public:
  EncodeWorker(Napi::Env env, Napi::Object self, std::shared_ptr<eet::Context> c, std::vector<int32_t> tokens)
      : PromiseWorker(env, self, std::move(c)), tokens_(std::move(tokens)) {}

 protected:
  void run(eet::Context& c) override { memory_ = c.encode(tokens_); }
  Napi::Value result(Napi::Env env) override { return wrap_memory(env, std::move(memory_)); }

 private:
  std::vector<int32_t> tokens_;
  std::shared_ptr<const eet::EncoderMemory> memory_;
};

// Stops the loop and drops this reference to the context off the JS thread (a step may be in flight), then
// releases the thread-safe function: nothing calls it any more.
class DisposeWorker final : public PromiseWorker<eet::Context> {
 public:
  DisposeWorker(Napi::Env env, Napi::Object self, std::shared_ptr<eet::Context> c, EventsFn tsfn)
      : PromiseWorker(env, self, std::move(c)), tsfn_(tsfn) {}

 protected:
  void run(eet::Context& c) override {
    c.shutdown();
    target().reset();
    tsfn_.Release();
  }

 private:
  EventsFn tsfn_;
};

class AddonContext : public Napi::ObjectWrap<AddonContext> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "AddonContext",
                       {InstanceMethod("submit", &AddonContext::Submit), InstanceMethod("cancel", &AddonContext::Cancel),
                        InstanceMethod("stats", &AddonContext::Stats), InstanceMethod("config", &AddonContext::Config),
                        InstanceMethod("startSequence", &AddonContext::StartSequence),
                        InstanceMethod("endSequence", &AddonContext::EndSequence),
                        InstanceMethod("step", &AddonContext::Step), InstanceMethod("embed", &AddonContext::Embed),
                        InstanceMethod("encode", &AddonContext::Encode),
                        InstanceMethod("releaseMemory", &AddonContext::ReleaseMemory),
                        InstanceMethod("memory", &AddonContext::Memory),
                        InstanceMethod("dispose", &AddonContext::Dispose)});
  }

  // new AddonContext(model: AddonModel, options: AddonContextOptions, onEvents: (batch) => void)
  explicit AddonContext(const Napi::CallbackInfo& info) : Napi::ObjectWrap<AddonContext>(info) {
    Napi::Env env = info.Env();
    guarded(env, [&] {
      auto model = unwrap_model(info[0]);
      eet::ContextConfig cfg = parse_options(info[1]);
      if (!info[2].IsFunction()) throw_arg(env, "onEvents", "function", info[2]);
      ctx_ = std::make_shared<eet::Context>(model, cfg);
      sink_ = new EventSink();
      sink_->tsfn = EventsFn::New(env, info[2].As<Napi::Function>(), "eet-context-events", 0, 1, sink_,
                                  [](Napi::Env, void*, EventSink* sink) { delete sink; });
      sink_->tsfn.Unref(env);
      EventsFn tsfn = sink_->tsfn;
      ctx_->start([tsfn](eet::StepEvents&& ev) mutable {
        auto* data = new eet::StepEvents(std::move(ev));
        if (tsfn.NonBlockingCall(data) != napi_ok) delete data;  // napi_closing: the environment is going away
      });
    });
    cleanup_ = std::make_unique<EnvCleanup>(env, [this] { Stop(); });  // after the function: runs before its cleanup
  }

  ~AddonContext() override {
    cleanup_.reset();
    Stop();
  }

 private:
  // Synchronous teardown (GC, environment cleanup): joins the loop, then releases the function.
  void Stop() {
    if (!ctx_) return;
    ctx_->shutdown();
    ctx_.reset();
    sink_->tsfn.Release();
    sink_ = nullptr;
  }

  std::shared_ptr<eet::Context> alive(Napi::Env env) const {
    if (!ctx_) throw make_error(env, ErrorCode::Disposed, "the context was disposed");
    return ctx_;
  }

  // submit(requests: AddonGenerateRequest[]): queued together, all or none; throws ERR_INVALID_ARG / ERR_BUSY /
  // ERR_DISPOSED at once; the requests' events come to the listener.
  Napi::Value Submit(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    return guarded(env, [&]() -> Napi::Value {
      auto c = alive(env);
      if (!info[0].IsArray()) throw_arg(env, "requests", "array of requests", info[0]);
      Napi::Array a = info[0].As<Napi::Array>();
      std::vector<eet::GenerateRequest> requests;
      for (uint32_t i = 0; i < a.Length(); ++i) requests.push_back(parse_generate(a.Get(i)));
      const int64_t n = int64_t(requests.size());
      c->submit(std::move(requests));
      if (n > 0 && sink_->in_flight == 0) sink_->tsfn.Ref(env);
      sink_->in_flight += n;
      return env.Undefined();
    });
  }

  // cancel(id: number, index = -1)
  Napi::Value Cancel(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    return guarded(env, [&]() -> Napi::Value {
      if (!ctx_) return env.Undefined();
      double id = info[0].IsNumber() ? info[0].As<Napi::Number>().DoubleValue() : -1.0;
      if (!(id >= 1) || id != double(int64_t(id))) throw_arg(env, "id", "positive integer", info[0]);
      int32_t index = -1;
      if (!info[1].IsUndefined()) {
        double i = info[1].IsNumber() ? info[1].As<Napi::Number>().DoubleValue() : -2.0;
        if (!(i >= -1) || i != double(int32_t(i))) throw_arg(env, "index", "integer >= -1", info[1]);
        index = int32_t(i);
      }
      ctx_->cancel(uint64_t(id), index);
      return env.Undefined();
    });
  }

  Napi::Value Stats(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    return guarded(env, [&]() -> Napi::Value { return stats_object(env, alive(env)->stats()); });
  }

  // The options with the defaults resolved (kvCacheTokens / kvCacheBytes as allocated).
  Napi::Value Config(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    return guarded(env, [&]() -> Napi::Value {
      const eet::ContextConfig& c = alive(env)->config();
      Napi::Object o = Napi::Object::New(env);
      o.Set("maxBatch", c.max_batch);
      o.Set("maxContext", c.max_context);
      o.Set("maxStepTokens", c.max_step_tokens);
      o.Set("prefillChunk", c.prefill_chunk);
      o.Set("kvCacheTokens", double(c.kv_cache_tokens));
      o.Set("kvCacheBytes", double(c.kv_cache_bytes));
      o.Set("maxQueued", c.max_queued);
      o.Set("prefixCaching", c.prefix_caching);
      o.Set("sharedPrefixAttention", c.shared_prefix_attention);
      o.Set("cudaGraphs", c.cuda_graphs);
      return o;
    });
  }

  // startSequence(seed: bigint, memory?) -> slot
  Napi::Value StartSequence(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    return guarded(env, [&]() -> Napi::Value {
      auto c = alive(env);
      bool lossless = false;
      uint64_t seed = info[0].IsBigInt() ? info[0].As<Napi::BigInt>().Uint64Value(&lossless) : 0;
      if (!lossless) throw_arg(env, "seed", "bigint in [0, 2^64)", info[0]);
      return Napi::Number::New(env, c->start_sequence(seed, unwrap_memory(env, info[1], "memory")));
    });
  }

  Napi::Value EndSequence(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    return guarded(env, [&]() -> Napi::Value {
      auto c = alive(env);
      double d = info[0].IsNumber() ? info[0].As<Napi::Number>().DoubleValue() : -1.0;
      if (!(d >= 0.0) || d != double(int32_t(d))) throw_arg(env, "slot", "non-negative integer", info[0]);
      c->end_sequence(int32_t(d));
      return env.Undefined();
    });
  }

  Napi::Value Step(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    return promise_guarded(env, [&]() -> Napi::Value {
      auto c = alive(env);
      return queue_worker<StepWorker>(env, info.This().As<Napi::Object>(), c, parse_step(info[0]));
    });
  }

  Napi::Value Embed(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    return promise_guarded(env, [&]() -> Napi::Value {
      auto c = alive(env);
      return queue_worker<EmbedWorker>(env, info.This().As<Napi::Object>(), c, parse_embed(info[0]));
    });
  }

  // encode(input: Int32Array) -> Promise<memory>: the encoder pass runs on a libuv thread.
  Napi::Value Encode(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    return promise_guarded(env, [&]() -> Napi::Value {
      auto c = alive(env);
      if (!info[0].IsTypedArray() || info[0].As<Napi::TypedArray>().TypedArrayType() != napi_int32_array) {
        throw_arg(env, "input", "Int32Array", info[0]);
      }
      Napi::Int32Array a = info[0].As<Napi::Int32Array>();
      std::vector<int32_t> tokens(a.Data(), a.Data() + a.ElementLength());
      return queue_worker<EncodeWorker>(env, info.This().As<Napi::Object>(), c, std::move(tokens));
    });
  }

  // releaseMemory(memory): drops that handle's reference now (requests using it keep theirs).
  Napi::Value ReleaseMemory(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    return guarded(env, [&]() -> Napi::Value {
      release_memory(env, info[0]);
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

  // dispose() -> Promise: requests in flight end with ERR_DISPOSED (their events come first).
  Napi::Value Dispose(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    return promise_guarded(env, [&]() -> Napi::Value {
      if (!ctx_) {
        Napi::Promise::Deferred d = Napi::Promise::Deferred::New(env);
        d.Resolve(env.Undefined());
        return d.Promise();
      }
      auto* w = new DisposeWorker(env, info.This().As<Napi::Object>(), std::move(ctx_), sink_->tsfn);
      sink_ = nullptr;
      Napi::Promise p = w->promise();
      w->Queue();
      return p;
    });
  }

  std::shared_ptr<eet::Context> ctx_;
  EventSink* sink_ = nullptr;  // owned by the thread-safe function
  std::unique_ptr<EnvCleanup> cleanup_;
};

}  // namespace

void init_context(Napi::Env env, Napi::Object exports) { exports.Set("AddonContext", AddonContext::Define(env)); }

}  // namespace eet_node

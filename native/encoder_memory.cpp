// Encoder memories as tagged externals (encoder_memory.h).
#include "encoder_memory.h"

#include "addon.h"

namespace eet_node {

namespace {

// napi_type_tag_object: an external from anywhere else (another addon, another type of ours) fails the check.
constexpr napi_type_tag kMemoryTag = {0x6565742d656e636fULL, 0x6d656d6f72793031ULL};

struct Holder {
  std::shared_ptr<const eet::EncoderMemory> memory;
};

Holder* holder(Napi::Env env, const Napi::Value& v, const char* field) {
  bool tagged = false;
  if (v.IsExternal()) {
    if (napi_check_object_type_tag(env, v, &kMemoryTag, &tagged) != napi_ok) tagged = false;
  }
  if (!tagged) throw_arg(env, field, "an encoder memory (context.encode())", v);
  return v.As<Napi::External<Holder>>().Data();
}

}  // namespace

Napi::Value wrap_memory(Napi::Env env, std::shared_ptr<const eet::EncoderMemory> memory) {
  auto* h = new Holder{std::move(memory)};
  Napi::External<Holder> ext = Napi::External<Holder>::New(env, h, [](Napi::Env, Holder* p) { delete p; });
  if (napi_type_tag_object(env, ext, &kMemoryTag) != napi_ok) {
    eet::throw_error(eet::ErrorCode::Internal, "encoder memory: could not tag the external");
  }
  return ext;
}

std::shared_ptr<const eet::EncoderMemory> unwrap_memory(Napi::Env env, const Napi::Value& v, const char* field) {
  if (v.IsUndefined() || v.IsNull()) return nullptr;
  Holder* h = holder(env, v, field);
  if (!h->memory) eet::throw_error(eet::ErrorCode::InvalidArg, std::string("Expected a live encoder memory for ") + field + " but it was released");
  return h->memory;
}

void release_memory(Napi::Env env, const Napi::Value& v) { holder(env, v, "memory")->memory.reset(); }

}  // namespace eet_node

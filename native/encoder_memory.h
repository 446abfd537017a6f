// Encoder memories (engine/sequence.h EncoderMemory) as JS values: an external holding one reference, tagged so that
// no other external passes for one. The reference goes when the value is garbage-collected or released earlier
// (AddonContext.releaseMemory); the memory's blocks return to its context's pool when its last holder lets go.
#pragma once
#include <napi.h>

#include <memory>

#include "../engine/sequence.h"

namespace eet_node {

Napi::Value wrap_memory(Napi::Env env, std::shared_ptr<const eet::EncoderMemory> memory);
// The memory a value holds; nullptr for undefined / null. ERR_INVALID_ARG naming field for anything else, and for
// a released memory.
std::shared_ptr<const eet::EncoderMemory> unwrap_memory(Napi::Env env, const Napi::Value& v, const char* field);
// Drops the value's reference now (idempotent); ERR_INVALID_ARG when it is not a memory.
void release_memory(Napi::Env env, const Napi::Value& v);

}  // namespace eet_node

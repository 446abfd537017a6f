// An architecture is one object behind this interface: the weights it needs, the config it accepts, the layers
// it runs. Each lives in one file (engine/arch_*.cpp) and registers itself by name (EET_REGISTER_ARCHITECTURE),
// so adding one touches that file only (plus its TypeScript description, lib/arch/).
//
// The forward pass (Graph, graph.h) is shared: an architecture's forward() runs the embedding and every layer over
// the step's T packed tokens and leaves the final hidden states (T, dim) in the workspace's x. For decoders
// (has_lm_head) the step runner then applies the output norm the architecture names and the LM head.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "ops.h"

namespace eet {

struct ModelConfig;
class WeightArena;
class Backend;
struct Graph;

class Architecture {
 public:
  virtual ~Architecture() = default;
  virtual const char* name() const = 0;
  // Config checks beyond the generic ones (model.cpp); ERR_INVALID_ARG naming the field.
  virtual void validate(const ModelConfig& c) const { (void)c; }
  virtual void plan_weights(const ModelConfig& c, WeightArena& w) const = 0;
  // Derived weights computed once the files are loaded (e.g. RoPE inverse frequencies); the caller holds the
  // backend mutex.
  virtual void finalize(const ModelConfig& c, Backend& be, WeightArena& w) const { (void)c, (void)be, (void)w; }
  // Widest per-token row of the workspace's buf1 (the fused q|k|v and the FFN's up projection(s)).
  virtual int64_t buffer_width(const ModelConfig& c) const = 0;
  virtual void forward(Graph& g) const = 0;
  // Decoders: the LM head follows forward(); encoders (bert) pool the hidden states instead (Context::embed).
  virtual bool has_lm_head() const { return true; }
  // The norm applied before the LM head: output_norm_name() (+ its .bias when output_norm_bias()).
  virtual NormKind output_norm_kind() const { return NormKind::Rms; }
  virtual bool output_norm_bias() const { return false; }
  virtual const char* output_norm_name() const { return "output_norm"; }

  // Encoder-decoder models (t5). forward() is then the decoder, whose cross-attention reads an encoder memory
  // (sequence.h EncoderMemory) through the step's memory tables (Graph::cross_attention). encoder() runs the encoder
  // over the step's tokens (whole inputs) and leaves its output (T, dim) in the workspace's x; cross_kv() then writes
  // every decoder layer's cross-attention K/V of x into the cache at the step's slots (the memory's blocks).
  virtual bool encoder_decoder() const { return false; }
  virtual void encoder(Graph& g) const { forward(g); }  // an encoder-only model (bert): its forward pass
  virtual void cross_kv(Graph& g) const { (void)g; }
  // KV cache layers: one per self-attention layer that keeps K/V (t5: the encoder's and the decoder's share them).
  virtual int32_t cache_layers(const ModelConfig& c) const;
};

// The registered architecture of that name, or nullptr.
const Architecture* find_architecture(const std::string& name);
std::vector<std::string> architecture_names();

namespace detail {
void register_architecture(std::unique_ptr<Architecture> arch);
template <typename A>
struct ArchitectureRegistrar {
  ArchitectureRegistrar() { register_architecture(std::make_unique<A>()); }
};
}  // namespace detail

#define EET_REGISTER_ARCHITECTURE(Class) \
  static const ::eet::detail::ArchitectureRegistrar<Class> eet_registrar_##Class

}  // namespace eet

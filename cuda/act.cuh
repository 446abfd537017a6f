// The activation functions in fp32, shared by the act op (cuda/act.cu) and the GEMM input prologue that computes
// SwiGLU as the down projection loads its input (cuda/gemm_xform.cuh): one definition, so the fused GEMM sees
// the values the act op would have stored. Evaluated without cancellation in the negative tail:
// 0.5 (1 + tanh(z)) = 1 / (1 + exp(-2z)) and 1 + erf(u) = erfc(-u).
#pragma once
#include "common.cuh"

namespace EET_KNS {

__device__ __forceinline__ float act_silu(float h) { return h / (1.0f + expf(-h)); }

__device__ __forceinline__ float act_apply(eet::ActKind kind, float h) {
  switch (kind) {
    case eet::ActKind::Relu: return fmaxf(h, 0.0f);
    case eet::ActKind::GeluTanh:
    case eet::ActKind::GegluTanh: return h / (1.0f + expf(-1.5957691216057308f * (h + 0.044715f * h * h * h)));
    case eet::ActKind::GeluErf: return 0.5f * h * erfcf(-0.7071067811865476f * h);
    default: return act_silu(h);  // Silu, and the gate of SwiGlu
  }
}

}  // namespace EET_KNS

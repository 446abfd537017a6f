// The fast cpu ops (engine/fast/): the ops that dominate a forward pass, vectorised (kernels.h) and threaded
// (engine/cpu/parallel.h). The cpu backend (engine/backend_cpu.cpp) calls these and the reference ops
// (engine/cpu/) for the rest; the cpu-ref backend calls the reference ops only, and the op tests compare the two.
#pragma once
#include "../ops.h"

namespace eet::fast {

void op_gemm(const GemmArgs& a);
void op_gemm_q8(const GemmQ8Args& a);
void op_attention(const AttentionArgs& a);
void op_shared_attention(const SharedAttentionArgs& a);
void op_norm(const NormArgs& a);
void op_act(const ActArgs& a);
void op_rope(const RopeArgs& a);
void op_rope_kv_append(const RopeKvAppendArgs& a);

// Name of the instruction set the kernels use here ("avx512", "avx2", "generic").
const char* isa_name();

}  // namespace eet::fast

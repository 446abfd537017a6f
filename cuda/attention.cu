// STUB: replaced by the op implementation.
#include "common.cuh"

namespace EET_KNS {

void op_attention(const eet::AttentionArgs&, eet::Stream) { eet::throw_error(eet::ErrorCode::Unsupported, "attention: not implemented yet"); }

}  // namespace EET_KNS

#if !defined(__CUDACC__)
size_t eet::attention_workspace_bytes(int32_t, int32_t, int32_t, int32_t) { return 0; }
#endif

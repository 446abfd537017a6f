// STUB: replaced by the op implementation.
#include "common.cuh"

namespace EET_KNS {

void op_sample(const eet::SampleArgs&, eet::Stream) { eet::throw_error(eet::ErrorCode::Unsupported, "sample: not implemented yet"); }

}  // namespace EET_KNS

#if !defined(__CUDACC__)
size_t eet::sample_workspace_bytes(int64_t, int64_t) { return 0; }
#endif

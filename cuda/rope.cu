// STUB: replaced by the op implementation.
#include "common.cuh"

namespace EET_KNS {

void op_rope(const eet::RopeArgs&, eet::Stream) { eet::throw_error(eet::ErrorCode::Unsupported, "rope: not implemented yet"); }

}  // namespace EET_KNS

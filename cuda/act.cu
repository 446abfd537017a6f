// STUB: replaced by the op implementation.
#include "common.cuh"

namespace EET_KNS {

void op_act(const eet::ActArgs&, eet::Stream) { eet::throw_error(eet::ErrorCode::Unsupported, "act: not implemented yet"); }

}  // namespace EET_KNS

// STUB: replaced by the op implementation.
#include "../kernels.h"
#include "../error.h"

namespace eet::cpu {

void op_rope(const RopeArgs&) { throw_error(ErrorCode::Unsupported, "rope: not implemented yet"); }

}  // namespace eet::cpu

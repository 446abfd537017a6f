// STUB: replaced by the op implementation.
#include "../kernels.h"
#include "../error.h"

namespace eet::cpu {

void op_cast(const CastArgs&) { throw_error(ErrorCode::Unsupported, "cast: not implemented yet"); }

}  // namespace eet::cpu

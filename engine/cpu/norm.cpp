// STUB: replaced by the op implementation.
#include "../kernels.h"
#include "../error.h"

namespace eet::cpu {

void op_norm(const NormArgs&) { throw_error(ErrorCode::Unsupported, "norm: not implemented yet"); }

}  // namespace eet::cpu

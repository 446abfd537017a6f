// STUB: replaced by the op implementation.
#include "../kernels.h"
#include "../error.h"

namespace eet::cpu {

void op_act(const ActArgs&) { throw_error(ErrorCode::Unsupported, "act: not implemented yet"); }

}  // namespace eet::cpu

// STUB: replaced by the op implementation.
#include "../kernels.h"
#include "../error.h"

namespace eet::cpu {

void op_softmax(const SoftmaxArgs&) { throw_error(ErrorCode::Unsupported, "softmax: not implemented yet"); }

}  // namespace eet::cpu

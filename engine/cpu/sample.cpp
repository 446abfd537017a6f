// STUB: replaced by the op implementation.
#include "../kernels.h"
#include "../error.h"

namespace eet::cpu {

void op_sample(const SampleArgs&) { throw_error(ErrorCode::Unsupported, "sample: not implemented yet"); }

}  // namespace eet::cpu

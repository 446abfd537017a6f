// STUB: replaced by the op implementation.
#include "../kernels.h"
#include "../error.h"

namespace eet::cpu {

void op_gemm(const GemmArgs&) { throw_error(ErrorCode::Unsupported, "gemm: not implemented yet"); }

}  // namespace eet::cpu

// STUB: replaced by the op implementation.
#include "../kernels.h"
#include "../error.h"

namespace eet::cpu {

void op_attention(const AttentionArgs&) { throw_error(ErrorCode::Unsupported, "attention: not implemented yet"); }

}  // namespace eet::cpu

// STUB: replaced by the op implementation.
#include "../kernels.h"
#include "../error.h"

namespace eet::cpu {

void op_kv_append(const KvAppendArgs&) { throw_error(ErrorCode::Unsupported, "kv_append: not implemented yet"); }
void op_kv_gather(const KvGatherArgs&) { throw_error(ErrorCode::Unsupported, "kv_gather: not implemented yet"); }

}  // namespace eet::cpu

// STUB: replaced by the op implementation.
#include "common.cuh"

namespace EET_KNS {

void op_kv_append(const eet::KvAppendArgs&, eet::Stream) { eet::throw_error(eet::ErrorCode::Unsupported, "kv_append: not implemented yet"); }
void op_kv_gather(const eet::KvGatherArgs&, eet::Stream) { eet::throw_error(eet::ErrorCode::Unsupported, "kv_gather: not implemented yet"); }

}  // namespace EET_KNS

// STUB: replaced by the op implementation.
#include "common.cuh"

namespace EET_KNS {

void op_embedding(const eet::EmbeddingArgs&, eet::Stream) { eet::throw_error(eet::ErrorCode::Unsupported, "embedding: not implemented yet"); }

}  // namespace EET_KNS

// STUB: replaced by the op implementation.
#include "../kernels.h"
#include "../error.h"

namespace eet::cpu {

void op_embedding(const EmbeddingArgs&) { throw_error(ErrorCode::Unsupported, "embedding: not implemented yet"); }

}  // namespace eet::cpu

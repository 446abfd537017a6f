// cpu reference for dtype conversion: every float dtype is exact in double; one rounding to the destination
// (engine/half.h: round to nearest even, overflow to inf, subnormals kept).
#include <algorithm>

#include "element.h"
#include "parallel.h"
#include "reference.h"

namespace eet::cpu {

void op_cast(const CastArgs& a) {
  constexpr int64_t kChunk = 1 << 16;
  parallel_for((a.n + kChunk - 1) / kChunk, 1, [&](int64_t c) {
    const int64_t end = std::min(a.n, (c + 1) * kChunk);
    for (int64_t i = c * kChunk; i < end; ++i) store(a.dst_dtype, a.dst, i, load(a.src_dtype, a.src, i));
  });
}

}  // namespace eet::cpu

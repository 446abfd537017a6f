// Fast cpu LayerNorm / RMSNorm with the fused residual add (ops.h NormArgs): rows split over the thread pool,
// each range run by the ISA's kernel (elementwise_kernel.h).
#include "../cpu/parallel.h"
#include "fast.h"
#include "kernels.h"

namespace eet::fast {

void op_norm(const NormArgs& a) {
  if (a.rows <= 0) return;
  const Kernels& kn = kernels();
  const int64_t grain = std::max<int64_t>(1, 16384 / a.cols);
  const int64_t chunks = std::min<int64_t>(cpu::op_threads(), (a.rows + grain - 1) / grain);
  const int64_t per = (a.rows + chunks - 1) / chunks;
  cpu::run_chunks(chunks, [&](int64_t c) { kn.norm(a, c * per, std::min(a.rows, (c + 1) * per)); });
}

}  // namespace eet::fast

// Fast cpu activations (ops.h ActArgs: gelu_tanh, gelu_erf, silu, relu, swiglu, geglu_tanh): rows split over the thread pool, each
// range run by the ISA's kernel (elementwise_kernel.h).
#include "../cpu/parallel.h"
#include "fast.h"
#include "kernels.h"

namespace eet::fast {

void op_act(const ActArgs& a) {
  if (a.m <= 0) return;
  const Kernels& kn = kernels();
  const int64_t grain = std::max<int64_t>(1, 16384 / a.n);
  const int64_t chunks = std::min<int64_t>(cpu::op_threads(), (a.m + grain - 1) / grain);
  const int64_t per = (a.m + chunks - 1) / chunks;
  cpu::run_chunks(chunks, [&](int64_t c) { kn.act(a, c * per, std::min(a.m, (c + 1) * per)); });
}

}  // namespace eet::fast

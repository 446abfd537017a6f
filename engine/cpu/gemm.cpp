// cpu reference for gemm: y[m, n] = sum_k x[m, k] * w[n, k] (+ bias[n]) (+ residual[m, n]), accumulated in
// double, rounded once to the dtype. One work item per output element (so M = 1 decode shapes use every core too);
// residual may alias y: each element's residual is read before that element is written. An input prologue
// (GemmPrologue) is the reference norm / activation op into a temporary first (gemm_prologue.h).
#include <vector>

#include "element.h"
#include "gemm_prologue.h"
#include "parallel.h"
#include "reference.h"

namespace eet::cpu {

void op_gemm(const GemmArgs& a) {
  if (a.xform.kind != GemmXForm::None) {
    std::vector<uint8_t> input;
    op_gemm(apply_prologue(a, input, op_norm, op_act));
    return;
  }
  const int64_t grain = std::max<int64_t>(1, 65536 / a.k);
  parallel_for(a.m * a.n, grain, [&](int64_t i) {
    const int64_t m = i / a.n, n = i % a.n;
    double s = 0.0;
    for (int64_t k = 0; k < a.k; ++k) s += load(a.dtype, a.x, m * a.ldx + k) * load(a.dtype, a.w, n * a.k + k);
    if (a.bias) s += load(a.dtype, a.bias, n);
    if (a.residual) s += load(a.dtype, a.residual, m * a.ldy + n);
    store(a.dtype, a.y, m * a.ldy + n, s);
  });
}

}  // namespace eet::cpu

// cpu reference for gemm_q8 (ops.h GemmQ8Args): y[m, n] = sum_k x[m, k] * d[n, k/32] * q[n, k] (+ bias[n])
// (+ residual[m, n]). Each weight is dequantized exactly (d * q in double), products accumulated in double, the
// result rounded once to the dtype. One work item per output element; residual may alias y (each element's
// residual is read before that element is written). An input prologue (GemmPrologue) is the reference norm /
// activation op into a temporary first (gemm_prologue.h).
#include <vector>

#include "element.h"
#include "gemm_prologue.h"
#include "parallel.h"
#include "reference.h"

namespace eet::cpu {

void op_gemm_q8(const GemmQ8Args& a) {
  if (a.xform.kind != GemmXForm::None) {
    std::vector<uint8_t> input;
    op_gemm_q8(apply_prologue(a, input, op_norm, op_act));
    return;
  }
  const int64_t grain = std::max<int64_t>(1, 65536 / a.k);
  const int64_t nblocks = a.k / 32;
  parallel_for(a.m * a.n, grain, [&](int64_t i) {
    const int64_t m = i / a.n, n = i % a.n;
    double s = 0.0;
    for (int64_t k = 0; k < a.k; ++k) {
      const double w = double(f16_to_f32(a.wscale[n * nblocks + k / 32])) * double(a.wq[n * a.k + k]);
      s += load(a.dtype, a.x, m * a.ldx + k) * w;
    }
    if (a.bias) s += load(a.dtype, a.bias, n);
    if (a.residual) s += load(a.dtype, a.residual, m * a.ldy + n);
    store(a.dtype, a.y, m * a.ldy + n, s);
  });
}

}  // namespace eet::cpu

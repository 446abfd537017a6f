// cpu reference for LayerNorm / RMSNorm, optionally fused with the residual add (NormArgs, engine/ops.h).
// Per row of (rows, cols): h = x (+ residual) rounded to the dtype, written to residual_out when given; then
//   layer: y = (h - mean) / sqrt(var + eps) * weight (+ bias)      rms: y = h / sqrt(mean(h^2) + eps) * weight
// Statistics and the output math in double; each output rounded once to the dtype.
#include <cmath>
#include <vector>

#include "element.h"
#include "parallel.h"
#include "reference.h"

namespace eet::cpu {

void op_norm(const NormArgs& a) {
  const DType t = a.dtype;
  const int64_t n = a.cols;
  parallel_for(a.rows, 16, [&](int64_t r) {
    const int64_t base = r * n;
    std::vector<double> h(static_cast<size_t>(n));
    for (int64_t c = 0; c < n; ++c) {
      double v = load(t, a.x, base + c);
      if (a.residual) v = round_to(t, v + load(t, a.residual, base + c));
      h[size_t(c)] = v;
    }
    if (a.residual_out)
      for (int64_t c = 0; c < n; ++c) store(t, a.residual_out, base + c, h[size_t(c)]);

    double mean = 0.0, ms = 0.0;
    if (a.kind == NormKind::Layer) {
      for (double v : h) mean += v;
      mean /= double(n);
      for (double v : h) ms += (v - mean) * (v - mean);
    } else {
      for (double v : h) ms += v * v;
    }
    const double rstd = 1.0 / std::sqrt(ms / double(n) + double(a.eps));
    for (int64_t c = 0; c < n; ++c) {
      double v = (h[size_t(c)] - mean) * rstd * load(t, a.weight, c);
      if (a.bias) v += load(t, a.bias, c);
      store(t, a.y, base + c, v);
    }
  });
}

}  // namespace eet::cpu

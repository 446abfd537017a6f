// cpu reference for softmax over rows (SoftmaxArgs, engine/ops.h): y[r, :] = softmax(x[r, :] * scale), computed
// max-subtracted in double and rounded once to the dtype. y may alias x (a row is read fully before it is written).
#include <cmath>
#include <vector>

#include "element.h"
#include "parallel.h"
#include "reference.h"

namespace eet::cpu {

void op_softmax(const SoftmaxArgs& a) {
  const DType t = a.dtype;
  const int64_t n = a.cols;
  parallel_for(a.rows, 16, [&](int64_t r) {
    const int64_t base = r * n;
    std::vector<double> v(static_cast<size_t>(n));
    double m = -INFINITY;
    for (int64_t c = 0; c < n; ++c) {
      v[size_t(c)] = load(t, a.x, base + c) * double(a.scale);
      m = std::fmax(m, v[size_t(c)]);
    }
    double sum = 0.0;
    for (double& e : v) {
      e = std::exp(e - m);
      sum += e;
    }
    for (int64_t c = 0; c < n; ++c) store(t, a.y, base + c, v[size_t(c)] / sum);
  });
}

}  // namespace eet::cpu

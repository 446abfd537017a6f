// cpu reference for the activations (ops.h ActArgs), in double, rounded once to the dtype:
//   gelu_tanh: 0.5 h (1 + tanh(sqrt(2/pi) (h + 0.044715 h^3)))   gelu_erf: 0.5 h (1 + erf(h / sqrt(2)))
//   silu: h / (1 + exp(-h))   relu: max(h, 0)   with h = x (+ bias);   swiglu: silu(x) * up;
//   geglu_tanh: gelu_tanh(x) * up
// The GELUs are evaluated as h sigmoid(2z) and 0.5 h erfc(-h / sqrt(2)) (the same functions), which keep their
// relative accuracy in the negative tail where 1 + tanh and 1 + erf cancel.
#include <cmath>

#include "element.h"
#include "parallel.h"
#include "reference.h"

namespace eet::cpu {

namespace {
double activation(ActKind kind, double h) {
  switch (kind) {
    case ActKind::Relu: return h > 0.0 ? h : 0.0;
    case ActKind::GeluTanh:
    case ActKind::GegluTanh: return h / (1.0 + std::exp(-2.0 * std::sqrt(2.0 / 3.141592653589793) * (h + 0.044715 * h * h * h)));
    case ActKind::GeluErf: return 0.5 * h * std::erfc(-h / std::sqrt(2.0));
    case ActKind::Silu:
    case ActKind::SwiGlu: return h / (1.0 + std::exp(-h));
  }
  return 0;
}
}  // namespace

void op_act(const ActArgs& a) {
  parallel_for(a.m, 4, [&](int64_t r) {
    for (int64_t c = 0; c < a.n; ++c) {
      double h = load(a.dtype, a.x, r * a.ldx + c);
      double y;
      if (act_gated(a.kind)) {
        y = activation(a.kind, h) * load(a.dtype, a.up, r * a.ldu + c);
      } else {
        if (a.bias) h += load(a.dtype, a.bias, c);
        y = activation(a.kind, h);
      }
      store(a.dtype, a.y, r * a.ldy + c, y);
    }
  });
}

}  // namespace eet::cpu

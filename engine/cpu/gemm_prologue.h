// The GEMM input prologue (ops.h GemmPrologue) on the host backends: by composition. The backend's own norm or
// activation op writes the GEMM's input into a temporary (M, K) in the dtype, exactly as the unfused pair would,
// and the plain GEMM reads it. So the cpu reference of a fused GEMM is the reference ops themselves (an independent
// check of the fused device kernels), and the fast cpu backend's fused and unfused forms agree bit for bit.
#pragma once
#include <cstdint>
#include <vector>

#include "../ops.h"

namespace eet::cpu {

// a with its prologue applied: x = buf (filled here by norm / act, the backend's op functions), ldx = k, no
// prologue. Args is GemmArgs or GemmQ8Args.
template <class Args, class NormFn, class ActFn>
Args apply_prologue(const Args& a, std::vector<uint8_t>& buf, NormFn norm, ActFn act) {
  const int64_t es = int64_t(dtype_size(a.dtype));
  buf.resize(size_t(a.m * a.k * es));
  const auto* x = static_cast<const uint8_t*>(a.x);
  if (a.xform.kind == GemmXForm::RmsNorm) {
    NormArgs n{};
    n.kind = NormKind::Rms;
    n.dtype = a.dtype;
    n.weight = a.xform.gain;
    n.cols = a.k;
    n.eps = a.xform.eps;
    // NormArgs rows are contiguous: one call when x's are, else one per row.
    const bool dense = a.ldx == a.k;
    for (int64_t r = 0; r < (dense ? 1 : a.m); ++r) {
      n.x = x + r * a.ldx * es;
      n.y = buf.data() + r * a.k * es;
      n.rows = dense ? a.m : 1;
      norm(n);
    }
  } else {
    ActArgs g{};
    g.kind = ActKind::SwiGlu;
    g.dtype = a.dtype;
    g.x = x;
    g.up = x + a.k * es;
    g.y = buf.data();
    g.m = a.m;
    g.n = a.k;
    g.ldx = g.ldu = a.ldx;
    g.ldy = a.k;
    act(g);
  }
  Args b = a;
  b.x = buf.data();
  b.ldx = a.k;
  b.xform = GemmPrologue{};
  return b;
}

}  // namespace eet::cpu

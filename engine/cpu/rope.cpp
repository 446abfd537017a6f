// cpu reference for rotary position embedding (ops.h RopeArgs), in place on q and k.
// angle = pos * inv_freq[i] is the fp32 product (as llama2.c and HF compute it, and the kernels); cos, sin and
// the rotation are in double, rounded once to the dtype. Elements from rot_dim on are left as they are.
#include <cmath>
#include <vector>

#include "element.h"
#include "parallel.h"
#include "reference.h"

namespace eet::cpu {

namespace {
// Rotates the first rot_dim elements of one head x by the angles whose (cos, sin) are cs, sn.
void rotate_head(const RopeArgs& a, void* x, int64_t base, const std::vector<double>& cs, const std::vector<double>& sn) {
  const int64_t half = a.rot_dim / 2;
  for (int64_t i = 0; i < half; ++i) {
    const int64_t i0 = a.layout == RopeLayout::Adjacent ? 2 * i : i;
    const int64_t i1 = a.layout == RopeLayout::Adjacent ? 2 * i + 1 : i + half;
    const double x0 = load(a.dtype, x, base + i0), x1 = load(a.dtype, x, base + i1);
    store(a.dtype, x, base + i0, x0 * cs[size_t(i)] - x1 * sn[size_t(i)]);
    store(a.dtype, x, base + i1, x0 * sn[size_t(i)] + x1 * cs[size_t(i)]);
  }
}
}  // namespace

void op_rope(const RopeArgs& a) {
  parallel_for(a.n_tokens, 4, [&](int64_t t) {
    const int64_t half = a.rot_dim / 2;
    std::vector<double> cs(static_cast<size_t>(half)), sn(static_cast<size_t>(half));
    for (int64_t i = 0; i < half; ++i) {
      const double angle = double(float(a.pos[t]) * a.inv_freq[i]);
      cs[size_t(i)] = std::cos(angle);
      sn[size_t(i)] = std::sin(angle);
    }
    for (int64_t h = 0; h < a.n_heads; ++h) rotate_head(a, a.q, t * a.ldq + h * a.head_dim, cs, sn);
    if (a.k) {
      for (int64_t h = 0; h < a.n_kv_heads; ++h) rotate_head(a, a.k, t * a.ldk + h * a.head_dim, cs, sn);
    }
  });
}

}  // namespace eet::cpu

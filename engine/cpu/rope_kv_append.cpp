// cpu reference of the fused RoPE + KV append (ops.h RopeKvAppendArgs): q rotated in place, k rotated into the cache,
// v copied into it, token t at slot slots[t]. The arithmetic is engine/cpu/rope.cpp's (the fp32 angle
// pos * inv_freq, cos / sin and the rotation in double, rounded once to the dtype) and the placement
// engine/cpu/kvcache.cpp's, so the result is theirs element for element; k itself is only read.
#include <cmath>
#include <cstring>
#include <vector>

#include "element.h"
#include "parallel.h"
#include "reference.h"

namespace eet::cpu {

namespace {

// Rotates the first rot_dim elements of the head at src + sbase into dst + dbase (the rest copied unchanged; src and
// dst may be the same head).
void rotate_into(const RopeKvAppendArgs& a, const void* src, int64_t sbase, void* dst, int64_t dbase,
                 const std::vector<double>& cs, const std::vector<double>& sn) {
  const int64_t half = a.rot_dim / 2;
  const bool adjacent = a.rope_layout == RopeLayout::Adjacent;
  for (int64_t i = 0; i < half; ++i) {
    const int64_t i0 = adjacent ? 2 * i : i, i1 = adjacent ? 2 * i + 1 : i + half;
    const double x0 = load(a.dtype, src, sbase + i0), x1 = load(a.dtype, src, sbase + i1);
    store(a.dtype, dst, dbase + i0, x0 * cs[size_t(i)] - x1 * sn[size_t(i)]);
    store(a.dtype, dst, dbase + i1, x0 * sn[size_t(i)] + x1 * cs[size_t(i)]);
  }
  for (int64_t d = a.rot_dim; d < a.layout.head_dim; ++d) store(a.dtype, dst, dbase + d, load(a.dtype, src, sbase + d));
}

}  // namespace

void op_rope_kv_append(const RopeKvAppendArgs& a) {
  const KvLayout& l = a.layout;
  const size_t es = dtype_size(a.dtype), row_bytes = size_t(l.head_dim) * es;
  parallel_for(a.n_tokens, 4, [&](int64_t t) {
    const int64_t half = a.rot_dim / 2;
    std::vector<double> cs(static_cast<size_t>(half)), sn(static_cast<size_t>(half));
    for (int64_t i = 0; i < half; ++i) {
      const double angle = double(float(a.pos[t]) * a.inv_freq[i]);
      cs[size_t(i)] = std::cos(angle);
      sn[size_t(i)] = std::sin(angle);
    }
    for (int64_t h = 0; h < a.n_heads; ++h) {
      const int64_t base = t * a.ldq + h * l.head_dim;
      rotate_into(a, a.q, base, a.q, base, cs, sn);
    }
    const int64_t slot = a.slots[t], blk = slot / l.block_size, j = slot % l.block_size;
    for (int64_t h = 0; h < l.n_kv_heads; ++h) {
      const int64_t dst = blk * l.block_stride + h * l.head_stride + j * l.head_dim;
      rotate_into(a, a.k, t * a.ldk + h * l.head_dim, a.k_cache, dst, cs, sn);
      std::memcpy(static_cast<char*>(a.v_cache) + dst * es,
                  static_cast<const char*>(a.v) + (t * a.ldv + h * l.head_dim) * es, row_bytes);
    }
  });
}

}  // namespace eet::cpu

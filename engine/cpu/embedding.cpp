// cpu reference: out[i, :] = table[ids[i], :] (+ pos_table[pos[i], :]), the sum in double, rounded once.
#include "element.h"
#include "parallel.h"
#include "reference.h"

namespace eet::cpu {

void op_embedding(const EmbeddingArgs& a) {
  parallel_for(a.n, 64, [&](int64_t i) {
    const int64_t row = int64_t(a.ids[i]) * a.cols;
    const int64_t prow = a.pos_table ? int64_t(a.pos[i]) * a.cols : 0;
    for (int64_t c = 0; c < a.cols; ++c) {
      double v = load(a.dtype, a.table, row + c);
      if (a.pos_table) v += load(a.dtype, a.pos_table, prow + c);
      store(a.dtype, a.out, i * a.cols + c, v);
    }
  });
}

}  // namespace eet::cpu

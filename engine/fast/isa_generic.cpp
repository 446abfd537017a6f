// The fast cpu kernels for any CPU (x86-64 without AVX2, ARM64, ...): the kernel templates over vec_generic.h's
// plain 8-float arrays, which the compiler vectorises for the baseline target (SSE2, Neon). Internal linkage, as
// in isa_avx2.cpp.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <type_traits>
#include <vector>

#include "../half.h"
#include "kernels.h"

namespace eet::fast::generic {
namespace {
#include "vec_generic.h"
#include "gemm_kernel.h"
#include "attention_kernel.h"
#include "elementwise_kernel.h"

void gemm(const GemmJob& j, int64_t n0, int64_t n1, float* scratch) { gemm_entry<2>(j, n0, n1, scratch); }
int64_t pack_floats(int64_t k) { return gemm_pack_floats(k); }
int64_t attn_floats(const AttentionArgs& a) { return attention_scratch_floats(a); }
void attention(const AttentionArgs& a, const AttentionItem& it, float* s) { attention_item(a, it, s); }
void norm(const NormArgs& a, int64_t r0, int64_t r1) { norm_rows(a, r0, r1); }
void act(const ActArgs& a, int64_t r0, int64_t r1) { act_rows(a, r0, r1); }

void to_f32(DType t, const void* x, int64_t ldx, int64_t m, int64_t k, float* d) { rows_to_f32(t, x, ldx, m, k, d); }

const Kernels table{"generic", to_f32, 2, pack_floats, gemm, attn_floats, attention, norm, act};
}  // namespace
}  // namespace eet::fast::generic

namespace eet::fast {
const Kernels& kernels_generic() { return generic::table; }
}  // namespace eet::fast

// The fast cpu kernels compiled for AVX-512 (F, BW, VL, DQ + FMA, F16C): the kernel templates under this file's
// target pragma, in a namespace of their own (internal linkage), so nothing compiled here for AVX-512 can be
// merged with or called by code meant for any x86-64. isa.cpp calls in only on CPUs that have these features.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <type_traits>
#include <vector>

#include "../half.h"
#include "kernels.h"

#if defined(__x86_64__)
#include <immintrin.h>

#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,fma,f16c,avx2"))), apply_to = function)
#else
#pragma GCC push_options
#pragma GCC target("avx512f,avx512bw,avx512vl,avx512dq,fma,f16c,avx2")
// GCC 12's avx512fintrin.h starts results from `__m512 __Y = __Y;` (an intentional undefined value) and then
// warns about it wherever those intrinsics are inlined.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#endif

namespace eet::fast::avx512 {
namespace {
#include "vec_avx512.h"
#include "gemm_kernel.h"
#include "attention_kernel.h"
#include "elementwise_kernel.h"

void gemm(const GemmJob& j, int64_t n0, int64_t n1, float* scratch) { gemm_entry<4>(j, n0, n1, scratch); }
int64_t pack_floats(int64_t k) { return gemm_pack_floats(k); }
int64_t attn_floats(const AttentionArgs& a) { return attention_scratch_floats(a); }
void attention(const AttentionArgs& a, const AttentionItem& it, float* s) { attention_item(a, it, s); }
void norm(const NormArgs& a, int64_t r0, int64_t r1) { norm_rows(a, r0, r1); }
void act(const ActArgs& a, int64_t r0, int64_t r1) { act_rows(a, r0, r1); }

void to_f32(DType t, const void* x, int64_t ldx, int64_t m, int64_t k, float* d) { rows_to_f32(t, x, ldx, m, k, d); }

const Kernels table{"avx512", to_f32, 4, pack_floats, gemm, attn_floats, attention, norm, act};
}  // namespace
}  // namespace eet::fast::avx512

#if defined(__clang__)
#pragma clang attribute pop
#else
#pragma GCC diagnostic pop
#pragma GCC pop_options
#endif

namespace eet::fast {
const Kernels* kernels_avx512() { return &avx512::table; }
}  // namespace eet::fast

#else
namespace eet::fast {
const Kernels* kernels_avx512() { return nullptr; }
}  // namespace eet::fast
#endif

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
#define EET_ISA_NAME "avx512"
#define EET_ISA_ROWS 4
#include "kernel_table.h"
#undef EET_ISA_NAME
#undef EET_ISA_ROWS
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

// The fast cpu kernels compiled for AVX2 + FMA + F16C: the kernel templates under this file's
// target pragma, in a namespace of their own (internal linkage), so nothing compiled here for AVX2 can be
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
#pragma clang attribute push(__attribute__((target("avx2,fma,f16c"))), apply_to = function)
#else
#pragma GCC push_options
#pragma GCC target("avx2,fma,f16c")
#endif

namespace eet::fast::avx2 {
namespace {
#include "vec_avx2.h"
#define EET_ISA_NAME "avx2"
#define EET_ISA_ROWS 2
#include "kernel_table.h"
#undef EET_ISA_NAME
#undef EET_ISA_ROWS
}  // namespace
}  // namespace eet::fast::avx2

#if defined(__clang__)
#pragma clang attribute pop
#else
#pragma GCC pop_options
#endif

namespace eet::fast {
const Kernels* kernels_avx2() { return &avx2::table; }
}  // namespace eet::fast

#else
namespace eet::fast {
const Kernels* kernels_avx2() { return nullptr; }
}  // namespace eet::fast
#endif

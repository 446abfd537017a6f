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
#define EET_ISA_NAME "generic"
#define EET_ISA_ROWS 2
#include "kernel_table.h"
#undef EET_ISA_NAME
#undef EET_ISA_ROWS
}  // namespace
}  // namespace eet::fast::generic

namespace eet::fast {
const Kernels& kernels_generic() { return generic::table; }
}  // namespace eet::fast

// Chooses the fast kernels' instruction set once per process (kernels.h).
#include <cstdlib>
#include <cstring>

#include "kernels.h"

namespace eet::fast {

namespace {
bool cpu_has_avx512() {
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
  return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
         __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("f16c") &&
         __builtin_cpu_supports("fma");
#else
  return false;
#endif
}
bool cpu_has_avx2() {
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
  return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("f16c");
#else
  return false;
#endif
}

const Kernels& choose() {
  const char* want = std::getenv("EET_CPU_ISA");
  const bool any = !want || !*want;
  if ((any || std::strcmp(want, "avx512") == 0) && cpu_has_avx512() && kernels_avx512()) return *kernels_avx512();
  if ((any || std::strcmp(want, "avx512") == 0 || std::strcmp(want, "avx2") == 0) && cpu_has_avx2() && kernels_avx2()) {
    return *kernels_avx2();
  }
  return kernels_generic();
}
}  // namespace

const Kernels& kernels() {
  static const Kernels& k = choose();
  return k;
}

}  // namespace eet::fast

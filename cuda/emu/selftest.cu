// Self-test kernels for the SIMT emulator (cuda/emu): the registry. The cases live in one file per family
// (selftest_block.cu, selftest_warp.cu, selftest_ptx.cu, selftest_faults.cu; see selftest.cuh). The same files
// compile under nvcc (eet_cuda, real GPU) and under the host compiler (eet_emu), so the cases that are correct CUDA
// can be compared across both. Cases that deliberately break CUDA's rules (divergent barriers, bad masks, crashes)
// exist in the emu build only: on a GPU they hang or kill the context.
//
//   emu_selftest_cases()            names of the cases this build runs
//   emu_selftest(name, stream)      runs one; returns "ok: ..." or throws eet::Error (ErrorCode::Internal when a
//                                   check fails). Cases named expect_* pass when the emu reports ERR_KERNEL.
//   "race" returns the number of correct outputs of a kernel with a missing barrier: the caller checks that the
//   forward and reverse scheduling orders disagree.
#include "selftest.cuh"

namespace EET_KNS {

namespace selftest {

std::vector<Case> all_cases() {
  std::vector<Case> all;
  for (auto family : {block_cases, warp_cases, ptx_cases, fault_cases}) {
    for (const auto& c : family()) all.push_back(c);
  }
  return all;
}

}  // namespace selftest

std::vector<std::string> emu_selftest_cases() {
  std::vector<std::string> names;
  for (const auto& c : selftest::all_cases()) names.push_back(c.name);
  return names;
}

std::string emu_selftest(const char* name, eet::Stream s) {
  const std::string n = name ? name : "";
  for (const auto& c : selftest::all_cases()) {
    if (n == c.name) return c.run(s);
  }
  eet::throw_error(eet::ErrorCode::InvalidArg, "unknown emu self-test case: " + n);
}

}  // namespace EET_KNS

// The entry points of cuda/, in each namespace the sources compile into (common.cuh):
//   eet_cuda::op_X(const eet::XArgs&, eet::Stream)   cuda/X.cu compiled by nvcc
//   eet_emu::op_X(const eet::XArgs&, eet::Stream)    cuda/X.cu compiled by the host compiler for the SIMT emulator
// one per op of engine/ops.h, and the emulator's self-test (cuda/emu/selftest.cu):
//   emu_selftest_cases()          names of the cases this build runs
//   emu_selftest(name, stream)    runs one: "ok: ..." or throws eet::Error
// The cuda and emu backends (backend_cuda.cpp, backend_emu.cpp) call these; engine/ sees only its Backend
// interface. Plain C++ (no CUDA or emulator header), so any host translation unit can include it.
#pragma once
#include <string>
#include <vector>

#include "../engine/ops.h"

#define EET_DECLARE_DEVICE_OP(name, Args) void op_##name(const ::eet::Args& a, ::eet::Stream stream);

namespace eet_emu {
EET_OPS(EET_DECLARE_DEVICE_OP)
std::vector<std::string> emu_selftest_cases();
std::string emu_selftest(const char* name, ::eet::Stream stream);
}  // namespace eet_emu

namespace eet_cuda {
EET_OPS(EET_DECLARE_DEVICE_OP)
std::vector<std::string> emu_selftest_cases();
std::string emu_selftest(const char* name, ::eet::Stream stream);
}  // namespace eet_cuda

#undef EET_DECLARE_DEVICE_OP

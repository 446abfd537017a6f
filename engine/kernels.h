// Declarations of every op's three implementations (see ops.h). The backends forward to these.
#pragma once
#include "ops.h"

#define EET_DECLARE_DEVICE_OP(name, Args) void op_##name(const ::eet::Args& a, ::eet::Stream stream);
#define EET_DECLARE_CPU_OP(name, Args) void op_##name(const Args& a);

namespace eet_emu {
EET_OPS(EET_DECLARE_DEVICE_OP)
}
namespace eet_cuda {
EET_OPS(EET_DECLARE_DEVICE_OP)
}
namespace eet::cpu {
EET_OPS(EET_DECLARE_CPU_OP)
}

#undef EET_DECLARE_DEVICE_OP
#undef EET_DECLARE_CPU_OP

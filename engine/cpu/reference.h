// Declarations of the cpu reference ops (engine/cpu/X.cpp, one per op of ops.h); the cpu backend forwards to them.
#pragma once
#include "../ops.h"

#define EET_DECLARE_CPU_OP(name, Args) void op_##name(const Args& a);

namespace eet::cpu {
EET_OPS(EET_DECLARE_CPU_OP)
}

#undef EET_DECLARE_CPU_OP

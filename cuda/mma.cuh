// Tensor-core fragment helpers: one warp-wide D = A·B + C of shape m16n8k16, fp16 or bf16 inputs, fp32
// accumulators (PTX `mma.sync.aligned.m16n8k16.row.col.f32.{f16,bf16}.{f16,bf16}.f32`, sm_80+).
//
// Per-lane fragment layout (PTX ISA, "Matrix Fragments for mma.m16n8k16 with floating point type"), with
// g = lane >> 2 (groupID) and t = lane % 4 (threadID_in_group). A 32-bit register holds two 16-bit elements,
// the lower-indexed one in the low half.
//   A (16 x 16, row-major), a[4]:  a[0] = A[g][2t, 2t+1]      a[1] = A[g+8][2t, 2t+1]
//                                  a[2] = A[g][2t+8, 2t+9]    a[3] = A[g+8][2t+8, 2t+9]
//   B (16 x 8, K x N, "col"), b[2]: b[0] = B[2t, 2t+1][g]      b[1] = B[2t+8, 2t+9][g]
//   C/D (16 x 8, fp32), d[4]:      d[0], d[1] = D[g][2t, 2t+1]  d[2], d[3] = D[g+8][2t, 2t+1]
// For y = x·Wᵀ with W stored (N, K) row-major, B[k][n] = W[n][k]: a B register is two K-adjacent elements of one
// W row, and an A register two K-adjacent elements of one x row.
//
// nvcc: inline PTX (compiled for __CUDA_ARCH__ >= 800 only; older device code traps). Host (emu) build: an
// emulated twin that is a warp collective: every lane deposits its fragments, the last lane to arrive rebuilds
// A, B and C from all 32 lanes with the layout above, multiplies in fp32, and hands each lane its own d[4].
// So the layout logic is exercised by every emu test that runs a tensor-core kernel.
#pragma once
#include <cstring>
#include <type_traits>

#include "common.cuh"

#if !defined(__CUDACC__)
#include "../engine/half.h"
#endif

namespace EET_KNS {

// The 16 raw bits of a half / bfloat16 value.
template <typename T>
__device__ __forceinline__ uint32_t half_bits(T v) {
  static_assert(sizeof(T) == 2, "16-bit types only");
  uint16_t u;
  memcpy(&u, &v, 2);
  return u;
}

#if !defined(__CUDACC__)
namespace mma_emu {

struct LaneIn {
  uint32_t a[4];
  uint32_t b[2];
  float c[4];
};

template <bool BF16>
inline float elem(uint32_t reg, int half) {
  const uint16_t h = uint16_t(half ? reg >> 16 : reg & 0xffffu);
  return BF16 ? eet::bf16_to_f32(h) : eet::f16_to_f32(h);
}

// Runs by the last lane to arrive: all_in holds 32 LaneIn, all_out receives 32 float[4].
template <bool BF16>
void m16n8k16(const unsigned char* all_in, unsigned char* all_out, void*) {
  float A[16][16], B[16][8], C[16][8];
  for (int lane = 0; lane < 32; ++lane) {
    LaneIn in;
    memcpy(&in, all_in + lane * sizeof(LaneIn), sizeof(LaneIn));
    const int g = lane >> 2, t = lane & 3;
    for (int r = 0; r < 4; ++r) {
      for (int h = 0; h < 2; ++h) A[g + (r & 1) * 8][2 * t + h + (r >> 1) * 8] = elem<BF16>(in.a[r], h);
    }
    for (int r = 0; r < 2; ++r) {
      for (int h = 0; h < 2; ++h) B[2 * t + h + r * 8][g] = elem<BF16>(in.b[r], h);
    }
    for (int i = 0; i < 4; ++i) C[g + (i >> 1) * 8][2 * t + (i & 1)] = in.c[i];
  }
  for (int lane = 0; lane < 32; ++lane) {
    const int g = lane >> 2, t = lane & 3;
    float d[4];
    for (int i = 0; i < 4; ++i) {
      const int row = g + (i >> 1) * 8, col = 2 * t + (i & 1);
      float s = C[row][col];
      for (int k = 0; k < 16; ++k) s += A[row][k] * B[k][col];
      d[i] = s;
    }
    memcpy(all_out + lane * sizeof(d), d, sizeof(d));
  }
}

}  // namespace mma_emu
#endif

// d += A·B for one m16n8k16 tile; T is __half or __nv_bfloat16. All 32 lanes of the warp must call it together.
template <typename T>
__device__ __forceinline__ void mma_m16n8k16(float (&d)[4], const uint32_t (&a)[4], const uint32_t (&b)[2]) {
  constexpr bool kBf16 = std::is_same<T, __nv_bfloat16>::value;
  static_assert(kBf16 || std::is_same<T, __half>::value, "mma_m16n8k16: __half or __nv_bfloat16");
#if defined(__CUDACC__)
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  if constexpr (kBf16) {
    asm volatile(
        "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, "
        "{%0, %1, %2, %3};\n"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
  } else {
    asm volatile(
        "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, "
        "{%0, %1, %2, %3};\n"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
  }
#elif defined(__CUDA_ARCH__)
  __trap();  // tensor-core kernels are launched on sm_80+ only
#endif
#else
  mma_emu::LaneIn in;
  memcpy(in.a, a, sizeof(in.a));
  memcpy(in.b, b, sizeof(in.b));
  memcpy(in.c, d, sizeof(in.c));
  eet_emu::warp_collective(0xffffffffu, &in, sizeof(in), d, sizeof(d), &mma_emu::m16n8k16<kBf16>, nullptr,
                           "mma.m16n8k16");
#endif
}

}  // namespace EET_KNS

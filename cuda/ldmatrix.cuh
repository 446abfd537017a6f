// ldmatrix_x4: four 8 x 8 matrices of 16-bit elements from shared memory into mma fragment registers in one
// warp-wide instruction (PTX `ldmatrix.sync.aligned.m8n8.x4.shared.b16`), instead of four 32-bit loads per lane.
//
// Each lane supplies the address of one matrix row of 8 elements (16 bytes, 16-byte aligned): lanes 8j .. 8j + 7
// give rows 0..7 of matrix j, in any place in shared memory (rows need not be contiguous: a swizzled tile works).
// Lane L receives, per PTX ISA "Warp-level matrix load instruction: ldmatrix" (no .trans):
//   r[j] = matrix j's elements (row L / 4, columns 2 (L % 4) and 2 (L % 4) + 1), the lower column in the low half
// which is the layout of one 32-bit register of an mma.m16n8k16 A or B fragment (cuda/mma.cuh): for a 16 x 16 A
// tile whose matrices are (rows 0-7, k 0-7), (rows 8-15, k 0-7), (rows 0-7, k 8-15), (rows 8-15, k 8-15), r is a[4];
// for W stored (N, K), matrices (n 0-7, k 0-7), (n 0-7, k 8-15) are b[2] of one n8 tile.
//
// nvcc: inline PTX (compiled for __CUDA_ARCH__ >= 800; older device code traps). Host (emu) build: a warp collective
// (eet_emu::warp_collective): each lane checks its row address (16-byte aligned, inside the block's dynamic shared
// memory, where the hardware faults otherwise) and deposits it; the last lane to arrive reads the 32 rows, rebuilds
// the four matrices and hands each lane its registers by the layout above. All 32 lanes must call it together.
#pragma once
#include <cstdint>
#include <cstdio>
#include <cstring>

#include "common.cuh"

namespace EET_KNS {

#if !defined(__CUDACC__)
namespace ldmatrix_emu {

// Runs on the last lane to arrive: all_in holds 32 row addresses, all_out receives 32 x uint32_t[4].
inline void x4(const unsigned char* all_in, unsigned char* all_out, void*) {
  uint16_t m[4][8][8];  // [matrix][row][column]
  for (int lane = 0; lane < 32; ++lane) {
    const void* row;
    std::memcpy(&row, all_in + lane * sizeof(row), sizeof(row));
    std::memcpy(m[lane / 8][lane % 8], row, 16);
  }
  for (int lane = 0; lane < 32; ++lane) {
    uint32_t r[4];
    for (int j = 0; j < 4; ++j) {
      const uint16_t* e = &m[j][lane / 4][2 * (lane % 4)];
      r[j] = uint32_t(e[0]) | (uint32_t(e[1]) << 16);
    }
    std::memcpy(all_out + lane * sizeof(r), r, sizeof(r));
  }
}

inline void check_row(const void* row) {
  const auto* base = static_cast<const unsigned char*>(dynamic_smem());
  const auto* p = static_cast<const unsigned char*>(row);
  const char* why = nullptr;
  if (reinterpret_cast<uintptr_t>(row) & 15u) why = "row address not 16-byte aligned";
  else if (!base || p < base || p + 16 > base + dynamic_smem_bytes()) why = "row outside the block's dynamic shared memory";
  if (!why) return;
  char msg[128];
  std::snprintf(msg, sizeof msg, "ldmatrix: %s (%p)", why, row);
  fault(msg);
}

}  // namespace ldmatrix_emu
#endif

__device__ __forceinline__ void ldmatrix_x4(uint32_t (&r)[4], const void* row) {
#if defined(__CUDACC__)
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  const unsigned s = static_cast<unsigned>(__cvta_generic_to_shared(row));
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0, %1, %2, %3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(s));
#elif defined(__CUDA_ARCH__)
  __trap();
#endif
#else
  ldmatrix_emu::check_row(row);
  eet_emu::warp_collective(0xffffffffu, &row, sizeof(row), r, sizeof(r), &ldmatrix_emu::x4, nullptr, "ldmatrix.x4");
#endif
}

}  // namespace EET_KNS

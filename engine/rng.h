// Counter-based random numbers for sampling: a pure function of (seed, step), so a token drawn on the device and
// the cpu reference draw the same u, any row can be replayed, and no generator state lives anywhere.
//   eet_rand_bits(seed, step)     -> uint32, two rounds of the splitmix64 finalizer (Steele et al.'s mixer with
//                                    Stafford's "variant 13" constants): seed is mixed first, then the step,
//                                    scaled by an odd constant, is folded in and mixed again; the high 32 bits
//   eet_rand_uniform(seed, step)  -> float in [0, 1) with 24 random bits (exactly representable, never 1.0)
// Part of the sampling contract (SampleArgs in ops.h), so it lives in engine/: the cpu reference
// (engine/cpu/sample.cpp) and the kernels (cuda/sample.cu) include this one definition. Plain integer arithmetic
// only: the same source compiles as host code (g++: cpu reference and emu backend) and, included from a .cu that
// nvcc compiles, as __host__ __device__ code, bit for bit. Needs nothing but <cstdint>.
#pragma once
#include <cstdint>

#if defined(__CUDACC__)
#define EET_HD __host__ __device__
#else
#define EET_HD
#endif

EET_HD inline uint64_t eet_mix64(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

EET_HD inline uint32_t eet_rand_bits(uint64_t seed, uint64_t step) {
  const uint64_t h = eet_mix64(seed + 0x9e3779b97f4a7c15ull);
  return uint32_t(eet_mix64(h ^ (step * 0xd1b54a32d192ed03ull + 0x632be59bd9b4e019ull)) >> 32);
}

EET_HD inline float eet_rand_uniform(uint64_t seed, uint64_t step) {
  return float(eet_rand_bits(seed, step) >> 8) * 0x1p-24f;
}

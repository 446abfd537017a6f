// 8 floats as a plain array: the vector type of the generic kernels (isa_generic.cpp), for any CPU the others do
// not serve (x86-64 without AVX2, ARM64, ...). Plain loops the compiler vectorises with what the target has
// (SSE2, Neon). Same interface and hsum pairing as vec_avx2.h. fma here is a multiply then an add (two roundings):
// consistent within these kernels, which is all the kernels rely on.
#pragma once
#include <cmath>
#include <cstdint>

#include "../half.h"

struct V {
  struct F {
    float v[8];
  };
  static constexpr int W = 8;
  static F zero() { return set1(0.0f); }
  static F set1(float x) {
    F r;
    for (int i = 0; i < 8; ++i) r.v[i] = x;
    return r;
  }
  static F load(const float* p) {
    F r;
    for (int i = 0; i < 8; ++i) r.v[i] = p[i];
    return r;
  }
  static F load_f16(const uint16_t* p) {
    F r;
    for (int i = 0; i < 8; ++i) r.v[i] = eet::f16_to_f32(p[i]);
    return r;
  }
  static F load_bf16(const uint16_t* p) {
    F r;
    for (int i = 0; i < 8; ++i) r.v[i] = eet::bf16_to_f32(p[i]);
    return r;
  }
  static F load_i8(const int8_t* p) {
    F r;
    for (int i = 0; i < 8; ++i) r.v[i] = float(p[i]);
    return r;
  }
  static void store(float* p, F a) {
    for (int i = 0; i < 8; ++i) p[i] = a.v[i];
  }
#define EET_GENERIC_BINARY(name, expr)   \
  static F name(F a, F b) {              \
    F r;                                 \
    for (int i = 0; i < 8; ++i) r.v[i] = expr; \
    return r;                            \
  }
  EET_GENERIC_BINARY(add, a.v[i] + b.v[i])
  EET_GENERIC_BINARY(sub, a.v[i] - b.v[i])
  EET_GENERIC_BINARY(mul, a.v[i] * b.v[i])
  EET_GENERIC_BINARY(div, a.v[i] / b.v[i])
  EET_GENERIC_BINARY(max, a.v[i] > b.v[i] ? a.v[i] : b.v[i])
#undef EET_GENERIC_BINARY
  static F fma(F a, F b, F c) {
    F r;
    for (int i = 0; i < 8; ++i) r.v[i] = a.v[i] * b.v[i] + c.v[i];
    return r;
  }
  static float fmas(float a, float b, float c) { return a * b + c; }
  static float hsum(F a) {
    float b[4];
    for (int i = 0; i < 4; ++i) b[i] = a.v[i] + a.v[i + 4];
    const float c0 = b[0] + b[2], c1 = b[1] + b[3];
    return c0 + c1;
  }
  static float hmax(F a) {
    float m = a.v[0];
    for (int i = 1; i < 8; ++i) m = a.v[i] > m ? a.v[i] : m;
    return m;
  }
  static F mask_from(F a, int n) {
    for (int i = 0; i < 8; ++i)
      if (i >= n) a.v[i] = -INFINITY;
    return a;
  }
  static F exp(F a) {
    for (int i = 0; i < 8; ++i) a.v[i] = std::exp(a.v[i]);
    return a;
  }
  static float f16_to_f32(uint16_t h) { return eet::f16_to_f32(h); }
  static uint16_t f32_to_f16(float f) { return eet::f32_to_f16(f); }
};

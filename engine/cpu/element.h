// Element access for the cpu reference ops: read any float dtype as double, write rounded once to the dtype.
#pragma once
#include <cstdint>

#include "../half.h"
#include "../ops.h"

namespace eet::cpu {

inline double load(DType t, const void* p, int64_t i) {
  switch (t) {
    case DType::F32: return double(static_cast<const float*>(p)[i]);
    case DType::F16: return double(f16_to_f32(static_cast<const uint16_t*>(p)[i]));
    case DType::BF16: return double(bf16_to_f32(static_cast<const uint16_t*>(p)[i]));
    case DType::I32: return double(static_cast<const int32_t*>(p)[i]);
    case DType::I8: return double(static_cast<const int8_t*>(p)[i]);
  }
  return 0;
}

inline void store(DType t, void* p, int64_t i, double v) {
  switch (t) {
    case DType::F32: static_cast<float*>(p)[i] = float(v); break;
    case DType::F16: static_cast<uint16_t*>(p)[i] = f32_to_f16(float(v)); break;
    case DType::BF16: static_cast<uint16_t*>(p)[i] = f32_to_bf16(float(v)); break;
    case DType::I32: static_cast<int32_t*>(p)[i] = int32_t(v); break;
    case DType::I8: static_cast<int8_t*>(p)[i] = int8_t(v); break;
  }
}

// Rounds v to what dtype t can hold (values stored and read back).
inline double round_to(DType t, double v) {
  switch (t) {
    case DType::F16: return f16_to_f32(f32_to_f16(float(v)));
    case DType::BF16: return bf16_to_f32(f32_to_bf16(float(v)));
    case DType::F32: return float(v);
    default: return v;
  }
}

}  // namespace eet::cpu

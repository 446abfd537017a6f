// What the GEMM sources share: the kernels' parameter structs, element loads, and the decode-side entry points.
// (The decode kernels' input prologue, ops.h GemmPrologue, is cuda/gemm_xform.cuh.)
//   cuda/gemm.cu     op_gemm:     M <= kDecodeMaxM or a prologue -> gemm_decode (cuda/gemv.cu), else tiled kernels
//   cuda/gemm_q8.cu  op_gemm_q8:  M <= kDecodeMaxM or a prologue -> gemm_q8_decode (cuda/gemv_q8.cu), else tiled
// The decode kernels live in their own files (file size, and each of those files owns a split-K scratch buffer:
// cuda/splitk.cuh); they are reached through the non-template overloads below.
#pragma once
#include <cstring>
#include <type_traits>

#include "common.cuh"

namespace EET_KNS {

template <typename T>
struct GemmParams {
  const T* x;         // (M, K), row stride ldx; SwiGlu prologue: (M, 2K) gate|up
  const T* w;         // (N, K)
  const T* bias;      // (N) or nullptr
  const T* residual;  // (M, N), row stride ldy, or nullptr; may alias y
  T* y;               // (M, N), row stride ldy
  int64_t m, n, k, ldx, ldy;
  eet::GemmXForm xform;  // input prologue (ops.h GemmPrologue; decode kernels only, cuda/gemm_xform.cuh)
  const T* gain;         // (K) RmsNorm's weight, or nullptr
  float eps;             // RmsNorm's eps
};

template <typename T>
struct GemmQ8Params {
  const T* x;              // (M, K), row stride ldx; SwiGlu prologue: (M, 2K) gate|up
  const int8_t* wq;        // (N, K)
  const uint16_t* wscale;  // (N, K / 32) float16 bits
  const T* bias;           // (N) or nullptr
  const T* residual;       // (M, N), row stride ldy, or nullptr; may alias y
  T* y;                    // (M, N), row stride ldy
  int64_t m, n, k, ldx, ldy;
  eet::GemmXForm xform;    // as GemmParams
  const T* gain;
  float eps;
};

// The kernels' view of the op's arguments.
template <typename T>
GemmParams<T> gemm_params(const eet::GemmArgs& a) {
  return {static_cast<const T*>(a.x), static_cast<const T*>(a.w), static_cast<const T*>(a.bias),
          static_cast<const T*>(a.residual), static_cast<T*>(a.y), a.m, a.n, a.k, a.ldx, a.ldy,
          a.xform.kind, static_cast<const T*>(a.xform.gain), a.xform.eps};
}

template <typename T>
GemmQ8Params<T> gemm_q8_params(const eet::GemmQ8Args& a) {
  return {static_cast<const T*>(a.x), a.wq, a.wscale, static_cast<const T*>(a.bias),
          static_cast<const T*>(a.residual), static_cast<T*>(a.y), a.m, a.n, a.k, a.ldx, a.ldy,
          a.xform.kind, static_cast<const T*>(a.xform.gain), a.xform.eps};
}

constexpr int kGemmThreads = 256;  // every GEMM / GEMV kernel

// The dtype code of a kernel element type.
template <typename T>
constexpr eet::DType kDType = std::is_same<T, float>::value    ? eet::DType::F32
                              : std::is_same<T, __half>::value ? eet::DType::F16
                                                               : eet::DType::BF16;

// The largest M served by the decode kernels (ops.h gemm_decode_max_m): f16 / bf16 have the tensor-core skinny
// GEMM up to 64 rows (one pass over the weights for the whole batch); f32 has the SIMT GEMV up to 16. A call with an
// input prologue goes to them whatever its M (validate() keeps it to 64 rows; f32 runs its GEMV per 16 of them).
template <typename T>
constexpr int64_t kDecodeMaxM = eet::gemm_decode_max_m(kDType<T>);

void gemm_decode(const GemmParams<float>& p, eet::Stream stream);
void gemm_decode(const GemmParams<__half>& p, eet::Stream stream);
void gemm_decode(const GemmParams<__nv_bfloat16>& p, eet::Stream stream);
void gemm_q8_decode(const GemmQ8Params<float>& p, eet::Stream stream);
void gemm_q8_decode(const GemmQ8Params<__half>& p, eet::Stream stream);
void gemm_q8_decode(const GemmQ8Params<__nv_bfloat16>& p, eet::Stream stream);

// 16 raw bytes (16 / sizeof(T) elements) as fp32.
template <typename T>
__device__ __forceinline__ void unpack16_f32(const uint4& u, float (&v)[16 / sizeof(T)]) {
  constexpr int VEC = 16 / sizeof(T);
  T e[VEC];
  memcpy(static_cast<void*>(e), &u, 16);
#pragma unroll
  for (int i = 0; i < VEC; ++i) v[i] = to_f32(e[i]);
}

// 16 bytes (16 / sizeof(T) elements) at a 16-byte aligned address, as fp32.
template <typename T>
__device__ __forceinline__ void load16_f32(const T* src, float (&v)[16 / sizeof(T)]) {
  unpack16_f32<T>(*reinterpret_cast<const uint4*>(src), v);
}

// The float16 scale wscale[i] as fp32.
__device__ __forceinline__ float q8_scale(const uint16_t* wscale, int64_t i) {
  const uint16_t bits = wscale[i];
  __half h;
  memcpy(static_cast<void*>(&h), &bits, 2);
  return __half2float(h);
}

}  // namespace EET_KNS

// SIMT emulator ("emu"): what cuda/*.cu kernel sources see instead of the CUDA headers when a host C++ compiler
// builds them (cuda/common.cuh includes this file when __CUDACC__ is not defined). It must not include any CUDA
// toolkit header: the addon also builds on machines without CUDA.
//
// Execution model (details in cuda/emu/emu.cpp):
//   * launch() runs the grid's blocks one after another (x fastest, then y, z) on the calling OS thread;
//   * each thread of a block is a fiber; a fiber runs until it parks at a barrier or warp collective, or returns;
//   * __syncthreads() releases when every thread of the block waits at the same call site; a barrier that can never
//     release (threads exited or wait elsewhere) fails the launch with eet::Error(ErrorCode::Kernel) at once;
//   * warp collectives are one rendezvous per warp and mask, following PTX's source-lane rules;
//   * __shared__ is `static` (correct because blocks run one at a time); dynamic shared memory is a fresh buffer
//     filled with 0xFF bytes (NaN) before each block; one process-wide mutex serialises launches.
//
// Build (emu objects: cuda/emu/{emu,warp,fiber}.cpp and every cuda/*.cu compiled as C++ with `-x c++`):
//   -std=c++17 -fstack-clash-protection (a large local array must hit a fiber's guard page, not jump past it into
//   another fiber's stack) -fno-strict-aliasing (kernels type-pun through float4/uint4 pointers) -Wno-unknown-pragmas
//   (#pragma unroll); link -pthread (and -ldl on glibc < 2.34, for dladdr).
//
// Kernel code must live in namespace EET_KNS (= eet_emu here): the intrinsics below are declared in namespace
// eet_emu rather than the global namespace because glibc's <math.h> already declares `__expf`, `__logf`, ...
// (and C23 libcs add `rsqrtf`), which would clash with global host shims.
#pragma once

#if defined(__CUDACC__)
#error "cuda/emu/emu.h is for host compilers only; nvcc builds use the CUDA headers (see cuda/common.cuh)"
#endif

#include <atomic>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <functional>
#include <memory>  // before the __noinline__ macro: libstdc++'s shared_ptr uses __attribute__((__noinline__))
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include "../../engine/error.h"
#include "../../engine/half.h"
#include "../../engine/ops.h"

// ---- CUDA qualifiers -------------------------------------------------------------------------------------------
// __restrict__ needs nothing: GCC and Clang accept it natively.
#define __global__
#define __device__
#define __host__
#define __forceinline__ inline  // plain inline: always_inline fails hard where GCC cannot inline (e.g. -O0 + recursion)
#define __noinline__ __attribute__((noinline))
#define __launch_bounds__(...)
#define __align__(n) alignas(n)
#define __shared__ static  // per block is per launch step: blocks run one at a time, so one instance suffices

// ---- index and vector types (CUDA's sizes and alignment) -------------------------------------------------------
struct uint3 { unsigned x, y, z; };
struct dim3 {
  unsigned x, y, z;
  constexpr dim3(unsigned vx = 1, unsigned vy = 1, unsigned vz = 1) : x(vx), y(vy), z(vz) {}
  constexpr dim3(uint3 v) : x(v.x), y(v.y), z(v.z) {}
  constexpr operator uint3() const { return uint3{x, y, z}; }
};

#define EET_EMU_VEC2(name, T, align) struct alignas(align) name { T x, y; };
#define EET_EMU_VEC3(name, T) struct name { T x, y, z; };
#define EET_EMU_VEC4(name, T, align) struct alignas(align) name { T x, y, z, w; };
EET_EMU_VEC2(char2, signed char, 2) EET_EMU_VEC2(uchar2, unsigned char, 2)
EET_EMU_VEC4(char4, signed char, 4) EET_EMU_VEC4(uchar4, unsigned char, 4)
EET_EMU_VEC2(short2, short, 4) EET_EMU_VEC2(ushort2, unsigned short, 4)
EET_EMU_VEC4(short4, short, 8) EET_EMU_VEC4(ushort4, unsigned short, 8)
EET_EMU_VEC2(int2, int, 8) EET_EMU_VEC3(int3, int) EET_EMU_VEC4(int4, int, 16)
EET_EMU_VEC2(uint2, unsigned, 8) EET_EMU_VEC4(uint4, unsigned, 16)
EET_EMU_VEC2(float2, float, 8) EET_EMU_VEC3(float3, float) EET_EMU_VEC4(float4, float, 16)
EET_EMU_VEC2(double2, double, 16) EET_EMU_VEC2(longlong2, long long, 16) EET_EMU_VEC2(ulonglong2, unsigned long long, 16)
#undef EET_EMU_VEC2
#undef EET_EMU_VEC3
#undef EET_EMU_VEC4

inline char4 make_char4(signed char x, signed char y, signed char z, signed char w) { return {x, y, z, w}; }
inline uchar4 make_uchar4(unsigned char x, unsigned char y, unsigned char z, unsigned char w) { return {x, y, z, w}; }
inline short2 make_short2(short x, short y) { return {x, y}; }
inline ushort2 make_ushort2(unsigned short x, unsigned short y) { return {x, y}; }
inline int2 make_int2(int x, int y) { return {x, y}; }
inline int3 make_int3(int x, int y, int z) { return {x, y, z}; }
inline int4 make_int4(int x, int y, int z, int w) { return {x, y, z, w}; }
inline uint2 make_uint2(unsigned x, unsigned y) { return {x, y}; }
inline uint3 make_uint3(unsigned x, unsigned y, unsigned z) { return {x, y, z}; }
inline uint4 make_uint4(unsigned x, unsigned y, unsigned z, unsigned w) { return {x, y, z, w}; }
inline float2 make_float2(float x, float y) { return {x, y}; }
inline float3 make_float3(float x, float y, float z) { return {x, y, z}; }
inline float4 make_float4(float x, float y, float z, float w) { return {x, y, z, w}; }
inline double2 make_double2(double x, double y) { return {x, y}; }
inline longlong2 make_longlong2(long long x, long long y) { return {x, y}; }

// ---- built-in variables ------------------------------------------------------------------------------------------
// Plain globals (defined in emu.cpp), written by the scheduler before it resumes a fiber. They are not const: the
// compiler must reload them after every barrier or collective, which are opaque calls into emu.cpp.
extern uint3 threadIdx;
extern uint3 blockIdx;
extern dim3 blockDim;
extern dim3 gridDim;
constexpr int warpSize = 32;

// ---- 16-bit floats ---------------------------------------------------------------------------------------------
// Storage-only structs; conversions round to nearest even (engine/half.h). Like CUDA on the host they convert
// implicitly to and from float, so arithmetic happens in fp32.
struct alignas(2) __half {
  unsigned short __x;
  __half() = default;
  __half(float f) : __x(eet::f32_to_f16(f)) {}
  operator float() const { return eet::f16_to_f32(__x); }
};
struct alignas(2) __nv_bfloat16 {
  unsigned short __x;
  __nv_bfloat16() = default;
  __nv_bfloat16(float f) : __x(eet::f32_to_bf16(f)) {}
  operator float() const { return eet::bf16_to_f32(__x); }
};
struct alignas(4) __half2 { __half x, y; };
struct alignas(4) __nv_bfloat162 { __nv_bfloat16 x, y; };
using half = __half;
using half2 = __half2;
using nv_bfloat16 = __nv_bfloat16;
using nv_bfloat162 = __nv_bfloat162;

// ---- the emulator's own API ------------------------------------------------------------------------------------
namespace eet_emu {

// Scheduling order of the threads of a block and of the blocks of a grid: forward (thread 0 and block 0 first, the
// default) or reverse (last thread and last block first). A kernel race, or a dependence on which block runs or
// finishes first, shows up as a difference between the two. The default comes from EET_EMU_ORDER=reverse at first use.
void set_reverse_order(bool reverse);
bool reverse_order();

// The emulated device (eet::set_emu_target): its SM count, which launchers size grids and split-K by (as
// eet_cuda::sm_count() on a GPU: 132 by default, an H100 SXM or H200, so they decide as they would there), and its per-block
// opt-in limit of dynamic shared memory (a launch above it fails; launchers read it to pick tiles that fit, as they
// read cudaDevAttrMaxSharedMemoryPerBlockOptin on a GPU). Defaults: sm_90's, 132 SMs and 227 KiB.
void set_target(int sm_count, size_t smem_per_block_optin);
int sm_count();
size_t smem_per_block_optin();

// For the emulated twins of inline PTX (cuda/async_copy.cuh, cuda/ldmatrix.cuh; defined in cuda/emu/ptx.cpp):
//   dynamic_smem_bytes()  the running block's dynamic shared memory size, so a twin can check that its shared
//                         operand lies inside it (the hardware faults on an address outside the window)
//   fault(what)           fails the launch with eet::Error(ErrorCode::Kernel) naming `what` and the thread, as the
//                         hardware fails a launch on a misaligned or out-of-window address. It never returns and
//                         the calling fiber's frames are never unwound: pass a plain C string (a char buffer), not
//                         a std::string temporary that would leak.
size_t dynamic_smem_bytes();
[[noreturn]] void fault(const char* what);

// "Device" memory: host memory of the exact size (64-byte aligned) so AddressSanitizer's redzone sits right after
// it. Size 0 gives a unique non-null pointer. nullptr on failure.
void* dev_malloc(size_t bytes);
void dev_free(void* p);

// The current block's dynamic shared memory (see EXTERN_SHARED). 16-byte aligned; 0xFF bytes at block start.
void* dynamic_smem();

// Generic warp collective, the emulated twin of warp-wide inline PTX (mma.sync, ldmatrix, movmatrix...).
// Every lane named in `mask` calls it with its own `in` (in_bytes) and `out` (out_bytes) buffers. When the last
// lane arrives, fn runs once with all 32 lanes' inputs (lane L's at all_in + L * in_bytes; lanes outside the mask
// are zero) and writes all 32 outputs (lane L's at all_out + L * out_bytes); then each lane in the mask receives
// its own output in `out`. fn, in_bytes and out_bytes must be the same on every lane; ctx is taken from the lowest
// lane in the mask (make it warp-uniform). `site` names the caller in error messages.
//
// Writing an mma.sync twin, e.g. m16n8k16 f16 -> f32 (PTX ISA "Matrix Fragments for mma.m16n8k16"):
//   struct MmaIn { unsigned a[4], b[2]; float c[4]; };           // this lane's fragment registers
//   static void mma_m16n8k16(const unsigned char* all_in, unsigned char* all_out, void*) {
//     auto in = [&](int lane) { return reinterpret_cast<const MmaIn*>(all_in)[lane]; };
//     // rebuild A (16x16), B (16x8), C (16x8) from every lane's registers using the ISA's layout, e.g. for A:
//     //   groupID = lane >> 2, tid_in_group = lane % 4; a[0] holds rows groupID, cols tid_in_group*2 + {0,1} ...
//     // compute D = A*B + C in fp32, then scatter D back with C's layout into all_out as float[4] per lane.
//   }
//   MmaIn in = {...}; float d[4];
//   eet_emu::warp_collective(0xffffffffu, &in, sizeof in, d, sizeof d, mma_m16n8k16, nullptr, "mma.m16n8k16");
// Place it under `#ifndef __CUDA_ARCH__` next to the asm() version so both builds share the caller.
using CollectiveFn = void (*)(const unsigned char* all_in, unsigned char* all_out, void* ctx);
void warp_collective(unsigned mask, const void* in, size_t in_bytes, void* out, size_t out_bytes, CollectiveFn fn,
                     void* ctx, const char* site);

namespace detail {

enum class WarpOp : int { Sync, ShflIdx, ShflUp, ShflDown, ShflXor, Ballot, Any, All, MatchAny, Generic };

// One lane's part in a warp collective. It lives on the calling fiber's stack while the lane is parked, so the lane
// completing the rendezvous reads every lane's input and writes every lane's output directly.
struct Arrival {
  WarpOp op;
  unsigned mask;
  const void* in;
  void* out;
  unsigned in_bytes, out_bytes;
  int arg;    // srcLane / delta / laneMask / predicate
  int width;  // shuffle segment width
  CollectiveFn fn;
  void* ctx;
  const char* file;
  int line;
};

void warp_arrive(Arrival& a);
int block_sync(const char* file, int line, int kind, int pred);  // kind: 0 plain, 1 count, 2 and, 3 or

struct KernelInfo {
  void (*invoke)(const void* call);  // runs the kernel with the captured arguments (once per thread)
  const void* call;                  // the captured kernel pointer + arguments
  const void* address;               // the kernel's address, to name it in messages
  const char* signature;             // __PRETTY_FUNCTION__ of launch(), the fallback name
};
void run_launch(const KernelInfo& k, dim3 grid, dim3 block, size_t smem);

template <typename... P>
struct KernelCall {
  void (*fn)(P...);
  std::tuple<P...> args;
  // Each thread's kernel parameters are copies of the captured ones, as in CUDA.
  static void invoke(const void* self) {
    const auto* c = static_cast<const KernelCall*>(self);
    std::apply(c->fn, c->args);
  }
};

// Runs one captured call: the launch proper, or a replay of a recorded one.
template <typename... P>
void run_call(const KernelCall<P...>& call, dim3 grid, dim3 block, size_t smem) {
  KernelInfo info{&KernelCall<P...>::invoke, &call, nullptr, __PRETTY_FUNCTION__};
  std::memcpy(&info.address, &call.fn, sizeof(void*));  // function -> object pointer without a cast warning
  run_launch(info, grid, block, smem);
}

// Device-graph capture (the emu backend's begin_capture / end_capture): while this thread has a recording open,
// launch() appends the launch, its arguments copied by value as CUDA's stream capture copies kernel parameters, to
// the recording instead of running it; replaying the recording runs the launches in order.
using RecordedLaunch = std::function<void()>;
bool recording();
void record(RecordedLaunch launch);

template <typename T>
inline T warp_value_op(WarpOp op, unsigned mask, const T& var, int arg, int width, const char* file, int line) {
  static_assert(std::is_trivially_copyable<T>::value && sizeof(T) <= 16,
                "warp shuffles take trivially copyable values of at most 16 bytes");
  T out;
  Arrival a{op, mask, &var, &out, unsigned(sizeof(T)), unsigned(sizeof(T)), arg, width, nullptr, nullptr, file, line};
  warp_arrive(a);
  return out;
}

inline unsigned warp_vote(WarpOp op, unsigned mask, int pred, const char* file, int line) {
  unsigned out = 0;
  Arrival a{op, mask, nullptr, &out, 0, unsigned(sizeof out), pred ? 1 : 0, 32, nullptr, nullptr, file, line};
  warp_arrive(a);
  return out;
}

}  // namespace detail

// Runs `kernel` over grid x block threads with `smem` bytes of dynamic shared memory. Same signature as
// eet_cuda::launch; args are converted to the kernel's parameter types and captured by value. Throws
// eet::Error(ErrorCode::Kernel) for a bad configuration or a kernel bug found while running. `stream` is ignored:
// the launch completes before it returns.
template <typename... P, typename... A>
inline void launch(void (*kernel)(P...), dim3 grid, dim3 block, size_t smem, eet::Stream stream, A&&... args) {
  (void)stream;
  detail::KernelCall<P...> call{kernel, std::tuple<P...>(P(std::forward<A>(args))...)};
  if (detail::recording()) {
    detail::record([call = std::move(call), grid, block, smem] { detail::run_call(call, grid, block, smem); });
    return;
  }
  detail::run_call(call, grid, block, smem);
}

// The recording of this thread's launches between begin_recording() and end_recording() (detail::recording()).
// begin_recording() throws ERR_INTERNAL when one is already open on this thread.
void begin_recording();
std::vector<detail::RecordedLaunch> end_recording();

}  // namespace eet_emu

#define EXTERN_SHARED(T, name) T* name = reinterpret_cast<T*>(::eet_emu::dynamic_smem())

// ---- barriers --------------------------------------------------------------------------------------------------
#define __syncthreads() ((void)::eet_emu::detail::block_sync(__FILE__, __LINE__, 0, 1))
#define __syncthreads_count(p) ::eet_emu::detail::block_sync(__FILE__, __LINE__, 1, (p) ? 1 : 0)
#define __syncthreads_and(p) ::eet_emu::detail::block_sync(__FILE__, __LINE__, 2, (p) ? 1 : 0)
#define __syncthreads_or(p) ::eet_emu::detail::block_sync(__FILE__, __LINE__, 3, (p) ? 1 : 0)

namespace eet_emu {

// ---- warp collectives (explicit masks; __builtin_FILE/LINE name the call site in error messages) ---------------
inline void __syncwarp(unsigned mask = 0xffffffffu, const char* file = __builtin_FILE(), int line = __builtin_LINE()) {
  detail::Arrival a{detail::WarpOp::Sync, mask, nullptr, nullptr, 0, 0, 0, 32, nullptr, nullptr, file, line};
  detail::warp_arrive(a);
}
template <typename T>
inline T __shfl_sync(unsigned mask, T var, int srcLane, int width = warpSize, const char* file = __builtin_FILE(),
                     int line = __builtin_LINE()) {
  return detail::warp_value_op(detail::WarpOp::ShflIdx, mask, var, srcLane, width, file, line);
}
template <typename T>
inline T __shfl_up_sync(unsigned mask, T var, unsigned delta, int width = warpSize,
                        const char* file = __builtin_FILE(), int line = __builtin_LINE()) {
  return detail::warp_value_op(detail::WarpOp::ShflUp, mask, var, int(delta), width, file, line);
}
template <typename T>
inline T __shfl_down_sync(unsigned mask, T var, unsigned delta, int width = warpSize,
                          const char* file = __builtin_FILE(), int line = __builtin_LINE()) {
  return detail::warp_value_op(detail::WarpOp::ShflDown, mask, var, int(delta), width, file, line);
}
template <typename T>
inline T __shfl_xor_sync(unsigned mask, T var, int laneMask, int width = warpSize,
                         const char* file = __builtin_FILE(), int line = __builtin_LINE()) {
  return detail::warp_value_op(detail::WarpOp::ShflXor, mask, var, laneMask, width, file, line);
}
inline unsigned __ballot_sync(unsigned mask, int pred, const char* file = __builtin_FILE(),
                              int line = __builtin_LINE()) {
  return detail::warp_vote(detail::WarpOp::Ballot, mask, pred, file, line);
}
inline int __any_sync(unsigned mask, int pred, const char* file = __builtin_FILE(), int line = __builtin_LINE()) {
  return int(detail::warp_vote(detail::WarpOp::Any, mask, pred, file, line));
}
inline int __all_sync(unsigned mask, int pred, const char* file = __builtin_FILE(), int line = __builtin_LINE()) {
  return int(detail::warp_vote(detail::WarpOp::All, mask, pred, file, line));
}
template <typename T>
inline unsigned __match_any_sync(unsigned mask, T value, const char* file = __builtin_FILE(),
                                 int line = __builtin_LINE()) {
  static_assert(std::is_integral<T>::value || std::is_floating_point<T>::value, "__match_any_sync takes a scalar");
  unsigned out = 0;
  detail::Arrival a{detail::WarpOp::MatchAny, mask, &value, &out, unsigned(sizeof(T)), unsigned(sizeof out),
                    0, 32, nullptr, nullptr, file, line};
  detail::warp_arrive(a);
  return out;
}

// ---- fences (one OS thread runs everything: a compiler barrier is all that is needed) -------------------------
inline void __threadfence() { std::atomic_signal_fence(std::memory_order_seq_cst); }
inline void __threadfence_block() { std::atomic_signal_fence(std::memory_order_seq_cst); }

// ---- 16-bit float conversions ----------------------------------------------------------------------------------
inline float __half2float(__half h) { return eet::f16_to_f32(h.__x); }
inline __half __ushort_as_half(unsigned short u) { __half h; h.__x = u; return h; }
inline unsigned short __half_as_ushort(__half h) { return h.__x; }
inline __half __float2half(float f) { return __ushort_as_half(eet::f32_to_f16(f)); }
inline __half __float2half_rn(float f) { return __float2half(f); }
inline float __bfloat162float(__nv_bfloat16 h) { return eet::bf16_to_f32(h.__x); }
inline __nv_bfloat16 __ushort_as_bfloat16(unsigned short u) { __nv_bfloat16 h; h.__x = u; return h; }
inline unsigned short __bfloat16_as_ushort(__nv_bfloat16 h) { return h.__x; }
inline __nv_bfloat16 __float2bfloat16(float f) { return __ushort_as_bfloat16(eet::f32_to_bf16(f)); }
inline __nv_bfloat16 __float2bfloat16_rn(float f) { return __float2bfloat16(f); }
inline __half2 __floats2half2_rn(float a, float b) { return {__float2half(a), __float2half(b)}; }
inline __half2 __float2half2_rn(float a) { return {__float2half(a), __float2half(a)}; }
inline __half2 __halves2half2(__half a, __half b) { return {a, b}; }
inline float2 __half22float2(__half2 h) { return {__half2float(h.x), __half2float(h.y)}; }
inline float __low2float(__half2 h) { return __half2float(h.x); }
inline float __high2float(__half2 h) { return __half2float(h.y); }
inline __nv_bfloat162 __floats2bfloat162_rn(float a, float b) { return {__float2bfloat16(a), __float2bfloat16(b)}; }
inline float2 __bfloat1622float2(__nv_bfloat162 h) { return {__bfloat162float(h.x), __bfloat162float(h.y)}; }

// ---- float intrinsics (exact host math; a GPU's fast versions differ in the last bits) -------------------------
inline float rsqrtf(float x) { return 1.0f / std::sqrt(x); }
inline double rsqrt(double x) { return 1.0 / std::sqrt(x); }
inline float __expf(float x) { return std::exp(x); }
inline float __exp10f(float x) { return std::pow(10.0f, x); }
inline float __logf(float x) { return std::log(x); }
inline float __log2f(float x) { return std::log2(x); }
inline float __sinf(float x) { return std::sin(x); }
inline float __cosf(float x) { return std::cos(x); }
inline float __tanf(float x) { return std::tan(x); }
inline float __powf(float x, float y) { return std::pow(x, y); }
inline float __fdividef(float x, float y) { return x / y; }
inline float __frcp_rn(float x) { return 1.0f / x; }
inline float __fsqrt_rn(float x) { return std::sqrt(x); }
inline float __fmaf_rn(float a, float b, float c) { return std::fma(a, b, c); }
inline float __fadd_rn(float a, float b) { return a + b; }
inline float __fsub_rn(float a, float b) { return a - b; }
inline float __fmul_rn(float a, float b) { return a * b; }
inline float __saturatef(float x) { return x > 0.0f ? (x < 1.0f ? x : 1.0f) : 0.0f; }  // NaN -> 0 like CUDA

// ---- bit casts and integer intrinsics ----------------------------------------------------------------------------
template <typename To, typename From>
inline To emu_bit_cast(From f) { static_assert(sizeof(To) == sizeof(From), "size"); To t; std::memcpy(&t, &f, sizeof t); return t; }
inline float __int_as_float(int x) { return emu_bit_cast<float>(x); }
inline int __float_as_int(float x) { return emu_bit_cast<int>(x); }
inline float __uint_as_float(unsigned x) { return emu_bit_cast<float>(x); }
inline unsigned __float_as_uint(float x) { return emu_bit_cast<unsigned>(x); }
inline double __longlong_as_double(long long x) { return emu_bit_cast<double>(x); }
inline long long __double_as_longlong(double x) { return emu_bit_cast<long long>(x); }

inline int __popc(unsigned x) { return __builtin_popcount(x); }
inline int __popcll(unsigned long long x) { return __builtin_popcountll(x); }
inline int __clz(int x) { return x == 0 ? 32 : __builtin_clz(unsigned(x)); }
inline int __clzll(long long x) { return x == 0 ? 64 : __builtin_clzll((unsigned long long)x); }
inline int __ffs(int x) { return __builtin_ffs(x); }
inline int __ffsll(long long x) { return __builtin_ffsll(x); }
inline unsigned __brev(unsigned x) {
  x = ((x >> 1) & 0x55555555u) | ((x & 0x55555555u) << 1);
  x = ((x >> 2) & 0x33333333u) | ((x & 0x33333333u) << 2);
  x = ((x >> 4) & 0x0f0f0f0fu) | ((x & 0x0f0f0f0fu) << 4);
  return __builtin_bswap32(x);
}
inline unsigned long long __brevll(unsigned long long x) {
  return (static_cast<unsigned long long>(__brev(unsigned(x))) << 32) | __brev(unsigned(x >> 32));
}
inline unsigned __umulhi(unsigned a, unsigned b) { return unsigned((uint64_t(a) * b) >> 32); }
inline int __mulhi(int a, int b) { return int((int64_t(a) * b) >> 32); }
inline unsigned long long __umul64hi(unsigned long long a, unsigned long long b) {
  __extension__ typedef unsigned __int128 u128;  // __extension__: no -Wpedantic warning
  return static_cast<unsigned long long>((static_cast<u128>(a) * b) >> 64);
}
// 24-bit multiplies use the low 24 bits of each operand (sign-extended for __mul24).
inline int __mul24(int a, int b) {
  const int64_t sa = int64_t(uint64_t(uint32_t(a) << 8) << 32) >> 40, sb = int64_t(uint64_t(uint32_t(b) << 8) << 32) >> 40;
  return int(uint32_t(uint64_t(sa * sb)));
}
inline unsigned __umul24(unsigned a, unsigned b) { return (a & 0xffffffu) * (b & 0xffffffu); }

template <typename T>
inline T __ldg(const T* p) { return *p; }
template <typename T>
inline T __ldcg(const T* p) { return *p; }  // one OS thread, no L1: every load already sees every store

// ---- CUDA's min/max overloads (mixed signedness compares as unsigned, like CUDA) ------------------------------
#define EET_EMU_MINMAX(R, A, B)                                   \
  inline R min(A a, B b) { return static_cast<R>(a) < static_cast<R>(b) ? static_cast<R>(a) : static_cast<R>(b); } \
  inline R max(A a, B b) { return static_cast<R>(a) > static_cast<R>(b) ? static_cast<R>(a) : static_cast<R>(b); }
EET_EMU_MINMAX(int, int, int)
EET_EMU_MINMAX(unsigned, unsigned, unsigned)
EET_EMU_MINMAX(unsigned, int, unsigned)
EET_EMU_MINMAX(unsigned, unsigned, int)
EET_EMU_MINMAX(long, long, long)
EET_EMU_MINMAX(unsigned long, unsigned long, unsigned long)
EET_EMU_MINMAX(unsigned long, long, unsigned long)
EET_EMU_MINMAX(unsigned long, unsigned long, long)
EET_EMU_MINMAX(long long, long long, long long)
EET_EMU_MINMAX(unsigned long long, unsigned long long, unsigned long long)
EET_EMU_MINMAX(unsigned long long, long long, unsigned long long)
EET_EMU_MINMAX(unsigned long long, unsigned long long, long long)
#undef EET_EMU_MINMAX
inline float min(float a, float b) { return std::fmin(a, b); }
inline float max(float a, float b) { return std::fmax(a, b); }
inline double min(double a, double b) { return std::fmin(a, b); }
inline double max(double a, double b) { return std::fmax(a, b); }
inline double min(float a, double b) { return std::fmin(double(a), b); }
inline double max(float a, double b) { return std::fmax(double(a), b); }
inline double min(double a, float b) { return std::fmin(a, double(b)); }
inline double max(double a, float b) { return std::fmax(a, double(b)); }

// ---- atomics: one OS thread runs every fiber and a fiber only yields at barriers and collectives, so a plain
// read-modify-write is atomic. Each returns the old value, as in CUDA. -------------------------------------------
template <typename T, typename F>
inline T emu_rmw(T* p, F f) { T old = *p; *p = f(old); return old; }
inline int atomicAdd(int* p, int v) { return emu_rmw(p, [&](int o) { return int(unsigned(o) + unsigned(v)); }); }
inline unsigned atomicAdd(unsigned* p, unsigned v) { return emu_rmw(p, [&](unsigned o) { return o + v; }); }
inline unsigned long long atomicAdd(unsigned long long* p, unsigned long long v) {
  return emu_rmw(p, [&](unsigned long long o) { return o + v; });
}
inline float atomicAdd(float* p, float v) { return emu_rmw(p, [&](float o) { return o + v; }); }
inline double atomicAdd(double* p, double v) { return emu_rmw(p, [&](double o) { return o + v; }); }
inline int atomicSub(int* p, int v) { return emu_rmw(p, [&](int o) { return int(unsigned(o) - unsigned(v)); }); }
inline unsigned atomicSub(unsigned* p, unsigned v) { return emu_rmw(p, [&](unsigned o) { return o - v; }); }
#define EET_EMU_ATOMIC_MINMAX(T)                                                                  \
  inline T atomicMax(T* p, T v) { return emu_rmw(p, [&](T o) { return o > v ? o : v; }); }        \
  inline T atomicMin(T* p, T v) { return emu_rmw(p, [&](T o) { return o < v ? o : v; }); }
EET_EMU_ATOMIC_MINMAX(int)
EET_EMU_ATOMIC_MINMAX(unsigned)
EET_EMU_ATOMIC_MINMAX(long long)
EET_EMU_ATOMIC_MINMAX(unsigned long long)
#undef EET_EMU_ATOMIC_MINMAX
#define EET_EMU_ATOMIC_BITS(T)                                                                    \
  inline T atomicAnd(T* p, T v) { return emu_rmw(p, [&](T o) { return static_cast<T>(o & v); }); }            \
  inline T atomicOr(T* p, T v) { return emu_rmw(p, [&](T o) { return static_cast<T>(o | v); }); }             \
  inline T atomicXor(T* p, T v) { return emu_rmw(p, [&](T o) { return static_cast<T>(o ^ v); }); }
EET_EMU_ATOMIC_BITS(int)
EET_EMU_ATOMIC_BITS(unsigned)
EET_EMU_ATOMIC_BITS(unsigned long long)
#undef EET_EMU_ATOMIC_BITS
inline int atomicExch(int* p, int v) { return emu_rmw(p, [&](int) { return v; }); }
inline unsigned atomicExch(unsigned* p, unsigned v) { return emu_rmw(p, [&](unsigned) { return v; }); }
inline unsigned long long atomicExch(unsigned long long* p, unsigned long long v) {
  return emu_rmw(p, [&](unsigned long long) { return v; });
}
inline float atomicExch(float* p, float v) { return emu_rmw(p, [&](float) { return v; }); }
#define EET_EMU_ATOMIC_CAS(T) \
  inline T atomicCAS(T* p, T cmp, T v) { return emu_rmw(p, [&](T o) { return o == cmp ? v : o; }); }
EET_EMU_ATOMIC_CAS(int)
EET_EMU_ATOMIC_CAS(unsigned)
EET_EMU_ATOMIC_CAS(unsigned long long)
EET_EMU_ATOMIC_CAS(unsigned short)
#undef EET_EMU_ATOMIC_CAS

}  // namespace eet_emu

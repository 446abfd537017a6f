// Self-test kernels for the SIMT emulator (cuda/emu). The same file compiles under nvcc (eet_cuda, real GPU) and
// under the host compiler (eet_emu), so the cases that are correct CUDA can be compared across both. Cases that
// deliberately break CUDA's rules (divergent barriers, bad masks, crashes) exist in the emu build only: on a GPU
// they hang or kill the context.
//
//   emu_selftest_cases()            names of the cases this build runs
//   emu_selftest(name, stream)      runs one; returns "ok: ..." or throws eet::Error (ErrorCode::Internal when a
//                                   check fails). Cases named expect_* pass when the emu reports ERR_KERNEL.
//   "race" returns the number of correct outputs of a kernel with a missing barrier: the caller checks that the
//   forward and reverse scheduling orders disagree.
#include "../common.cuh"
#include "../../engine/half.h"

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

namespace EET_KNS {
namespace selftest {

constexpr unsigned kFull = 0xffffffffu;

[[noreturn]] void fail(const std::string& what) { eet::throw_error(eet::ErrorCode::Internal, "selftest: " + what); }

// Device memory for both builds: cudaMalloc under nvcc, the emu's host "device" memory otherwise.
class DevBuf {
 public:
  explicit DevBuf(size_t bytes) : bytes_(bytes) {
#if defined(__CUDACC__)
    check_cuda(cudaMalloc(&p_, bytes), "cudaMalloc");
#else
    p_ = dev_malloc(bytes);
    if (!p_) eet::throw_error(eet::ErrorCode::Oom, "selftest: dev_malloc failed");
#endif
  }
  ~DevBuf() {
#if defined(__CUDACC__)
    cudaFree(p_);
#else
    dev_free(p_);
#endif
  }
  DevBuf(const DevBuf&) = delete;
  DevBuf& operator=(const DevBuf&) = delete;
  template <typename T> T* as() const { return static_cast<T*>(p_); }
  void upload(const void* src) {
#if defined(__CUDACC__)
    check_cuda(cudaMemcpy(p_, src, bytes_, cudaMemcpyHostToDevice), "cudaMemcpy");
#else
    std::memcpy(p_, src, bytes_);
#endif
  }
  void download(void* dst, eet::Stream stream) const {
#if defined(__CUDACC__)
    check_cuda(cudaStreamSynchronize(static_cast<cudaStream_t>(stream)), "cudaStreamSynchronize");
    check_cuda(cudaMemcpy(dst, p_, bytes_, cudaMemcpyDeviceToHost), "cudaMemcpy");
#else
    (void)stream;
    std::memcpy(dst, p_, bytes_);
#endif
  }

 private:
  void* p_ = nullptr;
  size_t bytes_;
};

template <typename T>
std::vector<T> download(const DevBuf& b, size_t n, eet::Stream s) {
  std::vector<T> v(n);
  b.download(v.data(), s);
  return v;
}

// ---- shared device helpers ---------------------------------------------------------------------------------------
__device__ __forceinline__ float warp_sum(float v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(kFull, v, o);
  return v;
}

// Sum over the block; every thread gets the result. red: 32 floats of shared memory.
template <int BLOCK>
__device__ __forceinline__ float block_sum(float v, float* red) {
  const unsigned lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  v = warp_sum(v);
  if (lane == 0) red[warp] = v;
  __syncthreads();
  if (warp == 0) {
    v = warp_sum(lane < BLOCK / 32 ? red[lane] : 0.0f);
    if (lane == 0) red[0] = v;
  }
  __syncthreads();
  v = red[0];
  __syncthreads();  // red is reused by the next call
  return v;
}

// ---- block reduction: shuffles + shared memory over a 2D grid ----------------------------------------------------
template <int BLOCK>
__global__ void __launch_bounds__(BLOCK) row_sum_kernel(const float* x, float* out, int cols) {
  __shared__ float red[32];
  const int64_t row = int64_t(blockIdx.y) * gridDim.x + blockIdx.x;
  float v = 0.0f;
  for (int c = threadIdx.x; c < cols; c += BLOCK) v += x[row * cols + c];
  v = block_sum<BLOCK>(v, red);
  if (threadIdx.x == 0) out[row] = v;
}

std::string case_block_reduce(eet::Stream s) {
  const int gx = 3, gy = 2, rows = gx * gy, cols = 1000;
  std::vector<float> x(size_t(rows) * cols);
  std::vector<double> want(rows, 0.0);
  for (size_t i = 0; i < x.size(); ++i) {
    x[i] = float(int((i * 2654435761u) % 17) - 8);  // small integers: every order of summation is exact
    want[i / cols] += x[i];
  }
  DevBuf dx(x.size() * sizeof(float)), dout(rows * sizeof(float));
  dx.upload(x.data());
  launch(row_sum_kernel<256>, dim3(gx, gy), dim3(256), 0, s, dx.as<float>(), dout.as<float>(), cols);
  const auto got = download<float>(dout, rows, s);
  for (int r = 0; r < rows; ++r)
    if (double(got[r]) != want[r]) fail("row " + std::to_string(r) + ": " + std::to_string(got[r]) + " != " + std::to_string(want[r]));
  return "ok: 6 rows x 1000 summed over a 3x2 grid";
}

// ---- shuffles with width 8 and out-of-range source lanes ---------------------------------------------------------
constexpr int kShflCases = 10;

__global__ void shfl_kernel(int* out, double* dout, long long* lout, __half2* hout) {
  const int lane = threadIdx.x;
  const int v = lane * 10 + 1;
  int r[kShflCases];
  r[0] = __shfl_up_sync(kFull, v, 3, 8);
  r[1] = __shfl_down_sync(kFull, v, 3, 8);
  r[2] = __shfl_xor_sync(kFull, v, 4, 8);
  r[3] = __shfl_xor_sync(kFull, v, 9, 8);  // crosses segments: allowed into earlier segments only
  r[4] = __shfl_sync(kFull, v, 5, 8);
  r[5] = __shfl_sync(kFull, v, -1, 8);     // only the low bits count: last lane of the segment
  r[6] = __shfl_sync(kFull, v, 37);        // 37 & 31 = lane 5
  r[7] = __shfl_down_sync(kFull, v, 1);    // lane 31: own value
  r[8] = __shfl_up_sync(kFull, v, 0);
  r[9] = __shfl_xor_sync(kFull, v, 16, 16);  // partner in the next segment: own value
  for (int i = 0; i < kShflCases; ++i) out[i * 32 + lane] = r[i];
  dout[lane] = __shfl_xor_sync(kFull, lane * 0.5 + 1e10, 1);
  lout[lane] = __shfl_down_sync(kFull, (long long)lane << 40, 2);
  hout[lane] = __shfl_up_sync(kFull, __floats2half2_rn(float(lane), float(-lane)), 1);
}

// Expected per CUDA's documentation of width: lanes may read lanes in earlier segments, not later ones.
int shfl_expect(int c, int lane) {
  auto val = [](int l) { return l * 10 + 1; };
  const int first8 = lane & ~7;
  switch (c) {
    case 0: return lane - 3 >= first8 ? val(lane - 3) : val(lane);
    case 1: return lane + 3 < first8 + 8 ? val(lane + 3) : val(lane);
    case 2: return val(lane ^ 4);
    case 3: return (lane ^ 9) < first8 + 8 ? val(lane ^ 9) : val(lane);
    case 4: return val(first8 + 5);
    case 5: return val(first8 + 7);
    case 6: return val(5);
    case 7: return lane < 31 ? val(lane + 1) : val(lane);
    case 8: return val(lane);
    case 9: return (lane ^ 16) < (lane & ~15) + 16 ? val(lane ^ 16) : val(lane);
  }
  return 0;
}

std::string case_shuffle(eet::Stream s) {
  DevBuf out(kShflCases * 32 * sizeof(int)), dout(32 * sizeof(double)), lout(32 * sizeof(long long)),
      hout(32 * sizeof(__half2));
  launch(shfl_kernel, dim3(1), dim3(32), 0, s, out.as<int>(), dout.as<double>(), lout.as<long long>(),
         hout.as<__half2>());
  const auto r = download<int>(out, kShflCases * 32, s);
  for (int c = 0; c < kShflCases; ++c)
    for (int l = 0; l < 32; ++l)
      if (r[c * 32 + l] != shfl_expect(c, l))
        fail("shuffle case " + std::to_string(c) + " lane " + std::to_string(l) + ": got " +
             std::to_string(r[c * 32 + l]) + ", want " + std::to_string(shfl_expect(c, l)));
  const auto d = download<double>(dout, 32, s);
  const auto ll = download<long long>(lout, 32, s);
  const auto h = download<__half2>(hout, 32, s);
  for (int l = 0; l < 32; ++l) {
    if (d[l] != (l ^ 1) * 0.5 + 1e10) fail("double shuffle lane " + std::to_string(l));
    if (ll[l] != (long long)(l < 30 ? l + 2 : l) << 40) fail("long long shuffle lane " + std::to_string(l));
    uint16_t hx, hy;
    std::memcpy(&hx, &h[l], 2);
    std::memcpy(&hy, reinterpret_cast<const char*>(&h[l]) + 2, 2);
    const int src = l > 0 ? l - 1 : 0;
    if (eet::f16_to_f32(hx) != float(src) || eet::f16_to_f32(hy) != float(-src)) fail("__half2 shuffle lane " + std::to_string(l));
  }
  return "ok: 10 int shuffle patterns, double, long long, __half2";
}

// ---- votes ---------------------------------------------------------------------------------------------------
__global__ void vote_kernel(unsigned* out) {
  const unsigned t = threadIdx.x, lane = t % 32;
  unsigned* o = out + t * 7;
  o[0] = __ballot_sync(kFull, lane % 3 == 0);
  o[1] = unsigned(__any_sync(kFull, lane == 7));
  o[2] = unsigned(__all_sync(kFull, lane < 32));
  o[3] = unsigned(__all_sync(kFull, lane != 5));
  o[4] = 0;
  if (lane < 16) {
    o[4] = __ballot_sync(0x0000ffffu, lane & 1);
    __syncwarp(0x0000ffffu);
  }
  __syncwarp();
  o[5] = unsigned(__any_sync(kFull, t == 40));  // true in warp 1 only
  o[6] = __match_any_sync(kFull, lane / 4);
}

std::string case_vote(eet::Stream s) {
  DevBuf out(64 * 7 * sizeof(unsigned));
  launch(vote_kernel, dim3(1), dim3(64), 0, s, out.as<unsigned>());
  const auto o = download<unsigned>(out, 64 * 7, s);
  for (unsigned t = 0; t < 64; ++t) {
    const unsigned lane = t % 32;
    const unsigned* r = &o[t * 7];
    if (r[0] != 0x49249249u || r[1] != 1 || r[2] != 1 || r[3] != 0 || r[4] != (lane < 16 ? 0x0000aaaau : 0u) ||
        r[5] != (t >= 32 ? 1u : 0u) || r[6] != 0xfu << (lane / 4 * 4))
      fail("vote thread " + std::to_string(t));
  }
  return "ok: ballot/any/all/match_any, full and partial masks";
}

// ---- a partial last warp (block of 48: the second warp has 16 lanes) -----------------------------------------
__global__ void partial_warp_kernel(const int* x, int* out) {
  __shared__ int warp_sums[2];
  const unsigned t = threadIdx.x, lane = t % 32, warp = t / 32;
  const unsigned nlanes = min(32u, blockDim.x - warp * 32);
  const unsigned mask = nlanes == 32 ? kFull : (1u << nlanes) - 1;
  int v = x[t];
  for (int o = 16; o > 0; o >>= 1) {
    const int other = __shfl_xor_sync(mask, v, o);
    if ((lane ^ unsigned(o)) < nlanes) v += other;  // partners outside the mask give undefined values
  }
  if (lane == 0) warp_sums[warp] = v;
  __syncthreads();
  if (t == 0) out[0] = warp_sums[0] + warp_sums[1];
  out[1 + t] = int(__ballot_sync(mask, x[t] > 0));
  const int count = __syncthreads_count(x[t] > 0);
  const int all = __syncthreads_and(x[t] > -100);
  const int any = __syncthreads_or(x[t] > 100);
  if (t == 47) out[49] = count * 100 + all * 10 + any;
}

std::string case_partial_warp(eet::Stream s) {
  std::vector<int> x(48);
  int sum = 0;
  unsigned b0 = 0, b1 = 0;
  for (int i = 0; i < 48; ++i) {
    x[i] = (i * 7) % 11 - 5;
    sum += x[i];
    if (x[i] > 0) (i < 32 ? b0 : b1) |= 1u << (i % 32);
  }
  DevBuf dx(48 * sizeof(int)), out(50 * sizeof(int));
  dx.upload(x.data());
  launch(partial_warp_kernel, dim3(1), dim3(48), 0, s, dx.as<int>(), out.as<int>());
  const auto o = download<int>(out, 50, s);
  const int positive = __builtin_popcount(b0) + __builtin_popcount(b1);
  if (o[49] != positive * 100 + 10) fail("__syncthreads_count/and/or: " + std::to_string(o[49]));
  if (o[0] != sum) fail("partial warp sum " + std::to_string(o[0]) + " != " + std::to_string(sum));
  for (int t = 0; t < 48; ++t)
    if (unsigned(o[1 + t]) != (t < 32 ? b0 : b1)) fail("partial warp ballot thread " + std::to_string(t));
  return "ok: 48-thread block, 16-lane warp with mask 0x0000ffff, __syncthreads_count/and/or";
}

// ---- exited lanes: a full-mask collective among the lanes that did not return (valid CUDA) ----------------------
__global__ void exited_lanes_kernel(int* out) {
  if (threadIdx.x >= 20) return;  // lanes 20-31 exit; the rest still use the full mask
  const unsigned b = __ballot_sync(kFull, threadIdx.x % 2 == 0);
  const int from = __shfl_down_sync(kFull, int(threadIdx.x), 1);  // lane 19 reads exited lane 20: undefined
  out[threadIdx.x] = threadIdx.x == 0 ? int(b) : from;
}

std::string case_exited_lanes(eet::Stream s) {
  DevBuf out(32 * sizeof(int));
  launch(exited_lanes_kernel, dim3(1), dim3(32), 0, s, out.as<int>());
  const auto o = download<int>(out, 32, s);
  if (unsigned(o[0]) != 0x55555u) fail("ballot among 20 live lanes: " + std::to_string(o[0]));
  for (int t = 1; t < 19; ++t)
    if (o[t] != t + 1) fail("shfl_down among live lanes, thread " + std::to_string(t));
#if !defined(__CUDACC__)
  if (o[19] != -1) fail("a value read from an exited lane should be poisoned (0xFF bytes) on emu");
#endif
  return "ok: full-mask ballot/shuffle after 12 lanes returned";
}

// ---- 2D/3D blocks: thread numbering and lanes --------------------------------------------------------------
__global__ void block_3d_kernel(unsigned* out) {
  const unsigned linear = threadIdx.x + threadIdx.y * blockDim.x + threadIdx.z * blockDim.x * blockDim.y;
  const unsigned next = __shfl_sync(kFull, linear, int((linear + 1) % 32));
  const unsigned block = blockIdx.x + blockIdx.y * gridDim.x + blockIdx.z * gridDim.x * gridDim.y;
  out[block * 64 + linear] = next + 1000u * block;
}

std::string case_block_3d(eet::Stream s) {
  DevBuf out(8 * 64 * sizeof(unsigned));
  launch(block_3d_kernel, dim3(2, 2, 2), dim3(8, 4, 2), 0, s, out.as<unsigned>());
  const auto o = download<unsigned>(out, 8 * 64, s);
  for (unsigned b = 0; b < 8; ++b)
    for (unsigned i = 0; i < 64; ++i)
      if (o[b * 64 + i] != (i & ~31u) + (i + 1) % 32 + 1000u * b) fail("3D block " + std::to_string(b) + " thread " + std::to_string(i));
  return "ok: grid (2,2,2) x block (8,4,2)";
}

// ---- dynamic shared memory -----------------------------------------------------------------------------------
__global__ void dyn_smem_kernel(unsigned* out, unsigned* fresh) {
  EXTERN_SHARED(unsigned, buf);
  const unsigned t = threadIdx.x, n = blockDim.x;
  if (t == 0) fresh[blockIdx.x] = buf[n - 1];  // before anyone writes: 0xffffffff under the emu
  __syncthreads();
  buf[t] = t * 7 + blockIdx.x;
  __syncthreads();
  out[blockIdx.x * n + t] = buf[n - 1 - t];
}

std::string case_dynamic_smem(eet::Stream s) {
  const unsigned n = 128, blocks = 2;
  DevBuf out(blocks * n * sizeof(unsigned)), fresh(blocks * sizeof(unsigned));
  launch(dyn_smem_kernel, dim3(blocks), dim3(n), n * sizeof(unsigned), s, out.as<unsigned>(), fresh.as<unsigned>());
  const auto o = download<unsigned>(out, blocks * n, s);
  for (unsigned b = 0; b < blocks; ++b)
    for (unsigned t = 0; t < n; ++t)
      if (o[b * n + t] != (n - 1 - t) * 7 + b) fail("dynamic smem block " + std::to_string(b) + " thread " + std::to_string(t));
#if !defined(__CUDACC__)
  const auto f = download<unsigned>(fresh, blocks, s);
  for (unsigned b = 0; b < blocks; ++b)
    if (f[b] != 0xffffffffu) fail("dynamic smem not refilled with 0xff before block " + std::to_string(b));
#endif
  return "ok: 512 bytes per block, refilled with 0xff (NaN) before each block";
}

// ---- atomics from every thread --------------------------------------------------------------------------------
struct AtomicOut {
  int add_i, sub_i, max_i, min_i, cas_i, exch_i;
  unsigned add_u, max_u, and_u, or_u, xor_u;
  unsigned long long add_ull, max_ull;
  long long max_ll, min_ll;
  float add_f;
  double add_d;
  unsigned short cas_us;
};

__global__ void atomics_kernel(AtomicOut* a) {
  const int gid = int(blockIdx.x * blockDim.x + threadIdx.x);
  atomicAdd(&a->add_i, 1);
  atomicSub(&a->sub_i, 3);
  atomicMax(&a->max_i, gid - 500);
  atomicMin(&a->min_i, gid - 500);
  int old = a->cas_i, assumed;
  do {
    assumed = old;
    old = atomicCAS(&a->cas_i, assumed, assumed + 1);
  } while (old != assumed);
  atomicExch(&a->exch_i, gid);
  atomicAdd(&a->add_u, 2u);
  atomicMax(&a->max_u, unsigned(gid) * 3u);
  atomicAnd(&a->and_u, ~(1u << (gid % 32)));
  atomicOr(&a->or_u, 1u << (gid % 32));
  atomicXor(&a->xor_u, 1u << (gid % 32));
  atomicAdd(&a->add_ull, 1ull << 33);
  atomicMax(&a->max_ull, (unsigned long long)gid << 40);
  atomicMax(&a->max_ll, (long long)gid * 1000000007ll - 5000000000000ll);
  atomicMin(&a->min_ll, (long long)gid * 1000000007ll - 5000000000000ll);
  atomicAdd(&a->add_f, 0.5f);
  atomicAdd(&a->add_d, 0.25);
  atomicCAS(&a->cas_us, (unsigned short)0, (unsigned short)(gid + 1));
}

std::string case_atomics(eet::Stream s) {
  AtomicOut init{};
  init.max_i = -1000000;
  init.min_i = 1000000;
  init.and_u = 0xffffffffu;
  init.max_ll = -(1ll << 62);
  init.min_ll = 1ll << 62;
  DevBuf buf(sizeof(AtomicOut));
  buf.upload(&init);
  launch(atomics_kernel, dim3(4), dim3(256), 0, s, buf.as<AtomicOut>());
  AtomicOut a;
  buf.download(&a, s);
  const long long n = 1024;
  const bool ok = a.add_i == n && a.sub_i == -3 * n && a.max_i == 523 && a.min_i == -500 && a.cas_i == n &&
                  a.exch_i >= 0 && a.exch_i < n && a.add_u == 2 * n && a.max_u == 3069 && a.and_u == 0 &&
                  a.or_u == 0xffffffffu && a.xor_u == 0 && a.add_ull == (unsigned long long)n << 33 &&
                  a.max_ull == 1023ull << 40 && a.max_ll == 1023ll * 1000000007ll - 5000000000000ll &&
                  a.min_ll == -5000000000000ll && a.add_f == 512.0f && a.add_d == 256.0 && a.cas_us >= 1 &&
                  a.cas_us <= n;
  if (!ok) fail("atomics: a result is wrong (add_i " + std::to_string(a.add_i) + ", cas_i " + std::to_string(a.cas_i) + ")");
  return "ok: 1024 threads x 18 atomics";
}

// ---- intrinsics (host shims under the emu, hardware on the GPU) ---------------------------------------------------
constexpr int kIntrinsics = 24;

__global__ void intrinsics_kernel(unsigned long long* o, float nan) {
  int i = 0;
  o[i++] = __brev(1u);
  o[i++] = __brev(0x12345678u);
  o[i++] = unsigned(__clz(0));
  o[i++] = unsigned(__clz(-1));
  o[i++] = unsigned(__clzll(1ll));
  o[i++] = unsigned(__ffs(8));
  o[i++] = unsigned(__ffsll(1ll << 40));
  o[i++] = unsigned(__popc(0xf0f0u) + __popcll(~0ull));
  o[i++] = __umulhi(0x80000000u, 4u);
  o[i++] = unsigned(__mulhi(-2, 0x40000000));
  o[i++] = unsigned(__mul24(0x00800000, 2));
  o[i++] = __umul24(0x01000003u, 2u);
  o[i++] = min(-1, 1u);
  o[i++] = max(-1, 1u);
  o[i++] = __float_as_uint(__saturatef(nan)) ^ (__float_as_uint(__saturatef(2.0f)) << 1);
  o[i++] = __float_as_uint(__saturatef(0.5f));
  o[i++] = unsigned(__float_as_int(1.0f));
  o[i++] = __float_as_uint(__int_as_float(0x40000000) + __uint_as_float(0x3f800000u));
  o[i++] = __half_as_ushort(__float2half(1.0f)) | (unsigned(__bfloat16_as_ushort(__float2bfloat16(1.0f))) << 16);
  o[i++] = __float_as_uint(__half2float(__ushort_as_half(0x3555)));
  o[i++] = __half_as_ushort(__float2half_rn(65520.0f)) | (unsigned(__half_as_ushort(__float2half_rn(1e-8f))) << 16);
  o[i++] = __umul64hi(~0ull, 2ull);
  o[i++] = (unsigned long long)__double_as_longlong(1.0);
  o[i++] = __float_as_uint(__bfloat162float(__float2bfloat16_rn(1.00390625f)));  // tie: rounds to even (1.0)
}

std::string case_intrinsics(eet::Stream s) {
  const unsigned long long want[kIntrinsics] = {
      0x80000000ull, 0x1e6a2c48ull, 32, 0, 63, 4, 41, 72, 2, 0xffffffffull, 0xff000000ull, 6, 1, 0xffffffffull,
      0x7f000000ull /* 0 ^ (1.0f << 1) */, 0x3f000000ull, 0x3f800000ull, 0x40400000ull, 0x3f803c00ull, 0x3eaaa000ull,
      0x7c00ull, 1, 0x3ff0000000000000ull, 0x3f800000ull};
  DevBuf out(kIntrinsics * sizeof(unsigned long long));
  launch(intrinsics_kernel, dim3(1), dim3(1), 0, s, out.as<unsigned long long>(), std::nanf(""));
  const auto o = download<unsigned long long>(out, kIntrinsics, s);
  for (int i = 0; i < kIntrinsics; ++i)
    if (o[i] != want[i]) {
      char m[96];
      std::snprintf(m, sizeof m, "intrinsic #%d: got 0x%llx, want 0x%llx", i, o[i], want[i]);
      fail(m);
    }
  return "ok: 24 bit/float/half intrinsic results";
}

// ---- a race: shared memory written and read by a neighbour with no barrier ------------------------------------
__global__ void race_kernel(const int* /*unused*/, int* out) {
  EXTERN_SHARED(int, sh);
  const int t = threadIdx.x, n = blockDim.x;
  sh[t] = t + 1;
  // Deliberately missing __syncthreads(): the neighbour's value may not be written yet.
  out[t] = sh[(t + 1) % n];
}

std::string case_race(eet::Stream s) {
  const int n = 256;
  DevBuf out(n * sizeof(int));
  launch(race_kernel, dim3(1), dim3(n), n * sizeof(int), s, nullptr, out.as<int>());
  const auto o = download<int>(out, n, s);
  int correct = 0;
  for (int t = 0; t < n; ++t) correct += o[t] == (t + 1) % n + 1;
  return "ok: correct=" + std::to_string(correct);
}

// ---- LayerNorm-like folded row reduction (timed) ------------------------------------------------------------------
template <int BLOCK, int ITEMS>
__global__ void __launch_bounds__(BLOCK) layernorm_kernel(const float* x, const float* w, const float* b, float* y,
                                                           int cols, float eps) {
  __shared__ float red[32];
  const int64_t base = int64_t(blockIdx.x) * cols;
  float v[ITEMS];
  float sum = 0.0f;
#pragma unroll
  for (int i = 0; i < ITEMS; ++i) {
    const int c = threadIdx.x + i * BLOCK;
    v[i] = c < cols ? x[base + c] : 0.0f;
    sum += v[i];
  }
  const float mean = block_sum<BLOCK>(sum, red) / float(cols);
  float sq = 0.0f;
#pragma unroll
  for (int i = 0; i < ITEMS; ++i) {
    const int c = threadIdx.x + i * BLOCK;
    const float d = v[i] - mean;
    if (c < cols) sq += d * d;
  }
  const float inv = rsqrtf(block_sum<BLOCK>(sq, red) / float(cols) + eps);
#pragma unroll
  for (int i = 0; i < ITEMS; ++i) {
    const int c = threadIdx.x + i * BLOCK;
    if (c < cols) y[base + c] = (v[i] - mean) * inv * w[c] + b[c];
  }
}

std::string case_layernorm(eet::Stream s) {
  const int rows = 33, cols = 12288;
  constexpr int kBlock = 1024, kItems = 12;
  std::vector<float> x(size_t(rows) * cols), w(cols), b(cols);
  uint32_t seed = 12345;
  auto rnd = [&] { seed = seed * 1664525u + 1013904223u; return float(seed >> 8) / float(1 << 24) * 2.0f - 1.0f; };
  for (auto& e : x) e = rnd() * 3.0f + 0.5f;
  for (auto& e : w) e = rnd();
  for (auto& e : b) e = rnd();
  DevBuf dx(x.size() * 4), dw(cols * 4), db(cols * 4), dy(x.size() * 4);
  dx.upload(x.data());
  dw.upload(w.data());
  db.upload(b.data());
  const auto t0 = std::chrono::steady_clock::now();
  launch(layernorm_kernel<kBlock, kItems>, dim3(rows), dim3(kBlock), 0, s, dx.as<float>(), dw.as<float>(),
         db.as<float>(), dy.as<float>(), cols, 1e-5f);
  const auto y = download<float>(dy, x.size(), s);
  const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  double max_err = 0.0;
  for (int r = 0; r < rows; ++r) {
    double mean = 0.0, var = 0.0;
    for (int c = 0; c < cols; ++c) mean += x[size_t(r) * cols + c];
    mean /= cols;
    for (int c = 0; c < cols; ++c) var += (x[size_t(r) * cols + c] - mean) * (x[size_t(r) * cols + c] - mean);
    const double inv = 1.0 / std::sqrt(var / cols + 1e-5);
    for (int c = 0; c < cols; ++c) {
      const double want = (x[size_t(r) * cols + c] - mean) * inv * w[c] + b[c];
      max_err = std::fmax(max_err, std::fabs(want - double(y[size_t(r) * cols + c])));
    }
  }
  if (!(max_err < 1e-4)) fail("layernorm max error " + std::to_string(max_err));
  char msg[128];
  std::snprintf(msg, sizeof msg, "ok: layernorm 33 x 12288, block 1024: max err %.2e, %.1f ms", max_err, ms);
  return msg;
}

#if !defined(__CUDACC__)
// ---- emu-only: kernels that break CUDA's rules; each must become an ERR_KERNEL error, never a hang ---------------
__global__ void divergent_barrier_kernel(int* out) {
  if (threadIdx.x < 16) __syncthreads();
  out[threadIdx.x] = 1;
}

__global__ void early_return_kernel(const float* x, float* y, int n) {
  __shared__ float sh[64];
  const int i = threadIdx.x;
  if (i >= n) return;  // threads past n never reach the barrier below
  sh[i] = x[i];
  __syncthreads();
  y[i] = sh[(i + 1) % n];
}

__global__ void two_barriers_kernel(int* out) {
  if (threadIdx.x < 16) {
    __syncthreads();
  } else {
    __syncthreads();
  }
  out[threadIdx.x] = 1;
}

__global__ void mismatched_op_kernel(int* out) {
  if (threadIdx.x < 16)
    out[threadIdx.x] = int(__ballot_sync(kFull, 1));
  else
    out[threadIdx.x] = __shfl_xor_sync(kFull, int(threadIdx.x), 1);
}

__global__ void not_in_mask_kernel(int* out) { out[threadIdx.x] = __shfl_sync(0x1u, int(threadIdx.x), 0); }

__global__ void null_store_kernel(int* p) { p[threadIdx.x] = 42; }

__device__ __noinline__ int deep_recursion(int depth) {
  volatile char frame[4096];
  frame[0] = char(depth);
  frame[4095] = char(depth);
  return depth > 0 ? deep_recursion(depth - 1) + frame[0] + frame[4095] : 0;
}
__global__ void stack_overflow_kernel(int* out) { out[threadIdx.x] = deep_recursion(1000); }

void sum_lanes(const unsigned char* all_in, unsigned char* all_out, void* ctx) {
  const int* in = reinterpret_cast<const int*>(all_in);
  int* out = reinterpret_cast<int*>(all_out);
  int total = *static_cast<const int*>(ctx);
  for (int l = 0; l < 32; ++l) total += in[l];
  for (int l = 0; l < 32; ++l) out[l] = total + l;
}
__global__ void generic_collective_kernel(int* out, int* bias) {
  const int v = int(threadIdx.x) * 2;
  int r = 0;
  warp_collective(kFull, &v, sizeof v, &r, sizeof r, sum_lanes, bias, "selftest sum_lanes");
  out[threadIdx.x] = r;
}

std::string case_generic_collective(eet::Stream s) {
  DevBuf out(64 * sizeof(int)), bias(sizeof(int));
  const int b = 7;
  bias.upload(&b);
  launch(generic_collective_kernel, dim3(1), dim3(64), 0, s, out.as<int>(), bias.as<int>());
  const auto o = download<int>(out, 64, s);
  for (int t = 0; t < 64; ++t) {
    int total = 7;
    for (int l = 0; l < 32; ++l) total += 2 * ((t & ~31) + l);
    if (o[t] != total + t % 32) fail("warp_collective thread " + std::to_string(t));
  }
  return "ok: warp_collective over two warps";
}

// Runs `run`, which must fail with ERR_KERNEL mentioning every string in `expect`.
template <typename F>
std::string expect_kernel_error(F run, std::vector<std::string> expect) {
  try {
    run();
  } catch (const eet::Error& e) {
    if (e.code() != eet::ErrorCode::Kernel) fail(std::string("wrong error code for: ") + e.what());
    const std::string m = e.what();
    for (const auto& want : expect)
      if (m.find(want) == std::string::npos) fail("error message lacks \"" + want + "\": " + m);
    return "ok: reported: " + m;
  }
  fail("expected an ERR_KERNEL error, the launch succeeded");
}
#endif  // !__CUDACC__

}  // namespace selftest

std::vector<std::string> emu_selftest_cases() {
  std::vector<std::string> c = {"block_reduce", "shuffle", "vote", "partial_warp", "exited_lanes", "block_3d",
                                "dynamic_smem", "atomics", "intrinsics", "race", "layernorm"};
#if !defined(__CUDACC__)
  for (const char* e : {"generic_collective", "expect_divergent_barrier", "expect_early_return_barrier", "expect_two_barrier_sites",
                        "expect_mismatched_op", "expect_not_in_mask", "expect_null_store",
                        "expect_stack_overflow", "expect_bad_config", "expect_smem_over_limit"})
    c.push_back(e);
#endif
  return c;
}

std::string emu_selftest(const char* name, eet::Stream s) {
  using namespace selftest;
  const std::string n = name ? name : "";
  if (n == "block_reduce") return case_block_reduce(s);
  if (n == "shuffle") return case_shuffle(s);
  if (n == "vote") return case_vote(s);
  if (n == "partial_warp") return case_partial_warp(s);
  if (n == "exited_lanes") return case_exited_lanes(s);
  if (n == "block_3d") return case_block_3d(s);
  if (n == "dynamic_smem") return case_dynamic_smem(s);
  if (n == "atomics") return case_atomics(s);
  if (n == "intrinsics") return case_intrinsics(s);
  if (n == "race") return case_race(s);
  if (n == "layernorm") return case_layernorm(s);
#if !defined(__CUDACC__)
  if (n == "generic_collective") return case_generic_collective(s);
  DevBuf buf(1024 * sizeof(int));
  int* out = buf.as<int>();
  if (n == "expect_divergent_barrier")
    return expect_kernel_error([&] { launch(divergent_barrier_kernel, dim3(1), dim3(32), 0, s, out); },
                               {"deadlock", "16 wait at __syncthreads (selftest.cu:", "16 have exited"});
  if (n == "expect_early_return_barrier")
    return expect_kernel_error(
        [&] { launch(early_return_kernel, dim3(1), dim3(64), 0, s, (const float*)buf.as<float>(), buf.as<float>() + 64, 40); },
        {"40 wait at __syncthreads", "24 have exited"});
  if (n == "expect_two_barrier_sites")
    return expect_kernel_error([&] { launch(two_barriers_kernel, dim3(1), dim3(32), 0, s, out); },
                               {"deadlock", "16 wait at __syncthreads", "selftest.cu"});
  if (n == "expect_mismatched_op")
    return expect_kernel_error([&] { launch(mismatched_op_kernel, dim3(1), dim3(32), 0, s, out); },
                               {"deadlock", "__ballot_sync", "__shfl_xor_sync"});
  if (n == "expect_not_in_mask")
    return expect_kernel_error([&] { launch(not_in_mask_kernel, dim3(1), dim3(32), 0, s, out); },
                               {"not in the mask"});
  if (n == "expect_null_store")
    return expect_kernel_error([&] { launch(null_store_kernel, dim3(2), dim3(64), 0, s, (int*)nullptr); },
                               {"kernel crashed (SIGSEGV at address", reverse_order() ? "block (1,0,0) thread (" : "block (0,0,0) thread ("});
  if (n == "expect_stack_overflow")
    return expect_kernel_error([&] { launch(stack_overflow_kernel, dim3(1), dim3(4), 0, s, out); },
                               {"kernel crashed", "stack overflow"});
  if (n == "expect_bad_config")
    return expect_kernel_error([&] { launch(divergent_barrier_kernel, dim3(1), dim3(2048), 0, s, out); },
                               {"invalid block size"});
  if (n == "expect_smem_over_limit") {
    // The emulated target's per-block shared memory (setEmuOptions): a launch at the limit runs, 16 bytes over it is
    // refused with the sizes in the message.
    const size_t limit = smem_per_block_optin();
    unsigned* u = buf.as<unsigned>();
    launch(dyn_smem_kernel, dim3(1), dim3(128), limit, s, u, u + 512);
    return expect_kernel_error([&] { launch(dyn_smem_kernel, dim3(1), dim3(128), limit + 16, s, u, u + 512); },
                               {"dynamic shared memory of " + std::to_string(limit + 16) + " bytes",
                                "opt-in limit of " + std::to_string(limit) + " bytes"});
  }
#endif
  eet::throw_error(eet::ErrorCode::InvalidArg, "unknown emu self-test case: " + n);
}

}  // namespace EET_KNS

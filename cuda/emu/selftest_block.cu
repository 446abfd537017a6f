// Self-test, block-level cases: reductions over a 2-D grid, 3-D blocks, dynamic shared memory, atomics,
// intrinsics, a race (forward and reverse orders must disagree), a LayerNorm-like kernel (timed).
// (cases listed in selftest.cuh; the registry is selftest.cu)
#include "selftest.cuh"

#include <chrono>
#include <cmath>
#include <cstdio>

namespace EET_KNS {
namespace selftest {

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

std::vector<Case> block_cases() {
  return {{"block_reduce", case_block_reduce}, {"block_3d", case_block_3d},   {"dynamic_smem", case_dynamic_smem},
          {"atomics", case_atomics},           {"intrinsics", case_intrinsics}, {"race", case_race},
          {"layernorm", case_layernorm}};
}

}  // namespace selftest
}  // namespace EET_KNS

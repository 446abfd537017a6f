// Self-test, warp collectives: shuffles with widths and out-of-range lanes, votes, a partial last warp, exited
// lanes, and (emu only) the generic warp_collective that the emulated inline PTX is built on.
// (cases listed in selftest.cuh; the registry is selftest.cu)
#include "selftest.cuh"

#include <chrono>
#include <cmath>
#include <cstdio>

namespace EET_KNS {
namespace selftest {

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

#if !defined(__CUDACC__)
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
#endif

std::vector<Case> warp_cases() {
  std::vector<Case> c = {{"shuffle", case_shuffle},
                         {"vote", case_vote},
                         {"partial_warp", case_partial_warp},
                         {"exited_lanes", case_exited_lanes}};
#if !defined(__CUDACC__)
  c.push_back({"generic_collective", case_generic_collective});
#endif
  return c;
}

}  // namespace selftest
}  // namespace EET_KNS

// Self-test, emulated inline PTX: ldmatrix (cuda/ldmatrix.cuh) and cp.async (cuda/async_copy.cuh).
//   ldmatrix        the lane layout, checked element by element against the PTX ISA's description read the other
//                   way round (where each element of each matrix must land), rows scattered over shared memory
//   ldmatrix_mma    A and B fragments loaded with ldmatrix feed mma.m16n8k16 (cuda/mma.cuh): D = A·B exactly
//   cp_async        16-byte copies with every src-size 0..16 (the tail zero-filled), two groups, wait<1> then wait<0>
//   emu only: cp_async_pending (the emu's model: a copy's bytes are NaN until a wait covers its group), and the
//   faults the hardware raises (misaligned cp.async, ldmatrix outside shared memory) reported as ERR_KERNEL.
// On a GPU the first three run the real instructions (they compile under nvcc for sm_80+).
#include "selftest.cuh"

#include "../async_copy.cuh"
#include "../ldmatrix.cuh"
#include "../mma.cuh"

#include <cstdio>

namespace EET_KNS {
namespace selftest {

// ---- ldmatrix lane layout ----------------------------------------------------------------------------------------
// Element (matrix j, row r, column c) holds ldm_val(j, r, c); row (j, r) sits in 16-byte slot ldm_slot(j, r) of a
// 32-slot area, so the lanes' addresses are not in order.
__host__ __device__ __forceinline__ uint16_t ldm_val(int j, int r, int c) { return uint16_t(1 + j * 64 + r * 8 + c); }
__host__ __device__ __forceinline__ int ldm_slot(int j, int r) { return (j * 8 + r) * 13 % 32; }

__global__ void ldmatrix_kernel(uint32_t* out) {
  EXTERN_SHARED(uint16_t, sm);  // 32 slots of 8 elements
  const int lane = threadIdx.x;
  for (int c = 0; c < 8; ++c) sm[ldm_slot(lane / 8, lane % 8) * 8 + c] = ldm_val(lane / 8, lane % 8, c);
  __syncthreads();
  uint32_t r[4];
  ldmatrix_x4(r, sm + ldm_slot(lane / 8, lane % 8) * 8);  // lanes 8j..8j+7: rows 0..7 of matrix j
  for (int j = 0; j < 4; ++j) out[lane * 4 + j] = r[j];
}

std::string case_ldmatrix(eet::Stream s) {
  DevBuf out(32 * 4 * sizeof(uint32_t));
  launch(ldmatrix_kernel, dim3(1), dim3(32), 32 * 16, s, out.as<uint32_t>());
  const auto o = download<uint32_t>(out, 32 * 4, s);
  // PTX ISA, ldmatrix without .trans: "each thread receives ... row (threadID / 4), elements 2 (threadID % 4) and
  // 2 (threadID % 4) + 1". Read as: element (r, c) of matrix j lands in lane 4 r + c / 2, register j, half c % 2.
  for (int j = 0; j < 4; ++j)
    for (int r = 0; r < 8; ++r)
      for (int c = 0; c < 8; ++c) {
        const int lane = 4 * r + c / 2;
        const uint16_t got = uint16_t(o[lane * 4 + j] >> (16 * (c % 2)));
        if (got != ldm_val(j, r, c))
          fail("ldmatrix matrix " + std::to_string(j) + " element (" + std::to_string(r) + ", " + std::to_string(c) +
               ") in lane " + std::to_string(lane) + ": got " + std::to_string(got));
      }
  return "ok: 4 matrices x 64 elements in their lanes, rows scattered";
}

// ---- ldmatrix feeding mma ----------------------------------------------------------------------------------------
// A (16 x 16) and W (16 x 16, n x k) row-major in shared memory; D (16 x 16) = A · Wᵀ as two m16n8k16 tiles.
__global__ void ldmatrix_mma_kernel(const __half* a, const __half* w, float* d) {
  EXTERN_SHARED(__half, sm);  // A then W, 16 rows of 16 each
  const int lane = threadIdx.x;
  for (int i = lane; i < 512; i += 32) sm[i] = i < 256 ? a[i] : w[i - 256];
  __syncthreads();
  uint32_t af[4], bw[4];
  // A: matrices (rows 0-7, k 0-7), (rows 8-15, k 0-7), (rows 0-7, k 8-15), (rows 8-15, k 8-15)
  ldmatrix_x4(af, sm + (lane % 16) * 16 + (lane / 16) * 8);
  // W: matrices (n 0-7, k 0-7), (n 0-7, k 8-15), (n 8-15, k 0-7), (n 8-15, k 8-15): b[2] of n tiles 0 and 1
  ldmatrix_x4(bw, sm + 256 + ((lane / 16) * 8 + lane % 8) * 16 + ((lane / 8) % 2) * 8);
  const int g = lane / 4, t = lane % 4;
  for (int nt = 0; nt < 2; ++nt) {
    float acc[4] = {0.0f, 0.0f, 0.0f, 0.0f};
    const uint32_t b[2] = {bw[2 * nt], bw[2 * nt + 1]};
    mma_m16n8k16<__half>(acc, af, b);
    for (int e = 0; e < 4; ++e) d[(g + (e / 2) * 8) * 16 + nt * 8 + 2 * t + e % 2] = acc[e];
  }
}

std::string case_ldmatrix_mma(eet::Stream s) {
  std::vector<uint16_t> a(256), w(256);
  std::vector<float> af(256), wf(256);
  for (int i = 0; i < 256; ++i) {
    af[i] = float((i * 7) % 9 - 4);  // small integers: every product and sum exact in fp32
    wf[i] = float((i * 5) % 7 - 3);
    a[i] = eet::f32_to_f16(af[i]);
    w[i] = eet::f32_to_f16(wf[i]);
  }
  DevBuf da(512), dw(512), dd(256 * sizeof(float));
  da.upload(a.data());
  dw.upload(w.data());
  launch(ldmatrix_mma_kernel, dim3(1), dim3(32), 1024, s, da.as<__half>(), dw.as<__half>(), dd.as<float>());
  const auto d = download<float>(dd, 256, s);
  for (int m = 0; m < 16; ++m)
    for (int n = 0; n < 16; ++n) {
      double want = 0.0;
      for (int k = 0; k < 16; ++k) want += double(af[m * 16 + k]) * double(wf[n * 16 + k]);
      if (double(d[m * 16 + n]) != want)
        fail("ldmatrix + mma D[" + std::to_string(m) + "][" + std::to_string(n) + "] = " + std::to_string(d[m * 16 + n]) +
             ", want " + std::to_string(want));
    }
  return "ok: 16 x 16 x 16 product from ldmatrix fragments";
}

// ---- cp.async: src-size zero fill, two groups ----------------------------------------------------------------------
// Thread t copies chunk t of src with src-size t % 17 (group 0) and chunk 64 + t whole (group 1) into shared memory;
// after each wait and a barrier, it writes out its neighbour's chunk (so a copy must be visible to other threads).
__global__ void cp_async_kernel(const uint4* src, uint4* out) {
  EXTERN_SHARED(uint4, sm);  // 128 chunks
  const int t = threadIdx.x, n = blockDim.x;
  AsyncCopies<2> cp;
  cp.copy16(sm + t, src + t, t % 17);
  cp.commit();
  cp.copy16(sm + n + t, src + n + t, 16);
  cp.commit();
  cp.wait<1>();  // group 0 landed
  __syncthreads();
  out[t] = sm[(t + 1) % n];
  cp.wait<0>();
  __syncthreads();
  out[n + t] = sm[n + (t + 1) % n];
}

std::string case_cp_async(eet::Stream s) {
  const int n = 64;
  std::vector<unsigned char> src(2 * n * 16);
  for (size_t i = 0; i < src.size(); ++i) src[i] = static_cast<unsigned char>(i * 37 + 11);
  DevBuf dsrc(src.size()), dout(src.size());
  dsrc.upload(src.data());
  launch(cp_async_kernel, dim3(1), dim3(n), 2 * n * 16, s, dsrc.as<uint4>(), dout.as<uint4>());
  const auto o = download<unsigned char>(dout, src.size(), s);
  for (int t = 0; t < 2 * n; ++t) {
    const int chunk = t < n ? (t + 1) % n : n + (t - n + 1) % n;  // the neighbour's chunk thread t wrote out
    const int bytes = t < n ? chunk % 17 : 16;
    for (int b = 0; b < 16; ++b) {
      const unsigned char want = b < bytes ? src[chunk * 16 + b] : 0;
      if (o[t * 16 + b] != want)
        fail("cp.async chunk " + std::to_string(chunk) + " byte " + std::to_string(b) + " (src-size " +
             std::to_string(bytes) + "): got " + std::to_string(o[t * 16 + b]) + ", want " + std::to_string(want));
    }
  }
  return "ok: 128 chunks, src-size 0..16 zero-filled, two groups";
}

#if !defined(__CUDACC__)
// ---- emu only: the model of asynchrony, and faults ---------------------------------------------------------------
// Records a destination word before any wait, after wait<1> (group 0 landed, group 1 not) and after wait<0>.
__global__ void cp_async_pending_kernel(const uint4* src, uint32_t* out) {
  EXTERN_SHARED(uint4, sm);
  AsyncCopies<2> cp;
  cp.copy16(sm, src, 16);
  cp.commit();
  cp.copy16(sm + 1, src + 1, 8);
  cp.commit();
  out[0] = sm[0].x;
  cp.wait<1>();
  out[1] = sm[0].x;
  out[2] = sm[1].x;
  cp.wait<0>();
  out[3] = sm[1].x;
  out[4] = sm[1].w;
}

std::string case_cp_async_pending(eet::Stream s) {
  const uint32_t src[8] = {11, 12, 13, 14, 21, 22, 23, 24};
  DevBuf dsrc(sizeof src), dout(5 * sizeof(uint32_t));
  dsrc.upload(src);
  launch(cp_async_pending_kernel, dim3(1), dim3(1), 64, s, dsrc.as<uint4>(), dout.as<uint32_t>());
  const auto o = download<uint32_t>(dout, 5, s);
  const uint32_t want[5] = {0xffffffffu, 11, 0xffffffffu, 21, 0};
  for (int i = 0; i < 5; ++i)
    if (o[i] != want[i]) fail("cp.async emu model, read " + std::to_string(i) + ": got " + std::to_string(o[i]));
  return "ok: NaN bytes until the wait that covers the group; wait<1> lands the older group only";
}

__global__ void cp_async_misaligned_kernel(const uint4* src) {
  EXTERN_SHARED(unsigned char, sm);
  AsyncCopies<1> cp;
  cp.copy16(sm + 8, src, 16);
  cp.commit();
  cp.wait<0>();
}

__global__ void ldmatrix_global_kernel(const uint16_t* rows, uint32_t* out) {
  uint32_t r[4];
  ldmatrix_x4(r, rows + threadIdx.x * 8);  // global memory: the hardware faults
  out[threadIdx.x] = r[0];
}

std::string expect_cp_async_misaligned(eet::Stream s) {
  DevBuf src(64);
  return expect_kernel_error([&] { launch(cp_async_misaligned_kernel, dim3(1), dim3(32), 64, s, src.as<uint4>()); },
                             {"cp.async: address not 16-byte aligned", "[thread ("});
}

std::string expect_ldmatrix_outside_smem(eet::Stream s) {
  DevBuf rows(32 * 16), out(32 * 4);
  return expect_kernel_error(
      [&] { launch(ldmatrix_global_kernel, dim3(1), dim3(32), 0, s, rows.as<uint16_t>(), out.as<uint32_t>()); },
      {"ldmatrix: row outside the block's dynamic shared memory"});
}
#endif  // !__CUDACC__

std::vector<Case> ptx_cases() {
  std::vector<Case> c = {{"ldmatrix", case_ldmatrix}, {"ldmatrix_mma", case_ldmatrix_mma}, {"cp_async", case_cp_async}};
#if !defined(__CUDACC__)
  c.push_back({"cp_async_pending", case_cp_async_pending});
  c.push_back({"expect_cp_async_misaligned", expect_cp_async_misaligned});
  c.push_back({"expect_ldmatrix_outside_smem", expect_ldmatrix_outside_smem});
#endif
  return c;
}

}  // namespace selftest
}  // namespace EET_KNS

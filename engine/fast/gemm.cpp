// Fast cpu gemm and gemm_q8 (ops.h GemmArgs / GemmQ8Args): the activations in fp32 (converted once when the
// dtype is f16/bf16), then the output columns split over the thread pool in runs of whole register tiles; each
// thread runs the ISA's tile loop (gemm_kernel.h) on its columns. Splitting N, never K, keeps each element's
// arithmetic independent of the thread count. An input prologue (GemmPrologue) runs the fast norm / activation
// into a temporary first (cpu/gemm_prologue.h), so a fused GEMM equals this backend's unfused pair bit for bit.
#include <algorithm>
#include <vector>

#include "../cpu/gemm_prologue.h"
#include "../cpu/parallel.h"
#include "fast.h"
#include "kernels.h"

namespace eet::fast {

namespace {

constexpr int64_t kTileCols = 4;  // gemm_kernel.h kNR: chunk boundaries fall on whole tiles

void run(GemmJob j, const void* x, int64_t ldx) {
  const Kernels& kn = kernels();
  thread_local std::vector<float> xf;
  if (j.dtype == DType::F32) {
    j.x = static_cast<const float*>(x);
    j.ldx = ldx;
  } else {
    if (int64_t(xf.size()) < j.m * j.k) xf.resize(size_t(j.m * j.k));
    kn.to_f32(j.dtype, x, ldx, j.m, j.k, xf.data());
    j.x = xf.data();
    j.ldx = j.k;
  }
  const bool pack = j.m > kn.gemm_rows && j.wkind != WKind::F32;
  // Several chunks per thread: the pool hands them out dynamically, so a thread the OS delays costs less.
  const int64_t threads = cpu::op_threads();
  const int64_t work = j.m * j.n * j.k;
  const int64_t want = work < cpu::kInlineWork ? 1 : threads * 4;
  const int64_t tiles = (j.n + kTileCols - 1) / kTileCols;
  const int64_t per = std::max<int64_t>(1, (tiles + want - 1) / want) * kTileCols;
  const int64_t chunks = (j.n + per - 1) / per;
  cpu::run_chunks(chunks, [&](int64_t c) {
    thread_local std::vector<float> scratch;
    if (pack && int64_t(scratch.size()) < kn.gemm_pack_floats(j.k)) scratch.resize(size_t(kn.gemm_pack_floats(j.k)));
    kn.gemm(j, c * per, std::min(j.n, (c + 1) * per), scratch.data());
  });
}

}  // namespace

namespace {

// The fields GemmArgs and GemmQ8Args name alike; the weights are the caller's.
template <class Args>
GemmJob job_of(const Args& a, WKind wkind, const void* w) {
  GemmJob j{};
  j.dtype = a.dtype;
  j.wkind = wkind;
  j.w = w;
  j.bias = a.bias;
  j.residual = a.residual;
  j.y = a.y;
  j.ldy = a.ldy;
  j.m = a.m;
  j.n = a.n;
  j.k = a.k;
  return j;
}

}  // namespace

void op_gemm(const GemmArgs& a) {
  if (a.xform.kind != GemmXForm::None) {
    std::vector<uint8_t> input;
    op_gemm(cpu::apply_prologue(a, input, op_norm, op_act));
    return;
  }
  const WKind wk = a.dtype == DType::F16 ? WKind::F16 : a.dtype == DType::BF16 ? WKind::BF16 : WKind::F32;
  run(job_of(a, wk, a.w), a.x, a.ldx);
}

void op_gemm_q8(const GemmQ8Args& a) {
  if (a.xform.kind != GemmXForm::None) {
    std::vector<uint8_t> input;
    op_gemm_q8(cpu::apply_prologue(a, input, op_norm, op_act));
    return;
  }
  GemmJob j = job_of(a, WKind::Q8, a.wq);
  j.wscale = a.wscale;
  run(j, a.x, a.ldx);
}

const char* isa_name() { return kernels().name; }

}  // namespace eet::fast

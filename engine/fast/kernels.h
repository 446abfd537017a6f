// The fast cpu kernels' interface: one table of entry points per instruction set (isa_avx512.cpp, isa_avx2.cpp,
// isa_generic.cpp), chosen once at run time from what the CPU supports (isa.cpp), so one binary runs on any
// x86-64 (and ARM64, generic only) and uses AVX-512 or AVX2 where present. The op files (gemm.cpp, attention.cpp,
// norm.cpp, act.cpp) split the work over the thread pool and call these on their ranges.
#pragma once
#include <cstdint>

#include "../ops.h"
#include "../relpos.h"

namespace eet::fast {

enum class WKind : int32_t { F32, F16, BF16, Q8 };

// y (M, N) = x · Wᵀ (+ bias) (+ residual), for the output columns [n0, n1) of every row.
// Per output element the arithmetic is fixed, whatever M, the range or the thread: W-wide lanes accumulate
// x[k] * w[k] by fused multiply-add in k order, V::hsum reduces them, the K % W tail follows one by one, then
// bias and residual are added in fp32 and the sum is rounded once to the dtype. So a row's result does not depend
// on the batch it runs in or on the number of threads.
struct GemmJob {
  DType dtype;             // y, bias, residual
  const float* x;          // (M, K) fp32, row stride ldx (the op converts f16/bf16 activations first)
  int64_t ldx;
  WKind wkind;
  const void* w;           // (N, K) f32 / f16 / bf16, or Q8_0 int8 (ops.h GemmQ8Args)
  const uint16_t* wscale;  // (N, K / 32) float16 bits (Q8 only)
  const void* bias;        // (N) or nullptr
  const void* residual;    // (M, N) row stride ldy, or nullptr; may alias y
  void* y;                 // (M, N) row stride ldy
  int64_t ldy, m, n, k;
};

// Attention of the query rows of one (sequence, kv head, query tile) over the sequence's keys (ops.h
// AttentionArgs): rows are the tile's query tokens × the query heads that share the kv head.
struct AttentionItem {
  int32_t seq, kv_head;
  int32_t q0, q1;  // query tokens [q0, q1) of the packed batch (all of sequence seq), at most kAttentionQueryTile
};

constexpr int kAttentionQueryTile = 16;  // query tokens per AttentionItem at most

// Shared-prefix decode attention (ops.h SharedAttentionArgs) of one group of sequences (or one sequence in none) and
// one kv head: the group's shared keys once for every member's query heads, then each member's own keys.
struct SharedItem {
  int32_t kv_head;
  int32_t n;             // members
  const int32_t* seqs;   // (n) their sequence indices, the group leader first
};

struct Kernels {
  const char* name;
  // dst (m, k) fp32 = x (m, k) of dtype, row stride ldx
  void (*to_f32)(DType dtype, const void* x, int64_t ldx, int64_t m, int64_t k, float* dst);
  int gemm_rows;         // rows of x per register tile: M up to this reads the weights without packing them
  int64_t (*gemm_pack_floats)(int64_t k);  // scratch floats gemm needs per call (packed weight rows)
  void (*gemm)(const GemmJob& j, int64_t n0, int64_t n1, float* scratch);
  // scratch: attention_scratch_floats(a) floats
  int64_t (*attention_scratch_floats)(const AttentionArgs& a);
  void (*attention)(const AttentionArgs& a, const AttentionItem& item, float* scratch);
  // scratch: shared_attention_scratch_floats(a) floats
  int64_t (*shared_attention_scratch_floats)(const SharedAttentionArgs& a);
  void (*shared_attention)(const SharedAttentionArgs& a, const SharedItem& item, float* scratch);
  void (*norm)(const NormArgs& a, int64_t r0, int64_t r1);
  void (*act)(const ActArgs& a, int64_t r0, int64_t r1);
};

const Kernels& kernels_generic();
const Kernels* kernels_avx2();    // nullptr where not built (non-x86)
const Kernels* kernels_avx512();

// The table for this CPU: avx512 when it has AVX-512 F/BW/VL/DQ, else avx2 with AVX2+FMA+F16C, else generic.
// EET_CPU_ISA=generic|avx2|avx512 asks for one (the tests run each); one the CPU lacks falls back as above.
const Kernels& kernels();

}  // namespace eet::fast

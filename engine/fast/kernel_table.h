// The kernels.h table of one instruction set: the kernel templates (over the V that the including isa_*.cpp
// defined just before) instantiated and wrapped in plain functions. Included inside that file's namespace, with
// EET_ISA_NAME (its name) and EET_ISA_ROWS (rows of x per gemm register tile: as many as its registers hold).
#pragma once

#include "gemm_kernel.h"
#include "attention_kernel.h"
#include "elementwise_kernel.h"

void gemm(const GemmJob& j, int64_t n0, int64_t n1, float* scratch) { gemm_entry<EET_ISA_ROWS>(j, n0, n1, scratch); }
int64_t pack_floats(int64_t k) { return gemm_pack_floats(k); }
int64_t attn_floats(const AttentionArgs& a) { return attention_scratch_floats(a); }
void attention(const AttentionArgs& a, const AttentionItem& it, float* s) { attention_item(a, it, s); }
int64_t shared_floats(const SharedAttentionArgs& a) { return shared_attention_scratch_floats(a); }
void shared_attention(const SharedAttentionArgs& a, const SharedItem& it, float* s) { shared_attention_item(a, it, s); }
void norm(const NormArgs& a, int64_t r0, int64_t r1) { norm_rows(a, r0, r1); }
void act(const ActArgs& a, int64_t r0, int64_t r1) { act_rows(a, r0, r1); }
void to_f32(DType t, const void* x, int64_t ldx, int64_t m, int64_t k, float* d) { rows_to_f32(t, x, ldx, m, k, d); }

const Kernels table{EET_ISA_NAME, to_f32, EET_ISA_ROWS, pack_floats, gemm, attn_floats, attention, shared_floats, shared_attention,
                    norm, act};

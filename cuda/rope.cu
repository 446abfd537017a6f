// Rotary position embedding, in place on q and k:
//   q: (T, n_heads, head_dim) token stride ldq;  k: (T, n_kv_heads, head_dim) token stride ldk, or absent
//   pos: (T) int32;  inv_freq: (rot_dim / 2) fp32, computed by the host
// For token t and pair i < rot_dim/2 of every q and k head, with angle = pos[t] * inv_freq[i] (an fp32 product,
// as llama2.c and HF compute it) and (c, s) = (cos, sin)(angle):
//   x0' = x0 c - x1 s,  x1' = x0 s + x1 c
// where (x0, x1) = (x[2i], x[2i+1]) for the Adjacent layout (llama2.c, GGUF) and (x[i], x[i + rot_dim/2]) for
// HalfSplit (HF, NeoX). Elements from rot_dim to head_dim are left as they are (partial rotary).
// cos/sin come from sincosf (full range reduction: angles reach 32768 rad, where __sinf/__cosf are far off), once
// per (token, pair) into shared memory and reused by every head of the token.
// Variants (W elements per access on each side of a pair):
//   W = 16 / sizeof(T): 16-byte accesses, when q (and k) are 16-byte aligned, ldq, ldk and head_dim are multiples
//                       of W and so is rot_dim (Adjacent) or rot_dim/2 (HalfSplit);
//   W = 2 (Adjacent) / 1 (HalfSplit): element by element otherwise.
// Block policy: one token per block at a time (grid-stride over tokens), 128 threads over the token's
// (n_heads + n_kv_heads) x (pairs / W) work units.
#include "rope.cuh"

namespace EET_KNS {

constexpr int kRopeBlock = 128;

template <typename T, eet::RopeLayout L, int W, int BLOCK>
__global__ void __launch_bounds__(BLOCK)
    rope_kernel(T* __restrict__ q,                 // (T, n_heads, head_dim) stride ldq
                T* __restrict__ k,                 // (T, n_kv, head_dim) stride ldk; nullptr when n_kv = 0
                const int32_t* __restrict__ pos,   // (T)
                const float* __restrict__ inv_freq,  // (rot_dim / 2)
                int64_t n_tokens, int64_t ldq, int64_t ldk, int n_heads, int n_kv, int head_dim, int rot_dim) {
  EXTERN_SHARED(float, cos_s);  // (rot_dim / 2) cos, then (rot_dim / 2) sin
  const int half = rot_dim / 2;
  float* sin_s = cos_s + half;
  constexpr bool kAdjacent = L == eet::RopeLayout::Adjacent;
  const int units = (kAdjacent ? rot_dim : half) / W;  // work units per head
  const int total = (n_heads + n_kv) * units;
  for (int64_t t = blockIdx.x; t < n_tokens; t += gridDim.x) {
    const float p = float(pos[t]);
    for (int i = threadIdx.x; i < half; i += BLOCK) sincosf(p * inv_freq[i], &sin_s[i], &cos_s[i]);
    __syncthreads();
    for (int w = threadIdx.x; w < total; w += BLOCK) {
      const int h = w / units, u = w - h * units;
      T* x = h < n_heads ? q + t * ldq + int64_t(h) * head_dim : k + t * ldk + int64_t(h - n_heads) * head_dim;
      rope_rotate_unit<T, kAdjacent, W>(x, x, u, half, cos_s, sin_s);
    }
    __syncthreads();  // the next token overwrites cos_s / sin_s
  }
}

template <typename T, eet::RopeLayout L>
void rope_launch(const eet::RopeArgs& a, eet::Stream stream) {
  constexpr int V = kVec<T>;
  constexpr int kScalar = L == eet::RopeLayout::Adjacent ? 2 : 1;
  T* q = static_cast<T*>(a.q);
  T* k = static_cast<T*>(a.k);
  const int n_kv = k ? a.n_kv_heads : 0;
  const int span = L == eet::RopeLayout::Adjacent ? a.rot_dim : a.rot_dim / 2;  // contiguous elements per side
  const bool vec = aligned16(q) && a.ldq % V == 0 && a.head_dim % V == 0 && span % V == 0 &&
                   (!k || (aligned16(k) && a.ldk % V == 0));
  const dim3 grid(unsigned(std::min<int64_t>(a.n_tokens, 65535)));
  const size_t smem = size_t(a.rot_dim) * sizeof(float);
  if (vec) {
    launch(rope_kernel<T, L, V, kRopeBlock>, grid, dim3(kRopeBlock), smem, stream, q, k, a.pos, a.inv_freq,
           a.n_tokens, a.ldq, a.ldk, a.n_heads, n_kv, a.head_dim, a.rot_dim);
  } else {
    launch(rope_kernel<T, L, kScalar, kRopeBlock>, grid, dim3(kRopeBlock), smem, stream, q, k, a.pos, a.inv_freq,
           a.n_tokens, a.ldq, a.ldk, a.n_heads, n_kv, a.head_dim, a.rot_dim);
  }
}

void op_rope(const eet::RopeArgs& a, eet::Stream stream) {
  if (a.n_tokens == 0) return;
  EET_DISPATCH_FLOAT(a.dtype, T, {
    if (a.layout == eet::RopeLayout::Adjacent) rope_launch<T, eet::RopeLayout::Adjacent>(a, stream);
    else rope_launch<T, eet::RopeLayout::HalfSplit>(a, stream);
  });
}

}  // namespace EET_KNS

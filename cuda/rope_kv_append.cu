// Fused RoPE + KV append (engine/ops.h RopeKvAppendArgs), the LLaMA attention prologue in one launch:
//   q: (T, n_heads, head_dim) token stride ldq, rotated in place
//   k, v: (T, n_kv_heads, head_dim) token strides ldk, ldv (usually all three are column ranges of the fused
//         (T, q_width + 2 kv_width) projection); k is rotated on its way into the cache and itself left unchanged
//   pos, slots: (T) int32;  inv_freq: (rot_dim / 2) fp32, computed by the host
// The rotation is rope.cu's (angle = pos[t] * inv_freq[i] as an fp32 product, sincosf, pairs (2i, 2i+1) for
// Adjacent and (i, i + rot_dim/2) for HalfSplit, elements from rot_dim on unrotated); the placement is kvcache.cu's
// (cache element (block b, kv head h, token-in-block j, dim d) at b*block_stride + h*head_stride + j*head_dim + d,
// token t at slot slots[t] = b*block_size + j). Equal to rope then kv_append, without the second launch and without
// writing k back to the projection and reading it again.
// Variants (W elements per access on each side of a pair, CW per copied access):
//   W = CW = 16 / sizeof(T): 16-byte accesses, when q, k, v and both caches are 16-byte aligned and ldq, ldk, ldv,
//                            head_dim, head_stride, block_stride and rot_dim (Adjacent) / rot_dim/2 (HalfSplit) are
//                            multiples of W;
//   W = 2 (Adjacent) / 1 (HalfSplit), CW = 1: element by element otherwise.
// Block policy: one token per block at a time (grid-stride over tokens), 128 threads over the token's work units:
// the rotation units of its q and k heads, then the copies (k's unrotated tail, v).
#include <initializer_list>

#include "rope.cuh"

namespace EET_KNS {

constexpr int kRopeKvBlock = 128;

// Sizes and strides (elements) of one call. (Outside an anonymous namespace: the emu's launch trace names kernels
// taking it.)
struct RopeKvDims {
  int64_t n_tokens, ldq, ldk, ldv;
  int64_t block_stride, head_stride;
  int32_t block_size, n_heads, n_kv, head_dim, rot_dim;
};

template <typename T, eet::RopeLayout L, int W, int CW, int BLOCK>
__global__ void __launch_bounds__(BLOCK)
    rope_kv_append_kernel(T* __restrict__ q,                  // (T, n_heads, head_dim) stride ldq, in place
                          const T* __restrict__ k,            // (T, n_kv, head_dim) stride ldk
                          const T* __restrict__ v,            // (T, n_kv, head_dim) stride ldv
                          const int32_t* __restrict__ pos,    // (T)
                          const float* __restrict__ inv_freq, // (rot_dim / 2)
                          const int32_t* __restrict__ slots,  // (T)
                          T* __restrict__ k_cache, T* __restrict__ v_cache, RopeKvDims d) {
  EXTERN_SHARED(float, cos_s);  // (rot_dim / 2) cos, then (rot_dim / 2) sin
  const int half = d.rot_dim / 2;
  float* sin_s = cos_s + half;
  constexpr bool kAdjacent = L == eet::RopeLayout::Adjacent;
  const int units = (kAdjacent ? d.rot_dim : half) / W;   // rotation units per head
  const int rot_total = (d.n_heads + d.n_kv) * units;
  const int tail_units = (d.head_dim - d.rot_dim) / CW;  // k's unrotated elements, copied
  const int head_units = d.head_dim / CW;                // v, copied
  const int kv_units = tail_units + head_units;          // copy units per kv head
  const int total = rot_total + d.n_kv * kv_units;
  for (int64_t t = blockIdx.x; t < d.n_tokens; t += gridDim.x) {
    const float p = float(pos[t]);
    const int64_t slot = slots[t];
    const int64_t row = (slot / d.block_size) * d.block_stride + (slot % d.block_size) * d.head_dim;
    for (int i = threadIdx.x; i < half; i += BLOCK) sincosf(p * inv_freq[i], &sin_s[i], &cos_s[i]);
    __syncthreads();
    for (int w = threadIdx.x; w < total; w += BLOCK) {
      if (w < rot_total) {
        const int h = w / units, u = w - h * units;
        const T* src;
        T* dst;
        if (h < d.n_heads) {
          dst = q + t * d.ldq + int64_t(h) * d.head_dim;
          src = dst;
        } else {
          src = k + t * d.ldk + int64_t(h - d.n_heads) * d.head_dim;
          dst = k_cache + row + int64_t(h - d.n_heads) * d.head_stride;
        }
        rope_rotate_unit<T, kAdjacent, W>(src, dst, u, half, cos_s, sin_s);
      } else {
        const int c = w - rot_total, h = c / kv_units, u = c - h * kv_units;
        const int64_t cache = row + int64_t(h) * d.head_stride, in = int64_t(h) * d.head_dim;
        if (u < tail_units) {
          const int e = d.rot_dim + u * CW;
          store_pack<T, CW>(k_cache + cache + e, load_pack<T, CW>(k + t * d.ldk + in + e));
        } else {
          const int e = (u - tail_units) * CW;
          store_pack<T, CW>(v_cache + cache + e, load_pack<T, CW>(v + t * d.ldv + in + e));
        }
      }
    }
    __syncthreads();  // the next token overwrites cos_s / sin_s
  }
}

template <typename T, eet::RopeLayout L>
void rope_kv_append_launch(const eet::RopeKvAppendArgs& a, eet::Stream stream) {
  constexpr int V = kVec<T>;
  constexpr int kScalar = L == eet::RopeLayout::Adjacent ? 2 : 1;
  const eet::KvLayout& l = a.layout;
  RopeKvDims d{};
  d.n_tokens = a.n_tokens;
  d.ldq = a.ldq;
  d.ldk = a.ldk;
  d.ldv = a.ldv;
  d.block_stride = l.block_stride;
  d.head_stride = l.head_stride;
  d.block_size = l.block_size;
  d.n_heads = a.n_heads;
  d.n_kv = l.n_kv_heads;
  d.head_dim = l.head_dim;
  d.rot_dim = a.rot_dim;
  T* q = static_cast<T*>(a.q);
  const T* k = static_cast<const T*>(a.k);
  const T* v = static_cast<const T*>(a.v);
  T* kc = static_cast<T*>(a.k_cache);
  T* vc = static_cast<T*>(a.v_cache);
  const int span = L == eet::RopeLayout::Adjacent ? a.rot_dim : a.rot_dim / 2;  // contiguous elements per side
  bool vec = aligned16(q) && aligned16(k) && aligned16(v) && aligned16(kc) && aligned16(vc) && span % V == 0 &&
             a.rot_dim % V == 0;
  for (int64_t s : {a.ldq, a.ldk, a.ldv, int64_t(l.head_dim), l.head_stride, l.block_stride}) vec = vec && s % V == 0;
  const dim3 grid(unsigned(std::min<int64_t>(a.n_tokens, 65535)));
  const size_t smem = size_t(a.rot_dim) * sizeof(float);
  if (vec) {
    launch(rope_kv_append_kernel<T, L, V, V, kRopeKvBlock>, grid, dim3(kRopeKvBlock), smem, stream, q, k, v, a.pos,
           a.inv_freq, a.slots, kc, vc, d);
  } else {
    launch(rope_kv_append_kernel<T, L, kScalar, 1, kRopeKvBlock>, grid, dim3(kRopeKvBlock), smem, stream, q, k, v,
           a.pos, a.inv_freq, a.slots, kc, vc, d);
  }
}

void op_rope_kv_append(const eet::RopeKvAppendArgs& a, eet::Stream stream) {
  if (a.n_tokens == 0) return;
  EET_DISPATCH_FLOAT(a.dtype, T, {
    if (a.rope_layout == eet::RopeLayout::Adjacent) rope_kv_append_launch<T, eet::RopeLayout::Adjacent>(a, stream);
    else rope_kv_append_launch<T, eet::RopeLayout::HalfSplit>(a, stream);
  });
}

}  // namespace EET_KNS

// Paged KV cache copies (engine/ops.h "paged KV cache").
//   kv_append: k, v (T, n_kv_heads, head_dim) with token strides ldk/ldv  ->  cache slot slots[t] of every kv head
//   kv_gather: the first len tokens of one sequence, read through its block table  ->  contiguous (len, n_kv_heads,
//              head_dim) k_out / v_out
// Cache element (block b, kv head h, token-in-block j, dim d) sits at b*block_stride + h*head_stride + j*head_dim + d.
//
// Both are pure copies, so the kernels move raw units U instead of typed elements: U = uint4 (16 bytes) when the
// pointers, strides and head_dim allow it (checked at run time in the launcher), otherwise 4-byte words when those
// fit, otherwise single elements. One thread moves one unit of K and the same unit of V; the flat index over
// (token, kv head, unit-in-head) runs in a grid-stride loop, so rows of any width (one unit up to 1024 heads x 256
// dims) keep every thread busy. BLOCK = 256; the grid is capped and the loop covers the rest.
#include <algorithm>
#include <initializer_list>

#include "common.cuh"

namespace EET_KNS {

constexpr int kCopyBlock = 256;
constexpr int64_t kMaxCopyBlocks = 65535;

// Sizes and strides of one copy, in units of U. (Outside the anonymous namespace: kernels taking it keep external
// linkage, so the emu's launch trace can name them.)
struct KvCopyDims {
  int64_t n_tokens;      // tokens to move
  int64_t head_units;    // units per (token, kv head) row: head_dim * elem_size / sizeof(U)
  int64_t row_units;     // n_kv_heads * head_units
  int64_t block_stride, head_stride;
  int64_t ld_k, ld_v;    // token strides of the contiguous side (kv_append: ldk, ldv; kv_gather: row_units)
  int32_t block_size;
};

namespace {

// Cache offset (in units) of unit u of token-in-block j of cache block blk, for kv head h.
__device__ __forceinline__ int64_t cache_unit(const KvCopyDims& d, int64_t blk, int64_t j, int64_t h, int64_t u) {
  return blk * d.block_stride + h * d.head_stride + j * d.head_units + u;
}

}  // namespace

template <typename U, int BLOCK>
__global__ __launch_bounds__(BLOCK) void kv_append_kernel(const U* __restrict__ k,  // (T, row) token stride ld_k
                                                          const U* __restrict__ v,  // (T, row) token stride ld_v
                                                          const int32_t* __restrict__ slots,  // (T)
                                                          U* __restrict__ k_cache, U* __restrict__ v_cache,
                                                          KvCopyDims d) {
  const int64_t total = d.n_tokens * d.row_units;
  for (int64_t i = int64_t(blockIdx.x) * BLOCK + threadIdx.x; i < total; i += int64_t(gridDim.x) * BLOCK) {
    const int64_t t = i / d.row_units, r = i - t * d.row_units;
    const int64_t h = r / d.head_units, u = r - h * d.head_units;
    const int64_t slot = slots[t];
    const int64_t dst = cache_unit(d, slot / d.block_size, slot % d.block_size, h, u);
    k_cache[dst] = k[t * d.ld_k + r];
    v_cache[dst] = v[t * d.ld_v + r];
  }
}

template <typename U, int BLOCK>
__global__ __launch_bounds__(BLOCK) void kv_gather_kernel(const U* __restrict__ k_cache, const U* __restrict__ v_cache,
                                                          const int32_t* __restrict__ block_table,  // (ceil(len/bs))
                                                          U* __restrict__ k_out,  // (len, row) contiguous
                                                          U* __restrict__ v_out, KvCopyDims d) {
  const int64_t total = d.n_tokens * d.row_units;
  for (int64_t i = int64_t(blockIdx.x) * BLOCK + threadIdx.x; i < total; i += int64_t(gridDim.x) * BLOCK) {
    const int64_t t = i / d.row_units, r = i - t * d.row_units;
    const int64_t h = r / d.head_units, u = r - h * d.head_units;
    const int64_t src = cache_unit(d, block_table[t / d.block_size], t % d.block_size, h, u);
    k_out[t * d.ld_k + r] = k_cache[src];
    v_out[t * d.ld_v + r] = v_cache[src];
  }
}

namespace {

// The widest copy unit (16, 4 or elem_size bytes) that divides every stride and every pointer.
int copy_unit_bytes(size_t elem_size, std::initializer_list<int64_t> strides, std::initializer_list<const void*> ptrs) {
  for (int unit : {16, 4}) {
    if (size_t(unit) < elem_size) continue;
    bool ok = true;
    for (int64_t s : strides) ok = ok && (s * int64_t(elem_size)) % unit == 0;
    for (const void* p : ptrs) ok = ok && reinterpret_cast<uintptr_t>(p) % unsigned(unit) == 0;
    if (ok) return unit;
  }
  return int(elem_size);
}

// Element counts -> unit counts for a unit of unit_bytes.
KvCopyDims copy_dims(const eet::KvLayout& l, int64_t n_tokens, int64_t ld_k, int64_t ld_v, size_t elem_size,
                     int unit_bytes) {
  const int64_t per = unit_bytes / int64_t(elem_size);
  KvCopyDims d{};
  d.n_tokens = n_tokens;
  d.head_units = l.head_dim / per;
  d.row_units = d.head_units * l.n_kv_heads;
  d.block_stride = l.block_stride / per;
  d.head_stride = l.head_stride / per;
  d.ld_k = ld_k / per;
  d.ld_v = ld_v / per;
  d.block_size = l.block_size;
  return d;
}

dim3 copy_grid(const KvCopyDims& d) {
  return dim3(unsigned(std::min<int64_t>(kMaxCopyBlocks, ceil_div(d.n_tokens * d.row_units, kCopyBlock))));
}

template <typename U>
void kv_append_launch(const eet::KvAppendArgs& a, const KvCopyDims& d, eet::Stream stream) {
  launch(kv_append_kernel<U, kCopyBlock>, copy_grid(d), dim3(kCopyBlock), 0, stream, static_cast<const U*>(a.k),
         static_cast<const U*>(a.v), a.slots, static_cast<U*>(a.k_cache), static_cast<U*>(a.v_cache), d);
}

template <typename U>
void kv_gather_launch(const eet::KvGatherArgs& a, const KvCopyDims& d, eet::Stream stream) {
  launch(kv_gather_kernel<U, kCopyBlock>, copy_grid(d), dim3(kCopyBlock), 0, stream, static_cast<const U*>(a.k_cache),
         static_cast<const U*>(a.v_cache), a.block_table, static_cast<U*>(a.k_out), static_cast<U*>(a.v_out), d);
}

// Calls f(U{}) with U the unsigned type of unit_bytes.
template <typename F>
void dispatch_unit(int unit_bytes, F&& f) {
  switch (unit_bytes) {
    case 16: f(uint4{}); break;
    case 4: f(uint32_t{}); break;
    default: f(uint16_t{}); break;
  }
}

}  // namespace

void op_kv_append(const eet::KvAppendArgs& a, eet::Stream stream) {
  if (a.n_tokens == 0) return;
  const eet::KvLayout& l = a.layout;
  const size_t es = eet::dtype_size(a.dtype);
  const int unit = copy_unit_bytes(es, {l.head_dim, l.head_stride, l.block_stride, a.ldk, a.ldv},
                                   {a.k, a.v, a.k_cache, a.v_cache});
  const KvCopyDims d = copy_dims(l, a.n_tokens, a.ldk, a.ldv, es, unit);
  dispatch_unit(unit, [&](auto u) { kv_append_launch<decltype(u)>(a, d, stream); });
}

void op_kv_gather(const eet::KvGatherArgs& a, eet::Stream stream) {
  if (a.len == 0) return;
  const eet::KvLayout& l = a.layout;
  const size_t es = eet::dtype_size(a.dtype);
  const int64_t row = int64_t(l.n_kv_heads) * l.head_dim;
  const int unit = copy_unit_bytes(es, {l.head_dim, l.head_stride, l.block_stride}, {a.k_cache, a.v_cache, a.k_out, a.v_out});
  const KvCopyDims d = copy_dims(l, a.len, row, row, es, unit);
  dispatch_unit(unit, [&](auto u) { kv_gather_launch<decltype(u)>(a, d, stream); });
}

}  // namespace EET_KNS

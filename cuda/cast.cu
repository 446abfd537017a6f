// Float dtype conversion:  dst[i] = (D) src[i]   src: (n) of S, dst: (n) of D; S, D in {f32, f16, bf16}
// Through fp32 (exact for every source type), then one round-to-nearest-even to D: overflow gives inf,
// tiny values become subnormals or zero, -0 stays -0, NaN stays NaN.
// Variants (one kernel, W elements per access):
//   W = 8: 8 elements per thread and step (16 bytes of a 2-byte type, 2 x 16 bytes of f32), when src and dst are
//          16-byte aligned; the n % 8 last elements are done one by one after the vector loop;
//   W = 1: element by element otherwise.
// Block policy: 256 threads, grid-stride, at most 8192 blocks.
#include "pack.cuh"

namespace EET_KNS {

constexpr int kCastBlock = 256;

template <typename S, typename D, int W, int BLOCK>
__global__ void __launch_bounds__(BLOCK) cast_kernel(const S* __restrict__ src,  // (n)
                                                     D* __restrict__ dst,        // (n)
                                                     int64_t n) {
  const int64_t stride = int64_t(gridDim.x) * BLOCK;
  const int64_t first = int64_t(blockIdx.x) * BLOCK + threadIdx.x;
  const int64_t units = n / W;
  for (int64_t u = first; u < units; u += stride) {
    const Pack<S, W> s = load_pack<S, W>(src + u * W);
    Pack<D, W> d;
#pragma unroll
    for (int j = 0; j < W; ++j) d.e[j] = from_f32<D>(to_f32(s.e[j]));
    store_pack<D, W>(dst + u * W, d);
  }
  for (int64_t i = units * W + first; i < n; i += stride) dst[i] = from_f32<D>(to_f32(src[i]));
}

template <typename S, typename D>
void cast_launch(const eet::CastArgs& a, eet::Stream stream) {
  constexpr int V = 8;
  static_assert(V * sizeof(S) % 16 == 0 && V * sizeof(D) % 16 == 0, "8 elements of any float dtype fill 16-byte accesses");
  const bool vec = aligned16(a.src) && aligned16(a.dst);
  const int64_t threads = vec ? std::max<int64_t>(a.n / V, 1) : a.n;
  const dim3 grid(unsigned(std::min<int64_t>(ceil_div(threads, kCastBlock), 8192)));
  const S* src = static_cast<const S*>(a.src);
  D* dst = static_cast<D*>(a.dst);
  if (vec) launch(cast_kernel<S, D, V, kCastBlock>, grid, dim3(kCastBlock), 0, stream, src, dst, a.n);
  else launch(cast_kernel<S, D, 1, kCastBlock>, grid, dim3(kCastBlock), 0, stream, src, dst, a.n);
}

void op_cast(const eet::CastArgs& a, eet::Stream stream) {
  if (a.n == 0) return;
  EET_DISPATCH_FLOAT(a.src_dtype, S, EET_DISPATCH_FLOAT(a.dst_dtype, D, cast_launch<S, D>(a, stream)));
}

}  // namespace EET_KNS

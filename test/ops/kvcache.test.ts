// Paged KV cache copies (engine/ops.h "paged KV cache"): kv_append scatters token rows into cache slots, kv_gather
// reads a sequence back through a shuffled block table. Layouts: 'dense' (default strides, 16-byte copies),
// 'odd' (odd token/head/block strides: 4-byte copies for f32, element copies for f16/bf16) and 'even' (f16/bf16
// strides that are multiples of 2 elements but not 8: 4-byte copies).
import { FloatDType, grid, OpCase, opSuite, SHORT } from './harness';
import { normal, shuffled } from '../util/random';

type Layout = 'dense' | 'odd' | 'even';

interface Geometry {
  headDim: number;
  nKvHeads: number;
  blockSize: number;
  headStride: number;
  blockStride: number;
  ld: number;  // token stride of the contiguous side (kv_append's ldk/ldv)
}

function geometry(layout: Layout): Geometry {
  if (layout === 'dense') return { headDim: 64, nKvHeads: 2, blockSize: 16, headStride: 16 * 64, blockStride: 2 * 16 * 64, ld: 128 };
  if (layout === 'even') {
    const headStride = 16 * 6 + 2;
    return { headDim: 6, nKvHeads: 3, blockSize: 16, headStride, blockStride: 3 * headStride + 4, ld: 3 * 6 + 2 };
  }
  const headStride = 7 * 10 + 1;
  return { headDim: 10, nKvHeads: 3, blockSize: 7, headStride, blockStride: 3 * headStride + 3, ld: 3 * 10 + 1 };
}

function layoutParams(g: Geometry) {
  return { headDim: g.headDim, nKvHeads: g.nKvHeads, blockSize: g.blockSize, headStride: g.headStride, blockStride: g.blockStride };
}

function appendCase(dtype: FloatDType, layout: Layout, nTokens: number, seed: number): OpCase {
  const g = geometry(layout);
  const nBlocks = Math.ceil(nTokens / g.blockSize) + 3;
  const slots = Int32Array.from(shuffled(nBlocks * g.blockSize, seed).slice(0, nTokens));
  const cacheLen = nBlocks * g.blockStride;
  return {
    name: `kv_append(dtype=${SHORT[dtype]}, layout=${layout}, tokens=${nTokens}, D=${g.headDim}, kvHeads=${g.nKvHeads}, bs=${g.blockSize})`,
    op: 'kv_append',
    dtype,
    params: { ...layoutParams(g), nTokens, ldk: g.ld, ldv: g.ld },
    inputs: () => ({
      k: normal(nTokens * g.ld, seed + 1),
      v: normal(nTokens * g.ld, seed + 2),
      slots,
      kCache: normal(cacheLen, seed + 3),
      vCache: normal(cacheLen, seed + 4),
    }),
    outputs: {},
    inout: ['kCache', 'vCache'],
  };
}

function gatherCase(dtype: FloatDType, layout: Layout, len: number, seed: number): OpCase {
  const g = geometry(layout);
  const used = Math.ceil(len / g.blockSize);
  const nBlocks = used + 3;
  const blockTable = Int32Array.from(shuffled(nBlocks, seed).slice(0, used));
  const cacheLen = nBlocks * g.blockStride;
  const row = g.nKvHeads * g.headDim;
  return {
    name: `kv_gather(dtype=${SHORT[dtype]}, layout=${layout}, len=${len}, D=${g.headDim}, kvHeads=${g.nKvHeads}, bs=${g.blockSize})`,
    op: 'kv_gather',
    dtype,
    params: { ...layoutParams(g), len },
    inputs: () => ({ kCache: normal(cacheLen, seed + 1), vCache: normal(cacheLen, seed + 2), blockTable }),
    outputs: { kOut: { numel: len * row }, vOut: { numel: len * row } },
  };
}

const dtypes: FloatDType[] = ['float32', 'float16', 'bfloat16'];
const cases: OpCase[] = [];
let seed = 100;
for (const { dtype, layout, n } of grid({ dtype: dtypes, layout: ['dense', 'odd'] as Layout[], n: [1, 33] })) {
  cases.push(appendCase(dtype, layout, n, (seed += 10)));
}
for (const dtype of ['float16', 'bfloat16'] as FloatDType[]) cases.push(appendCase(dtype, 'even', 33, (seed += 10)));
for (const { dtype, layout, n } of grid({ dtype: dtypes, layout: ['dense', 'odd'] as Layout[], n: [1, 100] })) {
  cases.push(gatherCase(dtype, layout, n, (seed += 10)));
}
cases.push(gatherCase('float16', 'even', 33, (seed += 10)));

opSuite('kv_append / kv_gather', cases);

// gemm op: y = x·Wᵀ (+ bias) (+ residual), emu (and cuda when present) vs the cpu reference.
// Cases are chosen so that every kernel of cuda/gemm.cu runs in every dtype it serves:
//   gemv_kernel<T, 1> and <T, 16> (M <= 16): 16-byte path (K, ldx multiples of the vector width) and element path
//     (odd K or ldx), K split over 1..8 warps (small N, large K);
//   gemm_mma_kernel<T, 64> and <T, 128> (M > 16, f16/bf16): tensor-core tiles with M, N, K edges, strided x / y;
//   gemm_simt_kernel (M > 16, f32).
// Residual: none, a separate tensor, or in place (residual aliases y). With ldy > n, or in place, y is an in/out
// tensor with random contents, so the gaps between rows must come back untouched.
import { FloatDType, OpCase, SHORT, opSuite } from './harness';
import { uniform } from '../util/random';

const DTYPES: FloatDType[] = ['float32', 'float16', 'bfloat16'];
type Residual = 'none' | 'sep' | 'inplace';

interface Shape {
  m: number;
  n: number;
  k: number;
  bias: boolean;
  residual: Residual;
  ldx?: number;
  ldy?: number;
}

function gemmCase(dtype: FloatDType, s: Shape, seed: number): OpCase {
  const ldx = s.ldx ?? s.k;
  const ldy = s.ldy ?? s.n;
  const xLen = (s.m - 1) * ldx + s.k;
  const yLen = (s.m - 1) * ldy + s.n;
  const yInout = s.residual === 'inplace' || ldy > s.n;
  const strides = (s.ldx !== undefined ? `, ldx=${ldx}` : '') + (s.ldy !== undefined ? `, ldy=${ldy}` : '');
  const params: Record<string, unknown> = { m: s.m, n: s.n, k: s.k, ldx, ldy };
  if (s.residual === 'inplace') params.residualInPlace = true;
  return {
    name: `gemm(dtype=${SHORT[dtype]}, m=${s.m}, n=${s.n}, k=${s.k}, bias=${s.bias ? 'yes' : 'no'}, residual=${s.residual}${strides})`,
    op: 'gemm',
    dtype,
    params,
    inputs: () => {
      const t: Record<string, Float32Array> = { x: uniform(xLen, seed, -1, 1), w: uniform(s.n * s.k, seed + 1, -1, 1) };
      if (s.bias) t.bias = uniform(s.n, seed + 2, -1, 1);
      if (s.residual === 'sep') t.residual = uniform(yLen, seed + 3, -2, 2);
      if (yInout) t.y = uniform(yLen, seed + 4, -2, 2);
      return t;
    },
    outputs: yInout ? {} : { y: { numel: yLen } },
    inout: yInout ? ['y'] : undefined,
  };
}

// bias / residual combinations, rotated over the sweep
const EPILOGUES: Array<Pick<Shape, 'bias' | 'residual'>> = [
  { bias: false, residual: 'none' },
  { bias: true, residual: 'none' },
  { bias: false, residual: 'sep' },
  { bias: true, residual: 'inplace' },
];

const cases: OpCase[] = [];
let seed = 1;

// Sweep of small shapes: every M class (gemv 1 / 2..16, tiled 17+), N and K edges, all dtypes.
for (const dtype of DTYPES) {
  let i = 0;
  for (const m of [1, 2, 7, 16, 17, 33]) {
    for (const n of [1, 33, 64, 127]) {
      for (const k of [1, 8, 33, 64, 172]) {
        cases.push(gemmCase(dtype, { m, n, k, ...EPILOGUES[i++ % EPILOGUES.length] }, (seed += 10)));
      }
    }
  }
}

// Larger shapes, strides, and one big tile per dtype.
const LARGER: Shape[] = [
  { m: 1, n: 768, k: 768, bias: true, residual: 'none' },
  { m: 1, n: 33, k: 1025, bias: false, residual: 'sep' },
  { m: 2, n: 127, k: 768, bias: true, residual: 'inplace' },
  { m: 7, n: 64, k: 1025, bias: true, residual: 'sep', ldx: 1030, ldy: 70 },
  { m: 16, n: 768, k: 1025, bias: false, residual: 'none' },
  { m: 16, n: 64, k: 768, bias: true, residual: 'none', ldx: 776, ldy: 72 },
  { m: 7, n: 33, k: 64, bias: false, residual: 'none', ldx: 81, ldy: 40 },
  { m: 17, n: 768, k: 172, bias: true, residual: 'sep' },
  { m: 33, n: 127, k: 172, bias: true, residual: 'inplace', ldx: 180, ldy: 130 },
  { m: 17, n: 64, k: 33, bias: false, residual: 'sep', ldx: 35, ldy: 65 },
  { m: 128, n: 33, k: 1025, bias: true, residual: 'none' },
  { m: 128, n: 768, k: 768, bias: true, residual: 'sep' },
];
for (const dtype of DTYPES) for (const s of LARGER) cases.push(gemmCase(dtype, s, (seed += 10)));

// 128-row tensor-core tiles (chosen when 128 x 128 tiles alone fill the GPU: >= 132 of them).
for (const dtype of ['float16', 'bfloat16'] as FloatDType[]) {
  cases.push(gemmCase(dtype, { m: 33, n: 16900, k: 40, bias: true, residual: 'none' }, (seed += 10)));
}
// K split over 8 warps of a block (small N, long K).
cases.push(gemmCase('float32', { m: 1, n: 64, k: 2048, bias: false, residual: 'sep' }, (seed += 10)));
cases.push(gemmCase('bfloat16', { m: 3, n: 33, k: 4096, bias: true, residual: 'none' }, (seed += 10)));
// The decode shape: one token through a 4096 x 4096 projection.
cases.push(gemmCase('float16', { m: 1, n: 4096, k: 4096, bias: false, residual: 'inplace' }, (seed += 10)));

opSuite('gemm', cases);

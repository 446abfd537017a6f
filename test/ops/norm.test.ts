// norm op: LayerNorm / RMSNorm, plain and fused with the residual add, emu (and cuda when present) vs the cpu
// reference. Every row length runs several kinds and dtypes, chosen so that each fold of cuda/norm.cu (warp per row,
// 128- to 1024-thread blocks) sees every dtype, the 16-byte path (C a multiple of 8) and the element-wise
// path (odd C), and both kinds run the hidden sizes 12288 and 16384.
import { FloatDType, OpCase, SHORT, opSuite } from './harness';
import { normal, uniform } from '../util/random';

const DTYPES: FloatDType[] = ['float32', 'float16', 'bfloat16'];
const COLS = [1, 33, 100, 512, 768, 1025, 4095, 4096, 5120, 12288, 16383, 16384];
const VARIANTS = [
  { kind: 'layer', residual: false, bias: true },
  { kind: 'rms', residual: false, bias: false },
  { kind: 'layer', residual: true, bias: true },
  { kind: 'rms', residual: true, bias: false },
  { kind: 'layer', residual: true, bias: false },
] as const;

function normCase(kind: 'layer' | 'rms', residual: boolean, bias: boolean, dtype: FloatDType, rows: number, cols: number, seed: number): OpCase {
  const n = rows * cols;
  const outputs: OpCase['outputs'] = { y: { numel: n } };
  if (residual) outputs.residualOut = { numel: n };
  return {
    name: `norm(kind=${kind}, residual=${residual ? 'yes' : 'no'}, bias=${bias ? 'yes' : 'no'}, dtype=${SHORT[dtype]}, rows=${rows}, cols=${cols})`,
    op: 'norm',
    dtype,
    params: { kind, rows, cols, eps: 1e-5 },
    inputs: () => {
      // an offset mean so LayerNorm's mean subtraction matters
      const x = normal(n, seed, 1).map((v) => v + 0.75);
      const t: Record<string, Float32Array> = { x, weight: uniform(cols, seed + 1, 0.5, 1.5) };
      if (residual) t.residual = normal(n, seed + 2, 1);
      if (bias) t.bias = uniform(cols, seed + 3, -0.5, 0.5);
      return t;
    },
    outputs,
  };
}

const cases: OpCase[] = [];
COLS.forEach((cols, ci) => {
  VARIANTS.forEach((v, vi) => {
    const rows = cols <= 1025 ? 33 : cols <= 5120 ? 3 : vi % 2 === 0 ? 3 : 1;
    cases.push(normCase(v.kind, v.residual, v.bias, DTYPES[(ci + vi) % 3], rows, cols, 1000 * ci + 10 * vi));
  });
});

// In place, as the model runs it: residualOut is the residual tensor itself (both kinds, folded and warp paths).
for (const [kind, cols, dtype] of [['rms', 4096, 'float16'], ['layer', 12288, 'float32'], ['rms', 100, 'bfloat16']] as const) {
  const c = normCase(kind, true, kind === 'layer', dtype, 3, cols, 777 + cols);
  cases.push({ ...c, name: c.name.replace('residual=yes', 'residual=in-place'), aliases: { residualOut: 'residual' } });
}

opSuite('norm', cases);

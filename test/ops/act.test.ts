// act: gelu_tanh / gelu_erf / silu / relu with optional bias, and the gated swiglu and geglu_tanh (T5 v1.1), emu (and
// cuda) vs the cpu reference; relu and geglu_tanh also by their definitions.
// Contiguous rows with n a multiple of 8 take the 16-byte path; n = 1, 33, 1025 and odd strides the element path.
// Strided cases read x/up as the halves of a fused (m, 2n) gate-up buffer (ldx = ldu = 2n) and write y with a gap.
import { FloatDType, OpCase, SHORT, grid, opSuite } from './harness';
import { binding } from '../../lib/binding';
import { normal } from '../util/random';

type Kind = 'gelu_tanh' | 'gelu_erf' | 'silu' | 'relu' | 'swiglu' | 'geglu_tanh';
const gated = (k: Kind) => k === 'swiglu' || k === 'geglu_tanh';
interface Shape { m: number; n: number; ldx?: number; ldu?: number; ldy?: number }

const contiguous: Shape[] = [
  { m: 1, n: 1 }, { m: 16, n: 1 }, { m: 3, n: 33 }, { m: 16, n: 1025 }, { m: 1, n: 4096 }, { m: 3, n: 11008 }, { m: 16, n: 11008 },
];
const strided: Shape[] = [
  { m: 3, n: 1024, ldx: 2048, ldu: 2048, ldy: 1032 }, // fused gate-up halves: 16-byte path
  { m: 16, n: 100, ldx: 103, ldu: 107, ldy: 101 },    // odd strides: element path
];

function actCase(dtype: FloatDType, kind: Kind, bias: boolean, sh: Shape, seed: number): OpCase {
  const { m, n } = sh;
  const ldx = sh.ldx ?? n, ldu = sh.ldu ?? n, ldy = sh.ldy ?? n;
  const extent = (ld: number) => (m - 1) * ld + n;
  const strides = sh.ldx ? `, ldx=${ldx}${gated(kind) ? `, ldu=${ldu}` : ''}, ldy=${ldy}` : '';
  const params: Record<string, unknown> = { kind, m, n, ldx, ldy };
  if (gated(kind)) params.ldu = ldu;
  const gaps = ldy > n && m > 1;
  return {
    name: `act(kind=${kind}, dtype=${SHORT[dtype]}, bias=${bias}, m=${m}, n=${n}${strides})`,
    op: 'act',
    dtype,
    params,
    inputs: () => {
      const inputs: Record<string, Float32Array> = { x: normal(extent(ldx), seed, 3) };
      if (bias) inputs.bias = normal(n, seed + 1, 0.5);
      if (gated(kind)) inputs.up = normal(extent(ldu), seed + 2);
      if (gaps) inputs.y = normal(extent(ldy), seed + 3);
      return inputs;
    },
    // with gaps between y's rows, y starts as data (the gaps must come back unchanged) rather than poison
    outputs: gaps ? {} : { y: { numel: extent(ldy) } },
    inout: gaps ? ['y'] : undefined,
  };
}

const cases: OpCase[] = [];
let seed = 1000;
const variants: Array<{ kind: Kind; bias: boolean }> = [
  { kind: 'gelu_tanh', bias: false }, { kind: 'gelu_tanh', bias: true },
  { kind: 'gelu_erf', bias: false }, { kind: 'gelu_erf', bias: true },
  { kind: 'silu', bias: false }, { kind: 'silu', bias: true },
  { kind: 'relu', bias: false }, { kind: 'relu', bias: true },
  { kind: 'swiglu', bias: false }, { kind: 'geglu_tanh', bias: false },
];
for (const { dtype, v, sh } of grid({ dtype: ['float32', 'float16', 'bfloat16'] as FloatDType[], v: variants, sh: contiguous })) {
  cases.push(actCase(dtype, v.kind, v.bias, sh, (seed += 10)));
}
for (const { dtype, v, sh } of grid({
  dtype: ['float32', 'float16', 'bfloat16'] as FloatDType[],
  v: [{ kind: 'swiglu' as Kind, bias: false }, { kind: 'geglu_tanh' as Kind, bias: false }, { kind: 'gelu_tanh' as Kind, bias: true }],
  sh: strided,
})) {
  cases.push(actCase(dtype, v.kind, v.bias, sh, (seed += 10)));
}

// In place (y is x), as the model applies swiglu to the gate half of its fused buffer.
for (const [dtype, kind, m, n] of [['float16', 'swiglu', 3, 4096], ['float32', 'gelu_tanh', 16, 1025]] as const) {
  const c = actCase(dtype, kind, kind !== 'swiglu', { m, n }, (seed += 10));
  cases.push({ ...c, name: c.name.replace('act(', 'act(in-place, '), aliases: { y: 'x' } });
}

opSuite('act', cases);

describe('relu and geglu_tanh by their definitions (independent of the cpu reference)', () => {
  // HF's ReLU and gelu_new (NewGELUActivation): 0.5 h (1 + tanh(sqrt(2/pi) (h + 0.044715 h^3))), in double here.
  const geluNew = (h: number) => 0.5 * h * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (h + 0.044715 * h ** 3)));
  test.each(['cpu-ref', 'cpu', 'emu'])('%s', (device) => {
    const b = binding();
    const n = 37, m = 3;
    const x = normal(m * n, 5, 3), up = normal(m * n, 6), bias = normal(n, 7, 0.5);
    const run = (kind: Kind, withBias: boolean): Float32Array => {
      const t = (d: Float32Array) => new b.AddonTensor(device, 0, d.length, d);
      const tx = t(x), tu = t(up), tb = t(bias), ty = new b.AddonTensor(device, 0, m * n, null, 'poison');
      try {
        b.runOpSync('act', device, { kind, m, n, dtype: 0, x: tx, y: ty, ...(gated(kind) ? { up: tu } : {}), ...(withBias ? { bias: tb } : {}) });
        return ty.readSync() as Float32Array;
      } finally {
        for (const z of [tx, tu, tb, ty]) z.dispose();
      }
    };
    const relu = run('relu', true), geglu = run('geglu_tanh', false);
    for (let i = 0; i < m * n; i++) {
      expect(relu[i]).toBe(Math.fround(Math.max(Math.fround(x[i] + bias[i % n]), 0)));
      expect(Math.abs(geglu[i] - geluNew(x[i]) * up[i])).toBeLessThanOrEqual(1e-5 * (1 + Math.abs(geluNew(x[i]) * up[i])));
    }
    expect(relu.some((v) => v === 0) && relu.some((v) => v > 0)).toBe(true);
  });
});

// act: gelu_tanh / gelu_erf / silu with optional bias, and swiglu, emu (and cuda) vs the cpu reference.
// Contiguous rows with n a multiple of 8 take the 16-byte path; n = 1, 33, 1025 and odd strides the element path.
// Strided cases read x/up as the halves of a fused (m, 2n) gate-up buffer (ldx = ldu = 2n) and write y with a gap.
import { FloatDType, OpCase, SHORT, grid, opSuite } from './harness';
import { normal } from '../util/random';

type Kind = 'gelu_tanh' | 'gelu_erf' | 'silu' | 'swiglu';
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
  const strides = sh.ldx ? `, ldx=${ldx}${kind === 'swiglu' ? `, ldu=${ldu}` : ''}, ldy=${ldy}` : '';
  const params: Record<string, unknown> = { kind, m, n, ldx, ldy };
  if (kind === 'swiglu') params.ldu = ldu;
  const gaps = ldy > n && m > 1;
  return {
    name: `act(kind=${kind}, dtype=${SHORT[dtype]}, bias=${bias}, m=${m}, n=${n}${strides})`,
    op: 'act',
    dtype,
    params,
    inputs: () => {
      const inputs: Record<string, Float32Array> = { x: normal(extent(ldx), seed, 3) };
      if (bias) inputs.bias = normal(n, seed + 1, 0.5);
      if (kind === 'swiglu') inputs.up = normal(extent(ldu), seed + 2);
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
  { kind: 'swiglu', bias: false },
];
for (const { dtype, v, sh } of grid({ dtype: ['float32', 'float16', 'bfloat16'] as FloatDType[], v: variants, sh: contiguous })) {
  cases.push(actCase(dtype, v.kind, v.bias, sh, (seed += 10)));
}
for (const { dtype, v, sh } of grid({
  dtype: ['float32', 'float16', 'bfloat16'] as FloatDType[],
  v: [{ kind: 'swiglu' as Kind, bias: false }, { kind: 'gelu_tanh' as Kind, bias: true }],
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

// cast: float dtype conversion, emu (and cuda) vs the cpu reference, bit for bit (the harness's exact rule).
// Inputs mix ordinary values with the edges: overflow to inf (f16 max 65504, 65520 rounds up; bf16 near 3.4e38),
// f16 subnormals and the tie at 2^-25, f32/bf16 subnormals, +0 and -0, and magnitudes spread over 2^-30..2^20.
// n = 1 and 7 are only the element tail; 1000 and 65537 the 8-wide path plus a tail.
import { FloatDType, OpCase, SHORT, opSuite } from './harness';
import { rng } from '../util/random';

const { floor } = Math; // bound once: global lookups are slow in jest's vm context
const CODE: Record<FloatDType, number> = { float32: 0, float16: 1, bfloat16: 2 };
const SPECIAL = [
  65504, 65519, 65520, 1e5, -7e4, 3.3e38, -3.4e38, 2 ** -24, 2 ** -25, 3 * 2 ** -26, 1e-5, -6.1e-5, 1e-40, -3e-39,
  -0, 0, 1 / 3, -2.5, 1e-3, 1234.567,
];

function values(n: number, seed: number): Float32Array {
  const r = rng(seed);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    out[i] = i % 3 === 0 && i / 3 < SPECIAL.length
      ? SPECIAL[i / 3]
      : (r() < 0.5 ? -1 : 1) * (1 + r()) * 2 ** floor(-30 + 50 * r());
  }
  return out;
}

const dtypes: FloatDType[] = ['float32', 'float16', 'bfloat16'];
const cases: OpCase[] = [];
let seed = 9000;
for (const src of dtypes) {
  for (const dst of dtypes) {
    const sizes = src === dst ? [1000] : [1, 7, 1000, 65537];
    for (const n of sizes) {
      const s = (seed += 10);
      cases.push({
        name: `cast(src=${SHORT[src]}, dst=${SHORT[dst]}, n=${n})`,
        op: 'cast',
        dtype: src,
        params: { srcDtype: CODE[src], dstDtype: CODE[dst], n },
        inputs: () => ({ src: values(n, s) }),
        outputs: { dst: { numel: n, dtype: dst } },
        exact: true,
      });
    }
  }
}

opSuite('cast', cases);

// The shapes of the gemm and gemm_q8 op tests, and their input-prologue cases (ops.h GemmPrologue), which differ only
// in the op and its weights: the decode kernels normalise (rms_norm) or gate (swiglu, x rows holding gate|up, 2K
// wide) x as they load it; the cpu reference runs the reference norm / act op into a temporary, then its GEMM.
import { EmuOptions, FloatDType, OpCase, SHORT } from './harness';
import { uniform } from '../util/random';

export type Residual = 'none' | 'sep' | 'inplace';

export interface Shape {
  m: number;
  n: number;
  k: number;
  bias: boolean;
  residual: Residual;
  ldx?: number;
  ldy?: number;
  /** The emulated device (SM count, shared memory per block); in the case's name. */
  emu?: EmuOptions;
}

export type XForm = 'rms_norm' | 'swiglu';

/** One prologue case of `op`; `weights(seed)` makes its w tensor (float values, or Q8_0 blocks). */
export function prologueCase(op: 'gemm' | 'gemm_q8', dtype: FloatDType, xform: XForm, s: Shape, seed: number, eps: number,
  weights: (seed: number) => Float32Array | Int8Array): OpCase {
  const cols = xform === 'swiglu' ? 2 * s.k : s.k;
  const ldx = s.ldx ?? cols;
  const ldy = s.ldy ?? s.n;
  const xLen = (s.m - 1) * ldx + cols;
  const yLen = (s.m - 1) * ldy + s.n;
  const yInout = s.residual === 'inplace' || ldy > s.n;
  const strides = (s.ldx !== undefined ? `, ldx=${ldx}` : '') + (s.ldy !== undefined ? `, ldy=${ldy}` : '');
  const params: Record<string, unknown> = { m: s.m, n: s.n, k: s.k, ldx, ldy, xform };
  if (xform === 'rms_norm') params.eps = eps;
  if (s.residual === 'inplace') params.residualInPlace = true;
  return {
    name: `${op}(xform=${xform}, dtype=${SHORT[dtype]}, m=${s.m}, n=${s.n}, k=${s.k}, bias=${s.bias ? 'yes' : 'no'}, residual=${s.residual}${strides})`,
    op,
    dtype,
    params,
    inputs: () => {
      // swiglu: gates over [-4, 4] reach silu's tails; rms_norm: gains of both signs around 1
      const t: Record<string, Float32Array | Int8Array> = {
        x: xform === 'swiglu' ? uniform(xLen, seed, -4, 4) : uniform(xLen, seed, -1, 1), w: weights(seed + 1),
      };
      if (xform === 'rms_norm') t.gain = uniform(s.k, seed + 5, -1.5, 1.5);
      if (s.bias) t.bias = uniform(s.n, seed + 2, -1, 1);
      if (s.residual === 'sep') t.residual = uniform(yLen, seed + 3, -2, 2);
      if (yInout) t.y = uniform(yLen, seed + 4, -2, 2);
      return t;
    },
    outputs: yInout ? {} : { y: { numel: yLen } },
    inout: yInout ? ['y'] : undefined,
  };
}

/** Every (xform, shape, dtype) of a table as cases, seeds from `seed` on in steps of 10; returns the last seed. An
 *  ldx written for rms_norm rows (>= K) is widened by K for swiglu's 2K-wide rows. */
export function prologueCases(table: Array<[FloatDType[], Shape]>, seed: number, make: (dtype: FloatDType, xform: XForm, s: Shape, seed: number) => OpCase,
  out: OpCase[]): number {
  for (const xform of ['rms_norm', 'swiglu'] as XForm[]) {
    for (const [dtypes, s] of table) {
      const shape = xform === 'swiglu' && s.ldx !== undefined ? { ...s, ldx: s.ldx + s.k } : s;
      for (const dtype of dtypes) out.push(make(dtype, xform, shape, (seed += 10)));
    }
  }
  return seed;
}

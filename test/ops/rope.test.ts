// rope: rotary embedding in place on q and k (both layouts), emu (and cuda) vs the cpu reference.
// Positions up to 32767 with inv_freq up to 1 (angles near 32767 rad). Shapes cover head_dim 8..256, partial
// rotary, GQA, k absent, and q/k read from a fused QKV buffer (ldq = ldk > row) or with odd strides.
// Which path runs: 16-byte when head_dim, ld and rot_dim (adjacent) / rot_dim/2 (half) are multiples of the
// vector width (8 halves, 4 floats); element by element otherwise (head_dim 8 half, rot_dim 20, odd strides).
import { FloatDType, OpCase, SHORT, grid, opSuite } from './harness';
import { normal, randInt } from '../util/random';

interface Shape { headDim: number; nHeads: number; nKvHeads: number; rotDim: number; noK?: boolean; ldq?: number; ldk?: number; theta?: number }
const shapes: Shape[] = [
  { headDim: 8, nHeads: 4, nKvHeads: 4, rotDim: 8 },
  { headDim: 64, nHeads: 8, nKvHeads: 2, rotDim: 64 },
  { headDim: 64, nHeads: 4, nKvHeads: 4, rotDim: 32 },
  { headDim: 80, nHeads: 5, nKvHeads: 5, rotDim: 80 },
  { headDim: 80, nHeads: 4, nKvHeads: 1, rotDim: 20 },
  { headDim: 128, nHeads: 8, nKvHeads: 2, rotDim: 128, theta: 500000 },
  { headDim: 128, nHeads: 4, nKvHeads: 4, rotDim: 128, noK: true },
  { headDim: 256, nHeads: 2, nKvHeads: 1, rotDim: 256 },
  { headDim: 64, nHeads: 4, nKvHeads: 2, rotDim: 64, ldq: 512, ldk: 512 }, // fused QKV: (T, 4 + 2 + 2 heads, 64)
  { headDim: 64, nHeads: 3, nKvHeads: 1, rotDim: 64, ldq: 195, ldk: 67 },
];
const N_TOKENS = 7;

function invFreq(rotDim: number, theta: number): Float32Array {
  const f = new Float32Array(rotDim / 2);
  for (let i = 0; i < f.length; i++) f[i] = Math.pow(theta, (-2 * i) / rotDim);
  return f;
}

const cases: OpCase[] = [];
let seed = 5000;
for (const { dtype, layout, sh } of grid({
  dtype: ['float32', 'float16', 'bfloat16'] as FloatDType[],
  layout: ['adjacent', 'half'] as const,
  sh: shapes,
})) {
  const T = N_TOKENS;
  const ldq = sh.ldq ?? sh.nHeads * sh.headDim;
  const ldk = sh.ldk ?? sh.nKvHeads * sh.headDim;
  const qn = (T - 1) * ldq + sh.nHeads * sh.headDim;
  const kn = (T - 1) * ldk + sh.nKvHeads * sh.headDim;
  const s = (seed += 10);
  const params: Record<string, unknown> = {
    layout, nTokens: T, nHeads: sh.nHeads, nKvHeads: sh.nKvHeads, headDim: sh.headDim, rotDim: sh.rotDim, ldq, ldk,
  };
  const extra = [
    sh.rotDim !== sh.headDim ? `rot_dim=${sh.rotDim}` : '',
    sh.noK ? 'k=none' : `kv_heads=${sh.nKvHeads}`,
    sh.ldq ? `ldq=${ldq}` : '',
    sh.ldk && !sh.noK ? `ldk=${ldk}` : '',
    sh.theta ? `theta=${sh.theta}` : '',
  ].filter(Boolean).join(', ');
  cases.push({
    name: `rope(layout=${layout}, dtype=${SHORT[dtype]}, tokens=${T}, heads=${sh.nHeads}, head_dim=${sh.headDim}, ${extra})`,
    op: 'rope',
    dtype,
    params,
    inputs: () => {
      const pos = randInt(T, s, 0, 32768);
      pos[0] = 32767;
      pos[1] = 0;
      const inputs: Record<string, Float32Array | Int32Array> = { q: normal(qn, s + 1), pos, invFreq: invFreq(sh.rotDim, sh.theta ?? 10000) };
      if (!sh.noK) inputs.k = normal(kn, s + 2);
      return inputs;
    },
    outputs: {},
    inout: sh.noK ? ['q'] : ['q', 'k'],
    f32Inputs: ['invFreq'],
  });
}

opSuite('rope', cases);

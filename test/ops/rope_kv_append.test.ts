// rope_kv_append: the fused RoPE + KV append (engine/ops.h RopeKvAppendArgs). q rotated in place, k rotated into the
// paged cache, v copied there, token t at slot slots[t]; k itself unchanged.
//   1. emu (both thread orders), and the fast cpu kernels, vs the cpu reference: q, k, and both whole caches (the
//      untouched slots and the padding between rows included), all dtypes, both layouts, partial rotary, GQA
//      (kv heads 1, 2, = heads), q|k|v rows of a fused projection (ld = (heads + 2 kv heads) * head_dim) or odd
//      strides, block sizes 7 / 16 / 32 with padded (odd) cache strides, shuffled slots, T = 1 and 300.
//   2. The cpu reference equals the two ops it fuses (rope, then kv_append of the rotated k), bit for bit, and k is
//      left as it was.
//   3. On emu, every cache element the op must not write (other slots, padding) keeps its bits, and the copied
//      parts (v, k's unrotated tail) are the input's bits.
// Paths: 16-byte accesses when every stride, head_dim and rot_dim (Adjacent) / rot_dim/2 (HalfSplit) are multiples
// of the vector width (4 floats, 8 halves) and the pointers aligned; element by element otherwise.
import { FloatDType, OpCase, OpWorker, SHORT, arrayKind, grid, opSuite } from './harness';
import { normal, randInt, shuffled } from '../util/random';
import { fromHalfBits, toHalfBits } from '../../lib/half';

interface Shape {
  headDim: number; nHeads: number; nKvHeads: number; rotDim: number; blockSize: number;
  ld?: [number, number, number];  // ldq, ldk, ldv; default: fused q|k|v rows
  pad?: number;                   // extra elements per cache head stride (and 3x per block stride)
  theta?: number;
}
const shapes: Shape[] = [
  { headDim: 64, nHeads: 4, nKvHeads: 2, rotDim: 64, blockSize: 16 },
  { headDim: 64, nHeads: 4, nKvHeads: 4, rotDim: 32, blockSize: 7 },
  { headDim: 80, nHeads: 4, nKvHeads: 1, rotDim: 20, blockSize: 32, pad: 8 },
  { headDim: 128, nHeads: 8, nKvHeads: 2, rotDim: 128, blockSize: 32, theta: 500000 },
  { headDim: 64, nHeads: 3, nKvHeads: 1, rotDim: 64, blockSize: 7, ld: [195, 67, 71], pad: 1 },
  { headDim: 8, nHeads: 2, nKvHeads: 2, rotDim: 4, blockSize: 16, pad: 2 },
];

function invFreq(rotDim: number, theta: number): Float32Array {
  const f = new Float32Array(rotDim / 2);
  for (let i = 0; i < f.length; i++) f[i] = Math.pow(theta, (-2 * i) / rotDim);
  return f;
}

interface Setup {
  params: Record<string, unknown>;
  inputs: () => Record<string, Float32Array | Int32Array>;
  slots: Int32Array;
  cacheLen: number;
  headStride: number;
  blockStride: number;
}

function setup(sh: Shape, layout: 'adjacent' | 'half', T: number, seed: number): Setup {
  const fused = (sh.nHeads + 2 * sh.nKvHeads) * sh.headDim;
  const [ldq, ldk, ldv] = sh.ld ?? [fused, fused, fused];
  const pad = sh.pad ?? 0;
  const headStride = sh.blockSize * sh.headDim + pad;
  const blockStride = sh.nKvHeads * headStride + 3 * pad;
  const nBlocks = Math.ceil(T / sh.blockSize) + 3;
  const slots = Int32Array.from(shuffled(nBlocks * sh.blockSize, seed).slice(0, T));
  const cacheLen = nBlocks * blockStride;
  const extent = (ld: number, row: number) => (T - 1) * ld + row;
  return {
    params: {
      ropeLayout: layout, nTokens: T, nHeads: sh.nHeads, rotDim: sh.rotDim, ldq, ldk, ldv,
      headDim: sh.headDim, nKvHeads: sh.nKvHeads, blockSize: sh.blockSize, headStride, blockStride,
    },
    inputs: () => {
      const pos = randInt(T, seed + 1, 0, 32768);
      pos[0] = 32767;
      if (T > 1) pos[1] = 0;
      return {
        q: normal(extent(ldq, sh.nHeads * sh.headDim), seed + 2),
        k: normal(extent(ldk, sh.nKvHeads * sh.headDim), seed + 3),
        v: normal(extent(ldv, sh.nKvHeads * sh.headDim), seed + 4),
        pos,
        invFreq: invFreq(sh.rotDim, sh.theta ?? 10000),
        slots,
        kCache: normal(cacheLen, seed + 5),
        vCache: normal(cacheLen, seed + 6),
      };
    },
    slots, cacheLen, headStride, blockStride,
  };
}

function describeShape(sh: Shape): string {
  return [
    `heads=${sh.nHeads}`, `kv_heads=${sh.nKvHeads}`, `head_dim=${sh.headDim}`,
    sh.rotDim !== sh.headDim ? `rot_dim=${sh.rotDim}` : '', `bs=${sh.blockSize}`,
    sh.ld ? `ld=${sh.ld.join('/')}` : 'fused_qkv', sh.pad ? `pad=${sh.pad}` : '', sh.theta ? `theta=${sh.theta}` : '',
  ].filter(Boolean).join(', ');
}

const dtypes: FloatDType[] = ['float32', 'float16', 'bfloat16'];
const cases: OpCase[] = [];
let seed = 7000;
for (const { dtype, layout, sh, T } of grid({ dtype: dtypes, layout: ['adjacent', 'half'] as const, sh: shapes, T: [1, 300] })) {
  const s = setup(sh, layout, T, (seed += 10));
  cases.push({
    name: `rope_kv_append(layout=${layout}, dtype=${SHORT[dtype]}, tokens=${T}, ${describeShape(sh)})`,
    op: 'rope_kv_append',
    dtype,
    params: s.params,
    inputs: s.inputs,
    outputs: {},
    inout: ['q', 'k', 'kCache', 'vCache'],
    f32Inputs: ['invFreq'],
  });
}
opSuite('rope_kv_append', cases);

// ---- bit-level checks -------------------------------------------------------------------------------------------------
const CODE: Record<FloatDType, number> = { float32: 0, float16: 1, bfloat16: 2 };
type Raw = Record<string, ArrayLike<number>>;

/** Runs one op on a device; float inputs in the case dtype, results as raw bits (Uint32 for f32, Uint16 for halves). */
async function runRaw(worker: OpWorker, op: string, device: string, dtype: FloatDType, reverse: boolean,
  params: Record<string, unknown>, inputs: Record<string, Float32Array | Int32Array>, outputs: string[]): Promise<Raw> {
  const tensors: Record<string, unknown> = {};
  for (const [name, data] of Object.entries(inputs)) {
    if (data instanceof Int32Array) tensors[name] = { dtype: 3, data };
    else if (dtype === 'float32' || name === 'invFreq') tensors[name] = { dtype: 0, data };
    else tensors[name] = { dtype: CODE[dtype], data: toHalfBits(data, dtype) };
  }
  const reply = await worker.run({ op, device, reverseOrder: reverse, params: { ...params, dtype: CODE[dtype] }, tensors, aliases: {}, outputs }, 120000);
  if (reply.error) throw new Error(`${op} on ${device}: ${reply.error.code}: ${reply.error.message}`);
  const out: Raw = {};
  for (const name of outputs) {
    const a = reply.outputs![name];
    out[name] = arrayKind(a) === 'Float32Array' ? new Uint32Array(Float32Array.from(a as Float32Array).buffer) : Uint16Array.from(a as Uint16Array);
  }
  return out;
}

/** The input's bits as the device holds them. */
function inputBits(x: Float32Array, dtype: FloatDType): ArrayLike<number> {
  return dtype === 'float32' ? new Uint32Array(Float32Array.from(x).buffer) : toHalfBits(x, dtype);
}

function firstDiff(a: ArrayLike<number>, b: ArrayLike<number>, only?: (i: number) => boolean): string | null {
  if (a.length !== b.length) return `length ${a.length} != ${b.length}`;
  for (let i = 0; i < a.length; i++) if ((!only || only(i)) && a[i] !== b[i]) return `element ${i}: 0x${a[i].toString(16)} != 0x${b[i].toString(16)}`;
  return null;
}

describe('rope_kv_append bits', () => {
  const worker = new OpWorker();
  afterAll(() => worker.stop());
  const bitCases = grid({ dtype: dtypes, layout: ['adjacent', 'half'] as const, sh: [shapes[2], shapes[4]], T: [300] });

  for (const { dtype, layout, sh, T } of bitCases) {
    const name = `layout=${layout}, dtype=${SHORT[dtype]}, tokens=${T}, ${describeShape(sh)}`;
    const s = setup(sh, layout, T, 9000 + T);
    const p = s.params as { ldq: number; ldk: number; ldv: number };

    test(`cpu-ref rope_kv_append = rope then kv_append, bit for bit; k unchanged: ${name}`, async () => {
      const inputs = s.inputs();
      const fused = await runRaw(worker, 'rope_kv_append', 'cpu-ref', dtype, false, s.params, inputs, ['q', 'k', 'kCache', 'vCache']);
      const rope = await runRaw(worker, 'rope', 'cpu-ref', dtype, false,
        { layout, nTokens: T, nHeads: sh.nHeads, nKvHeads: sh.nKvHeads, headDim: sh.headDim, rotDim: sh.rotDim, ldq: p.ldq, ldk: p.ldk },
        { q: inputs.q, k: inputs.k, pos: inputs.pos, invFreq: inputs.invFreq }, ['q', 'k']);
      // kv_append of the rotated k: its bits go back in as float32 values exactly representable in the dtype
      const kRot = dtype === 'float32' ? new Float32Array((rope.k as Uint32Array).buffer) : fromHalfBits(rope.k as Uint16Array, dtype);
      const app = await runRaw(worker, 'kv_append', 'cpu-ref', dtype, false,
        { headDim: sh.headDim, nKvHeads: sh.nKvHeads, blockSize: sh.blockSize, headStride: s.headStride, blockStride: s.blockStride, nTokens: T, ldk: p.ldk, ldv: p.ldv },
        { k: kRot, v: inputs.v, slots: inputs.slots, kCache: inputs.kCache, vCache: inputs.vCache }, ['kCache', 'vCache']);
      expect(firstDiff(fused.q, rope.q)).toBeNull();
      expect(firstDiff(fused.kCache, app.kCache)).toBeNull();
      expect(firstDiff(fused.vCache, app.vCache)).toBeNull();
      expect(firstDiff(fused.k, inputBits(inputs.k as Float32Array, dtype))).toBeNull();
    });

    for (const reverse of [false, true]) {
      test(`emu${reverse ? '(reversed)' : ''}: untouched cache elements, v and k's unrotated tail keep their bits: ${name}`, async () => {
        const inputs = s.inputs();
        const out = await runRaw(worker, 'rope_kv_append', 'emu', dtype, reverse, s.params, inputs, ['kCache', 'vCache']);
        // written[i]: 0 untouched, 1 rotated k part, 2 copied (k tail / v)
        const written = new Uint8Array(s.cacheLen);
        const vExpect = Array.from(inputBits(inputs.vCache as Float32Array, dtype));
        const kIn = inputBits(inputs.k as Float32Array, dtype), vIn = inputBits(inputs.v as Float32Array, dtype);
        const kExpect = Array.from(inputBits(inputs.kCache as Float32Array, dtype));
        for (let t = 0; t < T; t++) {
          const slot = s.slots[t], base = Math.floor(slot / sh.blockSize) * s.blockStride + (slot % sh.blockSize) * sh.headDim;
          for (let h = 0; h < sh.nKvHeads; h++) {
            for (let d = 0; d < sh.headDim; d++) {
              const c = base + h * s.headStride + d;
              written[c] = d < sh.rotDim ? 1 : 2;
              vExpect[c] = vIn[t * p.ldv + h * sh.headDim + d];
              if (d >= sh.rotDim) kExpect[c] = kIn[t * p.ldk + h * sh.headDim + d];
            }
          }
        }
        expect(firstDiff(out.vCache, vExpect)).toBeNull();
        expect(firstDiff(out.kCache, kExpect, (i) => written[i] !== 1)).toBeNull();
      });
    }
  }
});

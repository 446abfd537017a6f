// The GEMM input prologues (ops.h GemmPrologue) against the unfused pair they replace, bit for bit, and their
// argument checks. (Fused vs the cpu reference, with the harness's tolerances: gemm.test.ts, gemm_q8.test.ts.)
// Claim under test (cuda/gemm_xform.cuh): a decode kernel that normalises or gates x as it loads it stores exactly
// what the norm / act op followed by the plain GEMM stores, on the same device: the prologue reproduces the norm's
// fold and order of additions and the act's expression, and rounds the intermediate to the dtype as those ops do.
// Shapes take the same kernel path both ways (x rows 16-byte aligned, K a multiple of the vector where the path
// depends on it), as the model's buffers do. Not claimed where the paths differ: f32 with 17..64 rows (the fused
// call runs the 16-row GEMV per 16 rows, the plain GEMM the tiled kernel, which adds in another order; the graph does
// not fuse there), and the GEMV's element path against a 16-byte one (unaligned or odd-strided rows on one side). Run on the emu (both thread orders), the fast cpu backend and cuda when
// present; every output starts poisoned.
import { FloatDType, OpWorker, SHORT, arrayKind, hasGpu } from './harness';
import { uniform } from '../util/random';
import { randomQ8 } from '../util/q8';
import { toHalfBits } from '../../lib/half';

const CODE: Record<FloatDType, number> = { float32: 0, float16: 1, bfloat16: 2 };
type XForm = 'rms_norm' | 'swiglu';
type Raw = Float32Array | Uint16Array;

interface FusedShape { m: number; n: number; k: number }

const worker = new OpWorker();
afterAll(() => worker.stop());

const floatTensor = (dtype: FloatDType, data: Float32Array) =>
  dtype === 'float32' ? { dtype: 0, data } : { dtype: CODE[dtype], data: toHalfBits(data, dtype) };
// An output read back, passed on as an input with the same bits.
const rawTensor = (dtype: FloatDType, data: Raw) => ({ dtype: CODE[dtype], data });

async function run(device: string, reverseOrder: boolean, op: string, dtype: FloatDType, params: Record<string, unknown>,
  tensors: Record<string, unknown>, outputs: string[]): Promise<Record<string, Raw>> {
  const reply = await worker.run({ op, device, reverseOrder, params: { ...params, dtype: CODE[dtype] }, tensors, aliases: {}, outputs }, 300000);
  if (reply.error) throw new Error(`${device} ${op}: ${reply.error.code}: ${reply.error.message}`);
  return reply.outputs as Record<string, Raw>;
}

function sameBits(a: Raw, b: Raw): string | null {
  if (a.length !== b.length) return `length ${a.length} != ${b.length}`;
  const u = arrayKind(a) === 'Float32Array' ? new Uint32Array(a.buffer, a.byteOffset, a.length) : a;
  const v = arrayKind(b) === 'Float32Array' ? new Uint32Array(b.buffer, b.byteOffset, b.length) : b;
  for (let i = 0; i < u.length; i++) {
    if (u[i] !== v[i]) return `y[${i}]: fused ${a[i]} (bits ${u[i].toString(16)}) != unfused ${b[i]} (bits ${v[i].toString(16)})`;
  }
  return null;
}

async function fusedVsUnfused(device: string, reverse: boolean, q8: boolean, dtype: FloatDType, xform: XForm, s: FusedShape, seed: number): Promise<void> {
  const { m, n, k } = s;
  const cols = xform === 'swiglu' ? 2 * k : k;
  const xf = xform === 'swiglu' ? uniform(m * cols, seed, -4, 4) : uniform(m * cols, seed, -1, 1);
  const x = floatTensor(dtype, xf);
  const w = q8 ? { dtype: 4, data: randomQ8(n, k, seed + 1).blob } : floatTensor(dtype, uniform(n * k, seed + 1, -1, 1));
  const gain = floatTensor(dtype, uniform(k, seed + 2, -1.5, 1.5));
  const op = q8 ? 'gemm_q8' : 'gemm';
  const y = { dtype: CODE[dtype], numel: m * n, fill: 'poison' };
  const eps = 1e-5;

  // unfused: the norm / act op into h (m, k), then the plain GEMM over h
  const h = xform === 'rms_norm'
    ? (await run(device, reverse, 'norm', dtype, { kind: 'rms', rows: m, cols: k, eps }, { x, weight: gain, y: { dtype: CODE[dtype], numel: m * k, fill: 'poison' } }, ['y'])).y
    : (await run(device, reverse, 'act', dtype, { kind: 'swiglu', m, n: k, ldx: 2 * k, ldu: 2 * k, ldy: k },
      // the act op reads up through its own pointer: the gate|up rows from column k on
      { x, up: floatTensor(dtype, xf.subarray(k)), y: { dtype: CODE[dtype], numel: m * k, fill: 'poison' } }, ['y'])).y;
  const unfused = (await run(device, reverse, op, dtype, { m, n, k }, { x: rawTensor(dtype, h), w, y }, ['y'])).y;
  // fused
  const params: Record<string, unknown> = { m, n, k, xform, ...(xform === 'rms_norm' ? { eps } : {}) };
  const tensors: Record<string, unknown> = { x, w, y, ...(xform === 'rms_norm' ? { gain } : {}) };
  const fused = (await run(device, reverse, op, dtype, params, tensors, ['y'])).y;
  const diff = sameBits(fused, unfused);
  if (diff) throw new Error(`${device}${reverse ? ' (reversed)' : ''}: ${diff}`);
}

// (dtypes, shape, what it covers on the device kernels)
const SHAPES: Array<[FloatDType[], FusedShape]> = [
  [['float32', 'float16', 'bfloat16'], { m: 1, n: 70, k: 2048 }],  // gemv 16-byte path, 128-thread norm fold
  [['float32', 'float16', 'bfloat16'], { m: 1, n: 33, k: 4128 }],  // gemv split over K, 512-thread fold
  [['float32'], { m: 12, n: 40, k: 1024 }],                         // gemv<16>
  [['float16', 'bfloat16'], { m: 6, n: 130, k: 512 }],              // skinny NT 1, one-warp fold
  [['float16', 'bfloat16'], { m: 40, n: 64, k: 2080 }],             // skinny NT 8, split over K
];

describe('gemm / gemm_q8 input prologue: fused equals the unfused pair bit for bit', () => {
  const devices: Array<[string, boolean]> = [['emu', false], ['emu', true], ['cpu', false], ...(hasGpu ? [['cuda', false] as [string, boolean]] : [])];
  let seed = 500;
  for (const q8 of [false, true]) {
    for (const xform of ['rms_norm', 'swiglu'] as XForm[]) {
      for (const [dtypes, s] of SHAPES) {
        if (q8 && s.k % 32 !== 0) continue;
        for (const dtype of dtypes) {
          const sd = (seed += 10);
          for (const [device, reverse] of devices) {
            test(`${q8 ? 'gemm_q8' : 'gemm'}(xform=${xform}, dtype=${SHORT[dtype]}, m=${s.m}, n=${s.n}, k=${s.k}) on ${device}${reverse ? ' (reversed)' : ''}`,
              () => fusedVsUnfused(device, reverse, q8, dtype, xform, s, sd));
          }
        }
      }
    }
  }
});

describe('gemm input prologue arguments', () => {
  const call = async (op: string, params: Record<string, unknown>, dtype = 0, withGain = true) => {
    const k = (params.k as number) ?? 32;
    const tensors: Record<string, unknown> = {
      x: { dtype, numel: 80 * 2 * k, fill: 'zero' },
      w: op === 'gemm_q8' ? { dtype: 4, numel: 4 * k + (4 * k) / 16, fill: 'zero' } : { dtype, numel: 4 * k, fill: 'zero' },
      y: { dtype, numel: 80 * 4, fill: 'zero' },
      ...(withGain ? { gain: { dtype, numel: k, fill: 'zero' } } : {}),
    };
    return worker.run({ op, device: 'cpu', reverseOrder: false, params: { dtype, n: 4, k, ...params }, tensors, aliases: {}, outputs: [] }, 30000);
  };
  const expectError = async (reply: Awaited<ReturnType<typeof call>>, pattern: RegExp) => {
    expect(reply.error?.code).toBe('ERR_INVALID_ARG');
    expect(reply.error?.message).toMatch(pattern);
  };
  for (const op of ['gemm', 'gemm_q8']) {
    test(`${op}: an unknown xform is ERR_INVALID_ARG naming xform`, async () => {
      await expectError(await call(op, { m: 1, xform: 'layer_norm' }), /Expected 'none', 'rms_norm' or 'swiglu' for xform/);
    });
    test(`${op}: rms_norm without a gain tensor is ERR_INVALID_ARG naming gain`, async () => {
      await expectError(await call(op, { m: 1, xform: 'rms_norm', eps: 1e-5 }, 0, false), /for gain/);
    });
    test(`${op}: rms_norm with eps 0, negative or overflowing float32 is ERR_INVALID_ARG naming xform.eps`, async () => {
      for (const eps of [0, -1e-5, 1e300]) await expectError(await call(op, { m: 1, xform: 'rms_norm', eps }), /finite number > 0 for xform\.eps/);
    });
    test(`${op}: a prologue with more rows than the decode kernels take (64, every dtype) is ERR_INVALID_ARG naming m`, async () => {
      await expectError(await call(op, { m: 65, xform: 'swiglu' }, 0), /at most 64 rows with an xform .* for m but received 65/);
      await expectError(await call(op, { m: 65, xform: 'rms_norm', eps: 1e-5 }, 1), /at most 64 rows with an xform .* for m but received 65/);
      expect((await call(op, { m: 64, xform: 'rms_norm', eps: 1e-5 }, 1)).error).toBeUndefined();
      expect((await call(op, { m: 64, xform: 'swiglu' }, 0)).error).toBeUndefined();
    });
    test(`${op}: swiglu with rows narrower than gate|up (ldx < 2k) is ERR_INVALID_ARG naming ldx`, async () => {
      await expectError(await call(op, { m: 2, xform: 'swiglu', ldx: 63 }), />= 2\*k .* for ldx but received 63/);
    });
  }
  test('rms_norm on rows longer than the norm op takes (k > 16384) is ERR_INVALID_ARG naming k', async () => {
    await expectError(await call('gemm', { m: 1, k: 16400, xform: 'rms_norm', eps: 1e-5 }), /k \(xform rms_norm: the norm's cols\)/);
  });
});

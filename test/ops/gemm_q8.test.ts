// gemm_q8 op (weight-only int8, GGUF Q8_0): y = x · dequant(W)ᵀ (+ bias) (+ residual), emu (and cuda when
// present) vs the cpu reference, which dequantizes the same bytes exactly (d * q in double).
// Cases are chosen so that every kernel of cuda/gemm_q8.cu and cuda/gemv_q8.cu runs in every dtype it serves:
//   gemv_q8_kernel<T, 1> (M = 1) and <float, 16> (f32, M <= 16): 16-byte x loads and element loads (odd ldx), K
//     split over 1..8 warps of a block and over blocks (small N, K >= 16384);
//   skinny_q8_mma_kernel<T, NT> (f16/bf16, M = 2..64; NT = 1, 2, 4, 8 for M <= 8, 16, 32, 64): an odd number of
//     Q8_0 blocks (the last 64-wide chunk half empty), one K slice or split over K (K >= 512 with few rows of W),
//     the K tail in the last slice, strided x / y;
//   gemm_q8_mma_kernel<T, Tile, ACopier> (M > 64, f16/bf16): both tiles (128 x 128, 64 x 128; the emu's SM count
//     set per case to reach the larger) with x by cp.async, and x by ordinary loads (ldx not a multiple of 8); M and
//     N edges, K over more tiles than the pipeline's 4 stages, strided x / y;
//   gemm_q8_simt_kernel (M > 16, f32): M and N edges, several tiles in both directions, strided x / y.
// The split decisions depend on the SM count: the emu reports 132 (an H100 / H200).
// Residual: none, a separate tensor, or in place (residual aliases y).
// Second part: float weights quantized with ggml's Q8_0 rule (test/util/q8.ts); the quantized gemm must stay
// within the quantization error bound of the float gemm (stated below).
import { FloatDType, OpCase, OpWorker, SHORT, hasGpu, opSuite } from './harness';
import { uniform } from '../util/random';
import { quantizeQ8_0, randomQ8 } from '../util/q8';
import { Shape, XForm, prologueCase, prologueCases } from './gemm_shapes';
import { fromHalfBits, toHalfBits } from '../../lib/half';

const DTYPES: FloatDType[] = ['float32', 'float16', 'bfloat16'];
const CODE: Record<FloatDType, number> = { float32: 0, float16: 1, bfloat16: 2 };

function q8Case(dtype: FloatDType, s: Shape, seed: number): OpCase {
  const ldx = s.ldx ?? s.k;
  const ldy = s.ldy ?? s.n;
  const xLen = (s.m - 1) * ldx + s.k;
  const yLen = (s.m - 1) * ldy + s.n;
  const yInout = s.residual === 'inplace' || ldy > s.n;
  const strides = (s.ldx !== undefined ? `, ldx=${ldx}` : '') + (s.ldy !== undefined ? `, ldy=${ldy}` : '');
  const target = s.emu ? `, emu target: ${Object.entries(s.emu).map(([k, v]) => `${k}=${v}`).join(' ')}` : '';
  const params: Record<string, unknown> = { m: s.m, n: s.n, k: s.k, ldx, ldy };
  if (s.residual === 'inplace') params.residualInPlace = true;
  return {
    name: `gemm_q8(dtype=${SHORT[dtype]}, m=${s.m}, n=${s.n}, k=${s.k}, bias=${s.bias ? 'yes' : 'no'}, residual=${s.residual}${strides}${target})`,
    op: 'gemm_q8',
    dtype,
    params,
    inputs: () => {
      const t: Record<string, Float32Array | Int8Array> = { x: uniform(xLen, seed, -1, 1), w: randomQ8(s.n, s.k, seed + 1).blob };
      if (s.bias) t.bias = uniform(s.n, seed + 2, -1, 1);
      if (s.residual === 'sep') t.residual = uniform(yLen, seed + 3, -2, 2);
      if (yInout) t.y = uniform(yLen, seed + 4, -2, 2);
      return t;
    },
    outputs: yInout ? {} : { y: { numel: yLen } },
    inout: yInout ? ['y'] : undefined,
    emu: s.emu,
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
for (const dtype of DTYPES) {
  let i = 0;
  for (const m of [1, 2, 3, 8, 15, 16, 17, 33, 64, 65]) {
    for (const n of [1, 33, 256]) {
      for (const k of m <= 64 ? [32, 96, 4096] : [32, 64]) {
        cases.push(q8Case(dtype, { m, n, k, ...EPILOGUES[i++ % EPILOGUES.length] }, (seed += 10)));
      }
    }
  }
}

// Strides: odd ldx (element loads of x), ldy > n (gaps between rows of y must come back untouched), and tiles in
// both directions with several K tiles.
const STRIDED: Shape[] = [
  { m: 1, n: 33, k: 96, bias: true, residual: 'sep', ldx: 97 },
  { m: 7, n: 40, k: 160, bias: false, residual: 'inplace', ldx: 161, ldy: 45 },
  { m: 40, n: 33, k: 64, bias: true, residual: 'none', ldx: 67, ldy: 35 },
  { m: 130, n: 300, k: 256, bias: true, residual: 'sep' },
];
for (const dtype of DTYPES) for (const s of STRIDED) cases.push(q8Case(dtype, s, (seed += 10)));
// The tensor-core tiles (cuda/gemm_tile.cuh pick_mma_tile). In comments: the tile each shape gets.
const TILES: Shape[] = [
  { m: 200, n: 250, k: 192, bias: true, residual: 'inplace', emu: { smCount: 1 } },  // 128 x 128, K 6 tiles
  { m: 200, n: 250, k: 64, bias: false, residual: 'sep', ldx: 70, emu: { smCount: 1 } },  // 128 x 128, x by loads
  { m: 100, n: 96, k: 160, bias: true, residual: 'inplace', ldx: 165, ldy: 100 },  // 64 x 128, x by loads
  { m: 65, n: 129, k: 224, bias: false, residual: 'none' },  // 64 x 128, K 7 tiles
];
for (const dtype of ['float16', 'bfloat16'] as FloatDType[]) for (const s of TILES) cases.push(q8Case(dtype, s, (seed += 10)));
// K split over the warps of a block and over blocks (split-K), the K tail in the last slice. In comments: the
// kernel, and the K slices (block rows of the grid) the emu's 132 SMs give.
const SPLIT: Array<[FloatDType, Shape]> = [
  ['float16', { m: 3, n: 5, k: 8192, bias: true, residual: 'sep' }],  // skinny NT 1, 32 slices
  ['float32', { m: 1, n: 5, k: 16384, bias: false, residual: 'none' }],  // gemv, 8 warps x 2 blocks
  ['bfloat16', { m: 1, n: 33, k: 16416, bias: true, residual: 'inplace' }],  // gemv, 8 x 2, K tail
  ['float32', { m: 9, n: 7, k: 16384, bias: true, residual: 'sep', ldx: 16390 }],  // gemv<16>, element x, 8 x 2
  ['bfloat16', { m: 15, n: 40, k: 544, bias: false, residual: 'sep', ldx: 550, ldy: 41 }],  // NT 2, element x, 3
  ['float16', { m: 17, n: 40, k: 544, bias: true, residual: 'none' }],  // skinny NT 4, 3 (K tail: one block)
  ['bfloat16', { m: 33, n: 130, k: 2080, bias: true, residual: 'inplace', ldy: 133 }],  // NT 8, 2 x 9
  ['float16', { m: 64, n: 256, k: 4096, bias: false, residual: 'sep' }],  // skinny NT 8, 2 x 16
];
for (const [dtype, s] of SPLIT) cases.push(q8Case(dtype, s, (seed += 10)));
// A batch of 16 through a 2048 x 2048 projection (16 x 8 blocks).
cases.push(q8Case('float16', { m: 16, n: 2048, k: 2048, bias: false, residual: 'inplace' }, (seed += 10)));

// ---- input prologues (ops.h GemmPrologue), as in gemm.test.ts: the decode kernels normalise (rms_norm) or gate
// (swiglu, x rows holding gate|up, 2K wide) x as they load it; the cpu reference runs the reference norm / act op
// into a temporary, then its gemm_q8. gemv_q8 (M = 1; f32 M <= 16, and 17..64 16 rows at a time), skinny_q8 NT 1, 2,
// 4, 8 with its stage, odd ldx (element x loads), split-K.
const fusedQ8Case = (dtype: FloatDType, xform: XForm, s: Shape, seed: number): OpCase =>
  prologueCase('gemm_q8', dtype, xform, s, seed, 1e-6, (sd) => randomQ8(s.n, s.k, sd).blob);

const FUSED: Array<[FloatDType[], Shape]> = [
  [DTYPES, { m: 1, n: 64, k: 768, bias: true, residual: 'none' }],  // gemv_q8
  [DTYPES, { m: 1, n: 5, k: 16384, bias: false, residual: 'sep', ldx: 16391 }],  // split-K, element x, widest fold
  [['float32'], { m: 7, n: 40, k: 160, bias: false, residual: 'inplace', ldx: 161, ldy: 45 }],  // gemv_q8<16>
  [['float32'], { m: 40, n: 33, k: 256, bias: true, residual: 'sep' }],  // gemv_q8<16> once per 16 rows
  [['float16', 'bfloat16'], { m: 3, n: 33, k: 96, bias: true, residual: 'sep' }],  // skinny NT 1, half-empty chunk
  [['float16', 'bfloat16'], { m: 15, n: 130, k: 544, bias: false, residual: 'none', ldx: 550 }],  // NT 2, odd ldx
  [['float16', 'bfloat16'], { m: 20, n: 40, k: 2080, bias: true, residual: 'inplace', ldy: 41 }],  // NT 4, split-K
  [['float16', 'bfloat16'], { m: 64, n: 256, k: 1024, bias: false, residual: 'sep' }],  // NT 8
];
seed = prologueCases(FUSED, seed, fusedQ8Case, cases);

opSuite('gemm_q8', cases);

// ---- Q8_0 quantization of float weights vs the float gemm ------------------------------------------------------
// Weights w (values rounded to the dtype, block magnitudes spread over 1.5 decades) are quantized with ggml's rule:
// d = max|w| / 127 (float32, stored as float16), q = round(w / d). Per weight |d16*q - w| <= d/2 + 127*|d16 - d|
// <= d * (1/2 + 127 * 2^-11). Stated tolerance, for every output element:
//   |gemm_q8(x, Q(w)) - gemm(x, w)| <= sum_k |x_k| * 0.5621 * d_(n, k/32)
//                                      + 1e-5 * sum_k |x_k w_k|          (fp32 accumulation)
//                                      + u * (|y_q8| + |y_float|)         (output rounding, u = 2^-11 f16, 2^-8 bf16)
// and the rms error is under 1% of the rms output (Q8_0 noise is about 0.2%).
const { abs, sqrt, pow } = Math;

function quantWeights(n: number, k: number, seed: number, dtype: FloatDType): Float32Array {
  const w = uniform(n * k, seed, -1, 1);
  const mag = uniform((n * k) / 32, seed + 1, -1.5, 0);
  for (let i = 0; i < w.length; i++) w[i] *= pow(10, mag[i >> 5]);
  return dtype === 'float32' ? w : fromHalfBits(toHalfBits(w, dtype), dtype);
}

describe('gemm_q8 vs float gemm (ggml Q8_0 quantization)', () => {
  const worker = new OpWorker();
  afterAll(() => worker.stop());
  const devices = ['cpu-ref', 'cpu', 'emu', ...(hasGpu ? ['cuda'] : [])];
  const floatTensor = (dtype: FloatDType, data: Float32Array) =>
    dtype === 'float32' ? { dtype: 0, data } : { dtype: CODE[dtype], data: toHalfBits(data, dtype) };
  // float32 outputs come back as Float32Array, float16/bfloat16 as their bits (Uint16Array)
  const read = (dtype: FloatDType, a: Float32Array | Uint16Array) =>
    dtype === 'float32' ? Float32Array.from(a) : fromHalfBits(Uint16Array.from(a), dtype);

  for (const dtype of DTYPES) {
    for (const [m, n, k] of [[1, 64, 256], [33, 96, 256]]) {
      test(`gemm_q8 within Q8_0 error of gemm(dtype=${SHORT[dtype]}, m=${m}, n=${n}, k=${k}) on ${devices.join(', ')}`, async () => {
        const s0 = 7000 + m * 13 + n + CODE[dtype];
        const x = uniform(m * k, s0, -1, 1);
        const xr = dtype === 'float32' ? x : fromHalfBits(toHalfBits(x, dtype), dtype);
        const w = quantWeights(n, k, s0 + 1, dtype);
        const qw = quantizeQ8_0(w, n, k);
        const params = { m, n, k, ldx: k, ldy: n, dtype: CODE[dtype] };
        const run = async (op: string, device: string, wt: unknown) => {
          const reply = await worker.run(
            { op, device, reverseOrder: false, params, tensors: { x: floatTensor(dtype, xr), w: wt, y: { dtype: CODE[dtype], numel: m * n, fill: 'poison' } }, aliases: {}, outputs: ['y'] },
            120000,
          );
          if (reply.error) throw new Error(`${device} ${op}: ${reply.error.code}: ${reply.error.message}`);
          return read(dtype, reply.outputs!.y as Float32Array | Uint16Array);
        };
        const yf = await run('gemm', 'cpu-ref', floatTensor(dtype, w));
        const u = dtype === 'float32' ? 0 : dtype === 'float16' ? pow(2, -11) : pow(2, -8);
        for (const device of devices) {
          const yq = await run('gemm_q8', device, { dtype: 4, data: qw.blob });
          let e2 = 0, r2 = 0;
          for (let r = 0; r < m; r++) {
            for (let c = 0; c < n; c++) {
              let bound = 0, mag = 0;
              for (let i = 0; i < k; i++) {
                bound += abs(xr[r * k + i]) * 0.5621 * abs(qw.scales[(c * k + i) >> 5]);
                mag += abs(xr[r * k + i] * w[c * k + i]);
              }
              const a = yq[r * n + c], b = yf[r * n + c];
              const lim = bound + 1e-5 * mag + u * (abs(a) + abs(b));
              if (!(abs(a - b) <= lim)) throw new Error(`${device}: y[${r}, ${c}] = ${a}, float gemm ${b}, |diff| > bound ${lim}`);
              e2 += (a - b) ** 2;
              r2 += b * b;
            }
          }
          const rel = sqrt(e2 / r2);
          if (!(rel < 0.01)) throw new Error(`${device}: rms error ${rel} of the rms output (limit 0.01)`);
        }
      });
    }
  }
});

describe('gemm_q8 arguments', () => {
  const worker = new OpWorker();
  afterAll(() => worker.stop());
  const run = (params: Record<string, unknown>, wBytes: number) =>
    worker.run(
      {
        op: 'gemm_q8', device: 'cpu', reverseOrder: false, params: { dtype: 0, ...params }, aliases: {}, outputs: [],
        tensors: { x: { dtype: 0, numel: 64, fill: 'zero' }, w: { dtype: 4, numel: wBytes, fill: 'zero' }, y: { dtype: 0, numel: 4, fill: 'zero' } },
      },
      30000,
    );
  test('k not a multiple of 32 (Q8_0 blocks) is ERR_INVALID_ARG', async () => {
    const r = await run({ m: 1, n: 1, k: 48 }, 48 + 3);
    expect(r.error?.code).toBe('ERR_INVALID_ARG');
    expect(r.error?.message).toMatch(/multiple of 32/);
  });
  test('w shorter than n*k bytes of q plus n*k/32 float16 scales is ERR_INVALID_ARG', async () => {
    const r = await run({ m: 1, n: 2, k: 32 }, 2 * 32 + 3);
    expect(r.error?.code).toBe('ERR_INVALID_ARG');
    expect(r.error?.message).toMatch(/w/);
  });
});

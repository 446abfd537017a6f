// gemm op: y = x·Wᵀ (+ bias) (+ residual), emu (and cuda when present) vs the cpu reference.
// Cases are chosen so that every kernel of cuda/gemm.cu and cuda/gemv.cu runs in every dtype it serves:
//   gemv_kernel<T, 1> (M = 1) and <float, 16> (f32, M <= 16): 16-byte path (K, ldx multiples of the vector width)
//     and element path (odd K or ldx), K split over 1..8 warps of a block and over blocks (split-K: small N, long K);
//   skinny_mma_kernel<T, NT> (f16/bf16, M = 2..64; NT = 1, 2, 4, 8 for M <= 8, 16, 32, 64): tensor cores with M, N
//     and K edges, strided x / y, one block per 128 rows of W or split over K (K >= 512 with few rows of W), the
//     K tail inside the last slice;
//   gemm_mma_kernel<T, Tile, Copier> (f16/bf16, M > 64): each tile (128 x 256, 128 x 128, 64 x 128) with cp.async,
//     and 64 x 128 with ordinary loads (ldx or K not a multiple of 8), with M, N, K edges, strided x / y, K over more
//     tiles than the pipeline's 4 stages;
//   gemm_simt_kernel (f32, M > 16).
// The split and tile decisions depend on the SM count: the emu reports 132 (an H100 / H200), so these shapes split
// as they would on those GPUs; the tensor-core cases below set the emu's target to reach every tile with small shapes.
// Residual: none, a separate tensor, or in place (residual aliases y). With ldy > n, or in place, y is an in/out
// tensor with random contents, so the gaps between rows must come back untouched.
import { FloatDType, OpCase, SHORT, SM86_SMEM, opSuite } from './harness';
import { uniform } from '../util/random';
import { Shape, XForm, prologueCase, prologueCases } from './gemm_shapes';

const DTYPES: FloatDType[] = ['float32', 'float16', 'bfloat16'];

function gemmCase(dtype: FloatDType, s: Shape, seed: number): OpCase {
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
    name: `gemm(dtype=${SHORT[dtype]}, m=${s.m}, n=${s.n}, k=${s.k}, bias=${s.bias ? 'yes' : 'no'}, residual=${s.residual}${strides}${target})`,
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

// Sweep of small shapes: every M class (gemv 1; f32 gemv 2..16, simt 17+; f16/bf16 skinny 2..64 with each NT,
// tiled 65+), N and K edges, all dtypes. K <= 172: one K slice.
for (const dtype of DTYPES) {
  let i = 0;
  for (const m of [1, 2, 3, 8, 15, 16, 17, 33, 64, 65]) {
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

// The tensor-core tiles (cuda/gemm_tile.cuh pick_mma_tile: the cheapest of 128 x 256 / 128 x 128 / 64 x 128 for the
// SM count, among those that fit the device's shared memory per block). In comments: the tile each shape gets.
const TILES: Shape[] = [
  // 132 SMs: 67 blocks of 128 x 256 in one wave beat 133 of 128 x 128 (two on one SM)
  { m: 65, n: 16900, k: 40, bias: true, residual: 'none' },
  // 1 SM: 128 x 256, M and N edges, K over 7 tiles (the 4-stage ring wraps; the last tile 8 wide)
  { m: 129, n: 250, k: 200, bias: true, residual: 'inplace', emu: { smCount: 1 } },
  { m: 256, n: 256, k: 256, bias: false, residual: 'sep', emu: { smCount: 1 } },  // 128 x 256, whole tiles
  // sm_86 / sm_89's 99 KiB still hold 4 stages of 128 x 256 (96 KiB); 60000 bytes hold only 64 x 128's 48 KiB
  { m: 129, n: 250, k: 64, bias: false, residual: 'none', emu: { smCount: 1, maxSharedMemoryPerBlockOptin: SM86_SMEM } },
  { m: 129, n: 250, k: 64, bias: true, residual: 'sep', emu: { smCount: 1, maxSharedMemoryPerBlockOptin: 60000 } },
  { m: 130, n: 300, k: 168, bias: true, residual: 'sep', emu: { smCount: 2 } },  // 128 x 128, M and N edges
  { m: 100, n: 200, k: 72, bias: false, residual: 'inplace', ldy: 210 },  // 64 x 128, K 2 tiles + 8
  // 64 x 128 with ordinary loads: x's rows not 16-byte aligned (ldx % 8 = 4), or W's (K % 8 != 0)
  { m: 100, n: 96, k: 136, bias: true, residual: 'inplace', ldx: 140, ldy: 100 },
  { m: 80, n: 130, k: 170, bias: false, residual: 'sep' },
];
for (const dtype of ['float16', 'bfloat16'] as FloatDType[]) for (const s of TILES) cases.push(gemmCase(dtype, s, (seed += 10)));

// K split over the warps of a block and over blocks (split-K), with the K tail in the last slice. In comments:
// the kernel, and the K slices (block rows of the grid) the emu's 132 SMs give.
const SPLIT: Array<[FloatDType, Shape]> = [
  ['float32', { m: 1, n: 64, k: 2048, bias: false, residual: 'sep' }],  // gemv, 8 warps x 1
  ['float16', { m: 1, n: 64, k: 8192, bias: true, residual: 'none' }],  // gemv, 8 warps x 2 blocks
  ['bfloat16', { m: 1, n: 40, k: 12296, bias: false, residual: 'inplace' }],  // gemv, 8 x 3, K tail
  ['float32', { m: 7, n: 40, k: 4096, bias: true, residual: 'sep', ldy: 44 }],  // gemv<16>, 8 x 2
  ['float32', { m: 15, n: 9, k: 1023, bias: false, residual: 'none' }],  // gemv<16> element path, 8 x 4
  ['bfloat16', { m: 3, n: 33, k: 4096, bias: true, residual: 'none' }],  // skinny NT 1, 16 slices
  ['float16', { m: 8, n: 300, k: 2048, bias: false, residual: 'sep', ldx: 2056 }],  // skinny NT 1, 3 x 8
  ['float16', { m: 15, n: 33, k: 1025, bias: true, residual: 'inplace' }],  // skinny NT 2 element path, 3
  ['bfloat16', { m: 16, n: 127, k: 520, bias: false, residual: 'sep', ldx: 528, ldy: 130 }],  // NT 2, 2
  ['float16', { m: 17, n: 129, k: 1536, bias: true, residual: 'none' }],  // skinny NT 4, 2 x 6
  ['bfloat16', { m: 33, n: 130, k: 520, bias: true, residual: 'inplace', ldy: 140 }],  // skinny NT 8, 2 x 2
  ['float16', { m: 64, n: 127, k: 1537, bias: false, residual: 'sep' }],  // skinny NT 8 element path, 5
  ['bfloat16', { m: 64, n: 2048, k: 2560, bias: true, residual: 'none' }],  // NT 8, 16 x 7 (scratch-bound)
];
for (const [dtype, s] of SPLIT) cases.push(gemmCase(dtype, s, (seed += 10)));
// The decode shapes: one token, and a batch of 16, through a 4096 x 4096 projection; the small layer matrices of
// a 2048-wide model (q / o, and k / v with 4 KV heads of 64).
cases.push(gemmCase('float16', { m: 1, n: 4096, k: 4096, bias: false, residual: 'inplace' }, (seed += 10)));
cases.push(gemmCase('bfloat16', { m: 16, n: 4096, k: 4096, bias: false, residual: 'inplace' }, (seed += 10)));
cases.push(gemmCase('float16', { m: 1, n: 2048, k: 2048, bias: false, residual: 'sep' }, (seed += 10)));
cases.push(gemmCase('bfloat16', { m: 1, n: 256, k: 2048, bias: true, residual: 'none' }, (seed += 10)));

// ---- input prologues (ops.h GemmPrologue): the decode kernels normalise (rms_norm) or gate (swiglu) x as they
// load it; the cpu reference runs the reference norm / act op into a temporary and then its gemm. M up to 64: gemv
// (M = 1; f32 M <= 16, and 17..64 16 rows at a time), skinny NT 1, 2, 4, 8 (f16/bf16), odd K and
// odd ldx (element paths), split-K (long K, few columns), and each fold of the norm's rows (K <= 512, 2048, 4096,
// 8192, 16384: the row's rstd is reproduced from the norm kernel's fold). swiglu x rows hold gate|up (2K wide).
const fusedCase = (dtype: FloatDType, xform: XForm, s: Shape, seed: number): OpCase =>
  prologueCase('gemm', dtype, xform, s, seed, 1e-5, (sd) => uniform(s.n * s.k, sd, -1, 1));

const FUSED: Array<[FloatDType[], Shape]> = [
  [DTYPES, { m: 1, n: 96, k: 768, bias: false, residual: 'none' }],  // gemv, 16-byte path
  [DTYPES, { m: 1, n: 33, k: 33, bias: true, residual: 'inplace' }],  // gemv element path, one-warp norm fold
  [DTYPES, { m: 1, n: 40, k: 4100, bias: false, residual: 'sep' }],  // gemv split-K, K tail, 512-thread fold
  [['float32'], { m: 3, n: 64, k: 2048, bias: true, residual: 'none', ldx: 2051 }],  // gemv<16>, odd ldx
  [['float32'], { m: 16, n: 40, k: 1025, bias: false, residual: 'sep', ldy: 44 }],  // gemv<16> element path
  [['float32'], { m: 64, n: 33, k: 520, bias: true, residual: 'inplace', ldy: 35 }],  // gemv<16> once per 16 rows
  [['float16', 'bfloat16'], { m: 2, n: 130, k: 768, bias: true, residual: 'none' }],  // skinny NT 1, 2 W tiles
  [['float16', 'bfloat16'], { m: 5, n: 33, k: 9000, bias: false, residual: 'sep' }],  // NT 1 split-K, 1024-thread fold
  [['float16', 'bfloat16'], { m: 9, n: 64, k: 1030, bias: false, residual: 'inplace', ldx: 2063 }],  // NT 2, odd ldx, K tail
  [['float16', 'bfloat16'], { m: 17, n: 33, k: 520, bias: true, residual: 'sep', ldy: 40 }],  // NT 4
  [['float16', 'bfloat16'], { m: 64, n: 127, k: 2048, bias: false, residual: 'none' }],  // NT 8, split over K
];
seed = prologueCases(FUSED, seed, fusedCase, cases);
// The widest norm fold (K in (8192, 16384]) once.
cases.push(fusedCase('float16', 'rms_norm', { m: 1, n: 8, k: 16384, bias: false, residual: 'none' }, (seed += 10)));

opSuite('gemm', cases);

// softmax op: emu (and cuda when present) vs the cpu reference. Every row length runs all three dtypes, so each
// fold of cuda/softmax.cu (warp per row, 128- to 1024-thread blocks, 16 or 32 items) sees every dtype, the
// 16-byte path (C a multiple of 8) and the element-wise path (odd C); the scale varies, negative included.
import { FloatDType, OpCase, SHORT, opSuite } from './harness';
import { normal } from '../util/random';

const DTYPES: FloatDType[] = ['float32', 'float16', 'bfloat16'];
const COLS = [1, 7, 33, 256, 1000, 1025, 4096, 8192, 16383, 32767, 32768];
const SCALES = [1, 0.125, 2.5, -0.7];

function softmaxCase(dtype: FloatDType, rows: number, cols: number, scale: number, seed: number): OpCase {
  return {
    name: `softmax(dtype=${SHORT[dtype]}, rows=${rows}, cols=${cols}, scale=${scale})`,
    op: 'softmax',
    dtype,
    params: { rows, cols, scale },
    inputs: () => ({ x: normal(rows * cols, seed, 2) }),
    outputs: { y: { numel: rows * cols } },
  };
}

const cases: OpCase[] = [];
COLS.forEach((cols, ci) => {
  DTYPES.forEach((dtype, di) => {
    const rows = cols <= 1025 ? 33 : cols <= 8192 ? 3 : 2 - (di % 2);
    cases.push(softmaxCase(dtype, rows, cols, SCALES[(ci + di) % SCALES.length], 100 * ci + di));
  });
});

// In place (y is x): short rows and a folded long row.
for (const [dtype, rows, cols] of [['float32', 33, 1000], ['bfloat16', 2, 32768]] as const) {
  const c = softmaxCase(dtype, rows, cols, 0.125, 4242 + cols);
  cases.push({ ...c, name: c.name.replace('softmax(', 'softmax(in-place, '), aliases: { y: 'x' } });
}

opSuite('softmax', cases);

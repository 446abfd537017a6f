// embedding: out[i, :] = table[ids[i], :] (+ posTable[pos[i], :]), emu (and cuda) vs the cpu reference.
// cols 64 and 768 take the 16-byte path (every dtype), 1, 33 and 4097 the element path.
import { FloatDType, OpCase, SHORT, grid, opSuite } from './harness';
import { normal, randInt } from '../util/random';

const N_POS = 64;
const cases: OpCase[] = [];
const shapes = [
  ...[1, 33, 64, 768, 4097].map((cols) => ({ vocab: 512, cols, n: cols >= 768 ? 5 : 37 })),
  ...[1, 33, 64].map((cols) => ({ vocab: 50257, cols, n: 6 })),
];
let seed = 100;
for (const { dtype, shape, withPos } of grid({ dtype: ['float32', 'float16', 'bfloat16'] as FloatDType[], shape: shapes, withPos: [false, true] })) {
  const { vocab, cols, n } = shape;
  const s = seed++ * 10;
  const params: Record<string, unknown> = { n, cols, vocab };
  if (withPos) params.nPos = N_POS;
  cases.push({
    name: `embedding(dtype=${SHORT[dtype]}, vocab=${vocab}, cols=${cols}, n=${n}, pos=${withPos ? N_POS : 'none'})`,
    op: 'embedding',
    dtype,
    params,
    inputs: () => {
      const ids = randInt(n, s, 0, vocab);
      ids[0] = vocab - 1; // the last row, to catch an off-by-one in the row offset
      const inputs: Record<string, Float32Array | Int32Array> = { ids, table: normal(vocab * cols, s + 1) };
      if (withPos) {
        inputs.posTable = normal(N_POS * cols, s + 2, 0.5);
        inputs.pos = randInt(n, s + 3, 0, N_POS);
      }
      return inputs;
    },
    outputs: { out: { numel: n * cols } },
  });
}

opSuite('embedding', cases);

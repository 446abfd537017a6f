// Fused masked attention over the paged KV cache (engine/ops.h "fused masked attention"), against the cpu reference.
// Every case packs several sequences of different lengths, reads K/V through shuffled (non-contiguous) block
// tables whose unused entries are -1, and names its geometry:
//   prompt pass: n_q = ctx (prefill) or n_q < ctx (a continuation chunk over cached tokens), causal or not
//   decode:      every n_q = 1; long contexts split across blocks and are merged by the combine kernel
// Layouts: 'dense' (default strides), 'fused' (q rows strided as in a fused QKV buffer, padded cache strides,
// 16-byte loads still possible), 'odd' (odd strides everywhere: scalar loads; out strided, so `out` is an in/out
// tensor whose gaps must stay untouched).
import { FloatDType, OpCase, opSuite, SHORT } from './harness';
import { normal, shuffled, uniform } from '../util/random';

type Layout = 'dense' | 'fused' | 'odd';

interface Spec {
  dtype: FloatDType;
  headDim: number;
  nHeads: number;
  nKvHeads: number;
  causal: boolean;
  blockSize: number;
  ctx: number[];
  nq: number[];
  layout?: Layout;
  timeoutMs?: number;
}

const list = (xs: number[]) => (xs.length > 6 ? `${xs.length}x` : `[${xs.join(',')}]`);

let nextSeed = 1;
function attentionCase(s: Spec): OpCase {
  const seed = (nextSeed += 7919);
  const layout = s.layout ?? 'dense';
  const D = s.headDim, bs = s.blockSize, batch = s.ctx.length;
  const row = s.nHeads * D;
  const ldq = layout === 'dense' ? row : layout === 'fused' ? 3 * row : row + 1;
  const ldo = layout === 'odd' ? row + 3 : row;
  const headStride = layout === 'dense' ? bs * D : layout === 'fused' ? bs * D + 8 : bs * D + 1;
  const blockStride = s.nKvHeads * headStride + (layout === 'dense' ? 0 : layout === 'fused' ? 16 : 5);
  const used = s.ctx.map((c) => Math.ceil(c / bs));
  const maxBlocksPerSeq = Math.max(...used) + 1;
  const nBlocks = used.reduce((a, b) => a + b, 0) + 3;
  const perm = shuffled(nBlocks, seed);
  const blockTable = new Int32Array(batch * maxBlocksPerSeq).fill(-1);
  let next = 0;
  for (let b = 0; b < batch; b++) for (let i = 0; i < used[b]; i++) blockTable[b * maxBlocksPerSeq + i] = perm[next++];
  const qStart = new Int32Array(batch + 1);
  for (let b = 0; b < batch; b++) qStart[b + 1] = qStart[b] + s.nq[b];
  const nTokens = qStart[batch];
  const decode = s.nq.every((n) => n === 1);
  const name =
    `attention(${decode ? 'decode' : 'prompt'}, dtype=${SHORT[s.dtype]}, D=${D}, heads=${s.nHeads}/${s.nKvHeads}, ` +
    `${s.causal ? 'causal' : 'full'}, bs=${bs}, ctx=${list(s.ctx)}${decode ? '' : `, nq=${list(s.nq)}`}, layout=${layout})`;
  const outIsInout = layout === 'odd';
  return {
    name,
    op: 'attention',
    dtype: s.dtype,
    params: {
      blockSize: bs, nKvHeads: s.nKvHeads, headDim: D, headStride, blockStride, batch, nHeads: s.nHeads, nTokens,
      maxBlocksPerSeq, scale: 1 / Math.sqrt(D), causal: s.causal, ldq, ldo,
    },
    inputs: () => ({
      q: normal(nTokens * ldq, seed + 1),
      kCache: uniform(nBlocks * blockStride, seed + 2, -1.7, 1.7),  // std ~1; uniform is 4x cheaper to draw
      vCache: uniform(nBlocks * blockStride, seed + 3, -1.7, 1.7),
      blockTable,
      qStart,
      ctxLen: Int32Array.from(s.ctx),
      ...(outIsInout ? { out: normal(nTokens * ldo, seed + 4) } : {}),
    }),
    outputs: outIsInout ? {} : { out: { numel: nTokens * ldo } },
    inout: outIsInout ? ['out'] : undefined,
    timeoutMs: s.timeoutMs,
  };
}

const dtypes: FloatDType[] = ['float32', 'float16', 'bfloat16'];
const cases: OpCase[] = [];
const add = (s: Spec) => cases.push(attentionCase(s));
const prefill = [1, 7, 33, 100];

// Prompt pass, every dtype and head_dim (NI = 2/4/8 variants, 16-byte and scalar loads).
for (const dtype of dtypes) {
  for (const headDim of [8, 64, 80, 128, 256]) {
    add({ dtype, headDim, nHeads: 4, nKvHeads: 2, causal: true, blockSize: 16, ctx: prefill, nq: prefill });
  }
}
// GQA ratios 1, 2, 8 and MQA, causal and not, continuation chunks (n_q < ctx) beside full prompts.
const ratios: Array<[number, number]> = [[4, 4], [4, 2], [16, 2], [6, 1]];
ratios.forEach(([nHeads, nKvHeads], i) => {
  for (const causal of [true, false]) {
    add({ dtype: dtypes[(i + (causal ? 0 : 1)) % 3], headDim: i === 2 ? 96 : 64, nHeads, nKvHeads, causal, blockSize: 16,
          ctx: [40, 17, 3, 100], nq: [5, 17, 1, 37] });
  }
});
// Block sizes 7 and 32, strided q/out/cache.
add({ dtype: 'float16', headDim: 64, nHeads: 4, nKvHeads: 2, causal: true, blockSize: 7, ctx: [50, 9, 64], nq: [50, 4, 33], layout: 'fused' });
add({ dtype: 'bfloat16', headDim: 100, nHeads: 3, nKvHeads: 1, causal: true, blockSize: 32, ctx: [70, 33], nq: [12, 33], layout: 'odd' });
add({ dtype: 'float32', headDim: 80, nHeads: 2, nKvHeads: 2, causal: false, blockSize: 32, ctx: [65, 1], nq: [65, 1], layout: 'odd' });
// Long prompts: causal S = 4096 (tile skipping), and a BERT-style full-attention batch.
add({ dtype: 'float16', headDim: 64, nHeads: 1, nKvHeads: 1, causal: true, blockSize: 16, ctx: [4096], nq: [4096], timeoutMs: 300000 });
add({ dtype: 'bfloat16', headDim: 64, nHeads: 2, nKvHeads: 2, causal: false, blockSize: 16, ctx: [1024, 77], nq: [1024, 77], timeoutMs: 300000 });

// Decode: several sequences, contexts long enough to split (combine kernel) beside 1-token contexts.
const decodeCtx = [1, 17, 1025, 4096];
const ones = (n: number) => new Array(n).fill(1);
for (const dtype of dtypes) {
  for (const headDim of [64, 128]) {
    add({ dtype, headDim, nHeads: 8, nKvHeads: 2, causal: true, blockSize: 16, ctx: decodeCtx, nq: ones(4), timeoutMs: 120000 });
  }
}
add({ dtype: 'float32', headDim: 8, nHeads: 4, nKvHeads: 4, causal: true, blockSize: 16, ctx: [3, 300, 129], nq: ones(3) });
add({ dtype: 'bfloat16', headDim: 256, nHeads: 2, nKvHeads: 1, causal: true, blockSize: 16, ctx: [1025, 2], nq: ones(2) });
add({ dtype: 'float16', headDim: 80, nHeads: 16, nKvHeads: 1, causal: true, blockSize: 16, ctx: [5, 300, 1025], nq: ones(3) });  // MQA, 2 head groups
add({ dtype: 'float16', headDim: 100, nHeads: 6, nKvHeads: 2, causal: false, blockSize: 7, ctx: [700, 1], nq: ones(2), layout: 'odd' });
add({ dtype: 'float16', headDim: 64, nHeads: 4, nKvHeads: 4, causal: true, blockSize: 32, ctx: [1, 2, 5, 100], nq: ones(4), layout: 'fused' });  // one chunk: no combine
add({ dtype: 'float16', headDim: 128, nHeads: 4, nKvHeads: 4, causal: true, blockSize: 16, ctx: [4096], nq: [1], timeoutMs: 120000 });
add({ dtype: 'bfloat16', headDim: 64, nHeads: 4, nKvHeads: 1, causal: true, blockSize: 16, ctx: [32768], nq: [1], timeoutMs: 300000 });

opSuite('attention', cases);

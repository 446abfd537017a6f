// Fused masked attention over the paged KV cache (engine/ops.h "fused masked attention"), against the cpu reference:
// decode, and the prompt pass on its SIMT kernel (attention_prefill_kernel). Every case packs several sequences of
// different lengths and reads K/V through shuffled block tables (attention_cases.ts), and names its geometry:
//   prompt pass: n_q = ctx (prefill) or n_q < ctx (a continuation chunk over cached tokens), under each mask:
//                bidirectional, causal, anticausal (DecBERT: a query sees itself and later keys)
//   decode:      every n_q = 1; long contexts split across blocks and are merged by the combine kernel
// The f16/bf16 prompt cases with head_dim a multiple of 16, which the op runs on tensor cores, are pinned to the SIMT
// kernel here (simtPrefill, "kernel=simt" in their names) so it stays tested in every dtype; attention_mma.test.ts
// tests the tensor-core kernel. T5's relative position bias (a per-head bucket table, buckets computed in the
// kernels from positions) is checked against the reference on both paths, and by its definition against buckets HF
// computed (test/fixtures/hf-t5/reference.json).
import { binding } from '../../lib/binding';
import { FloatDType, OpCase, opSuite, SM86_SMEM } from './harness';
import { normal } from '../util/random';
import { attentionCase, Mask, Spec, splitOf } from './attention_cases';

const dtypes: FloatDType[] = ['float32', 'float16', 'bfloat16'];
const cases: OpCase[] = [];
const add = (s: Spec) => cases.push(attentionCase({ ...s, simt: true }));
const prefill = [1, 7, 33, 100];
const ones = (n: number) => new Array(n).fill(1);

// Prompt pass, every dtype and head_dim (NI = 2/4/8 variants, 16-byte and scalar loads).
for (const dtype of dtypes) {
  for (const headDim of [8, 64, 80, 128, 256]) {
    add({ dtype, headDim, nHeads: 4, nKvHeads: 2, mask: 'causal', blockSize: 16, ctx: prefill, nq: prefill });
  }
}
// GQA ratios 1, 2, 8 and MQA, causal and not, continuation chunks (n_q < ctx) beside full prompts.
const ratios: Array<[number, number]> = [[4, 4], [4, 2], [16, 2], [6, 1]];
const masks: Mask[] = ['causal', 'bidirectional', 'anticausal'];
ratios.forEach(([nHeads, nKvHeads], i) => {
  masks.forEach((mask, j) => {
    add({ dtype: dtypes[(i + j) % 3], headDim: i === 2 ? 96 : 64, nHeads, nKvHeads, mask, blockSize: 16,
          ctx: [40, 17, 3, 100], nq: [5, 17, 1, 37] });
  });
});
// Block sizes 7 and 32, strided q/out/cache.
add({ dtype: 'float16', headDim: 64, nHeads: 4, nKvHeads: 2, mask: 'causal', blockSize: 7, ctx: [50, 9, 64], nq: [50, 4, 33], layout: 'fused' });
add({ dtype: 'bfloat16', headDim: 100, nHeads: 3, nKvHeads: 1, mask: 'causal', blockSize: 32, ctx: [70, 33], nq: [12, 33], layout: 'odd' });
add({ dtype: 'float32', headDim: 80, nHeads: 2, nKvHeads: 2, mask: 'bidirectional', blockSize: 32, ctx: [65, 1], nq: [65, 1], layout: 'odd' });
// Long prompts: causal S = 4096 (tile skipping), and a BERT-style full-attention batch.
add({ dtype: 'float16', headDim: 64, nHeads: 1, nKvHeads: 1, mask: 'causal', blockSize: 16, ctx: [4096], nq: [4096], timeoutMs: 300000 });
add({ dtype: 'bfloat16', headDim: 64, nHeads: 2, nKvHeads: 2, mask: 'bidirectional', blockSize: 16, ctx: [1024, 77], nq: [1024, 77], timeoutMs: 300000 });

// Encoder masks (DecBERT) over whole sequences, as an encoder runs them: every dtype, head_dim 64 and 128, GQA, odd
// lengths (one query tile, several, a partial last one). Anti-causal starts each query tile's keys at its first
// query, so only its first key tile is masked; strided layouts and a 1025-token prompt (33 query tiles) too.
for (const mask of ['bidirectional', 'anticausal'] as const) {
  for (const dtype of dtypes) {
    for (const headDim of [64, 128]) {
      add({ dtype, headDim, nHeads: 4, nKvHeads: 2, mask, blockSize: 16, ctx: [1, 7, 33, 77, 101], nq: [1, 7, 33, 77, 101] });
    }
  }
}
add({ dtype: 'float16', headDim: 64, nHeads: 4, nKvHeads: 2, mask: 'anticausal', blockSize: 7, ctx: [50, 9, 64], nq: [50, 4, 33], layout: 'fused' });
add({ dtype: 'bfloat16', headDim: 100, nHeads: 3, nKvHeads: 1, mask: 'anticausal', blockSize: 32, ctx: [70, 33], nq: [12, 33], layout: 'odd' });
add({ dtype: 'float16', headDim: 64, nHeads: 1, nKvHeads: 1, mask: 'anticausal', blockSize: 16, ctx: [1025, 3], nq: [1025, 3], timeoutMs: 300000 });
// T5's cross-attention: the keys are an encoder memory, so a decoder prompt may be longer than it (n_q > ctx: 12
// queries over 5 keys, 9 over 1) and every query sees all of them; decode steps (n_q = 1) read all too. Every dtype,
// GQA, head_dim 64 and 128, a strided layout.
for (const dtype of dtypes) {
  add({ dtype, headDim: 64, nHeads: 4, nKvHeads: 4, mask: 'cross', blockSize: 16, ctx: [5, 40, 17, 1], nq: [12, 3, 17, 9] });
  add({ dtype, headDim: 128, nHeads: 4, nKvHeads: 2, mask: 'cross', blockSize: 16, ctx: [5, 40, 17, 1, 300], nq: ones(5) });
}
add({ dtype: 'float16', headDim: 64, nHeads: 6, nKvHeads: 2, mask: 'cross', blockSize: 7, ctx: [29, 3], nq: [40, 2], layout: 'fused' });
// A batch of 1-token texts takes the decode path under every mask (where they agree).
for (const mask of masks) add({ dtype: 'float32', headDim: 64, nHeads: 4, nKvHeads: 2, mask, blockSize: 16, ctx: [1, 1, 1], nq: ones(3) });

// Decode: several sequences, contexts long enough to split (combine kernel) beside 1-token contexts.
const decodeCtx = [1, 17, 1025, 4096];
for (const dtype of dtypes) {
  for (const headDim of [64, 128]) {
    add({ dtype, headDim, nHeads: 8, nKvHeads: 2, mask: 'causal', blockSize: 16, ctx: decodeCtx, nq: ones(4), timeoutMs: 120000 });
  }
}
add({ dtype: 'float32', headDim: 8, nHeads: 4, nKvHeads: 4, mask: 'causal', blockSize: 16, ctx: [3, 300, 129], nq: ones(3) });
add({ dtype: 'bfloat16', headDim: 256, nHeads: 2, nKvHeads: 1, mask: 'causal', blockSize: 16, ctx: [1025, 2], nq: ones(2) });
add({ dtype: 'float16', headDim: 80, nHeads: 16, nKvHeads: 1, mask: 'causal', blockSize: 16, ctx: [5, 300, 1025], nq: ones(3) });  // MQA, 2 head groups
add({ dtype: 'float16', headDim: 100, nHeads: 6, nKvHeads: 2, mask: 'bidirectional', blockSize: 7, ctx: [700, 1], nq: ones(2), layout: 'odd' });
add({ dtype: 'float16', headDim: 64, nHeads: 4, nKvHeads: 4, mask: 'causal', blockSize: 32, ctx: [1, 2, 5, 100], nq: ones(4), layout: 'fused' });  // one chunk: no combine
add({ dtype: 'float16', headDim: 128, nHeads: 4, nKvHeads: 4, mask: 'causal', blockSize: 16, ctx: [4096], nq: [1], timeoutMs: 120000 });
add({ dtype: 'bfloat16', headDim: 64, nHeads: 4, nKvHeads: 1, mask: 'causal', blockSize: 16, ctx: [32768], nq: [1], timeoutMs: 300000 });

// Decode splits (engine/ops.h attention_decode_split): the SM count (smCount, so a GPU run takes the same split) and
// the context choose the query heads per block and the chunks. At an H200's 132 SMs a batch of 1 takes the latency
// split (head groups of 1, chunks of a few keys ending inside cache blocks and warp slices); a batch of 16 keeps
// groups of 4 or 2; 1 SM with a batch of 4 keeps whole GQA groups and 1000 keys in one chunk; 1024 SMs cut 1000 keys
// into 125 chunks of 8; 46 SMs (an sm_86 card) and a group of 6 that halves unevenly (to 3) in between. GQA 1/4/8,
// head_dim 64/128, batch 1 and 16, contexts 1, 15, 16, 40, 1000.
const splitSpecs: Spec[] = [];
const batch16 = [1, 15, 16, 40, 1000, 7, 33, 129, 2, 500, 64, 17, 31, 256, 3, 999];
([[4, 4], [8, 2], [8, 1]] as Array<[number, number]>).forEach(([nHeads, nKvHeads], i) => {
  [64, 128].forEach((headDim, j) => {
    const base = { dtype: dtypes[(i + j) % 3], headDim, nHeads, nKvHeads, mask: 'causal' as const, blockSize: 16, smCount: 132 };
    for (const ctx of [1, 15, 16, 40, 1000]) splitSpecs.push({ ...base, ctx: [ctx], nq: [1] });
    splitSpecs.push({ ...base, ctx: batch16, nq: ones(16), timeoutMs: 120000 });
  });
});
splitSpecs.push({ dtype: 'float32', headDim: 64, nHeads: 8, nKvHeads: 1, mask: 'causal', blockSize: 16, ctx: [1000, 5, 130, 1], nq: ones(4), smCount: 1 });
splitSpecs.push({ dtype: 'float16', headDim: 128, nHeads: 8, nKvHeads: 1, mask: 'causal', blockSize: 16, ctx: batch16.map((c) => Math.min(c, 300)), nq: ones(16), smCount: 132 });
splitSpecs.push({ dtype: 'float16', headDim: 128, nHeads: 4, nKvHeads: 4, mask: 'causal', blockSize: 16, ctx: [1000], nq: [1], smCount: 1024 });
splitSpecs.push({ dtype: 'bfloat16', headDim: 64, nHeads: 8, nKvHeads: 2, mask: 'causal', blockSize: 16, ctx: [15, 40, 1000, 1], nq: ones(4), smCount: 46 });
splitSpecs.push({ dtype: 'float32', headDim: 80, nHeads: 6, nKvHeads: 1, mask: 'causal', blockSize: 7, ctx: [40, 3], nq: ones(2), smCount: 4, layout: 'odd' });
splitSpecs.push({ dtype: 'float16', headDim: 64, nHeads: 8, nKvHeads: 2, mask: 'causal', blockSize: 16, ctx: [40, 1000], nq: ones(2), smCount: 132, layout: 'fused', rel: { buckets: 32, maxDistance: 128, bidirectional: false } });
splitSpecs.forEach(add);

// The prompt tile at head_dim 256 needs 102,656 bytes of shared memory with 32-query tiles, over the 99 KiB of
// sm_86/sm_89: an emu with that limit must run the 16-query tile (the 32-query launch would fail), every dtype and
// mask, continuation chunks, a partial last tile, GQA; head_dim 200 still fits the 32-query tile there.
const sm86 = { maxSharedMemoryPerBlockOptin: SM86_SMEM };
dtypes.forEach((dtype, i) => {
  add({ dtype, headDim: 256, nHeads: 4, nKvHeads: 2, mask: masks[i], blockSize: 16, ctx: [1, 17, 40, 100], nq: [1, 17, 33, 100], emu: sm86 });
});
add({ dtype: 'float16', headDim: 256, nHeads: 3, nKvHeads: 1, mask: 'causal', blockSize: 7, ctx: [50, 9], nq: [50, 4], layout: 'fused', emu: sm86 });
add({ dtype: 'float32', headDim: 200, nHeads: 2, nKvHeads: 1, mask: 'causal', blockSize: 16, ctx: [70, 33], nq: [70, 12], emu: sm86 });

// T5's relative position bias: bidirectional buckets under the encoder's mask, unidirectional under the causal one
// (prefill, continuation chunks and decode with split contexts), GQA off and on, odd lengths, positions far beyond
// max_distance (all in the last bucket), small tables whose log range starts early, T5's scale of 1.
const t5Bi = { buckets: 32, maxDistance: 128, bidirectional: true };
const t5Uni = { buckets: 32, maxDistance: 128, bidirectional: false };
for (const dtype of dtypes) {
  add({ dtype, headDim: 64, nHeads: 4, nKvHeads: 2, mask: 'bidirectional', blockSize: 16, ctx: [1, 7, 33, 300], nq: [1, 7, 33, 300], rel: t5Bi });
  add({ dtype, headDim: 64, nHeads: 4, nKvHeads: 4, mask: 'causal', blockSize: 16, ctx: [40, 17, 3, 200], nq: [5, 17, 1, 200], rel: t5Uni });
  add({ dtype, headDim: 64, nHeads: 8, nKvHeads: 2, mask: 'causal', blockSize: 16, ctx: [1, 17, 300, 1025], nq: ones(4), rel: t5Uni });
}
add({ dtype: 'float32', headDim: 8, nHeads: 3, nKvHeads: 3, mask: 'bidirectional', blockSize: 7, ctx: [50, 9, 29], nq: [50, 9, 29], layout: 'odd', rel: { buckets: 6, maxDistance: 7, bidirectional: true, t5Scale: true } });
add({ dtype: 'float32', headDim: 16, nHeads: 4, nKvHeads: 1, mask: 'causal', blockSize: 16, ctx: [70, 2, 33], nq: [70, 1, 12], layout: 'fused', rel: { buckets: 8, maxDistance: 20, bidirectional: false, t5Scale: true } });
add({ dtype: 'float32', headDim: 16, nHeads: 4, nKvHeads: 2, mask: 'causal', blockSize: 16, ctx: [3, 300, 129], nq: ones(3), rel: { buckets: 8, maxDistance: 20, bidirectional: false, t5Scale: true } });
add({ dtype: 'float16', headDim: 64, nHeads: 4, nKvHeads: 2, mask: 'bidirectional', blockSize: 16, ctx: [2, 1], nq: ones(2), rel: t5Bi });

opSuite('attention', cases);

describe('attention decode split (engine/ops.h attention_decode_split)', () => {
  const blocks = (s: { batch: number; nHeads: number; nKvHeads: number }, x: { nChunks: number; headsPerBlock: number }) =>
    s.batch * s.nKvHeads * Math.ceil(s.nHeads / s.nKvHeads / x.headsPerBlock) * x.nChunks;

  test('the split cases above cover one chunk, many chunks, chunks ending inside a cache block, and head groups of 1, 2, 3, 4 and 8', () => {
    const splits = splitSpecs.map((s) => ({ ...splitOf(s), bs: s.blockSize }));
    expect(splits.some((x) => x.nChunks === 1)).toBe(true);
    expect(splits.some((x) => x.nChunks >= 100)).toBe(true);
    expect(splits.some((x) => x.nChunks > 1 && x.chunkLen % x.bs !== 0 && x.chunkLen < 32)).toBe(true);
    expect([...new Set(splits.map((x) => x.headsPerBlock))].sort()).toEqual([1, 2, 3, 4, 8]);
  });

  // The case: TinyLlama (32 query heads on 4 kv heads) ran 4 blocks at batch 1 on an H200 (132 SMs).
  test.each([
    ['TinyLlama', 32, 4], ['Llama-7B', 32, 32], ['a 64-head GQA-8 model', 64, 8],
  ])('%s at batch 1 fills an H200 (132 SMs) from 40 tokens of context on, and an A100 (108)', (_model, nHeads, nKvHeads) => {
    for (const smCount of [132, 108]) {
      for (const maxCtxLen of [40, 41, 100, 128, 129, 1000, 4000, 32768]) {
        const shape = { batch: 1, nHeads, nKvHeads, maxCtxLen, smCount };
        expect({ ...shape, blocks: blocks(shape, binding().attentionDecodeSplit(shape)) >= smCount }).toEqual({ ...shape, blocks: true });
      }
    }
  });
});

/** Runs one float32 case directly (no harness) on a device with some params replaced; returns `out`. */
function runCase(c: OpCase, device: string, params: Record<string, unknown> = {}): Float32Array {
  const b = binding();
  const tensors = Object.entries(c.inputs()).map(([name, data]) => [name, new b.AddonTensor(device, data instanceof Int32Array ? 3 : 0, data.length, data as Float32Array | Int32Array)] as const);
  const out = new b.AddonTensor(device, 0, c.outputs.out.numel, null, 'poison');
  try {
    b.runOpSync('attention', device, { ...c.params, dtype: 0, ...Object.fromEntries(tensors), out, ...params });
    return out.readSync() as Float32Array;
  } finally {
    for (const [, t] of tensors) t.dispose();
    out.dispose();
  }
}

describe('attention masks by their definition (independent of the cpu reference)', () => {
  // One sequence of 37 whole-prompt queries, 2 heads over 1 kv head: row t, head h of out is out[(t * 2 + h) * D ...].
  const D = 64, n = 37;
  const spec = { dtype: 'float32' as const, headDim: D, nHeads: 2, nKvHeads: 1, blockSize: 16, ctx: [n], nq: [n] };
  const base = attentionCase({ ...spec, mask: 'bidirectional' });
  const v = base.inputs().vCache;  // one kv head, blockSize * D per block, blocks as the block table says
  const bt = base.inputs().blockTable as Int32Array;
  const valueRow = (k: number) => v.subarray(bt[Math.floor(k / 16)] * 16 * D + (k % 16) * D, bt[Math.floor(k / 16)] * 16 * D + (k % 16 + 1) * D);
  const outRow = (out: Float32Array, t: number, h: number) => out.subarray((t * 2 + h) * D, (t * 2 + h + 1) * D);
  const maxDiff = (a: ArrayLike<number>, b: ArrayLike<number>) => Array.from(a, (x, i) => Math.abs(x - b[i])).reduce((m, d) => Math.max(m, d), 0);

  test.each(['cpu', 'emu'])('%s: the first causal query and the last anticausal one see only themselves; the masks differ', (device) => {
    const out = Object.fromEntries((['bidirectional', 'causal', 'anticausal'] as const).map((mask) => [mask, runCase(base, device, { mask })]));
    for (const h of [0, 1]) {
      expect(maxDiff(outRow(out.causal, 0, h), valueRow(0))).toBeLessThan(1e-6);
      expect(maxDiff(outRow(out.anticausal, n - 1, h), valueRow(n - 1))).toBeLessThan(1e-6);
      // The other end of each sees every key, as the bidirectional mask does.
      expect(maxDiff(outRow(out.causal, n - 1, h), outRow(out.bidirectional, n - 1, h))).toBeLessThan(1e-5);
      expect(maxDiff(outRow(out.anticausal, 0, h), outRow(out.bidirectional, 0, h))).toBeLessThan(1e-5);
      // In between the three differ.
      expect(maxDiff(outRow(out.causal, 18, h), outRow(out.bidirectional, 18, h))).toBeGreaterThan(1e-2);
      expect(maxDiff(outRow(out.anticausal, 18, h), outRow(out.bidirectional, 18, h))).toBeGreaterThan(1e-2);
      expect(maxDiff(outRow(out.anticausal, 18, h), outRow(out.causal, 18, h))).toBeGreaterThan(1e-2);
    }
  });

  const refused = (f: () => unknown, message: RegExp) => {
    let err: unknown;
    try {
      f();
    } catch (e) {
      err = e;
    }
    expect(err).toMatchObject({ code: 'ERR_INVALID_ARG', message: expect.stringMatching(message) });
  };

  test.each(['cpu', 'emu'])('%s: anticausal on the decode path over a longer cache, and unknown masks, are refused', (device) => {
    const decode = attentionCase({ ...spec, mask: 'anticausal', ctx: [5, 1], nq: [1, 1] });
    refused(() => runCase(decode, device), /expected 1 with mask anticausal on the decode path \(every n_q = 1\) for max_ctx_len but received 5/);
    expect(runCase(attentionCase({ ...spec, mask: 'anticausal', ctx: [1, 1], nq: [1, 1] }), device).every(Number.isFinite)).toBe(true);
    refused(() => runCase(base, device, { mask: 'lower' }), /Expected 'bidirectional', 'causal', 'anticausal' or 'cross' for mask but received lower of type string/);
    refused(() => runCase(base, device, { mask: undefined, causal: true }), /for mask but received undefined/);
  });
});

describe('attention on an emulated device with little shared memory per block', () => {
  // 64 KiB: below even the 16-query prompt tile at head_dim 256 (84,160 bytes), above the decode kernel's needs.
  const small = { maxSharedMemoryPerBlockOptin: 65536 };
  const spec = { dtype: 'float32' as const, headDim: 256, nHeads: 2, nKvHeads: 1, mask: 'causal' as const, blockSize: 16 };
  afterEach(() => binding().setEmuOptions({}));

  test('a prompt whose tiles fit nowhere is refused with ERR_UNSUPPORTED naming the sizes; decode still runs', () => {
    binding().setEmuOptions(small);
    let err: (Error & { code?: string }) | undefined;
    try {
      runCase(attentionCase({ ...spec, ctx: [20], nq: [20] }), 'emu');
    } catch (e) {
      err = e as Error & { code?: string };
    }
    expect(err).toMatchObject({ code: 'ERR_UNSUPPORTED', message: expect.stringMatching(/^attention: head_dim 256 needs \d+ bytes of shared memory per block, over this device's limit of 65536$/) });
    const decode = attentionCase({ ...spec, ctx: [20, 300], nq: [1, 1] });
    const got = runCase(decode, 'emu');
    binding().setEmuOptions({});
    expect(Array.from(got)).toEqual(Array.from(runCase(decode, 'emu')));
  });
});

describe("T5's relative position buckets by HF's definition (test/fixtures/hf-t5/reference.json)", () => {
  // HF's T5Attention._relative_position_bucket for key - query in [-200, 200], per (bidirectional, buckets, max
  // distance). With q = 0 every score is the bias alone, so out[i, h] = Σ_j softmax_j(table[h, bucket(j - i)]) v[j],
  // computed here in double from HF's buckets: one wrong bucket among the keys moves an output by ~1e-3.
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const ref = require('../fixtures/hf-t5/reference.json') as {
    buckets: Array<{ bidirectional: boolean; num_buckets: number; max_distance: number; relative_position_from: number; bucket: number[] }>;
  };
  const D = 8, H = 2, bs = 16;

  const expected = (c: OpCase, table: Float32Array, hfBucket: (rel: number) => number, ctx: number[], nq: number[]) => {
    const inputs = c.inputs();
    const v = inputs.vCache as Float32Array, bt = inputs.blockTable as Int32Array;
    const maxBlocks = c.params.maxBlocksPerSeq as number, blockStride = c.params.blockStride as number;
    const causal = c.params.mask === 'causal';
    const out: number[] = [];
    ctx.forEach((n, b) => {
      for (let i = n - nq[b]; i < n; i++) {
        for (let h = 0; h < H; h++) {
          const keys = causal ? i + 1 : n;
          const w = Array.from({ length: keys }, (_, j) => table[h * (c.params.relBuckets as number) + hfBucket(j - i)]);
          const mx = Math.max(...w);
          const e = w.map((x) => Math.exp(x - mx));
          const sum = e.reduce((a, x) => a + x, 0);
          for (let d = 0; d < D; d++) {
            let acc = 0;
            for (let j = 0; j < keys; j++) acc += e[j] * v[bt[b * maxBlocks + Math.floor(j / bs)] * blockStride + (j % bs) * D + d];
            out.push(acc / sum);
          }
        }
      }
    });
    return out;
  };

  for (const t of ref.buckets) {
    const hfBucket = (rel: number) => t.bucket[rel - t.relative_position_from];
    const rel = { buckets: t.num_buckets, maxDistance: t.max_distance, bidirectional: t.bidirectional, t5Scale: true };
    // prompt: one 201-token sequence, every key - query in [-200, 200]; decode: queries at 200, 150, 0 (keys <= it).
    const geometries = [
      { path: 'prompt', mask: 'bidirectional' as const, ctx: [201], nq: [201] },
      { path: 'decode', mask: 'causal' as const, ctx: [201, 151, 1], nq: [1, 1, 1] },
    ];
    for (const g of geometries) {
      test.each(['cpu-ref', 'cpu', 'emu'])(
        `%s: ${g.path}, ${t.bidirectional ? 'bidirectional' : 'unidirectional'} ${t.num_buckets} buckets, max distance ${t.max_distance}`,
        (device) => {
          const c = attentionCase({ dtype: 'float32', headDim: D, nHeads: H, nKvHeads: 1, mask: g.mask, blockSize: bs, ctx: g.ctx, nq: g.nq, rel });
          const table = Float32Array.from(normal(H * t.num_buckets, 99), (x) => 3 * x);
          const nTokens = g.nq.reduce((a, x) => a + x, 0);
          const zeroQ = { ...c, inputs: () => ({ ...c.inputs(), q: new Float32Array(nTokens * H * D), relBiasTable: table }) };
          const got = runCase(zeroQ, device);
          const want = expected(c, table, hfBucket, g.ctx, g.nq);
          const diff = Array.from(want, (x, i) => Math.abs(x - got[i])).reduce((m, d) => Math.max(m, d), 0);
          expect(got.length).toBe(want.length);
          expect(diff).toBeLessThan(1e-5);
        },
      );
    }
  }
});

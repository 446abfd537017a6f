// BERT encoder through AddonModel.embed (engine/arch_bert.cpp) on a tiny random model against an fp64 TypeScript
// forward pass written here: token + position + token-type embeddings and LayerNorm, post-LN blocks, bidirectional
// attention, GELU (erf) MLP; mean / CLS pooling and L2 normalisation. Weights under GGUF's bert names.
import { binding } from '../../lib/binding';
import { Weights, add, attend, buildModel, expectCode, geluErf, layerNorm, linear, randomWeights, relDiff, removeWeightFiles, request, row, writeWeights, TestEngine, type EngineConfig } from '../util/engine-helpers';

afterAll(removeWeightFiles);

const DEVICES = ['cpu', 'emu'] as const;

const BASE: EngineConfig = {
  arch: 'bert',
  dim: 32,
  hiddenDim: 64,
  nLayers: 2,
  nHeads: 4,
  nKvHeads: 4,
  headDim: 8,
  vocabSize: 50,
  maxSeqLen: 48,
  normEps: 1e-12,
  ropeTheta: 10000,
  ropeLayout: 'adjacent',
  nTokenTypes: 2,
  tiedEmbeddings: false,
  dtype: 'float32',
  device: 'cpu',
  maxBatch: 3,
  maxContext: 40,
  maxStepTokens: 40,
};

/** The pooled embedding of one sequence, fp64. */
function reference(cfg: EngineConfig, w: Weights, tokens: number[], types: number[] | undefined, pooling: 'mean' | 'cls', normalize: boolean): Float64Array {
  const W = (n: string) => w.get(n)!;
  const C = cfg.dim;
  let xs = tokens.map((tok, pos) => {
    const ty = types ? types[pos] : 0;
    const e = new Float64Array(C).map(
      (_, i) => W('token_embd').data[tok * C + i] + W('position_embd').data[pos * C + i] + W('token_types').data[ty * C + i],
    );
    return layerNorm(e, W('token_embd_norm'), W('token_embd_norm.bias'), cfg.normEps);
  });
  for (let l = 0; l < cfg.nLayers; l++) {
    const b = (n: string) => W(`blk.${l}.${n}`);
    const qs = xs.map((x) => linear(b('attn_q'), x, b('attn_q.bias')));
    const ks = xs.map((x) => linear(b('attn_k'), x, b('attn_k.bias')));
    const vs = xs.map((x) => linear(b('attn_v'), x, b('attn_v.bias')));
    xs = xs.map((x, t) => {
      const att = attend(qs[t], ks, vs, cfg.nHeads, cfg.headDim);
      const h = layerNorm(add(x, linear(b('attn_output'), att, b('attn_output.bias'))), b('attn_output_norm'), b('attn_output_norm.bias'), cfg.normEps);
      const u = linear(b('ffn_up'), h, b('ffn_up.bias')).map(geluErf);
      return layerNorm(add(h, linear(b('ffn_down'), u, b('ffn_down.bias'))), b('layer_output_norm'), b('layer_output_norm.bias'), cfg.normEps);
    });
  }
  const pooled = pooling === 'cls' ? xs[0] : new Float64Array(C).map((_, i) => xs.reduce((a, x) => a + x[i], 0) / xs.length);
  if (!normalize) return pooled;
  const n = Math.sqrt(pooled.reduce((a, v) => a + v * v, 0));
  return pooled.map((v) => v / n);
}

function embedRequest(seqs: number[][], pooling: 'mean' | 'cls', normalize: boolean, types?: number[][]) {
  return {
    tokens: Int32Array.from(seqs.flat()),
    counts: Int32Array.from(seqs.map((s) => s.length)),
    tokenTypes: types ? Int32Array.from(types.flat()) : undefined,
    pooling,
    normalize,
  };
}

const TOL_F32 = 1e-5;
const TOL_SPLIT = 2e-6;

const SEQ_A = [3, 17, 42, 8, 8, 1, 29, 33, 0, 49, 12, 5, 7, 21, 30, 2, 44, 19, 11, 26];
const SEQ_B = [7, 7, 13, 40, 2];
const SEQ_C = [9, 48, 1, 22, 35, 16, 4, 27, 38, 14, 45, 6, 31, 10, 20, 25, 36];
const SEQ_D = [47];
const TYPES_C = SEQ_C.map((_, i) => (i < 7 ? 0 : 1)); // a sentence pair: segment 0 then segment 1

describe('bert engine (tiny random model)', () => {
  const weights = randomWeights(BASE, 500);
  const sources = writeWeights(weights);
  const C = BASE.dim;
  const results: Record<string, Float32Array> = {};

  describe.each(DEVICES)('device=%s', (device) => {
    const cfg = { ...BASE, device };
    let model: TestEngine;
    beforeAll(async () => {
      model = await buildModel(cfg, sources);
    });
    afterAll(() => model?.dispose());

    test.each([
      ['mean', true],
      ['cls', false],
    ] as const)('pooling=%s normalize=%s: sequences of different lengths in one call equal the reference and each alone', async (pooling, normalize) => {
      const seqs = [SEQ_B, SEQ_C, SEQ_D];
      const types = [SEQ_B.map(() => 0), TYPES_C, [1]];
      const together = await model.embed(embedRequest(seqs, pooling, normalize, types));
      expect(together.length).toBe(seqs.length * C);
      for (let i = 0; i < seqs.length; i++) {
        const alone = await model.embed(embedRequest([seqs[i]], pooling, normalize, [types[i]]));
        expect(relDiff(row(together, i, C), alone)).toBeLessThan(TOL_SPLIT);
        expect(relDiff(row(together, i, C), reference(cfg, weights, seqs[i], types[i], pooling, normalize))).toBeLessThan(TOL_F32);
      }
      if (normalize) for (let i = 0; i < seqs.length; i++) expect(Math.hypot(...row(together, i, C))).toBeCloseTo(1, 5);
      results[`${device}:${pooling}`] = together;
    });

    test('more sequences than maxBatch (and tokens than maxStepTokens) run in chunks; token types default to 0', async () => {
      const seqs = [SEQ_A, SEQ_B, SEQ_C, SEQ_D, SEQ_A.slice(3, 15)];
      const out = await model.embed(embedRequest(seqs, 'mean', false));
      seqs.forEach((s, i) => expect(relDiff(row(out, i, C), reference(cfg, weights, s, undefined, 'mean', false))).toBeLessThan(TOL_F32));
      results[`${device}:chunks`] = out;
    });

    test('embed uses the free slots only, and gives them back', async () => {
      const live = [model.startSequence(0n), model.startSequence(1n)];
      const seqs = [SEQ_B, SEQ_D, SEQ_C];
      const out = await model.embed(embedRequest(seqs, 'cls', true));
      seqs.forEach((s, i) => expect(relDiff(row(out, i, C), reference(cfg, weights, s, undefined, 'cls', true))).toBeLessThan(TOL_F32));
      const third = model.startSequence(2n);
      await expectCode(model.embed(embedRequest([SEQ_B], 'mean', false)), 'ERR_INVALID_ARG', /no free sequence slot/);
      [...live, third].forEach((s) => model.endSequence(s));
    });
  });

  test('cpu and emu agree', () => {
    for (const name of ['mean', 'cls', 'chunks']) expect(relDiff(results[`emu:${name}`], results[`cpu:${name}`])).toBeLessThan(TOL_SPLIT);
  });
});

describe('bert engine errors (cpu)', () => {
  const sources = writeWeights(randomWeights(BASE, 600));
  let model: TestEngine;
  beforeAll(async () => {
    model = await buildModel(BASE, sources);
  });
  afterAll(() => model?.dispose());

  test('step() is not available on an encoder', async () => {
    await expectCode(model.step(request([model.startSequence(0n)], [[1]])), 'ERR_UNSUPPORTED', /embed\(\)/);
    model.endSequence(0);
  });

  test('request errors are coded', async () => {
    const ok = embedRequest([SEQ_B], 'mean', false);
    await expectCode(model.embed({ ...ok, tokenTypes: Int32Array.from(SEQ_B.map(() => 2)) }), 'ERR_INVALID_ARG', /token type in \[0, 2\) for tokenTypes\[0\]/);
    await expectCode(model.embed({ ...ok, tokenTypes: Int32Array.of(0) }), 'ERR_INVALID_ARG', /tokenTypes\.length/);
    await expectCode(model.embed({ ...ok, counts: Int32Array.of(4) }), 'ERR_INVALID_ARG', /sum of counts/);
    await expectCode(model.embed(embedRequest([[...SEQ_A, ...SEQ_A, 1]], 'mean', false)), 'ERR_INVALID_ARG', /counts\[0\]/);
    await expectCode(model.embed(embedRequest([[50]], 'mean', false)), 'ERR_INVALID_ARG', /token id in \[0, 50\)/);
    await expectCode(model.embed({ ...ok, pooling: 'max' as 'mean' }), 'ERR_INVALID_ARG', /pooling/);
    await expectCode(model.embed({ ...ok, counts: new Int32Array(0), tokens: new Int32Array(0) }), 'ERR_INVALID_ARG', /at least one sequence/);
    // The failed calls left no slot behind.
    const out = await model.embed(ok);
    expect(out.length).toBe(BASE.dim);
  });

  test('config errors', () => {
    expect(() => new TestEngine({ ...BASE, nTokenTypes: undefined })).toThrow(/nTokenTypes/);
    expect(() => new TestEngine({ ...BASE, nTokenTypes: 0 })).toThrow(/nTokenTypes/);
  });
});

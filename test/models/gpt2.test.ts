// GPT-2 through TestEngine (engine/arch_gpt2.cpp) on a tiny random model against an fp64 TypeScript forward pass
// written here: learned positions, pre-LN blocks with LayerNorm biases, fused QKV with bias, GELU (tanh) MLP, tied
// or untied head. Weights go through a real file (loadTensor) under GGUF's gpt2 names.
import { binding } from '../../lib/binding';
import { Weights, add, argmax, attend, buildModel, expectCode, geluTanh, layerNorm, linear, randomWeights, relDiff, removeWeightFiles, request, row, writeWeights, TestEngine, type EngineConfig } from '../util/engine-helpers';

afterAll(removeWeightFiles);

const DEVICES = ['cpu', 'emu'] as const;

const BASE: EngineConfig = {
  arch: 'gpt2',
  dim: 32,
  hiddenDim: 128,
  nLayers: 2,
  nHeads: 4,
  nKvHeads: 4,
  headDim: 8,
  vocabSize: 50,
  maxSeqLen: 48,
  normEps: 1e-5,
  ropeTheta: 10000,
  ropeLayout: 'adjacent',
  tiedEmbeddings: true,
  dtype: 'float32',
  device: 'cpu',
  maxBatch: 3,
  maxContext: 40,
  maxStepTokens: 24,
};

/** Logits (vocab) after each position of tokens, one sequence from position 0, fp64. */
function reference(cfg: EngineConfig, w: Weights, tokens: number[]): Float64Array[] {
  const W = (n: string) => w.get(n)!;
  const C = cfg.dim;
  const keys: Float64Array[][] = Array.from({ length: cfg.nLayers }, () => []);
  const values: Float64Array[][] = Array.from({ length: cfg.nLayers }, () => []);
  return tokens.map((tok, pos) => {
    let x: Float64Array = new Float64Array(C).map((_, i) => W('token_embd').data[tok * C + i] + W('position_embd').data[pos * C + i]);
    for (let l = 0; l < cfg.nLayers; l++) {
      const b = (n: string) => W(`blk.${l}.${n}`);
      const h = layerNorm(x, b('attn_norm'), b('attn_norm.bias'), cfg.normEps);
      const qkv = linear(b('attn_qkv'), h, b('attn_qkv.bias'));
      keys[l].push(qkv.slice(C, 2 * C));
      values[l].push(qkv.slice(2 * C, 3 * C));
      const att = attend(qkv.slice(0, C), keys[l], values[l], cfg.nHeads, cfg.headDim);
      x = add(x, linear(b('attn_output'), att, b('attn_output.bias')));
      const h2 = layerNorm(x, b('ffn_norm'), b('ffn_norm.bias'), cfg.normEps);
      const u = linear(b('ffn_up'), h2, b('ffn_up.bias')).map(geluTanh);
      x = add(x, linear(b('ffn_down'), u, b('ffn_down.bias')));
    }
    const xf = layerNorm(x, W('output_norm'), W('output_norm.bias'), cfg.normEps);
    return linear(W(cfg.tiedEmbeddings ? 'token_embd' : 'output'), xf);
  });
}

const TOL_F32 = 1e-5; // f32 engine vs the fp64 reference
const TOL_SPLIT = 2e-6; // the same math split over steps / batches, or on another backend

const SEQ_A = [3, 17, 42, 8, 8, 1, 29, 33, 0, 49, 12, 5, 7, 21, 30, 2, 44, 19, 11, 26];
const SEQ_B = [7, 7, 13, 40, 2];
const SEQ_C = [9, 48, 1, 22, 35, 16, 4, 27, 38, 14, 45, 6, 31, 10, 20, 25, 36];
const SEQ_D = [47];

describe('gpt2 engine (tiny random model)', () => {
  const weights = randomWeights(BASE, 100);
  const sources = writeWeights(weights);
  const refA = reference(BASE, weights, SEQ_A);
  const results: Record<string, Float32Array[]> = {};
  const V = BASE.vocabSize;

  describe.each(DEVICES)('device=%s', (device) => {
    const cfg = { ...BASE, device };
    let model: TestEngine;
    beforeAll(async () => {
      model = await buildModel(cfg, sources);
    });
    afterAll(() => model?.dispose());
    const keep = (name: string, a: Float32Array) => (results[`${device}:${name}`] = [...(results[`${device}:${name}`] ?? []), a]);

    test('prefill logits equal the fp64 reference', async () => {
      const slot = model.startSequence(1n);
      const r = await model.step(request([slot], [SEQ_A], 'all'));
      model.endSequence(slot);
      for (let i = 0; i < SEQ_A.length; i++) expect(relDiff(row(r.logits!, i, V), refA[i])).toBeLessThan(TOL_F32);
      expect(r.tokens[0]).toBe(argmax(row(r.logits!, SEQ_A.length - 1, V)));
      keep('prefill', r.logits!);
    });

    test('incremental decoding equals one prefill over the whole sequence', async () => {
      const slot = model.startSequence(2n);
      const split = 5;
      const rows = [(await model.step(request([slot], [SEQ_A.slice(0, split)], 'last'))).logits!];
      for (let i = split; i < SEQ_A.length; i++) rows.push((await model.step(request([slot], [[SEQ_A[i]]], 'last'))).logits!);
      model.endSequence(slot);
      const prefill = results[`${device}:prefill`][0];
      rows.forEach((logits, j) => {
        const pos = split - 1 + j;
        expect(relDiff(logits, row(prefill, pos, V))).toBeLessThan(TOL_SPLIT);
        expect(relDiff(logits, refA[pos])).toBeLessThan(TOL_F32);
      });
      keep('incremental', Float32Array.from(rows.flatMap((r) => [...r])));
    });

    test('sequences of different lengths in one step equal each alone', async () => {
      const seqs = [SEQ_B, SEQ_C, SEQ_D];
      const alone: Float32Array[] = [];
      for (const s of seqs) {
        const slot = model.startSequence(3n);
        alone.push((await model.step(request([slot], [s], 'all'))).logits!);
        model.endSequence(slot);
      }
      const slots = seqs.map((_, i) => model.startSequence(BigInt(10 + i)));
      const together = await model.step(request(slots, seqs, 'all'));
      let r0 = 0;
      seqs.forEach((s, i) => {
        const ref = reference(cfg, weights, s);
        for (let j = 0; j < s.length; j++) {
          const got = row(together.logits!, r0 + j, V);
          expect(relDiff(got, row(alone[i], j, V))).toBeLessThan(TOL_SPLIT);
          expect(relDiff(got, ref[j])).toBeLessThan(TOL_F32);
        }
        r0 += s.length;
      });
      // A decode step for all three, then a mixed one (2, 1, 3 tokens): positions keep counting per sequence.
      const next = [[5], [6], [7]];
      const dec = await model.step(request(slots, next, 'last'));
      const mixed = [[1, 2], [3], [4, 5, 6]];
      const mix = await model.step(request(slots, mixed, 'all'));
      r0 = 0;
      seqs.forEach((s, i) => {
        const ref = reference(cfg, weights, [...s, ...next[i], ...mixed[i]]);
        expect(relDiff(row(dec.logits!, i, V), ref[s.length])).toBeLessThan(TOL_F32);
        for (let j = 0; j < mixed[i].length; j++) expect(relDiff(row(mix.logits!, r0 + j, V), ref[s.length + 1 + j])).toBeLessThan(TOL_F32);
        r0 += mixed[i].length;
      });
      slots.forEach((s) => model.endSequence(s));
      keep('batched', together.logits!);
      keep('batched', dec.logits!);
      keep('batched', mix.logits!);
    });

    test('a sequence reaches maxContext (the last learned positions)', async () => {
      const slot = model.startSequence(4n);
      await model.step(request([slot], [SEQ_A], 'none'));
      const r = await model.step(request([slot], [SEQ_A], 'last'));
      expect(relDiff(r.logits!, reference(cfg, weights, [...SEQ_A, ...SEQ_A])[39])).toBeLessThan(TOL_F32);
      await expectCode(model.step(request([slot], [[1]], 'none')), 'ERR_INVALID_ARG', /maxContext/);
      model.endSequence(slot);
    });
  });

  test('cpu and emu agree', () => {
    for (const name of ['prefill', 'incremental', 'batched']) {
      const cpu = results[`cpu:${name}`];
      const emu = results[`emu:${name}`];
      expect(emu.length).toBe(cpu.length);
      cpu.forEach((c, i) => expect(relDiff(emu[i], c)).toBeLessThan(TOL_SPLIT));
    }
  });
});

describe('gpt2 engine variants and errors (cpu)', () => {
  test('untied head', async () => {
    const cfg: EngineConfig = { ...BASE, tiedEmbeddings: false, nLayers: 1 };
    const w = randomWeights(cfg, 200);
    const model = await buildModel(cfg, writeWeights(w));
    const r = await model.step(request([model.startSequence(0n)], [SEQ_C], 'all'));
    const ref = reference(cfg, w, SEQ_C);
    for (let i = 0; i < SEQ_C.length; i++) expect(relDiff(row(r.logits!, i, cfg.vocabSize), ref[i])).toBeLessThan(TOL_F32);
    model.dispose();
  });

  test('missing tensors, config errors, embed() on a decoder', async () => {
    const sources = writeWeights(randomWeights(BASE, 300));
    const model = new TestEngine(BASE);
    await Promise.all([...sources].filter(([n]) => n !== 'position_embd' && n !== 'blk.1.attn_qkv.bias').map(([n, s]) => model.loadTensor(n, s)));
    await expectCode(model.finalize(), 'ERR_MODEL_FORMAT', /missing tensors: position_embd, blk\.1\.attn_qkv\.bias$/);
    model.dispose();
    expect(() => new TestEngine({ ...BASE, nKvHeads: 2 })).toThrow(/nKvHeads/);
    const long = await buildModel({ ...BASE, maxContext: 49 }, sources);
    await expectCode(() => long.ctx, 'ERR_INVALID_ARG', /Expected integer between 1 and 48 for maxContext but received 49/);
    long.dispose();
    const full = await buildModel(BASE, sources);
    await expectCode(full.embed({ tokens: Int32Array.of(1), counts: Int32Array.of(1), pooling: 'mean', normalize: false }), 'ERR_UNSUPPORTED', /bert/);
    full.dispose();
  });
});

// End-to-end check of the C++ model (engine/model.cpp through TestEngine) on a tiny random LLaMA model against
// an independent fp64 TypeScript forward pass written here with llama2.c's math: RMSNorm, RoPE on adjacent pairs
// (or HF's half split), GQA attention, SwiGLU FFN, tied LM head. Weights go through a real file (loadTensor).
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { AddonFileSource, binding } from '../../lib/binding';
import { f16BitsToF32, toHalfBits } from '../../lib/half';
import { argmax, buildModel, expectCode, linear, randomWeights, relDiff, request, row, type Weights, TestEngine, type EngineConfig } from '../util/engine-helpers';

type Device = 'cpu' | 'emu';
const DEVICES: Device[] = ['cpu', 'emu'];

const BASE: EngineConfig = {
  arch: 'llama',
  dim: 32,
  hiddenDim: 40,
  nLayers: 2,
  nHeads: 4,
  nKvHeads: 2,
  headDim: 8,
  vocabSize: 50,
  maxSeqLen: 64,
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

// ---- weights -----------------------------------------------------------------------------------------------------

/** Random weights of the config's tensors (lib/arch/llama.ts); q/k/v biases (qkvBias) ~ N(0, 0.3²). */
function makeWeights(cfg: EngineConfig, seed: number): Weights {
  return randomWeights(cfg, seed, { biasStd: 0.3 });
}

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'eet-engine-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));
let fileCount = 0;

/** Writes every tensor to one file after a few leading bytes (so offsets are non-zero and unaligned). */
function writeWeights(w: Weights, dtype: 'float32' | 'float16' = 'float32'): Map<string, AddonFileSource> {
  const file = path.join(tmp, `weights-${fileCount++}.bin`);
  const chunks: Buffer[] = [Buffer.from('EETTEST')];
  const sources = new Map<string, AddonFileSource>();
  let offset = chunks[0].length;
  for (const [name, t] of w) {
    const bytes = dtype === 'float32' ? Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength) : Buffer.from(toHalfBits(t.data, 'float16').buffer);
    sources.set(name, { path: file, offset, bytes: bytes.length, dtype, shape: t.shape });
    chunks.push(bytes);
    offset += bytes.length;
  }
  fs.writeFileSync(file, Buffer.concat(chunks));
  return sources;
}

// ---- the independent reference: one sequence from position 0, fp64 ----------------------------------------------

function rmsnorm(x: Float64Array, w: Float32Array, eps: number): Float64Array {
  let ss = 0;
  for (const v of x) ss += v * v;
  const s = 1 / Math.sqrt(ss / x.length + eps);
  return x.map((v, i) => v * s * w[i]);
}

/** RoPE frequencies theta^(-2i/hd), then the scaling: linear divides by factor; llama3 (Llama 3.1) keeps the
 * frequencies whose wavelength is below orig/highFreqFactor, divides those above orig/lowFreqFactor by factor and
 * blends linearly in 1/wavelength between. */
function invFreq(cfg: EngineConfig): number[] {
  const out: number[] = [];
  for (let i = 0; i < cfg.headDim / 2; i++) {
    const f = Math.pow(cfg.ropeTheta, (-2 * i) / cfg.headDim);
    const sc = cfg.ropeScaling;
    if (!sc) {
      out.push(f);
    } else if (sc.type === 'linear') {
      out.push(f / sc.factor);
    } else {
      const wavelength = (2 * Math.PI) / f;
      const orig = sc.originalMaxPositionEmbeddings;
      if (wavelength < orig / sc.highFreqFactor) out.push(f);
      else if (wavelength > orig / sc.lowFreqFactor) out.push(f / sc.factor);
      else {
        const smooth = (orig / wavelength - sc.lowFreqFactor) / (sc.highFreqFactor - sc.lowFreqFactor);
        out.push((1 - smooth) * (f / sc.factor) + smooth * f);
      }
    }
  }
  return out;
}

function rope(v: Float64Array, heads: number, pos: number, cfg: EngineConfig): void {
  const hd = cfg.headDim;
  const freq = invFreq(cfg);
  for (let h = 0; h < heads; h++) {
    for (let i = 0; i < hd / 2; i++) {
      const angle = pos * freq[i];
      const [a, b] = cfg.ropeLayout === 'adjacent' ? [h * hd + 2 * i, h * hd + 2 * i + 1] : [h * hd + i, h * hd + i + hd / 2];
      const [x0, x1] = [v[a], v[b]];
      v[a] = x0 * Math.cos(angle) - x1 * Math.sin(angle);
      v[b] = x0 * Math.sin(angle) + x1 * Math.cos(angle);
    }
  }
}

/** Logits (vocab) after each position of tokens. */
function reference(cfg: EngineConfig, w: Weights, tokens: number[]): Float64Array[] {
  const W = (n: string) => w.get(n)!;
  const { dim, headDim: hd, nHeads, nKvHeads } = cfg;
  const keys: Float64Array[][] = Array.from({ length: cfg.nLayers }, () => []);
  const values: Float64Array[][] = Array.from({ length: cfg.nLayers }, () => []);
  const out: Float64Array[] = [];
  tokens.forEach((tok, pos) => {
    let x = Float64Array.from(W('token_embd').data.subarray(tok * dim, (tok + 1) * dim));
    for (let l = 0; l < cfg.nLayers; l++) {
      const xb = rmsnorm(x, W(`blk.${l}.attn_norm`).data, cfg.normEps);
      const q = linear(W(`blk.${l}.attn_q`), xb, w.get(`blk.${l}.attn_q.bias`));
      const k = linear(W(`blk.${l}.attn_k`), xb, w.get(`blk.${l}.attn_k.bias`));
      const v = linear(W(`blk.${l}.attn_v`), xb, w.get(`blk.${l}.attn_v.bias`));
      rope(q, nHeads, pos, cfg);
      rope(k, nKvHeads, pos, cfg);
      keys[l].push(k);
      values[l].push(v);
      const att = new Float64Array(nHeads * hd);
      for (let h = 0; h < nHeads; h++) {
        const kvh = Math.floor(h / (nHeads / nKvHeads));
        const scores = keys[l].map((kt) => {
          let s = 0;
          for (let d = 0; d < hd; d++) s += q[h * hd + d] * kt[kvh * hd + d];
          return s / Math.sqrt(hd);
        });
        const m = Math.max(...scores);
        const e = scores.map((s) => Math.exp(s - m));
        const sum = e.reduce((a, b) => a + b, 0);
        for (let t = 0; t < e.length; t++) {
          for (let d = 0; d < hd; d++) att[h * hd + d] += (e[t] / sum) * values[l][t][kvh * hd + d];
        }
      }
      const o = linear(W(`blk.${l}.attn_output`), att);
      x = x.map((v0, i) => v0 + o[i]);
      const xb2 = rmsnorm(x, W(`blk.${l}.ffn_norm`).data, cfg.normEps);
      const g = linear(W(`blk.${l}.ffn_gate`), xb2);
      const u = linear(W(`blk.${l}.ffn_up`), xb2);
      const hmid = g.map((gv, i) => (gv / (1 + Math.exp(-gv))) * u[i]);
      const f = linear(W(`blk.${l}.ffn_down`), hmid);
      x = x.map((v0, i) => v0 + f[i]);
    }
    const xf = rmsnorm(x, W('output_norm').data, cfg.normEps);
    out.push(linear(W(cfg.tiedEmbeddings ? 'token_embd' : 'output'), xf));
  });
  return out;
}

// ---- helpers -----------------------------------------------------------------------------------------------------

function logSoftmaxAt(a: ArrayLike<number>, i: number): number {
  let m = -Infinity;
  for (let j = 0; j < a.length; j++) m = Math.max(m, a[j]);
  let s = 0;
  for (let j = 0; j < a.length; j++) s += Math.exp(a[j] - m);
  return a[i] - m - Math.log(s);
}

// f32 logits vs the fp64 reference: a few f32 roundings per op, two layers (the cpu reference ops land near 1e-7).
const TOL_F32 = 1e-5;
// The same math split differently over steps and batches (kernels may pick other tilings), or on another backend.
const TOL_SPLIT = 2e-6;

const SEQ_A = [3, 17, 42, 8, 8, 1, 29, 33, 0, 49, 12, 5, 7, 21, 30, 2, 44, 19, 11, 26];
const SEQ_B = [7, 7, 13, 40, 2];
const SEQ_C = [9, 48, 1, 22, 35, 16, 4, 27, 38, 14, 45, 6, 31, 10, 20, 25, 36];
const SEQ_D = [47];

// ---- tests -------------------------------------------------------------------------------------------------------

describe('llama engine (tiny random model)', () => {
  const weights = makeWeights(BASE, 1000);
  const sources = writeWeights(weights);
  const refA = reference(BASE, weights, SEQ_A);
  const results: Record<string, Float32Array[]> = {};

  describe.each(DEVICES)('device=%s', (device) => {
    const cfg = { ...BASE, device };
    let model: TestEngine;
    beforeAll(async () => {
      model = await buildModel(cfg, sources);
    });
    afterAll(() => model?.dispose());
    const keep = (name: string, a: Float32Array) => (results[`${device}:${name}`] = [...(results[`${device}:${name}`] ?? []), a]);

    test('memory() reports the arena, the cache and the workspace', () => {
      const m = model.memory();
      let params = 0;
      for (const t of weights.values()) params += t.data.length;
      expect(m.weights).toBeGreaterThanOrEqual(params * 4);
      expect(m.weights).toBeLessThan(params * 4 + 64 * 1024);
      // K and V, 2 layers, 3 slots x 3 blocks of 16 tokens x 2 kv heads x 8 dims, f32
      expect(m.kvCache).toBeGreaterThanOrEqual(2 * 2 * 9 * 16 * 16 * 4);
      expect(m.workspace).toBeGreaterThan(0);
    });

    test('(a) prefill logits equal the fp64 reference', async () => {
      const slot = model.startSequence(1n);
      const r = await model.step(request([slot], [SEQ_A], 'all'));
      model.endSequence(slot);
      expect(r.logits!.length).toBe(SEQ_A.length * cfg.vocabSize);
      for (let i = 0; i < SEQ_A.length; i++) {
        expect(relDiff(row(r.logits!, i, cfg.vocabSize), refA[i])).toBeLessThan(TOL_F32);
      }
      // Greedy sampling picks the argmax of the last row; its logprob is the log-softmax there.
      const last = row(r.logits!, SEQ_A.length - 1, cfg.vocabSize);
      expect(r.tokens[0]).toBe(argmax(last));
      expect(Math.abs(r.logprobs[0] - logSoftmaxAt(last, r.tokens[0]))).toBeLessThan(1e-4);
      keep('prefill', r.logits!);
    });

    test('(b) incremental decoding equals one prefill over the whole sequence', async () => {
      const slot = model.startSequence(2n);
      const split = 5;
      const first = await model.step(request([slot], [SEQ_A.slice(0, split)], 'last'));
      expect(first.logits!.length).toBe(cfg.vocabSize);
      const rows = [first.logits!];
      for (let i = split; i < SEQ_A.length; i++) rows.push((await model.step(request([slot], [[SEQ_A[i]]], 'last'))).logits!);
      model.endSequence(slot);
      const prefill = results[`${device}:prefill`][0];
      rows.forEach((logits, j) => {
        const pos = split - 1 + j;
        expect(relDiff(logits, row(prefill, pos, cfg.vocabSize))).toBeLessThan(TOL_SPLIT);
        expect(relDiff(logits, refA[pos])).toBeLessThan(TOL_F32);
      });
      keep('incremental', Float32Array.from(rows.flatMap((r) => [...r])));
    });

    test('(c) sequences of different lengths in one step equal each alone', async () => {
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
          const got = row(together.logits!, r0 + j, cfg.vocabSize);
          expect(relDiff(got, row(alone[i], j, cfg.vocabSize))).toBeLessThan(TOL_SPLIT);
          expect(relDiff(got, ref[j])).toBeLessThan(TOL_F32);
        }
        r0 += s.length;
        expect(together.tokens[i]).toBe(argmax(row(alone[i], s.length - 1, cfg.vocabSize)));
      });
      // Then decode steps for all three at once (one token each), and a mixed step: 2 tokens, 1, 3.
      const next = [[5], [6], [7]];
      const dec = await model.step(request(slots, next, 'last'));
      const mixed = [[1, 2], [3], [4, 5, 6]];
      const mix = await model.step(request(slots, mixed, 'all'));
      r0 = 0;
      seqs.forEach((s, i) => {
        const full = [...s, ...next[i], ...mixed[i]];
        const ref = reference(cfg, weights, full);
        expect(relDiff(row(dec.logits!, i, cfg.vocabSize), ref[s.length])).toBeLessThan(TOL_F32);
        for (let j = 0; j < mixed[i].length; j++) {
          expect(relDiff(row(mix.logits!, r0 + j, cfg.vocabSize), ref[s.length + 1 + j])).toBeLessThan(TOL_F32);
        }
        r0 += mixed[i].length;
      });
      slots.forEach((s) => model.endSequence(s));
      keep('batched', together.logits!);
      keep('batched', dec.logits!);
      keep('batched', mix.logits!);
    });

    test('sampling with temperature, top-k, top-p and repetition penalty is seeded per slot', async () => {
      const run = async () => {
        const slots = [model.startSequence(77n), model.startSequence(78n)];
        const req = request(slots, [SEQ_B, SEQ_D], 'none');
        req.temperature.set([0.9, 1.2]);
        req.topK.set([10, 0]);
        req.topP.set([0.9, 1]);
        req.repetitionPenalty.set([1.3, 1]);
        const out: number[] = [];
        let r = await model.step(req);
        expect(r.logits).toBeUndefined();
        for (let i = 0; i < 6; i++) {
          out.push(...r.tokens);
          r = await model.step({ ...req, tokens: Int32Array.from(r.tokens), counts: Int32Array.of(1, 1) });
        }
        slots.forEach((s) => model.endSequence(s));
        return out;
      };
      const a = await run();
      const b = await run();
      expect(b).toEqual(a);
      for (const t of a) expect(t >= 0 && t < cfg.vocabSize).toBe(true);
      keep('sampled', Float32Array.from(a));
    });

    test("the repetition penalty sees each slot's whole context", async () => {
      const [s0, s1, s2] = [model.startSequence(5n), model.startSequence(6n), model.startSequence(7n)];
      // Rows of the step are slots 2 and 0 (slot 1 sits out), contexts grow over several steps.
      const slots = [s2, s0];
      const ctx = [SEQ_B.slice(), SEQ_C.slice()];
      let req = request(slots, ctx, 'last');
      req.repetitionPenalty.fill(100);
      for (let step = 0; step < 3; step++) {
        const r = await model.step(req);
        for (let i = 0; i < 2; i++) {
          const l = Float64Array.from(row(r.logits!, i, cfg.vocabSize));
          for (const id of new Set(ctx[i])) l[id] = l[id] > 0 ? l[id] / 100 : l[id] * 100;
          expect(r.tokens[i]).toBe(argmax(l));
          ctx[i].push(r.tokens[i]);
        }
        req = { ...req, tokens: Int32Array.from(r.tokens), counts: Int32Array.of(1, 1) };
      }
      [s0, s1, s2].forEach((s) => model.endSequence(s));
    });

    test('presence and frequency penalties count each slot\'s whole context (a low-level sequence has no prompt)', async () => {
      const [s0, s1] = [model.startSequence(8n), model.startSequence(9n)];
      const slots = [s1, s0];
      const ctx = [SEQ_B.slice(), SEQ_C.slice()];
      const pen = [{ presence: 0.7, frequency: 1.5 }, { presence: -0.5, frequency: 2 }];
      let req = {
        ...request(slots, ctx, 'last'),
        presencePenalty: Float32Array.from(pen.map((p) => p.presence)),
        frequencyPenalty: Float32Array.from(pen.map((p) => p.frequency)),
      };
      let moved = 0;
      for (let step = 0; step < 3; step++) {
        const r = await model.step(req);
        for (let i = 0; i < 2; i++) {
          const raw = row(r.logits!, i, cfg.vocabSize);
          const l = Float64Array.from(raw);
          const count = new Map<number, number>();
          for (const id of ctx[i]) count.set(id, (count.get(id) ?? 0) + 1);
          for (const [id, c] of count) l[id] -= pen[i].frequency * c + pen[i].presence;
          expect(r.tokens[i]).toBe(argmax(l));
          if (r.tokens[i] !== argmax(Float64Array.from(raw))) moved++;
          ctx[i].push(r.tokens[i]);
        }
        req = { ...req, tokens: Int32Array.from(r.tokens), counts: Int32Array.of(1, 1) };
      }
      expect(moved).toBeGreaterThan(0); // the penalties did decide some tokens
      [s0, s1].forEach((s) => model.endSequence(s));
    });

    test('a sequence can fill maxContext exactly, and not one token more', async () => {
      const slot = model.startSequence(4n);
      await model.step(request([slot], [SEQ_A], 'none'));
      await expectCode(model.step(request([slot], [[...SEQ_A, 1]], 'none')), 'ERR_INVALID_ARG', /would hold 41 tokens, more than maxContext \(40\)/);
      const r = await model.step(request([slot], [SEQ_A], 'last')); // 20 + 20 = 40: still fits
      const ref = reference(cfg, weights, [...SEQ_A, ...SEQ_A]);
      expect(relDiff(r.logits!, ref[39])).toBeLessThan(TOL_F32);
      await expectCode(model.step(request([slot], [[1]], 'none')), 'ERR_INVALID_ARG', /maxContext/);
      model.endSequence(slot);
    });
  });

  test('(d) cpu and emu agree', () => {
    for (const name of ['prefill', 'incremental', 'batched']) {
      const cpu = results[`cpu:${name}`];
      const emu = results[`emu:${name}`];
      expect(emu.length).toBe(cpu.length);
      cpu.forEach((c, i) => expect(relDiff(emu[i], c)).toBeLessThan(TOL_SPLIT));
    }
    expect(results['emu:sampled']).toEqual(results['cpu:sampled']);
  });
});

describe('llama engine variants (cpu)', () => {
  test('half-split RoPE, untied head, MHA', async () => {
    const cfg: EngineConfig = { ...BASE, ropeLayout: 'half', tiedEmbeddings: false, nKvHeads: 4, nLayers: 1 };
    const w = makeWeights(cfg, 2000);
    const model = await buildModel(cfg, writeWeights(w));
    const slot = model.startSequence(0n);
    const r = await model.step(request([slot], [SEQ_C], 'all'));
    const ref = reference(cfg, w, SEQ_C);
    for (let i = 0; i < SEQ_C.length; i++) expect(relDiff(row(r.logits!, i, cfg.vocabSize), ref[i])).toBeLessThan(TOL_F32);
    model.dispose();
  });

  test('float16 weights in the file are converted on load', async () => {
    const w = makeWeights(BASE, 3000);
    for (const t of w.values()) t.data = Float32Array.from(toHalfBits(t.data, 'float16'), f16BitsToF32);
    const a = await buildModel(BASE, writeWeights(w, 'float32'));
    const b = await buildModel(BASE, writeWeights(w, 'float16'));
    const ra = await a.step(request([a.startSequence(0n)], [SEQ_B], 'all'));
    const rb = await b.step(request([b.startSequence(0n)], [SEQ_B], 'all'));
    expect(rb.logits).toEqual(ra.logits);
    a.dispose();
    b.dispose();
  });

  test('a float16 model stays close to the fp64 reference', async () => {
    const cfg: EngineConfig = { ...BASE, dtype: 'float16' };
    const w = makeWeights(cfg, 4000);
    const model = await buildModel(cfg, writeWeights(w));
    const r = await model.step(request([model.startSequence(0n)], [SEQ_A], 'all'));
    // The reference sees the weights as the model holds them (rounded to float16).
    for (const t of w.values()) t.data = Float32Array.from(toHalfBits(t.data, 'float16'), f16BitsToF32);
    const ref = reference(cfg, w, SEQ_A);
    for (let i = 0; i < SEQ_A.length; i++) expect(relDiff(row(r.logits!, i, cfg.vocabSize), ref[i])).toBeLessThan(3e-3);
    const f32 = new TestEngine({ ...BASE });
    expect(model.memory().weights).toBeLessThan(f32.weights.memory().weights);
    f32.dispose();
    model.dispose();
  });
});

describe('llama family details: qwen2 q/k/v biases, rope scaling', () => {
  // head_dim 8, theta 10000: wavelengths 6.3, 63, 628, 6283; with orig 100, low 1, high 4 the four frequencies hit
  // all three llama3 branches (kept, blended, divided).
  const llama3 = { type: 'llama3', factor: 8, lowFreqFactor: 1, highFreqFactor: 4, originalMaxPositionEmbeddings: 100 } as const;
  const cfg: EngineConfig = { ...BASE, ropeLayout: 'half', qkvBias: true, ropeScaling: llama3 };
  const w = makeWeights(cfg, 6000);
  const sources = writeWeights(w);
  const ref = reference(cfg, w, SEQ_A);
  const got: Record<string, Float32Array> = {};

  test('the scaling and the biases change the reference (the checks below are not vacuous)', () => {
    const plain = reference({ ...cfg, ropeScaling: undefined }, w, SEQ_A);
    const noBias = new Map([...w].filter(([n]) => !n.endsWith('.bias')));
    const unbiased = reference({ ...cfg, qkvBias: false }, noBias, SEQ_A);
    expect(relDiff(plain[SEQ_A.length - 1], ref[SEQ_A.length - 1])).toBeGreaterThan(100 * TOL_F32);
    expect(relDiff(unbiased[SEQ_A.length - 1], ref[SEQ_A.length - 1])).toBeGreaterThan(100 * TOL_F32);
  });

  test.each(DEVICES)('device=%s: prefill and incremental logits equal the fp64 reference', async (device) => {
    const model = await buildModel({ ...cfg, device }, sources);
    const slot = model.startSequence(0n);
    const r = await model.step(request([slot], [SEQ_A.slice(0, 12)], 'all'));
    const rows = [...Array(12).keys()].map((i) => row(r.logits!, i, cfg.vocabSize));
    for (let i = 12; i < SEQ_A.length; i++) rows.push((await model.step(request([slot], [[SEQ_A[i]]], 'last'))).logits!);
    rows.forEach((l, i) => expect(relDiff(l, ref[i])).toBeLessThan(TOL_F32));
    got[device] = Float32Array.from(rows.flatMap((l) => [...l]));
    model.dispose();
  });

  test('cpu and emu agree', () => expect(relDiff(got.emu, got.cpu)).toBeLessThan(TOL_SPLIT));

  test('linear scaling (cpu)', async () => {
    const w2 = makeWeights(BASE, 6100);
    const lin: EngineConfig = { ...BASE, ropeScaling: { type: 'linear', factor: 4 } };
    const model = await buildModel(lin, writeWeights(w2));
    const r = await model.step(request([model.startSequence(0n)], [SEQ_C], 'all'));
    const lref = reference(lin, w2, SEQ_C);
    for (let i = 0; i < SEQ_C.length; i++) expect(relDiff(row(r.logits!, i, lin.vocabSize), lref[i])).toBeLessThan(TOL_F32);
    model.dispose();
  });

  test('scaling and bias config errors', () => {
    const make = (over: Partial<EngineConfig>) => () => new TestEngine({ ...cfg, ...over });
    expect(make({ ropeScaling: { ...llama3, highFreqFactor: 1 } })).toThrow(/highFreqFactor > ropeScaling.lowFreqFactor/);
    expect(make({ ropeScaling: { ...llama3, factor: 0 } })).toThrow(/ropeScaling.factor/);
    expect(make({ ropeScaling: { type: 'yarn' } as unknown as EngineConfig['ropeScaling'] })).toThrow(/'linear' or 'llama3'/);
    expect(make({ qkvBias: 'yes' as unknown as boolean })).toThrow(/qkvBias/);
  });

  test('without qkvBias the bias tensors are not part of the model', async () => {
    const model = new TestEngine({ ...cfg, qkvBias: false });
    await expectCode(model.loadTensor('blk.0.attn_q.bias', sources.get('blk.0.attn_q.bias')!), 'ERR_MODEL_FORMAT', /not a tensor of this model/);
    model.dispose();
  });
});

describe('llama engine errors (cpu)', () => {
  const weights = makeWeights(BASE, 5000);
  const sources = writeWeights(weights);
  const newModel = (over: Partial<EngineConfig> = {}) => new TestEngine({ ...BASE, ...over });

  test('finalize with a missing tensor names it', async () => {
    const model = newModel();
    await Promise.all([...sources].filter(([n]) => n !== 'blk.1.ffn_up').map(([n, s]) => model.loadTensor(n, s)));
    await expectCode(model.finalize(), 'ERR_MODEL_FORMAT', /missing tensors: blk\.1\.ffn_up$/);
    // No context (KV pool, sequences) over weights that are not complete.
    await expectCode(() => model.startSequence(0n), 'ERR_INVALID_ARG', /not finalized/);
    model.dispose();
  });

  test('loadTensor checks name, shape, byte size and file extent', async () => {
    const model = newModel();
    const src = sources.get('blk.0.attn_k')!;
    await expectCode(model.loadTensor('blk.0.attn_kk', src), 'ERR_MODEL_FORMAT', /not a tensor of this model/);
    await expectCode(model.loadTensor('blk.0.attn_k', { ...src, shape: [16, 31] }), 'ERR_MODEL_FORMAT', /expected shape \[16, 32\] but received \[16, 31\]/);
    await expectCode(model.loadTensor('blk.0.attn_k', { ...src, bytes: src.bytes - 4 }), 'ERR_MODEL_FORMAT', /expected 2048 bytes/);
    const size = fs.statSync(src.path).size;
    await expectCode(model.loadTensor('blk.0.attn_k', { ...src, offset: size - 100 }), 'ERR_MODEL_FORMAT', /past the end/);
    await expectCode(model.loadTensor('blk.0.attn_k', { ...src, offset: Number.MAX_SAFE_INTEGER }), 'ERR_MODEL_FORMAT', /past the end/);
    await expectCode(model.loadTensor('blk.0.attn_k', { ...src, path: path.join(tmp, 'nope.bin') }), 'ERR_INVALID_ARG', /cannot open/);
    await expectCode(model.loadTensor('blk.0.attn_k', { ...src, offset: -1 }), 'ERR_INVALID_ARG', /offset/);
    await model.loadTensor('blk.0.attn_k', src);
    model.dispose();
  });

  test('config errors', async () => {
    expect(() => newModel({ nKvHeads: 3 })).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG' }));
    // Context sizes are checked when the context is made over the finalized weights.
    const long = await buildModel({ ...BASE, maxContext: 65 }, sources);
    await expectCode(() => long.ctx, 'ERR_INVALID_ARG', /Expected integer between 1 and 64 for maxContext but received 65/);
    long.dispose();
    expect(() => newModel({ arch: 'mamba' as 'llama' })).toThrow(expect.objectContaining({ code: 'ERR_UNSUPPORTED' }));
    expect(() => newModel({ device: 'tpu' })).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG' }));
  });

  test('step and sequence errors are coded', async () => {
    const model = await buildModel(BASE, sources);
    const a = model.startSequence(0n);
    await expectCode(model.step(request([2], [[1]])), 'ERR_INVALID_ARG', /live sequence slot for slots\[0\] but received 2/);
    await expectCode(model.step(request([99], [[1]])), 'ERR_INVALID_ARG', /slots/);
    await expectCode(model.step(request([a, a], [[1], [2]])), 'ERR_INVALID_ARG', /distinct/);
    await expectCode(model.step(request([a], [[50]])), 'ERR_INVALID_ARG', /token id in \[0, 50\)/);
    await expectCode(model.step(request([a], [[...SEQ_A, ...SEQ_B]])), 'ERR_INVALID_ARG', /maxStepTokens/);
    await expectCode(model.step({ ...request([a], [[1, 2]]), counts: Int32Array.of(1) }), 'ERR_INVALID_ARG', /sum of counts/);
    await expectCode(model.step({ ...request([a], [[1]]), temperature: Float32Array.of(-1) }), 'ERR_INVALID_ARG', /temperature\[0\]/);
    await expectCode(model.step({ ...request([a], [[1]]), presencePenalty: Float32Array.of(2.5) }), 'ERR_INVALID_ARG',
      /Expected a number in \[-2, 2\] for presencePenalty\[0\] but received 2\.5/);
    await expectCode(model.step({ ...request([a], [[1]]), frequencyPenalty: Float32Array.of(NaN) }), 'ERR_INVALID_ARG', /frequencyPenalty\[0\]/);
    await expectCode(model.step({ ...request([a], [[1]]), frequencyPenalty: Float32Array.of(0, 0) }), 'ERR_INVALID_ARG',
      /Expected 1 values \(one per slot\) for frequencyPenalty but received 2/);
    await expectCode(model.step({ ...request([a], [[1]]), slots: [a] as unknown as Int32Array }), 'ERR_INVALID_ARG', /Int32Array for slots/);
    // The failed steps left the sequence untouched: it still starts at position 0.
    const r = await model.step(request([a], [SEQ_B], 'last'));
    expect(relDiff(r.logits!, reference(BASE, weights, SEQ_B)[SEQ_B.length - 1])).toBeLessThan(TOL_F32);
    model.startSequence(1n);
    model.startSequence(2n);
    await expectCode(() => model.startSequence(3n), 'ERR_INVALID_ARG', /no free sequence slot/);
    await expectCode(() => model.startSequence(-1n), 'ERR_INVALID_ARG', /seed/);
    model.endSequence(a);
    await expectCode(() => model.endSequence(a), 'ERR_INVALID_ARG', /live sequence slot/);
    expect(model.startSequence(5n)).toBe(a);
    const pending = model.step(request([a], [[1]]));
    model.dispose();
    model.dispose();
    // A step queued before dispose either completes or reports ERR_DISPOSED; nothing works afterwards.
    await pending.catch((e) => expect(e.code).toBe('ERR_DISPOSED'));
    await expectCode(model.step(request([a], [[1]])), 'ERR_DISPOSED');
    await expectCode(() => model.memory(), 'ERR_DISPOSED');
    await expectCode(() => model.startSequence(0n), 'ERR_DISPOSED');
  });
});

// The sampling options an OpenAI-compatible server needs, end to end on stories260K (cpu and emu; cuda when
// present): presence / frequency penalties, raw log-probabilities with top logprobs, and the engine's queue time.
// Every expectation is computed here in fp64 from the rows `logits: true` returns — the LM head's output, which
// the penalties must not touch — or from llama2.c's greedy reference output (../shared/models/stories260K).
import { deviceReport } from '../../lib/devices';
import type { GenerateResult, TokenLogprob } from '../../lib/generate/call';
import type { GenerateOptions } from '../../lib/generate/options';
import { loadModel, Model } from '../../lib/model';
import { MODEL, references } from '../util/stories260k';

const hasGpu = deviceReport().devices.some((d) => d.kind === 'cuda');
const DEVICES = [
  { device: 'cpu', run: true, tokens: 24 },
  { device: 'emu', run: true, tokens: 8 },
  { device: 'cuda', run: hasGpu, tokens: 24 },
];
const PROMPT = 'Once upon a time';

/** The first index of the largest value (the engine's greedy rule). */
function argmax(l: ArrayLike<number>): number {
  let best = 0;
  for (let i = 1; i < l.length; i++) if (l[i] > l[best]) best = i;
  return best;
}

/** OpenAI's penalties, written from their definition: l[id] -= presence·[c > 0] + frequency·c, c = count in `generated`. */
function penalise(row: ArrayLike<number>, generated: readonly number[], presence: number, frequency: number): Float64Array {
  const l = Float64Array.from(row);
  const count = new Map<number, number>();
  for (const id of generated) count.set(id, (count.get(id) ?? 0) + 1);
  for (const [id, c] of count) l[id] -= presence + frequency * c;
  return l;
}

function logSoftmax(row: ArrayLike<number>): Float64Array {
  let mx = -Infinity;
  for (let i = 0; i < row.length; i++) mx = Math.max(mx, row[i]);
  let z = 0;
  for (let i = 0; i < row.length; i++) z += Math.exp(row[i] - mx);
  const lse = mx + Math.log(z);
  return Float64Array.from(row, (v) => v - lse);
}

/** The n most likely ids of a row with their log-probabilities: descending, the lower id first on ties. */
function topN(row: ArrayLike<number>, n: number): TokenLogprob[] {
  const lp = logSoftmax(row);
  const ids = Array.from(lp.keys()).sort((a, b) => lp[b] - lp[a] || a - b);
  return ids.slice(0, n).map((token) => ({ token, logprob: lp[token] }));
}

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let d = 0;
  for (let i = 0; i < a.length; i++) d = Math.max(d, Math.abs(a[i] - b[i]));
  return d;
}

/** Every token's raw log-probability and top list equal the log-softmax of its logits row. */
function expectRawLogprobs(r: GenerateResult, n: number): void {
  expect(r.rawLogprobs).toHaveLength(r.tokens.length);
  expect(r.topLogprobs).toHaveLength(r.tokens.length);
  r.tokens.forEach((token, t) => {
    const row = r.logits![t];
    expect(Math.abs(r.rawLogprobs![t] - logSoftmax(row)[token])).toBeLessThan(1e-5);
    const want = topN(row, n);
    expect(r.topLogprobs![t].map((e) => e.token)).toEqual(want.map((e) => e.token));
    r.topLogprobs![t].forEach((e, k) => expect(Math.abs(e.logprob - want[k].logprob)).toBeLessThan(1e-5));
  });
}

for (const { device, run, tokens: N } of DEVICES) {
  (run ? describe : describe.skip)(`sampling options on ${device}`, () => {
    let model: Model;
    beforeAll(async () => { model = await loadModel(MODEL, { device, dtype: 'float32', maxBatch: 4 }); });
    afterAll(async () => { await model?.dispose(); });
    const greedy = (more: GenerateOptions = {}): GenerateOptions => ({ temperature: 0, maxNewTokens: N, ...more });

    test(`${device}: presence and frequency 0 give exactly the unpenalised tokens`, async () => {
      // One after the other: each alone in its steps, so even the float rounding is the same.
      const zero = { presencePenalty: 0, frequencyPenalty: 0 };
      const sampled: GenerateOptions = { temperature: 0.9, topP: 0.95, seed: 3, maxNewTokens: N };
      const a = await model.generate(PROMPT, greedy());
      const b = await model.generate(PROMPT, greedy(zero));
      const c = await model.generate(PROMPT, sampled);
      const d = await model.generate(PROMPT, { ...sampled, ...zero });
      expect(b.tokens).toEqual(a.tokens);
      expect(b.logprobs).toEqual(a.logprobs);
      expect(d.tokens).toEqual(c.tokens);
      expect(d.logprobs).toEqual(c.logprobs);
    });

    test(`${device}: a greedy continuation under penalties follows l - presence·[c > 0] - frequency·c of the generated tokens`, async () => {
      // This prompt's greedy continuation repeats a token within 16 ("… playing … They liked to play").
      const P = 0.5, F = 1.5, M = Math.max(N, 16);
      const base = await model.generate('Lily and Tom', greedy({ maxNewTokens: M, logits: true }));
      const pen = await model.generate('Lily and Tom', greedy({ maxNewTokens: M, logits: true, presencePenalty: P, frequencyPenalty: F }));
      expect(pen.logits).toHaveLength(pen.tokens.length);
      let moved = 0;
      pen.tokens.forEach((token, t) => {
        const raw = pen.logits![t];
        expect(token).toBe(argmax(penalise(raw, pen.tokens.slice(0, t), P, F)));
        if (token !== argmax(raw)) moved++;
      });
      // The rows are the raw logits, not the penalised ones: while both runs share their tokens, their rows agree
      // (a penalised row would differ by >= P + F at the generated ids). At the first divergence the formula
      // applied to the unpenalised run's own row picks the penalised run's token.
      let d = 0;
      while (d < M && pen.tokens[d] === base.tokens[d]) d++;
      expect(d).toBeLessThan(M); // the penalties changed the continuation
      for (let t = 0; t <= d; t++) expect(maxAbsDiff(pen.logits![t], base.logits![t])).toBeLessThan(1e-4);
      expect(pen.tokens[d]).toBe(argmax(penalise(base.logits![d], base.tokens.slice(0, d), P, F)));
      expect(moved).toBeGreaterThan(0);
    });

    test(`${device}: the prompt is not penalised by presence and frequency (repetition still sees it)`, async () => {
      // llama2.c's greedy output: prompts cut where the next token already occurred, so counting the prompt would
      // matter. The first token must still be llama2.c's.
      const ref = references()[0];
      const seq = [1, ...ref.printedIds];
      const cuts: number[] = [];
      for (let k = 6; k < seq.length && cuts.length < 4; k++) if (seq.slice(0, k).includes(seq[k])) cuts.push(k);
      expect(cuts.length).toBeGreaterThan(0);
      const max = { presencePenalty: 2, frequencyPenalty: 2 };
      const out = await model.generate(cuts.map((k) => seq.slice(0, k)), { ...greedy(max), maxNewTokens: 1, logits: true });
      let decisive = 0;
      cuts.forEach((k, i) => {
        expect({ k, token: out[i].tokens[0] }).toEqual({ k, token: seq[k] });
        if (argmax(penalise(out[i].logits![0], seq.slice(0, k), 2, 2)) !== seq[k]) decisive++;
      });
      expect(decisive).toBeGreaterThan(0); // some cut would have changed its token, had the prompt counted
      const rep = await model.generate(cuts.map((k) => seq.slice(0, k)), { ...greedy(), maxNewTokens: 1, repetitionPenalty: 50 });
      expect(rep.some((r, i) => r.tokens[0] !== seq[cuts[i]])).toBe(true);
    });

    test(`${device}: rawLogprobs and topLogprobs are the log-softmax of the raw logits, whatever the sampling`, async () => {
      const opts: GenerateOptions = {
        temperature: 0.8, seed: 5, maxNewTokens: N, logits: true, topLogprobs: 5, presencePenalty: 1, frequencyPenalty: 0.5, repetitionPenalty: 1.2,
      };
      const r = await model.generate(PROMPT, opts);
      expectRawLogprobs(r, 5);
      // The sampled distribution (temperature, penalties) is another one: logprobs differ from the raw ones.
      expect(r.logprobs.some((lp, t) => Math.abs(lp - r.rawLogprobs![t]) > 1e-3)).toBe(true);
      // The stream reports the same per token.
      const events = [];
      for await (const ev of model.stream(PROMPT, opts)) events.push(ev);
      expect(events.map((e) => e.token)).toEqual(r.tokens);
      events.forEach((e, t) => {
        expect(Math.abs(e.rawLogprob! - r.rawLogprobs![t])).toBeLessThan(1e-9);
        expect(e.topLogprobs).toEqual(r.topLogprobs![t]);
      });
    });

    test(`${device}: topLogprobs in a mixed batch, with n samples, and at 0`, async () => {
      const [asked, plain, none, forked] = await Promise.all([
        model.generate(PROMPT, greedy({ logits: true, topLogprobs: 20 })),
        model.generate('The cat', greedy()),
        model.generate('Lily', greedy({ logits: true, topLogprobs: 0 })),
        model.generate('Tom', { n: 2, temperature: 1, seed: 9, maxNewTokens: N, logits: true, topLogprobs: 3 }),
      ]);
      expectRawLogprobs(asked, 20);
      asked.tokens.forEach((token, t) => expect(asked.topLogprobs![t][0].token).toBe(token)); // greedy: the top one
      expect(plain.rawLogprobs).toBeUndefined();
      expect(plain.topLogprobs).toBeUndefined();
      expectRawLogprobs(none, 0);
      expect(none.topLogprobs!.every((l) => l.length === 0)).toBe(true);
      for (const s of forked) expectRawLogprobs(s, 3);
      const streamed = [];
      for await (const ev of model.stream('The cat', greedy({ maxNewTokens: 2 }))) streamed.push(ev);
      for (const ev of streamed) expect('rawLogprob' in ev || 'topLogprobs' in ev).toBe(false);
    });

    test(`${device}: queueMs is reported, and larger for a request that waited for the only slot`, async () => {
      const ctx = model.createContext({ maxBatch: 1 });
      try {
        const [first, second] = await Promise.all([ctx.generate(PROMPT, greedy()), ctx.generate('The cat', greedy())]);
        for (const r of [first, second]) {
          expect(Number.isFinite(r.timings.queueMs)).toBe(true);
          expect(r.timings.queueMs).toBeGreaterThanOrEqual(0);
        }
        // The second waited until the first had generated all of its tokens.
        expect(second.timings.queueMs).toBeGreaterThan(first.timings.queueMs);
      } finally {
        await ctx.dispose();
      }
    });
  });
}

describe('sampling option validation', () => {
  let model: Model;
  beforeAll(async () => { model = await loadModel(MODEL, { device: 'cpu', dtype: 'float32', maxBatch: 2 }); });
  afterAll(async () => { await model?.dispose(); });

  test('presencePenalty, frequencyPenalty and topLogprobs name the option and what was received', async () => {
    const cases: Array<[GenerateOptions, string]> = [
      [{ presencePenalty: 2.5 }, 'Expected number between -2 and 2 for presencePenalty but received 2.5 of type number'],
      [{ presencePenalty: -2.01 }, 'Expected number between -2 and 2 for presencePenalty but received -2.01 of type number'],
      [{ frequencyPenalty: NaN }, 'Expected number between -2 and 2 for frequencyPenalty but received NaN of type number'],
      [{ frequencyPenalty: '1' as unknown as number }, 'Expected number between -2 and 2 for frequencyPenalty but received "1" of type string'],
      [{ topLogprobs: 21 }, 'Expected integer between 0 and 20 for topLogprobs but received 21 of type number'],
      [{ topLogprobs: -1 }, 'Expected integer between 0 and 20 for topLogprobs but received -1 of type number'],
      [{ topLogprobs: 1.5 }, 'Expected integer between 0 and 20 for topLogprobs but received 1.5 of type number'],
    ];
    for (const [opts, message] of cases) await expect(model.generate('x', opts)).rejects.toThrow(message);
    expect(() => model.stream('x', { topLogprobs: true as unknown as number })).toThrow('for topLogprobs but received true of type boolean');
    // The range ends are accepted.
    const r = await model.generate('x', { maxNewTokens: 1, presencePenalty: -2, frequencyPenalty: 2, topLogprobs: 20 });
    expect(r.topLogprobs![0]).toHaveLength(20);
  });
});

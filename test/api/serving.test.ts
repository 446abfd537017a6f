// The serving engine (engine/context.*, engine/scheduler.*, lib/context.ts) on stories260K: requests that arrive
// at any time share one running batch and each gets exactly what it gets alone; the KV block pool's prefix cache,
// n > 1 forks and preemption change how much is computed, never what comes out. Independent anchor: llama2.c's
// run.c outputs (../shared/models/stories260K/README.md) under concurrency; the rest compares each request with
// the same request run alone in a fresh context (f32: token for token).
// On emu (every kernel through the SIMT emulator) the same checks run with fewer tokens; cuda when a GPU is present.
import { deviceReport } from '../../lib/devices';
import { loadModel, Model } from '../../lib/model';
import type { Context } from '../../lib/context';
import type { GenerateOptions } from '../../lib/generate/options';
import type { GenerateResult } from '../../lib/generate/call';
import { MODEL, references } from '../util/stories260k';

const hasGpu = deviceReport().devices.some((d) => d.kind === 'cuda');
const DEVICES = [
  { device: 'cpu', run: true, tokens: 40 },
  { device: 'emu', run: true, tokens: 12 },
  { device: 'cuda', run: hasGpu, tokens: 40 },
];
const REFS = references();
// A 60-token prompt from run.c's own output (BOS first): several full KV blocks of 16.
const LONG = [1, ...REFS[0].printedIds.slice(0, 59)];

const greedy = (maxNewTokens: number, more: GenerateOptions = {}): GenerateOptions => ({ temperature: 0, maxNewTokens, ...more });

/** The same request alone, in a context of its own. */
async function solo(model: Model, prompt: string | number[], opts: GenerateOptions): Promise<GenerateResult> {
  const ctx = model.createContext({ maxBatch: 4 });
  try {
    return await ctx.generate(prompt, opts);
  } finally {
    await ctx.dispose();
  }
}

const same = (a: GenerateResult, b: GenerateResult): void => {
  expect(a.tokens).toEqual(b.tokens);
  expect(a.text).toBe(b.text);
  expect(a.finishReason).toBe(b.finishReason);
};

for (const { device, run, tokens: N } of DEVICES) {
  (run ? describe : describe.skip)(`serving on ${device}`, () => {
    let model: Model;
    beforeAll(async () => { model = await loadModel(MODEL, { device, dtype: 'float32', maxBatch: 8 }); });
    afterAll(async () => { await model?.dispose(); });

    test(`${device}: run.c's reference outputs while the three prompts join one batch at different steps`, async () => {
      const maxNew = (r: (typeof REFS)[number]): number => Math.min(N * 2, 256 - (r.promptIds.length - 1));
      const first = model.stream(REFS[0].prompt, greedy(maxNew(REFS[0])));
      let seen = 0;
      const late: Array<Promise<GenerateResult>> = [];
      const tokens0: number[] = [];
      for await (const ev of first) {
        tokens0.push(ev.token);
        seen++;
        // The others arrive while the first decodes: they join the running batch between two of its steps.
        if (seen === 2) late.push(model.generate(REFS[1].prompt, greedy(maxNew(REFS[1]))));
        if (seen === 5) late.push(model.generate(REFS[2].prompt, greedy(maxNew(REFS[2]))));
      }
      const outs = [tokens0, ...(await Promise.all(late)).map((r) => r.tokens)];
      REFS.forEach((r, i) => {
        const ref = [...r.printedIds.slice(r.promptIds.length - 1), ...(r.stoppedOnBos ? [1] : [])];
        expect(outs[i]).toEqual(ref.slice(0, outs[i].length));
        expect(outs[i].length).toBe(Math.min(ref.length, maxNew(r)));
      });
    });

    test(`${device}: requests with different options and lengths, arriving at different times, each get their solo result`, async () => {
      const jobs: Array<{ prompt: string | number[]; opts: GenerateOptions }> = [
        { prompt: 'Once upon a time', opts: greedy(N) },
        { prompt: LONG, opts: greedy(N - 3, { logits: true }) },
        { prompt: [1], opts: greedy(5) },
        { prompt: 'The cat', opts: greedy(N, { stop: [' the'] }) },
        { prompt: 'Lily and Tom', opts: { temperature: 0.9, topP: 0.8, seed: 11, maxNewTokens: N } },
        { prompt: LONG.slice(0, 33), opts: { temperature: 1.2, topK: 20, repetitionPenalty: 1.3, seed: 5, maxNewTokens: N } },
      ];
      const alone = [];
      for (const j of jobs) alone.push(await solo(model, j.prompt, j.opts));
      const together = await Promise.all(jobs.map(async (j, i) => {
        await new Promise((r) => setTimeout(r, 3 * i)); // arrive while the earlier ones run
        return model.generate(j.prompt, j.opts);
      }));
      // f32 greedy is exact anywhere; sampled rows are exact on cpu, whose ops do not depend on the batch around
      // a row (the GPU kernels pick other tilings for other batch sizes, so a near-tie may sample differently).
      const exact = device === 'cpu' ? jobs.length : 4;
      for (let i = 0; i < exact; i++) same(together[i], alone[i]);
      expect(together[1].logits).toHaveLength(together[1].tokens.length);
      together[1].logits!.forEach((l, t) => expect(l.indexOf(Math.max(...l))).toBe(together[1].tokens[t]));
      expect(together[3].finishReason === 'stop' || together[3].finishReason === 'length').toBe(true);
      expect(model.stats()).toMatchObject({ running: 0, waiting: 0, blocksUsed: 0, requests: 0 });
    });

    test(`${device}: prefix cache hits compute only the rest and give exactly the cold tokens`, async () => {
      const ctx = model.createContext({ maxBatch: 2 });
      try {
        const cold = await ctx.generate(LONG, greedy(N));
        expect(cold.usage.cachedTokens).toBe(0);
        const computed = ctx.stats().promptTokensComputed;
        const warm = await ctx.generate(LONG, greedy(N));
        // 60 tokens: 3 full blocks, but the last token is always computed: 48 from the cache, 12 computed.
        expect(warm.usage.cachedTokens).toBe(48);
        expect(ctx.stats().promptTokensComputed - computed).toBe(12);
        same(warm, cold);
        // A longer prompt that starts with LONG and its greedy continuation finds those blocks too.
        const longer = [...LONG, ...cold.tokens.slice(0, 10)];
        const hit = await ctx.generate(longer, greedy(N));
        expect(hit.usage.cachedTokens).toBe(64);
        same(hit, await solo(model, longer, greedy(N)));
      } finally {
        await ctx.dispose();
      }
      // prefixCaching: false computes every prompt in full; n samples still share their prompt's pass.
      const off = model.createContext({ maxBatch: 2, prefixCaching: false });
      try {
        const a = await off.generate(LONG, greedy(N));
        const b = await off.generate(LONG, greedy(N));
        same(b, a);
        expect(b.usage.cachedTokens).toBe(0);
        expect(off.stats()).toMatchObject({ promptTokensComputed: 120, blocksCached: 0 });
        await off.generate(LONG, { ...greedy(2), n: 2 });
        expect(off.stats().promptTokensComputed).toBe(180);
      } finally {
        await off.dispose();
      }
    });

    test(`${device}: eviction under a small pool keeps results exact`, async () => {
      // 8 blocks of 16: one 60-token prompt + N new tokens fills most of it, so each request evicts the last one's.
      const ctx = model.createContext({ maxBatch: 1, kvCacheTokens: 128 });
      try {
        const other = [1, ...REFS[1].printedIds, ...REFS[2].printedIds].slice(0, 60);
        const a1 = await ctx.generate(LONG, greedy(N));
        const b = await ctx.generate(other, greedy(N));
        const a2 = await ctx.generate(LONG, greedy(N));
        same(a2, a1);
        same(b, await solo(model, other, greedy(N)));
        const s = ctx.stats();
        expect(s.blocksTotal).toBe(8);
        expect(s.blocksUsed).toBe(0);
        expect(s.blocksCached).toBeLessThanOrEqual(8);
      } finally {
        await ctx.dispose();
      }
    });

    test(`${device}: n samples share one prompt pass; sample j equals the request alone with seed + j`, async () => {
      for (const len of [20, 32]) { // a partial last block (copied for each fork) and an exact one
        const prompt = LONG.slice(0, len);
        const opts = { temperature: 1, seed: 9, maxNewTokens: N };
        const ctx = model.createContext({ maxBatch: 4 });
        let samples: GenerateResult[];
        try {
          samples = await ctx.generate(prompt, { ...opts, n: 3 });
          expect(ctx.stats().promptTokensComputed).toBe(len); // once, not three times
        } finally {
          await ctx.dispose();
        }
        expect(samples).toHaveLength(3);
        for (let j = 0; j < 3; j++) same(samples[j], await solo(model, prompt, { ...opts, seed: 9 + j }));
        expect(new Set(samples.map((s) => s.text)).size).toBeGreaterThan(1);
        const again = await model.generate(prompt, { ...opts, n: 3 });
        again.forEach((s, j) => same(s, samples[j]));
      }
      const g = await model.generate(REFS[0].prompt, { ...greedy(N), n: 4 });
      const one = await solo(model, REFS[0].prompt, greedy(N));
      for (const s of g) same(s, one);
      // Several prompts × n: sample j of prompt i at i × n + j.
      const both = await model.generate(['Lily', 'The cat'], { ...greedy(6), n: 2 });
      expect(both.map((r) => r.text)).toEqual([...Array(2).fill((await solo(model, 'Lily', greedy(6))).text),
        ...Array(2).fill((await solo(model, 'The cat', greedy(6))).text)]);
    });

    test(`${device}: preemption under a tight pool: every request still gets exactly its solo tokens`, async () => {
      // 4 blocks: each request needs up to 3 (8 prompt + 40 new tokens), so four at once cannot all hold theirs.
      const ctx = model.createContext({ maxBatch: 4, kvCacheTokens: 64 });
      const prompts = ['Once upon a time', 'Lily and Tom', 'The cat', 'One day, a big'];
      const opts = (i: number): GenerateOptions => (i % 2 ? greedy(N) : { temperature: 1, seed: 40 + i, maxNewTokens: N });
      try {
        const outs = await Promise.all(prompts.map((p, i) => ctx.generate(p, opts(i))));
        for (let i = 0; i < prompts.length; i++) {
          if (device === 'cpu' || i % 2) same(outs[i], await solo(model, prompts[i], opts(i)));
        }
        if (N >= 40) expect(ctx.stats().preemptions).toBeGreaterThan(0);
        expect(ctx.stats()).toMatchObject({ running: 0, waiting: 0, blocksUsed: 0 });
      } finally {
        await ctx.dispose();
      }
    });

    test(`${device}: a shared input is computed once; each prompt after it gets what the whole prompt gets`, async () => {
      const input = LONG.slice(0, 50);
      const tails = [[403, 407], [261, 378, 432], [286]];
      const shared = model.createContext({ maxBatch: 4 });
      const plain = model.createContext({ maxBatch: 4 });
      try {
        const a = await shared.generate({ input, prompts: tails }, greedy(N));
        const b = await plain.generate(tails.map((t) => [...input, ...t]), greedy(N));
        a.forEach((r, i) => {
          same(r, b[i]);
          expect(r.usage.cachedTokens).toBe(48);
          expect(r.usage.promptTokens).toBe(input.length + tails[i].length);
        });
        // The input once (50) plus each tail's uncached rest (tokens 48.. of each prompt: 4, 5, 3).
        expect(shared.stats().promptTokensComputed).toBe(50 + 4 + 5 + 3);
        expect(plain.stats().promptTokensComputed).toBe(3 * 50 + 2 + 3 + 1);
      } finally {
        await shared.dispose();
        await plain.dispose();
      }
    });
  });
}

describe('serving: a context is independent of the others over the same weights', () => {
  test('two contexts run at once; disposing one leaves the other working', async () => {
    const model = await loadModel(MODEL, { device: 'cpu', dtype: 'float32' });
    const extra: Context = model.createContext({ maxBatch: 2, kvCacheTokens: 256 });
    const [x, y] = await Promise.all([model.generate('Lily', greedy(20)), extra.generate('Lily', greedy(20))]);
    same(x, y);
    expect(extra.config).toMatchObject({ maxBatch: 2, kvCacheTokens: 256 });
    await extra.dispose();
    await expect(extra.generate('Lily')).rejects.toMatchObject({ code: 'ERR_DISPOSED' });
    same(await model.generate('Lily', greedy(20)), x);
    await model.dispose();
  });
});

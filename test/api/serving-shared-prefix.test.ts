// Shared-prefix decode attention in the serving engine (issue 10 item 1) on stories260K (8 query heads over 4 kv
// heads, head_dim 8): in decode steps whose sequences share leading KV blocks — the n samples of one prompt, requests
// after a common input found in the prefix cache — the runner groups them and attention runs the shared_attention op.
// Expected values are independent of that path: the same requests in a context with sharedPrefixAttention: false
// (the plain attention op over each whole context), greedy in f32: token for token. The stats show the path was
// taken, with counts derived from the block arithmetic (16-token blocks), not read back from the code under test.
import { deviceReport } from '../../lib/devices';
import { loadModel, Model } from '../../lib/model';
import type { Context, ContextOptions } from '../../lib/context';
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
// A 60-token prompt from run.c's own output (BOS first): 3 full KV blocks of 16 and a partial one.
const LONG = [1, ...REFS[0].printedIds.slice(0, 59)];

const greedy = (maxNewTokens: number, more: GenerateOptions = {}): GenerateOptions => ({ temperature: 0, maxNewTokens, ...more });

const same = (a: GenerateResult, b: GenerateResult): void => {
  expect(a.tokens).toEqual(b.tokens);
  expect(a.text).toBe(b.text);
  expect(a.finishReason).toBe(b.finishReason);
};

/** Runs fn in a fresh context with sharing on and in one with it off; returns both results and the contexts' stats. */
async function onAndOff<T>(model: Model, opts: ContextOptions, fn: (ctx: Context) => Promise<T>) {
  const on = model.createContext({ ...opts, sharedPrefixAttention: true });
  const off = model.createContext({ ...opts, sharedPrefixAttention: false });
  try {
    const a = await fn(on);
    const b = await fn(off);
    return { on: a, off: b, onStats: on.stats(), offStats: off.stats(), onConfig: on.config, offConfig: off.config };
  } finally {
    await on.dispose();
    await off.dispose();
  }
}

for (const { device, run, tokens: N } of DEVICES) {
  (run ? describe : describe.skip)(`shared-prefix attention on ${device}`, () => {
    let model: Model;
    beforeAll(async () => { model = await loadModel(MODEL, { device, dtype: 'float32', maxBatch: 8 }); });
    afterAll(async () => { await model?.dispose(); });

    test(`${device}: n samples of one prompt decode through the shared path and get what they get without it`, async () => {
      const r = await onAndOff(model, { maxBatch: 4 }, (ctx) => ctx.generate(LONG, { ...greedy(N), n: 4, ignoreEos: true }));
      expect(r.onConfig.sharedPrefixAttention).toBe(true);
      expect(r.offConfig.sharedPrefixAttention).toBe(false);
      expect(r.on).toHaveLength(4);
      r.on.forEach((s, j) => {
        same(s, r.off[j]);
        expect(s.tokens).toHaveLength(N);
      });
      // The first token comes from the prompt pass; each of the N - 1 decode steps then has the 4 forks, sharing the
      // prompt's 3 full blocks (48 keys; its partial block is copied for each fork).
      expect(r.onStats.sharedPrefixTokens).toBe(4 * (N - 1));
      expect(r.onStats.sharedPrefixKeysSaved).toBe(48 * 3 * (N - 1));
      expect(r.offStats).toMatchObject({ sharedPrefixTokens: 0, sharedPrefixKeysSaved: 0 });
    });

    test(`${device}: seeded samples (diverging tails) are the same with and without the shared path`, async () => {
      const opts = { temperature: 1, seed: 21, maxNewTokens: N, n: 3, ignoreEos: true };
      const r = await onAndOff(model, { maxBatch: 4 }, (ctx) => ctx.generate(LONG.slice(0, 40), opts));
      r.on.forEach((s, j) => same(s, r.off[j]));
      expect(new Set(r.on.map((s) => s.text)).size).toBeGreaterThan(1);
      // 40 tokens: 2 full shared blocks (32 keys); 3 forks in each of the N - 1 decode steps.
      expect(r.onStats.sharedPrefixTokens).toBe(3 * (N - 1));
      expect(r.onStats.sharedPrefixKeysSaved).toBe(32 * 2 * (N - 1));
      expect(r.offStats.sharedPrefixTokens).toBe(0);
    });

    test(`${device}: requests after a common long input share its cached blocks while they decode`, async () => {
      const input = LONG.slice(0, 50);
      const tails = [[403, 407], [261, 378, 432], [286], [403]];
      const r = await onAndOff(model, { maxBatch: 4 }, async (ctx) => {
        const a = await ctx.generate({ input, prompts: tails }, greedy(N, { ignoreEos: true }));
        // Separate requests: the input's 3 full blocks are in the prefix cache for them.
        const b = await Promise.all([[...LONG, 403], [...LONG, 261, 378], [...LONG]].map((p) => ctx.generate(p, greedy(N, { ignoreEos: true }))));
        return [...a, ...b];
      });
      r.on.forEach((s, i) => {
        same(s, r.off[i]);
        expect(s.usage.cachedTokens).toBe(48);
      });
      expect(r.onStats.sharedPrefixTokens).toBeGreaterThan(0);
      expect(r.onStats.sharedPrefixKeysSaved).toBeGreaterThanOrEqual(48 * r.onStats.sharedPrefixTokens / 2);
      expect(r.offStats.sharedPrefixTokens).toBe(0);
    });
  });
}

describe('shared-prefix attention: the option', () => {
  test('sharedPrefixAttention must be a boolean', async () => {
    const model = await loadModel(MODEL, { device: 'cpu', dtype: 'float32', maxBatch: 1 });
    try {
      expect(() => model.createContext({ sharedPrefixAttention: 1 as unknown as boolean })).toThrow(
        'Expected boolean for sharedPrefixAttention but received 1 of type number');
    } finally {
      await model.dispose();
    }
  });

  test('default: on, on every backend; false turns it off', async () => {
    for (const [device, expected] of [['cpu', true], ['emu', true]] as const) {
      const model = await loadModel(MODEL, { device, dtype: 'float32', maxBatch: 1 });
      try {
        expect([device, model.createContext({ maxBatch: 1 }).config.sharedPrefixAttention]).toEqual([device, expected]);
        expect(model.createContext({ maxBatch: 1, sharedPrefixAttention: !expected }).config.sharedPrefixAttention).toBe(!expected);
      } finally {
        await model.dispose();
      }
    }
  });
});

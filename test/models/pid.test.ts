// Prompt-in-Decoder (PiD, arXiv 2403.13112): one input, many prompts — generate({ input, prompts }) computes the
// input once and decodes every prompt in one batch. Each prompt's greedy output must equal what the same prompt gives
// run alone (its own call: its own encoder pass or prefill), for 1, 2, 16 and 64 prompts, f32:
//   T5 (test/fixtures/hf-t5 v1_1): one encoder memory shared by every prompt's decoder; decode steps read it once
//        per step for all of its readers (stats().memoryKeysSaved proves that path ran), and turning the sharing off
//        (sharedPrefixAttention: false: every sequence reads the memory itself) gives the same ids;
//   LLaMA (stories260K, a real trained model): the input prefilled once and its blocks shared through the prefix
//        cache (stats().promptTokensCached).
// The references here are the engine's own single-prompt runs: what they are checked against (HF's greedy ids for
// T5, llama2.c's for stories260K) is in hf-t5.test.ts and stories260k.test.ts.
import * as fs from 'fs';
import * as path from 'path';
import { loadModel, type Model } from '../../lib/model';
import { settledStats } from '../util/engine-helpers';
import { MODEL as STORIES } from '../util/stories260k';

const T5_DIR = path.join(__dirname, '..', 'fixtures', 'hf-t5', 'v1_1');
const T5_REF = JSON.parse(fs.readFileSync(path.join(__dirname, '..', 'fixtures', 'hf-t5', 'reference.json'), 'utf8')) as { texts: string[] };
const COUNTS = [1, 2, 16, 64];
const GREEDY = { temperature: 0, ignoreEos: true, maxNewTokens: 6 } as const;

/** n prompts of 1..5 token ids from [lo, hi), from a fixed linear congruential sequence (no two alike). */
function idPrompts(n: number, lo: number, hi: number): number[][] {
  let x = 12345;
  const next = (): number => { x = (x * 1103515245 + 12345) % 2 ** 31; return x; };
  const out: number[][] = [];
  const seen = new Set<string>();
  while (out.length < n) {
    const p = Array.from({ length: 1 + (next() % 5) }, () => lo + (next() % (hi - lo)));
    if (!seen.has(p.join())) {
      seen.add(p.join());
      out.push(p);
    }
  }
  return out;
}

async function alone(model: Model, input: string, prompts: number[][]): Promise<number[][]> {
  const out: number[][] = [];
  for (const p of prompts) out.push((await model.generate({ input, prompts: [p] }, GREEDY))[0].tokens);
  return out;
}

describe.each(['cpu', 'emu'])('PiD on %s: every prompt\'s output equals its output alone', (device) => {
  describe('T5 (one encoder memory for all prompts)', () => {
    let model: Model;
    let ctxOff: ReturnType<Model['createContext']>;
    const input = T5_REF.texts[1];
    const prompts = idPrompts(64, 3, 70);  // T5's ids 0-2 are pad, </s>, unk
    let ref: number[][];
    beforeAll(async () => {
      model = await loadModel(T5_DIR, { device, dtype: 'float32', maxBatch: 64 });
      ctxOff = model.createContext({ maxBatch: 64, sharedPrefixAttention: false });
      ref = await alone(model, input, prompts);
    });
    afterAll(async () => { await model?.dispose(); });

    test.each(COUNTS)('%i prompts', async (n) => {
      const before = model.stats().memoryKeysSaved;
      const rs = await model.generate({ input, prompts: prompts.slice(0, n) }, GREEDY);
      expect(rs.map((r) => r.tokens)).toEqual(ref.slice(0, n));
      // Every prompt after the first skipped its own read of the memory in each of the 5 decode steps.
      const saved = model.stats().memoryKeysSaved - before;
      if (n > 1) expect(saved).toBeGreaterThan(0);
      else expect(saved).toBe(0);
      const off = await ctxOff.generate({ input, prompts: prompts.slice(0, n) }, GREEDY);
      expect(off.map((r) => r.tokens)).toEqual(ref.slice(0, n));
      expect(ctxOff.stats().memoryKeysSaved).toBe(0);
      expect(await settledStats(model)).toMatchObject({ encoderMemories: 0, blocksUsed: 0 });
    });
  });

  describe('LLaMA (the input prefilled once, shared through the prefix cache)', () => {
    let model: Model;
    const input = 'Once upon a time, there was a little girl named Lily. She loved to play outside in the park with her friends.';
    const prompts = idPrompts(64, 3, 512);  // stories260K's ids 0-2 are unk, bos, eos
    let ref: number[][];
    beforeAll(async () => {
      model = await loadModel(STORIES, { device, dtype: 'float32', maxBatch: 64, maxSeqLen: 256 });
      ref = await alone(model, input, prompts);
    });
    afterAll(async () => { await model?.dispose(); });

    test.each(COUNTS)('%i prompts', async (n) => {
      const before = model.stats().promptTokensCached;
      const rs = await model.generate({ input, prompts: prompts.slice(0, n) }, GREEDY);
      expect(rs.map((r) => r.tokens)).toEqual(ref.slice(0, n));
      expect(model.stats().promptTokensCached - before).toBeGreaterThanOrEqual(16 * n);  // at least one full block each
    });
  });
});

// Decode steps as device graphs (engine/step_graphs.h, ContextOptions.cudaGraphs; issue 13 item 5), on emu (and cuda
// when a GPU is present): the emu
// backend records a step's launches and replays them, as the cuda backend does with a CUDA graph, so CI runs the
// same runner path a GPU does. A recording bakes in every host-side launch argument; every per-step value (tokens,
// positions, cache slots, context lengths, block tables, sampling parameters, seeds, RNG counters, penalty
// histories) must come from device memory. So:
//   - stories260K f32 greedy through replayed steps gives run.c's ids (llama2.c, an independent reference), and
//     stats().graphSteps proves the steps were replays;
//   - T5 (test/fixtures/hf-t5 v1_1): greedy through replayed decoder steps gives HF transformers' ids, and PiD
//     (one encoder memory read by 4 prompts' decoders) sampled with graphs equals it without;
//   - sampled generation (temperature, top-k, top-p, penalties, per-sample seeds) with sequences that start and
//     end at different steps, and the n samples of one prompt (decode steps over a shared-prefix group), in
//     float32 and float16: every token and log-probability equals what a context with
//     cudaGraphs: false computes by launching each op from the host (the same kernels and arguments, so the same
//     bits). A replay that reused any per-step value of its capture step would sample from another position,
//     slot, seed or step and differ.
import * as fs from 'fs';
import * as path from 'path';
import { binding } from '../../lib/binding';
import { deviceReport } from '../../lib/devices';
import { loadModel, type Model } from '../../lib/model';
import { MODEL, references } from '../util/stories260k';

// On a GPU (the suite's model step runs the cuda cases) the same checks cover CUDA graphs proper.
const DEVICES = ['emu', ...(deviceReport().devices.some((d) => d.kind === 'cuda') ? ['cuda'] : [])];

const REF = references()[0];
const GREEDY_TOKENS = 70;

describe.each(DEVICES)('device graphs on %s (stories260K)', (device) => {
  let model: Model;
  beforeAll(async () => { model = await loadModel(MODEL, { device, dtype: 'float32', maxBatch: 4, maxSeqLen: 256 }); });
  afterAll(async () => { await model?.dispose(); });

  test(`greedy ${JSON.stringify(REF.prompt)}: the first ${GREEDY_TOKENS} ids are run.c's, from replayed steps`, async () => {
    const ctx = model.createContext({ maxBatch: 1 });
    const out = await ctx.generate(REF.prompt, { temperature: 0, maxNewTokens: GREEDY_TOKENS });
    expect(out.tokens).toEqual(REF.printedIds.slice(REF.promptIds.length - 1).slice(0, GREEDY_TOKENS));
    const s = ctx.stats();
    // One prefill step (5 prompt tokens), then 69 decode steps over contexts of 6..74 keys: two context bounds
    // (64, 128). The first step of each runs eagerly, the second is captured, and it and every later one replayed.
    expect(s.graphError).toBeUndefined();
    expect(s.graphsCaptured).toBe(2);
    expect(s.graphSteps).toBe(GREEDY_TOKENS - 1 - 2);
    await ctx.dispose();
  });

  test('cudaGraphs: false launches every step from the host', async () => {
    const ctx = model.createContext({ maxBatch: 1, cudaGraphs: false });
    const out = await ctx.generate(REF.prompt, { temperature: 0, maxNewTokens: 8 });
    expect(out.tokens).toEqual(REF.printedIds.slice(REF.promptIds.length - 1).slice(0, 8));
    expect(ctx.stats()).toMatchObject({ graphSteps: 0, graphsCaptured: 0 });
    await ctx.dispose();
  });

  (device === 'emu' ? test : test.skip)('a capture that fails turns recording off for that context; its steps still run', async () => {
    binding().setEmuOptions({ failNextCapture: true });
    try {
      const ctx = model.createContext({ maxBatch: 1 });
      const out = await ctx.generate(REF.prompt, { temperature: 0, maxNewTokens: 12 });
      expect(out.tokens).toEqual(REF.printedIds.slice(REF.promptIds.length - 1).slice(0, 12));
      expect(ctx.stats()).toMatchObject({ graphSteps: 0, graphsCaptured: 0, graphError: expect.stringMatching(/capture failed \(injected/) });
      await ctx.dispose();
      const next = model.createContext({ maxBatch: 1 });  // the hook fired once; another context records again
      await next.generate(REF.prompt, { temperature: 0, maxNewTokens: 4 });
      expect(next.stats().graphsCaptured).toBe(1);
      await next.dispose();
    } finally {
      binding().setEmuOptions({});
    }
  });

  test('rejects a cudaGraphs that is not a boolean', () => {
    expect(() => model.createContext({ cudaGraphs: 1 as unknown as boolean })).toThrow(/cudaGraphs/);
  });
});

describe.each(DEVICES.flatMap((d) => (['float32', 'float16'] as const).map((t) => [d, t] as const)))('device graphs on %s, %s: sampled steps equal host-launched steps', (device, dtype) => {
  let model: Model;
  beforeAll(async () => { model = await loadModel(MODEL, { device, dtype, maxBatch: 4, maxSeqLen: 256 }); });
  afterAll(async () => { await model?.dispose(); });

  // Prompts of 1, 9, 23 and 40 tokens, prefilled 8 tokens a step: the sequences start decoding at different steps,
  // so decode batches of 1..4 and mixed steps (eager) follow each other, and they finish at different steps too.
  const ids = REF.printedIds;
  const prompts = [[1], [1, ...ids.slice(0, 8)], [1, ...ids.slice(0, 22)], [1, ...ids.slice(0, 39)]];
  const sampling = [
    { temperature: 0.9, topK: 40, topP: 0.95, seed: 7 },
    { temperature: 1.1, topP: 0.8, repetitionPenalty: 1.3, presencePenalty: 0.4, frequencyPenalty: 0.2, seed: 11 },
  ];

  test.each(sampling.map((s, i) => [i, s] as const))('sampling %i', async (_i, s) => {
    const run = async (cudaGraphs: boolean) => {
      const ctx = model.createContext({ maxBatch: 4, prefillChunk: 8, cudaGraphs });
      const rs = await ctx.generate(prompts, { ...s, maxNewTokens: 24, ignoreEos: true });
      const stats = ctx.stats();
      await ctx.dispose();
      return { out: rs.map((r) => ({ tokens: r.tokens, logprobs: r.logprobs })), stats };
    };
    const on = await run(true);
    const off = await run(false);
    expect(on.out).toEqual(off.out);
    expect(on.stats.graphError).toBeUndefined();
    expect(on.stats.graphSteps).toBeGreaterThan(10);
    expect(off.stats.graphSteps).toBe(0);
  });

  test('n = 3 samples of a prompt: decode steps over a shared-prefix group replay too', async () => {
    const run = async (cudaGraphs: boolean) => {
      const ctx = model.createContext({ maxBatch: 4, cudaGraphs });
      // 40 prompt tokens: two full blocks that the samples share (the shared_attention path), one partial each.
      const rs = await ctx.generate([prompts[3]], { n: 3, temperature: 0.8, topP: 0.9, seed: 5, maxNewTokens: 20, ignoreEos: true });
      const stats = ctx.stats();
      await ctx.dispose();
      return { out: rs.map((r) => ({ tokens: r.tokens, logprobs: r.logprobs })), stats };
    };
    const on = await run(true);
    const off = await run(false);
    expect(on.out).toEqual(off.out);
    expect(on.stats.sharedPrefixTokens).toBeGreaterThan(0);
    expect(on.stats.graphSteps).toBeGreaterThan(10);
    expect(off.stats.graphSteps).toBe(0);
  });
});

const T5_DIR = path.join(__dirname, '..', 'fixtures', 'hf-t5', 'v1_1');
const T5_REF = JSON.parse(fs.readFileSync(path.join(__dirname, '..', 'fixtures', 'hf-t5', 'reference.json'), 'utf8')) as {
  texts: string[]; models: { v1_1: { inputs: Array<{ greedyIds: number[] }> } };
};

describe.each(DEVICES)('device graphs on %s (T5 encoder-decoder)', (device) => {
  let model: Model;
  beforeAll(async () => { model = await loadModel(T5_DIR, { device, dtype: 'float32', maxBatch: 4 }); });
  afterAll(async () => { await model?.dispose(); });

  test('greedy decoder steps replayed give HF transformers\' ids', async () => {
    const ctx = model.createContext({ maxBatch: 1 });
    for (const [i, x] of T5_REF.models.v1_1.inputs.entries()) {
      const out = await ctx.generate(T5_REF.texts[i], { temperature: 0, maxNewTokens: x.greedyIds.length - 1, ignoreEos: true });
      expect(out.tokens).toEqual(x.greedyIds.slice(1));  // HF's start with decoder_start
    }
    expect(ctx.stats().graphError).toBeUndefined();
    expect(ctx.stats().graphSteps).toBeGreaterThan(0);
    await ctx.dispose();
  });

  test('PiD: 4 prompts decoding against one memory, sampled, replayed equals host-launched', async () => {
    const run = async (cudaGraphs: boolean) => {
      const ctx = model.createContext({ maxBatch: 4, cudaGraphs });
      const rs = await ctx.generate({ input: T5_REF.texts[1], prompts: [[5], [9, 12], [30], [41, 7, 8]] },
        { temperature: 0.9, topP: 0.9, seed: 3, maxNewTokens: 12, ignoreEos: true });
      const stats = ctx.stats();
      await ctx.dispose();
      return { out: rs.map((r) => ({ tokens: r.tokens, logprobs: r.logprobs })), stats };
    };
    const on = await run(true);
    const off = await run(false);
    expect(on.out).toEqual(off.out);
    expect(on.stats.memoryKeysSaved).toBeGreaterThan(0);  // the shared-memory cross-attention path ran
    expect(on.stats.graphSteps).toBeGreaterThan(5);
    expect(off.stats.graphSteps).toBe(0);
  });
});

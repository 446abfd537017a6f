// The serving engine's manners on the real engine (cpu, stories260K): stop strings, abort, streams left early or
// abandoned, a full queue, dispose with calls in flight, option validation — and decoding that goes on while the
// JS thread is blocked (the step loop is native: no event-loop turn between two steps).
import { BusyError, DisposedError } from '../../lib/errors';
import { loadModel, Model, type ContextOptions, type GenerateOptions, type LoadModelOptions } from '../../lib/model';
import { tensor } from '../../lib/tensor';
import { MODEL, references } from '../util/stories260k';

const REFS = references();
const ONCE = REFS.find((r) => r.prompt === 'Once upon a time')!;
const greedy = (maxNewTokens: number): { temperature: number; maxNewTokens: number } => ({ temperature: 0, maxNewTokens });
const idle = async (model: Model): Promise<void> => {
  for (let i = 0; i < 500 && (model.stats().running || model.stats().waiting || model.stats().requests); i++) {
    await new Promise((r) => setTimeout(r, 2));
  }
  expect(model.stats()).toMatchObject({ running: 0, waiting: 0, requests: 0, blocksUsed: 0 });
};

describe('serving lifecycle (cpu)', () => {
  let model: Model;
  beforeAll(async () => { model = await loadModel(MODEL, { device: 'cpu', dtype: 'float32', maxBatch: 4, streamIdleTimeoutMs: 150 }); });
  afterAll(async () => { await model?.dispose(); });

  test('stream: events per token, text deltas add up to generate()\'s text, the last event has finishReason', async () => {
    const evs = [];
    for await (const ev of model.stream(['Once upon a time', 'Lily'], greedy(12))) evs.push(ev);
    const outs = await model.generate(['Once upon a time', 'Lily'], greedy(12));
    for (const i of [0, 1]) {
      const mine = evs.filter((e) => e.index === i);
      expect(mine.map((e) => e.token)).toEqual(outs[i].tokens);
      expect(mine.map((e) => e.text).join('')).toBe(outs[i].text);
      expect(mine.at(-1)!.finishReason).toBe('length');
      expect(mine.slice(0, -1).every((e) => e.finishReason === undefined)).toBe(true);
    }
  });

  test('stop strings: the text is cut before the stop string and never streamed past it; the sequence is freed', async () => {
    const full = await model.generate(ONCE.prompt, greedy(40));
    const stop = ' named Lily'; // spans several tokens of the greedy continuation
    expect(full.text).toContain(stop);
    const r = await model.generate(ONCE.prompt, { ...greedy(40), stop: ['zzz', stop] });
    expect(r.finishReason).toBe('stop');
    expect(r.text).toBe(full.text.slice(0, full.text.indexOf(stop)));
    let streamed = '';
    let last;
    for await (const ev of model.stream(ONCE.prompt, { ...greedy(40), stop })) { streamed += ev.text; last = ev; }
    expect(streamed).toBe(r.text);
    expect(last!.finishReason).toBe('stop');
    await idle(model);
  });

  test('abort: generate() keeps what the engine produced; stream() ends at once; an aborted signal runs nothing', async () => {
    const ac = new AbortController();
    const before = model.stats().generatedTokens;
    const pending = model.generate(['Once upon a time', 'The cat'], { ...greedy(250), signal: ac.signal });
    while (model.stats().generatedTokens < before + 6) await new Promise((r) => setTimeout(r, 1));
    ac.abort();
    const rs = await pending;
    const full = await model.generate(['Once upon a time', 'The cat'], greedy(250));
    for (const [i, r] of rs.entries()) {
      if (r.finishReason !== 'abort') expect(r).toEqual(expect.objectContaining({ tokens: full[i].tokens })); // ended first
      expect(full[i].tokens.slice(0, r.tokens.length)).toEqual(r.tokens);
      expect(full[i].text.startsWith(r.text)).toBe(true);
    }
    expect(rs.some((r) => r.finishReason === 'abort' && r.tokens.length > 0 && r.tokens.length < 250)).toBe(true);
    const ac2 = new AbortController();
    const evs = [];
    for await (const ev of model.stream(['Once upon a time', 'The cat'], { ...greedy(100), signal: ac2.signal })) {
      evs.push(ev);
      if (evs.length === 4) ac2.abort();
    }
    expect(evs.length).toBe(4);
    const pre = new AbortController();
    pre.abort();
    const computed = model.stats().promptTokensComputed;
    await expect(model.generate('Once', { signal: pre.signal })).resolves.toMatchObject({ finishReason: 'abort', tokens: [], text: '' });
    expect(model.stats().promptTokensComputed).toBe(computed);
    await idle(model);
  });

  test('breaking out of a stream cancels it; a stream never iterated submits nothing; an abandoned one is cancelled', async () => {
    for await (const ev of model.stream('Once', greedy(200))) if (ev) break;
    await idle(model);
    const computed = model.stats().promptTokensComputed;
    model.stream('Once upon a time', greedy(200)); // never iterated
    await new Promise((r) => setTimeout(r, 20));
    expect(model.stats().promptTokensComputed).toBe(computed);
    // Iterated twice, then left alone without return(): cancelled after streamIdleTimeoutMs (150 ms here).
    const it = model.stream('Once upon a time', greedy(400))[Symbol.asyncIterator]();
    await it.next();
    await it.next();
    await idle(model);
    // It blocks nothing: later calls and dispose() go on.
    await expect(model.generate('Once', greedy(2))).resolves.toMatchObject({ finishReason: 'length' });
  });

  test('decoding goes on while the JS thread is blocked: no event-loop turn is needed between two steps', async () => {
    const ctx = model.createContext({ maxBatch: 1 });
    try {
      const it = ctx.stream('Once upon a time', greedy(500))[Symbol.asyncIterator]();
      await it.next();
      const before = ctx.stats().steps;
      const until = Date.now() + 300;
      while (Date.now() < until) { /* the main thread is busy: no callback, no event loop */ }
      expect(ctx.stats().steps - before).toBeGreaterThanOrEqual(10);
      await it.return?.();
    } finally {
      await ctx.dispose();
    }
  });

  test('a full queue rejects at once with BusyError (ERR_BUSY); what was accepted completes', async () => {
    const ctx = model.createContext({ maxBatch: 1, maxQueued: 2 });
    try {
      // Long enough (300 tokens, EOS ignored: ~30 ms on the fast cpu backend) that no accepted request can finish
      // while the eight calls are still being made (a few ms of tokenizing): else a finished one frees a place and one
      // more is accepted (30 tokens made this test fail now and then on a loaded machine).
      const calls = Array.from({ length: 8 }, () => ctx.generate('Lily', { ...greedy(300), ignoreEos: true }).then((r) => r, (e: unknown) => e));
      const outs = await Promise.all(calls);
      const busy = outs.filter((o) => o instanceof BusyError);
      const done = outs.filter((o) => !(o instanceof Error));
      expect(busy.length).toBeGreaterThanOrEqual(5);
      expect(busy[0]).toMatchObject({ code: 'ERR_BUSY', message: expect.stringMatching(/maxQueued/) });
      expect(done.length).toBeGreaterThanOrEqual(2);
      expect(done.length + busy.length).toBe(8);
    } finally {
      await ctx.dispose();
    }
  });

  test('logits: true returns the distribution each token was sampled from', async () => {
    const r = await model.generate(ONCE.prompt, { ...greedy(3), logits: true });
    expect(r.logits).toHaveLength(3);
    r.logits!.forEach((l, i) => {
      expect(l).toHaveLength(512);
      expect(l.indexOf(Math.max(...l))).toBe(r.tokens[i]);
    });
  });

  test('maxSeqLen: a sequence ends with length when its context is full; longer prompts are rejected', async () => {
    const short = await loadModel(MODEL, { device: 'cpu', maxSeqLen: 10 });
    const r = await short.generate(ONCE.prompt, greedy(100));
    expect(r.finishReason).toBe('length');
    expect(r.usage.promptTokens + r.tokens.length).toBe(11); // the last sampled token needs no cache slot
    await expect(short.generate(new Array(11).fill(1))).rejects.toThrow('Expected at most 10 tokens (maxSeqLen) for prompt but received 11 tokens');
    await short.dispose();
  });

  test('option and prompt validation (one message format, the engine\'s limits)', async () => {
    await expect(model.generate('x', { maxNewTokens: -1 })).rejects.toThrow('Expected positive integer for maxNewTokens but received -1 of type number');
    await expect(model.generate('x', { temperature: -1 })).rejects.toThrow('Expected number between 0 and 1000000 for temperature but received -1 of type number');
    await expect(model.generate('x', { topP: 0 })).rejects.toThrow('Expected number greater than 0 and at most 1 for topP but received 0 of type number');
    await expect(model.generate('x', { topK: 1.5 })).rejects.toThrow('Expected integer between 0 and 512 for topK but received 1.5 of type number');
    await expect(model.generate('x', { n: 5 })).rejects.toThrow('Expected integer between 1 and 4 for n but received 5 of type number');
    await expect(model.generate('x', { repetitionPenalty: 0 })).rejects.toThrow('for repetitionPenalty but received 0 of type number');
    await expect(model.generate('x', { seed: -1 })).rejects.toThrow('for seed but received -1 of type number');
    await expect(model.generate('x', { stop: [''] })).rejects.toThrow('Expected non-empty string for stop[0] but received "" of type string');
    await expect(model.generate('x', { stop: '' })).rejects.toThrow('Expected non-empty string for stop but received "" of type string');
    await expect(model.generate('x', { signal: {} as AbortSignal })).rejects.toThrow('Expected AbortSignal for signal');
    await expect(model.generate([], {})).rejects.toMatchObject({ code: 'ERR_INVALID_ARG' });
    await expect(model.generate([1, 512])).rejects.toThrow('Expected integer between 0 and 511 for prompt[1] but received 512 of type number');
    await expect(model.generate([{} as unknown as string])).rejects.toThrow('Expected string or array of token ids for prompts[0] but received a value of type Object');
    await expect(model.generate({ input: 'x', prompts: [] })).rejects.toThrow('Expected non-empty array of prompts for prompts');
    expect(() => model.stream('x', { maxNewTokens: 0 })).toThrow('Expected positive integer for maxNewTokens but received 0 of type number');
    expect(() => model.createContext({ maxBatch: 5000 })).toThrow('Expected integer between 1 and 4096 for maxBatch but received 5000 of type number');
    expect(() => model.createContext({ kvCacheTokens: 0 })).toThrow(/for kvCacheTokens but received 0/);
    // A request that can never fit the pool is rejected at once, naming the sizes.
    const tiny = model.createContext({ maxBatch: 1, kvCacheTokens: 32 });
    await expect(tiny.generate(ONCE.prompt, greedy(100))).rejects.toThrow(/needs 7 KV blocks .* holds 2 blocks of 16 tokens/);
    await tiny.dispose();
  });

  test('options: unknown keys are refused with the nearest name; dictionaries without a prototype are options too', async () => {
    await expect(model.generate('x', { temprature: 0 } as GenerateOptions)).rejects.toThrow(
      /^Unknown option "temprature" in options; did you mean "temperature"\? \(known: maxNewTokens, n, temperature/);
    await expect(model.generate('x', { maxTokens: 3 } as GenerateOptions)).rejects.toThrow('Unknown option "maxTokens" in options; did you mean "maxNewTokens"?');
    await expect(model.generate('x', { zzzzzzzzzzzz: 1 } as GenerateOptions)).rejects.toThrow(/^Unknown option "zzzzzzzzzzzz" in options \(known:/);
    expect(() => model.createContext({ maxBach: 2 } as ContextOptions)).toThrow('Unknown option "maxBach" in options; did you mean "maxBatch"?');
    await expect(loadModel(MODEL, { devise: 'cpu' } as LoadModelOptions)).rejects.toThrow('Unknown option "devise" in options; did you mean "device"?');
    const o = Object.create(null) as GenerateOptions;
    Object.assign(o, { maxNewTokens: 3, temperature: 0, ignoreEos: true });
    const generated = ONCE.printedIds.slice(ONCE.promptIds.length - 1); // llama2.c run.c's greedy ids
    expect((await model.generate(ONCE.prompt, o)).tokens).toEqual(generated.slice(0, 3));
  });

  test('sampling values the engine would see differently are refused in JS, with the same message format', async () => {
    // 1e-46 is 0 as a float32; the repetition penalty is bounded to [1/100, 100] (beyond, logits overflow)
    await expect(model.generate('x', { topP: 1e-46 })).rejects.toThrow('Expected number greater than 0 and at most 1 for topP but received 1e-46 of type number');
    await expect(model.generate('x', { repetitionPenalty: 1e39 })).rejects.toThrow('Expected number between 0.009999999776482582 and 100 for repetitionPenalty but received 1e+39 of type number');
    await expect(model.generate('x', { repetitionPenalty: 1e-38 })).rejects.toThrow(/for repetitionPenalty but received 1e-38/);
    expect((await model.generate(ONCE.prompt, { ...greedy(3), repetitionPenalty: 100 })).tokens).toHaveLength(3);
    // a sparse array's hole is a missing prompt, named
    // eslint-disable-next-line no-sparse-arrays
    await expect(model.generate(['a', , 'b'] as string[])).rejects.toThrow('Expected string or array of token ids for prompts[1] but received undefined');
    // eslint-disable-next-line no-sparse-arrays
    await expect(model.generate([1, , 2] as number[])).rejects.toThrow('for prompt[1] but received undefined');
  });

  test('maxStepTokens is bounded by what a step can carry (maxBatch × maxSeqLen), and says so', async () => {
    expect(() => model.createContext({ maxBatch: 4, maxStepTokens: 1 << 20 })).toThrow(
      'Expected integer between 4 (maxBatch) and 2048 (maxBatch × maxSeqLen) for maxStepTokens but received 1048576 of type number');
    const small = model.createContext({ maxBatch: 2, maxSeqLen: 16 });
    expect(small.config.maxStepTokens).toBe(32); // the default (512) cut to 2 × 16
    const big = model.createContext({ maxBatch: 2, maxSeqLen: 16, maxStepTokens: 32 });
    expect(big.memory().workspace).toBe(small.memory().workspace);
    await small.dispose();
    await big.dispose();
  });
});

describe('serving lifecycle: sharing the device', () => {
  test('emu: work queued on the device while a generation runs is served between its steps, not after it', async () => {
    const model = await loadModel(MODEL, { device: 'emu', dtype: 'float32', maxBatch: 1 });
    try {
      const it = model.stream(ONCE.prompt, greedy(200))[Symbol.asyncIterator]();
      await it.next();
      // tensor() uploads synchronously under the device's lock, which the engine loop takes for every step, back to
      // back: a first-come first-served lock lets it in after the step in flight.
      const t = tensor(new Float32Array(1024).fill(2), [1024], { device: 'emu' });
      const generated = model.stats().generatedTokens;
      expect(model.stats().running).toBe(1);
      expect(generated).toBeLessThan(100);
      expect(Array.from(await t.toArray()).every((v) => v === 2)).toBe(true);
      t.dispose();
      await it.return?.();
    } finally {
      await model.dispose();
    }
  });
});

describe('serving lifecycle: dispose', () => {
  test('dispose during generation: calls in flight reject with DisposedError after the step in flight; memory is freed', async () => {
    const model = await loadModel(MODEL, { device: 'cpu', dtype: 'float32', maxBatch: 1 });
    const gen = model.generate(ONCE.prompt, greedy(400));
    const queued = model.generate('Lily', greedy(400)); // waits for the one slot
    const stream = model.stream('The cat', greedy(400))[Symbol.asyncIterator]();
    const first = stream.next();
    const settled = Promise.allSettled([gen, queued, first.then(() => stream.next())]);
    await new Promise((r) => setTimeout(r, 20));
    await model.dispose();
    const [a, b, c] = await settled;
    expect(a).toMatchObject({ status: 'rejected', reason: expect.any(DisposedError) });
    expect(b).toMatchObject({ status: 'rejected', reason: { code: 'ERR_DISPOSED' } });
    expect(c).toMatchObject({ status: 'rejected', reason: { code: 'ERR_DISPOSED' } });
    expect(model.disposed).toBe(true);
    await model.dispose();
    await expect(model.generate('x')).rejects.toBeInstanceOf(DisposedError);
    expect(() => model.stream('x')).toThrow(DisposedError);
    expect(() => model.memory()).toThrow('The model was disposed');
  });

  test('await using disposes at the end of the block', async () => {
    let ref: Model;
    {
      await using model = await loadModel(MODEL, { device: 'cpu' });
      ref = model;
      expect(model.disposed).toBe(false);
    }
    expect(ref.disposed).toBe(true);
  });
});

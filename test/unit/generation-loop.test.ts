// The TypeScript generation loop (lib/model.ts, lib/generate/*) over a plain JS reference forward pass
// (test/util/llama2c-reference.ts) instead of the native engine: batching, chunked prefill, slots, stop
// strings, abort, dispose, option validation — and run.c's stories260K output through the whole TS pipeline.
import { DisposedError } from '../../lib/errors';
import { Model, loadModelWith, LoadModelOptions } from '../../lib/model';
import { ReferenceLlama } from '../util/llama2c-reference';
import { MODEL, STEPS, references } from '../util/stories260k';

async function open(options: LoadModelOptions = {}): Promise<{ model: Model; ref: ReferenceLlama }> {
  let ref!: ReferenceLlama;
  const model = await loadModelWith(MODEL, { device: 'cpu', ...options }, ReferenceLlama.factory((r) => (ref = r)));
  return { model, ref };
}

const liveSlots = (ref: ReferenceLlama): number => ref.slots.filter((s) => s !== null).length;

describe('generation loop over a JS reference forward pass', () => {
  let model: Model;
  let ref: ReferenceLlama;
  beforeAll(async () => ({ model, ref } = await open()));
  afterAll(() => model.dispose());

  test('run.c\'s "The cat" output byte for byte (greedy, stops on BOS) through the TS pipeline', async () => {
    const r = references().find((x) => x.prompt === 'The cat')!;
    const out = await model.generate(r.prompt, { temperature: 0, maxNewTokens: STEPS - (r.promptIds.length - 1) });
    expect(model.tokenizer.decode(r.promptIds.slice(1)) + out.text + '\n').toBe(r.stdout);
    expect(out.finishReason).toBe('eos');
    expect(out.tokens).toEqual([...r.printedIds.slice(r.promptIds.length - 1), 1]);
    expect(out.usage).toEqual({ promptTokens: r.promptIds.length, completionTokens: out.tokens.length });
    expect(liveSlots(ref)).toBe(0);
  });

  test('prompts of 1, 7, 33 and 100 tokens: one packed first step, and the same tokens as each alone', async () => {
    const ids = references()[0].printedIds;
    const prompts = [[1], [1, ...ids.slice(0, 6)], [1, ...ids.slice(0, 32)], [1, ...ids.slice(0, 99)]];
    const before = ref.steps.length;
    const together = await model.generate(prompts, { temperature: 0, maxNewTokens: 6 });
    const first = ref.steps[before];
    expect(Array.from(first.counts).sort((a, b) => a - b)).toEqual([1, 7, 33, 100]);
    for (let i = 0; i < prompts.length; i++) {
      const alone = await model.generate(prompts[i], { temperature: 0, maxNewTokens: 6 });
      expect(together[i].tokens).toEqual(alone.tokens);
      expect(together[i].text).toBe(alone.text);
    }
  });

  test('stream: events per token, text deltas add up to generate()\'s text, last event has finishReason', async () => {
    const evs = [];
    for await (const ev of model.stream(['Once upon a time', 'Lily'], { temperature: 0, maxNewTokens: 12 })) evs.push(ev);
    const outs = await model.generate(['Once upon a time', 'Lily'], { temperature: 0, maxNewTokens: 12 });
    for (const i of [0, 1]) {
      const mine = evs.filter((e) => e.index === i);
      expect(mine.map((e) => e.token)).toEqual(outs[i].tokens);
      expect(mine.map((e) => e.text).join('')).toBe(outs[i].text);
      expect(mine.at(-1)!.finishReason).toBe('length');
      expect(mine.slice(0, -1).every((e) => e.finishReason === undefined)).toBe(true);
    }
  });

  test('stop strings: text cut before the stop string, never streamed past it', async () => {
    const full = await model.generate('Once upon a time', { temperature: 0, maxNewTokens: 40 });
    const stop = ' named Lily'; // spans several tokens in the greedy continuation
    expect(full.text).toContain(stop);
    const r = await model.generate('Once upon a time', { temperature: 0, maxNewTokens: 40, stop: ['zzz', stop] });
    expect(r.finishReason).toBe('stop');
    expect(r.text).toBe(full.text.slice(0, full.text.indexOf(stop)));
    let streamed = '';
    let last;
    for await (const ev of model.stream('Once upon a time', { temperature: 0, maxNewTokens: 40, stop })) { streamed += ev.text; last = ev; }
    expect(streamed).toBe(r.text);
    expect(last!.finishReason).toBe('stop');
    expect(liveSlots(ref)).toBe(0);
  });

  test('maxNewTokens ends with finishReason length', async () => {
    const r = await model.generate('Once upon a time', { temperature: 0, maxNewTokens: 3 });
    expect(r.tokens).toHaveLength(3);
    expect(r.finishReason).toBe('length');
    expect(r.timings.ttftMs).toBeGreaterThan(0);
    expect(r.timings.tokensPerSecond).toBeGreaterThan(0);
  });

  test('abort: generate() resolves with finishReason abort and keeps what was generated; stream() ends', async () => {
    const ac = new AbortController();
    ref.stepDelayMs = 20;
    setTimeout(() => ac.abort(), 150);
    const rs = await model.generate(['Once upon a time', 'The cat'], { temperature: 0, maxNewTokens: 200, signal: ac.signal });
    ref.stepDelayMs = 0;
    const full = await model.generate(['Once upon a time', 'The cat'], { temperature: 0, maxNewTokens: 30 });
    for (const [i, r] of rs.entries()) {
      expect(r.finishReason).toBe('abort');
      expect(r.tokens.length).toBeGreaterThan(0);
      expect(r.tokens.length).toBeLessThan(200);
      expect(full[i].tokens.slice(0, r.tokens.length)).toEqual(r.tokens);
      expect(full[i].text.startsWith(r.text)).toBe(true);
    }
    const ac2 = new AbortController();
    const evs = [];
    for await (const ev of model.stream(['Once upon a time', 'The cat'], { temperature: 0, maxNewTokens: 100, signal: ac2.signal })) {
      evs.push(ev);
      if (evs.length === 4) ac2.abort();
    }
    expect(evs.length).toBe(4); // no further step once aborted
    const pre = new AbortController();
    pre.abort();
    const r = await model.generate('Once', { signal: pre.signal });
    expect(r).toMatchObject({ finishReason: 'abort', tokens: [], text: '' });
    expect(liveSlots(ref)).toBe(0);
  });

  test('breaking out of a stream ends its slots and frees the model for the next call', async () => {
    for await (const ev of model.stream('Once', { temperature: 0, maxNewTokens: 50 })) if (ev) break;
    expect(liveSlots(ref)).toBe(0);
    await expect(model.generate('Once', { temperature: 0, maxNewTokens: 2 })).resolves.toMatchObject({ finishReason: 'length' });
  });

  test('concurrent calls run one after another with the right results', async () => {
    const [a, b] = await Promise.all([
      model.generate('Lily', { temperature: 0, maxNewTokens: 5 }),
      model.generate('The cat', { temperature: 0, maxNewTokens: 5 }),
    ]);
    expect(a.tokens).toEqual((await model.generate('Lily', { temperature: 0, maxNewTokens: 5 })).tokens);
    expect(b.tokens).toEqual((await model.generate('The cat', { temperature: 0, maxNewTokens: 5 })).tokens);
  });

  test('logits: true returns the distribution each token was sampled from', async () => {
    const r = await model.generate('Once upon a time', { temperature: 0, maxNewTokens: 3, logits: true });
    expect(r.logits).toHaveLength(3);
    r.logits!.forEach((l, i) => {
      expect(l).toHaveLength(512);
      expect(l.indexOf(Math.max(...l))).toBe(r.tokens[i]);
    });
  });

  test('sampling with a seed is reproducible', async () => {
    const a = await model.generate('Once', { temperature: 1, seed: 42, maxNewTokens: 8 });
    const b = await model.generate('Once', { temperature: 1, seed: 42n, maxNewTokens: 8 });
    expect(a.tokens).toEqual(b.tokens);
  });

  test('option and prompt validation (one message format)', async () => {
    await expect(model.generate('x', { maxNewTokens: -1 })).rejects.toThrow('Expected positive integer for maxNewTokens but received -1 of type number');
    await expect(model.generate('x', { temperature: -1 })).rejects.toThrow('Expected number between 0 and 1000000 for temperature but received -1 of type number');
    await expect(model.generate('x', { topP: 0 })).rejects.toThrow('Expected number greater than 0 and at most 1 for topP but received 0 of type number');
    await expect(model.generate('x', { topK: 1.5 })).rejects.toThrow('Expected integer between 0 and 512 for topK but received 1.5 of type number');
    await expect(model.generate('x', { repetitionPenalty: 0 })).rejects.toThrow('for repetitionPenalty but received 0 of type number');
    await expect(model.generate('x', { seed: -1 })).rejects.toThrow('for seed but received -1 of type number');
    await expect(model.generate('x', { stop: [''] })).rejects.toThrow('Expected non-empty string or array of non-empty strings for stop');
    await expect(model.generate('x', { signal: {} as AbortSignal })).rejects.toThrow('Expected AbortSignal for signal');
    await expect(model.generate([], {})).rejects.toMatchObject({ code: 'ERR_INVALID_ARG' });
    await expect(model.generate([1, 512])).rejects.toThrow('Expected integer between 0 and 511 for prompt[1] but received 512 of type number');
    await expect(model.generate([{} as unknown as string])).rejects.toThrow('Expected string or array of token ids for prompts[0] but received a value of type Object');
    expect(() => model.stream('x', { maxNewTokens: 0 })).toThrow('Expected positive integer for maxNewTokens but received 0 of type number');
  });
});

describe('limits: batch slots, step size, context', () => {
  test('maxBatch 2 with 4 prompts: at most 2 live, the others join as slots free up, same results', async () => {
    const { model, ref } = await open({ maxBatch: 2, maxStepTokens: 16 });
    const prompts = ['Once upon a time', 'Lily and Tom', 'The cat', 'One day, a little girl named Lily went to the park with her mom'];
    const lens = [8, 3, 5, 4];
    const outs = await Promise.all(prompts.map((p, i) => model.generate(p, { temperature: 0, maxNewTokens: lens[i] })));
    ref.steps.length = 0;
    const together = await model.generate(prompts, { temperature: 0, maxNewTokens: 8 });
    for (const s of ref.steps) {
      expect(s.slots.length).toBeLessThanOrEqual(2);
      expect(s.tokens.length).toBeLessThanOrEqual(16); // the 17-token prompt is fed in chunks
    }
    together.forEach((r, i) => expect(r.tokens.slice(0, lens[i])).toEqual(outs[i].tokens));
    expect(liveSlots(ref)).toBe(0);
    await model.dispose();
  });

  test('maxSeqLen: a sequence ends with length when its context is full; longer prompts are rejected', async () => {
    const { model } = await open({ maxSeqLen: 10 });
    const r = await model.generate('Once upon a time', { temperature: 0, maxNewTokens: 100 });
    expect(r.finishReason).toBe('length');
    expect(r.usage.promptTokens + r.tokens.length).toBe(11); // the last sampled token needs no cache slot
    await expect(model.generate(new Array(11).fill(1))).rejects.toThrow('Expected at most 10 tokens (maxSeqLen) for prompt but received 11 tokens');
    await model.dispose();
  });
});

describe('lifecycle', () => {
  test('dispose: disposed getter, DisposedError after, native freed, idempotent', async () => {
    const { model, ref } = await open();
    expect(model.disposed).toBe(false);
    expect(model.memory().weights).toBeGreaterThan(1_000_000);
    await model.dispose();
    expect(model.disposed).toBe(true);
    expect(ref.disposed).toBe(true);
    await model.dispose();
    await expect(model.generate('x')).rejects.toBeInstanceOf(DisposedError);
    expect(() => model.stream('x')).toThrow(DisposedError);
    expect(() => model.memory()).toThrow('The model was disposed');
  });

  test('dispose during a generation: it stops after the step in flight with DisposedError, then frees', async () => {
    const { model, ref } = await open();
    const gen = model.generate('Once upon a time', { temperature: 0, maxNewTokens: 200 });
    const queued = model.generate('Lily', { temperature: 0, maxNewTokens: 200 });
    await new Promise((r) => setTimeout(r, 50));
    await model.dispose();
    await expect(gen).rejects.toMatchObject({ code: 'ERR_DISPOSED' });
    await expect(queued).rejects.toMatchObject({ code: 'ERR_DISPOSED' });
    expect(liveSlots(ref)).toBe(0);
    expect(ref.disposed).toBe(true);
  });

  test('await using disposes at the end of the block', async () => {
    let ref!: ReferenceLlama;
    {
      await using model = await loadModelWith(MODEL, { device: 'cpu' }, ReferenceLlama.factory((r) => (ref = r)));
      expect(model.disposed).toBe(false);
    }
    expect(ref.disposed).toBe(true);
  });

  test('load: progress reported per tensor; an aborted load rejects with AbortError and frees the native model', async () => {
    const seen: number[] = [];
    const { model } = await open({ onProgress: (p) => seen.push(p.loadedBytes / p.totalBytes) });
    expect(seen.length).toBe(47);
    expect(seen.at(-1)).toBe(1);
    await model.dispose();
    const ac = new AbortController();
    let ref!: ReferenceLlama;
    const load = loadModelWith(MODEL, { device: 'cpu', signal: ac.signal, onProgress: () => ac.abort() }, ReferenceLlama.factory((r) => (ref = r)));
    await expect(load).rejects.toMatchObject({ code: 'ERR_ABORTED' });
    expect(ref.disposed).toBe(true);
  });
});

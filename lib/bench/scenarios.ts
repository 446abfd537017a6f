// Serving scenarios of `eet bench --scenarios`: what a server sees, measured through the public Context API, each
// scenario in contexts of its own over the model's weights (model.createContext):
//   concurrency  N prompts of random lengths run three ways: N stream() callers started together, the N prompts in
//                one generate() call, and one after another. Aggregate tok/s (generated tokens / wall time), TTFT
//                and inter-token latency percentiles. Each way gets fresh prompts of the same lengths: repeating the
//                same ids would let the prefix cache skip the later ways' prefill.
//   shared       a document + short questions, answered with the document shared ({ input, prompts }: computed
//                once) and as whole prompts in one call with prefix caching off (every prompt computed in full);
//                each in a fresh context. Prompt tokens computed and cached (the context's counters), wall time, speedup.
//   busy         tok/s of batches queued back to back while the JS thread spins half the time, ÷ the same with it
//                idle: the engine loop is native, so a busy event loop should only delay when tokens are seen.
//   http         the OpenAI server on loopback under C streaming clients, against the same load sent to the engine
//                directly: the HTTP layer's cost (lib/bench/http.ts).
//   pid          one document + S sub-task prompts: independent requests vs encode once, decode many, with the
//                shared-prefix attention off and on (lib/bench/pid.ts).
import type { AddonContextConfig } from '../binding';
import type { ContextOptions, Context } from '../context';
import { InternalError, InvalidArgumentError } from '../errors';
import type { GenerateResult, Model } from '../model';
import { benchOptions, expectLength } from './grid';
import { httpScenario, type HttpResult, type HttpSettings } from './http';
import { fitPid, pidDefaults, pidPositions, pidScenario, type PidResult, type PidSettings } from './pid';
import { isEncoderDecoder } from '../arch';
import type { TokenSource } from './random';
import { median, percentiles, type Percentiles } from './stats';

export const SCENARIO_NAMES = ['concurrency', 'shared', 'busy', 'http', 'pid'] as const;
export type ScenarioName = (typeof SCENARIO_NAMES)[number];

export interface ScenarioSettings {
  concurrency: { prompts: number; promptTokens: [number, number]; newTokens: number };
  shared: { documentTokens: number; questions: number; questionTokens: [number, number]; newTokens: number };
  busy: { batch: number; promptTokens: number; newTokens: number; busyMs: number; freeMs: number; runs: number };
  http: HttpSettings;
  pid: PidSettings;
}

/** GPU sizes as the brief of each scenario says; cpu / emu ones that finish in seconds on a tiny model. */
export function scenarioDefaults(gpu: boolean): ScenarioSettings {
  return {
    concurrency: { prompts: 32, promptTokens: [16, 128], newTokens: gpu ? 64 : 16 },
    shared: { documentTokens: gpu ? 1000 : 256, questions: 16, questionTokens: [8, 24], newTokens: gpu ? 16 : 8 },
    busy: { batch: 4, promptTokens: 16, newTokens: 128, busyMs: 10, freeMs: 10, runs: 3 },
    http: { clients: gpu ? 64 : 16, requests: gpu ? 256 : 64, promptTokens: [16, 128], newTokens: gpu ? 64 : 16 },
    pid: pidDefaults(gpu),
  };
}

/** Positions per sequence the chosen scenarios need (built-in shapes are made at least this long). */
export function scenarioPositions(s: ScenarioSettings, names: readonly ScenarioName[]): number {
  const need: Record<ScenarioName, number> = {
    concurrency: s.concurrency.promptTokens[1] + s.concurrency.newTokens,
    shared: s.shared.documentTokens + s.shared.questionTokens[1] + s.shared.newTokens,
    busy: s.busy.promptTokens + s.busy.newTokens,
    http: s.http.promptTokens[1] + s.http.newTokens,
    pid: pidPositions(s.pid),
  };
  return Math.max(1, ...names.map((n) => need[n]));
}

/** The settings for a model of maxSeqLen positions: prompts and the document give way, new tokens stay. */
export function fitScenarios(s: ScenarioSettings, maxSeqLen: number): ScenarioSettings {
  const room = (what: string, n: number): number => {
    if (n < 1) throw new InvalidArgumentError(`The model's ${maxSeqLen} positions leave no room for the ${what}`);
    return n;
  };
  const c = s.concurrency, d = s.shared, b = s.busy, h = s.http;
  const hi = room('concurrency prompts', Math.min(c.promptTokens[1], maxSeqLen - c.newTokens));
  const hh = room('http prompts', Math.min(h.promptTokens[1], maxSeqLen - h.newTokens));
  return {
    concurrency: { ...c, promptTokens: [Math.min(c.promptTokens[0], hi), hi] },
    shared: { ...d, documentTokens: room('shared document', Math.min(d.documentTokens, maxSeqLen - d.questionTokens[1] - d.newTokens)) },
    busy: { ...b, promptTokens: room('busy-loop prompts', Math.min(b.promptTokens, maxSeqLen - b.newTokens)) },
    http: { ...h, promptTokens: [Math.min(h.promptTokens[0], hh), hh] },
    pid: fitPid(s.pid, maxSeqLen),
  };
}

export interface ConcurrencyVariant {
  mode: 'streams' | 'one-call' | 'sequential';
  wallMs: number;
  generatedTokens: number;
  /** generatedTokens / wall time. */
  tokPerSec: number;
  /** streams: from the common start; one-call: from the call; sequential: from each request's own call. */
  ttftMs: Percentiles;
  itlMs: Percentiles;
  /** 'events': gaps between a stream's events; 'per-sequence mean': decode time / (tokens − 1) of each result. */
  itlFrom: 'events' | 'per-sequence mean';
  promptTokensComputed: number;
  promptTokensCached: number;
}

/** A scenario context's sizes and memory (its own KV pool and workspace; the weights are the model's). */
export type ScenarioContext = Pick<AddonContextConfig, 'maxBatch' | 'maxContext' | 'maxStepTokens' | 'prefillChunk' | 'kvCacheTokens' | 'kvCacheBytes'> & {
  workspaceBytes: number;
};

export interface ConcurrencyResult {
  context: ScenarioContext;
  prompts: number;
  promptTokens: { min: number; max: number; total: number };
  newTokens: number;
  variants: ConcurrencyVariant[];
}

export interface SharedRun {
  wallMs: number;
  promptTokensComputed: number;
  promptTokensCached: number;
  generatedTokens: number;
}

export interface SharedResult {
  /** Each way's (the same sizes). */
  context: ScenarioContext;
  documentTokens: number;
  questions: number;
  questionTokens: { min: number; max: number };
  newTokens: number;
  shared: SharedRun;
  unshared: SharedRun;
  /** unshared wall time ÷ shared. */
  speedup: number;
  /** Questions whose greedy answer is the same both ways. */
  identicalAnswers: number;
}

export interface BusyResult {
  context: ScenarioContext;
  batch: number;
  promptTokens: number;
  newTokens: number;
  busyMs: number;
  freeMs: number;
  runs: number;
  /** Batches submitted together in one measurement. */
  rounds: number;
  /** Medians over the runs: generated tokens ÷ wall time of a measurement. */
  idleTokPerSec: number;
  busyTokPerSec: number;
  /** busy ÷ idle (target ≥ 0.9). */
  ratio: number;
  /** The share of the busy runs' wall time the JS thread actually spent spinning. */
  busyFraction: number;
}

export interface ScenarioResults {
  concurrency?: ConcurrencyResult;
  shared?: SharedResult;
  busy?: BusyResult;
  http?: HttpResult & { context: ScenarioContext };
  pid?: PidResult;
}

/** What the scenarios' contexts take from the bench's flags (step size, prefill chunk). */
export type StepOptions = Pick<ContextOptions, 'maxStepTokens' | 'prefillChunk'>;

export async function runScenarios(model: Model, names: readonly ScenarioName[], settings: ScenarioSettings, source: TokenSource,
  step: StepOptions, log: (line: string) => void): Promise<ScenarioResults> {
  const s = fitScenarios(settings, model.config.maxSeqLen);
  const out: ScenarioResults = {};
  const open = (maxBatch: number, maxSeqLen: number, prefixCaching = true): Context => model.createContext({
    maxBatch, maxSeqLen, prefixCaching, ...step,
    ...(step.maxStepTokens !== undefined ? { maxStepTokens: Math.max(maxBatch, step.maxStepTokens) } : {}),
  });
  for (const name of names) {
    log(`  scenario ${name}`);
    if (name === 'concurrency') out.concurrency = await concurrency(open, s.concurrency, source);
    if (name === 'shared') out.shared = await shared(open, s.shared, source);
    if (name === 'busy') out.busy = await busy(open, s.busy, source);
    if (name === 'http') {
      const h = s.http;
      const { value, context } = await withContext(open, h.clients, h.promptTokens[1] + h.newTokens, source,
        (ctx) => httpScenario(model, ctx, h, source));
      out.http = { ...value, context };
    }
    if (name === 'pid') {
      out.pid = await pidScenario((maxBatch, maxSeqLen, more) => model.createContext({
        maxBatch, maxSeqLen, ...step, ...more,
        ...(step.maxStepTokens !== undefined ? { maxStepTokens: Math.max(maxBatch, step.maxStepTokens) } : {}),
      }), s.pid, source, log, isEncoderDecoder(model.config.arch));
    }
  }
  return out;
}

type Open = (maxBatch: number, maxSeqLen: number, prefixCaching?: boolean) => Context;

/** Runs `fn` in a fresh context, first warmed with `batch` short prompts (less than a KV block: nothing cached). */
async function withContext<T>(open: Open, batch: number, maxSeqLen: number, source: TokenSource,
  fn: (ctx: Context) => Promise<T>): Promise<{ value: T; context: ScenarioContext }> {
  const ctx = open(batch, maxSeqLen);
  try {
    const c = ctx.config, m = ctx.memory();
    const context = {
      maxBatch: c.maxBatch, maxContext: c.maxContext, maxStepTokens: c.maxStepTokens, prefillChunk: c.prefillChunk,
      kvCacheTokens: c.kvCacheTokens, kvCacheBytes: m.kvCache, workspaceBytes: m.workspace,
    };
    await ctx.generate(Array.from({ length: batch }, () => source.ids(Math.min(8, maxSeqLen - 2))), benchOptions(2));
    return { value: await fn(ctx), context };
  } finally {
    await ctx.dispose();
  }
}

/** The context's prompt counters over `fn`. */
async function counted<T>(ctx: Context, fn: () => Promise<T>): Promise<{ value: T; wallMs: number; computed: number; cached: number }> {
  const before = ctx.stats();
  const t0 = performance.now();
  const value = await fn();
  const wallMs = performance.now() - t0;
  const after = ctx.stats();
  return { value, wallMs, computed: after.promptTokensComputed - before.promptTokensComputed, cached: after.promptTokensCached - before.promptTokensCached };
}

interface SequenceTimes { ttftMs: number; itlMs: number[]; tokens: number }

/** One stream() consumed as a client would: arrival time of each event, TTFT counted from `from`. */
async function streamOne(ctx: Context, prompt: Int32Array, newTokens: number, from: number): Promise<SequenceTimes> {
  const itlMs: number[] = [];
  let ttftMs = NaN, last = 0, tokens = 0;
  for await (const _event of ctx.stream(prompt, benchOptions(newTokens))) {
    const t = performance.now();
    if (tokens === 0) ttftMs = t - from;
    else itlMs.push(t - last);
    last = t;
    tokens++;
  }
  return { ttftMs, itlMs, tokens };
}

function variant(mode: ConcurrencyVariant['mode'], run: { value: SequenceTimes[]; wallMs: number; computed: number; cached: number },
  itlFrom: ConcurrencyVariant['itlFrom'], expected: number): ConcurrencyVariant {
  const generatedTokens = run.value.reduce((a, s) => a + s.tokens, 0);
  if (generatedTokens !== expected) throw new InternalError(`eet bench: ${mode} generated ${generatedTokens} of ${expected} tokens`);
  return {
    mode, wallMs: run.wallMs, generatedTokens, tokPerSec: (generatedTokens * 1e3) / run.wallMs,
    ttftMs: percentiles(run.value.map((s) => s.ttftMs)), itlMs: percentiles(run.value.flatMap((s) => s.itlMs)), itlFrom,
    promptTokensComputed: run.computed, promptTokensCached: run.cached,
  };
}

async function concurrency(open: Open, s: ScenarioSettings['concurrency'], source: TokenSource): Promise<ConcurrencyResult> {
  const lengths = Array.from({ length: s.prompts }, () => source.int(s.promptTokens[0], s.promptTokens[1]));
  const fresh = (): Int32Array[] => lengths.map((n) => source.ids(n));
  const expected = s.prompts * s.newTokens;
  const { value: variants, context } = await withContext(open, s.prompts, s.promptTokens[1] + s.newTokens, source, async (ctx) => {
    const streams = await counted(ctx, () => {
      const t0 = performance.now();
      return Promise.all(fresh().map((p) => streamOne(ctx, p, s.newTokens, t0)));
    });
    const oneCall = await counted(ctx, async () => {
      const results = await ctx.generate(fresh(), benchOptions(s.newTokens));
      return results.map((r): SequenceTimes => ({
        ttftMs: r.timings.ttftMs, itlMs: r.tokens.length > 1 ? [r.timings.decodeMs / (r.tokens.length - 1)] : [], tokens: r.tokens.length,
      }));
    });
    const sequential = await counted(ctx, async () => {
      const out: SequenceTimes[] = [];
      for (const p of fresh()) out.push(await streamOne(ctx, p, s.newTokens, performance.now()));
      return out;
    });
    return [variant('streams', streams, 'events', expected), variant('one-call', oneCall, 'per-sequence mean', expected),
      variant('sequential', sequential, 'events', expected)];
  });
  return {
    context,
    prompts: s.prompts,
    promptTokens: { min: Math.min(...lengths), max: Math.max(...lengths), total: lengths.reduce((a, b) => a + b, 0) },
    newTokens: s.newTokens,
    variants,
  };
}

async function shared(open: Open, s: ScenarioSettings['shared'], source: TokenSource): Promise<SharedResult> {
  const doc = source.ids(s.documentTokens);
  const questions = Array.from({ length: s.questions }, () => source.ids(source.int(s.questionTokens[0], s.questionTokens[1])));
  const maxSeqLen = s.documentTokens + s.questionTokens[1] + s.newTokens;
  const answer = async (ctx: Context, sharing: boolean): Promise<{ run: SharedRun; results: GenerateResult[] }> => {
    const r = await counted(ctx, () => (sharing ? ctx.generate({ input: doc, prompts: questions }, benchOptions(s.newTokens))
      : ctx.generate(questions.map((q) => Int32Array.from([...doc, ...q])), benchOptions(s.newTokens))));
    expectLength(r.value, s.newTokens);
    const generatedTokens = r.value.reduce((a, x) => a + x.tokens.length, 0);
    return { run: { wallMs: r.wallMs, promptTokensComputed: r.computed, promptTokensCached: r.cached, generatedTokens }, results: r.value };
  };
  const { value: withDoc, context } = await withContext(open, s.questions, maxSeqLen, source, (ctx) => answer(ctx, true));
  const noCache: Open = (b, len) => open(b, len, false);
  const { value: whole } = await withContext(noCache, s.questions, maxSeqLen, source, (ctx) => answer(ctx, false));
  const lengths = questions.map((q) => q.length);
  return {
    context, documentTokens: doc.length, questions: s.questions, questionTokens: { min: Math.min(...lengths), max: Math.max(...lengths) },
    newTokens: s.newTokens, shared: withDoc.run, unshared: whole.run, speedup: whole.run.wallMs / withDoc.run.wallMs,
    identicalAnswers: withDoc.results.filter((r, i) => r.tokens.join() === whole.results[i].tokens.join()).length,
  };
}

/** Spins the JS thread for busyMs, then lets the event loop run for freeMs (a timer), until stopped. */
function spinLoop(busyMs: number, freeMs: number): { stop: () => Promise<number> } {
  let running = true;
  let spun = 0;
  const loop = (async (): Promise<void> => {
    while (running) {
      const t = performance.now();
      while (performance.now() - t < busyMs) { /* the CPU work of a busy server */ }
      spun += performance.now() - t;
      await new Promise((r) => setTimeout(r, freeMs));
    }
  })();
  return { stop: async () => { running = false; await loop; return spun; } };
}

async function busy(open: Open, s: ScenarioSettings['busy'], source: TokenSource): Promise<BusyResult> {
  const idle: number[] = [], loaded: number[] = [], fractions: number[] = [];
  let rounds = 1;
  const { context } = await withContext(open, s.batch, s.promptTokens + s.newTokens, source, async (ctx) => {
    // One measurement: `rounds` batches submitted at once, so they queue in the engine and run back to back without
    // the JS thread (admission is native); generated tokens ÷ wall time from the submission to the last result. The
    // busy JS thread can then delay only the last delivery, and `rounds` is chosen (from an idle batch) so that a
    // measurement spans about 20 busy / free periods even where one batch takes a few ms (a fast cpu, a tiny model).
    const batchOf = (): Int32Array[] => Array.from({ length: s.batch }, () => source.ids(s.promptTokens));
    const once = performance.now();
    expectLength(await ctx.generate(batchOf(), benchOptions(s.newTokens)), s.newTokens);
    rounds = Math.max(1, Math.ceil((20 * (s.busyMs + s.freeMs)) / (performance.now() - once)));
    const decodeRate = async (): Promise<number> => {
      const t0 = performance.now();
      const all = await Promise.all(Array.from({ length: rounds }, () => ctx.generate(batchOf(), benchOptions(s.newTokens))));
      for (const results of all) expectLength(results, s.newTokens);
      return (rounds * s.batch * s.newTokens * 1e3) / (performance.now() - t0);
    };
    for (let i = 0; i < s.runs; i++) {
      idle.push(await decodeRate());
      const t0 = performance.now();
      const run = decodeRate(); // submitted before the spinning starts
      const spin = spinLoop(s.busyMs, s.freeMs);
      loaded.push(await run);
      const spun = await spin.stop();
      fractions.push(spun / (performance.now() - t0));
    }
  });
  const idleTokPerSec = median(idle), busyTokPerSec = median(loaded);
  return {
    context, ...s, rounds, idleTokPerSec, busyTokPerSec, ratio: busyTokPerSec / idleTokPerSec, busyFraction: median(fractions),
  };
}

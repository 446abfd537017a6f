// `eet bench --scenarios pid`: "encode once, decode many" (Prompt-in-Decoder, arXiv 2403.13112). One document of D
// tokens and S sub-task prompts, answered three ways, each in a fresh context:
//   independent   decoder-only: S whole prompts (document + sub-task) in one generate() call with prefix caching off:
//                 the document is computed S times and every decode step reads S copies of its KV;
//                 encoder-decoder (t5): S generate({ input: document, prompts: [sub-task] }) calls at once: S encoder
//                 passes, S memories, each decoder reading its own
//   pid           generate({ input, prompts }) with the shared-prefix attention off: the document is prefilled
//                 (encoded) once and its KV blocks (memory) shared, but each sequence still reads them itself
//   pid+shared    the same with shared-prefix attention on (the default): decode steps read the shared blocks (the
//                 memory) once for all S sequences (engine/ops.h shared_attention)
// Printed per (D, S): wall time, input tokens computed (prompt tokens + encoder tokens), decode time per step (pid
// ways), and how many answers equal the independent way's (greedy; they should all). The paper's claim to compare with: the input's computation falls to
// about 1/S of independent requests, and up to 4.6× end to end on its T5 tasks.
import type { Context, ContextOptions } from '../context';
import { InvalidArgumentError } from '../errors';
import type { GenerateResult } from '../model';
import { batchTimes, benchOptions, expectLength } from './grid';
import type { TokenSource } from './random';

export interface PidSettings {
  /** Document lengths D. */
  documentTokens: number[];
  /** Sub-task counts S. */
  subtasks: number[];
  /** Each sub-task prompt's length, drawn from [min, max]. */
  promptTokens: [number, number];
  newTokens: number;
}

export type PidWay = 'independent' | 'pid' | 'pid+shared';

export interface PidRun {
  way: PidWay;
  wallMs: number;
  promptTokensComputed: number;
  /** Encoder-decoder models: tokens the encoder read (stats().encoderTokens); 0 for decoder-only models. */
  encoderTokens: number;
  /** pid ways: the batch's decode time after its last first token ÷ (new tokens − 1), every sequence decoding.
   *  null for independent: its S whole prompts prefill in chunks over many steps while the first ones already
   *  decode, so no stretch of steps decodes all S at once. */
  decodeMsPerStep: number | null;
  /** Decode tokens that took the shared-prefix path (stats().sharedPrefixTokens). */
  sharedPrefixTokens: number;
  /** Encoder-decoder models: cross-attention key reads saved by sharing the memory (stats().memoryKeysSaved). */
  memoryKeysSaved: number;
  /** Answers (greedy) equal to the independent way's. */
  sameAsIndependent: number;
}

export interface PidCase {
  documentTokens: number;
  subtasks: number;
  runs: PidRun[];
  /** independent wall time ÷ pid+shared wall time. */
  speedup: number;
}

export interface PidResult {
  promptTokens: [number, number];
  newTokens: number;
  cases: PidCase[];
}

/** Opens a context for `maxBatch` sequences of `maxSeqLen` positions with these options on top of the bench's. */
export type PidOpen = (maxBatch: number, maxSeqLen: number, more: ContextOptions) => Context;

export function pidDefaults(gpu: boolean): PidSettings {
  return { documentTokens: gpu ? [1000, 4000] : [1000], subtasks: [1, 4, 16, 64], promptTokens: [8, 24], newTokens: gpu ? 16 : 8 };
}

export function pidPositions(s: PidSettings): number {
  return Math.max(...s.documentTokens) + s.promptTokens[1] + s.newTokens;
}

/** Documents longer than the model's positions allow give way (as the shared scenario's does). */
export function fitPid(s: PidSettings, maxSeqLen: number): PidSettings {
  const room = maxSeqLen - s.promptTokens[1] - s.newTokens;
  if (room < 1) throw new InvalidArgumentError(`The model's ${maxSeqLen} positions leave no room for the pid document`);
  return { ...s, documentTokens: [...new Set(s.documentTokens.map((d) => Math.min(d, room)))] };
}

async function way(open: PidOpen, w: PidWay, doc: Int32Array, prompts: Int32Array[], s: PidSettings, warm: Int32Array[],
  encoderDecoder: boolean): Promise<{ run: PidRun; results: GenerateResult[] }> {
  const more: ContextOptions = w === 'independent' ? { prefixCaching: false } : { sharedPrefixAttention: w === 'pid+shared' };
  // An encoder reads its whole input in one step.
  if (encoderDecoder) more.maxStepTokens = Math.max(prompts.length, doc.length);
  const ctx = open(prompts.length, doc.length + s.promptTokens[1] + s.newTokens, more);
  try {
    await ctx.generate(warm, benchOptions(2)); // first-call costs out of the timing (short prompts: nothing cached)
    const before = ctx.stats();
    const t0 = performance.now();
    const opts = benchOptions(s.newTokens);
    let results: GenerateResult[];
    if (w !== 'independent') results = await ctx.generate({ input: doc, prompts }, opts);
    else if (!encoderDecoder) results = await ctx.generate(prompts.map((p) => Int32Array.from([...doc, ...p])), opts);
    else results = (await Promise.all(prompts.map((p) => ctx.generate({ input: doc, prompts: [p] }, opts)))).map((r) => r[0]);
    const wallMs = performance.now() - t0;
    const after = ctx.stats();
    expectLength(results, s.newTokens);
    return {
      run: {
        way: w, wallMs, promptTokensComputed: after.promptTokensComputed - before.promptTokensComputed,
        encoderTokens: after.encoderTokens - before.encoderTokens,
        decodeMsPerStep: w === 'independent' ? null : batchTimes(results).decodeMs / Math.max(1, s.newTokens - 1),
        sharedPrefixTokens: after.sharedPrefixTokens - before.sharedPrefixTokens,
        memoryKeysSaved: after.memoryKeysSaved - before.memoryKeysSaved, sameAsIndependent: 0,
      },
      results,
    };
  } finally {
    await ctx.dispose();
  }
}

export async function pidScenario(open: PidOpen, settings: PidSettings, source: TokenSource, log: (line: string) => void,
  encoderDecoder = false): Promise<PidResult> {
  const cases: PidCase[] = [];
  for (const d of settings.documentTokens) {
    for (const n of settings.subtasks) {
      log(`    pid D=${d} S=${n}`);
      const doc = source.ids(d);
      const prompts = Array.from({ length: n }, () => source.ids(source.int(settings.promptTokens[0], settings.promptTokens[1])));
      const warm = Array.from({ length: n }, () => source.ids(8));
      const ind = await way(open, 'independent', doc, prompts, settings, warm, encoderDecoder);
      const runs = [ind.run];
      for (const w of ['pid', 'pid+shared'] as const) {
        const r = await way(open, w, doc, prompts, settings, warm, encoderDecoder);
        r.run.sameAsIndependent = r.results.filter((x, i) => x.tokens.join() === ind.results[i].tokens.join()).length;
        runs.push(r.run);
      }
      ind.run.sameAsIndependent = n;
      cases.push({ documentTokens: d, subtasks: n, runs, speedup: ind.run.wallMs / runs[2].wallMs });
    }
  }
  return { promptTokens: settings.promptTokens, newTokens: settings.newTokens, cases };
}

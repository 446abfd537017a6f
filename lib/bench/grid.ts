// The bench grid: batch × prompt length × new tokens. Lists are written "1,8,32"; a cell is one combination,
// timed through generate() — the call users make — and set beside the roofline (roofline.ts).
// Per cell (batch B, prompt P, new tokens N): one generate() of B random P-token prompts, greedy, N tokens each
// (ignoreEos: nothing stops early). The engine chunks the prefill as the context's maxStepTokens / prefillChunk
// say, as it does for users. TTFT = from the call until every sequence has its first token; decode = from then
// until the last token, N − 1 steps.
import { InternalError, InvalidArgumentError } from '../errors';
import type { GenerateOptions, GenerateResult, Prompt } from '../model';
import type { TokenSource } from './random';
import { decodeBytes, percent, prefillFlops, type ShapeDims } from './roofline';

export interface GridCell {
  batch: number;
  prompt: number;
  newTokens: number;
}

export interface GridSpec {
  batch: number[];
  prompt: number[];
  newTokens: number[];
}

/** "1,8,32" → [1, 8, 32]: positive integers, duplicates dropped, order kept. */
export function parseList(name: string, text: string, max = 1 << 20): number[] {
  const parts = String(text).split(',').map((p) => p.trim());
  const out: number[] = [];
  for (const p of parts) {
    if (!/^\d+$/.test(p) || Number(p) < 1 || Number(p) > max) {
      throw new InvalidArgumentError(`Expected a comma-separated list of integers between 1 and ${max} for ${name} but received ${JSON.stringify(text)}`);
    }
    if (!out.includes(Number(p))) out.push(Number(p));
  }
  return out;
}

/** Every combination, batch outermost. newTokens counts the token the prefill samples, so it must be ≥ 2. */
export function gridCells(spec: GridSpec): GridCell[] {
  if (spec.newTokens.some((n) => n < 2)) {
    throw new InvalidArgumentError(`Expected new tokens >= 2 (the prefill samples the first, decode steps the rest) but received ${spec.newTokens.join(',')}`);
  }
  const cells: GridCell[] = [];
  for (const batch of spec.batch) {
    for (const prompt of spec.prompt) {
      for (const newTokens of spec.newTokens) cells.push({ batch, prompt, newTokens });
    }
  }
  return cells;
}

/** The context a grid needs: sequences at once, positions per sequence. */
export function gridLimits(cells: readonly GridCell[]): { maxBatch: number; maxContext: number } {
  return {
    maxBatch: Math.max(...cells.map((c) => c.batch)),
    maxContext: Math.max(...cells.map((c) => c.prompt + c.newTokens)),
  };
}

/** What the bench needs of a Model or a Context: the generate() users call. */
export interface Generator {
  generate(prompts: readonly Prompt[], options?: GenerateOptions): Promise<GenerateResult[]>;
}

/** The options of every timed call: greedy, and every sequence runs its full length. */
export function benchOptions(maxNewTokens: number): GenerateOptions {
  return { maxNewTokens, temperature: 0, ignoreEos: true, seed: 0 };
}

/** The batch's times from its results' own (taken as the events reached JS): every first token, then the last token. */
export function batchTimes(results: readonly GenerateResult[]): { ttftMs: number; decodeMs: number } {
  const ttftMs = Math.max(...results.map((r) => r.timings.ttftMs));
  const endMs = Math.max(...results.map((r) => r.timings.ttftMs + r.timings.decodeMs));
  return { ttftMs, decodeMs: endMs - ttftMs };
}

/** Throws unless every result generated `n` tokens (a shorter one would make the rates lie). */
export function expectLength(results: readonly GenerateResult[], n: number): void {
  const short = results.find((r) => r.tokens.length !== n);
  if (short) throw new InternalError(`eet bench: a sequence generated ${short.tokens.length} of ${n} tokens (finish: ${short.finishReason})`);
}

export interface CellRun {
  prompts: Int32Array[];
  /** Each sequence's generated tokens. */
  tokens: number[][];
  ttftMs: number;
  decodeMs: number;
}

/** One timed run of a cell with fresh prompts from `source`. */
export async function runCell(gen: Generator, cell: GridCell, source: TokenSource): Promise<CellRun> {
  const prompts = Array.from({ length: cell.batch }, () => source.ids(cell.prompt));
  const results = await gen.generate(prompts, benchOptions(cell.newTokens));
  expectLength(results, cell.newTokens);
  return { prompts, tokens: results.map((r) => r.tokens), ...batchTimes(results) };
}

export interface CellResult extends GridCell {
  ttftMs: number;
  prefillTokPerSec: number;
  prefillTflops: number;
  prefillPeakPct: number | null;
  decodeMsPerStep: number;
  decodeTokPerSec: number;
  decodeGBps: number;
  decodeRooflinePct: number | null;
}

/** A cell's rates from its (median) times: FLOPs and bytes from the shape (roofline.ts), peaks from the device. */
export function cellResult(c: GridCell, ttftMs: number, decodeMs: number, roof: {
  dims: ShapeDims; dtypeBytes: number; peakFlops: number | null; bytesPerSecond: number;
}): CellResult {
  const steps = c.newTokens - 1;
  const prefillFlopsPerSec = prefillFlops(roof.dims, c.batch, c.prompt) / (ttftMs / 1e3);
  const decodeBytesPerSec = decodeBytes(roof.dims, roof.dtypeBytes, c.batch, c.prompt, steps) / (decodeMs / 1e3);
  return {
    ...c,
    ttftMs,
    prefillTokPerSec: (c.batch * c.prompt) / (ttftMs / 1e3),
    prefillTflops: prefillFlopsPerSec / 1e12,
    prefillPeakPct: percent(prefillFlopsPerSec, roof.peakFlops),
    decodeMsPerStep: decodeMs / steps,
    decodeTokPerSec: (c.batch * steps) / (decodeMs / 1e3),
    decodeGBps: decodeBytesPerSec / 1e9,
    decodeRooflinePct: percent(decodeBytesPerSec, roof.bytesPerSecond),
  };
}

// The bench grid: batch × prompt length × new tokens. Lists are written "1,8,32"; a cell is one combination.
import { InvalidArgumentError } from '../errors';

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

/** The model limits a grid needs: sequences at once, context per sequence. */
export function gridLimits(cells: readonly GridCell[]): { maxBatch: number; maxContext: number } {
  return {
    maxBatch: Math.max(...cells.map((c) => c.batch)),
    maxContext: Math.max(...cells.map((c) => c.prompt + c.newTokens)),
  };
}

/**
 * Splits a prefill of `batch` prompts of `prompt` tokens into steps of at most `maxStepTokens` tokens:
 * each step is a list of [sequence index, tokens] taken in order (a long prompt spans several steps).
 */
export function prefillChunks(batch: number, prompt: number, maxStepTokens: number): Array<Array<[number, number]>> {
  const steps: Array<Array<[number, number]>> = [];
  let cur: Array<[number, number]> = [];
  let room = maxStepTokens;
  for (let seq = 0; seq < batch; seq++) {
    let left = prompt;
    while (left > 0) {
      const n = Math.min(left, room);
      cur.push([seq, n]);
      left -= n;
      room -= n;
      if (room === 0) {
        steps.push(cur);
        cur = [];
        room = maxStepTokens;
      }
    }
  }
  if (cur.length) steps.push(cur);
  return steps;
}

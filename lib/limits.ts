// The engine's bounds (engine/limits.h), read from the addon once: TypeScript validation uses the same numbers
// as the native checks, so a value accepted here is never rejected by C++ with another message.
import { AddonLimits, binding } from './binding';
import { InvalidArgumentError, UnsupportedError } from './errors';

let cached: AddonLimits | undefined;

export function limits(): AddonLimits {
  cached ??= Object.freeze(binding().limits());
  return cached;
}

/** The config fields the engine bounds, with the limit each must respect. */
const CONFIG_LIMITS: ReadonlyArray<[field: string, max: (l: AddonLimits) => number, min?: (l: AddonLimits) => number]> = [
  ['dim', (l) => l.maxDim],
  ['hiddenDim', (l) => l.maxHiddenDim],
  ['nLayers', (l) => l.maxLayers],
  ['nHeads', (l) => l.maxHeads],
  ['nKvHeads', (l) => l.maxHeads],
  ['headDim', (l) => l.maxHeadDim, (l) => l.minHeadDim],
  ['vocabSize', (l) => l.maxVocab],
  ['maxSeqLen', (l) => l.maxSeqLen],
  ['nTokenTypes', (l) => l.maxTokenTypes],
];

/**
 * Checks a model file's config against the engine's bounds before anything is built from it (a hostile header's
 * layer count must not drive an allocation). Throws UnsupportedError naming the field, its value and the bound.
 */
export function checkConfigLimits(file: string, config: Readonly<Record<string, unknown>>): void {
  const l = limits();
  for (const [field, max, min] of CONFIG_LIMITS) {
    const v = config[field];
    if (typeof v !== 'number') continue;
    const lo = min?.(l) ?? 1, hi = max(l);
    if (v < lo || v > hi) {
      throw new UnsupportedError(`${file}: ${field} is ${v}; the engine supports ${lo} to ${hi}`);
    }
  }
}

/**
 * Characters of prompt text per token of context, at most: text longer than maxSeqLen × this cannot fit the context
 * unless its average token were longer than this (the longest pieces of common vocabularies — runs of spaces or of
 * '=' in code vocabularies — are shorter), so it is refused before it is encoded, in O(1), instead of spending the
 * JS thread on encoding a megabyte only to refuse the tokens. (Normalizers that delete most of a text — control
 * characters — are the exception this bound accepts.)
 */
export const PROMPT_CHARS_PER_TOKEN = 64;

/** Refuses text that cannot fit `maxTokens` tokens (PROMPT_CHARS_PER_TOKEN), naming the parameter and the length. */
export function checkTextLength(name: string, text: string, maxTokens: number): void {
  const max = maxTokens * PROMPT_CHARS_PER_TOKEN;
  if (text.length > max) {
    throw new InvalidArgumentError(`Expected at most ${max} characters (${maxTokens} tokens of context × ${PROMPT_CHARS_PER_TOKEN}) ` +
      `for ${name} but received a string of ${text.length} characters`);
  }
}

// The engine's bounds (engine/limits.h), read from the addon once: TypeScript validation uses the same numbers
// as the native checks, so a value accepted here is never rejected by C++ with another message.
import { AddonLimits, binding } from './binding';
import { UnsupportedError } from './errors';

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

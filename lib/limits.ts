// The engine's bounds (engine/limits.h), read from the addon once: TypeScript validation uses the same numbers
// as the native checks, so a value accepted here is never rejected by C++ with another message.
import { AddonLimits, binding } from './binding';

let cached: AddonLimits | undefined;

export function limits(): AddonLimits {
  cached ??= Object.freeze(binding().limits());
  return cached;
}

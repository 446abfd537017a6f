// One validation vocabulary (sharp's lib/is): predicates plus one message format,
//   Expected positive integer for maxNewTokens but received -1 of type number
// Type mistakes and range mistakes both raise InvalidArgumentError (code ERR_INVALID_ARG).
import { InvalidArgumentError } from './errors';

export function describe(value: unknown): string {
  if (value === null) return 'null';
  if (value === undefined) return 'undefined';
  if (typeof value === 'string') return `${JSON.stringify(value.length > 60 ? value.slice(0, 60) + '…' : value)} of type string`;
  if (typeof value === 'object') return `a value of type ${Array.isArray(value) ? 'array' : (value.constructor?.name ?? 'object')}`;
  return `${String(value)} of type ${typeof value}`;
}

export function invalid(name: string, expected: string, value: unknown): InvalidArgumentError {
  return new InvalidArgumentError(`Expected ${expected} for ${name} but received ${describe(value)}`);
}

export const is = {
  defined: (v: unknown): boolean => v !== undefined && v !== null,
  integer: (v: unknown): v is number => Number.isInteger(v),
  number: (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v),
  string: (v: unknown): v is string => typeof v === 'string',
  bool: (v: unknown): v is boolean => typeof v === 'boolean',
  inRange: (v: number, lo: number, hi: number): boolean => v >= lo && v <= hi,
  /** An object literal, or one made with Object.create(null) (a dictionary without a prototype). */
  plainObject: (v: unknown): v is Record<string, unknown> => {
    if (typeof v !== 'object' || v === null || Array.isArray(v)) return false;
    const proto = Object.getPrototypeOf(v);
    return proto === Object.prototype || proto === null;
  },
};

export function integerIn(name: string, v: unknown, lo: number, hi: number): number {
  if (!is.integer(v) || !is.inRange(v, lo, hi)) {
    const what = lo === 1 && hi === Number.MAX_SAFE_INTEGER ? 'positive integer'
      : lo === 0 && hi === Number.MAX_SAFE_INTEGER ? 'non-negative integer'
      : `integer between ${lo} and ${hi}`;
    throw invalid(name, what, v);
  }
  return v;
}

export function numberIn(name: string, v: unknown, lo: number, hi: number): number {
  if (!is.number(v) || !is.inRange(v, lo, hi)) throw invalid(name, `number between ${lo} and ${hi}`, v);
  return v;
}

export function oneOf<T extends string>(name: string, v: unknown, options: readonly T[]): T {
  if (!is.string(v) || !(options as readonly string[]).includes(v)) {
    throw invalid(name, `one of ${options.map((o) => `'${o}'`).join(', ')}`, v);
  }
  return v as T;
}

/**
 * The option names an options object may have, as a record over its type's keys so that the compiler keeps the
 * list and the interface in step (a missing or extra name is a type error).
 */
export type OptionKeys<T> = Readonly<Record<keyof Required<T>, true>>;

/**
 * An options object (undefined = {}). With `known`, a key outside it is an error naming the closest known one: a
 * misspelled option (`temprature`) silently ignored would be a wrong result without a message.
 */
export function optionsObject(name: string, v: unknown, known?: OptionKeys<object> | Readonly<Record<string, true>>): Record<string, unknown> {
  if (v === undefined) return {};
  if (!is.plainObject(v)) throw invalid(name, 'plain object', v);
  if (known) {
    for (const key of Object.keys(v)) {
      if (Object.prototype.hasOwnProperty.call(known, key)) continue;
      const near = closest(key, Object.keys(known));
      throw new InvalidArgumentError(`Unknown option ${JSON.stringify(key)} in ${name}${near ? `; did you mean ${JSON.stringify(near)}?` : ''} ` +
        `(known: ${Object.keys(known).join(', ')})`);
    }
  }
  return v;
}

/** The known name nearest to `key` by edit distance (case-insensitive), when near enough to be a likely typo. */
function closest(key: string, names: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestD = Infinity;
  for (const n of names) {
    const d = editDistance(key.toLowerCase(), n.toLowerCase());
    if (d < bestD) [best, bestD] = [n, d];
  }
  return bestD <= Math.max(2, Math.floor(key.length / 3)) ? best : undefined;
}

/** Levenshtein distance; option names are short, and keys past 64 characters are no typo of one. */
function editDistance(a: string, b: string): number {
  if (a.length > 64 || b.length > 64) return Infinity;
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) cur[j] = Math.min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
    prev = cur;
  }
  return prev[b.length];
}

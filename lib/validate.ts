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
  plainObject: (v: unknown): v is Record<string, unknown> =>
    typeof v === 'object' && v !== null && !Array.isArray(v) && Object.getPrototypeOf(v) === Object.prototype,
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

export function optionsObject(name: string, v: unknown): Record<string, unknown> {
  if (v === undefined) return {};
  if (!is.plainObject(v)) throw invalid(name, 'plain object', v);
  return v;
}

// Tensor handles: a shape and a dtype over a native buffer on one device. Reads are async (the copy runs off
// the JS thread); dispose() frees device memory now, the GC frees it otherwise.
import { AddonArray, AddonDTypeCode, AddonTensor, binding } from './binding';
import { DisposedError } from './errors';
import { toHalfBits } from './half';
import { describe, integerIn, invalid, optionsObject, oneOf, type OptionKeys } from './validate';
import { parseDevice } from './devices';

export type DType = 'float32' | 'float16' | 'bfloat16' | 'int32' | 'int8';
/** 'cpu-ref': the cpu's plain reference ops (slow; what the fast cpu kernels are checked against). */
export type Device = 'cpu' | 'cpu-ref' | 'emu' | 'cuda' | `cuda:${number}`;
export const DTYPES: readonly DType[] = ['float32', 'float16', 'bfloat16', 'int32', 'int8'];

export const dtypeCode: Record<DType, AddonDTypeCode> = { float32: 0, float16: 1, bfloat16: 2, int32: 3, int8: 4 };
export const dtypeBytes: Record<DType, number> = { float32: 4, float16: 2, bfloat16: 2, int32: 4, int8: 1 };

/** What toArray() returns for each dtype: float16/bfloat16 come back as their raw bits. */
export type ArrayFor<D extends DType> = D extends 'float32' ? Float32Array
  : D extends 'int32' ? Int32Array : D extends 'int8' ? Int8Array : Uint16Array;

const native = Symbol('native');

export class Tensor {
  readonly shape: readonly number[];
  readonly dtype: DType;
  readonly device: Device;
  [native]: AddonTensor | null;

  /** @internal use tensor() */
  constructor(handle: AddonTensor, shape: readonly number[], dtype: DType, device: Device) {
    this[native] = handle;
    this.shape = Object.freeze([...shape]);
    this.dtype = dtype;
    this.device = device;
  }

  get size(): number { return this.shape.reduce((a, b) => a * b, 1); }
  get disposed(): boolean { return this[native] === null; }

  /** The contents, copied to the host (float16/bfloat16 as Uint16Array bit patterns). */
  async toArray(): Promise<AddonArray> { return this.handle().read(); }

  /** A copy of this tensor on another device. */
  to(device: Device): Tensor {
    const d = parseDevice(device);
    return new Tensor(this.handle().toDeviceSync(d), this.shape, this.dtype, d);
  }

  dispose(): void {
    this[native]?.dispose();
    this[native] = null;
  }
  [Symbol.dispose](): void { this.dispose(); }

  /** @internal */
  handle(): AddonTensor {
    const h = this[native];
    if (!h) throw new DisposedError('The tensor was disposed');
    return h;
  }
}

export interface TensorOptions {
  dtype?: DType;
  device?: Device;
}

const TENSOR_OPTION_KEYS: OptionKeys<TensorOptions> = { dtype: true, device: true };
const EMPTY_OPTION_KEYS: OptionKeys<TensorOptions & { fill?: unknown }> = { ...TENSOR_OPTION_KEYS, fill: true };

function arrayKind(x: unknown): string {
  return ArrayBuffer.isView(x) ? Object.prototype.toString.call(x).slice(8, -1) : '';
}

/** Most dimensions of a tensor (tensor() and empty() alike). */
const MAX_DIMS = 8;

/** A shape: up to MAX_DIMS integers in [0, 2^31), whose product (returned) is a safe integer. */
function checkDims(shape: unknown): number {
  if (!Array.isArray(shape) || shape.length > MAX_DIMS) throw invalid('shape', `array of up to ${MAX_DIMS} non-negative integers`, shape);
  shape.forEach((d, i) => integerIn(`shape[${i}]`, d, 0, 2 ** 31 - 1));
  const n = shape.reduce((a: number, b: number) => a * b, 1);
  if (!Number.isSafeInteger(n)) throw invalid('shape', 'dimensions whose product is at most 2^53 - 1', `[${shape.join(', ')}]`);
  return n;
}

function checkShape(shape: unknown, size: number): number[] {
  const n = checkDims(shape);
  if (n !== size) throw invalid('shape', `dimensions whose product is ${size} (the data length)`, `[${(shape as number[]).join(', ')}]`);
  return shape as number[];
}

/**
 * Creates a tensor from a typed array: Float32Array (stored as float32, or rounded to float16/bfloat16 when
 * `dtype` says so), Uint16Array (raw float16 or bfloat16 bits; `dtype` required), Int32Array, Int8Array.
 */
export function tensor(data: Float32Array | Uint16Array | Int32Array | Int8Array, shape: readonly number[], options?: TensorOptions): Tensor {
  const opts = optionsObject('options', options, TENSOR_OPTION_KEYS);
  const device = parseDevice(opts.device ?? 'cpu');
  let dtype: DType;
  let payload: AddonArray;
  const kind = arrayKind(data); // by tag, not instanceof: arrays may come from another realm (vm, jest, workers)
  if (kind === 'Float32Array') {
    dtype = opts.dtype === undefined ? 'float32' : oneOf('dtype', opts.dtype, ['float32', 'float16', 'bfloat16'] as const);
    payload = dtype === 'float32' ? (data as Float32Array) : toHalfBits(data as Float32Array, dtype as 'float16' | 'bfloat16');
  } else if (kind === 'Uint16Array') {
    dtype = oneOf('dtype', opts.dtype, ['float16', 'bfloat16'] as const);
    payload = data as Uint16Array;
  } else if (kind === 'Int32Array') {
    dtype = opts.dtype === undefined ? 'int32' : oneOf('dtype', opts.dtype, ['int32'] as const);
    payload = data as Int32Array;
  } else if (kind === 'Int8Array') {
    dtype = opts.dtype === undefined ? 'int8' : oneOf('dtype', opts.dtype, ['int8'] as const);
    payload = data as Int8Array;
  } else {
    throw invalid('data', 'Float32Array, Uint16Array, Int32Array or Int8Array', data);
  }
  const dims = checkShape(shape, data.length);
  const { AddonTensor: Ctor } = binding();
  return new Tensor(new Ctor(device, dtypeCode[dtype], data.length, payload), dims, dtype, device);
}

/** An uninitialised-looking tensor: 'poison' fills it with NaN bytes (0xFF), 'zero' with zeros. */
export function empty(shape: readonly number[], options: TensorOptions & { fill?: 'poison' | 'zero' } = {}): Tensor {
  const opts = optionsObject('options', options, EMPTY_OPTION_KEYS);
  const dtype = oneOf('dtype', opts.dtype ?? 'float32', DTYPES);
  const device = parseDevice(opts.device ?? 'cpu');
  const fill = opts.fill === undefined ? 'zero' : oneOf('fill', opts.fill, ['poison', 'zero'] as const);
  const n = checkDims(shape);
  const { AddonTensor: Ctor } = binding();
  return new Tensor(new Ctor(device, dtypeCode[dtype], n, null, fill), shape, dtype, device);
}

export { describe };

// GGUF v3 writer (tests, `eet convert`): metadata of every value type, tensors F32/F16/BF16/Q8_0, alignment padding
// (after the tensor infos and after each tensor, so every tensor starts at a multiple of the alignment).
//
// Q8_0 (ggml's reference rule): blocks of 32 consecutive values along the innermost dimension; per block
// d = max|x| / 127 (float32), stored as float16, then the 32 values q = round(x / d) as int8, rounding halves away
// from zero (q = 0 when d = 0). Block layout: f16 d, int8 q[32] — 34 bytes.
import * as fs from 'fs';
import { InvalidArgumentError } from '../errors';
import { f16BitsToF32, f32ToF16Bits } from '../half';
import {
  GGML_TYPES, GGUF_DEFAULT_ALIGNMENT, GGUF_TYPED_ARRAYS, GGUF_VALUE_TYPES,
  type GGMLType, type GGUFBigIntType, type GGUFNumberType, type GGUFValue, type GGUFValueType,
} from './gguf';
import { tensorBytes } from './safetensors-writer';

export interface GGUFWriterTensor {
  name: string;
  type: GGMLType;
  /** Outermost first (written reversed, innermost first, as ggml dims). */
  shape: number[];
  /** Float values (row-major), converted (or quantized) to `type`. */
  data?: ArrayLike<number>;
  /** The exact bytes to store instead of `data`. */
  raw?: Uint8Array;
}

export interface GGUFWriteOptions {
  /** Written in iteration order. */
  metadata?: Iterable<[string, GGUFValue]>;
  tensors?: GGUFWriterTensor[];
  /** Alignment to lay out with; written as general.alignment (uint32) when not 32 and not already in metadata. */
  alignment?: number;
}

/** Metadata value constructors: gv.u32(5), gv.str('llama'), gv.arr('float32', [1, 2]), ... */
export const gv = {
  u8: (value: number): GGUFValue => ({ type: 'uint8', value }),
  i8: (value: number): GGUFValue => ({ type: 'int8', value }),
  u16: (value: number): GGUFValue => ({ type: 'uint16', value }),
  i16: (value: number): GGUFValue => ({ type: 'int16', value }),
  u32: (value: number): GGUFValue => ({ type: 'uint32', value }),
  i32: (value: number): GGUFValue => ({ type: 'int32', value }),
  f32: (value: number): GGUFValue => ({ type: 'float32', value }),
  f64: (value: number): GGUFValue => ({ type: 'float64', value }),
  u64: (value: bigint | number): GGUFValue => ({ type: 'uint64', value: BigInt(value) }),
  i64: (value: bigint | number): GGUFValue => ({ type: 'int64', value: BigInt(value) }),
  bool: (value: boolean): GGUFValue => ({ type: 'bool', value }),
  str: (value: string): GGUFValue => ({ type: 'string', value }),
  /** Numbers (or bigints for 64-bit types) are converted to the typed array of `itemType`. */
  arr: (itemType: GGUFValueType, values: ArrayLike<unknown>): GGUFValue => {
    if (itemType === 'bool' || itemType === 'string' || itemType === 'array') {
      return { type: 'array', itemType, value: Array.from(values) as boolean[] | string[] | GGUFValue[] };
    }
    const T = GGUF_TYPED_ARRAYS[itemType] as unknown as { from(v: ArrayLike<unknown>): GGUFValue['value'] };
    return { type: 'array', itemType, value: T.from(values) } as GGUFValue;
  },
};

// Bound once: under jest (a vm context) each global `Math` lookup in a hot loop is far slower than a module binding.
const { abs, floor, fround } = Math;

/** Q8_0-quantizes values whose count is a multiple of 32 (blocks along the innermost dimension). */
export function quantizeQ8_0(x: ArrayLike<number>): Uint8Array {
  if (x.length % 32 !== 0) throw new InvalidArgumentError(`Q8_0 needs a multiple of 32 values, got ${x.length}`);
  const out = new Uint8Array((x.length / 32) * 34);
  const dv = new DataView(out.buffer);
  for (let b = 0; b < x.length / 32; b++) {
    let amax = 0;
    for (let i = 0; i < 32; i++) { const a = abs(fround(x[b * 32 + i])); if (a > amax) amax = a; }
    const d = fround(amax / 127);
    dv.setUint16(b * 34, f32ToF16Bits(d), true);
    for (let i = 0; i < 32; i++) {
      const v = d === 0 ? 0 : fround(fround(x[b * 32 + i]) / d);
      const q = v < 0 ? -floor(-v + 0.5) : floor(v + 0.5);
      dv.setInt8(b * 34 + 2 + i, q > 127 ? 127 : q < -127 ? -127 : q);
    }
  }
  return out;
}

/** The values a Q8_0 tensor stands for: f16 scale × int8. */
export function dequantizeQ8_0(bytes: Uint8Array, count: number): Float32Array {
  const out = new Float32Array(count);
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  for (let b = 0; b < count / 32; b++) {
    const d = f16BitsToF32(dv.getUint16(b * 34, true));
    for (let i = 0; i < 32; i++) out[b * 32 + i] = d * dv.getInt8(b * 34 + 2 + i);
  }
  return out;
}

/** Growable little-endian byte sink. */
class Sink {
  private parts: Uint8Array[] = [];
  length = 0;
  bytes(b: Uint8Array): void { this.parts.push(b); this.length += b.byteLength; }
  private fixed(n: number, write: (b: Buffer) => void): void { const b = Buffer.alloc(n); write(b); this.bytes(b); }
  u32(v: number): void { this.fixed(4, (b) => b.writeUInt32LE(v)); }
  u64(v: bigint | number): void { this.fixed(8, (b) => b.writeBigUInt64LE(BigInt(v))); }
  string(s: string): void { const b = Buffer.from(s, 'utf8'); this.u64(b.length); this.bytes(b); }
  pad(alignment: number): void { this.bytes(new Uint8Array((alignment - (this.length % alignment)) % alignment)); }
  concat(): Buffer { return Buffer.concat(this.parts, this.length); }
}

function typeId(t: GGUFValueType): number {
  const id = GGUF_VALUE_TYPES.indexOf(t);
  if (id < 0) throw new InvalidArgumentError(`Unknown GGUF value type ${String(t)}`);
  return id;
}

function writeScalar(s: Sink, type: GGUFNumberType | GGUFBigIntType | 'bool', v: unknown): void {
  const n = v as number;
  switch (type) {
    case 'uint8': s.bytes(Uint8Array.of(n)); break;
    case 'int8': s.bytes(new Uint8Array(Int8Array.of(n).buffer)); break;
    case 'bool': s.bytes(Uint8Array.of(v ? 1 : 0)); break;
    default: s.bytes(new Uint8Array(GGUF_TYPED_ARRAYS[type].of(v as never).buffer));
  }
}

function writeValue(s: Sink, v: GGUFValue, key: string): void {
  if (v.type === 'string') return s.string(v.value);
  if (v.type !== 'array') return writeScalar(s, v.type, v.value);
  s.u32(typeId(v.itemType));
  s.u64(v.value.length);
  const it = v.itemType;
  if (it === 'string') for (const x of v.value as string[]) s.string(x);
  else if (it === 'array') for (const x of v.value as GGUFValue[]) {
    if (x.type !== 'array') throw new InvalidArgumentError(`Metadata "${key}": an array of arrays holds a ${x.type}`);
    writeValue(s, x, key);
  }
  else if (it === 'bool') s.bytes(Uint8Array.from(v.value as boolean[], (b) => (b ? 1 : 0)));
  else {
    const T = GGUF_TYPED_ARRAYS[it];
    const arr = v.value instanceof T ? v.value : (T as unknown as { from(x: unknown): GGUFValue['value'] }).from(v.value);
    const a = arr as ArrayBufferView;
    s.bytes(new Uint8Array(a.buffer, a.byteOffset, a.byteLength).slice());
  }
}

/** The bytes of a tensor in its GGML type. */
function ggmlBytes(t: GGUFWriterTensor): Uint8Array {
  const numel = t.shape.reduce((a, b) => a * b, 1);
  const expected = tensorByteLength(t);
  let b: Uint8Array;
  if (t.raw || t.type !== 'Q8_0') b = tensorBytes({ name: t.name, dtype: t.type, shape: t.shape, data: t.data, raw: t.raw });
  else {
    if (!t.data || t.data.length !== numel) throw new InvalidArgumentError(`Tensor "${t.name}" needs ${numel} values`);
    b = quantizeQ8_0(t.data);
  }
  if (b.byteLength !== expected) throw new InvalidArgumentError(`Tensor "${t.name}" has ${b.byteLength} bytes, expected ${expected}`);
  return b;
}

/** A tensor of a streamed file: its bytes in its GGML type are asked for once, when it is written. */
export interface GGUFLazyTensor {
  name: string;
  type: GGMLType;
  /** Outermost first. */
  shape: number[];
  bytes: () => Uint8Array;
}

function tensorByteLength(t: { name: string; type: GGMLType; shape: number[] }): number {
  const numel = t.shape.reduce((a, b) => a * b, 1);
  const { blockSize, blockBytes } = GGML_TYPES[t.type];
  if (blockSize > 1 && (t.shape[t.shape.length - 1] ?? 1) % blockSize !== 0) {
    throw new InvalidArgumentError(`Tensor "${t.name}": ${t.type} needs the innermost dimension to be a multiple of ${blockSize}`);
  }
  return (numel / blockSize) * blockBytes;
}

/** Header, metadata and tensor table (padded to the alignment), and the alignment the data then follows. */
function encodeHeader(metadataIn: Iterable<[string, GGUFValue]> | undefined, tensors: ReadonlyArray<{ name: string; type: GGMLType; shape: number[] }>,
  sizes: readonly number[], alignmentIn: number | undefined): { header: Buffer; alignment: number } {
  const metadata = new Map<string, GGUFValue>();
  for (const [k, v] of metadataIn ?? []) {
    if (metadata.has(k)) throw new InvalidArgumentError(`Duplicate metadata key "${k}"`);
    metadata.set(k, v);
  }
  let alignment = alignmentIn ?? GGUF_DEFAULT_ALIGNMENT;
  const al = metadata.get('general.alignment');
  if (al && al.type === 'uint32') alignment = al.value;
  else if (!al && alignment !== GGUF_DEFAULT_ALIGNMENT) metadata.set('general.alignment', gv.u32(alignment));
  const s = new Sink();
  s.bytes(Buffer.from('GGUF', 'latin1'));
  s.u32(3);
  s.u64(tensors.length);
  s.u64(metadata.size);
  for (const [k, v] of metadata) {
    s.string(k);
    s.u32(typeId(v.type));
    writeValue(s, v, k);
  }
  let at = 0;
  tensors.forEach((t, i) => {
    s.string(t.name);
    s.u32(t.shape.length);
    for (const d of t.shape.slice().reverse()) s.u64(d);
    s.u32(GGML_TYPES[t.type].id);
    s.u64(at);
    at += Math.ceil(sizes[i] / alignment) * alignment;
  });
  s.pad(alignment);
  return { header: s.concat(), alignment };
}

/** Encodes a GGUF v3 file. */
export function encodeGGUF(opts: GGUFWriteOptions): Buffer {
  const tensors = opts.tensors ?? [];
  const blobs = tensors.map(ggmlBytes);
  const { header, alignment } = encodeHeader(opts.metadata, tensors, blobs.map((b) => b.byteLength), opts.alignment);
  const s = new Sink();
  s.bytes(header);
  for (const b of blobs) {
    s.bytes(b);
    s.pad(alignment);
  }
  return s.concat();
}

export async function writeGGUF(file: string, opts: GGUFWriteOptions): Promise<void> {
  await fs.promises.writeFile(file, encodeGGUF(opts));
}

/**
 * Writes a GGUF v3 file tensor by tensor (the same bytes encodeGGUF would make): only one tensor's bytes are in
 * memory at a time, for files larger than memory allows to build whole (benchmark models of a few GB).
 */
export async function writeGGUFStreaming(file: string, opts: { metadata?: Iterable<[string, GGUFValue]>; tensors: GGUFLazyTensor[]; alignment?: number }): Promise<void> {
  const sizes = opts.tensors.map(tensorByteLength);
  const { header, alignment } = encodeHeader(opts.metadata, opts.tensors, sizes, opts.alignment);
  const fh = await fs.promises.open(file, 'w');
  try {
    await fh.write(header);
    for (const [i, t] of opts.tensors.entries()) {
      const b = t.bytes();
      if (b.byteLength !== sizes[i]) throw new InvalidArgumentError(`Tensor "${t.name}" has ${b.byteLength} bytes, expected ${sizes[i]}`);
      await fh.write(b);
      const pad = (alignment - (b.byteLength % alignment)) % alignment;
      if (pad) await fh.write(new Uint8Array(pad));
    }
  } finally {
    await fh.close();
  }
}

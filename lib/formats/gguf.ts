// GGUF (v2 and v3, little-endian): metadata, tensor infos and alignment. Only the header is read, through a
// bounded buffered reader; tensor bytes are read natively from the absolute offsets returned.
//
// File: magic "GGUF", u32 version, u64 tensor_count, u64 kv_count; kv_count × (string key, u32 value type, value);
// tensor_count × (string name, u32 n_dims, n_dims × u64 dims (innermost first), u32 ggml type, u64 offset);
// padding to `general.alignment` (u32, default 32); the data section, each tensor at its offset (relative to the
// data section, a multiple of the alignment). Strings are u64 length + UTF-8 bytes; arrays are u32 item type +
// u64 count + items (nested arrays allowed, up to a depth bound).
//
// Every count, length and offset is checked against the bytes left in the file BEFORE anything is allocated or
// read (the llama.cpp GGUF CVEs were unchecked size arithmetic); u64 fields are read as BigInt.
import * as fs from 'fs';
import type { AddonFileSource } from '../binding';
import { ModelFormatError, UnsupportedError } from '../errors';
import { openRegularFile, throwIfAborted } from '../loaders/files';

export const GGUF_MAGIC = 'GGUF';
export const GGUF_DEFAULT_ALIGNMENT = 32;
export const GGUF_LIMITS = {
  tensors: 2 ** 20,
  kv: 2 ** 20,
  /** One string (key, value or tensor name); a whole tokenizer.json embedded as a string fits. */
  stringBytes: 64 * 2 ** 20,
  arrayItems: 2 ** 28,
  arrayDepth: 8,
  /** llama.cpp's GGML_MAX_NAME (64) counts the terminating NUL. */
  tensorNameBytes: 63,
  dims: 4,
} as const;

export const GGUF_VALUE_TYPES = [
  'uint8', 'int8', 'uint16', 'int16', 'uint32', 'int32', 'float32', 'bool', 'string', 'array', 'uint64', 'int64', 'float64',
] as const;
export type GGUFValueType = (typeof GGUF_VALUE_TYPES)[number];
export type GGUFNumberType = 'uint8' | 'int8' | 'uint16' | 'int16' | 'uint32' | 'int32' | 'float32' | 'float64';
export type GGUFBigIntType = 'uint64' | 'int64';
export type GGUFNumberArray =
  | Uint8Array | Int8Array | Uint16Array | Int16Array | Uint32Array | Int32Array | Float32Array | Float64Array
  | BigUint64Array | BigInt64Array;
/**
 * A metadata value with its exact GGUF type. Arrays of numbers are typed arrays (bigint ones for 64-bit integers),
 * arrays of bools/strings are JS arrays, arrays of arrays hold `{ type: 'array' }` values.
 */
export type GGUFValue =
  | { type: GGUFNumberType; value: number }
  | { type: GGUFBigIntType; value: bigint }
  | { type: 'bool'; value: boolean }
  | { type: 'string'; value: string }
  | { type: 'array'; itemType: GGUFValueType; value: GGUFNumberArray | boolean[] | string[] | GGUFValue[] };

/** Bytes per item for fixed-size types; the least an item can take for string (length) and array (type + count). */
export const GGUF_ITEM_BYTES: Readonly<Record<GGUFValueType, number>> = {
  uint8: 1, int8: 1, uint16: 2, int16: 2, uint32: 4, int32: 4, float32: 4, bool: 1, string: 8, array: 12,
  uint64: 8, int64: 8, float64: 8,
};
export const GGUF_TYPED_ARRAYS = {
  uint8: Uint8Array, int8: Int8Array, uint16: Uint16Array, int16: Int16Array, uint32: Uint32Array, int32: Int32Array,
  float32: Float32Array, float64: Float64Array, uint64: BigUint64Array, int64: BigInt64Array,
} as const;

/** ggml tensor types by id (ggml.h), for messages; the loadable ones are in GGML_TYPES. */
const GGML_TYPE_NAMES: Readonly<Record<number, string>> = {
  0: 'F32', 1: 'F16', 2: 'Q4_0', 3: 'Q4_1', 6: 'Q5_0', 7: 'Q5_1', 8: 'Q8_0', 9: 'Q8_1', 10: 'Q2_K', 11: 'Q3_K',
  12: 'Q4_K', 13: 'Q5_K', 14: 'Q6_K', 15: 'Q8_K', 16: 'IQ2_XXS', 17: 'IQ2_XS', 18: 'IQ3_XXS', 19: 'IQ1_S',
  20: 'IQ4_NL', 21: 'IQ3_S', 22: 'IQ2_S', 23: 'IQ4_XS', 24: 'I8', 25: 'I16', 26: 'I32', 27: 'I64', 28: 'F64',
  29: 'IQ1_M', 30: 'BF16', 34: 'TQ1_0', 35: 'TQ2_0', 39: 'MXFP4',
};
/** The ggml types this project reads: id, elements per block, bytes per block. */
export const GGML_TYPES = {
  F32: { id: 0, blockSize: 1, blockBytes: 4 },
  F16: { id: 1, blockSize: 1, blockBytes: 2 },
  Q8_0: { id: 8, blockSize: 32, blockBytes: 34 },
  BF16: { id: 30, blockSize: 1, blockBytes: 2 },
} as const;
export type GGMLType = keyof typeof GGML_TYPES;
const GGML_BY_ID = new Map<number, GGMLType>(Object.entries(GGML_TYPES).map(([k, v]) => [v.id, k as GGMLType]));

export interface GGUFTensor {
  name: string;
  type: GGMLType;
  /** ggml order: innermost (contiguous) first. */
  dims: number[];
  /** Outermost first (row-major): dims reversed. */
  shape: number[];
  path: string;
  /** Absolute byte offset in `path`. */
  offset: number;
  bytes: number;
}

export interface GGUFFile {
  path: string;
  version: number;
  metadata: Map<string, GGUFValue>;
  /** In the order of the tensor infos. */
  tensors: GGUFTensor[];
  alignment: number;
  /** Absolute offset of the data section. */
  dataOffset: number;
  fileBytes: number;
}

function fail(file: string, what: string, cause?: unknown): never {
  throw new ModelFormatError(`Invalid GGUF file ${file}: ${what}`, cause === undefined ? undefined : { cause });
}

const utf8 = new TextDecoder('utf-8', { fatal: true });
const CHUNK = 1 << 20;

/** Sequential little-endian reads through a 1 MiB window; every read is checked against the file size first. */
class BoundedReader {
  /** The window; `need` returns where the requested bytes start in it. */
  buf = Buffer.alloc(CHUNK);
  private bufStart = 0; // file position of buf[0]
  private bufEnd = 0; // file position after the last valid byte in buf
  pos = 0;
  constructor(private readonly fh: fs.promises.FileHandle, readonly size: number, readonly file: string,
    private readonly signal?: AbortSignal) {}

  get remaining(): number { return this.size - this.pos; }

  /** Makes n bytes at pos available in the window (n ≤ CHUNK); fails naming `what` when the file is too short. */
  async need(n: number, what: string): Promise<number> {
    if (n > this.remaining) fail(this.file, `truncated: ${what} needs ${n} bytes at offset ${this.pos} but the file has ${this.remaining} left`);
    if (this.bufEnd - this.pos < n) {
      throwIfAborted(this.signal, 'GGUF file');
      const kept = this.bufEnd - this.pos;
      this.buf.copyWithin(0, this.pos - this.bufStart, this.bufEnd - this.bufStart);
      this.bufStart = this.pos;
      let end = kept;
      while (end < n) {
        const want = Math.min(this.buf.length - end, this.size - (this.bufStart + end));
        const { bytesRead } = await this.fh.read(this.buf, end, want, this.bufStart + end);
        if (bytesRead === 0) fail(this.file, `truncated: the file ended at ${this.bufStart + end} while reading ${what}`);
        end += bytesRead;
      }
      this.bufEnd = this.bufStart + end;
    }
    const at = this.pos - this.bufStart;
    this.pos += n;
    return at;
  }

  async u32(what: string): Promise<number> { return this.buf.readUInt32LE(await this.need(4, what)); }
  async u64(what: string): Promise<bigint> { return this.buf.readBigUInt64LE(await this.need(8, what)); }

  /** n bytes as a fresh array (any n within the file: large reads go straight to the destination). */
  async bytes(n: number, what: string): Promise<Uint8Array> {
    if (n <= CHUNK) {
      const at = await this.need(n, what);
      return Uint8Array.prototype.slice.call(this.buf, at, at + n);
    }
    if (n > this.remaining) await this.need(n, what); // fails
    const out = new Uint8Array(n);
    let done = Math.max(0, Math.min(n, this.bufEnd - this.pos));
    out.set(this.buf.subarray(this.pos - this.bufStart, this.pos - this.bufStart + done));
    while (done < n) {
      throwIfAborted(this.signal, 'GGUF file');
      const { bytesRead } = await this.fh.read(out, done, Math.min(n - done, 16 * CHUNK), this.pos + done);
      if (bytesRead === 0) fail(this.file, `truncated: the file ended while reading ${what}`);
      done += bytesRead;
    }
    this.pos += n;
    this.bufStart = this.bufEnd = this.pos;
    return out;
  }

  /**
   * The next string when it lies wholly in the window and is valid UTF-8 (the common case in a vocabulary: no await),
   * else undefined with nothing consumed, for `string` to read or report.
   */
  stringSync(): string | undefined {
    const at = this.pos - this.bufStart;
    if (this.bufEnd - this.pos < 8 || this.buf.readUInt32LE(at + 4) !== 0) return undefined;
    const len = this.buf.readUInt32LE(at);
    if (len > this.bufEnd - this.pos - 8) return undefined;
    const start = at + 8, end = start + len;
    let ascii = true;
    for (let i = start; i < end; i++) if (this.buf[i] > 0x7f) { ascii = false; break; }
    let s: string;
    try {
      s = ascii ? this.buf.toString('latin1', start, end) : utf8.decode(this.buf.subarray(start, end));
    } catch {
      return undefined;
    }
    this.pos += 8 + len;
    return s;
  }

  async string(what: string): Promise<string> {
    const len = await this.u64(`the length of ${what}`);
    if (len > BigInt(GGUF_LIMITS.stringBytes)) fail(this.file, `${what} has length ${len}, over the limit of ${GGUF_LIMITS.stringBytes} bytes`);
    if (len > BigInt(this.remaining)) fail(this.file, `truncated: ${what} has length ${len} but the file has ${this.remaining} bytes left`);
    const n = Number(len);
    try {
      if (n <= CHUNK) {
        const at = await this.need(n, what);
        return utf8.decode(this.buf.subarray(at, at + n));
      }
      return utf8.decode(await this.bytes(n, what));
    } catch (e) {
      if (e instanceof ModelFormatError) throw e;
      fail(this.file, `${what} is not valid UTF-8`, e);
    }
  }
}

function valueType(r: BoundedReader, id: number, what: string): GGUFValueType {
  const t = GGUF_VALUE_TYPES[id];
  if (t === undefined) fail(r.file, `${what} has unknown value type ${id}`);
  return t;
}

async function readValue(r: BoundedReader, type: GGUFValueType, what: string, depth: number): Promise<GGUFValue> {
  if (type === 'string') return { type, value: await r.string(what) };
  if (type === 'array') {
    if (depth >= GGUF_LIMITS.arrayDepth) fail(r.file, `${what} nests arrays deeper than ${GGUF_LIMITS.arrayDepth} levels`);
    const itemType = valueType(r, await r.u32(`the item type of ${what}`), `${what} (an array)`);
    const count = await r.u64(`the item count of ${what}`);
    if (count > BigInt(GGUF_LIMITS.arrayItems)) fail(r.file, `${what} has ${count} array items, over the limit of ${GGUF_LIMITS.arrayItems}`);
    const least = count * BigInt(GGUF_ITEM_BYTES[itemType]);
    if (least > BigInt(r.remaining)) {
      fail(r.file, `truncated: ${what} has ${count} items of type ${itemType} (at least ${least} bytes) but the file has ${r.remaining} bytes left`);
    }
    const n = Number(count);
    if (itemType === 'string') {
      const items: string[] = [];
      for (let i = 0; i < n; i++) items.push(r.stringSync() ?? await r.string(`${what}[${i}]`));
      return { type, itemType, value: items };
    }
    if (itemType === 'array') {
      const items: GGUFValue[] = [];
      for (let i = 0; i < n; i++) items.push(await readValue(r, itemType, `${what}[${i}]`, depth + 1));
      return { type, itemType, value: items };
    }
    const raw = await r.bytes(n * GGUF_ITEM_BYTES[itemType], what);
    if (itemType === 'bool') {
      const bad = raw.findIndex((b) => b > 1);
      if (bad >= 0) fail(r.file, `${what}[${bad}] is a bool with byte value ${raw[bad]}`);
      return { type, itemType, value: Array.from(raw, (b) => b === 1) };
    }
    return { type, itemType, value: new GGUF_TYPED_ARRAYS[itemType](raw.buffer as ArrayBuffer, raw.byteOffset, n) };
  }
  const at = await r.need(GGUF_ITEM_BYTES[type], what);
  const b = r.buf;
  switch (type) {
    case 'uint8': return { type, value: b.readUInt8(at) };
    case 'int8': return { type, value: b.readInt8(at) };
    case 'uint16': return { type, value: b.readUInt16LE(at) };
    case 'int16': return { type, value: b.readInt16LE(at) };
    case 'uint32': return { type, value: b.readUInt32LE(at) };
    case 'int32': return { type, value: b.readInt32LE(at) };
    case 'float32': return { type, value: b.readFloatLE(at) };
    case 'float64': return { type, value: b.readDoubleLE(at) };
    case 'uint64': return { type, value: b.readBigUInt64LE(at) };
    case 'int64': return { type, value: b.readBigInt64LE(at) };
    case 'bool': {
      const v = b.readUInt8(at);
      if (v > 1) fail(r.file, `${what} is a bool with byte value ${v}`);
      return { type, value: v === 1 };
    }
  }
}

/** Parses everything before the data section, checking it all against the file size. */
async function parseGGUF(r: BoundedReader): Promise<GGUFFile> {
  const file = r.file;
  if (r.size < 24) fail(file, `truncated: ${r.size} bytes, fewer than the 24-byte header`);
  const magic = Buffer.from(await r.bytes(4, 'the magic')).toString('latin1');
  if (magic !== GGUF_MAGIC) fail(file, `bad magic ${JSON.stringify(magic)}, expected "GGUF"`);
  const version = await r.u32('the version');
  if (version !== 2 && version !== 3) {
    if (version > 0xffff && (version & 0xffff) === 0) fail(file, 'big-endian GGUF files are not supported');
    fail(file, `unsupported GGUF version ${version} (supported: 2, 3)`);
  }
  const tensorCount = await r.u64('the tensor count');
  const kvCount = await r.u64('the metadata count');
  if (tensorCount > BigInt(GGUF_LIMITS.tensors)) fail(file, `tensor count ${tensorCount} is over the limit of ${GGUF_LIMITS.tensors}`);
  if (kvCount > BigInt(GGUF_LIMITS.kv)) fail(file, `metadata count ${kvCount} is over the limit of ${GGUF_LIMITS.kv}`);
  // Each kv takes at least 8 (key length) + 4 (type) + 1 bytes, each tensor info 8 + 4 + 4 + 8.
  const least = kvCount * 13n + tensorCount * 24n;
  if (least > BigInt(r.remaining)) {
    fail(file, `truncated: ${kvCount} metadata entries and ${tensorCount} tensor infos need at least ${least} bytes but the file has ${r.remaining} left`);
  }
  const metadata = new Map<string, GGUFValue>();
  for (let i = 0; i < Number(kvCount); i++) {
    const key = await r.string(`metadata key #${i}`);
    if (metadata.has(key)) fail(file, `duplicate metadata key "${key}"`);
    const type = valueType(r, await r.u32(`the type of metadata "${key}"`), `metadata "${key}"`);
    metadata.set(key, await readValue(r, type, `metadata "${key}"`, 0));
  }
  let alignment = GGUF_DEFAULT_ALIGNMENT;
  const al = metadata.get('general.alignment');
  if (al !== undefined) {
    if (al.type !== 'uint32') fail(file, `general.alignment has type ${al.type}, expected uint32`);
    if (al.value === 0 || (al.value & (al.value - 1)) !== 0) fail(file, `general.alignment ${al.value} is not a power of two`);
    alignment = al.value;
  }
  const infos: Array<{ name: string; type: GGMLType; dims: number[]; rel: bigint; bytes: bigint }> = [];
  const names = new Set<string>();
  for (let i = 0; i < Number(tensorCount); i++) {
    const name = await r.string(`the name of tensor #${i}`);
    if (Buffer.byteLength(name) > GGUF_LIMITS.tensorNameBytes) fail(file, `tensor name "${name.slice(0, 80)}" is longer than ${GGUF_LIMITS.tensorNameBytes} bytes`);
    if (names.has(name)) fail(file, `duplicate tensor name "${name}"`);
    names.add(name);
    const nDims = await r.u32(`n_dims of tensor "${name}"`);
    if (nDims > GGUF_LIMITS.dims) fail(file, `tensor "${name}" has n_dims ${nDims}, more than ${GGUF_LIMITS.dims}`);
    const dims: number[] = [];
    let numel = 1n;
    for (let d = 0; d < nDims; d++) {
      const v = await r.u64(`dims of tensor "${name}"`);
      if (v > BigInt(Number.MAX_SAFE_INTEGER)) fail(file, `tensor "${name}" has dimension ${v}, too large`);
      dims.push(Number(v));
      numel *= v;
    }
    const typeId = await r.u32(`the type of tensor "${name}"`);
    const type = GGML_BY_ID.get(typeId);
    if (type === undefined) {
      const known = GGML_TYPE_NAMES[typeId];
      fail(file, known ? `unsupported ggml type ${known} (${typeId}) for tensor "${name}" (supported: F32, F16, BF16, Q8_0)`
        : `unknown ggml type ${typeId} for tensor "${name}"`);
    }
    const { blockSize, blockBytes } = GGML_TYPES[type];
    if ((dims[0] ?? 1) % blockSize !== 0) {
      fail(file, `${type} tensor "${name}" has dims[0] = ${dims[0] ?? 1}, not a multiple of the block size ${blockSize}`);
    }
    const rel = await r.u64(`the offset of tensor "${name}"`);
    if (rel % BigInt(alignment) !== 0n) fail(file, `tensor "${name}" has offset ${rel}, not a multiple of the alignment ${alignment}`);
    infos.push({ name, type, dims, rel, bytes: (numel / BigInt(blockSize)) * BigInt(blockBytes) });
  }
  const a = BigInt(alignment);
  const dataStart = ((BigInt(r.pos) + a - 1n) / a) * a;
  const size = BigInt(r.size);
  if (infos.length > 0 && dataStart > size) fail(file, `truncated: the data section starts at ${dataStart} but the file has ${size} bytes`);
  const tensors: GGUFTensor[] = infos.map((t) => {
    const end = dataStart + t.rel + t.bytes;
    if (end > size) {
      fail(file, `tensor "${t.name}" (${t.type}, dims [${t.dims.join(', ')}], ${t.bytes} bytes at data offset ${t.rel}) ends at ${end}, past the end of the file (${size} bytes)`);
    }
    return {
      name: t.name, type: t.type, dims: t.dims, shape: t.dims.slice().reverse(), path: file,
      offset: Number(dataStart + t.rel), bytes: Number(t.bytes),
    };
  });
  const sorted = tensors.slice().sort((x, y) => x.offset - y.offset || x.bytes - y.bytes);
  for (let i = 1; i < sorted.length; i++) {
    const p = sorted[i - 1], t = sorted[i];
    if (t.offset < p.offset + p.bytes) fail(file, `tensor "${t.name}" (bytes ${t.offset}..${t.offset + t.bytes}) overlaps tensor "${p.name}" (bytes ${p.offset}..${p.offset + p.bytes})`);
  }
  return { path: file, version, metadata, tensors, alignment, dataOffset: Number(dataStart), fileBytes: r.size };
}

/** Reads and validates a GGUF file's metadata and tensor infos (never the tensor data). */
export async function readGGUF(file: string, signal?: AbortSignal): Promise<GGUFFile> {
  const { fh, size } = await openRegularFile(file, 'GGUF file');
  try {
    return await parseGGUF(new BoundedReader(fh, size, file, signal));
  } finally {
    await fh.close();
  }
}

/** A metadata value's JS value, checked against the expected kind; `fallback` when absent (else an error). */
export function ggufMeta(f: GGUFFile, key: string, kind: 'number', fallback?: number): number;
export function ggufMeta(f: GGUFFile, key: string, kind: 'string', fallback?: string): string;
export function ggufMeta(f: GGUFFile, key: string, kind: 'bool', fallback?: boolean): boolean;
export function ggufMeta(f: GGUFFile, key: string, kind: 'array', fallback?: GGUFValue & { type: 'array' }): GGUFValue & { type: 'array' };
export function ggufMeta(f: GGUFFile, key: string, kind: 'number' | 'string' | 'bool' | 'array', fallback?: unknown): unknown {
  const v = f.metadata.get(key);
  if (v === undefined) {
    if (fallback !== undefined) return fallback;
    fail(f.path, `metadata "${key}" is missing`);
  }
  if (kind === 'array') {
    if (v.type !== 'array') fail(f.path, `metadata "${key}" has type ${v.type}, expected an array`);
    return v;
  }
  if (kind === 'number' && (typeof v.value === 'number' || typeof v.value === 'bigint')) {
    const n = Number(v.value);
    if (typeof v.value === 'bigint' && !Number.isSafeInteger(n)) fail(f.path, `metadata "${key}" = ${v.value} is too large`);
    return n;
  }
  if ((kind === 'string' && v.type === 'string') || (kind === 'bool' && v.type === 'bool')) return v.value;
  fail(f.path, `metadata "${key}" has type ${v.type}, expected ${kind}`);
}

/** The native loader's descriptor for a tensor (Q8_0: GGUF's 34-byte blocks, repacked or dequantized natively). */
export function ggufSource(t: GGUFTensor): AddonFileSource {
  const dtype = ({ F32: 'float32', F16: 'float16', BF16: 'bfloat16', Q8_0: 'q8_0' } as const)[t.type];
  if (dtype === undefined) throw new UnsupportedError(`Tensor "${t.name}" of ${t.path} is ${t.type}, which the loader does not read`);
  return { path: t.path, offset: t.offset, bytes: t.bytes, dtype, shape: t.shape.slice() };
}

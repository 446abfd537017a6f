// safetensors: one `model.safetensors` file, or shards listed by `model.safetensors.index.json`.
// Only the JSON header is read here; tensor bytes are read natively from the absolute offsets returned.
//
// File: u64 little-endian N, then N bytes of UTF-8 JSON (starting with '{', optionally padded with spaces), then
// the data section. The JSON maps tensor names to {dtype, shape, data_offsets: [begin, end]} (offsets relative to
// the first byte after the header) plus an optional "__metadata__" string → string map. The validation follows the
// reference implementation (huggingface/safetensors): N ≤ 100 MB and within the file, offsets that tile the data
// section exactly (sorted, no gaps, no overlaps), end − begin = product(shape) × dtype size, and the file ends
// exactly at the data section's end. Duplicate names (which JSON.parse would silently merge) are rejected too.
import * as fs from 'fs';
import * as path from 'path';
import type { AddonFileSource } from '../binding';
import { ModelFormatError } from '../errors';
import { openRegularFile, readExactly, readRegularFile, statModelPath } from '../loaders/files';

/** The reference implementation's bound on the header length. */
export const SAFETENSORS_MAX_HEADER_BYTES = 100_000_000;

/** Every dtype of the format, with its size in bits (sub-byte float formats included). */
export const SAFETENSORS_DTYPE_BITS: Readonly<Record<string, number>> = {
  BOOL: 8, U8: 8, I8: 8, F8_E5M2: 8, F8_E4M3: 8, F8_E8M0: 8, I16: 16, U16: 16, F16: 16, BF16: 16,
  I32: 32, U32: 32, F32: 32, F64: 64, I64: 64, U64: 64, F4: 4, F6_E2M3: 6, F6_E3M2: 6,
};
/** The dtypes the engine loads, and their AddonFileSource names. */
const LOADABLE = { F32: 'float32', F16: 'float16', BF16: 'bfloat16' } as const;
export type SafetensorsFloatDType = keyof typeof LOADABLE;

export interface SafetensorsTensor {
  name: string;
  /** The format's dtype name (F32, F16, BF16, I64, ...); see safetensorsSource for the ones the engine loads. */
  dtype: string;
  /** Outermost first (row-major). */
  shape: number[];
  path: string;
  /** Absolute byte offset of the tensor's data in `path`. */
  offset: number;
  bytes: number;
}

export interface SafetensorsFile {
  path: string;
  metadata: Record<string, string>;
  /** In file order (sorted by offset). */
  tensors: SafetensorsTensor[];
  headerBytes: number;
  fileBytes: number;
}

export interface SafetensorsModel {
  /** The shard files in weight_map order of first appearance (one file when not sharded). */
  files: SafetensorsFile[];
  tensors: SafetensorsTensor[];
  /** __metadata__ of a single file, or the index's "metadata" object for shards. */
  metadata: Record<string, unknown>;
}

function fail(file: string, what: string, cause?: unknown): never {
  throw new ModelFormatError(`Invalid safetensors file ${file}: ${what}`, cause === undefined ? undefined : { cause });
}

const isPlainObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

/**
 * The first duplicated object key in a JSON text that JSON.parse accepted, with its nesting depth (1 = top level),
 * or null. A small scanner: JSON.parse keeps the last of duplicated keys without a word.
 */
export function findDuplicateJsonKey(json: string): { key: string; depth: number } | null {
  const stack: Array<Set<string> | null> = [];
  let expectKey = false;
  for (let i = 0; i < json.length; i++) {
    const c = json.charCodeAt(i);
    if (c === 0x22 /* " */) {
      let j = i + 1;
      while (json.charCodeAt(j) !== 0x22) j += json.charCodeAt(j) === 0x5c /* \ */ ? 2 : 1;
      const top = stack[stack.length - 1];
      if (expectKey && top) {
        const key = JSON.parse(json.slice(i, j + 1)) as string;
        if (top.has(key)) return { key, depth: stack.length };
        top.add(key);
      }
      expectKey = false;
      i = j;
    } else if (c === 0x7b /* { */) {
      stack.push(new Set());
      expectKey = true;
    } else if (c === 0x5b /* [ */) {
      stack.push(null);
    } else if (c === 0x7d /* } */ || c === 0x5d /* ] */) {
      stack.pop();
    } else if (c === 0x2c /* , */) {
      expectKey = stack[stack.length - 1] != null;
    }
  }
  return null;
}

/** Parses JSON text, rejecting invalid JSON and duplicate keys (`what` names the document in messages). */
function parseJson(file: string, text: string, what: string): unknown {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (e) {
    fail(file, `the ${what} is not valid JSON (${(e as Error).message})`, e);
  }
  const dup = findDuplicateJsonKey(text);
  if (dup) fail(file, dup.depth === 1 ? `duplicate entry "${dup.key}" in the ${what}` : `duplicate key "${dup.key}" in the ${what}`);
  return value;
}

const nonNegativeSafe = (v: unknown): v is number => Number.isSafeInteger(v) && (v as number) >= 0;

/**
 * Validates a header (the JSON text) against the file's size and lays the tensors out. Pure: no I/O.
 * `headerBytes` is N, the header length stored in the first 8 bytes.
 */
export function parseSafetensorsHeader(file: string, json: string, headerBytes: number, fileBytes: number): SafetensorsFile {
  if (!json.startsWith('{')) fail(file, 'the header does not start with "{" (not a safetensors file?)');
  const header = parseJson(file, json, 'header');
  if (!isPlainObject(header)) fail(file, 'the header is not a JSON object');
  let metadata: Record<string, string> = {};
  const tensors: SafetensorsTensor[] = [];
  const dataStart = 8 + headerBytes;
  const ranges: Array<{ name: string; begin: number; end: number; bytes: bigint }> = [];
  for (const [name, info] of Object.entries(header)) {
    if (name === '__metadata__') {
      if (!isPlainObject(info)) fail(file, '__metadata__ is not an object');
      for (const [k, v] of Object.entries(info)) {
        if (typeof v !== 'string') fail(file, `__metadata__ value for "${k}" is not a string`);
      }
      metadata = info as Record<string, string>;
      continue;
    }
    if (!isPlainObject(info)) fail(file, `the entry for tensor "${name}" is not an object`);
    const { dtype, shape, data_offsets: offsets } = info;
    if (typeof dtype !== 'string') fail(file, `tensor "${name}" has no dtype string`);
    if (!Object.hasOwn(SAFETENSORS_DTYPE_BITS, dtype)) fail(file, `unknown dtype ${JSON.stringify(dtype)} for tensor "${name}"`);
    const bits = SAFETENSORS_DTYPE_BITS[dtype];
    if (!Array.isArray(shape) || !shape.every(nonNegativeSafe)) {
      fail(file, `tensor "${name}" has shape ${JSON.stringify(shape)}, expected an array of non-negative integers`);
    }
    if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every(nonNegativeSafe)) {
      fail(file, `tensor "${name}" has data_offsets ${JSON.stringify(offsets)}, expected [begin, end] with non-negative integers`);
    }
    const [begin, end] = offsets as [number, number];
    if (begin > end) fail(file, `tensor "${name}" has data_offsets [${begin}, ${end}] with begin > end`);
    const nbits = (shape as number[]).reduce((a, d) => a * BigInt(d), 1n) * BigInt(bits);
    if (nbits % 8n !== 0n) fail(file, `tensor "${name}" (${dtype}, shape [${shape.join(', ')}]) is not a whole number of bytes`);
    ranges.push({ name, begin, end, bytes: nbits / 8n });
    tensors.push({ name, dtype, shape: shape as number[], path: file, offset: dataStart + begin, bytes: end - begin });
  }
  // Sort by offsets, then the data section must be tiled exactly (the reference's validate()).
  const order = ranges.map((_, i) => i).sort((a, b) => ranges[a].begin - ranges[b].begin || ranges[a].end - ranges[b].end);
  let at = 0;
  for (const i of order) {
    const r = ranges[i];
    if (r.begin < at) fail(file, `tensor "${r.name}" data_offsets [${r.begin}, ${r.end}] overlap the previous tensor (which ends at ${at})`);
    if (r.begin > at) fail(file, `gap in the data section: bytes ${at}..${r.begin} before tensor "${r.name}" belong to no tensor`);
    if (BigInt(r.end - r.begin) !== r.bytes) {
      const t = tensors[i];
      fail(file, `tensor "${r.name}" has ${r.end - r.begin} bytes (data_offsets [${r.begin}, ${r.end}]) but dtype ${t.dtype} × shape [${t.shape.join(', ')}] needs ${r.bytes}`);
    }
    at = r.end;
  }
  const expected = BigInt(dataStart) + BigInt(at);
  if (expected !== BigInt(fileBytes)) {
    fail(file, `${BigInt(fileBytes) < expected ? 'truncated' : 'trailing bytes'}: the header describes ${expected} bytes ` +
      `(8 + ${headerBytes} header + ${at} data) but the file has ${fileBytes}`);
  }
  return { path: file, metadata, tensors: order.map((i) => tensors[i]), headerBytes, fileBytes };
}

/** Reads and validates one .safetensors file's header (the header bytes only, never the data). */
export async function readSafetensors(file: string, signal?: AbortSignal): Promise<SafetensorsFile> {
  const { fh, size } = await openRegularFile(file, 'safetensors file');
  try {
    if (size < 8) fail(file, `truncated: ${size} bytes, fewer than the 8-byte header length`);
    const n = (await readExactly(fh, file, 'safetensors file', 0, 8, signal)).readBigUInt64LE(0);
    if (n > BigInt(SAFETENSORS_MAX_HEADER_BYTES)) fail(file, `header length ${n} exceeds the limit of ${SAFETENSORS_MAX_HEADER_BYTES} bytes`);
    if (n > BigInt(size - 8)) fail(file, `truncated: header length ${n} but only ${size - 8} bytes follow the length field`);
    const headerBytes = Number(n);
    const buf = await readExactly(fh, file, 'safetensors file', 8, headerBytes, signal);
    let json: string;
    try {
      json = new TextDecoder('utf-8', { fatal: true }).decode(buf);
    } catch (e) {
      fail(file, 'the header is not valid UTF-8', e);
    }
    return parseSafetensorsHeader(file, json, headerBytes, size);
  } finally {
    await fh.close();
  }
}

/** Bound on the size of model.safetensors.index.json (the same as a header's). */
const MAX_INDEX_BYTES = SAFETENSORS_MAX_HEADER_BYTES;

/**
 * Reads a sharded checkpoint: the index's weight_map (tensor name → shard file in the index's directory), then each
 * shard's header. Every tensor of weight_map must be in the shard it names, and every tensor of a shard in weight_map.
 */
export async function readSafetensorsIndex(indexFile: string, signal?: AbortSignal): Promise<SafetensorsModel> {
  const text = (await readRegularFile(indexFile, 'safetensors index', MAX_INDEX_BYTES, signal)).toString('utf8');
  const index = parseJson(indexFile, text, 'index');
  if (!isPlainObject(index)) fail(indexFile, 'the index is not a JSON object');
  const weightMap = index.weight_map;
  if (!isPlainObject(weightMap)) fail(indexFile, 'the index has no "weight_map" object');
  const metadata = index.metadata === undefined ? {} : index.metadata;
  if (!isPlainObject(metadata)) fail(indexFile, '"metadata" is not an object');
  const shardNames: string[] = [];
  for (const [name, shard] of Object.entries(weightMap)) {
    if (typeof shard !== 'string') fail(indexFile, `weight_map entry for "${name}" is not a file name`);
    if (shard === '' || shard === '.' || shard === '..' || path.basename(shard) !== shard || shard.includes('\\')) {
      fail(indexFile, `weight_map entry for "${name}" names ${JSON.stringify(shard)}, not a file in the index's directory`);
    }
    if (!shardNames.includes(shard)) shardNames.push(shard);
  }
  const dir = path.dirname(indexFile);
  const files: SafetensorsFile[] = [];
  const tensors: SafetensorsTensor[] = [];
  for (const shard of shardNames) {
    const f = await readSafetensors(path.join(dir, shard), signal);
    files.push(f);
    const present = new Set<string>();
    for (const t of f.tensors) {
      present.add(t.name);
      const listed = Object.hasOwn(weightMap, t.name) ? weightMap[t.name] : undefined;
      if (listed !== shard) {
        fail(indexFile, `tensor "${t.name}" is in shard ${shard} but weight_map ${listed === undefined ? 'does not list it' : `puts it in ${listed}`}`);
      }
      tensors.push(t);
    }
    for (const [name, s] of Object.entries(weightMap)) {
      if (s === shard && !present.has(name)) fail(indexFile, `tensor "${name}" is missing from shard ${shard}`);
    }
  }
  return { files, tensors, metadata };
}

/**
 * Reads the weights of a Hugging Face model: a directory (model.safetensors.index.json when present, else
 * model.safetensors), an index file (*.json) or a single .safetensors file.
 */
export async function readSafetensorsModel(location: string, signal?: AbortSignal): Promise<SafetensorsModel> {
  let file = location;
  const st = await statModelPath(location, 'model', true);
  if (st.isDirectory()) {
    const index = path.join(location, 'model.safetensors.index.json');
    file = fs.existsSync(index) ? index : path.join(location, 'model.safetensors');
  }
  if (file.endsWith('.json')) return readSafetensorsIndex(file, signal);
  const f = await readSafetensors(file, signal);
  return { files: [f], tensors: f.tensors, metadata: f.metadata };
}

/** The native loader's descriptor for a float tensor; other dtypes are rejected with the tensor named. */
export function safetensorsSource(t: SafetensorsTensor): AddonFileSource {
  if (!Object.hasOwn(LOADABLE, t.dtype)) {
    throw new ModelFormatError(`Invalid safetensors file ${t.path}: unsupported dtype ${t.dtype} for tensor "${t.name}" (supported: F32, F16, BF16)`);
  }
  return { path: t.path, offset: t.offset, bytes: t.bytes, dtype: LOADABLE[t.dtype as SafetensorsFloatDType], shape: t.shape.slice() };
}

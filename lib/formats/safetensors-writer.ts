// safetensors writer (tests, conversions): tensors in the order given, the header padded with spaces to a multiple
// of 8 bytes (as the reference implementation does, so the data section is 8-byte aligned), exact file end.
// Also writes sharded checkpoints with their model.safetensors.index.json.
import * as fs from 'fs';
import * as path from 'path';
import { toHalfBits } from '../half';
import { InvalidArgumentError } from '../errors';
import type { SafetensorsFloatDType } from './safetensors';

export interface SafetensorsWriterTensor {
  name: string;
  /** F32/F16/BF16 from `data` (float values, rounded to nearest even); any dtype name when `raw` is given. */
  dtype: SafetensorsFloatDType | string;
  /** Outermost first. */
  shape: number[];
  /** Values, converted to dtype. */
  data?: ArrayLike<number>;
  /** The exact bytes to store instead of `data`. */
  raw?: Uint8Array;
}

/** The bytes of one tensor: `raw` as is, or `data` converted to dtype (little-endian). */
export function tensorBytes(t: { name: string; dtype: string; shape: number[]; data?: ArrayLike<number>; raw?: Uint8Array }): Uint8Array {
  if (t.raw) return t.raw;
  if (!t.data) throw new InvalidArgumentError(`Tensor "${t.name}" has neither data nor raw bytes`);
  const numel = t.shape.reduce((a, b) => a * b, 1);
  if (t.data.length !== numel) {
    throw new InvalidArgumentError(`Tensor "${t.name}" has ${t.data.length} values but shape [${t.shape.join(', ')}] holds ${numel}`);
  }
  switch (t.dtype) {
    case 'F32': return new Uint8Array(Float32Array.from(t.data).buffer);
    case 'F16': return new Uint8Array(toHalfBits(t.data, 'float16').buffer);
    case 'BF16': return new Uint8Array(toHalfBits(t.data, 'bfloat16').buffer);
    default: throw new InvalidArgumentError(`Tensor "${t.name}": dtype ${t.dtype} needs raw bytes`);
  }
}

/** Encodes a .safetensors file. */
export function encodeSafetensors(tensors: SafetensorsWriterTensor[], metadata?: Record<string, string>): Buffer {
  const header: Record<string, unknown> = {};
  if (metadata) header.__metadata__ = metadata;
  const blobs: Uint8Array[] = [];
  let at = 0;
  for (const t of tensors) {
    if (Object.hasOwn(header, t.name)) throw new InvalidArgumentError(`Duplicate tensor name "${t.name}"`);
    const b = tensorBytes(t);
    header[t.name] = { dtype: t.dtype, shape: t.shape, data_offsets: [at, at + b.byteLength] };
    blobs.push(b);
    at += b.byteLength;
  }
  let json = JSON.stringify(header);
  json += ' '.repeat((8 - (Buffer.byteLength(json) % 8)) % 8);
  const head = Buffer.from(json, 'utf8');
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(head.length));
  return Buffer.concat([len, head, ...blobs]);
}

export async function writeSafetensors(file: string, tensors: SafetensorsWriterTensor[], metadata?: Record<string, string>): Promise<void> {
  await fs.promises.writeFile(file, encodeSafetensors(tensors, metadata));
}

/**
 * Writes shards `model-0000i-of-0000n.safetensors` (one per group of tensors) and model.safetensors.index.json
 * into `dir`; returns the index path.
 */
export async function writeSafetensorsShards(dir: string, shards: SafetensorsWriterTensor[][]): Promise<string> {
  const n = shards.length;
  const pad = (i: number): string => String(i).padStart(5, '0');
  const weightMap: Record<string, string> = {};
  let totalSize = 0;
  for (let i = 0; i < n; i++) {
    const name = `model-${pad(i + 1)}-of-${pad(n)}.safetensors`;
    for (const t of shards[i]) {
      weightMap[t.name] = name;
      totalSize += tensorBytes(t).byteLength;
    }
    await writeSafetensors(path.join(dir, name), shards[i]);
  }
  const index = path.join(dir, 'model.safetensors.index.json');
  await fs.promises.writeFile(index, JSON.stringify({ metadata: { total_size: totalSize }, weight_map: weightMap }, null, 2));
  return index;
}

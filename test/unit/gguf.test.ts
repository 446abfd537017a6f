// GGUF reader/writer: round trips of every metadata type and tensor type, Q8_0 against a reference computed here,
// every malformation giving a ModelFormatError that names it, and random corruptions never giving another error.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { ModelFormatError } from '../../lib/errors';
import { GGUF_LIMITS, ggufMeta, ggufSource, readGGUF, type GGUFValue } from '../../lib/formats/gguf';
import { dequantizeQ8_0, encodeGGUF, gv, quantizeQ8_0, writeGGUF, type GGUFWriterTensor } from '../../lib/formats/gguf-writer';
import { f16BitsToF32, f32ToF16Bits, toHalfBits } from '../../lib/half';
import { normal, rng, uniform } from '../util/random';

let dir: string;
beforeAll(() => { dir = fs.mkdtempSync(path.join(os.tmpdir(), 'eet-gguf-')); });
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));
let fileNo = 0;
const tmp = (): string => path.join(dir, `t${fileNo++}.gguf`);

// ---- raw builders for hand-made (malformed) files
const u32 = (v: number): Buffer => { const b = Buffer.alloc(4); b.writeUInt32LE(v); return b; };
const u64 = (v: bigint | number): Buffer => { const b = Buffer.alloc(8); b.writeBigUInt64LE(BigInt(v)); return b; };
const str = (s: string | Buffer): Buffer => { const b = Buffer.from(s); return Buffer.concat([u64(b.length), b]); };
const head = (nTensors: bigint | number, nKv: bigint | number, version = 3, magic = 'GGUF'): Buffer =>
  Buffer.concat([Buffer.from(magic, 'latin1'), u32(version), u64(nTensors), u64(nKv)]);
const kv = (key: string, type: number, payload: Buffer): Buffer => Buffer.concat([str(key), u32(type), payload]);
const info = (name: string, dims: Array<number | bigint>, type: number, offset: bigint | number): Buffer =>
  Buffer.concat([str(name), u32(dims.length), ...dims.map(u64), u32(type), u64(offset)]);
/** Header parts, padding to `alignment`, then `data` bytes of data section. */
function raw(parts: Buffer[], data = 0, alignment = 32): string {
  const h = Buffer.concat(parts);
  const file = tmp();
  fs.writeFileSync(file, Buffer.concat([h, Buffer.alloc((alignment - (h.length % alignment)) % alignment), Buffer.alloc(data, 1)]));
  return file;
}
async function formatError(file: string): Promise<string> {
  const e = await readGGUF(file).then(() => null, (err: unknown) => err);
  expect(e).toBeInstanceOf(ModelFormatError);
  return (e as Error).message;
}

// ---- Q8_0 reference: d = max|x|/127 in float32, stored as f16; q = round(x/d), halves away from zero
function refQ8_0(x: Float32Array): { d: number[]; q: number[] } {
  const d: number[] = [], q: number[] = [];
  for (let b = 0; b < x.length; b += 32) {
    const block = Array.from(x.subarray(b, b + 32));
    const scale = Math.fround(Math.max(...block.map(Math.abs)) / 127);
    d.push(scale);
    for (const v of block) {
      const t = scale === 0 ? 0 : Math.fround(v / scale);
      q.push(t < 0 ? -Math.round(-t) : Math.round(t)); // Math.round rounds halves up: mirror it for negatives
    }
  }
  return { d, q };
}
function refQ8_0Bytes(x: Float32Array): Buffer {
  const { d, q } = refQ8_0(x);
  const out = Buffer.alloc((x.length / 32) * 34);
  d.forEach((s, b) => out.writeUInt16LE(f32ToF16Bits(s), b * 34));
  q.forEach((v, i) => out.writeInt8(v, Math.floor(i / 32) * 34 + 2 + (i % 32)));
  return out;
}

const sampleMetadata = (): Map<string, GGUFValue> => new Map<string, GGUFValue>([
  ['general.architecture', gv.str('llama')],
  ['u8', gv.u8(200)], ['i8', gv.i8(-100)], ['u16', gv.u16(60000)], ['i16', gv.i16(-30000)],
  ['u32', gv.u32(4e9)], ['i32', gv.i32(-2e9)], ['f32', gv.f32(1.5)], ['f64', gv.f64(Math.PI)],
  ['u64', gv.u64(2n ** 63n + 5n)], ['i64', gv.i64(-(2n ** 62n))], ['yes', gv.bool(true)], ['no', gv.bool(false)],
  ['unicode', gv.str('ünï ▁ 🚀')], ['empty', gv.str('')],
  ['tokens', gv.arr('string', ['<s>', '▁b', ''])], ['scores', gv.arr('float32', [0.5, -1, 3.25])],
  ['none', gv.arr('int32', [])], ['flags', gv.arr('bool', [true, false, true])],
  ['big', gv.arr('uint64', [1n, 2n ** 64n - 1n])], ['i64s', gv.arr('int64', [-1n])], ['i8s', gv.arr('int8', [-1, 2])],
  ['u16s', gv.arr('uint16', [65535])], ['f64s', gv.arr('float64', [1e300])],
  ['nested', gv.arr('array', [gv.arr('uint8', [1, 2]), gv.arr('string', ['x'])])],
  ['deep', gv.arr('array', [gv.arr('array', [gv.arr('float64', [1.25])])])],
]);
const sampleTensors = (): GGUFWriterTensor[] => [
  { name: 'token_embd.weight', type: 'F32', shape: [4, 8], data: uniform(32, 1) },
  { name: 'blk.0.attn_q.weight', type: 'Q8_0', shape: [3, 64], data: normal(192, 2) },
  { name: 'blk.0.ffn_up.weight', type: 'F16', shape: [3, 5], data: uniform(15, 3) },
  { name: 'output_norm.weight', type: 'BF16', shape: [2], data: uniform(2, 4) },
  { name: 'blk.0.odd', type: 'F32', shape: [2, 1, 3, 1], data: uniform(6, 5) },
];
function expectedBytes(t: GGUFWriterTensor): Buffer {
  const x = Float32Array.from(t.data!);
  if (t.type === 'F32') return Buffer.from(x.buffer);
  if (t.type === 'Q8_0') return refQ8_0Bytes(x);
  return Buffer.from(toHalfBits(x, t.type === 'F16' ? 'float16' : 'bfloat16').buffer);
}

describe('GGUF round trip', () => {
  for (const alignment of [32, 64, 1]) {
    test(`write → read: every metadata type and F32/F16/BF16/Q8_0 tensors (alignment ${alignment})`, async () => {
      const file = tmp();
      const tensors = sampleTensors();
      await writeGGUF(file, { metadata: sampleMetadata(), tensors, alignment });
      const f = await readGGUF(file);
      const bytes = fs.readFileSync(file);
      expect(f.version).toBe(3);
      expect(f.alignment).toBe(alignment);
      const meta = sampleMetadata();
      if (alignment !== 32) meta.set('general.alignment', gv.u32(alignment));
      expect(f.metadata).toEqual(meta);
      expect([...f.metadata.keys()]).toEqual([...meta.keys()]);
      expect(f.dataOffset % alignment).toBe(0);
      expect(f.tensors.map((t) => [t.name, t.type, t.shape, t.dims])).toEqual(
        tensors.map((t) => [t.name, t.type, t.shape, t.shape.slice().reverse()]));
      for (const [i, t] of f.tensors.entries()) {
        expect(t.path).toBe(file);
        expect(t.offset % alignment).toBe(0);
        expect(t.offset).toBeGreaterThanOrEqual(f.dataOffset);
        expect(Buffer.from(bytes.subarray(t.offset, t.offset + t.bytes))).toEqual(expectedBytes(tensors[i]));
      }
      expect(f.tensors[1].bytes).toBe(3 * 2 * 34);
      expect(ggufSource(f.tensors[2])).toEqual({ path: file, offset: f.tensors[2].offset, bytes: 30, dtype: 'float16', shape: [3, 5] });
      expect(ggufSource(f.tensors[1])).toEqual({ path: file, offset: f.tensors[1].offset, bytes: 3 * 2 * 34, dtype: 'q8_0', shape: f.tensors[1].shape });
    });
  }

  test('metadata accessors', async () => {
    const file = tmp();
    await writeGGUF(file, { metadata: sampleMetadata() });
    const f = await readGGUF(file);
    expect(f.tensors).toEqual([]);
    expect(ggufMeta(f, 'u32', 'number')).toBe(4e9);
    expect(ggufMeta(f, 'i32', 'number')).toBe(-2e9);
    expect(ggufMeta(f, 'general.architecture', 'string')).toBe('llama');
    expect(ggufMeta(f, 'yes', 'bool')).toBe(true);
    expect(ggufMeta(f, 'absent', 'number', 7)).toBe(7);
    expect(ggufMeta(f, 'tokens', 'array').value).toEqual(['<s>', '▁b', '']);
    expect(() => ggufMeta(f, 'absent', 'number')).toThrow(/metadata "absent" is missing/);
    expect(() => ggufMeta(f, 'unicode', 'number')).toThrow(/metadata "unicode" has type string, expected number/);
    expect(() => ggufMeta(f, 'u64', 'number')).toThrow(/metadata "u64" = 9223372036854775813 is too large/);
    expect(() => ggufMeta(f, 'i64', 'number')).toThrow(/metadata "i64" = -4611686018427387904 is too large/);
  });

  test('a tokenizer-sized vocabulary, a string and an array larger than the read window', async () => {
    const n = 100_000;
    const tokens = Array.from({ length: n }, (_, i) => `tok${i}▁`);
    const big = 'x'.repeat(1_500_000);
    const floats = uniform(300_000, 9);
    const file = tmp();
    await writeGGUF(file, {
      metadata: [['tokenizer.ggml.tokens', gv.arr('string', tokens)], ['tokenizer.ggml.scores', gv.arr('float32', uniform(n, 8))],
        ['big', gv.str(big)], ['floats', gv.arr('float32', floats)], ['after', gv.u32(7)]],
      tensors: [{ name: 'w', type: 'F32', shape: [2], data: [1, 2] }],
    });
    const t0 = Date.now();
    const f = await readGGUF(file);
    const ms = Date.now() - t0;
    expect(ggufMeta(f, 'tokenizer.ggml.tokens', 'array').value).toEqual(tokens);
    expect(ggufMeta(f, 'big', 'string')).toBe(big);
    expect(ggufMeta(f, 'floats', 'array').value).toEqual(floats);
    expect(ggufMeta(f, 'after', 'number')).toBe(7);
    expect(f.tensors[0].bytes).toBe(8);
    expect(ms).toBeLessThan(15000); // ~0.3 s for 300k strings in plain node: this only catches quadratic behavior
  });

  test('v2 files read the same', async () => {
    const b = encodeGGUF({ metadata: [['a', gv.u32(1)]], tensors: [{ name: 'w', type: 'F32', shape: [2], data: [1, 2] }] });
    b.writeUInt32LE(2, 4);
    const file = tmp();
    fs.writeFileSync(file, b);
    const f = await readGGUF(file);
    expect(f.version).toBe(2);
    expect(f.tensors[0].shape).toEqual([2]);
  });
});

describe('Q8_0 quantization', () => {
  test('matches the reference rule on random blocks and dequantizes within half a step', () => {
    for (const [seed, std] of [[11, 1], [12, 1e-3], [13, 100]] as const) {
      const x = normal(32 * 40, seed, std);
      const q = quantizeQ8_0(x);
      expect(Buffer.from(q)).toEqual(refQ8_0Bytes(x));
      const back = dequantizeQ8_0(q, x.length);
      const { d, q: qs } = refQ8_0(x);
      for (let i = 0; i < x.length; i++) {
        const b = Math.floor(i / 32);
        const d16 = f16BitsToF32(f32ToF16Bits(d[b]));
        expect(back[i] + 0).toBe(Math.fround(d16 * qs[i]) + 0); // +0: a -0 product is fine
        expect(Math.abs(back[i] - x[i])).toBeLessThanOrEqual(d[b] / 2 + Math.abs(d[b] - d16) * 127 + 1e-6 * d[b]);
      }
    }
  });

  test('halves round away from zero; a zero block has scale 0; extremes map to ±127', () => {
    const x = new Float32Array(64);
    x.set([127, 2.5, -2.5, 0.5, -0.5, 1.49, -127, 3.5]);
    const q = quantizeQ8_0(x);
    expect(f16BitsToF32(q[0] | (q[1] << 8))).toBe(1);
    expect(Array.from(new Int8Array(q.buffer, 2, 8))).toEqual([127, 3, -3, 1, -1, 1, -127, 4]);
    expect(Array.from(q.subarray(34))).toEqual(new Array(34).fill(0));
    expect(() => quantizeQ8_0(new Float32Array(33))).toThrow(/multiple of 32/);
  });
});

describe('malformed GGUF files give ModelFormatError naming the problem', () => {
  const ok = (): Buffer[] => [head(0, 0)];

  test('magic, version, header', async () => {
    expect(await formatError(raw([head(0, 0, 3, 'GGML')]))).toMatch(/bad magic "GGML", expected "GGUF"/);
    expect(await formatError(raw([head(0, 0, 1)]))).toMatch(/unsupported GGUF version 1 \(supported: 2, 3\)/);
    expect(await formatError(raw([head(0, 0, 4)]))).toMatch(/unsupported GGUF version 4/);
    expect(await formatError(raw([head(0, 0, 0x03000000)]))).toMatch(/big-endian GGUF files are not supported/);
    const f = tmp();
    fs.writeFileSync(f, Buffer.from('GGUF\x03\x00\x00\x00'));
    expect(await formatError(f)).toMatch(/truncated: 8 bytes, fewer than the 24-byte header/);
    expect(await readGGUF(raw(ok()))).toMatchObject({ tensors: [], alignment: 32 });
  });

  test('huge or impossible counts', async () => {
    expect(await formatError(raw([head(2n ** 40n, 0)]))).toMatch(/tensor count 1099511627776 is over the limit of 1048576/);
    expect(await formatError(raw([head(0, 2n ** 64n - 1n)]))).toMatch(/metadata count 18446744073709551615 is over the limit/);
    expect(await formatError(raw([head(1000, 1000)]))).toMatch(/truncated: 1000 metadata entries and 1000 tensor infos need at least 37000 bytes/);
    expect(await formatError(raw([head(0, 2), kv('a', 4, u32(1))], 0, 1))).toMatch(/truncated: 2 metadata entries .* need at least 26 bytes/);
  });

  test('strings', async () => {
    expect(await formatError(raw([head(0, 1), u64(2n ** 62n), Buffer.from('abcdefgh')]))).toMatch(/metadata key #0 has length 4611686018427387904, over the limit/);
    expect(await formatError(raw([head(0, 1), u64(1000), Buffer.from('abcdefghijklm')], 0, 1))).toMatch(/metadata key #0 has length 1000 but the file has 13 bytes left/);
    expect(await formatError(raw([head(0, 1), kv('s', 8, u64(GGUF_LIMITS.stringBytes + 1))]))).toMatch(/metadata "s" has length 67108865, over the limit/);
    expect(await formatError(raw([head(0, 1), kv('s', 8, Buffer.concat([u64(4), Buffer.from([0x61, 0xff, 0xfe, 0x62])]))]))).toMatch(/metadata "s" is not valid UTF-8/);
    expect(await formatError(raw([head(0, 2), kv('k', 4, u32(1)), kv('k', 4, u32(2))]))).toMatch(/duplicate metadata key "k"/);
  });

  test('value types and arrays', async () => {
    expect(await formatError(raw([head(0, 1), kv('t', 13, u32(0))]))).toMatch(/metadata "t" has unknown value type 13/);
    expect(await formatError(raw([head(0, 1), kv('b', 7, Buffer.from([2]))]))).toMatch(/metadata "b" is a bool with byte value 2/);
    expect(await formatError(raw([head(0, 1), kv('a', 9, Buffer.concat([u32(0), u64(2n ** 40n)]))]))).toMatch(/metadata "a" has 1099511627776 array items, over the limit of 268435456/);
    expect(await formatError(raw([head(0, 1), kv('a', 9, Buffer.concat([u32(12), u64(2n ** 27n)]))]))).toMatch(/metadata "a" has 134217728 items of type float64 \(at least 1073741824 bytes\) but the file has \d+ bytes left/);
    expect(await formatError(raw([head(0, 1), kv('a', 9, Buffer.concat([u32(8), u64(1000)]))]))).toMatch(/1000 items of type string \(at least 8000 bytes\)/);
    expect(await formatError(raw([head(0, 1), kv('a', 9, Buffer.concat([u32(99), u64(1)]))]))).toMatch(/metadata "a" \(an array\) has unknown value type 99/);
    expect(await formatError(raw([head(0, 1), kv('a', 9, Buffer.concat([u32(7), u64(2), Buffer.from([1, 5])]))]))).toMatch(/metadata "a"\[1\] is a bool with byte value 5/);
    const strs = Buffer.concat([u32(8), u64(2), str('ok'), str(Buffer.from([0x61, 0xc3]))]);
    expect(await formatError(raw([head(0, 1), kv('a', 9, strs)]))).toMatch(/metadata "a"\[1\] is not valid UTF-8/);
    // arrays of arrays: fine up to the depth bound, an error past it (never a stack overflow)
    const nest = (depth: number): Buffer => Buffer.concat([
      ...new Array<Buffer>(depth).fill(Buffer.concat([u32(9), u64(1)])), u32(0), u64(1), Buffer.from([9])]);
    const f = await readGGUF(raw([head(0, 1), kv('n', 9, nest(GGUF_LIMITS.arrayDepth - 1))]));
    expect(f.metadata.get('n')).toMatchObject({ type: 'array', itemType: 'array' });
    expect(await formatError(raw([head(0, 1), kv('n', 9, nest(GGUF_LIMITS.arrayDepth))]))).toMatch(/metadata "n"\[0\]\[0\]\[0\]\[0\]\[0\]\[0\]\[0\]\[0\] nests arrays deeper than 8 levels/);
    expect(await formatError(raw([head(0, 1), kv('n', 9, nest(100_000))]))).toMatch(/nests arrays deeper than 8 levels/);
    const inner = Buffer.concat([u32(9), u64(1), Buffer.concat([u32(4), u64(2n ** 40n)])]);
    expect(await formatError(raw([head(0, 1), kv('n', 9, inner)]))).toMatch(/metadata "n"\[0\] has 1099511627776 array items/);
  });

  test('alignment', async () => {
    expect(await formatError(raw([head(0, 1), kv('general.alignment', 4, u32(48))]))).toMatch(/general.alignment 48 is not a power of two/);
    expect(await formatError(raw([head(0, 1), kv('general.alignment', 4, u32(0))]))).toMatch(/general.alignment 0 is not a power of two/);
    expect(await formatError(raw([head(0, 1), kv('general.alignment', 10, u64(32))]))).toMatch(/general.alignment has type uint64, expected uint32/);
  });

  test('tensor infos', async () => {
    const one = (t: Buffer, data = 64, extra: Buffer[] = []): string => raw([head(1 + extra.length, 0), t, ...extra], data);
    expect(await formatError(one(info('w', [8], 0, 4)))).toMatch(/tensor "w" has offset 4, not a multiple of the alignment 32/);
    expect(await formatError(one(info('w', [8], 0, 64)))).toMatch(/tensor "w" \(F32, dims \[8\], 32 bytes at data offset 64\) ends at \d+, past the end of the file/);
    expect(await formatError(one(info('w', [2 ** 40], 0, 0)))).toMatch(/past the end of the file/);
    expect(await formatError(one(info('w', [2n ** 62n, 2n ** 62n], 0, 0)))).toMatch(/tensor "w" has dimension 4611686018427387904, too large/);
    expect(await formatError(one(info('w', [1, 1, 1, 1, 1], 0, 0)))).toMatch(/tensor "w" has n_dims 5, more than 4/);
    expect(await formatError(one(info('w', [8], 99, 0)))).toMatch(/unknown ggml type 99 for tensor "w"/);
    expect(await formatError(one(info('w', [32], 12, 0)))).toMatch(/unsupported ggml type Q4_K \(12\) for tensor "w"/);
    expect(await formatError(one(info('w', [33, 2], 8, 0), 256))).toMatch(/Q8_0 tensor "w" has dims\[0\] = 33, not a multiple of the block size 32/);
    expect(await formatError(one(info('w', [8], 0, 0), 64, [info('w', [8], 0, 32)]))).toMatch(/duplicate tensor name "w"/);
    expect(await formatError(one(info('a', [16], 0, 0), 64, [info('b', [8], 0, 32)]))).toMatch(/tensor "b" \(bytes \d+..\d+\) overlaps tensor "a"/);
    expect(await formatError(one(info('x'.repeat(64), [8], 0, 0)))).toMatch(/is longer than 63 bytes/);
    expect(await formatError(raw([head(1, 0), info('w', [8], 0, 0)], 0))).toMatch(/past the end of the file/);
    const q = await readGGUF(one(info('q', [64, 2], 8, 0), 4 * 34));
    expect(q.tensors[0]).toMatchObject({ type: 'Q8_0', bytes: 4 * 34, shape: [2, 64] });
  });

  test('every truncation of a valid file is rejected (or parses once all tensor bytes are present)', async () => {
    const valid = encodeGGUF({ metadata: [['a', gv.arr('string', ['x', 'yz'])], ['b', gv.f32(2)]], tensors: sampleTensors().slice(0, 3) });
    const f = tmp();
    fs.writeFileSync(f, valid);
    const { tensors } = await readGGUF(f);
    const end = Math.max(...tensors.map((t) => t.offset + t.bytes));
    for (let n = 0; n < valid.length; n++) {
      fs.writeFileSync(f, valid.subarray(0, n));
      if (n >= end) await expect(readGGUF(f)).resolves.toBeDefined();
      else expect(await formatError(f)).toMatch(/truncated|past the end of the file/);
    }
  });
});

test('300 random corruptions of a valid file each parse or throw ModelFormatError', async () => {
  const valid = encodeGGUF({ metadata: sampleMetadata(), tensors: sampleTensors() });
  const f0 = tmp();
  fs.writeFileSync(f0, valid);
  const headerEnd = (await readGGUF(f0)).dataOffset;
  const r = rng(4321);
  const pick = (n: number): number => Math.floor(r() * n);
  const outcomes = { parsed: 0, rejected: 0 };
  const file = tmp();
  for (let i = 0; i < 300; i++) {
    let b = Buffer.from(valid);
    const kind = i % 5;
    if (kind === 0) b = b.subarray(0, pick(b.length));
    else if (kind === 1) for (let k = 0; k <= pick(4); k++) b[pick(headerEnd)] = pick(256);
    else if (kind === 2) b.writeBigUInt64LE(BigInt(pick(2 ** 31)) ** BigInt(1 + pick(2)), pick(headerEnd - 8)); // a size field gone wild
    else if (kind === 3) b.writeUInt32LE(pick(2) ? pick(16) : pick(2 ** 32), 4 * pick(headerEnd / 4 - 1)); // a type or count
    else {
      const at = pick(headerEnd);
      b = pick(2) ? Buffer.concat([b.subarray(0, at), Buffer.from([pick(256)]), b.subarray(at)]) : Buffer.concat([b.subarray(0, at), b.subarray(at + 1)]);
    }
    fs.writeFileSync(file, b);
    try {
      await readGGUF(file);
      outcomes.parsed++;
    } catch (e) {
      if (!(e instanceof ModelFormatError)) throw new Error(`mutation ${i} (kind ${kind}) threw ${String(e)}`);
      outcomes.rejected++;
    }
  }
  expect(outcomes.rejected).toBeGreaterThan(100);
}, 60000);

// safetensors reader/writer: round trips (single file and shards), every malformation the format's rules name
// giving a ModelFormatError that names the problem, and random corruptions never giving any other error.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { ModelFormatError } from '../../lib/errors';
import {
  findDuplicateJsonKey, readSafetensors, readSafetensorsModel, safetensorsSource,
} from '../../lib/formats/safetensors';
import {
  encodeSafetensors, tensorBytes, writeSafetensors, writeSafetensorsShards, type SafetensorsWriterTensor,
} from '../../lib/formats/safetensors-writer';
import { rng, uniform } from '../util/random';

let dir: string;
beforeAll(() => { dir = fs.mkdtempSync(path.join(os.tmpdir(), 'eet-st-')); });
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

let fileNo = 0;
function tmp(name = `t${fileNo++}.safetensors`): string { return path.join(dir, name); }

const sample = (): SafetensorsWriterTensor[] => [
  { name: 'wte.weight', dtype: 'F32', shape: [5, 3], data: uniform(15, 1) },
  { name: 'ln.weight', dtype: 'F16', shape: [7], data: uniform(7, 2) },
  { name: 'h.0.attn.c_attn.weight', dtype: 'BF16', shape: [3, 1, 2], data: uniform(6, 3) },
  { name: 'empty', dtype: 'F32', shape: [0, 4], data: new Float32Array(0) },
  { name: 'scalar', dtype: 'F32', shape: [], data: [0.5] },
];

/** A file from a header given as text (or object) and a data section; `len` overrides the stored header length. */
function build(header: string | object, data: Uint8Array | number = 0, len?: bigint): string {
  const json = Buffer.from(typeof header === 'string' ? header : JSON.stringify(header), 'utf8');
  const n = Buffer.alloc(8);
  n.writeBigUInt64LE(len ?? BigInt(json.length));
  const file = tmp();
  fs.writeFileSync(file, Buffer.concat([n, json, typeof data === 'number' ? Buffer.alloc(data, 7) : data]));
  return file;
}

async function formatError(file: string): Promise<string> {
  const e = await readSafetensors(file).then(() => null, (err: unknown) => err);
  expect(e).toBeInstanceOf(ModelFormatError);
  expect((e as ModelFormatError).code).toBe('ERR_MODEL_FORMAT');
  return (e as Error).message;
}

const f32 = (name: string, begin: number, end: number, shape = [(end - begin) / 4]): Record<string, unknown> =>
  ({ [name]: { dtype: 'F32', shape, data_offsets: [begin, end] } });

describe('safetensors round trip', () => {
  test('write → read: names, dtypes, shapes, metadata, and the bytes at the returned offsets', async () => {
    const file = tmp();
    const tensors = sample();
    await writeSafetensors(file, tensors, { format: 'pt', note: 'ünïcode' });
    const f = await readSafetensors(file);
    const bytes = fs.readFileSync(file);
    expect(f.metadata).toEqual({ format: 'pt', note: 'ünïcode' });
    expect(f.fileBytes).toBe(bytes.length);
    expect((8 + f.headerBytes) % 8).toBe(0);
    expect(f.tensors.map((t) => [t.name, t.dtype, t.shape])).toEqual(tensors.map((t) => [t.name, t.dtype, t.shape]));
    for (const [i, t] of f.tensors.entries()) {
      expect(t.path).toBe(file);
      expect(Buffer.from(bytes.subarray(t.offset, t.offset + t.bytes))).toEqual(Buffer.from(tensorBytes(tensors[i])));
    }
    expect(safetensorsSource(f.tensors[1])).toEqual({ path: file, offset: f.tensors[1].offset, bytes: 14, dtype: 'float16', shape: [7] });
    expect(safetensorsSource(f.tensors[2]).dtype).toBe('bfloat16');
  });

  test('tensors are returned in file order whatever the header order', async () => {
    const file = build({ ...f32('b', 8, 16), __metadata__: { a: 'b' }, ...f32('a', 0, 8) }, 16);
    const f = await readSafetensors(file);
    expect(f.tensors.map((t) => t.name)).toEqual(['a', 'b']);
    expect(f.tensors.map((t) => t.offset)).toEqual([8 + f.headerBytes, 16 + f.headerBytes]);
  });

  test('non-float tensors are listed (layout checked) but safetensorsSource rejects them, naming the tensor', async () => {
    const file = tmp();
    await writeSafetensors(file, [
      { name: 'embeddings.position_ids', dtype: 'I64', shape: [1, 3], raw: new Uint8Array(24) },
      { name: 'w', dtype: 'F32', shape: [2], data: [1, 2] },
    ]);
    const f = await readSafetensors(file);
    expect(f.tensors[0]).toMatchObject({ dtype: 'I64', bytes: 24 });
    expect(() => safetensorsSource(f.tensors[0])).toThrow(ModelFormatError);
    expect(() => safetensorsSource(f.tensors[0])).toThrow(/unsupported dtype I64 for tensor "embeddings.position_ids"/);
  });

  test('sharded checkpoint through model.safetensors.index.json; a directory finds the index or model.safetensors', async () => {
    const shardDir = fs.mkdtempSync(path.join(dir, 'shards-'));
    const t = sample();
    const index = await writeSafetensorsShards(shardDir, [t.slice(0, 2), t.slice(2)]);
    for (const where of [index, shardDir]) {
      const m = await readSafetensorsModel(where);
      expect(m.files.map((f) => path.basename(f.path))).toEqual(['model-00001-of-00002.safetensors', 'model-00002-of-00002.safetensors']);
      expect(m.tensors.map((x) => x.name)).toEqual(t.map((x) => x.name));
      expect(m.metadata).toEqual({ total_size: t.reduce((a, x) => a + tensorBytes(x).byteLength, 0) });
    }
    const single = fs.mkdtempSync(path.join(dir, 'single-'));
    await writeSafetensors(path.join(single, 'model.safetensors'), t, { format: 'pt' });
    const m = await readSafetensorsModel(single);
    expect(m.tensors.length).toBe(t.length);
    expect(m.metadata).toEqual({ format: 'pt' });
  });

  test('inconsistent shard indexes', async () => {
    const shardDir = fs.mkdtempSync(path.join(dir, 'badidx-'));
    const index = await writeSafetensorsShards(shardDir, [sample().slice(0, 2), sample().slice(2)]);
    const good = JSON.parse(fs.readFileSync(index, 'utf8'));
    const cases: Array<[(wm: Record<string, string>) => void, RegExp]> = [
      [(wm) => { wm['ghost'] = 'model-00001-of-00002.safetensors'; }, /tensor "ghost" is missing from shard model-00001/],
      [(wm) => { delete wm['ln.weight']; }, /tensor "ln.weight" is in shard model-00001-of-00002.safetensors but weight_map does not list it/],
      [(wm) => { wm['ln.weight'] = 'model-00002-of-00002.safetensors'; }, /"ln.weight" is in shard model-00001-of-00002.safetensors but weight_map puts it in model-00002/],
      [(wm) => { wm['ln.weight'] = '../escape.safetensors'; }, /names "..\/escape.safetensors", not a file in the index's directory/],
      [(wm) => { wm['ln.weight'] = 7 as unknown as string; }, /weight_map entry for "ln.weight" is not a file name/],
      [(wm) => { wm['ghost'] = 'nope.safetensors'; }, /Cannot open the safetensors file .*nope.safetensors/],
    ];
    for (const [edit, message] of cases) {
      const idx = structuredClone(good);
      edit(idx.weight_map);
      fs.writeFileSync(index, JSON.stringify(idx));
      await expect(readSafetensorsModel(index)).rejects.toThrow(message);
      await expect(readSafetensorsModel(index)).rejects.toBeInstanceOf(ModelFormatError);
    }
    fs.writeFileSync(index, '{"weight_map": {"a": "x"}, "weight_map": {}}');
    await expect(readSafetensorsModel(index)).rejects.toThrow(/duplicate entry "weight_map" in the index/);
    fs.writeFileSync(index, '{"metadata": {}}');
    await expect(readSafetensorsModel(index)).rejects.toThrow(/no "weight_map" object/);
  });
});

describe('malformed safetensors files give ModelFormatError naming the problem', () => {
  test('truncated, oversized or inconsistent header length', async () => {
    const short = tmp();
    fs.writeFileSync(short, Buffer.from([1, 2, 3]));
    expect(await formatError(short)).toMatch(/truncated: 3 bytes, fewer than the 8-byte header length/);
    expect(await formatError(build('{}', 0, 2n ** 63n))).toMatch(/header length 9223372036854775808 exceeds the limit of 100000000 bytes/);
    expect(await formatError(build('{}', 0, 100_000_001n))).toMatch(/exceeds the limit/);
    expect(await formatError(build('{}', 0, 50n))).toMatch(/truncated: header length 50 but only 2 bytes follow/);
    const full = encodeSafetensors(sample());
    const cut = tmp();
    fs.writeFileSync(cut, full.subarray(0, 20));
    expect(await formatError(cut)).toMatch(/truncated: header length \d+ but only 12 bytes follow/);
  });

  test('header text that is not a JSON object', async () => {
    expect(await formatError(build('{"a": '))).toMatch(/the header is not valid JSON/);
    expect(await formatError(build('[1, 2]'))).toMatch(/does not start with "\{"/);
    expect(await formatError(build(' {}'))).toMatch(/does not start with "\{"/);
    expect(await formatError(build('{} x'))).toMatch(/not valid JSON/);
    const bad = Buffer.concat([Buffer.from('{"'), Buffer.from([0xff, 0xfe]), Buffer.from('": 1}')]);
    const n = Buffer.alloc(8);
    n.writeBigUInt64LE(BigInt(bad.length));
    const f = tmp();
    fs.writeFileSync(f, Buffer.concat([n, bad]));
    expect(await formatError(f)).toMatch(/the header is not valid UTF-8/);
  });

  test('entries with wrong fields', async () => {
    expect(await formatError(build({ w: 3 }))).toMatch(/the entry for tensor "w" is not an object/);
    expect(await formatError(build({ w: { shape: [1], data_offsets: [0, 4] } }, 4))).toMatch(/tensor "w" has no dtype string/);
    expect(await formatError(build({ w: { dtype: 'Q7', shape: [1], data_offsets: [0, 4] } }, 4))).toMatch(/unknown dtype "Q7" for tensor "w"/);
    expect(await formatError(build({ w: { dtype: 'toString', shape: [1], data_offsets: [0, 4] } }, 4))).toMatch(/unknown dtype "toString"/);
    expect(await formatError(build({ w: { dtype: 'F32', shape: [-1], data_offsets: [0, 4] } }, 4))).toMatch(/tensor "w" has shape \[-1\], expected an array of non-negative integers/);
    expect(await formatError(build({ w: { dtype: 'F32', shape: [1.5], data_offsets: [0, 4] } }, 4))).toMatch(/has shape \[1.5\]/);
    expect(await formatError(build({ w: { dtype: 'F32', shape: 4, data_offsets: [0, 4] } }, 4))).toMatch(/has shape 4/);
    expect(await formatError(build({ w: { dtype: 'F32', shape: [1], data_offsets: [0, 4, 8] } }, 4))).toMatch(/data_offsets \[0,4,8\], expected \[begin, end\]/);
    expect(await formatError(build('{"w": {"dtype": "F32", "shape": [1], "data_offsets": [0, 1e300]}}', 4))).toMatch(/data_offsets \[0,1e\+300\]/);
    expect(await formatError(build({ w: { dtype: 'F32', shape: [0], data_offsets: [4, 0] } }, 4))).toMatch(/data_offsets \[4, 0\] with begin > end/);
    expect(await formatError(build({ __metadata__: { a: 1 } }))).toMatch(/__metadata__ value for "a" is not a string/);
    expect(await formatError(build({ __metadata__: [] }))).toMatch(/__metadata__ is not an object/);
    expect(await formatError(build({ w: { dtype: 'F4', shape: [3], data_offsets: [0, 1] } }, 1))).toMatch(/not a whole number of bytes/);
  });

  test('duplicate tensor names (which JSON.parse would merge)', async () => {
    const text = '{"w": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}, "w": {"dtype": "F32", "shape": [1], "data_offsets": [4, 8]}}';
    expect(await formatError(build(text, 8))).toMatch(/duplicate entry "w" in the header/);
    const inner = '{"w": {"dtype": "F32", "dtype": "F16", "shape": [1], "data_offsets": [0, 4]}}';
    expect(await formatError(build(inner, 4))).toMatch(/duplicate key "dtype" in the header/);
    expect(findDuplicateJsonKey('{"a": ["a", {"a": 1, "b": "\\"a"}], "b": "a,\\"a"}')).toBeNull();
    expect(findDuplicateJsonKey('{"a\\u0062": 1, "ab": 2}')).toEqual({ key: 'ab', depth: 1 });
  });

  test('offsets that overlap, leave gaps, or disagree with the shape, and files of the wrong size', async () => {
    expect(await formatError(build({ ...f32('a', 0, 8), ...f32('b', 4, 12) }, 12))).toMatch(/tensor "b" data_offsets \[4, 12\] overlap the previous tensor \(which ends at 8\)/);
    expect(await formatError(build({ ...f32('a', 0, 8), ...f32('b', 12, 16) }, 16))).toMatch(/gap in the data section: bytes 8..12 before tensor "b"/);
    expect(await formatError(build({ ...f32('a', 4, 8) }, 8))).toMatch(/gap in the data section: bytes 0..4/);
    expect(await formatError(build({ a: { dtype: 'F32', shape: [3], data_offsets: [0, 8] } }, 8))).toMatch(/tensor "a" has 8 bytes \(data_offsets \[0, 8\]\) but dtype F32 × shape \[3\] needs 12/);
    expect(await formatError(build({ a: { dtype: 'BF16', shape: [2, 2], data_offsets: [0, 16] } }, 16))).toMatch(/needs 8/);
    expect(await formatError(build({ ...f32('a', 0, 8) }, 4))).toMatch(/truncated: the header describes \d+ bytes \(8 \+ \d+ header \+ 8 data\) but the file has/);
    expect(await formatError(build({ ...f32('a', 0, 8) }, 9))).toMatch(/trailing bytes/);
    expect(await formatError(build({ ...f32('a', 0, 2 ** 40) }, 8))).toMatch(/truncated: the header describes/);
    expect(await formatError(build({}, 1))).toMatch(/trailing bytes: the header describes 10 bytes/);
  });

  test('a path that is not a file', async () => {
    await expect(readSafetensors(dir)).rejects.toThrow(/not a regular file/);
    await expect(readSafetensors(path.join(dir, 'missing'))).rejects.toThrow(/Cannot open the safetensors file/);
    await expect(readSafetensorsModel(path.join(dir, 'missing'))).rejects.toBeInstanceOf(ModelFormatError);
  });
});

test('300 random corruptions of a valid file each parse or throw ModelFormatError', async () => {
  const valid = encodeSafetensors(sample(), { format: 'pt' });
  const headerEnd = 8 + Number(valid.readBigUInt64LE(0));
  const r = rng(1234);
  const pick = (n: number): number => Math.floor(r() * n);
  const outcomes = { parsed: 0, rejected: 0 };
  const file = tmp('fuzz.safetensors');
  for (let i = 0; i < 300; i++) {
    let b = Buffer.from(valid);
    const kind = i % 5;
    if (kind === 0) b = b.subarray(0, pick(b.length));
    else if (kind === 1) for (let k = 0; k <= pick(4); k++) b[pick(headerEnd)] = pick(256);
    else if (kind === 2) b.writeBigUInt64LE(BigInt(pick(2 ** 31)) * BigInt(1 + pick(2 ** 20)), 0);
    else if (kind === 3) {
      // replace a digit in the JSON text with another digit: offsets and shapes shift
      const digits = [...b.subarray(8, headerEnd).entries()].filter(([, c]) => c >= 0x30 && c <= 0x39).map(([j]) => j + 8);
      b[digits[pick(digits.length)]] = 0x30 + pick(10);
    } else {
      const at = pick(b.length);
      b = pick(2) ? Buffer.concat([b.subarray(0, at), Buffer.from([pick(256)]), b.subarray(at)]) : Buffer.concat([b.subarray(0, at), b.subarray(at + 1)]);
    }
    fs.writeFileSync(file, b);
    try {
      await readSafetensors(file);
      outcomes.parsed++;
    } catch (e) {
      if (!(e instanceof ModelFormatError)) throw new Error(`mutation ${i} (kind ${kind}) threw ${String(e)}`);
      outcomes.rejected++;
    }
  }
  expect(outcomes.parsed + outcomes.rejected).toBe(300);
  expect(outcomes.rejected).toBeGreaterThan(150);
}, 60000);

// Malformed llama2.c checkpoints, generated in a temp dir from the real stories260K.bin: each one is a
// ModelFormatError (code ERR_MODEL_FORMAT) whose message names the problem. Only the header is read in JS, so
// none of this needs the native engine.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { ModelFormatError, UnsupportedError } from '../../lib/errors';
import { readLlama2cCheckpoint } from '../../lib/loaders/llama2c';
import { loadModel } from '../../lib/model';
import { MODEL } from '../util/stories260k';

const FIELDS = ['dim', 'hidden_dim', 'n_layers', 'n_heads', 'n_kv_heads', 'vocab_size', 'seq_len'] as const;
type Field = (typeof FIELDS)[number];

let dir: string;
let good: Buffer;
let n = 0;
beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'eet-llama2c-'));
  good = fs.readFileSync(MODEL);
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

function write(buf: Buffer): string {
  const f = path.join(dir, `m${n++}.bin`);
  fs.writeFileSync(f, buf);
  return f;
}

function withHeader(changes: Partial<Record<Field, number>>, body: Buffer = good): Buffer {
  const b = Buffer.from(body);
  for (const [k, v] of Object.entries(changes)) b.writeInt32LE(v, 4 * FIELDS.indexOf(k as Field));
  return b;
}

async function expectFormat(buf: Buffer, re: RegExp): Promise<void> {
  const f = write(buf);
  const err = await readLlama2cCheckpoint(f).then(() => null, (e: unknown) => e);
  expect(err).toBeInstanceOf(ModelFormatError);
  expect((err as ModelFormatError).code).toBe('ERR_MODEL_FORMAT');
  expect((err as Error).message).toContain(f);
  expect((err as Error).message).toMatch(re);
}

describe('llama2.c checkpoint layout', () => {
  test('stories260K: config and tensors as the README describes', async () => {
    const c = await readLlama2cCheckpoint(MODEL);
    expect(c.config).toMatchObject({
      arch: 'llama', dim: 64, hiddenDim: 172, nLayers: 5, nHeads: 8, nKvHeads: 4, headDim: 8, vocabSize: 512, maxSeqLen: 512,
      tiedEmbeddings: true, ropeLayout: 'adjacent', ropeTheta: 10000, normEps: 1e-5,
    });
    const byName = new Map(c.tensors.map((t) => [t.name, t.source]));
    expect(c.tensors).toHaveLength(1 + 9 * 5 + 1);
    expect(byName.has('output')).toBe(false);
    expect(byName.get('token_embd')).toMatchObject({ offset: 28, bytes: 512 * 64 * 4, shape: [512, 64], dtype: 'float32', path: MODEL });
    const afterEmbd = 28 + 512 * 64 * 4;
    expect(byName.get('blk.0.attn_norm')).toMatchObject({ offset: afterEmbd, shape: [64] });
    expect(byName.get('blk.4.attn_norm')).toMatchObject({ offset: afterEmbd + 4 * 64 * 4 });
    expect(byName.get('blk.0.attn_q')).toMatchObject({ offset: afterEmbd + 5 * 64 * 4, shape: [64, 64] });
    expect(byName.get('blk.1.attn_k')).toMatchObject({ shape: [32, 64] });
    expect(byName.get('blk.2.ffn_down')).toMatchObject({ shape: [64, 172] });
    expect(byName.get('blk.2.ffn_gate')).toMatchObject({ shape: [172, 64] });
    // rms_final is followed by the two legacy freq_cis tables (512 x 4 floats each), which end the file.
    expect(byName.get('output_norm')!.offset + 64 * 4 + 2 * 512 * 4 * 4).toBe(good.length);
    // Tensors do not overlap and stay inside the file.
    const spans = c.tensors.map((t) => [t.source.offset, t.source.offset + t.source.bytes]).sort((a, b) => a[0] - b[0]);
    for (let i = 1; i < spans.length; i++) expect(spans[i][0]).toBeGreaterThanOrEqual(spans[i - 1][1]);
  });

  test('a negative vocab_size with a separate wcls appended is accepted; output follows the freq_cis tables', async () => {
    const f = write(Buffer.concat([withHeader({ vocab_size: -512 }), good.subarray(28, 28 + 512 * 64 * 4)]));
    const c = await readLlama2cCheckpoint(f);
    expect(c.config.tiedEmbeddings).toBe(false);
    const out = c.tensors.find((t) => t.name === 'output')!;
    expect(out.source).toMatchObject({ offset: good.length, bytes: 512 * 64 * 4, shape: [512, 64] });
  });
});

describe('malformed llama2.c checkpoints → ModelFormatError', () => {
  test('shorter than the header', () => expectFormat(good.subarray(0, 20), /truncated: 20 bytes, fewer than the 28-byte header/));
  test('truncated by one byte', () => expectFormat(good.subarray(0, good.length - 1), /truncated: .*implies 1056540 bytes .* but the file has 1056539/));
  test('truncated to the header', () => expectFormat(good.subarray(0, 28), /truncated: .*but the file has 28/));
  test('extra bytes at the end', () => expectFormat(Buffer.concat([good, Buffer.alloc(4)]), /longer than its header implies: .*implies 1056540 bytes/));
  test('negative vocab_size (untied) without its wcls', () => expectFormat(withHeader({ vocab_size: -512 }), /truncated: .*with a separate wcls/));
  test('negative dim', () => expectFormat(withHeader({ dim: -64 }), /header field dim is -64, expected a positive integer/));
  test('hidden_dim 0', () => expectFormat(withHeader({ hidden_dim: 0 }), /header field hidden_dim is 0/));
  test('n_layers negative', () => expectFormat(withHeader({ n_layers: -5 }), /header field n_layers is -5/));
  test('n_heads 0', () => expectFormat(withHeader({ n_heads: 0 }), /header field n_heads is 0/));
  test('n_kv_heads 0', () => expectFormat(withHeader({ n_kv_heads: 0 }), /header field n_kv_heads is 0/));
  test('seq_len 0', () => expectFormat(withHeader({ seq_len: 0 }), /header field seq_len is 0/));
  test('vocab_size 0', () => expectFormat(withHeader({ vocab_size: 0 }), /header field vocab_size is 0/));
  test('vocab_size INT32_MIN', () => expectFormat(withHeader({ vocab_size: -(2 ** 31) }), /header field vocab_size is -2147483648/));
  test('n_heads not dividing dim', () => expectFormat(withHeader({ n_heads: 7 }), /n_heads \(7\) does not divide dim \(64\)/));
  test('n_kv_heads not dividing n_heads', () => expectFormat(withHeader({ n_kv_heads: 3 }), /n_kv_heads \(3\) does not divide n_heads \(8\)/));
  test('n_kv_heads larger than n_heads', () => expectFormat(withHeader({ n_kv_heads: 16 }), /n_kv_heads \(16\) does not divide n_heads \(8\)/));
  test('odd head size', () => expectFormat(withHeader({ n_heads: 64, n_kv_heads: 64 }), /head size dim\/n_heads = 1 is odd/));
  test('huge n_layers (no overflow: exact size check)', () => expectFormat(withHeader({ n_layers: 2 ** 31 - 1 }), /truncated: .*n_layers 2147483647/));
  test('huge dim and hidden_dim', () => expectFormat(withHeader({ dim: 2 ** 30, hidden_dim: 2 ** 31 - 1, n_heads: 2 ** 29, n_kv_heads: 2 ** 29 }), /truncated: .*implies \d{20,} bytes/));
  test('huge seq_len', () => expectFormat(withHeader({ seq_len: 2 ** 31 - 1 }), /truncated: .*seq_len 2147483647/));
  test('huge vocab_size', () => expectFormat(withHeader({ vocab_size: 2 ** 31 - 1 }), /truncated: .*vocab_size 2147483647/));
  test('a newer llama2.c export (magic ak42)', () => expectFormat(withHeader({ dim: 0x616b3432 }), /magic "ak42" .*version 0/));
  test('a missing file', async () => {
    await expect(readLlama2cCheckpoint(path.join(dir, 'nope.bin'))).rejects.toMatchObject({ code: 'ERR_MODEL_FORMAT', message: expect.stringMatching(/Cannot open the model/) });
  });
});

describe('loadModel on malformed inputs (fails before any native work)', () => {
  test('a truncated checkpoint', async () => {
    const f = write(good.subarray(0, 1000));
    await expect(loadModel(f, { device: 'cpu', tokenizer: f })).rejects.toMatchObject({ code: 'ERR_MODEL_FORMAT', message: expect.stringMatching(/truncated/) });
  });
  test('a checkpoint whose vocab does not match the tokenizer', async () => {
    const f = write(withHeader({ vocab_size: 256 }, good.subarray(0, good.length - 256 * 64 * 4)));
    await expect(loadModel(f, { device: 'cpu', tokenizer: path.join(path.dirname(MODEL), 'tok512.bin') }))
      .rejects.toMatchObject({ code: 'ERR_MODEL_FORMAT', message: expect.stringMatching(/256 pieces the model's vocab_size calls for/) });
  });
  test('no tokenizer next to the model', async () => {
    const f = write(good);
    await expect(loadModel(f, { device: 'cpu' })).rejects.toMatchObject({ code: 'ERR_MODEL_FORMAT', message: expect.stringMatching(/No tokenizer found .*tok512\.bin, .*tokenizer\.bin/) });
  });
  test('a directory is not supported yet', async () => {
    await expect(loadModel(dir, { device: 'cpu' })).rejects.toBeInstanceOf(UnsupportedError);
  });
  test('bad options are argument errors', async () => {
    await expect(loadModel(MODEL, { device: 'tpu' })).rejects.toMatchObject({ code: 'ERR_INVALID_ARG', message: expect.stringMatching(/for device but received "tpu"/) });
    await expect(loadModel(MODEL, { device: 'cpu', maxSeqLen: 513 })).rejects.toMatchObject({ message: 'Expected integer between 1 and 512 for maxSeqLen but received 513 of type number' });
    await expect(loadModel(MODEL, { device: 'cpu', dtype: 'int8' as never })).rejects.toMatchObject({ code: 'ERR_INVALID_ARG' });
    await expect(loadModel(MODEL, { device: 'cpu', maxBatch: 0 })).rejects.toMatchObject({ message: 'Expected integer between 1 and 4096 for maxBatch but received 0 of type number' });
  });
});

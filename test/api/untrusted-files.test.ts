// Paths that are not regular files (issue 11, item 3): a FIFO as the model or the tokenizer used to block a libuv
// thread for ever (opening a FIFO waits for a writer), /dev/zero was read without end, a directory where a file is
// expected failed late. Each must be a coded error before anything is opened; reads are bounded by the file's size
// and a limit per kind of file, and honour the AbortSignal. If one of these regresses to a blocking open, the test
// times out (a short per-test timeout) and afterAll opens the FIFOs for writing, which releases the stuck reader.
import { execFileSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { loadModel } from '../../lib/model';
import { inspectModel } from '../../lib/cli/inspect';
import { READ_LIMITS, readRegularFile } from '../../lib/loaders/files';
import { loadLlama2cTokenizer } from '../../lib/tokenizers/llama2c';
import type { ModelFileConfig } from '../../lib/arch';
import { expectCode, hfTensors, randomWeights } from '../util/engine-helpers';
import { bpeTokenizer, removeFolders, writeFolder } from '../util/hf-folders';
import { MODEL, TOKENIZER } from '../util/stories260k';

/** A complete tiny llama folder, so every file of it is read. */
const LLAMA_JSON = { model_type: 'llama', hidden_size: 32, intermediate_size: 40, num_hidden_layers: 1, num_attention_heads: 4, vocab_size: 48, max_position_embeddings: 64 };
const LLAMA_CFG: ModelFileConfig = { arch: 'llama', dim: 32, hiddenDim: 40, nLayers: 1, nHeads: 4, nKvHeads: 4, headDim: 8, vocabSize: 48, maxSeqLen: 64,
  normEps: 1e-6, ropeTheta: 10000, ropeLayout: 'half', tiedEmbeddings: false };

const QUICK = 10_000;
let dir: string;
const fifos: string[] = [];

function fifo(name: string): string {
  const f = path.join(dir, name);
  execFileSync('mkfifo', [f]);
  fifos.push(f);
  return f;
}

beforeAll(() => { dir = fs.mkdtempSync(path.join(os.tmpdir(), 'eet-untrusted-')); });
afterAll(() => {
  for (const f of fifos) {
    try { fs.closeSync(fs.openSync(f, fs.constants.O_WRONLY | fs.constants.O_NONBLOCK)); } catch { /* no reader waiting: as it should be */ }
  }
  fs.rmSync(dir, { recursive: true, force: true });
  removeFolders();
});

describe('a FIFO is refused before it is opened', () => {
  test('as the model (llama2.c and .gguf paths), through loadModel and eet inspect', async () => {
    for (const name of ['model.bin', 'model.gguf']) {
      const f = fifo(name);
      await expectCode(loadModel(f, { device: 'cpu' }), 'ERR_MODEL_FORMAT', /FIFO/);
      await expectCode(inspectModel(f), 'ERR_MODEL_FORMAT', /FIFO/);
    }
  }, QUICK);

  test('as the tokenizer option, and as tok<vocab>.bin found next to the model', async () => {
    await expectCode(loadModel(MODEL, { device: 'cpu', tokenizer: fifo('tok.bin') }), 'ERR_MODEL_FORMAT', /tokenizer .*FIFO/);
    const sub = path.join(dir, 'beside');
    fs.mkdirSync(sub);
    fs.copyFileSync(MODEL, path.join(sub, 'stories.bin'));
    execFileSync('mkfifo', [path.join(sub, 'tok512.bin')]);
    fifos.push(path.join(sub, 'tok512.bin'));
    await expectCode(loadModel(path.join(sub, 'stories.bin'), { device: 'cpu' }), 'ERR_MODEL_FORMAT', /FIFO/);
  }, QUICK);

  test('as any file of a Hugging Face folder', async () => {
    for (const name of ['config.json', 'tokenizer.json', 'tokenizer_config.json', 'generation_config.json', 'model.safetensors']) {
      const d = await writeFolder({
        config: LLAMA_JSON, tensors: hfTensors(LLAMA_CFG, randomWeights(LLAMA_CFG, 1)), tokenizer: bpeTokenizer(48, true), tokenizerConfig: {}, generationConfig: {},
      });
      await (await loadModel(d, { device: 'cpu', maxBatch: 1 })).dispose(); // the folder loads as written
      fs.rmSync(path.join(d, name));
      execFileSync('mkfifo', [path.join(d, name)]);
      fifos.push(path.join(d, name));
      await expectCode(loadModel(d, { device: 'cpu' }), 'ERR_MODEL_FORMAT', /FIFO/);
    }
  }, QUICK);
});

describe('devices and directories', () => {
  test('/dev/zero as the tokenizer or the model is refused without a byte read', async () => {
    await expectCode(loadModel(MODEL, { device: 'cpu', tokenizer: '/dev/zero' }), 'ERR_MODEL_FORMAT', /character device/);
    await expectCode(loadModel('/dev/zero', { device: 'cpu' }), 'ERR_MODEL_FORMAT', /character device/);
    const link = path.join(dir, 'zero.gguf');
    fs.symlinkSync('/dev/zero', link);
    await expectCode(loadModel(link, { device: 'cpu' }), 'ERR_MODEL_FORMAT', /character device/);
  }, QUICK);

  test('a directory where a file is expected', async () => {
    await expectCode(loadModel(MODEL, { device: 'cpu', tokenizer: dir }), 'ERR_MODEL_FORMAT', /tokenizer .* is a directory/);
    await expectCode(loadLlama2cTokenizer(dir), 'ERR_MODEL_FORMAT', /directory/);
    const gdir = path.join(dir, 'dir.gguf');
    fs.mkdirSync(gdir);
    await expectCode(loadModel(gdir, { device: 'cpu' }), 'ERR_UNSUPPORTED', /directory without config\.json/);
    const d = await writeFolder({ config: { model_type: 'llama' }, tensors: [], tokenizer: bpeTokenizer(48, true), tokenizerConfig: {} });
    fs.rmSync(path.join(d, 'model.safetensors'));
    fs.mkdirSync(path.join(d, 'model.safetensors'));
    fs.rmSync(path.join(d, 'config.json'));
    fs.mkdirSync(path.join(d, 'config.json'));
    await expectCode(loadModel(d, { device: 'cpu' }), 'ERR_MODEL_FORMAT', /config\.json: it is a directory/);
  });
});

describe('reads are bounded', () => {
  test('a config.json or tokenizer file over its limit is refused by its size (sparse files: nothing is read)', async () => {
    const d = await writeFolder({ config: { model_type: 'llama' }, tensors: [], tokenizer: {}, tokenizerConfig: {} });
    fs.truncateSync(path.join(d, 'config.json'), READ_LIMITS.configJson + 1);
    await expectCode(loadModel(d, { device: 'cpu' }), 'ERR_MODEL_FORMAT', new RegExp(`config\\.json: it has ${READ_LIMITS.configJson + 1} bytes, over the limit`));
    const big = path.join(dir, 'tok-big.bin');
    fs.writeFileSync(big, '');
    fs.truncateSync(big, READ_LIMITS.llama2cTokenizer + 1);
    await expectCode(loadModel(MODEL, { device: 'cpu', tokenizer: big }), 'ERR_MODEL_FORMAT', /over the limit/);
  });

  test('an aborted signal stops a read between chunks (ERR_ABORTED), and loadModel passes its signal to the readers', async () => {
    const f = path.join(dir, 'sparse.json');
    fs.writeFileSync(f, '');
    fs.truncateSync(f, 64 * 2 ** 20); // 16 chunks
    const ac = new AbortController();
    const p = readRegularFile(f, 'file', READ_LIMITS.tokenizerJson, ac.signal);
    setImmediate(() => ac.abort());
    await expectCode(p, 'ERR_ABORTED', /Reading the file was aborted/);
    await expectCode(loadModel(MODEL, { device: 'cpu', tokenizer: TOKENIZER, signal: AbortSignal.abort() }), 'ERR_ABORTED');
  });
});

// `eet inspect`: the report of GGUF files (F32 and Q8_0 tiny models written here) and of the stories260K llama2.c
// checkpoint, through the API (inspectModel) and the CLI (dist/cli/main.js: run `npx tsc -p tsconfig.build.json` first).
import { spawnSync } from 'child_process';
import * as path from 'path';
import { inspectModel } from '../../lib/cli/inspect';
import { gv } from '../../lib/formats/gguf-writer';
import { expectCode } from '../util/engine-helpers';
import { GPT2_SPEC, LLAMA_SPEC, removeTmp, tinyBpeMetadata, tinyWeights, writeTinyGGUF } from '../util/gguf-models';
import { MODEL } from '../util/stories260k';

const root = path.resolve(__dirname, '../..');
const cli = path.join(root, 'dist', 'cli', 'main.js');
function eet(...args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [cli, ...args], { cwd: root, encoding: 'utf8', timeout: 120_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

afterAll(() => removeTmp());

const numel = (w: ReturnType<typeof tinyWeights>): number => [...w.values()].reduce((a, t) => a + t.data.length, 0);

describe('inspectModel', () => {
  test('a GGUF llama with Q8_0 matrices: parameters, dtypes, memory per dtype, tokenizer, chat template', async () => {
    const s = LLAMA_SPEC;
    const w = tinyWeights(s);
    const { file } = await writeTinyGGUF(s, w, { q8: true });
    const info = await inspectModel(file);
    expect(info.format).toBe('gguf');
    expect(info.architecture).toBe('llama');
    expect(info.name).toBe('tiny-llama');
    expect(info.parameters).toBe(numel(w));
    const embd = s.vocab * s.dim;
    const norms = s.dim * (2 * s.nLayers + 1);
    expect(info.dtypes).toEqual({ F32: { tensors: 2 * s.nLayers + 2, parameters: embd + norms }, Q8_0: { tensors: 7 * s.nLayers + 1, parameters: numel(w) - embd - norms } });
    const q8 = numel(w) - embd - norms;
    expect(info.memory.float32.weights).toBe((embd + norms) * 4 + q8 + q8 / 16);
    expect(info.memory.float16.weights).toBe((embd + norms) * 2 + q8 + q8 / 16);
    expect(info.memory.float16.kvCachePerSequence).toBe(2 * s.nLayers * s.nKvHeads * (s.dim / s.nHeads) * s.ctx * 2);
    expect(info.tokenizer).toEqual({ kind: 'llama', vocabSize: s.vocab });
    expect(info.chatTemplate).toBe(true);
  });

  test('a GGUF gpt2 with an unsupported tokenizer and no chat template', async () => {
    const w = tinyWeights(GPT2_SPEC);
    const { file } = await writeTinyGGUF(GPT2_SPEC, w, { metadata: { 'tokenizer.ggml.model': gv.str('rwkv'), 'tokenizer.chat_template': null } });
    const info = await inspectModel(file);
    expect(info.architecture).toBe('gpt2');
    expect(info.dtypes).toEqual({ F32: { tensors: w.size, parameters: numel(w) } });
    expect(info.memory.float32.weights).toBe(numel(w) * 4);
    expect(info.tokenizer.kind).toBe('rwkv');
    expect(info.tokenizer.vocabSize).toBeNull();
    expect(info.tokenizer.note).toMatch(/not supported yet/);
    expect(info.chatTemplate).toBe(false);
  });

  test('a GGUF gpt2 with a byte-level BPE tokenizer', async () => {
    const { file } = await writeTinyGGUF(GPT2_SPEC, tinyWeights(GPT2_SPEC), { metadata: tinyBpeMetadata(GPT2_SPEC.vocab) });
    expect((await inspectModel(file)).tokenizer).toEqual({ kind: 'gpt2', vocabSize: GPT2_SPEC.vocab });
  });

  test('the stories260K llama2.c checkpoint', async () => {
    const info = await inspectModel(MODEL);
    expect(info.format).toBe('llama2c');
    expect(info.config).toMatchObject({ dim: 64, nLayers: 5, nHeads: 8, nKvHeads: 4, vocabSize: 512 });
    expect(info.parameters).toBeGreaterThan(250_000);
    expect(info.parameters).toBeLessThan(270_000);
    expect(info.tokenizer).toMatchObject({ kind: 'llama2c', vocabSize: 512 });
    expect(info.chatTemplate).toBe(false);
  });

  test('errors: a missing file, a directory, a malformed GGUF', async () => {
    await expectCode(inspectModel(path.join(root, 'no-such-model.gguf')), 'ERR_MODEL_FORMAT');
    await expectCode(inspectModel(root), 'ERR_UNSUPPORTED');
    const { file } = await writeTinyGGUF(LLAMA_SPEC, tinyWeights(LLAMA_SPEC), { metadata: { 'llama.block_count': null } });
    await expectCode(inspectModel(file), 'ERR_MODEL_FORMAT', /block_count/);
  });
});

describe('eet inspect (CLI)', () => {
  test('text report of a GGUF file', async () => {
    const { file } = await writeTinyGGUF(LLAMA_SPEC, tinyWeights(LLAMA_SPEC), { q8: true });
    const r = eet('inspect', file);
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/^architecture: +llama$/m);
    expect(r.stdout).toMatch(/^dtypes: +F32: 6 tensors.*; Q8_0: 15 tensors/m);
    expect(r.stdout).toMatch(/^ +float16 +weights [\d.]+ KiB, KV cache [\d.]+ KiB per full-context sequence$/m);
    expect(r.stdout).toMatch(/^tokenizer: +llama, 288 tokens$/m);
    expect(r.stdout).toMatch(/^chat template: yes$/m);
  });

  test('--json of the llama2.c checkpoint', () => {
    const r = eet('inspect', MODEL, '--json');
    expect(r.status).toBe(0);
    const info = JSON.parse(r.stdout) as { format: string; architecture: string; dtypes: Record<string, unknown> };
    expect(info.format).toBe('llama2c');
    expect(Object.keys(info.dtypes)).toEqual(['F32']);
  });

  test('eet generate runs a GGUF model (its tokenizer from the metadata)', async () => {
    const { file } = await writeTinyGGUF(GPT2_SPEC, tinyWeights(GPT2_SPEC), { metadata: tinyBpeMetadata(GPT2_SPEC.vocab) });
    const r = eet('generate', file, 'Hello world', '--temperature', '0', '--max-new-tokens', '5', '--device', 'cpu', '--no-progress');
    expect(r.status).toBe(0);
    expect(r.stdout.startsWith('Hello world')).toBe(true);
    expect(r.stderr).toMatch(/tokens \((length|eos)\)/);
  });

  test('a malformed file: one error line, exit code 1', () => {
    const r = eet('inspect', path.join(root, 'package.json'));
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/^eet: error: .*\(ERR_MODEL_FORMAT\)\n$/);
  });
});

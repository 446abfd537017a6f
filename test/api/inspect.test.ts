// `eet inspect`: the report of GGUF files (F32 and Q8_0 tiny models written here) and of the stories260K llama2.c
// checkpoint, through the API (inspectModel) and the CLI (dist/cli/main.js: run `npx tsc -p tsconfig.build.json` first).
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { writeSafetensors } from '../../lib/formats/safetensors-writer';
import { inspectModel } from '../../lib/cli/inspect';
import { gv } from '../../lib/formats/gguf-writer';
import { expectCode, hfTensors } from '../util/engine-helpers';
import { GPT2_SPEC, LLAMA_SPEC, removeTmp, specConfig, tinyBpeMetadata, tinyWeights, tmpFile, writeTinyGGUF } from '../util/gguf-models';
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

  test('a Hugging Face folder (llama, float16 safetensors, tokenizer.json, chat template)', async () => {
    const s = LLAMA_SPEC;
    const w = tinyWeights(s);
    const dir = tmpFile('-hf');
    fs.mkdirSync(dir);
    fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify({
      architectures: ['LlamaForCausalLM'], model_type: 'llama', hidden_size: s.dim, intermediate_size: s.hiddenDim, num_hidden_layers: s.nLayers,
      num_attention_heads: s.nHeads, num_key_value_heads: s.nKvHeads, vocab_size: s.vocab, max_position_embeddings: s.ctx, rms_norm_eps: 1e-5,
      rope_theta: 10000, tie_word_embeddings: false, bos_token_id: 1, eos_token_id: 2, hidden_act: 'silu',
    }));
    const vocab: Record<string, number> = { '<unk>': 0, '<s>': 1, '</s>': 2 };
    for (let i = 3; i < s.vocab; i++) vocab[`t${i}`] = i;
    fs.writeFileSync(path.join(dir, 'tokenizer.json'), JSON.stringify({
      version: '1.0', added_tokens: [], normalizer: null, pre_tokenizer: null, post_processor: null, decoder: null,
      model: { type: 'BPE', dropout: null, unk_token: '<unk>', continuing_subword_prefix: null, end_of_word_suffix: null, fuse_unk: true, byte_fallback: false, vocab, merges: [] },
    }));
    fs.writeFileSync(path.join(dir, 'tokenizer_config.json'), JSON.stringify({ chat_template: '{% for m in messages %}{{ m.content }}{% endfor %}' }));
    await writeSafetensors(path.join(dir, 'model.safetensors'), hfTensors(specConfig(s), w).map(({ name, w: t }) => ({ name, dtype: 'F16', shape: t.shape, data: t.data })));
    const info = await inspectModel(dir);
    expect(info.format).toBe('hf');
    expect(info.architecture).toBe('llama');
    expect(info.parameters).toBe(numel(w));
    expect(info.dtypes).toEqual({ F16: { tensors: w.size, parameters: numel(w) } });
    expect(info.memory.bfloat16.weights).toBe(2 * numel(w));
    expect(info.fileBytes).toBe(fs.statSync(path.join(dir, 'model.safetensors')).size);
    expect(info.tokenizer).toEqual({ kind: 'hf', vocabSize: s.vocab });
    expect(info.chatTemplate).toBe(true);
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
    await expectCode(inspectModel(path.join(root, 'lib')), 'ERR_UNSUPPORTED');
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

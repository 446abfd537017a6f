// Hugging Face model folders through loadModel (lib/loaders/hf.ts, lib/tokenizers/hf.ts): tiny random llama
// (GQA, half-split RoPE, llama3 rope scaling), qwen2 (q/k/v biases, tied head), gpt2 (Conv1D weights stored
// (in, out)) and bert models written here as config.json + model.safetensors + a hand-made tokenizer.json +
// tokenizer_config.json (chat template) + generation_config.json. Logits of generate() are checked against fp64
// forward passes written with test/util/engine-helpers.ts under the engine's names (the HF files differ by naming
// and the GPT-2 transpose only: both from the architecture descriptions, lib/arch/, whose HF names
// test/unit/arch.test.ts checks against what HF transformers saves); also greedy tokens, chat rendering, embed()
// pooling, f16/bf16 files converted on load, the native transpose, and coded errors for malformed folders.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import type { ArchShape } from '../../lib/arch';
import { writeSafetensors, writeSafetensorsShards } from '../../lib/formats/safetensors-writer';
import { fromHalfBits, toHalfBits } from '../../lib/half';
import { loadModel, Model } from '../../lib/model';
import {
  Weight, Weights, add, argmax, attend, expectCode, geluErf, geluTanh, hfTensors, layerNorm, linear, randomWeights, relDiff, transpose, type EngineConfig, TestEngine,
} from '../util/engine-helpers';
import { CHAT_TEMPLATE, Json, bpeTokenizer, removeFolders, wordPieceTokenizer, writeFolder } from '../util/hf-folders';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'eet-hf-'));
afterAll(() => {
  fs.rmSync(tmp, { recursive: true, force: true });
  removeFolders();
});

/** The weights as the engine sees them after a file of dtype: rounded through f16/bf16. */
function rounded(w: Weights, dtype: 'F32' | 'F16' | 'BF16'): Weights {
  if (dtype === 'F32') return w;
  const d = dtype === 'F16' ? 'float16' : 'bfloat16';
  return new Map([...w].map(([n, x]) => [n, { shape: x.shape, data: fromHalfBits(toHalfBits(x.data, d), d) }]));
}

// ---- llama / qwen2 -------------------------------------------------------------------------------------------------

type LlamaCfg = Pick<EngineConfig, 'arch' | 'maxSeqLen' | 'dim' | 'hiddenDim' | 'nLayers' | 'nHeads' | 'nKvHeads' | 'headDim' | 'vocabSize' | 'normEps' | 'ropeTheta' | 'ropeScaling' | 'qkvBias' | 'tiedEmbeddings'>;

function rmsnorm(x: Float64Array, g: Weight, eps: number): Float64Array {
  const ms = x.reduce((a, v) => a + v * v, 0) / x.length;
  const s = 1 / Math.sqrt(ms + eps);
  return x.map((v, i) => v * s * g.data[i]);
}

/** RoPE inverse frequencies with linear / llama3 scaling. */
function invFreq(cfg: LlamaCfg): number[] {
  return Array.from({ length: cfg.headDim / 2 }, (_, i) => {
    const f = Math.pow(cfg.ropeTheta, (-2 * i) / cfg.headDim);
    const sc = cfg.ropeScaling;
    if (!sc) return f;
    if (sc.type === 'linear') return f / sc.factor;
    const wl = (2 * Math.PI) / f;
    const orig = sc.originalMaxPositionEmbeddings;
    if (wl < orig / sc.highFreqFactor) return f;
    if (wl > orig / sc.lowFreqFactor) return f / sc.factor;
    const s = (orig / wl - sc.lowFreqFactor) / (sc.highFreqFactor - sc.lowFreqFactor);
    return (1 - s) * (f / sc.factor) + s * f;
  });
}

/** Half-split RoPE (Hugging Face's rotate_half): pairs (i, i + hd/2) of each head. */
function ropeHalf(v: Float64Array, heads: number, pos: number, cfg: LlamaCfg): void {
  const hd = cfg.headDim;
  invFreq(cfg).forEach((f, i) => {
    const [c, s] = [Math.cos(pos * f), Math.sin(pos * f)];
    for (let h = 0; h < heads; h++) {
      const [a, b] = [h * hd + i, h * hd + i + hd / 2];
      const [x0, x1] = [v[a], v[b]];
      v[a] = x0 * c - x1 * s;
      v[b] = x0 * s + x1 * c;
    }
  });
}

/** Logits after each position, fp64 (GQA: query head h reads kv head h / (H / KV)). */
function llamaReference(cfg: LlamaCfg, w: Weights, tokens: number[]): Float64Array[] {
  const W = (n: string) => w.get(n)!;
  const { dim, headDim: hd, nHeads: H, nKvHeads: KV } = cfg;
  const keys: Float64Array[][] = Array.from({ length: cfg.nLayers }, () => []);
  const values: Float64Array[][] = Array.from({ length: cfg.nLayers }, () => []);
  return tokens.map((tok, pos) => {
    let x: Float64Array = Float64Array.from(W('token_embd').data.subarray(tok * dim, (tok + 1) * dim));
    for (let l = 0; l < cfg.nLayers; l++) {
      const b = (n: string) => W(`blk.${l}.${n}`);
      const h = rmsnorm(x, b('attn_norm'), cfg.normEps);
      const q = linear(b('attn_q'), h, w.get(`blk.${l}.attn_q.bias`));
      const k = linear(b('attn_k'), h, w.get(`blk.${l}.attn_k.bias`));
      const v = linear(b('attn_v'), h, w.get(`blk.${l}.attn_v.bias`));
      ropeHalf(q, H, pos, cfg);
      ropeHalf(k, KV, pos, cfg);
      keys[l].push(k);
      values[l].push(v);
      // Expand kv heads to query heads, then plain multi-head attention.
      const expand = (t: Float64Array) => new Float64Array(H * hd).map((_, i) => t[Math.floor(Math.floor(i / hd) / (H / KV)) * hd + (i % hd)]);
      const att = attend(q, keys[l].map(expand), values[l].map(expand), H, hd);
      x = add(x, linear(b('attn_output'), att));
      const h2 = rmsnorm(x, b('ffn_norm'), cfg.normEps);
      const g = linear(b('ffn_gate'), h2);
      const u = linear(b('ffn_up'), h2);
      x = add(x, linear(b('ffn_down'), g.map((gv, i) => (gv / (1 + Math.exp(-gv))) * u[i])));
    }
    return linear(W(cfg.tiedEmbeddings ? 'token_embd' : 'output'), rmsnorm(x, W('output_norm'), cfg.normEps));
  });
}

// ---- gpt2 ----------------------------------------------------------------------------------------------------------

interface Gpt2Cfg { dim: number; hiddenDim: number; nLayers: number; nHeads: number; vocabSize: number; maxSeqLen: number; normEps: number }

/** The engine shape of a gpt2 test config: multi-head attention, the head tied to the token embedding. */
const gpt2Shape = (c: Gpt2Cfg): ArchShape => ({ ...c, arch: 'gpt2', nKvHeads: c.nHeads, headDim: c.dim / c.nHeads, tiedEmbeddings: true });

/** The names of the hub's gpt2 model.safetensors: GPT2Model's, without GPT2LMHeadModel's "transformer." prefix. */
const hubName = (n: string): string => n.replace(/^transformer\./, '');

function gpt2Reference(cfg: Gpt2Cfg, w: Weights, tokens: number[]): Float64Array[] {
  const W = (n: string) => w.get(n)!;
  const C = cfg.dim;
  const keys: Float64Array[][] = Array.from({ length: cfg.nLayers }, () => []);
  const values: Float64Array[][] = Array.from({ length: cfg.nLayers }, () => []);
  return tokens.map((tok, pos) => {
    let x: Float64Array = new Float64Array(C).map((_, i) => W('token_embd').data[tok * C + i] + W('position_embd').data[pos * C + i]);
    for (let l = 0; l < cfg.nLayers; l++) {
      const b = (n: string) => W(`blk.${l}.${n}`);
      const qkv = linear(b('attn_qkv'), layerNorm(x, b('attn_norm'), b('attn_norm.bias'), cfg.normEps), b('attn_qkv.bias'));
      keys[l].push(qkv.slice(C, 2 * C));
      values[l].push(qkv.slice(2 * C, 3 * C));
      x = add(x, linear(b('attn_output'), attend(qkv.slice(0, C), keys[l], values[l], cfg.nHeads, C / cfg.nHeads), b('attn_output.bias')));
      const u = linear(b('ffn_up'), layerNorm(x, b('ffn_norm'), b('ffn_norm.bias'), cfg.normEps), b('ffn_up.bias')).map(geluTanh);
      x = add(x, linear(b('ffn_down'), u, b('ffn_down.bias')));
    }
    return linear(W('token_embd'), layerNorm(x, W('output_norm'), W('output_norm.bias'), cfg.normEps));
  });
}

// ---- bert ----------------------------------------------------------------------------------------------------------

/** The engine shape of a bert test config. */
const bertShape = (c: Gpt2Cfg & { types: number }): ArchShape =>
  ({ ...c, arch: 'bert', nKvHeads: c.nHeads, headDim: c.dim / c.nHeads, nTokenTypes: c.types, tiedEmbeddings: false });

function bertReference(cfg: Gpt2Cfg, w: Weights, tokens: number[], pooling: 'mean' | 'cls', normalize: boolean): Float64Array {
  const W = (n: string) => w.get(n)!;
  const C = cfg.dim;
  let xs = tokens.map((tok, pos) => layerNorm(
    new Float64Array(C).map((_, i) => W('token_embd').data[tok * C + i] + W('position_embd').data[pos * C + i] + W('token_types').data[i]),
    W('token_embd_norm'), W('token_embd_norm.bias'), cfg.normEps,
  ));
  for (let l = 0; l < cfg.nLayers; l++) {
    const b = (n: string) => W(`blk.${l}.${n}`);
    const qs = xs.map((x) => linear(b('attn_q'), x, b('attn_q.bias')));
    const ks = xs.map((x) => linear(b('attn_k'), x, b('attn_k.bias')));
    const vs = xs.map((x) => linear(b('attn_v'), x, b('attn_v.bias')));
    xs = xs.map((x, t) => {
      const h = layerNorm(add(x, linear(b('attn_output'), attend(qs[t], ks, vs, cfg.nHeads, C / cfg.nHeads), b('attn_output.bias'))), b('attn_output_norm'), b('attn_output_norm.bias'), cfg.normEps);
      const u = linear(b('ffn_up'), h, b('ffn_up.bias')).map(geluErf);
      return layerNorm(add(h, linear(b('ffn_down'), u, b('ffn_down.bias'))), b('layer_output_norm'), b('layer_output_norm.bias'), cfg.normEps);
    });
  }
  const pooled = pooling === 'cls' ? xs[0] : new Float64Array(C).map((_, i) => xs.reduce((a, x) => a + x[i], 0) / xs.length);
  if (!normalize) return pooled;
  const n = Math.sqrt(pooled.reduce((a, v) => a + v * v, 0));
  return pooled.map((v) => v / n);
}

// ---- shared checks -------------------------------------------------------------------------------------------------

const TOL: Record<string, number> = { float32: 1e-5, bfloat16: 3e-2 };

/**
 * Greedy generation with logits: each step's logits match the reference over prompt + generated tokens, and
 * each token is their argmax (or a stop id).
 */
async function checkGreedy(model: Model, prompt: number[], ref: (tokens: number[]) => Float64Array[], tol: number, n = 6): Promise<number[]> {
  const r = await model.generate(prompt, { maxNewTokens: n, temperature: 0, logits: true });
  expect(r.tokens.length).toBeGreaterThan(0);
  const refs = ref([...prompt, ...r.tokens]);
  r.tokens.forEach((tok, i) => {
    const want = refs[prompt.length - 1 + i];
    expect(relDiff(r.logits![i], want)).toBeLessThan(tol);
    expect(tok).toBe(argmax(r.logits![i]));
  });
  return r.tokens;
}

const PROMPT = [1, 36, 41, 44, 7, 9, 30, 12, 40, 33, 5, 18];

// ---- tests ---------------------------------------------------------------------------------------------------------

describe('llama family from a Hugging Face folder', () => {
  const V = 48;
  const llamaJson = {
    architectures: ['LlamaForCausalLM'], model_type: 'llama', hidden_size: 32, intermediate_size: 40, num_hidden_layers: 2, num_attention_heads: 4,
    num_key_value_heads: 2, vocab_size: V, max_position_embeddings: 64, rms_norm_eps: 1e-5, rope_theta: 10000, tie_word_embeddings: false,
    rope_scaling: { rope_type: 'llama3', factor: 8, low_freq_factor: 1, high_freq_factor: 4, original_max_position_embeddings: 16 },
    torch_dtype: 'float32', bos_token_id: 1, eos_token_id: 2, hidden_act: 'silu',
  };
  const llamaCfg: LlamaCfg = {
    arch: 'llama', maxSeqLen: 64, dim: 32, hiddenDim: 40, nLayers: 2, nHeads: 4, nKvHeads: 2, headDim: 8, vocabSize: V, normEps: 1e-5, ropeTheta: 10000,
    ropeScaling: { type: 'llama3', factor: 8, lowFreqFactor: 1, highFreqFactor: 4, originalMaxPositionEmbeddings: 16 }, tiedEmbeddings: false,
  };
  const tokConfig = { bos_token: '<s>', eos_token: '</s>', unk_token: '<unk>', add_bos_token: true, chat_template: CHAT_TEMPLATE };
  const w = randomWeights(llamaCfg, 700);
  let dir: string;
  let model: Model;
  beforeAll(async () => {
    dir = await writeFolder({ config: llamaJson, tensors: hfTensors(llamaCfg, w), tokenizer: bpeTokenizer(V, true), tokenizerConfig: tokConfig, generationConfig: { eos_token_id: [2, 4] } });
    model = await loadModel(dir, { device: 'cpu', maxBatch: 2 });
  });
  afterAll(() => model?.dispose());

  test('config, tokenizer and stop ids', () => {
    expect(model.config).toMatchObject({ format: 'hf', modelType: 'llama', arch: 'llama', ropeLayout: 'half', nKvHeads: 2, headDim: 8, tiedEmbeddings: false, maxSeqLen: 64 });
    expect(model.config.ropeScaling).toEqual(llamaCfg.ropeScaling);
    expect(model.config.stopIds).toEqual([2, 4]);
    expect(model.tokenizer.bos).toBe(1);
    expect(model.tokenizer.eos).toBe(2);
    expect(model.tokenizer.encode('hello world')).toEqual([1, 36, 41]);
    expect(model.tokenizer.decode([36, 41])).toBe('hello world');
  });

  test('greedy logits equal the fp64 reference (GQA, half RoPE, llama3 scaling, untied head)', async () => {
    await checkGreedy(model, PROMPT, (t) => llamaReference(llamaCfg, w, t), TOL.float32);
    // A text prompt goes through the tokenizer with BOS.
    const r = await model.generate('hello world', { maxNewTokens: 3, temperature: 0, logits: true });
    expect(relDiff(r.logits![0], llamaReference(llamaCfg, w, [1, 36, 41])[2])).toBeLessThan(TOL.float32);
  });

  test('chat template rendering and chat()', async () => {
    const messages = [{ role: 'user', content: 'hello world' }];
    expect(await model.applyChatTemplate(messages)).toBe('<s><|user|>hello world<|assistant|>');
    expect(await model.applyChatTemplate(messages, { addGenerationPrompt: false })).toBe('<s><|user|>hello world');
    const r = await model.chat(messages, { maxNewTokens: 2, temperature: 0, logits: true });
    // The rendered text holds <s> already: no second BOS is added.
    const ids = [1, 3, 13, 34, 20, 41, 4];
    expect(r.usage.promptTokens).toBe(ids.length);
    expect(relDiff(r.logits![0], llamaReference(llamaCfg, w, ids)[ids.length - 1])).toBeLessThan(TOL.float32);
    await expectCode(async () => model.applyChatTemplate([]), 'ERR_INVALID_ARG');
  });

  test('streaming decode hands out the same text as decode()', async () => {
    const events: string[] = [];
    for await (const e of model.stream('hello', { maxNewTokens: 8, temperature: 0 })) events.push(e.text);
    const r = await model.generate('hello', { maxNewTokens: 8, temperature: 0 });
    expect(events.join('')).toBe(r.text);
    const tok = model.tokenizer;
    const visible = r.tokens.filter((t) => t > 4);
    expect(r.text.replace(/^ /, '')).toBe(tok.decode(visible).replace(/^ /, ''));
  });

  test('qwen2: q/k/v biases, tied head, no BOS; bf16 weights converted on load (emu)', async () => {
    const cfg: LlamaCfg = { ...llamaCfg, nLayers: 1, nKvHeads: 1, qkvBias: true, tiedEmbeddings: true, ropeScaling: null, ropeTheta: 1e6, normEps: 1e-6 };
    const qw = randomWeights(cfg, 800);
    const json = {
      architectures: ['Qwen2ForCausalLM'], model_type: 'qwen2', hidden_size: 32, intermediate_size: 40, num_hidden_layers: 1, num_attention_heads: 4,
      num_key_value_heads: 1, vocab_size: V, max_position_embeddings: 64, rms_norm_eps: 1e-6, rope_theta: 1e6, tie_word_embeddings: true, eos_token_id: 2,
      torch_dtype: 'bfloat16', use_sliding_window: false, sliding_window: 16,
    };
    const d = await writeFolder({ config: json, tensors: hfTensors(cfg, qw), dtype: 'BF16', tokenizer: bpeTokenizer(V, false), tokenizerConfig: { eos_token: '</s>', chat_template: CHAT_TEMPLATE } });
    for (const device of ['cpu', 'emu']) {
      const m = await loadModel(d, { device, dtype: 'float32', maxBatch: 1, maxSeqLen: 24 });
      expect(m.config).toMatchObject({ qkvBias: true, tiedEmbeddings: true, maxSeqLen: 64, maxContext: 24 });
      expect(m.tokenizer.encode('hello world')).toEqual([36, 41]);
      await checkGreedy(m, PROMPT.slice(1, 8), (t) => llamaReference(cfg, rounded(qw, 'BF16'), t), TOL.float32, device === 'emu' ? 3 : 6);
      await m.dispose();
    }
  });

  test('f16 weights, a bfloat16 model dtype, mistral', async () => {
    const json = { ...llamaJson, architectures: ['MistralForCausalLM'], model_type: 'mistral', sliding_window: 32, rope_scaling: null };
    const cfg = { ...llamaCfg, ropeScaling: null };
    const d = await writeFolder({ config: json, tensors: hfTensors(llamaCfg, w), dtype: 'F16', tokenizer: bpeTokenizer(V, true), tokenizerConfig: tokConfig });
    const m = await loadModel(d, { device: 'cpu', dtype: 'float32', maxBatch: 1 });
    expect(m.config.maxSeqLen).toBe(32); // capped at the sliding window
    await checkGreedy(m, PROMPT, (t) => llamaReference(cfg, rounded(w, 'F16'), t), TOL.float32, 4);
    await m.dispose();
    const b = await loadModel(d, { device: 'cpu', dtype: 'bfloat16', maxBatch: 1 });
    const r = await b.generate(PROMPT, { maxNewTokens: 1, temperature: 0, logits: true });
    expect(relDiff(r.logits![0], llamaReference(cfg, rounded(w, 'F16'), PROMPT)[PROMPT.length - 1])).toBeLessThan(TOL.bfloat16);
    await b.dispose();
  });

  test('sharded weights (model.safetensors.index.json); the tokenizer option is for llama2.c only', async () => {
    const tensors = hfTensors(llamaCfg, w).map(({ name, w: x }) => ({ name, dtype: 'F32', shape: x.shape, data: x.data }));
    const d = await writeFolder({ config: llamaJson, tensors: [], tokenizer: bpeTokenizer(V, true), tokenizerConfig: tokConfig });
    fs.rmSync(path.join(d, 'model.safetensors'));
    await writeSafetensorsShards(d, [tensors.slice(0, 7), tensors.slice(7)]);
    const m = await loadModel(d, { device: 'cpu', maxBatch: 1 });
    const r = await m.generate(PROMPT, { maxNewTokens: 1, temperature: 0, logits: true });
    expect(relDiff(r.logits![0], llamaReference(llamaCfg, w, PROMPT)[PROMPT.length - 1])).toBeLessThan(TOL.float32);
    await m.dispose();
    await expectCode(loadModel(d, { device: 'cpu', tokenizer: 'tok.bin' }), 'ERR_INVALID_ARG', /tokenizer/);
  });

  test('embed() on a decoder is unsupported', async () => {
    await expectCode(model.embed('hello'), 'ERR_UNSUPPORTED', /bert/);
  });
});

describe('gpt2 from a Hugging Face folder', () => {
  const V = 48;
  const cfg: Gpt2Cfg = { dim: 32, hiddenDim: 64, nLayers: 2, nHeads: 4, vocabSize: V, maxSeqLen: 40, normEps: 1e-5 };
  const json = { architectures: ['GPT2LMHeadModel'], model_type: 'gpt2', n_embd: 32, n_inner: 64, n_layer: 2, n_head: 4, vocab_size: V, n_positions: 40, layer_norm_epsilon: 1e-5, activation_function: 'gelu_new', eos_token_id: 2, bos_token_id: 2 };

  test('Conv1D weights are transposed on load; greedy logits equal the fp64 reference', async () => {
    const w = randomWeights(gpt2Shape(cfg), 900);
    const tensors = hfTensors(gpt2Shape(cfg), w, hubName);
    tensors.push({ name: 'h.0.attn.bias', w: { shape: [1, 1, 4, 4], data: new Float32Array(16) } }); // a buffer old checkpoints carry
    const d = await writeFolder({ config: json, tensors, tokenizer: bpeTokenizer(V, false), tokenizerConfig: {} });
    const m = await loadModel(d, { device: 'cpu', maxBatch: 1 });
    expect(m.config).toMatchObject({ arch: 'gpt2', tiedEmbeddings: true, hiddenDim: 64, maxSeqLen: 40, stopIds: [2] });
    await checkGreedy(m, PROMPT.slice(1), (t) => gpt2Reference(cfg, w, t), TOL.float32);
    await expectCode(async () => m.applyChatTemplate([{ role: 'user', content: 'x' }]), 'ERR_UNSUPPORTED', /chat template/);
    await m.dispose();
  });

  test('the native transpose: (in, out) f16 file to an (out, in) matrix; shape checks', async () => {
    // One layer whose qkv weight goes through loadTensor directly with transpose: true (f16, sizes not multiples of 32).
    const small: Gpt2Cfg = { ...cfg, nLayers: 1, dim: 24, nHeads: 3, hiddenDim: 20 };
    const w = randomWeights(gpt2Shape(small), 950);
    const file = path.join(tmp, 'transpose.safetensors');
    const qkv = w.get('blk.0.attn_qkv')!;
    await writeSafetensors(file, [{ name: 'x', dtype: 'F16', shape: [24, 72], data: transpose(qkv).data }]);
    const data = fs.readFileSync(file);
    const offset = data.length - 24 * 72 * 2;
    const native = new TestEngine({
      arch: 'gpt2', dim: 24, hiddenDim: 20, nLayers: 1, nHeads: 3, nKvHeads: 3, headDim: 8, vocabSize: V, maxSeqLen: 40, normEps: 1e-5, ropeTheta: 10000,
      ropeLayout: 'adjacent', tiedEmbeddings: true, dtype: 'float32', device: 'cpu', maxBatch: 1, maxContext: 8, maxStepTokens: 8,
    });
    const src = { path: file, offset, bytes: 24 * 72 * 2, dtype: 'float16' as const, transpose: true };
    await expectCode(native.loadTensor('blk.0.attn_qkv', { ...src, shape: [72, 24] }), 'ERR_MODEL_FORMAT', /\[24, 72\] \(transposed\)/);
    await expectCode(native.loadTensor('blk.0.attn_norm', { ...src, bytes: 48, shape: [24] }), 'ERR_INVALID_ARG', /2-D/);
    await native.loadTensor('blk.0.attn_qkv', { ...src, shape: [24, 72] });
    native.dispose();
    // The whole model through loadModel in f16: same logits as the rounded reference.
    const d = await writeFolder({ config: { ...json, n_embd: 24, n_head: 3, n_inner: 20, n_layer: 1 }, tensors: hfTensors(gpt2Shape(small), w), dtype: 'F16', tokenizer: bpeTokenizer(V, false), tokenizerConfig: {} });
    const m = await loadModel(d, { device: 'cpu', maxBatch: 1 });
    await checkGreedy(m, PROMPT.slice(1, 6), (t) => gpt2Reference(small, rounded(w, 'F16'), t), TOL.float32, 3);
    await m.dispose();
  });
});

describe('bert from a Hugging Face folder', () => {
  const V = 30;
  const cfg = { dim: 32, hiddenDim: 64, nLayers: 2, nHeads: 4, vocabSize: V, maxSeqLen: 24, normEps: 1e-12, types: 2 };
  const json = { architectures: ['BertModel'], model_type: 'bert', hidden_size: 32, intermediate_size: 64, num_hidden_layers: 2, num_attention_heads: 4, vocab_size: V, max_position_embeddings: 24, type_vocab_size: 2, layer_norm_eps: 1e-12, hidden_act: 'gelu' };
  const w = randomWeights(bertShape(cfg), 1000);

  test.each(['', 'bert.'])('embed() pooling equals the fp64 reference (prefix "%s")', async (prefix) => {
    const d = await writeFolder({ config: json, tensors: hfTensors(bertShape(cfg), w, (n) => (prefix ? n : n.replace(/^bert\./, ''))), tokenizer: wordPieceTokenizer(V), tokenizerConfig: { cls_token: '[CLS]', sep_token: '[SEP]' } });
    const m = await loadModel(d, { device: 'cpu', maxBatch: 2 });
    expect(m.config).toMatchObject({ arch: 'bert', nTokenTypes: 2, maxSeqLen: 24 });
    const texts = ['The cat sat on the mat.', 'hello world', 'a dog ran'];
    const ids = texts.map((t) => m.tokenizer.encode(t));
    expect(ids[0]).toEqual([2, 5, 6, 7, 8, 5, 9, 16, 3]);
    for (const [pooling, normalize] of [['mean', true], ['cls', false]] as const) {
      const out = await m.embed(texts, { pooling, normalize });
      expect(out.length).toBe(3);
      out.forEach((v, i) => expect(relDiff(v, bertReference(cfg, w, ids[i], pooling, normalize))).toBeLessThan(TOL.float32));
    }
    const [one] = await m.embed('hello world');
    expect(relDiff(one, bertReference(cfg, w, ids[1], 'mean', true))).toBeLessThan(TOL.float32);
    await expectCode(m.generate('hello'), 'ERR_UNSUPPORTED', /embed/);
    await expectCode(m.embed('the cat '.repeat(20)), 'ERR_INVALID_ARG', /tokens/);
    await expectCode(m.embed(['x'], { pooling: 'max' as 'mean' }), 'ERR_INVALID_ARG', /pooling/);
    await m.dispose();
  });
});

describe('malformed folders give coded errors', () => {
  const base = {
    model_type: 'llama', hidden_size: 32, intermediate_size: 40, num_hidden_layers: 1, num_attention_heads: 4, num_key_value_heads: 2,
    vocab_size: 48, max_position_embeddings: 64,
  };
  const cfg: LlamaCfg = { arch: 'llama', maxSeqLen: 64, dim: 32, hiddenDim: 40, nLayers: 1, nHeads: 4, nKvHeads: 2, headDim: 8, vocabSize: 48, normEps: 1e-6, ropeTheta: 10000, tiedEmbeddings: false };
  const w = randomWeights(cfg, 1100);
  const folder = (config: Json, tensors = hfTensors(cfg, w)) => writeFolder({ config, tensors, tokenizer: bpeTokenizer(48, true), tokenizerConfig: {} });

  test.each([
    ['missing field', { ...base, hidden_size: undefined }, 'ERR_MODEL_FORMAT', /missing field hidden_size/],
    ['bad field', { ...base, num_hidden_layers: 1.5 }, 'ERR_MODEL_FORMAT', /num_hidden_layers is 1.5/],
    ['heads not dividing the hidden size', { ...base, num_attention_heads: 5, num_key_value_heads: 5 }, 'ERR_MODEL_FORMAT', /num_attention_heads \(5\) does not divide/],
    ['kv heads not dividing heads', { ...base, num_key_value_heads: 3 }, 'ERR_MODEL_FORMAT', /num_key_value_heads \(3\)/],
    ['unknown model_type', { ...base, model_type: 'mamba' }, 'ERR_UNSUPPORTED', /"mamba"/],
    ['unknown architecture', { ...base, model_type: undefined, architectures: ['FalconForCausalLM'] }, 'ERR_UNSUPPORTED', /FalconForCausalLM/],
    ['no architecture', { ...base, model_type: undefined }, 'ERR_MODEL_FORMAT', /model_type/],
    ['rope scaling type', { ...base, rope_scaling: { rope_type: 'yarn', factor: 4 } }, 'ERR_UNSUPPORTED', /yarn/],
    ['rope scaling field', { ...base, rope_scaling: { rope_type: 'linear' } }, 'ERR_MODEL_FORMAT', /rope_scaling.factor/],
    ['eos ids', { ...base, eos_token_id: 'x' }, 'ERR_MODEL_FORMAT', /eos_token_id/],
  ])('%s', async (_name, config, code, message) => {
    await expectCode(loadModel(await folder(config as Json), { device: 'cpu' }), code, message);
  });

  test('missing tensors are listed; a wrong shape is named; no config.json; bad JSON', async () => {
    const tensors = hfTensors(cfg, w).filter((t) => t.name !== 'lm_head.weight' && t.name !== 'model.layers.0.mlp.up_proj.weight');
    await expectCode(loadModel(await folder(base, tensors), { device: 'cpu' }), 'ERR_MODEL_FORMAT', /missing tensors model\.layers\.0\.mlp\.up_proj\.weight, lm_head\.weight$/);
    const bad = hfTensors(cfg, w).map((t) => (t.name === 'model.norm.weight' ? { ...t, w: { shape: [31], data: t.w.data.subarray(0, 31) } } : t));
    await expectCode(loadModel(await folder(base, bad), { device: 'cpu' }), 'ERR_MODEL_FORMAT', /output_norm.*\[32\].*\[31\]/);
    const empty = path.join(tmp, 'empty');
    fs.mkdirSync(empty);
    await expectCode(loadModel(empty, { device: 'cpu' }), 'ERR_UNSUPPORTED', /config\.json/);
    const d = await folder(base);
    fs.writeFileSync(path.join(d, 'config.json'), '{"model_type": ');
    await expectCode(loadModel(d, { device: 'cpu' }), 'ERR_MODEL_FORMAT', /not valid JSON/);
    const t = await folder(base);
    fs.rmSync(path.join(t, 'tokenizer.json'));
    await expectCode(loadModel(t, { device: 'cpu' }), 'ERR_MODEL_FORMAT', /tokenizer\.json/);
  });
});

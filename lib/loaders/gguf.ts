// GGUF models: the metadata → AddonModelConfig, the tensor infos → the native loader's sources, the SentencePiece
// tokenizer from tokenizer.ggml.*. The header is read by lib/formats/gguf.ts (bounded, every size checked); the
// weights are read natively from the offsets.
//
// Architectures (general.architecture) and their `<arch>.*` keys:
//   llama  — RMSNorm, SwiGLU, RoPE on adjacent pairs: llama.cpp's converter permutes Q/K rows so that its
//            "normal" RoPE (pairs 2i, 2i+1) applies, which is the engine's 'adjacent' layout as stored.
//   qwen2  — llama + q/k/v biases, RoPE NEOX (half-split: pairs i, i + d/2): 'half'.
//   gpt2   — learned positions, LayerNorm, GELU-tanh, fused attn_qkv (already (out, in) in GGUF).
//   bert   — encoder (embeddings only; loadModel refuses it for generation).
// Keys: context_length, embedding_length, block_count, feed_forward_length, attention.head_count,
// attention.head_count_kv (default head_count), attention.layer_norm_rms_epsilon (llama, qwen2) or
// attention.layer_norm_epsilon (gpt2, bert), rope.freq_base (default 10000), rope.dimension_count (must be the head
// size: partial rotary is not supported), rope.scaling.type ('none' | 'linear' with rope.scaling.factor).
//
// Tensors: GGUF names minus '.weight' are the engine's names (binding.ts); output.weight absent = tied head.
// F32/F16/BF16 sources are converted to the model dtype; Q8_0 2-D matrices stay Q8_0 on the device (q8Weights),
// Q8_0 embeddings are dequantized natively.
import type { AddonFileSource, AddonModelConfig } from '../binding';
import { ModelFormatError, UnsupportedError } from '../errors';
import { ggufMeta, ggufSource, readGGUF, type GGUFFile, type GGUFTensor } from '../formats/gguf';
import { ByteLevelBpeTokenizer } from '../tokenizers/bpe';
import { Llama2cTokenizer } from '../tokenizers/llama2c';
import type { TextTokenizer } from '../tokenizers/types';

export const GGUF_ARCHITECTURES = ['llama', 'qwen2', 'gpt2', 'bert'] as const;
export type GGUFArchitecture = (typeof GGUF_ARCHITECTURES)[number];

export type GGUFModelConfig = Omit<AddonModelConfig, 'dtype' | 'device' | 'maxBatch' | 'maxContext' | 'maxStepTokens'>;

export interface GGUFModel {
  file: GGUFFile;
  architecture: GGUFArchitecture;
  config: GGUFModelConfig;
  /** In the file's order; names as the engine spells them. */
  tensors: Array<{ name: string; source: AddonFileSource; type: GGUFTensor['type'] }>;
  /** SentencePiece (tokenizer.ggml.model 'llama') or byte-level BPE ('gpt2'); undefined with the reason otherwise. */
  tokenizer?: TextTokenizer;
  tokenizerKind: string;
  tokenizerProblem?: string;
  chatTemplate?: string;
}

function fail(file: string, what: string): never {
  throw new ModelFormatError(`Invalid GGUF model ${file}: ${what}`);
}

function positiveInt(f: GGUFFile, key: string, fallback?: number): number {
  const v = ggufMeta(f, key, 'number', fallback);
  if (!Number.isInteger(v) || v < 1 || v > 2 ** 30) fail(f.path, `metadata "${key}" = ${v}, expected a positive integer`);
  return v;
}

/** A positive number; a float32 value as its shortest decimal that rounds back to it (1e-5, not 9.9999997e-6). */
function positiveNumber(f: GGUFFile, key: string, fallback?: number): number {
  const v = ggufMeta(f, key, 'number', fallback);
  if (!(v > 0) || !Number.isFinite(v)) fail(f.path, `metadata "${key}" = ${v}, expected a positive number`);
  if (f.metadata.get(key)?.type !== 'float32') return v;
  for (let p = 1; p < 9; p++) {
    const short = Number(v.toPrecision(p));
    if (Math.fround(short) === v) return short;
  }
  return v;
}

/** The expected tensors (engine names) and shapes of an architecture. */
function expectedTensors(c: GGUFModelConfig): Map<string, number[]> {
  const m = new Map<string, number[]>();
  const { dim, hiddenDim: hid, headDim: hd, vocabSize: V } = c;
  const q = c.nHeads * hd, kv = c.nKvHeads * hd;
  const withBias = (name: string, shape: number[]): void => { m.set(name, shape); m.set(`${name}.bias`, [shape[0]]); };
  m.set('token_embd', [V, dim]);
  if (c.arch === 'gpt2' || c.arch === 'bert') m.set('position_embd', [c.maxSeqLen, dim]);
  if (c.arch === 'bert') {
    m.set('token_types', [c.nTokenTypes ?? 0, dim]);
    withBias('token_embd_norm', [dim]);
  }
  for (let l = 0; l < c.nLayers; l++) {
    const b = (s: string): string => `blk.${l}.${s}`;
    if (c.arch === 'llama') {
      m.set(b('attn_norm'), [dim]);
      for (const [n, rows] of [['attn_q', q], ['attn_k', kv], ['attn_v', kv]] as const) {
        m.set(b(n), [rows, dim]);
        if (c.qkvBias) m.set(b(`${n}.bias`), [rows]);
      }
      m.set(b('attn_output'), [dim, q]);
      m.set(b('ffn_norm'), [dim]);
      m.set(b('ffn_gate'), [hid, dim]);
      m.set(b('ffn_up'), [hid, dim]);
      m.set(b('ffn_down'), [dim, hid]);
    } else if (c.arch === 'gpt2') {
      withBias(b('attn_norm'), [dim]);
      withBias(b('attn_qkv'), [q + 2 * kv, dim]);
      withBias(b('attn_output'), [dim, q]);
      withBias(b('ffn_norm'), [dim]);
      withBias(b('ffn_up'), [hid, dim]);
      withBias(b('ffn_down'), [dim, hid]);
    } else {
      for (const [n, rows] of [['attn_q', q], ['attn_k', kv], ['attn_v', kv]] as const) withBias(b(n), [rows, dim]);
      withBias(b('attn_output'), [dim, q]);
      withBias(b('attn_output_norm'), [dim]);
      withBias(b('ffn_up'), [hid, dim]);
      withBias(b('ffn_down'), [dim, hid]);
      withBias(b('layer_output_norm'), [dim]);
    }
  }
  if (c.arch !== 'bert') {
    m.set('output_norm', [dim]);
    if (c.arch === 'gpt2') m.set('output_norm.bias', [dim]);
    if (!c.tiedEmbeddings) m.set('output', [V, dim]);
  }
  return m;
}

/** The engine's name of a GGUF tensor name: 'blk.0.attn_q.weight' → 'blk.0.attn_q', biases keep '.bias'. */
export function engineTensorName(name: string): string {
  return name.endsWith('.weight') ? name.slice(0, -'.weight'.length) : name;
}

/** Maps a parsed GGUF file to the engine config and sources; checks every key and tensor. */
export function ggufModelFromFile(f: GGUFFile): GGUFModel {
  const file = f.path;
  const arch = ggufMeta(f, 'general.architecture', 'string');
  if (!(GGUF_ARCHITECTURES as readonly string[]).includes(arch)) {
    throw new UnsupportedError(`${file}: architecture "${arch}" is not supported (supported: ${GGUF_ARCHITECTURES.join(', ')})`);
  }
  const a = arch as GGUFArchitecture;
  const byName = new Map(f.tensors.map((t) => [engineTensorName(t.name), t]));
  const embd = byName.get('token_embd');
  if (!embd) fail(file, 'tensor "token_embd.weight" is missing');
  if (embd.shape.length !== 2) fail(file, `tensor "token_embd.weight" has shape [${embd.shape.join(', ')}], expected 2 dimensions`);

  const dim = positiveInt(f, `${a}.embedding_length`);
  const nHeads = positiveInt(f, `${a}.attention.head_count`);
  const nKvHeads = positiveInt(f, `${a}.attention.head_count_kv`, nHeads);
  if (dim % nHeads !== 0) fail(file, `${a}.attention.head_count (${nHeads}) does not divide ${a}.embedding_length (${dim})`);
  if (nKvHeads > nHeads || nHeads % nKvHeads !== 0) {
    fail(file, `${a}.attention.head_count_kv (${nKvHeads}) does not divide ${a}.attention.head_count (${nHeads})`);
  }
  const headDim = dim / nHeads;
  for (const k of ['key_length', 'value_length']) {
    const v = positiveInt(f, `${a}.attention.${k}`, headDim);
    if (v !== headDim) throw new UnsupportedError(`${file}: ${a}.attention.${k} = ${v} differs from embedding_length / head_count = ${headDim}`);
  }
  const rope = a === 'llama' || a === 'qwen2';
  const config: GGUFModelConfig = {
    arch: rope ? 'llama' : a,
    dim,
    hiddenDim: positiveInt(f, `${a}.feed_forward_length`),
    nLayers: positiveInt(f, `${a}.block_count`),
    nHeads,
    nKvHeads,
    headDim,
    vocabSize: embd.shape[0],
    maxSeqLen: positiveInt(f, `${a}.context_length`),
    normEps: positiveNumber(f, rope ? `${a}.attention.layer_norm_rms_epsilon` : `${a}.attention.layer_norm_epsilon`),
    ropeTheta: rope ? positiveNumber(f, `${a}.rope.freq_base`, 10000) : 10000,
    ropeLayout: a === 'qwen2' ? 'half' : 'adjacent',
    tiedEmbeddings: !byName.has('output'),
  };
  if (a === 'qwen2') config.qkvBias = true;
  if (a === 'bert') {
    const tt = byName.get('token_types');
    if (!tt) fail(file, 'tensor "token_types.weight" is missing');
    config.nTokenTypes = tt.shape[0];
  }
  if (rope) {
    if (headDim % 2 !== 0) fail(file, `the head size ${headDim} is odd; RoPE rotates pairs`);
    const rotDim = positiveInt(f, `${a}.rope.dimension_count`, headDim);
    if (rotDim !== headDim) throw new UnsupportedError(`${file}: ${a}.rope.dimension_count = ${rotDim}, partial rotary (head size ${headDim}) is not supported`);
    const scaling = ggufMeta(f, `${a}.rope.scaling.type`, 'string', 'none');
    if (scaling === 'linear') {
      config.ropeScaling = { type: 'linear', factor: positiveNumber(f, `${a}.rope.scaling.factor`) };
    } else if (scaling !== 'none') {
      throw new UnsupportedError(`${file}: ${a}.rope.scaling.type "${scaling}" is not supported (none, linear)`);
    }
    if (byName.has('rope_freqs')) throw new UnsupportedError(`${file}: a rope_freqs tensor (Llama 3.1 rope scaling in GGUF) is not supported yet`);
  }

  const expected = expectedTensors(config);
  for (const [name, shape] of expected) {
    const t = byName.get(name);
    const gname = name.endsWith('.bias') ? name : `${name}.weight`;
    if (!t) fail(file, `tensor "${gname}" is missing`);
    if (t.shape.length !== shape.length || t.shape.some((d, i) => d !== shape[i])) {
      fail(file, `tensor "${gname}" has shape [${t.shape.join(', ')}], expected [${shape.join(', ')}] from the metadata`);
    }
  }
  for (const t of f.tensors) {
    if (!expected.has(engineTensorName(t.name))) fail(file, `tensor "${t.name}" is not a tensor of a ${a} model`);
  }
  const tensors = f.tensors.map((t) => ({ name: engineTensorName(t.name), source: ggufSource(t), type: t.type }));
  const q8 = tensors.filter((t) => t.type === 'Q8_0' && t.source.shape.length === 2 && !/^(token_embd|position_embd|token_types)$/.test(t.name));
  if (q8.length > 0) config.q8Weights = q8.map((t) => t.name);

  const model: GGUFModel = { file: f, architecture: a, config, tensors, tokenizerKind: ggufMeta(f, 'tokenizer.ggml.model', 'string', 'none') };
  const tmpl = f.metadata.get('tokenizer.chat_template');
  if (tmpl?.type === 'string') model.chatTemplate = tmpl.value;
  if (model.tokenizerKind === 'llama') model.tokenizer = ggufLlamaTokenizer(f, config.vocabSize);
  else if (model.tokenizerKind === 'gpt2') {
    try {
      model.tokenizer = ggufBpeTokenizer(f, config.vocabSize);
    } catch (e) {
      if (!(e instanceof UnsupportedError)) throw e;
      model.tokenizerProblem = e.message;
    }
  } else model.tokenizerProblem = `tokenizer.ggml.model "${model.tokenizerKind}" is not supported yet (supported: llama, gpt2)`;
  return model;
}

/** Reads a GGUF model file's header and maps it (no tensor data is read). */
export async function readGGUFModel(file: string): Promise<GGUFModel> {
  return ggufModelFromFile(await readGGUF(file));
}

const BYTE_PIECE = /^<0x([0-9A-Fa-f]{2})>$/;

function tokenList(f: GGUFFile, vocabSize: number): string[] {
  const tokens = ggufMeta(f, 'tokenizer.ggml.tokens', 'array');
  if (tokens.itemType !== 'string') fail(f.path, `tokenizer.ggml.tokens holds ${tokens.itemType}, expected strings`);
  const list = tokens.value as string[];
  if (list.length !== vocabSize) fail(f.path, `tokenizer.ggml.tokens has ${list.length} tokens but token_embd has ${vocabSize} rows`);
  return list;
}

function tokenId(f: GGUFFile, key: string, fallback: number, n: number): number {
  const v = ggufMeta(f, key, 'number', fallback);
  if (!Number.isInteger(v) || v < 0 || v >= n) fail(f.path, `metadata "${key}" = ${v} is not a token id (vocabulary of ${n})`);
  return v;
}

function tokenTypes(f: GGUFFile, n: number): ArrayLike<number> | undefined {
  const t = f.metadata.get('tokenizer.ggml.token_type');
  if (t === undefined) return undefined;
  if (t.type !== 'array' || t.itemType !== 'int32') fail(f.path, 'tokenizer.ggml.token_type is not an array of int32');
  const v = t.value as Int32Array;
  if (v.length !== n) fail(f.path, `tokenizer.ggml.token_type has ${v.length} items, tokenizer.ggml.tokens ${n}`);
  return v;
}

/**
 * Byte-level BPE (tokenizer.ggml.model 'gpt2': GPT-2, Llama 3, Qwen2): tokens, merges, token_type, pre
 * ('gpt-2', 'llama-bpe', 'qwen2'), bos/eos ids (defaults: eos for both, GPT-2's single <|endoftext|>), add_bos_token (default false).
 */
export function ggufBpeTokenizer(f: GGUFFile, vocabSize: number): ByteLevelBpeTokenizer {
  const list = tokenList(f, vocabSize);
  const merges = ggufMeta(f, 'tokenizer.ggml.merges', 'array');
  if (merges.itemType !== 'string') fail(f.path, `tokenizer.ggml.merges holds ${merges.itemType}, expected strings`);
  const bad = (merges.value as string[]).findIndex((m) => m.split(' ').length !== 2);
  if (bad >= 0) fail(f.path, `tokenizer.ggml.merges[${bad}] = ${JSON.stringify((merges.value as string[])[bad])} is not two tokens separated by a space`);
  const eos = tokenId(f, 'tokenizer.ggml.eos_token_id', list.length - 1, list.length);
  return new ByteLevelBpeTokenizer(list, merges.value as string[], tokenTypes(f, list.length), ggufMeta(f, 'tokenizer.ggml.pre', 'string', 'default'), {
    bos: tokenId(f, 'tokenizer.ggml.bos_token_id', eos, list.length),
    eos,
    addBos: ggufMeta(f, 'tokenizer.ggml.add_bos_token', 'bool', false),
  }, f.path);
}

/**
 * The SentencePiece tokenizer of tokenizer.ggml.model 'llama': tokens (▁ for spaces), scores, token_type (6 = byte),
 * bos/eos ids, add_bos_token (default true). Encoding is run.c's algorithm (lib/tokenizers/llama2c.ts).
 */
export function ggufLlamaTokenizer(f: GGUFFile, vocabSize: number): Llama2cTokenizer {
  const file = f.path;
  const list = tokenList(f, vocabSize);
  const scoresMeta = f.metadata.get('tokenizer.ggml.scores');
  let scores: Float32Array;
  if (scoresMeta === undefined) scores = new Float32Array(list.length);
  else {
    if (scoresMeta.type !== 'array' || scoresMeta.itemType !== 'float32') fail(file, 'tokenizer.ggml.scores is not an array of float32');
    scores = scoresMeta.value as Float32Array;
    if (scores.length !== list.length) fail(file, `tokenizer.ggml.scores has ${scores.length} items, tokenizer.ggml.tokens ${list.length}`);
    const bad = scores.findIndex((s) => !Number.isFinite(s));
    if (bad >= 0) fail(file, `tokenizer.ggml.scores[${bad}] is not finite`);
  }
  const pieces = list.map((t) => Buffer.from(t.replace(/\u2581/g, ' '), 'utf8').toString('latin1'));
  const byteIds = new Int32Array(256).fill(-1);
  pieces.forEach((p, id) => {
    const m = BYTE_PIECE.exec(p);
    if (m && byteIds[parseInt(m[1], 16)] < 0) byteIds[parseInt(m[1], 16)] = id;
  });
  const missing = byteIds.indexOf(-1);
  if (missing >= 0) {
    fail(file, `the tokenizer has no byte piece <0x${missing.toString(16).toUpperCase().padStart(2, '0')}> (SentencePiece byte fallback)`);
  }
  const maxLen = pieces.reduce((m, p) => Math.max(m, p.length), 1);
  return new Llama2cTokenizer(pieces, scores, maxLen, {
    bos: tokenId(f, 'tokenizer.ggml.bos_token_id', 1, list.length),
    eos: tokenId(f, 'tokenizer.ggml.eos_token_id', 2, list.length),
    addBos: ggufMeta(f, 'tokenizer.ggml.add_bos_token', 'bool', true),
    byteIds,
  });
}

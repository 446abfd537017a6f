// GGUF models: the metadata → AddonModelConfig, the tensor infos → the native loader's sources, the SentencePiece
// tokenizer from tokenizer.ggml.*. The header is read by lib/formats/gguf.ts (bounded, every size checked); the
// weights are read natively from the offsets.
//
// What each general.architecture means — its `<arch>.*` keys and its tensors — is in its description (lib/arch/);
// this file checks the file against it: every key through GGUFConfigReader, every tensor the description lists
// present with its shape, nothing else present. F32/F16/BF16 sources are converted to the model dtype; Q8_0
// matrices stay Q8_0 on the device (q8Weights), Q8_0 embeddings are dequantized natively.
import { checkConfigLimits } from '../limits';
import type { AddonFileSource } from '../binding';
import { GGUF_ARCHITECTURES, archForGGUF, tensorList, type GGUFArchitecture } from '../arch';
import { engineTensorName, ggufCommonConfig, ggufTensorName } from '../arch/gguf';
import type { GGUFConfigReader, ModelFileConfig } from '../arch/types';
import { ModelFormatError, UnsupportedError } from '../errors';
import { ggufMeta, ggufSource, readGGUF, type GGUFFile, type GGUFTensor } from '../formats/gguf';
import { ByteLevelBpeTokenizer } from '../tokenizers/bpe';
import { ggufT5Tokenizer } from '../tokenizers/gguf-t5';
import { Llama2cTokenizer } from '../tokenizers/llama2c';
import type { TextTokenizer } from '../tokenizers/types';

export interface GGUFModel {
  file: GGUFFile;
  architecture: GGUFArchitecture;
  config: ModelFileConfig;
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

function positiveInt(f: GGUFFile, key: string, fallback?: number, min = 1): number {
  const v = ggufMeta(f, key, 'number', fallback);
  if (!Number.isInteger(v) || v < min || v > 2 ** 30) {
    fail(f.path, `metadata "${key}" = ${v}, expected ${min === 1 ? 'a positive integer' : `an integer >= ${min}`}`);
  }
  return v;
}

/** A positive number; a float32 value as its shortest decimal that rounds back to it (1e-5, not 9.9999997e-6). */
function positiveNumber(f: GGUFFile, key: string, fallback?: number): number {
  const v = ggufMeta(f, key, 'number', fallback);
  // The engine holds these as float32: a float64 1e308 would become Infinity there, 1e-300 zero.
  if (!(Math.fround(v) > 0) || !Number.isFinite(Math.fround(v))) fail(f.path, `metadata "${key}" = ${v}, expected a positive number a float32 holds`);
  if (f.metadata.get(key)?.type !== 'float32') return v;
  for (let p = 1; p < 9; p++) {
    const short = Number(v.toPrecision(p));
    if (Math.fround(short) === v) return short;
  }
  return v;
}

/** The file as the descriptions read it: `<arch>.` keys, tensors by engine name, this loader's errors. */
function configReader(f: GGUFFile, name: string, byName: Map<string, GGUFTensor>): GGUFConfigReader {
  return {
    name,
    file: f.path,
    int: (key, fallback, min) => positiveInt(f, `${name}.${key}`, fallback, min),
    number: (key, fallback) => positiveNumber(f, `${name}.${key}`, fallback),
    string: (key, fallback) => ggufMeta(f, `${name}.${key}`, 'string', fallback),
    tensorShape: (n) => byName.get(n)?.shape,
    invalid: (what) => fail(f.path, what),
    unsupported: (what) => {
      throw new UnsupportedError(`${f.path}: ${what}`);
    },
  };
}

/** Maps a parsed GGUF file to the engine config and sources; checks every key and tensor. */
export function ggufModelFromFile(f: GGUFFile): GGUFModel {
  const file = f.path;
  const a = ggufMeta(f, 'general.architecture', 'string');
  const desc = archForGGUF(a);
  if (!desc) throw new UnsupportedError(`${file}: architecture "${a}" is not supported (supported: ${GGUF_ARCHITECTURES.join(', ')})`);
  const byName = new Map(f.tensors.map((t) => [engineTensorName(t.name), t]));
  const r = configReader(f, a, byName);
  const config = desc.gguf.config(r, ggufCommonConfig(r, desc.gguf.ownHeadDim === true));
  checkConfigLimits(file, config);

  const expected = new Map(tensorList(config).map((t) => [t.name, t]));
  for (const [name, { shape }] of expected) {
    const t = byName.get(name);
    const gname = ggufTensorName(name);
    if (!t) fail(file, `tensor "${gname}" is missing`);
    if (t.shape.length !== shape.length || t.shape.some((d, i) => d !== shape[i])) {
      fail(file, `tensor "${gname}" has shape [${t.shape.join(', ')}], expected [${shape.join(', ')}] from the metadata`);
    }
  }
  for (const t of f.tensors) {
    if (!expected.has(engineTensorName(t.name))) fail(file, `tensor "${t.name}" is not a tensor of a ${a} model`);
  }
  const tensors = f.tensors.map((t) => ({ name: engineTensorName(t.name), source: ggufSource(t), type: t.type }));
  // Only matrices run as int8 (gemm_q8); Q8_0 embeddings and vectors are dequantized on load.
  const q8 = tensors.filter((t) => t.type === 'Q8_0' && expected.get(t.name)!.role === 'matrix');
  if (q8.length > 0) config.q8Weights = q8.map((t) => t.name);

  const model: GGUFModel = { file: f, architecture: a as GGUFArchitecture, config, tensors, tokenizerKind: ggufMeta(f, 'tokenizer.ggml.model', 'string', 'none') };
  const tmpl = f.metadata.get('tokenizer.chat_template');
  if (tmpl?.type === 'string') model.chatTemplate = tmpl.value;
  if (model.tokenizerKind === 'llama') model.tokenizer = ggufLlamaTokenizer(f, config.vocabSize);
  else if (model.tokenizerKind === 't5') model.tokenizer = ggufUnigramTokenizer(f, config.vocabSize);
  else if (model.tokenizerKind === 'gpt2') {
    try {
      model.tokenizer = ggufBpeTokenizer(f, config.vocabSize);
    } catch (e) {
      if (!(e instanceof UnsupportedError)) throw e;
      model.tokenizerProblem = e.message;
    }
  } else model.tokenizerProblem = `tokenizer.ggml.model "${model.tokenizerKind}" is not supported yet (supported: llama, gpt2, t5)`;
  return model;
}

/** Reads a GGUF model file's header and maps it (no tensor data is read). */
export async function readGGUFModel(file: string, signal?: AbortSignal): Promise<GGUFModel> {
  return ggufModelFromFile(await readGGUF(file, signal));
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
  // Encoding starts every non-empty text with the "▁" piece (SentencePiece's dummy prefix): a vocabulary without it
  // would load and then fail every prompt.
  if (!pieces.includes(' ')) fail(file, 'the tokenizer has no "▁" piece (the dummy prefix every encoded text starts with)');
  const maxLen = pieces.reduce((m, p) => Math.max(m, p.length), 1);
  return new Llama2cTokenizer(pieces, scores, maxLen, {
    bos: tokenId(f, 'tokenizer.ggml.bos_token_id', 1, list.length),
    eos: tokenId(f, 'tokenizer.ggml.eos_token_id', 2, list.length),
    addBos: ggufMeta(f, 'tokenizer.ggml.add_bos_token', 'bool', true),
    byteIds,
  });
}

/**
 * T5's SentencePiece Unigram (tokenizer.ggml.model 't5'): tokens, scores, token_type, unk / eos ids (defaults 2 and
 * 1, T5's), add_space_prefix (default true), remove_extra_whitespaces (default true), add_eos_token (default true),
 * precompiled_charsmap (optional uint8 array) → lib/tokenizers/gguf-t5.ts.
 */
export function ggufUnigramTokenizer(f: GGUFFile, vocabSize: number): TextTokenizer {
  const list = tokenList(f, vocabSize);
  const scores = ggufMeta(f, 'tokenizer.ggml.scores', 'array');
  if (scores.itemType !== 'float32') fail(f.path, 'tokenizer.ggml.scores is not an array of float32');
  const sv = scores.value as Float32Array;
  if (sv.length !== list.length) fail(f.path, `tokenizer.ggml.scores has ${sv.length} items, tokenizer.ggml.tokens ${list.length}`);
  const bad = sv.findIndex((x) => !Number.isFinite(x));
  if (bad >= 0) fail(f.path, `tokenizer.ggml.scores[${bad}] is not finite`);
  const cm = f.metadata.get('tokenizer.ggml.precompiled_charsmap');
  if (cm !== undefined && (cm.type !== 'array' || (cm.itemType !== 'uint8' && cm.itemType !== 'int8'))) {
    fail(f.path, 'tokenizer.ggml.precompiled_charsmap is not an array of bytes');
  }
  const charsmap = cm === undefined ? null : Uint8Array.from(cm.value as ArrayLike<number>, (b) => b & 0xff);
  return ggufT5Tokenizer({
    file: f.path, tokens: list, scores: sv, types: tokenTypes(f, list.length),
    unk: tokenId(f, 'tokenizer.ggml.unknown_token_id', 2, list.length),
    eos: tokenId(f, 'tokenizer.ggml.eos_token_id', 1, list.length),
    addSpacePrefix: ggufMeta(f, 'tokenizer.ggml.add_space_prefix', 'bool', true),
    removeExtraWhitespaces: ggufMeta(f, 'tokenizer.ggml.remove_extra_whitespaces', 'bool', true),
    addEos: ggufMeta(f, 'tokenizer.ggml.add_eos_token', 'bool', true),
    charsmap,
  }, vocabSize);
}

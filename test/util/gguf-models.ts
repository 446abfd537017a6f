// Tiny random llama / qwen2 / gpt2 models written as GGUF files by the tests (F32 or Q8_0 matrices), the weights
// as the file holds them (Q8_0 dequantized), and fp64 references of both architectures on those weights.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import type { AddonModelConfig } from '../../lib/binding';
import { dequantizeQ8_0, gv, quantizeQ8_0, writeGGUF, type GGUFWriterTensor } from '../../lib/formats/gguf-writer';
import type { GGUFValue } from '../../lib/formats/gguf';
import { f16BitsToF32, f32ToF16Bits } from '../../lib/half';
import { add, attend, geluTanh, layerNorm, linear, weightMaker, type Weight, type Weights } from './engine-helpers';

export type TinyArch = 'llama' | 'qwen2' | 'gpt2' | 'bert';

export interface TinySpec {
  arch: TinyArch;
  dim: number;
  hiddenDim: number;
  nLayers: number;
  nHeads: number;
  nKvHeads: number;
  vocab: number;
  ctx: number;
  tied: boolean;
  seed: number;
}

export const LLAMA_SPEC: TinySpec = { arch: 'llama', dim: 64, hiddenDim: 96, nLayers: 2, nHeads: 4, nKvHeads: 2, vocab: 288, ctx: 128, tied: false, seed: 11 };
export const QWEN2_SPEC: TinySpec = { ...LLAMA_SPEC, arch: 'qwen2', tied: true, seed: 12 };
export const GPT2_SPEC: TinySpec = { ...LLAMA_SPEC, arch: 'gpt2', nKvHeads: 4, hiddenDim: 128, tied: false, seed: 13 };
/** An encoder (2 token types); no LM head. */
export const BERT_SPEC: TinySpec = { ...LLAMA_SPEC, arch: 'bert', nKvHeads: 4, hiddenDim: 128, tied: false, seed: 14 };

/** The engine config fields a spec implies (what the loader must produce). */
export function specConfig(s: TinySpec): Omit<AddonModelConfig, 'dtype' | 'device' | 'maxBatch' | 'maxContext' | 'maxStepTokens'> {
  const c: ReturnType<typeof specConfig> = {
    arch: s.arch === 'gpt2' || s.arch === 'bert' ? s.arch : 'llama',
    dim: s.dim, hiddenDim: s.hiddenDim, nLayers: s.nLayers, nHeads: s.nHeads, nKvHeads: s.nKvHeads, headDim: s.dim / s.nHeads,
    vocabSize: s.vocab, maxSeqLen: s.ctx, normEps: 1e-5, ropeTheta: s.arch === 'gpt2' || s.arch === 'bert' ? 10000 : 5000,
    ropeLayout: s.arch === 'qwen2' ? 'half' : 'adjacent', tiedEmbeddings: s.tied,
  };
  if (s.arch === 'qwen2') c.qkvBias = true;
  if (s.arch === 'bert') c.nTokenTypes = 2;
  return c;
}

/** Random weights, engine names. */
export function tinyWeights(s: TinySpec): Weights {
  const w: Weights = new Map();
  const mk = weightMaker(w, s.seed);
  const hd = s.dim / s.nHeads;
  const q = s.nHeads * hd, kv = s.nKvHeads * hd;
  mk.mat('token_embd', s.vocab, s.dim, 1);
  if (s.arch === 'gpt2' || s.arch === 'bert') mk.mat('position_embd', s.ctx, s.dim, 0.3);
  if (s.arch === 'bert') {
    mk.mat('token_types', 2, s.dim, 0.5);
    mk.gain('token_embd_norm', s.dim); mk.bias('token_embd_norm.bias', s.dim);
  }
  for (let l = 0; l < s.nLayers; l++) {
    const b = (n: string): string => `blk.${l}.${n}`;
    if (s.arch === 'bert') {
      for (const [n, rows] of [['attn_q', q], ['attn_k', kv], ['attn_v', kv], ['attn_output', s.dim]] as const) {
        mk.mat(b(n), rows, n === 'attn_output' ? q : s.dim); mk.bias(b(`${n}.bias`), rows);
      }
      mk.gain(b('attn_output_norm'), s.dim); mk.bias(b('attn_output_norm.bias'), s.dim);
      mk.mat(b('ffn_up'), s.hiddenDim, s.dim); mk.bias(b('ffn_up.bias'), s.hiddenDim);
      mk.mat(b('ffn_down'), s.dim, s.hiddenDim); mk.bias(b('ffn_down.bias'), s.dim);
      mk.gain(b('layer_output_norm'), s.dim); mk.bias(b('layer_output_norm.bias'), s.dim);
    } else if (s.arch === 'gpt2') {
      mk.gain(b('attn_norm'), s.dim); mk.bias(b('attn_norm.bias'), s.dim);
      mk.mat(b('attn_qkv'), q + 2 * kv, s.dim); mk.bias(b('attn_qkv.bias'), q + 2 * kv);
      mk.mat(b('attn_output'), s.dim, q); mk.bias(b('attn_output.bias'), s.dim);
      mk.gain(b('ffn_norm'), s.dim); mk.bias(b('ffn_norm.bias'), s.dim);
      mk.mat(b('ffn_up'), s.hiddenDim, s.dim); mk.bias(b('ffn_up.bias'), s.hiddenDim);
      mk.mat(b('ffn_down'), s.dim, s.hiddenDim); mk.bias(b('ffn_down.bias'), s.dim);
    } else {
      mk.gain(b('attn_norm'), s.dim);
      mk.mat(b('attn_q'), q, s.dim); mk.mat(b('attn_k'), kv, s.dim); mk.mat(b('attn_v'), kv, s.dim);
      if (s.arch === 'qwen2') { mk.bias(b('attn_q.bias'), q); mk.bias(b('attn_k.bias'), kv); mk.bias(b('attn_v.bias'), kv); }
      mk.mat(b('attn_output'), s.dim, q);
      mk.gain(b('ffn_norm'), s.dim);
      mk.mat(b('ffn_gate'), s.hiddenDim, s.dim); mk.mat(b('ffn_up'), s.hiddenDim, s.dim);
      mk.mat(b('ffn_down'), s.dim, s.hiddenDim);
    }
  }
  if (s.arch === 'bert') return w;
  mk.gain('output_norm', s.dim);
  if (s.arch === 'gpt2') mk.bias('output_norm.bias', s.dim);
  if (!s.tied) mk.mat('output', s.vocab, s.dim);
  return w;
}

/** A SentencePiece-like vocabulary: <unk> <s> </s>, 256 byte pieces, then ▁-words and letters up to `vocab`. */
export function tinyVocab(vocab: number): { tokens: string[]; scores: number[]; types: number[] } {
  const tokens = ['<unk>', '<s>', '</s>'];
  const types = [2, 3, 3];
  for (let b = 0; b < 256; b++) { tokens.push(`<0x${b.toString(16).toUpperCase().padStart(2, '0')}>`); types.push(6); }
  const words = ['▁', 'e', 't', 'a', 'o', 'n', 'i', 's', 'h', 'r', '▁t', '▁a', 'he', '▁the', 'in', 'an', '▁s', 'on', 'er', 'at', '▁o', 'nd', '▁w', 'ha', 'ou', 'en', '▁the', 'is', '▁h'];
  for (let i = 0; tokens.length < vocab; i++) { tokens.push(i < words.length && !tokens.includes(words[i]) ? words[i] : `▁w${i}`); types.push(1); }
  const scores = tokens.map((t, i) => (types[i] === 1 ? -i : 0));
  return { tokens, scores, types };
}

/** GGUF metadata of a spec (general.*, <arch>.*, tokenizer.ggml.* with the tiny vocabulary). */
export function tinyMetadata(s: TinySpec, overrides: Record<string, GGUFValue | null> = {}): Array<[string, GGUFValue]> {
  const a = s.arch;
  const v = tinyVocab(s.vocab);
  const m: Record<string, GGUFValue | null> = {
    'general.architecture': gv.str(a),
    'general.name': gv.str(`tiny-${a}`),
    [`${a}.context_length`]: gv.u32(s.ctx),
    [`${a}.embedding_length`]: gv.u32(s.dim),
    [`${a}.block_count`]: gv.u32(s.nLayers),
    [`${a}.feed_forward_length`]: gv.u32(s.hiddenDim),
    [`${a}.attention.head_count`]: gv.u32(s.nHeads),
    [`${a}.attention.head_count_kv`]: gv.u32(s.nKvHeads),
    ...(a === 'gpt2' || a === 'bert'
      ? { [`${a}.attention.layer_norm_epsilon`]: gv.f32(1e-5) }
      : {
        [`${a}.attention.layer_norm_rms_epsilon`]: gv.f32(1e-5),
        [`${a}.rope.freq_base`]: gv.f32(5000),
        [`${a}.rope.dimension_count`]: gv.u32(s.dim / s.nHeads),
      }),
    'tokenizer.ggml.model': gv.str('llama'),
    'tokenizer.ggml.tokens': gv.arr('string', v.tokens),
    'tokenizer.ggml.scores': gv.arr('float32', v.scores),
    'tokenizer.ggml.token_type': gv.arr('int32', v.types),
    'tokenizer.ggml.bos_token_id': gv.u32(1),
    'tokenizer.ggml.eos_token_id': gv.u32(2),
    'tokenizer.chat_template': gv.str('{% for m in messages %}{{ m.content }}{% endfor %}'),
    ...overrides,
  };
  return Object.entries(m).filter((e): e is [string, GGUFValue] => e[1] !== null);
}

let tmp: string | undefined;
let count = 0;
export function tmpFile(ext: string): string {
  tmp ??= fs.mkdtempSync(path.join(os.tmpdir(), 'eet-gguf-'));
  return path.join(tmp, `model-${count++}${ext}`);
}
export function removeTmp(): void {
  if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
  tmp = undefined;
}

const isMatrix = (name: string, shape: number[]): boolean =>
  shape.length === 2 && !/^(token_embd|position_embd|token_types)$/.test(name);

/**
 * Writes the weights as GGUF: F32, or F16 for every 2-D tensor (`f16`), or Q8_0 for the 2-D matrices (and token_embd too when `q8Embeddings`: the
 * engine dequantizes it). Returns the path and the weights as stored (Q8_0 ones dequantized).
 */
export async function writeTinyGGUF(s: TinySpec, w: Weights, opts: {
  q8?: boolean | ((name: string) => boolean); q8Embeddings?: boolean; f16?: boolean; metadata?: Record<string, GGUFValue | null>;
  tensors?: (t: GGUFWriterTensor[]) => GGUFWriterTensor[];
} = {}): Promise<{ file: string; stored: Weights }> {
  const stored: Weights = new Map();
  let tensors: GGUFWriterTensor[] = [];
  for (const [name, t] of w) {
    const gname = name.endsWith('.bias') ? name : `${name}.weight`;
    const wanted = typeof opts.q8 === 'function' ? opts.q8(name) : opts.q8;
    const q8 = (wanted && isMatrix(name, t.shape)) || (opts.q8Embeddings && name === 'token_embd');
    if (q8) {
      const raw = quantizeQ8_0(t.data);
      tensors.push({ name: gname, type: 'Q8_0', shape: t.shape, raw });
      stored.set(name, { shape: t.shape, data: dequantizeQ8_0(raw, t.data.length) });
    } else if (opts.f16 && t.shape.length === 2) {
      tensors.push({ name: gname, type: 'F16', shape: t.shape, data: t.data });
      stored.set(name, { shape: t.shape, data: t.data.map((v) => f16BitsToF32(f32ToF16Bits(v))) });
    } else {
      tensors.push({ name: gname, type: 'F32', shape: t.shape, data: t.data });
      stored.set(name, t);
    }
  }
  if (opts.tensors) tensors = opts.tensors(tensors);
  const file = tmpFile('.gguf');
  await writeGGUF(file, { metadata: tinyMetadata(s, opts.metadata), tensors });
  return { file, stored };
}

// ---- fp64 references -------------------------------------------------------------------------------------------

function rmsnorm(x: Float64Array, w: Weight, eps: number): Float64Array {
  const ss = x.reduce((a, v) => a + v * v, 0) / x.length;
  const s = 1 / Math.sqrt(ss + eps);
  return x.map((v, i) => v * s * w.data[i]);
}

function rope(v: Float64Array, heads: number, pos: number, hd: number, theta: number, half: boolean): void {
  for (let h = 0; h < heads; h++) {
    for (let i = 0; i < hd / 2; i++) {
      const angle = pos * Math.pow(theta, (-2 * i) / hd);
      const a = half ? h * hd + i : h * hd + 2 * i;
      const b = half ? h * hd + i + hd / 2 : h * hd + 2 * i + 1;
      const x0 = v[a], x1 = v[b];
      v[a] = x0 * Math.cos(angle) - x1 * Math.sin(angle);
      v[b] = x0 * Math.sin(angle) + x1 * Math.cos(angle);
    }
  }
}

/** Grouped-query attention of one query row (nHeads) over cached keys/values (nKvHeads). */
function attendGqa(q: Float64Array, keys: Float64Array[], values: Float64Array[], nHeads: number, nKv: number, hd: number): Float64Array {
  if (nHeads === nKv) return attend(q, keys, values, nHeads, hd);
  const group = nHeads / nKv;
  const out = new Float64Array(nHeads * hd);
  for (let h = 0; h < nHeads; h++) {
    const kvh = Math.floor(h / group);
    const slice = (r: Float64Array): Float64Array => r.subarray(kvh * hd, (kvh + 1) * hd);
    const one = attend(q.subarray(h * hd, (h + 1) * hd), keys.map(slice), values.map(slice), 1, hd);
    out.set(one, h * hd);
  }
  return out;
}

/** fp64 logits (vocab) after each position of one sequence, on weights `w` (engine names). */
export function referenceLogits(s: TinySpec, w: Weights, tokens: number[]): Float64Array[] {
  const c = specConfig(s);
  const W = (n: string): Weight => w.get(n)!;
  const { dim, headDim: hd, nHeads, nKvHeads } = c;
  const q = nHeads * hd, kv = nKvHeads * hd;
  const keys: Float64Array[][] = Array.from({ length: c.nLayers }, () => []);
  const values: Float64Array[][] = Array.from({ length: c.nLayers }, () => []);
  return tokens.map((tok, pos) => {
    let x: Float64Array = new Float64Array(dim).map((_, i) => W('token_embd').data[tok * dim + i] + (s.arch === 'gpt2' ? W('position_embd').data[pos * dim + i] : 0));
    for (let l = 0; l < c.nLayers; l++) {
      const b = (n: string): Weight => W(`blk.${l}.${n}`);
      const ob = (n: string): Weight | undefined => w.get(`blk.${l}.${n}`);
      if (s.arch === 'gpt2') {
        const h = layerNorm(x, b('attn_norm'), b('attn_norm.bias'), c.normEps);
        const qkv = linear(b('attn_qkv'), h, b('attn_qkv.bias'));
        keys[l].push(qkv.slice(q, q + kv));
        values[l].push(qkv.slice(q + kv, q + 2 * kv));
        const att = attendGqa(qkv.slice(0, q), keys[l], values[l], nHeads, nKvHeads, hd);
        x = add(x, linear(b('attn_output'), att, b('attn_output.bias')));
        const h2 = layerNorm(x, b('ffn_norm'), b('ffn_norm.bias'), c.normEps);
        const u = linear(b('ffn_up'), h2, b('ffn_up.bias')).map(geluTanh);
        x = add(x, linear(b('ffn_down'), u, b('ffn_down.bias')));
      } else {
        const h = rmsnorm(x, b('attn_norm'), c.normEps);
        const qv = linear(b('attn_q'), h, ob('attn_q.bias'));
        const kvv = linear(b('attn_k'), h, ob('attn_k.bias'));
        const vv = linear(b('attn_v'), h, ob('attn_v.bias'));
        rope(qv, nHeads, pos, hd, c.ropeTheta, c.ropeLayout === 'half');
        rope(kvv, nKvHeads, pos, hd, c.ropeTheta, c.ropeLayout === 'half');
        keys[l].push(kvv);
        values[l].push(vv);
        x = add(x, linear(b('attn_output'), attendGqa(qv, keys[l], values[l], nHeads, nKvHeads, hd)));
        const h2 = rmsnorm(x, b('ffn_norm'), c.normEps);
        const g = linear(b('ffn_gate'), h2);
        const u = linear(b('ffn_up'), h2);
        x = add(x, linear(b('ffn_down'), g.map((gv0, i) => (gv0 / (1 + Math.exp(-gv0))) * u[i])));
      }
    }
    const xf = s.arch === 'gpt2' ? layerNorm(x, W('output_norm'), W('output_norm.bias'), c.normEps) : rmsnorm(x, W('output_norm'), c.normEps);
    return linear(W(s.tied ? 'token_embd' : 'output'), xf);
  });
}

/** GPT-2's bytes_to_unicode characters, byte order. */
export function byteChars(): string[] {
  const out: string[] = [];
  let n = 0;
  for (let b = 0; b < 256; b++) {
    const printable = (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff);
    out.push(String.fromCharCode(printable ? b : 256 + n++));
  }
  return out;
}

/**
 * A byte-level BPE vocabulary of exactly `vocab` tokens: the 256 byte characters, merges (each merge's result is
 * the next token), then <|endoftext|> (control, type 3) last. Metadata for tokenizer.ggml.model 'gpt2'.
 */
export function tinyBpeMetadata(vocab: number, pre = 'gpt-2'): Record<string, GGUFValue | null> {
  const tokens = byteChars();
  const merges: string[] = [];
  const pairs = [
    ['Ġ', 't'], ['h', 'e'], ['Ġt', 'he'], ['i', 'n'], ['Ġ', 'a'], ['a', 't'], ['o', 'n'], ['e', 'r'], ['Ġ', 'c'], ['Ġc', 'at'],
    ['Ġ', 'h'], ['Ġh', 'at'], ['i', 's'], ['Ġ', 'w'], ['o', 'r'], ['Ġw', 'or'], ['l', 'd'], ['Ġwor', 'ld'], ['l', 'l'],
    ['e', 'll'], ['H', 'ell'], ['Hell', 'o'], ['1', '2'], ['3', '4'], ['Ġ', 'n'], ['u', 'm'], ['Ġn', 'um'], ['b', 'er'],
    ['Ġnum', 'ber'], ['Ġ', 'i'], ['Ġi', 'n'], ['Ċ', 'Ċ'], ['Ġ', 'Ġ'],
  ];
  const letters = 'abcdefghijklmnopqrstuvwxyz';
  for (let i = 0; tokens.length < vocab - 1; i++) {
    const [a, b] = i < pairs.length ? pairs[i] : [letters[(i * 7) % 26], letters[(i * 11 + 3) % 26]];
    if (tokens.includes(a + b)) continue;
    merges.push(`${a} ${b}`);
    tokens.push(a + b);
  }
  tokens.push('<|endoftext|>');
  const types = tokens.map((_, i) => (i === tokens.length - 1 ? 3 : 1));
  return {
    'tokenizer.ggml.model': gv.str('gpt2'),
    'tokenizer.ggml.pre': gv.str(pre),
    'tokenizer.ggml.tokens': gv.arr('string', tokens),
    'tokenizer.ggml.merges': gv.arr('string', merges),
    'tokenizer.ggml.token_type': gv.arr('int32', types),
    'tokenizer.ggml.scores': null,
    'tokenizer.ggml.bos_token_id': gv.u32(vocab - 1),
    'tokenizer.ggml.eos_token_id': gv.u32(vocab - 1),
  };
}

// Tiny random llama / qwen2 / gpt2 / bert models written as GGUF files by the tests (F32 or Q8_0 matrices), the
// weights as the file holds them (Q8_0 dequantized), and fp64 references of the decoders on those weights. Tensors
// and metadata keys come from the architecture descriptions (lib/arch/); the config a spec should load as is
// written out here, as the loader's expected result.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { tensorList, type ModelFileConfig } from '../../lib/arch';
import { ggufMetadata, ggufTensorName } from '../../lib/arch/gguf';
import { dequantizeQ8_0, gv, quantizeQ8_0, writeGGUF, type GGUFWriterTensor } from '../../lib/formats/gguf-writer';
import type { GGUFValue } from '../../lib/formats/gguf';
import { f16BitsToF32, f32ToF16Bits } from '../../lib/half';
import { add, attend, geluTanh, layerNorm, linear, randomWeights, type Weight, type Weights } from './engine-helpers';

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
  /** RoPE base of llama / qwen2 (default 5000, not the usual 10000, so a loader that ignores the key fails). */
  ropeTheta?: number;
}

export const LLAMA_SPEC: TinySpec = { arch: 'llama', dim: 64, hiddenDim: 96, nLayers: 2, nHeads: 4, nKvHeads: 2, vocab: 288, ctx: 128, tied: false, seed: 11 };
export const QWEN2_SPEC: TinySpec = { ...LLAMA_SPEC, arch: 'qwen2', tied: true, seed: 12 };
export const GPT2_SPEC: TinySpec = { ...LLAMA_SPEC, arch: 'gpt2', nKvHeads: 4, hiddenDim: 128, tied: false, seed: 13 };
/** An encoder (2 token types); no LM head. */
export const BERT_SPEC: TinySpec = { ...LLAMA_SPEC, arch: 'bert', nKvHeads: 4, hiddenDim: 128, tied: false, seed: 14 };

/** The engine config fields a spec implies (what the loader must produce). */
export function specConfig(s: TinySpec): ModelFileConfig {
  const c: ModelFileConfig = {
    arch: s.arch === 'gpt2' || s.arch === 'bert' ? s.arch : 'llama',
    dim: s.dim, hiddenDim: s.hiddenDim, nLayers: s.nLayers, nHeads: s.nHeads, nKvHeads: s.nKvHeads, headDim: s.dim / s.nHeads,
    vocabSize: s.vocab, maxSeqLen: s.ctx, normEps: 1e-5, ropeTheta: s.arch === 'gpt2' || s.arch === 'bert' ? 10000 : s.ropeTheta ?? 5000,
    ropeLayout: s.arch === 'qwen2' ? 'half' : 'adjacent', tiedEmbeddings: s.tied,
  };
  if (s.arch === 'qwen2') c.qkvBias = true;
  if (s.arch === 'bert') {
    c.nTokenTypes = 2;
    c.attentionMaskModes = new Array(s.nLayers).fill('bidirectional'); // GGUF's bert has no per-layer masks
  }
  return c;
}

/** Random weights, engine names (position table std 0.3). */
export function tinyWeights(s: TinySpec): Weights {
  return randomWeights(specConfig(s), s.seed, { std: { position_embd: 0.3 } });
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

/** GGUF metadata of a spec (general.*, <arch>.*, tokenizer.ggml.* with the tiny vocabulary); null in overrides drops a key. */
export function tinyMetadata(s: TinySpec, overrides: Record<string, GGUFValue | null> = {}): Array<[string, GGUFValue]> {
  const v = tinyVocab(s.vocab);
  const m: Record<string, GGUFValue | null> = {
    ...Object.fromEntries(ggufMetadata(specConfig(s), s.arch)),
    'general.name': gv.str(`tiny-${s.arch}`),
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
  const roles = new Map(tensorList(specConfig(s)).map((t) => [t.name, t.role]));
  for (const [name, t] of w) {
    const gname = ggufTensorName(name);
    const wanted = typeof opts.q8 === 'function' ? opts.q8(name) : opts.q8;
    const q8 = (wanted && roles.get(name) === 'matrix') || (opts.q8Embeddings && name === 'token_embd');
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

// Tiny random models as GGUF files (lib/formats/gguf-writer.ts) for the llama.cpp comparison, the same file read
// back into our engine (readGGUF + ggufSource, metadata mapped to EngineConfig here — a stand-in for the real
// GGUF loader), and the llama.cpp oracle run in a child process (llamacpp-run.mjs).
import { execFile } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { promisify } from 'util';
import { TestEngine, type EngineConfig } from '../util/engine-helpers';
import { binding } from '../../lib/binding';
import { GGUFValue, ggufMeta, ggufSource, readGGUF } from '../../lib/formats/gguf';
import { GGUFWriterTensor, dequantizeQ8_0, gv, quantizeQ8_0, writeGGUF } from '../../lib/formats/gguf-writer';
import { normal } from '../util/random';

export type TinyArch = 'llama' | 'qwen2' | 'gpt2' | 'bert';

export interface TinySpec {
  arch: TinyArch;
  dim: number;
  hiddenDim: number;
  nLayers: number;
  nHeads: number;
  nKvHeads: number;
  contextLength: number;
  seed: number;
  /** Matrices (not embeddings, norms or biases) stored as Q8_0. */
  q8?: boolean;
  /** Matrices rounded through Q8_0 (quantized, dequantized) and stored as F32: the F32 twin of a q8 model. */
  q8AsF32?: boolean;
  /** bert: llama.cpp's pooling type written to the GGUF. */
  pooling?: 'mean' | 'cls';
  /** Std of the token embedding (default 1). */
  embdStd?: number;
  /** llama, qwen2, gpt2: a separate LM head 'output' with this std (else the head is tied to token_embd). */
  outputStd?: number;
}

/** SentencePiece-style vocabulary: <unk> <s> </s>, the 256 byte tokens <0xNN> (type 6), then ▁-pieces. */
export const VOCAB = 300;
export const BOS = 1;
export const EOS = 2;

function vocabMetadata(): [string, GGUFValue][] {
  const tokens = ['<unk>', '<s>', '</s>'];
  const types = [2, 3, 3];
  for (let b = 0; b < 256; b++) { tokens.push(`<0x${b.toString(16).toUpperCase().padStart(2, '0')}>`); types.push(6); }
  for (let i = 0; tokens.length < VOCAB; i++) { tokens.push(`\u2581w${i}`); types.push(1); }
  return [
    ['tokenizer.ggml.model', gv.str('llama')],
    ['tokenizer.ggml.tokens', gv.arr('string', tokens)],
    ['tokenizer.ggml.scores', gv.arr('float32', tokens.map((_, i) => (i < 259 ? 0 : -i)))],
    ['tokenizer.ggml.token_type', gv.arr('int32', types)],
    ['tokenizer.ggml.unknown_token_id', gv.u32(0)],
    ['tokenizer.ggml.bos_token_id', gv.u32(BOS)],
    ['tokenizer.ggml.eos_token_id', gv.u32(EOS)],
  ];
}

/** The GGUF tensors (llama.cpp names) and metadata of a tiny random model. */
export function tinyModel(s: TinySpec): { tensors: GGUFWriterTensor[]; metadata: [string, GGUFValue][] } {
  const tensors: GGUFWriterTensor[] = [];
  let seed = s.seed;
  const C = s.dim, hd = s.dim / s.nHeads, kv = s.nKvHeads * hd;
  const mat = (name: string, out: number, inn: number, std = 1 / Math.sqrt(inn), quantized = true) => {
    let data = normal(out * inn, seed++, std);
    if (quantized && s.q8AsF32) data = dequantizeQ8_0(quantizeQ8_0(data), data.length);
    tensors.push({ name: `${name}.weight`, type: quantized && s.q8 ? 'Q8_0' : 'F32', shape: [out, inn], data });
  };
  const gain = (name: string, n: number) => {
    const d = normal(n, seed++, 0.2);
    for (let i = 0; i < n; i++) d[i] += 1;
    tensors.push({ name: `${name}.weight`, type: 'F32', shape: [n], data: d });
  };
  const bias = (name: string, n: number) => tensors.push({ name: `${name}.bias`, type: 'F32', shape: [n], data: normal(n, seed++, 0.2) });
  const a = s.arch;
  mat('token_embd', VOCAB, C, s.embdStd ?? 1, false);
  if (a === 'gpt2' || a === 'bert') mat('position_embd', s.contextLength, C, 0.5, false);
  if (a === 'bert') {
    mat('token_types', 2, C, 0.5, false);
    gain('token_embd_norm', C);
    bias('token_embd_norm', C);
  }
  for (let l = 0; l < s.nLayers; l++) {
    const b = (n: string) => `blk.${l}.${n}`;
    if (a === 'llama' || a === 'qwen2') {
      gain(b('attn_norm'), C);
      mat(b('attn_q'), C, C);
      mat(b('attn_k'), kv, C);
      mat(b('attn_v'), kv, C);
      if (a === 'qwen2') { bias(b('attn_q'), C); bias(b('attn_k'), kv); bias(b('attn_v'), kv); }
      mat(b('attn_output'), C, C);
      gain(b('ffn_norm'), C);
      mat(b('ffn_gate'), s.hiddenDim, C);
      mat(b('ffn_up'), s.hiddenDim, C);
      mat(b('ffn_down'), C, s.hiddenDim);
    } else if (a === 'gpt2') {
      gain(b('attn_norm'), C); bias(b('attn_norm'), C);
      mat(b('attn_qkv'), 3 * C, C); bias(b('attn_qkv'), 3 * C);
      mat(b('attn_output'), C, C); bias(b('attn_output'), C);
      gain(b('ffn_norm'), C); bias(b('ffn_norm'), C);
      mat(b('ffn_up'), s.hiddenDim, C); bias(b('ffn_up'), s.hiddenDim);
      mat(b('ffn_down'), C, s.hiddenDim); bias(b('ffn_down'), C);
    } else {
      for (const n of ['attn_q', 'attn_k', 'attn_v', 'attn_output']) { mat(b(n), C, C); bias(b(n), C); }
      gain(b('attn_output_norm'), C); bias(b('attn_output_norm'), C);
      mat(b('ffn_up'), s.hiddenDim, C); bias(b('ffn_up'), s.hiddenDim);
      mat(b('ffn_down'), C, s.hiddenDim); bias(b('ffn_down'), C);
      gain(b('layer_output_norm'), C); bias(b('layer_output_norm'), C);
    }
  }
  if (a !== 'bert') {
    gain('output_norm', C);
    if (a === 'gpt2') bias('output_norm', C);
    if (s.outputStd !== undefined) mat('output', VOCAB, C, s.outputStd);
  }
  const k = (n: string) => `${a}.${n}`;
  const metadata: [string, GGUFValue][] = [
    ['general.architecture', gv.str(a)],
    ['general.name', gv.str(`tiny-${a}`)],
    [k('context_length'), gv.u32(s.contextLength)],
    [k('embedding_length'), gv.u32(C)],
    [k('feed_forward_length'), gv.u32(s.hiddenDim)],
    [k('block_count'), gv.u32(s.nLayers)],
    [k('attention.head_count'), gv.u32(s.nHeads)],
    [k('attention.head_count_kv'), gv.u32(s.nKvHeads)],
  ];
  if (a === 'llama' || a === 'qwen2') {
    metadata.push([k('attention.layer_norm_rms_epsilon'), gv.f32(1e-5)], [k('rope.freq_base'), gv.f32(10000)], [k('rope.dimension_count'), gv.u32(hd)]);
  } else {
    metadata.push([k('attention.layer_norm_epsilon'), gv.f32(1e-5)]);
  }
  if (a === 'bert') {
    metadata.push([k('attention.causal'), gv.bool(false)], [k('pooling_type'), gv.u32(s.pooling === 'cls' ? 2 : 1)], ['tokenizer.ggml.token_type_count', gv.u32(2)]);
  }
  metadata.push(...vocabMetadata());
  return { tensors, metadata };
}

let tmp: string | undefined;
let fileCount = 0;
export function tmpFile(ext: string): string {
  tmp ??= fs.mkdtempSync(path.join(os.tmpdir(), 'eet-llamacpp-'));
  return path.join(tmp, `f${fileCount++}.${ext}`);
}
export function removeTmpFiles(): void {
  if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
  tmp = undefined;
}

export async function writeTinyGGUF(s: TinySpec): Promise<string> {
  const file = tmpFile('gguf');
  await writeGGUF(file, tinyModel(s));
  return file;
}

/**
 * Our engine on a GGUF file: metadata → EngineConfig (llama and qwen2 → 'llama' with adjacent / half RoPE), every
 * tensor through loadTensor (ggufSource) under its name without '.weight'. Q8_0 matrices stay Q8_0 on the device
 * (q8Weights: the engine's int8 weight path).
 */
export async function engineFromGGUF(file: string, device: string, extra: Partial<EngineConfig> = {}): Promise<{ model: TestEngine; cfg: EngineConfig }> {
  const f = await readGGUF(file);
  const a = ggufMeta(f, 'general.architecture', 'string') as TinyArch;
  const m = (key: string, fallback?: number) => ggufMeta(f, `${a}.${key}`, 'number', fallback);
  const names = new Set(f.tensors.map((t) => t.name));
  const engineName = (n: string) => n.replace(/\.weight$/, '');
  const dim = m('embedding_length');
  const nHeads = m('attention.head_count');
  const tokenTypes = f.tensors.find((t) => t.name === 'token_types.weight');
  const cfg: EngineConfig = {
    arch: a === 'qwen2' ? 'llama' : a,
    dim,
    hiddenDim: m('feed_forward_length'),
    nLayers: m('block_count'),
    nHeads,
    nKvHeads: m('attention.head_count_kv', nHeads),
    headDim: dim / nHeads,
    vocabSize: ggufMeta(f, 'tokenizer.ggml.tokens', 'array').value.length,
    maxSeqLen: m('context_length'),
    normEps: a === 'llama' || a === 'qwen2' ? m('attention.layer_norm_rms_epsilon') : m('attention.layer_norm_epsilon'),
    ropeTheta: m('rope.freq_base', 10000),
    ropeLayout: a === 'qwen2' ? 'half' : 'adjacent',
    qkvBias: names.has('blk.0.attn_q.bias'),
    nTokenTypes: tokenTypes ? tokenTypes.shape[0] : undefined,
    tiedEmbeddings: !names.has('output.weight'),
    dtype: 'float32',
    q8Weights: f.tensors.filter((t) => t.type === 'Q8_0').map((t) => engineName(t.name)),
    device,
    maxBatch: 2,
    maxContext: m('context_length'),
    maxStepTokens: m('context_length'),
    ...extra,
  };
  const model = new TestEngine(cfg);
  try {
    for (const t of f.tensors) await model.loadTensor(engineName(t.name), ggufSource(t));
    await model.finalize();
  } catch (e) {
    model.dispose();
    throw e;
  }
  return { model, cfg };
}

export interface OracleJob {
  model: string;
  kind: 'logits' | 'greedy' | 'embed';
  sequences: number[][];
  contextSize: number;
  vocabSize?: number;
  steps?: number;
}

/** Runs llama.cpp (node-llama-cpp) on a job in a child process; one result per sequence. */
export async function llamaCpp<T>(job: OracleJob): Promise<T[]> {
  const jobFile = tmpFile('json');
  const outFile = tmpFile('json');
  fs.writeFileSync(jobFile, JSON.stringify(job));
  const script = path.join(__dirname, 'llamacpp-run.mjs');
  try {
    await promisify(execFile)(process.execPath, [script, jobFile, outFile], { cwd: path.resolve(__dirname, '../..'), maxBuffer: 1 << 24 });
  } catch (e) {
    const err = e as Error & { stderr?: string };
    throw new Error(`llama.cpp oracle failed: ${err.message}\n${err.stderr ?? ''}`);
  }
  return (JSON.parse(fs.readFileSync(outFile, 'utf8')) as { results: T[] }).results;
}

// Tiny random models as GGUF files (lib/formats/gguf-writer.ts; tensors and <arch>.* keys from the architecture
// descriptions, lib/arch/) for the llama.cpp comparison, the same file read back into our engine through the GGUF
// loader (lib/loaders/gguf.ts), and the llama.cpp oracle run in a child process (llamacpp-run.mjs). llama.cpp
// loading these files is what checks the descriptions' GGUF names and keys against llama.cpp's own.
import { execFile } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { promisify } from 'util';
import { tensorList, type ModelFileConfig } from '../../lib/arch';
import { ggufMetadata, ggufTensorName } from '../../lib/arch/gguf';
import { GGUFValue } from '../../lib/formats/gguf';
import { GGUFWriterTensor, dequantizeQ8_0, gv, quantizeQ8_0, writeGGUF } from '../../lib/formats/gguf-writer';
import { readGGUFModel } from '../../lib/loaders/gguf';
import { TestEngine, randomWeights, type EngineConfig } from '../util/engine-helpers';
import { specConfig, type TinyArch } from '../util/gguf-models';

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

/**
 * SentencePiece-style vocabulary: <unk> <s> </s>, the 256 byte tokens <0xNN> (type 6), then ▁ (the dummy prefix the
 * loader requires of a SentencePiece vocabulary) and ▁-pieces. The tests feed token ids; the strings only need to load.
 */
export const VOCAB = 300;
export const BOS = 1;
export const EOS = 2;

function vocabMetadata(): [string, GGUFValue][] {
  const tokens = ['<unk>', '<s>', '</s>'];
  const types = [2, 3, 3];
  for (let b = 0; b < 256; b++) { tokens.push(`<0x${b.toString(16).toUpperCase().padStart(2, '0')}>`); types.push(6); }
  for (let i = 0; tokens.length < VOCAB; i++) { tokens.push(i === 0 ? '\u2581' : `\u2581w${i}`); types.push(1); }
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

/** The config of a spec: RoPE base 10000, norm eps 1e-5, 2 token types (bert), a decoder's head tied unless outputStd. */
function tinyConfig(s: TinySpec): ModelFileConfig {
  return specConfig({
    arch: s.arch, dim: s.dim, hiddenDim: s.hiddenDim, nLayers: s.nLayers, nHeads: s.nHeads, nKvHeads: s.nKvHeads,
    vocab: VOCAB, ctx: s.contextLength, tied: s.arch !== 'bert' && s.outputStd === undefined, seed: s.seed, ropeTheta: 10000,
  });
}

/** The GGUF tensors (llama.cpp names) and metadata of a tiny random model. */
export function tinyModel(s: TinySpec): { tensors: GGUFWriterTensor[]; metadata: [string, GGUFValue][] } {
  const cfg = tinyConfig(s);
  const w = randomWeights(cfg, s.seed, {
    std: { token_embd: s.embdStd ?? 1, ...(s.outputStd !== undefined ? { output: s.outputStd } : {}) },
  });
  const tensors = tensorList(cfg).map((t): GGUFWriterTensor => {
    const matrix = t.role === 'matrix';
    let data = w.get(t.name)!.data;
    if (matrix && s.q8AsF32) data = dequantizeQ8_0(quantizeQ8_0(data), data.length);
    return { name: ggufTensorName(t.name), type: matrix && s.q8 ? 'Q8_0' : 'F32', shape: t.shape, data };
  });
  const metadata: [string, GGUFValue][] = [...ggufMetadata(cfg, s.arch), ['general.name', gv.str(`tiny-${s.arch}`)]];
  if (s.arch === 'bert') {
    // llama.cpp's runtime choices for an encoder: how to pool, and the token type rows its tokenizer may use.
    metadata.push(['bert.pooling_type', gv.u32(s.pooling === 'cls' ? 2 : 1)], ['tokenizer.ggml.token_type_count', gv.u32(2)]);
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

/** Our engine on a GGUF file through the GGUF loader; Q8_0 matrices stay Q8_0 on the device (q8Weights). */
export async function engineFromGGUF(file: string, device: string, extra: Partial<EngineConfig> = {}): Promise<{ model: TestEngine; cfg: EngineConfig }> {
  const g = await readGGUFModel(file);
  const n = g.config.maxSeqLen;
  const cfg: EngineConfig = { ...g.config, dtype: 'float32', device, maxBatch: 2, maxContext: n, maxStepTokens: n, ...extra };
  const model = new TestEngine(cfg);
  try {
    for (const t of g.tensors) await model.loadTensor(t.name, t.source);
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

// `eet inspect <path>`: what a model file is without loading its weights — architecture, shape, parameter count,
// tensor dtypes, the device memory each dtype choice needs (weights, and the KV cache of one full-context
// sequence), the tokenizer and whether a chat template is present. GGUF files, Hugging Face folders (config.json +
// safetensors + tokenizer.json) and llama2.c checkpoints.
import * as fs from 'fs';
import * as path from 'path';
import type { Command } from 'commander';
import { parameterCount, type ModelFileConfig } from '../arch';
import { ModelFormatError, UnsupportedError } from '../errors';
import { readGGUFModel } from '../loaders/gguf';
import { readHfModel } from '../loaders/hf';
import { readLlama2cCheckpoint } from '../loaders/llama2c';
import { loadHfTokenizer } from '../tokenizers/hf';
import { loadLlama2cTokenizer } from '../tokenizers/llama2c';

export type InspectDType = 'float32' | 'float16' | 'bfloat16';

export interface ModelInfo {
  path: string;
  format: 'gguf' | 'hf' | 'llama2c';
  /** general.architecture for GGUF (llama, qwen2, gpt2, bert); model_type for HF folders; 'llama' for llama2.c. */
  architecture: string;
  name?: string;
  /** nDecoderLayers: encoder-decoder models (t5), whose nLayers are the encoder's. */
  config: Pick<ModelFileConfig, 'dim' | 'hiddenDim' | 'nLayers' | 'nHeads' | 'nKvHeads' | 'headDim' | 'vocabSize' | 'maxSeqLen' | 'tiedEmbeddings' | 'nDecoderLayers'>;
  /** Every tensor of the architecture's description (lib/arch/) for this config; the loaders checked the file has them. */
  parameters: number;
  /** Tensors per storage dtype in the file(s) (F32, F16, BF16, Q8_0). */
  dtypes: Record<string, { tensors: number; parameters: number }>;
  /** The model file's size (HF folders: the safetensors files'). */
  fileBytes: number;
  /** Device bytes per compute dtype: weights (Q8_0 matrices stay int8 + f16 scales) and one full-context sequence's KV cache. */
  memory: Record<InspectDType, { weights: number; kvCachePerSequence: number }>;
  tokenizer: { kind: string; vocabSize: number | null; note?: string };
  chatTemplate: boolean;
}

const SIZE: Record<InspectDType, number> = { float32: 4, float16: 2, bfloat16: 2 };

function kvBytes(c: ModelInfo['config'], dtype: InspectDType): number {
  return 2 * c.nLayers * c.nKvHeads * c.headDim * c.maxSeqLen * SIZE[dtype];
}

function pick(c: ModelFileConfig): ModelInfo['config'] {
  const { dim, hiddenDim, nLayers, nHeads, nKvHeads, headDim, vocabSize, maxSeqLen, tiedEmbeddings, nDecoderLayers } = c;
  return { dim, hiddenDim, nLayers, nHeads, nKvHeads, headDim, vocabSize, maxSeqLen, tiedEmbeddings, ...(nDecoderLayers ? { nDecoderLayers } : {}) };
}

/** Reads a model's header (never its weights) and summarises it. */
export async function inspectModel(file: string): Promise<ModelInfo> {
  const resolved = path.resolve(file);
  let stat: fs.Stats;
  try {
    stat = await fs.promises.stat(resolved);
  } catch (e) {
    throw new ModelFormatError(`Cannot open the model ${resolved}: ${(e as Error).message}`, { cause: e });
  }
  if (stat.isDirectory() && !fs.existsSync(path.join(resolved, 'config.json'))) {
    throw new UnsupportedError(`${resolved} is a directory without config.json; inspect reads GGUF files, Hugging Face folders and llama2.c checkpoints (.bin)`);
  }
  const dtypes: ModelInfo['dtypes'] = {};
  const weights: Record<InspectDType, number> = { float32: 0, float16: 0, bfloat16: 0 };
  const count = (dtype: string, numel: number, q8OnDevice: boolean): void => {
    dtypes[dtype] ??= { tensors: 0, parameters: 0 };
    dtypes[dtype].tensors++;
    dtypes[dtype].parameters += numel;
    for (const d of Object.keys(weights) as InspectDType[]) weights[d] += q8OnDevice ? numel + (numel / 32) * 2 : numel * SIZE[d];
  };
  const numelOf = (shape: number[]): number => shape.reduce((a, b) => a * b, 1);

  if (resolved.toLowerCase().endsWith('.gguf')) {
    const g = await readGGUFModel(resolved);
    const q8 = new Set(g.config.q8Weights ?? []);
    for (const t of g.tensors) count(t.type, numelOf(t.source.shape), q8.has(t.name));
    const name = g.file.metadata.get('general.name');
    const config = pick(g.config);
    return {
      path: resolved,
      format: 'gguf',
      architecture: g.architecture,
      ...(name?.type === 'string' ? { name: name.value } : {}),
      config,
      parameters: parameterCount(g.config),
      dtypes,
      fileBytes: g.file.fileBytes,
      memory: memoryOf(config, weights),
      tokenizer: {
        kind: g.tokenizerKind,
        vocabSize: g.tokenizer?.vocabSize ?? null,
        ...(g.tokenizerProblem ? { note: g.tokenizerProblem } : {}),
      },
      chatTemplate: g.chatTemplate !== undefined,
    };
  }

  if (stat.isDirectory()) {
    const hf = await readHfModel(resolved);
    const names = { float32: 'F32', float16: 'F16', bfloat16: 'BF16' } as Record<string, string>;
    for (const t of hf.tensors) count(names[t.source.dtype] ?? t.source.dtype, numelOf(t.source.shape), false);
    const files = new Set(hf.tensors.map((t) => t.source.path));
    const config = pick(hf.config);
    let tokenizer: ModelInfo['tokenizer'];
    let chatTemplate = false;
    try {
      const tok = await loadHfTokenizer(resolved, { bos: hf.bosTokenId, eos: hf.eosTokenIds.length ? hf.eosTokenIds[0] : null }, { vocabSize: hf.config.vocabSize });
      tokenizer = { kind: 'hf', vocabSize: tok.vocabSize };
      chatTemplate = tok.chatTemplate !== null;
    } catch (e) {
      tokenizer = { kind: 'hf', vocabSize: null, note: (e as Error).message };
    }
    return {
      path: resolved,
      format: 'hf',
      architecture: hf.modelType,
      config,
      parameters: parameterCount(hf.config),
      dtypes,
      fileBytes: [...files].reduce((a, f) => a + fs.statSync(f).size, 0),
      memory: memoryOf(config, weights),
      tokenizer,
      chatTemplate,
    };
  }

  const ckpt = await readLlama2cCheckpoint(resolved);
  for (const t of ckpt.tensors) count('F32', numelOf(t.source.shape), false);
  const config = pick(ckpt.config);
  const dir = path.dirname(resolved);
  const tokFile = [`tok${config.vocabSize}.bin`, 'tokenizer.bin'].map((f) => path.join(dir, f)).find((f) => fs.existsSync(f));
  let tokenizer: ModelInfo['tokenizer'] = { kind: 'none', vocabSize: null, note: 'no tok<vocab>.bin or tokenizer.bin next to the model' };
  if (tokFile) {
    try {
      tokenizer = { kind: 'llama2c', vocabSize: (await loadLlama2cTokenizer(tokFile, config.vocabSize)).vocabSize, note: tokFile };
    } catch (e) {
      tokenizer = { kind: 'llama2c', vocabSize: null, note: (e as Error).message };
    }
  }
  return {
    path: resolved,
    format: 'llama2c',
    architecture: ckpt.config.arch,
    config,
    parameters: parameterCount(ckpt.config),
    dtypes,
    fileBytes: ckpt.fileBytes,
    memory: memoryOf(config, weights),
    tokenizer,
    chatTemplate: false,
  };
}

function memoryOf(c: ModelInfo['config'], weights: Record<InspectDType, number>): ModelInfo['memory'] {
  const out = {} as ModelInfo['memory'];
  for (const d of Object.keys(SIZE) as InspectDType[]) out[d] = { weights: weights[d], kvCachePerSequence: kvBytes(c, d) };
  return out;
}

export function formatBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
  return `${i === 0 ? n : n.toFixed(n >= 100 ? 0 : n >= 10 ? 1 : 2)} ${units[i]}`;
}

function formatCount(n: number): string {
  if (n >= 1e9) return `${(n / 1e9).toFixed(2)} B`;
  if (n >= 1e6) return `${(n / 1e6).toFixed(2)} M`;
  if (n >= 1e3) return `${(n / 1e3).toFixed(1)} K`;
  return String(n);
}

/** The human-readable report. */
export function formatModelInfo(m: ModelInfo): string {
  const c = m.config;
  const lines = [
    `path:          ${m.path}`,
    `format:        ${m.format}${m.name ? ` (${m.name})` : ''}`,
    `architecture:  ${m.architecture}`,
    `shape:         dim ${c.dim}, hidden ${c.hiddenDim}, layers ${c.nDecoderLayers ? `${c.nLayers} encoder + ${c.nDecoderLayers} decoder` : c.nLayers}, heads ${c.nHeads} (kv ${c.nKvHeads}, head size ${c.headDim}), vocab ${c.vocabSize}, context ${c.maxSeqLen}${c.tiedEmbeddings ? ', tied head' : ''}`,
    `parameters:    ${formatCount(m.parameters)} (${m.parameters})`,
    `dtypes:        ${Object.entries(m.dtypes).map(([d, v]) => `${d}: ${v.tensors} tensors, ${formatCount(v.parameters)} parameters`).join('; ')}`,
    `file size:     ${formatBytes(m.fileBytes)}`,
    'memory:',
    ...Object.entries(m.memory).map(([d, v]) =>
      `  ${d.padEnd(9)} weights ${formatBytes(v.weights)}, KV cache ${formatBytes(v.kvCachePerSequence)} per full-context sequence`),
    `tokenizer:     ${m.tokenizer.kind}${m.tokenizer.vocabSize !== null ? `, ${m.tokenizer.vocabSize} tokens` : ''}${m.tokenizer.note ? ` (${m.tokenizer.note})` : ''}`,
    `chat template: ${m.chatTemplate ? 'yes' : 'no'}`,
  ];
  return lines.join('\n') + '\n';
}

export function registerInspect(cmd: Command): void {
  cmd
    .command('inspect')
    .description('describe a model (GGUF file, Hugging Face folder or llama2.c .bin) without loading its weights')
    .argument('<path>', 'model file or folder')
    .option('--json', 'print the report as JSON')
    .action(async (file: string, flags: { json?: boolean }) => {
      const info = await inspectModel(file);
      process.stdout.write(flags.json ? JSON.stringify(info, null, 2) + '\n' : formatModelInfo(info));
    });
}

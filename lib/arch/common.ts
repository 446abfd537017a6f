// Small pieces every architecture description uses, and the functions that read a description's tensor layout.
import type { ArchShape, HfConfigReader, ModelFileConfig, TensorLayout, TensorRole, TensorSpec } from './types';

/** A tensor row of a description. */
export function tensor(name: string, shape: number[], role: TensorRole, hf: readonly string[], hfConv1D = false): TensorSpec {
  return hfConv1D ? { name, shape, role, hf, hfConv1D } : { name, shape, role, hf };
}

/** The bias of a matrix or norm row: its output size, the Hugging Face names with 'weight' → 'bias' (and LayerNorm's legacy 'gamma' → 'beta'). */
function biasOf(t: TensorSpec): TensorSpec {
  const hf = t.hf.map((n) => n.replace(/\.weight$/, '.bias').replace(/\.gamma$/, '.beta'));
  return tensor(`${t.name}.bias`, [t.shape[0]], 'bias', hf);
}

/** A row followed by its bias (GPT-2 and BERT give every matrix and LayerNorm one). */
export function withBias(t: TensorSpec): TensorSpec[] {
  return [t, biasOf(t)];
}

/**
 * The config fields gpt2 and bert do not use (learned positions, no RoPE) but AddonModelConfig requires: one value
 * for every format, so the same model gives the same config from any file.
 */
export const NO_ROPE = { ropeTheta: 10000, ropeLayout: 'adjacent' } as const satisfies Partial<ModelFileConfig>;

export function numel(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

/** Every tensor of a layout, in load order. */
export function expandLayout(layout: TensorLayout, nLayers: number): TensorSpec[] {
  const out = [...layout.before];
  for (let l = 0; l < nLayers; l++) out.push(...layout.block(l));
  out.push(...layout.after);
  return out;
}

/** Parameters of a layout without listing every block (hostile headers may claim 2^31 layers). */
export function layoutParameters(layout: TensorLayout, nLayers: number): number {
  const sum = (ts: TensorSpec[]): number => ts.reduce((a, t) => a + numel(t.shape), 0);
  return sum(layout.before) + nLayers * sum(layout.block(0)) + sum(layout.after);
}

/** Output rows of the query projection and of each of the key and value projections (fewer with GQA). */
export function qkvRows(c: ArchShape): { q: number; kv: number } {
  return { q: c.nHeads * c.headDim, kv: c.nKvHeads * c.headDim };
}

/** The sizes most Hugging Face configs name alike (LlamaConfig, Qwen2Config, BertConfig...; GPT2Config has its own names). */
export function hfSizes(r: HfConfigReader): Pick<ModelFileConfig, 'dim' | 'nLayers' | 'nHeads' | 'maxSeqLen' | 'hiddenDim' | 'vocabSize'> {
  return {
    dim: r.int('hidden_size'),
    nLayers: r.int('num_hidden_layers'),
    nHeads: r.int('num_attention_heads'),
    maxSeqLen: r.int('max_position_embeddings'),
    hiddenDim: r.int('intermediate_size'),
    vocabSize: r.int('vocab_size'),
  };
}

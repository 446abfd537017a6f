// Built-in model shapes for `eet bench`: random weights made on the device, no downloads. LLaMA-family shapes
// run now; GPT-2 shapes are listed so the bench and the GPU suite show them, and report "not supported yet"
// until the GPT-2 architecture exists.
import type { ShapeDims } from './roofline';

export interface BuiltinShape extends ShapeDims {
  name: string;
  arch: 'llama' | 'gpt2';
  about: string;
  maxSeqLen: number;
  normEps: number;
  ropeTheta: number;
}

const llama = (s: Omit<BuiltinShape, 'arch' | 'normEps' | 'ropeTheta' | 'headDim'> & { normEps?: number; ropeTheta?: number }): BuiltinShape => ({
  arch: 'llama', normEps: 1e-5, ropeTheta: 10000, headDim: s.dim / s.nHeads, ...s,
});

export const BUILTIN_SHAPES: readonly BuiltinShape[] = [
  llama({ name: 'tiny', about: 'a 0.5 MB LLaMA for cpu/emu', dim: 64, hiddenDim: 172, nLayers: 2, nHeads: 4, nKvHeads: 2, vocabSize: 512, maxSeqLen: 512, tiedEmbeddings: true }),
  llama({ name: 'tinyllama-1.1b', about: 'TinyLlama-1.1B (GQA 32/4)', dim: 2048, hiddenDim: 5632, nLayers: 22, nHeads: 32, nKvHeads: 4, vocabSize: 32000, maxSeqLen: 2048, tiedEmbeddings: false }),
  llama({ name: 'llama-7b', about: 'Llama-2-7B', dim: 4096, hiddenDim: 11008, nLayers: 32, nHeads: 32, nKvHeads: 32, vocabSize: 32000, maxSeqLen: 4096, tiedEmbeddings: false }),
  llama({
    name: 'gpt3-layer-2l',
    about: 'two GPT-3-175B-shaped layers (hidden 12288, 96 heads × 128), LLaMA-style: SwiGLU 32768 ≈ the 4×d MLP in params',
    dim: 12288, hiddenDim: 32768, nLayers: 2, nHeads: 96, nKvHeads: 96, vocabSize: 50257, maxSeqLen: 2048, tiedEmbeddings: true,
  }),
  { name: 'gpt2-124m', arch: 'gpt2', about: 'GPT-2 small', dim: 768, hiddenDim: 3072, nLayers: 12, nHeads: 12, nKvHeads: 12, headDim: 64, vocabSize: 50257, maxSeqLen: 1024, tiedEmbeddings: true, normEps: 1e-5, ropeTheta: 0 },
  { name: 'gpt2-1.5b', arch: 'gpt2', about: 'GPT-2 XL', dim: 1600, hiddenDim: 6400, nLayers: 48, nHeads: 25, nKvHeads: 25, headDim: 64, vocabSize: 50257, maxSeqLen: 1024, tiedEmbeddings: true, normEps: 1e-5, ropeTheta: 0 },
];

export function builtinShape(name: string): BuiltinShape | undefined {
  return BUILTIN_SHAPES.find((s) => s.name === name.toLowerCase());
}

/** The tensors of a LLaMA shape with their shapes (names as in lib/binding.ts) and the std of their values. */
export function llamaTensors(s: BuiltinShape): Array<{ name: string; shape: number[]; norm: boolean }> {
  const q = s.nHeads * s.headDim, kv = s.nKvHeads * s.headDim;
  const out: Array<{ name: string; shape: number[]; norm: boolean }> = [{ name: 'token_embd', shape: [s.vocabSize, s.dim], norm: false }];
  for (let l = 0; l < s.nLayers; l++) {
    const t = (n: string, shape: number[], norm = false): void => { out.push({ name: `blk.${l}.${n}`, shape, norm }); };
    t('attn_norm', [s.dim], true);
    t('attn_q', [q, s.dim]);
    t('attn_k', [kv, s.dim]);
    t('attn_v', [kv, s.dim]);
    t('attn_output', [s.dim, q]);
    t('ffn_norm', [s.dim], true);
    t('ffn_gate', [s.hiddenDim, s.dim]);
    t('ffn_up', [s.hiddenDim, s.dim]);
    t('ffn_down', [s.dim, s.hiddenDim]);
  }
  out.push({ name: 'output_norm', shape: [s.dim], norm: true });
  if (!s.tiedEmbeddings) out.push({ name: 'output', shape: [s.vocabSize, s.dim], norm: false });
  return out;
}

// Built-in model shapes for `eet bench`: random weights made on the device, no downloads. LLaMA-family shapes
// run now; GPT-2 shapes are listed so the bench and the GPU suite show them, and report "not supported yet"
// until the bench runs GPT-2. A shape is a config; its tensors are its architecture's description (lib/arch/).
import { tensorList, type TensorSpec } from '../arch';
import type { ShapeDims } from './roofline';

export interface BuiltinShape extends ShapeDims {
  name: string;
  arch: 'llama' | 'gpt2';
  about: string;
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

/** A shape's tensors as the architecture's description lists them (names as in lib/binding.ts), in load order. */
export function shapeTensors(s: BuiltinShape): TensorSpec[] {
  return tensorList(s);
}

/**
 * The tensors with a flag for norm weights (initialised to 1 by the bench, the rest small random): the view
 * lib/bench/run.ts reads, kept under its old name while run.ts is being rewritten elsewhere.
 */
export function llamaTensors(s: BuiltinShape): Array<{ name: string; shape: number[]; norm: boolean }> {
  return shapeTensors(s).map((t) => ({ name: t.name, shape: t.shape, norm: t.role === 'norm' }));
}

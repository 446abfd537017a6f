// Built-in model shapes for `eet bench`: random weights made on the device, no downloads. A shape is a config; its
// tensors are its architecture's description (lib/arch/), so LLaMA-family and GPT-2 shapes build alike.
import { tensorList, type ModelFileConfig, type TensorSpec } from '../arch';
import { NO_ROPE } from '../arch/common';
import type { ShapeDims } from './roofline';

export interface BuiltinShape extends ShapeDims {
  name: string;
  arch: 'llama' | 'gpt2' | 't5';
  about: string;
  normEps: number;
  ropeTheta: number;
}

const llama = (s: Omit<BuiltinShape, 'arch' | 'normEps' | 'ropeTheta' | 'headDim'> & { normEps?: number; ropeTheta?: number }): BuiltinShape => ({
  arch: 'llama', normEps: 1e-5, ropeTheta: 10000, headDim: s.dim / s.nHeads, ...s,
});

// GPT-2 has learned positions: ropeTheta is the value every loader gives it (lib/arch/common.ts NO_ROPE), unused.
const gpt2 = (s: Pick<BuiltinShape, 'name' | 'about' | 'dim' | 'nLayers' | 'nHeads'>): BuiltinShape => ({
  arch: 'gpt2', hiddenDim: 4 * s.dim, nKvHeads: s.nHeads, headDim: s.dim / s.nHeads, vocabSize: 50257, maxSeqLen: 1024,
  tiedEmbeddings: true, normEps: 1e-5, ropeTheta: NO_ROPE.ropeTheta, ...s,
});

// T5 v1.0 (ReLU FFN, tied head): nLayers is each stack's (encoder and decoder alike); no position table, so any
// maxSeqLen holds (the relative buckets saturate at 128).
const t5 = (s: Pick<BuiltinShape, 'name' | 'about' | 'dim' | 'hiddenDim' | 'nLayers' | 'nHeads' | 'headDim' | 'vocabSize'>): BuiltinShape => ({
  arch: 't5', nKvHeads: s.nHeads, maxSeqLen: 512, tiedEmbeddings: true, normEps: 1e-6, ropeTheta: NO_ROPE.ropeTheta,
  nDecoderLayers: s.nLayers, relBuckets: 32, ffnActivation: 'relu', ...s,
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
  gpt2({ name: 'gpt2-124m', about: 'GPT-2 small', dim: 768, nLayers: 12, nHeads: 12 }),
  gpt2({ name: 'gpt2-1.5b', about: 'GPT-2 XL', dim: 1600, nLayers: 48, nHeads: 25 }),
  t5({ name: 't5-tiny', about: 'a 1 MB T5 (2 + 2 layers) for cpu/emu', dim: 64, hiddenDim: 128, nLayers: 2, nHeads: 4, headDim: 16, vocabSize: 512 }),
  t5({ name: 't5-base', about: 'T5-base (12 + 12 layers, 220M)', dim: 768, hiddenDim: 3072, nLayers: 12, nHeads: 12, headDim: 64, vocabSize: 32128 }),
];

export function builtinShape(name: string): BuiltinShape | undefined {
  return BUILTIN_SHAPES.find((s) => s.name === name.toLowerCase());
}

/**
 * The model config of a shape holding at least `positions` per sequence (a grid may ask for more than the shape
 * was trained for: random weights do not care, and GPT-2's position table just grows).
 */
export function shapeConfig(s: BuiltinShape, positions = s.maxSeqLen): ModelFileConfig {
  return {
    arch: s.arch, dim: s.dim, hiddenDim: s.hiddenDim, nLayers: s.nLayers, nHeads: s.nHeads, nKvHeads: s.nKvHeads, headDim: s.headDim,
    vocabSize: s.vocabSize, maxSeqLen: Math.max(s.maxSeqLen, positions), normEps: s.normEps, ropeTheta: s.ropeTheta,
    ropeLayout: s.arch === 'llama' ? 'half' : NO_ROPE.ropeLayout, tiedEmbeddings: s.tiedEmbeddings,
    ...(s.arch === 't5' ? {
      nDecoderLayers: s.nLayers, decoderStartTokenId: 0, scaleDecoderOutputs: true, relBuckets: 32, relMaxDistance: 128, ffnActivation: 'relu',
    } as const : {}),
  };
}

/** A shape's tensors as the architecture's description lists them (names as in lib/binding.ts), in load order. */
export function shapeTensors(s: BuiltinShape, positions = s.maxSeqLen): TensorSpec[] {
  return tensorList(shapeConfig(s, positions));
}

// The registry of architecture descriptions and the questions consumers ask of it. Order matters only for messages:
// "supported: ..." lists follow it.
import { UnsupportedError } from '../errors';
import { bert } from './bert';
import { expandLayout, layoutParameters } from './common';
import { gpt2 } from './gpt2';
import { llama } from './llama';
import { t5, t5encoder } from './t5';
import type { ArchDescription, ArchShape, EngineArch, TensorSpec } from './types';

export const ARCHITECTURES = [llama, gpt2, bert, t5, t5encoder] as const;

type Registered = (typeof ARCHITECTURES)[number];
type ModelTypeOf<T> = T extends ArchDescription<infer M, string> ? M : never;
type GGUFNameOf<T> = T extends ArchDescription<string, infer G> ? G : never;

/** Hugging Face model_type values some description loads. */
export type HfModelType = ModelTypeOf<Registered>;
/** GGUF general.architecture values some description loads. */
export type GGUFArchitecture = GGUFNameOf<Registered>;

export const HF_MODEL_TYPES = ARCHITECTURES.flatMap((a) => Object.keys(a.hf.modelTypes)) as HfModelType[];
export const GGUF_ARCHITECTURES: readonly GGUFArchitecture[] = ARCHITECTURES.flatMap((a): readonly GGUFArchitecture[] => a.gguf.names);

/** The description of an engine architecture. */
export function archOf(arch: EngineArch): ArchDescription {
  const d = ARCHITECTURES.find((a) => a.arch === arch);
  if (!d) throw new UnsupportedError(`The engine architecture "${arch}" has no description in lib/arch (known: ${ARCHITECTURES.map((a) => a.arch).join(', ')})`);
  return d;
}

export function archForGGUF(name: string): ArchDescription | undefined {
  return ARCHITECTURES.find((a) => (a.gguf.names as readonly string[]).includes(name));
}

export function archForHfModelType(modelType: string): ArchDescription | undefined {
  return ARCHITECTURES.find((a) => Object.hasOwn(a.hf.modelTypes, modelType));
}

/** The model_type a Hugging Face `architectures` class name identifies. */
export function hfModelTypeOfClass(className: string): HfModelType | undefined {
  for (const a of ARCHITECTURES) {
    for (const [mt, classes] of Object.entries(a.hf.modelTypes) as Array<[HfModelType, readonly string[]]>) {
      if (classes.includes(className)) return mt;
    }
  }
  return undefined;
}

/** Whether the architecture is an encoder only (embed(), no generation). */
export function isEncoder(arch: EngineArch): boolean {
  return archOf(arch).encoder === true;
}

/** Whether the architecture is an encoder-decoder (t5): generation reads an encoded input; embed() pools the encoder. */
export function isEncoderDecoder(arch: EngineArch): boolean {
  return archOf(arch).encoderDecoder === true;
}

/** Whether embed() works: an encoder, alone or with a decoder. */
export function hasEncoder(arch: EngineArch): boolean {
  return isEncoder(arch) || isEncoderDecoder(arch);
}

/** Every tensor a model of this shape has, in load order. */
export function tensorList(c: ArchShape): TensorSpec[] {
  return expandLayout(archOf(c.arch).tensors(c), c.nLayers);
}

/** The model's parameter count: every tensor of its description (a tied head counted once). */
export function parameterCount(c: ArchShape): number {
  return layoutParameters(archOf(c.arch).tensors(c), c.nLayers);
}

export type { ArchShape, ModelFileConfig, TensorRole, TensorSpec } from './types';

// What one architecture description (lib/arch/<name>.ts) says, in the style of llama.cpp's src/llama-arch.cpp (every
// tensor of every architecture in one table) and of Hugging Face's one config class per model type. The loaders
// (lib/loaders/*), `eet inspect`, the bench's built-in shapes and the tests' model builders all read these
// descriptions instead of knowing architectures themselves: adding an architecture is one file here (and its
// engine/arch_*.cpp).
import type { AddonModelConfig } from '../binding';
import type { GGUFValue } from '../formats/gguf';

/** The engine architectures (engine/arch_*.cpp). */
export type EngineArch = AddonModelConfig['arch'];

/** The config fields a model file determines; dtype and device come from options. */
export type ModelFileConfig = Omit<AddonModelConfig, 'dtype' | 'device'>;

/** The config fields that decide which tensors a model has and their shapes. */
export type ArchShape = Pick<
  ModelFileConfig,
  'arch' | 'dim' | 'hiddenDim' | 'nLayers' | 'nHeads' | 'nKvHeads' | 'headDim' | 'vocabSize' | 'maxSeqLen' | 'tiedEmbeddings' | 'qkvBias' | 'nTokenTypes'
  | 'relBuckets' | 'ffnActivation' | 'nDecoderLayers'
>;

/**
 * What a tensor is to the code that treats kinds differently:
 *   embedding — a lookup table (token, position, token type): never Q8_0 on the device, N(0, 1)-scale init;
 *   matrix    — multiplied by gemm (the LM head included): may stay Q8_0 (q8Weights), counted as matmul FLOPs;
 *   norm      — a norm's gain: initialised to 1 by random-weight builders;
 *   bias      — an additive vector (of a matrix or a norm).
 */
export type TensorRole = 'embedding' | 'matrix' | 'norm' | 'bias';

export interface TensorSpec {
  /** The engine's name: GGUF's without '.weight' (lib/binding.ts); a bias is NAME.bias. */
  name: string;
  /** (out, in) for matrices, as the engine holds it. */
  shape: number[];
  role: TensorRole;
  /** Hugging Face checkpoint names, in the order the loader tries them; the first is the one errors name. */
  hf: readonly string[];
  /** Hugging Face stores it (in, out) (GPT-2's Conv1D): the loader has it transposed on load. */
  hfConv1D?: boolean;
}

/**
 * A model's tensors in load order: before the blocks, each block (the same shapes for every l), after. Kept as a
 * per-block function so a loader can size a file from block(0) × nLayers before listing every tensor of a
 * hostile header (llama2.c).
 */
export interface TensorLayout {
  before: TensorSpec[];
  block(l: number): TensorSpec[];
  after: TensorSpec[];
}

/**
 * GGUF metadata as a description reads it: keys relative to `<general.architecture>.`; every accessor validates and
 * throws the loader's errors (ModelFormatError naming the key and file; UnsupportedError for features the engine
 * lacks).
 */
export interface GGUFConfigReader {
  /** general.architecture (one of the description's gguf.architectures). */
  readonly name: string;
  readonly file: string;
  /** An integer in [min (default 1), 2^30]. */
  int(key: string, fallback?: number, min?: number): number;
  /** A positive finite number; float32 values as their shortest decimal (1e-5, not 9.9999997e-6). */
  number(key: string, fallback?: number): number;
  string(key: string, fallback?: string): string;
  /** The shape of a tensor by engine name, outermost first; undefined when the file lacks it. */
  tensorShape(name: string): number[] | undefined;
  /** Throws ModelFormatError: "Invalid GGUF model FILE: what". */
  invalid(what: string): never;
  /** Throws UnsupportedError: "FILE: what". */
  unsupported(what: string): never;
}

/** The fields every GGUF architecture stores alike (lib/arch/gguf.ts reads and writes them). */
export type GGUFCommonConfig = Pick<
  ModelFileConfig,
  'dim' | 'hiddenDim' | 'nLayers' | 'nHeads' | 'nKvHeads' | 'headDim' | 'vocabSize' | 'maxSeqLen' | 'tiedEmbeddings'
>;

/** config.json as a description reads it; every accessor validates and throws the loader's errors. */
export interface HfConfigReader {
  /** model_type (one of the description's hf.modelTypes). */
  readonly modelType: string;
  readonly file: string;
  /** An integer >= min (default 1); the default when absent or null; else "missing field". */
  int(field: string, dflt?: number, min?: number): number;
  /** A positive finite number; the default when absent or null. */
  num(field: string, dflt: number): number;
  bool(field: string, dflt: boolean): boolean;
  /** A string field (default when absent) that must be one of `allowed`: else UnsupportedError (activations). */
  oneOf(field: string, allowed: readonly string[], dflt: string): void;
  /** The raw value (absent: undefined). */
  raw(field: string): unknown;
  /** Throws ModelFormatError: "Invalid Hugging Face config FILE: what". */
  invalid(what: string): never;
  /** Throws UnsupportedError with the message as given (descriptions name the file themselves). */
  unsupported(message: string): never;
}

/** The 7 int32 of a llama2.c (legacy version 0) header, validated, with the tied flag (vocab_size > 0). */
export interface Llama2cHeader {
  dim: number;
  hiddenDim: number;
  nLayers: number;
  nHeads: number;
  nKvHeads: number;
  vocabSize: number;
  seqLen: number;
  tied: boolean;
}

export interface ArchDescription<ModelType extends string = string, GGUFName extends string = string> {
  /** The engine architecture the models run as. */
  arch: EngineArch;
  /** An encoder: no LM head; its models embed() text instead of generating (the engine's has_lm_head() is false). */
  encoder?: boolean;
  /** An encoder-decoder (t5): generation encodes an input once (context.encode) and decodes prompts against it. */
  encoderDecoder?: boolean;
  /** The tensors of a model of this shape, in load order, optional ones (biases, an untied head) included as the config says. */
  tensors(c: ArchShape): TensorLayout;
  gguf: {
    /** The general.architecture values this engine architecture loads. */
    names: readonly GGUFName[];
    /** The head size is attention.key_length, not embedding_length / head_count (t5's d_kv). */
    ownHeadDim?: boolean;
    /** The architecture's own keys, after the common ones (lib/arch/gguf.ts) have been read into `common`. */
    config(r: GGUFConfigReader, common: GGUFCommonConfig): ModelFileConfig;
    /** The inverse of config: the architecture's own keys for a config, as llama.cpp's converter writes them. */
    metadata(c: ModelFileConfig, name: GGUFName): Array<[string, GGUFValue]>;
  };
  hf: {
    /** model_type values, each with the `architectures` class names that identify it when model_type is absent. */
    modelTypes: Readonly<Record<ModelType, readonly string[]>>;
    config(r: HfConfigReader): ModelFileConfig;
  };
  /** llama2.c checkpoints (run.c's format), for the one architecture that has them. */
  llama2c?: {
    config(h: Llama2cHeader): ModelFileConfig;
    /** run.c's per-layer weights in file order (each stacked over layers): [llama2.c name, engine name in blk.N.]. */
    layers: ReadonlyArray<readonly [string, string]>;
  };
}

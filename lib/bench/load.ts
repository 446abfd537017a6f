// The bench's models, made the way users make theirs: a built-in shape becomes random weights through buildModel
// (lib/model.ts, the same Model and Context code as loadModel), and anything else is a path for loadModel (llama2.c
// .bin, .gguf, Hugging Face folder). The model's default context is sized for the grid.
import * as fs from 'fs';
import * as os from 'os';
import { tensorList } from '../arch';
import { numel } from '../arch/common';
import { InvalidArgumentError } from '../errors';
import { buildModel, loadModel, type Model, type ModelParts } from '../model';
import { DTYPE_BYTES, type BenchDType } from './roofline';
import { BUILTIN_SHAPES, builtinShape, shapeConfig, type BuiltinShape } from './shapes';

export interface BenchModel {
  model: Model;
  source: 'builtin' | 'file';
  /** The built-in shape's description. */
  about?: string;
}

/** The default context's sizes (ContextOptions), and how many positions a built-in shape must hold. */
export interface BenchSizes {
  maxBatch: number;
  /** Absent: the model's. */
  maxSeqLen?: number;
  /** Absent: the engine's default. */
  maxStepTokens?: number;
  prefillChunk?: number;
  cudaGraphs?: boolean;
  /** Built-in shapes are made with at least this maxSeqLen (the scenarios may need more than the grid). */
  positions: number;
}

export async function loadBenchModel(spec: string, device: string, dtype: BenchDType, seed: number, sizes: BenchSizes): Promise<BenchModel> {
  const { positions, ...context } = sizes;
  const shape = builtinShape(spec);
  if (shape) {
    const model = await buildModel(randomParts(shape, Math.max(positions, sizes.maxSeqLen ?? 0), dtype, seed),
      { ...context, loadConcurrency: os.availableParallelism() }, device, dtype);
    return { model, source: 'builtin', about: shape.about };
  }
  if (!fs.existsSync(spec) && !/[\\/]|\.(bin|gguf)$/i.test(spec)) {
    // a bare name that is neither a shape nor a file: say both, rather than "cannot open" a meant shape name
    throw new InvalidArgumentError(`Expected a built-in shape (${BUILTIN_SHAPES.map((b) => b.name).join(', ')}) or a model path for --model ` +
      `but received ${JSON.stringify(spec)}: no such shape or file`);
  }
  try {
    return { model: await loadModel(spec, { ...context, device, dtype }), source: 'file' };
  } catch (e) {
    // The context's maxSeqLen is checked against the file's: say which bench setting asked for it.
    if (e instanceof InvalidArgumentError && e.message.includes('maxSeqLen')) {
      throw new InvalidArgumentError(`${e.message} (the grid needs prompt + new tokens = ${sizes.maxSeqLen} positions per sequence)`);
    }
    throw e;
  }
}

/** Norm weights 1, everything else uniform with std 0.02 (GPT-2/LLaMA init): activations stay O(1). */
function randomParts(shape: BuiltinShape, positions: number, dtype: BenchDType, seed: number): ModelParts {
  const config = shapeConfig(shape, positions);
  const tensors = tensorList(config).map((t, i) => ({
    name: t.name,
    source: {
      random: { seed: seed * 1000003 + i, std: t.role === 'norm' ? 0 : 0.02, mean: t.role === 'norm' ? 1 : 0 },
      shape: t.shape,
      bytes: numel(t.shape) * DTYPE_BYTES[dtype],
    },
  }));
  return { config, tensors, tokenizer: null, info: { format: 'random', tokenizerPath: '', stopIds: [] }, path: shape.name };
}

// loadModel() and the Model handle: a model's weights and KV cache on one device, its tokenizer, and the
// generate()/stream() calls. One generation runs at a time per model (later calls wait their turn); within a
// call, all prompts are batched (lib/generate/scheduler.ts). Device work runs off the JS thread (AddonModel).
import * as fs from 'fs';
import * as path from 'path';
import { AddonModel, AddonModelConfig, binding } from './binding';
import { resolveDevice } from './devices';
import { AbortError, DisposedError, InvalidArgumentError, ModelFormatError, UnsupportedError } from './errors';
import { GenerateOptions, Prompt, ResolvedOptions, isPromptIds, promptIds, resolveGenerateOptions } from './generate/options';
import { GenerateResult, StreamEvent, schedule } from './generate/scheduler';
import { readLlama2cCheckpoint } from './loaders/llama2c';
import { readGGUFModel } from './loaders/gguf';
import { loadLlama2cTokenizer } from './tokenizers/llama2c';
import type { TextTokenizer } from './tokenizers/types';
import { integerIn, invalid, is, oneOf, optionsObject } from './validate';

export type { FinishReason, GenerateOptions, Prompt } from './generate/options';
export type { GenerateResult, StreamEvent } from './generate/scheduler';

export type ModelDType = 'float32' | 'float16' | 'bfloat16';

export interface LoadProgress {
  /** Weight bytes loaded so far, of totalBytes. */
  loadedBytes: number;
  totalBytes: number;
  /** The tensor just loaded. */
  tensor: string;
}

export interface LoadModelOptions {
  /** 'auto' (default): the first usable GPU, else 'cpu'. Also 'cpu', 'emu', 'cuda', 'cuda:N'. */
  device?: string;
  /** Weights and compute dtype. Default: 'float16' on a GPU, 'float32' on cpu and emu. */
  dtype?: ModelDType;
  /** Context per sequence (prompt + generated tokens); at most, and by default, what the model was trained for. */
  maxSeqLen?: number;
  /** Sequences generated at once (default 4); a call with more prompts runs the rest as slots free up. */
  maxBatch?: number;
  /** Most tokens one forward step carries (default max(512, maxBatch)); longer prompts are fed in chunks. */
  maxStepTokens?: number;
  /** llama2.c tokenizer file. Default: tok<vocab>.bin, then tokenizer.bin, next to the model. (GGUF: from its metadata.) */
  tokenizer?: string;
  /** Aborting rejects the load with AbortError (checked between tensors) and frees what was loaded. */
  signal?: AbortSignal;
  onProgress?: (progress: LoadProgress) => void;
}

export type ModelConfig = Readonly<AddonModelConfig> & { readonly format: 'llama2c' | 'gguf'; readonly path: string; readonly tokenizerPath: string };

export interface ModelMemory {
  weights: number;
  kvCache: number;
  workspace: number;
  total: number;
}

/** Encodes and decodes the model's text (run.c's rules for llama2.c tokenizers). */
export interface Tokenizer {
  readonly vocabSize: number;
  readonly bos: number;
  readonly eos: number;
  /** Token ids with BOS first. */
  encode(text: string): number[];
  /** Text of the ids; `prev` is the token before them (BOS: a first piece loses its leading space). */
  decode(ids: readonly number[], prev?: number): string;
}

interface Job {
  single: boolean;
  prompts: Int32Array[];
  opts: ResolvedOptions;
  callStart: number;
}

export class Model {
  readonly config: ModelConfig;
  readonly tokenizer: Tokenizer;
  readonly loadMs: number;
  #native: AddonModel | null;
  readonly #tok: TextTokenizer;
  /** Resolves when the last queued generation has released the model. */
  #tail: Promise<void> = Promise.resolve();

  /** @internal use loadModel() */
  constructor(native: AddonModel, config: ModelConfig, tokenizer: TextTokenizer, loadMs: number) {
    this.#native = native;
    this.config = Object.freeze({ ...config });
    this.#tok = tokenizer;
    this.tokenizer = Object.freeze({
      vocabSize: tokenizer.vocabSize,
      bos: tokenizer.bos,
      eos: tokenizer.eos,
      encode: (text: string): number[] => {
        if (!is.string(text)) throw invalid('text', 'string', text);
        return tokenizer.encode(text);
      },
      decode: (ids: readonly number[], prev: number = tokenizer.bos): string => tokenizer.decode(ids, prev),
    });
    this.loadMs = loadMs;
  }

  get disposed(): boolean { return this.#native === null; }

  /** Device memory in bytes: weights, KV cache, activation workspace. */
  memory(): ModelMemory {
    const m = this.#handle().memory();
    return { weights: m.weights, kvCache: m.kvCache, workspace: m.workspace, total: m.weights + m.kvCache + m.workspace };
  }

  /** Generates from one prompt, or from several at once (one result each, in order). */
  generate(prompt: Prompt, options?: GenerateOptions): Promise<GenerateResult>;
  generate(prompts: readonly Prompt[], options?: GenerateOptions): Promise<GenerateResult[]>;
  async generate(prompts: Prompt | readonly Prompt[], options?: GenerateOptions): Promise<GenerateResult | GenerateResult[]> {
    const job = this.#prepare(prompts, options);
    const run = this.#run(job);
    let r = await run.next();
    while (!r.done) r = await run.next();
    return job.single ? r.value[0] : r.value;
  }

  /** Token-by-token events for one prompt or several (`index` says which); validates before returning. */
  stream(prompts: Prompt | readonly Prompt[], options?: GenerateOptions): AsyncIterable<StreamEvent> {
    const job = this.#prepare(prompts, options);
    const run = this.#run(job);
    return (async function* events() {
      for await (const step of run) yield* step; // leaving early returns `run`: its slots end, the model frees
    })();
  }

  /** Waits for the generation in progress (it stops after its current step), then frees device memory. */
  async dispose(): Promise<void> {
    const native = this.#native;
    if (!native) return;
    this.#native = null;
    await this.#tail;
    native.dispose();
  }

  async [Symbol.asyncDispose](): Promise<void> { await this.dispose(); }

  #handle(): AddonModel {
    if (!this.#native) throw new DisposedError('The model was disposed');
    return this.#native;
  }

  #prepare(input: unknown, options: unknown): Job {
    const callStart = performance.now();
    this.#handle();
    const opts = resolveGenerateOptions(options, this.config.vocabSize);
    const single = typeof input === 'string' || isPromptIds(input);
    if (!single && (!Array.isArray(input) || input.length === 0)) {
      throw invalid('prompts', 'string, array of token ids, or non-empty array of those', input);
    }
    const list = (single ? [input] : input) as unknown[];
    const prompts = list.map((p, i) => {
      const name = single ? 'prompt' : `prompts[${i}]`;
      let ids: Int32Array;
      if (typeof p === 'string') ids = Int32Array.from(this.#tok.encode(p));
      else if (p instanceof Int32Array || Array.isArray(p)) ids = promptIds(name, p, this.config.vocabSize);
      else throw invalid(name, 'string or array of token ids', p);
      if (ids.length > this.config.maxContext) {
        throw new InvalidArgumentError(`Expected at most ${this.config.maxContext} tokens (maxSeqLen) for ${name} but received ${ids.length} tokens`);
      }
      return ids;
    });
    return { single, prompts, opts, callStart };
  }

  async *#run(job: Job): AsyncGenerator<StreamEvent[], GenerateResult[], undefined> {
    let release!: () => void;
    const mine = new Promise<void>((r) => { release = r; });
    const before = this.#tail;
    this.#tail = before.then(() => mine);
    await before;
    try {
      const native = this.#handle();
      const decoders = job.prompts.map((p) => this.#tok.decoder(p[p.length - 1]));
      const limits = {
        maxBatch: this.config.maxBatch,
        maxContext: this.config.maxContext,
        maxStepTokens: this.config.maxStepTokens,
        // run.c stops on BOS too (llama2.c checkpoints); GGUF models stop on EOS, as llama.cpp does.
        eosIds: this.config.format === 'llama2c' ? [this.#tok.eos, this.#tok.bos] : [this.#tok.eos],
        loadMs: this.loadMs,
      };
      const gone = (): Error | null => (this.#native ? null : new DisposedError('The model was disposed during generation'));
      return yield* schedule(native, job.prompts, decoders, job.opts, limits, job.callStart, gone);
    } finally {
      release();
    }
  }
}

/**
 * Loads a model: a llama2.c checkpoint (.bin) with its tokenizer, or a GGUF file (llama, qwen2, gpt2; weights
 * F32/F16/BF16/Q8_0, Q8_0 matrices kept int8 on the device; the SentencePiece tokenizer from its metadata). Rejects with ModelFormatError for malformed
 * files, UnsupportedError for formats not supported yet, InvalidArgumentError for bad options, AbortError.
 */
export function loadModel(file: string, options?: LoadModelOptions): Promise<Model> {
  return loadModelWith(file, options, (config) => {
    const { AddonModel: Ctor } = binding();
    if (typeof Ctor !== 'function') throw new UnsupportedError('This build of the eet addon has no model engine (AddonModel); rebuild it');
    return new Ctor(config);
  });
}

/** @internal loadModel with another AddonModel factory (tests: a reference engine in JS). */
export async function loadModelWith(file: string, options: LoadModelOptions | undefined, create: (config: AddonModelConfig) => AddonModel): Promise<Model> {
  const start = performance.now();
  if (!is.string(file) || file.length === 0) throw invalid('path', 'non-empty string', file);
  const o = optionsObject('options', options);
  const signal = o.signal;
  if (signal !== undefined && !(signal instanceof AbortSignal)) throw invalid('signal', 'AbortSignal', signal);
  if (o.onProgress !== undefined && typeof o.onProgress !== 'function') throw invalid('onProgress', 'function', o.onProgress);
  if (o.tokenizer !== undefined && (!is.string(o.tokenizer) || o.tokenizer.length === 0)) throw invalid('tokenizer', 'non-empty string', o.tokenizer);
  const device = resolveDevice(o.device);
  const dtype: ModelDType = o.dtype === undefined ? (device.startsWith('cuda') ? 'float16' : 'float32')
    : oneOf('dtype', o.dtype, ['float32', 'float16', 'bfloat16'] as const);
  const maxBatch = o.maxBatch === undefined ? 4 : integerIn('maxBatch', o.maxBatch, 1, 65536);
  const throwIfAborted = (): void => { if (signal?.aborted) throw new AbortError('Model loading was aborted', { cause: signal.reason }); };

  const resolved = path.resolve(file);
  let stat: fs.Stats;
  try {
    stat = await fs.promises.stat(resolved);
  } catch (e) {
    throw new ModelFormatError(`Cannot open the model ${resolved}: ${(e as Error).message}`, { cause: e });
  }
  if (stat.isDirectory()) throw new UnsupportedError(`${resolved} is a directory; only llama2.c checkpoint files (.bin) and GGUF files are supported so far`);
  const isGGUF = resolved.toLowerCase().endsWith('.gguf');
  const ckpt = isGGUF ? await readGGUFModel(resolved) : await readLlama2cCheckpoint(resolved);
  const maxContext = o.maxSeqLen === undefined ? ckpt.config.maxSeqLen : integerIn('maxSeqLen', o.maxSeqLen, 1, ckpt.config.maxSeqLen);
  const maxStepTokens = o.maxStepTokens === undefined ? Math.max(512, maxBatch) : integerIn('maxStepTokens', o.maxStepTokens, maxBatch, 1 << 20);
  let tokenizerPath: string;
  let tokenizer: TextTokenizer;
  if (isGGUF && o.tokenizer === undefined) {
    const g = ckpt as Awaited<ReturnType<typeof readGGUFModel>>;
    if (g.config.arch === 'bert') throw new UnsupportedError(`${resolved} is a BERT encoder; generation needs a decoder (llama, qwen2, gpt2)`);
    if (!g.tokenizer) throw new UnsupportedError(`${resolved}: ${g.tokenizerProblem ?? 'no tokenizer'}`);
    tokenizer = g.tokenizer;
    tokenizerPath = resolved;
  } else {
    tokenizerPath = o.tokenizer !== undefined ? path.resolve(o.tokenizer) : findTokenizer(resolved, ckpt.config.vocabSize);
    tokenizer = await loadLlama2cTokenizer(tokenizerPath, ckpt.config.vocabSize);
  }
  throwIfAborted();

  const config: AddonModelConfig = { ...ckpt.config, dtype, device, maxBatch, maxContext, maxStepTokens };
  const native = create(config);
  try {
    const totalBytes = ckpt.tensors.reduce((a, t) => a + t.source.bytes, 0);
    let loadedBytes = 0;
    for (const { name, source } of ckpt.tensors) {
      throwIfAborted();
      await native.loadTensor(name, source);
      loadedBytes += source.bytes;
      (o.onProgress as LoadModelOptions['onProgress'])?.({ loadedBytes, totalBytes, tensor: name });
    }
    throwIfAborted();
    await native.finalize();
    throwIfAborted();
  } catch (e) {
    native.dispose();
    throw e;
  }
  return new Model(native, { ...config, format: isGGUF ? 'gguf' : 'llama2c', path: resolved, tokenizerPath }, tokenizer, performance.now() - start);
}

function findTokenizer(modelPath: string, vocabSize: number): string {
  const dir = path.dirname(modelPath);
  const tried = [`tok${vocabSize}.bin`, 'tokenizer.bin'].map((f) => path.join(dir, f));
  const found = tried.find((f) => fs.existsSync(f));
  if (!found) throw new ModelFormatError(`No tokenizer found for ${modelPath}: tried ${tried.join(', ')}. Pass the tokenizer option.`);
  return found;
}

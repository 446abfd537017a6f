// loadModel() and the Model handle: a model's weights and KV cache on one device, its tokenizer, and the
// generate()/stream() calls. One generation runs at a time per model (later calls wait their turn); within a
// call, all prompts are batched (lib/generate/scheduler.ts). Device work runs off the JS thread (AddonModel).
import * as fs from 'fs';
import * as path from 'path';
import { AddonContext, AddonContextOptions, AddonEventBatch, AddonModel, AddonModelConfig, AddonTensorSource, binding } from './binding';
import { resolveDevice } from './devices';
import { AbortError, DisposedError, InvalidArgumentError, ModelFormatError, UnsupportedError } from './errors';
import { GenerateOptions, Prompt, ResolvedOptions, isPromptIds, promptIds, resolveGenerateOptions } from './generate/options';
import { GenerateResult, StreamEvent, schedule } from './generate/scheduler';
import type { TokenDecoder } from './generate/text';
import { readGGUFModel } from './loaders/gguf';
import { readHfModel } from './loaders/hf';
import { readLlama2cCheckpoint } from './loaders/llama2c';
import { ChatMessage, ChatTemplateOptions, HfTokenizer, loadHfTokenizer } from './tokenizers/hf';
import { BOS, EOS, loadLlama2cTokenizer } from './tokenizers/llama2c';
import { integerIn, invalid, is, oneOf, optionsObject } from './validate';

export type { FinishReason, GenerateOptions, Prompt } from './generate/options';
export type { GenerateResult, StreamEvent } from './generate/scheduler';
export type { ChatMessage, ChatTemplateOptions } from './tokenizers/hf';

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
  /** llama2.c tokenizer file. Default: tok<vocab>.bin, then tokenizer.bin, next to the model (HF folders: tokenizer.json; GGUF: its metadata). */
  tokenizer?: string;
  /** Aborting rejects the load with AbortError (checked between tensors) and frees what was loaded. */
  signal?: AbortSignal;
  onProgress?: (progress: LoadProgress) => void;
}

export type ModelConfig = Readonly<AddonModelConfig> & {
  /** The default context's sizes (loadModel options). */
  readonly maxBatch: number;
  readonly maxContext: number;
  readonly maxStepTokens: number;
  readonly format: 'llama2c' | 'hf' | 'gguf';
  readonly path: string;
  readonly tokenizerPath: string;
  /** Hugging Face model_type or GGUF general.architecture (llama, mistral, qwen2, gpt2, bert); absent for llama2.c. */
  readonly modelType?: string;
  /** Token ids that end a generation (llama2.c: EOS and BOS; HF: generation_config.json / config.json eos_token_id). */
  readonly stopIds: readonly number[];
};

export interface EmbedOptions {
  /** 'mean' (default) over the tokens, or the first ('cls') token's final hidden state. */
  pooling?: 'mean' | 'cls';
  /** L2-normalise each vector (default true). */
  normalize?: boolean;
}

/** What Model needs of a tokenizer (llama2.c, Hugging Face, or a GGUF file's). */
interface TextCodec {
  readonly vocabSize: number;
  /** Absent: llama2.c's BOS (1) and EOS (2). */
  readonly bos?: number;
  readonly eos?: number;
  encode(text: string): number[];
  decode(ids: readonly number[], prev?: number): string;
  decoder(prev?: number): TokenDecoder;
}

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
  /** Token ids with the model's special tokens (llama2.c: BOS first; HF: the tokenizer's rules). */
  encode(text: string): number[];
  /** Text of the ids; `prev` is the token before them (llama2.c, default BOS: a first piece loses its leading space). */
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
  #native: AddonContext | null;
  #weights: AddonModel | null;
  readonly #tok: TextCodec;
  readonly #hf: HfTokenizer | null;
  /** Resolves when the last queued generation has released the model. */
  #tail: Promise<void> = Promise.resolve();

  /** @internal use loadModel() */
  constructor(weights: AddonModel, native: AddonContext, config: ModelConfig, tokenizer: TextCodec, loadMs: number) {
    this.#weights = weights;
    this.#native = native;
    this.config = Object.freeze({ ...config, stopIds: Object.freeze([...config.stopIds]) });
    this.#tok = tokenizer;
    this.#hf = tokenizer instanceof HfTokenizer ? tokenizer : null;
    const hf = this.#hf;
    this.tokenizer = Object.freeze({
      vocabSize: tokenizer.vocabSize,
      bos: tokenizer.bos ?? BOS,
      eos: tokenizer.eos ?? EOS,
      encode: (text: string): number[] => {
        if (!is.string(text)) throw invalid('text', 'string', text);
        return tokenizer.encode(text);
      },
      decode: (ids: readonly number[], prev: number | undefined = hf ? undefined : (tokenizer.bos ?? BOS)): string => tokenizer.decode(ids, prev),
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

  /** Renders the chat template (Hugging Face tokenizer_config.json) for messages. */
  applyChatTemplate(messages: readonly ChatMessage[], options?: ChatTemplateOptions): string {
    if (!this.#hf) throw new UnsupportedError('Chat templates need a Hugging Face model folder (tokenizer_config.json)');
    return this.#hf.applyChatTemplate(messages, optionsObject('options', options) as ChatTemplateOptions);
  }

  /** Generates the assistant's reply to a conversation: the chat template with the generation prompt, then generate(). */
  async chat(messages: readonly ChatMessage[], options?: GenerateOptions): Promise<GenerateResult> {
    const text = this.applyChatTemplate(messages, { addGenerationPrompt: true });
    return this.generate(this.#hf!.encode(text, false), options);
  }

  /**
   * Sentence embeddings of an encoder (bert): one float32 vector (dim) per text, from the tokens the tokenizer
   * makes ([CLS] … [SEP]). Runs in turn with generations.
   */
  async embed(texts: string | readonly string[], options?: EmbedOptions): Promise<Float32Array[]> {
    const native = this.#handle();
    if (this.config.arch !== 'bert') throw new UnsupportedError(`embed() needs an encoder model (bert); this model is ${this.config.modelType ?? this.config.arch}`);
    const o = optionsObject('options', options);
    const pooling = o.pooling === undefined ? 'mean' : oneOf('pooling', o.pooling, ['mean', 'cls'] as const);
    const normalize = o.normalize === undefined ? true : o.normalize;
    if (typeof normalize !== 'boolean') throw invalid('normalize', 'boolean', normalize);
    const list = typeof texts === 'string' ? [texts] : texts;
    if (!Array.isArray(list) || list.length === 0) throw invalid('texts', 'string or non-empty array of strings', texts);
    const longest = Math.min(this.config.maxContext, this.config.maxStepTokens);
    const seqs = list.map((t, i) => {
      if (!is.string(t)) throw invalid(`texts[${i}]`, 'string', t);
      const ids = this.#tok.encode(t);
      if (ids.length === 0 || ids.length > longest) {
        throw new InvalidArgumentError(`Expected 1 to ${longest} tokens (maxSeqLen, maxStepTokens) for texts[${i}] but received ${ids.length} tokens`);
      }
      return ids;
    });
    let release!: () => void;
    const mine = new Promise<void>((r) => { release = r; });
    const before = this.#tail;
    this.#tail = before.then(() => mine);
    await before;
    try {
      const out = await native.embed({ tokens: Int32Array.from(seqs.flat()), counts: Int32Array.from(seqs.map((s) => s.length)), pooling, normalize });
      const C = this.config.dim;
      return seqs.map((_, i) => out.slice(i * C, (i + 1) * C));
    } finally {
      release();
    }
  }

  /** Waits for the generation in progress (it stops after its current step), then frees device memory. */
  async dispose(): Promise<void> {
    const native = this.#native;
    if (!native) return;
    this.#native = null;
    await this.#tail;
    await native.dispose();
    this.#weights?.dispose();
    this.#weights = null;
  }

  async [Symbol.asyncDispose](): Promise<void> { await this.dispose(); }

  #handle(): AddonContext {
    if (!this.#native) throw new DisposedError('The model was disposed');
    return this.#native;
  }

  #prepare(input: unknown, options: unknown): Job {
    const callStart = performance.now();
    this.#handle();
    if (this.config.arch === 'bert') throw new UnsupportedError('A bert model is an encoder: use embed(), not generate()');
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
        eosIds: this.config.stopIds,
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
 * Loads a model: a Hugging Face folder (config.json, safetensors, tokenizer.json), a GGUF file (llama, qwen2, gpt2;
 * F32/F16/BF16/Q8_0 weights, Q8_0 matrices kept int8 on the device; its tokenizer from the metadata), or a llama2.c
 * checkpoint (.bin) with its tokenizer. Rejects with ModelFormatError for malformed
 * files, UnsupportedError for formats not supported yet, InvalidArgumentError for bad options, AbortError.
 */
/** What loadModel builds a model from: the addon's classes, or (tests) a reference engine in JS. */
export interface EngineFactory {
  model(config: AddonModelConfig): AddonModel;
  context(model: AddonModel, options: AddonContextOptions, onEvents: (batch: AddonEventBatch) => void): AddonContext;
}

const nativeEngine: EngineFactory = {
  model: (config) => {
    const { AddonModel: Ctor } = binding();
    if (typeof Ctor !== 'function') throw new UnsupportedError('This build of the eet addon has no model engine (AddonModel); rebuild it');
    return new Ctor(config);
  },
  context: (model, options, onEvents) => new (binding().AddonContext)(model, options, onEvents),
};

export function loadModel(file: string, options?: LoadModelOptions): Promise<Model> {
  return loadModelWith(file, options, nativeEngine);
}

/** @internal loadModel with another engine (tests: a reference engine in JS). */
export async function loadModelWith(file: string, options: LoadModelOptions | undefined, create: EngineFactory): Promise<Model> {
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
  if (stat.isDirectory() && !fs.existsSync(path.join(resolved, 'config.json'))) {
    throw new UnsupportedError(`${resolved} is a directory without config.json; expected a Hugging Face model folder or a llama2.c checkpoint (.bin)`);
  }
  let fileConfig: Omit<AddonModelConfig, 'dtype' | 'device' | 'maxBatch' | 'maxContext' | 'maxStepTokens'>;
  let tensors: Array<{ name: string; source: AddonTensorSource & { bytes: number } }>;
  let tokenizer: TextCodec;
  let info: Pick<ModelConfig, 'format' | 'tokenizerPath' | 'modelType' | 'stopIds'>;
  if (stat.isDirectory()) {
    if (o.tokenizer !== undefined) throw new InvalidArgumentError('The tokenizer option is for llama2.c checkpoints; a Hugging Face folder uses its tokenizer.json');
    const hf = await readHfModel(resolved);
    fileConfig = hf.config;
    tensors = hf.tensors;
    const tok = await loadHfTokenizer(resolved, { bos: hf.bosTokenId, eos: hf.eosTokenIds.length ? hf.eosTokenIds[0] : null });
    tokenizer = tok;
    const stopIds = hf.stopIds.length ? hf.stopIds : tok.eos >= 0 ? [tok.eos] : [];
    info = { format: 'hf', tokenizerPath: path.join(resolved, 'tokenizer.json'), modelType: hf.modelType, stopIds };
  } else if (resolved.toLowerCase().endsWith('.gguf')) {
    if (o.tokenizer !== undefined) throw new InvalidArgumentError('The tokenizer option is for llama2.c checkpoints; a GGUF file has its tokenizer in its metadata');
    const g = await readGGUFModel(resolved);
    if (!g.tokenizer) throw new UnsupportedError(`${resolved}: ${g.tokenizerProblem ?? 'no tokenizer'}`);
    fileConfig = g.config;
    tensors = g.tensors;
    tokenizer = g.tokenizer;
    // GGUF models stop on EOS only, as llama.cpp does (run.c also stops on BOS: llama2.c checkpoints below).
    info = { format: 'gguf', tokenizerPath: resolved, modelType: g.architecture, stopIds: [g.tokenizer.eos] };
  } else {
    const ckpt = await readLlama2cCheckpoint(resolved);
    fileConfig = ckpt.config;
    tensors = ckpt.tensors;
    const tokenizerPath = o.tokenizer !== undefined ? path.resolve(o.tokenizer) : findTokenizer(resolved, ckpt.config.vocabSize);
    tokenizer = await loadLlama2cTokenizer(tokenizerPath, ckpt.config.vocabSize);
    info = { format: 'llama2c', tokenizerPath, stopIds: [EOS, BOS] };
  }
  const maxContext = o.maxSeqLen === undefined ? fileConfig.maxSeqLen : integerIn('maxSeqLen', o.maxSeqLen, 1, fileConfig.maxSeqLen);
  const defaultStep = Math.max(512, maxBatch, fileConfig.arch === 'bert' ? maxContext : 0);
  const maxStepTokens = o.maxStepTokens === undefined ? defaultStep : integerIn('maxStepTokens', o.maxStepTokens, maxBatch, 1 << 20);
  throwIfAborted();

  const config: AddonModelConfig = { ...fileConfig, dtype, device };
  const native = create.model(config);
  let context: AddonContext;
  try {
    const totalBytes = tensors.reduce((a, t) => a + t.source.bytes, 0);
    let loadedBytes = 0;
    for (const { name, source } of tensors) {
      throwIfAborted();
      await native.loadTensor(name, source);
      loadedBytes += source.bytes;
      (o.onProgress as LoadModelOptions['onProgress'])?.({ loadedBytes, totalBytes, tensor: name });
    }
    throwIfAborted();
    await native.finalize();
    throwIfAborted();
    context = create.context(native, { maxBatch, maxContext, maxStepTokens }, () => {});
  } catch (e) {
    native.dispose();
    throw e;
  }
  return new Model(native, context, { ...config, maxBatch, maxContext, maxStepTokens, ...info, path: resolved }, tokenizer, performance.now() - start);
}

function findTokenizer(modelPath: string, vocabSize: number): string {
  const dir = path.dirname(modelPath);
  const tried = [`tok${vocabSize}.bin`, 'tokenizer.bin'].map((f) => path.join(dir, f));
  const found = tried.find((f) => fs.existsSync(f));
  if (!found) throw new ModelFormatError(`No tokenizer found for ${modelPath}: tried ${tried.join(', ')}. Pass the tokenizer option.`);
  return found;
}

// loadModel() and the Model handle: a model's weights on one device (AddonModel), its tokenizer, and a default
// context (lib/context.ts: KV pool, sequences, the native engine loop) that generate()/stream() use. Calls from any
// number of callers run at once in that context's batch; createContext() makes more contexts over the same weights.
// Device work runs off the JS thread.
import * as fs from 'fs';
import * as path from 'path';
import { AddonContextOptions, AddonModel, AddonModelConfig, AddonTensorSource, binding } from './binding';
import { CONTEXT_OPTION_KEYS, Context, ContextOptions, ContextStats, SharedInput } from './context';
import { hasEncoder, isEncoder, isEncoderDecoder } from './arch';
import { resolveDevice } from './devices';
import { AbortError, DisposedError, InvalidArgumentError, ModelFormatError, UnsupportedError } from './errors';
import type { GenerateResult, StreamEvent } from './generate/call';
import { promptIds, type GenerateOptions, type Prompt, type SamplesOptions } from './generate/options';
import type { TokenDecoder } from './generate/text';
import { checkTextLength, limits } from './limits';
import { statModelPath } from './loaders/files';
import { readGGUFModel } from './loaders/gguf';
import { readHfModel } from './loaders/hf';
import { readLlama2cCheckpoint } from './loaders/llama2c';
import { ChatMessage, ChatTemplateOptions, HfTokenizer, loadHfTokenizer } from './tokenizers/hf';
import { BOS, EOS, loadLlama2cTokenizer } from './tokenizers/llama2c';
import { integerIn, invalid, is, oneOf, optionsObject, type OptionKeys } from './validate';

export type { FinishReason, GenerateOptions, Prompt, SamplesOptions } from './generate/options';
export type { GenerateResult, StreamEvent } from './generate/call';
export type { ContextOptions, ContextStats, SharedInput } from './context';
export type { ChatMessage, ChatTemplateOptions } from './tokenizers/hf';

export type ModelDType = 'float32' | 'float16' | 'bfloat16';

export interface LoadProgress {
  /** Weight bytes loaded so far, of totalBytes. */
  loadedBytes: number;
  totalBytes: number;
  /** The tensor just loaded. */
  tensor: string;
}

/** Also the default context's options (lib/context.ts ContextOptions: maxBatch, maxSeqLen, kvCacheTokens …). */
export interface LoadModelOptions extends ContextOptions {
  /** 'auto' (default): the first usable GPU, else 'cpu'. Also 'cpu', 'emu', 'cuda', 'cuda:N'. */
  device?: string;
  /**
   * Threads the cpu backend's ops use (device 'cpu' only; ignored elsewhere): an integer in [1, limits().maxThreads].
   * Default: the physical cores available to the process (hyper-threads not counted), or EET_CPU_THREADS.
   */
  threads?: number;
  /** Weights and compute dtype. Default: 'float16' on a GPU, 'float32' on cpu and emu. */
  dtype?: ModelDType;
  /** llama2.c tokenizer file. Default: tok<vocab>.bin, then tokenizer.bin, next to the model (HF folders: tokenizer.json; GGUF: its metadata). */
  tokenizer?: string;
  /** Aborting rejects the load with AbortError (checked between tensors) and frees what was loaded. */
  signal?: AbortSignal;
  onProgress?: (progress: LoadProgress) => void;
}

const LOAD_OPTION_KEYS: OptionKeys<LoadModelOptions> = {
  ...CONTEXT_OPTION_KEYS, device: true, threads: true, dtype: true, tokenizer: true, signal: true, onProgress: true,
};
const EMBED_OPTION_KEYS: OptionKeys<EmbedOptions> = { pooling: true, normalize: true };
const CHAT_OPTION_KEYS: OptionKeys<ChatTemplateOptions> = { addGenerationPrompt: true };

/** The context options among a load's options (the default context gets these). */
function contextOptionsOf(o: Readonly<Record<string, unknown>>): ContextOptions {
  const c: Record<string, unknown> = {};
  for (const k of Object.keys(CONTEXT_OPTION_KEYS)) if (o[k] !== undefined) c[k] = o[k];
  return c as ContextOptions;
}

export type ModelConfig = Readonly<AddonModelConfig> & {
  /** The default context's sizes (loadModel options, defaults resolved). */
  readonly maxBatch: number;
  readonly maxContext: number;
  readonly maxStepTokens: number;
  readonly kvCacheTokens: number;
  /** Whether the default context replays decode steps from device graphs (ContextOptions.cudaGraphs and a device
   *  that has them: cuda, emu). */
  readonly cudaGraphs: boolean;
  /** 'random': made without a file (eet bench's built-in shapes). */
  readonly format: 'llama2c' | 'hf' | 'gguf' | 'random';
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

export class Model {
  readonly config: ModelConfig;
  readonly tokenizer: Tokenizer;
  readonly loadMs: number;
  #weights: AddonModel | null;
  readonly #tok: TextCodec;
  readonly #hf: HfTokenizer | null;
  readonly #codec: PromptCodecImpl;
  readonly #device: string;
  readonly #maxSeqLen: number;
  readonly #contexts = new Set<Context>();
  #default: Context | null = null;

  /** @internal use loadModel() */
  constructor(weights: AddonModel, config: Omit<ModelConfig, 'maxBatch' | 'maxContext' | 'maxStepTokens' | 'kvCacheTokens' | 'cudaGraphs'>,
    tokenizer: TextCodec, loadMs: number, contextOptions: ContextOptions) {
    this.#weights = weights;
    this.#tok = tokenizer;
    this.#hf = tokenizer instanceof HfTokenizer ? tokenizer : null;
    this.#device = config.device;
    this.#maxSeqLen = config.maxSeqLen;
    this.loadMs = loadMs;
    const start = isEncoderDecoder(config.arch) ? (config.decoderStartTokenId ?? 0) : undefined;
    this.#codec = new PromptCodecImpl(tokenizer, this.#hf, Int32Array.from(config.stopIds), loadMs, start);
    this.#default = this.createContext(contextOptions);
    const c = this.#default.config;
    this.config = Object.freeze({
      ...config, maxBatch: c.maxBatch, maxContext: c.maxContext, maxStepTokens: c.maxStepTokens, kvCacheTokens: c.kvCacheTokens,
      cudaGraphs: c.cudaGraphs, stopIds: Object.freeze([...config.stopIds]),
    });
    const hf = this.#hf;
    this.tokenizer = Object.freeze({
      vocabSize: tokenizer.vocabSize,
      bos: tokenizer.bos ?? BOS,
      eos: tokenizer.eos ?? EOS,
      encode: (text: string): number[] => {
        if (!is.string(text)) throw invalid('text', 'string', text);
        checkTextLength('text', text, config.maxSeqLen);
        return tokenizer.encode(text);
      },
      decode: (ids: readonly number[], prev: number | undefined = hf ? undefined : (tokenizer.bos ?? BOS)): string => {
        checkIds('ids', ids, tokenizer.vocabSize);
        if (prev !== undefined) integerIn('prev', prev, 0, tokenizer.vocabSize - 1);
        return tokenizer.decode(ids, prev);
      },
    });
  }

  get disposed(): boolean { return this.#weights === null; }

  /** Device memory in bytes: weights, and the default context's KV cache and workspace. */
  memory(): ModelMemory {
    return this.#context().memory();
  }

  /** The default context's pool, batch and counters. */
  stats(): ContextStats {
    return this.#context().stats();
  }

  /**
   * Another context over these weights: its own KV pool, batch and engine loop (e.g. one per tenant, or a small
   * one for long documents). Disposed with the model, or on its own.
   */
  createContext(options?: ContextOptions): Context {
    const weights = this.#handle();
    const o = resolveContextOptions(optionsObject('options', options, CONTEXT_OPTION_KEYS), this.#device, this.#maxSeqLen);
    const idle = o.streamIdleTimeoutMs;
    const ctx: Context = new Context((onEvents) => new (binding().AddonContext)(weights, o.native, onEvents), this.#codec, idle,
      () => this.#contexts.delete(ctx));
    this.#contexts.add(ctx);
    return ctx;
  }

  /** Generates from one prompt, or from several at once (one result each, in order; with `n`: prompts × n). */
  generate(prompts: Prompt | readonly Prompt[] | SharedInput, options: SamplesOptions): Promise<GenerateResult[]>;
  generate(prompt: Prompt, options?: GenerateOptions): Promise<GenerateResult>;
  generate(prompts: readonly Prompt[] | SharedInput, options?: GenerateOptions): Promise<GenerateResult[]>;
  async generate(prompts: Prompt | readonly Prompt[] | SharedInput, options?: GenerateOptions | SamplesOptions): Promise<GenerateResult | GenerateResult[]> {
    this.#rejectEncoder();
    return this.#context().generate(prompts as Prompt, options as SamplesOptions);
  }

  /** Token-by-token events for one prompt or several (`index` says which sample); validates before returning. */
  stream(prompts: Prompt | readonly Prompt[] | SharedInput, options?: GenerateOptions | SamplesOptions): AsyncIterable<StreamEvent> {
    this.#rejectEncoder();
    return this.#context().stream(prompts, options);
  }

  /**
   * Renders the chat template (Hugging Face tokenizer_config.json) for messages. The template comes with the model,
   * so it runs off the JS thread within a time and memory budget (lib/tokenizers/template.ts): ModelFormatError when
   * it fails or runs over.
   */
  async applyChatTemplate(messages: readonly ChatMessage[], options?: ChatTemplateOptions): Promise<string> {
    if (!this.#hf) throw new UnsupportedError('This model has no chat template (chat templates come from a Hugging Face folder\'s tokenizer_config.json)');
    return this.#hf.applyChatTemplate(messages, optionsObject('options', options, CHAT_OPTION_KEYS) as ChatTemplateOptions);
  }

  /**
   * The conversation as the model reads it: the chat template with the generation prompt (or without, for
   * `addGenerationPrompt: false`), encoded without adding special tokens — the template writes them.
   */
  async encodeChat(messages: readonly ChatMessage[], options?: ChatTemplateOptions): Promise<number[]> {
    const text = await this.applyChatTemplate(messages, { addGenerationPrompt: true, ...options });
    checkTextLength('messages (the rendered chat template)', text, this.config.maxSeqLen);
    return this.#hf!.encode(text, false);
  }

  /** Generates the assistant's reply to a conversation: the chat template with the generation prompt, then generate(). */
  async chat(messages: readonly ChatMessage[], options?: GenerateOptions): Promise<GenerateResult> {
    return this.generate(await this.encodeChat(messages), options);
  }

  /**
   * Sentence embeddings of an encoder (bert): one float32 vector (dim) per text, from the tokens the tokenizer
   * makes ([CLS] … [SEP]); an item given as token ids is used as it is.
   */
  async embed(texts: string | ReadonlyArray<string | readonly number[]>, options?: EmbedOptions): Promise<Float32Array[]> {
    const ctx = this.#context();
    if (!hasEncoder(this.config.arch)) throw new UnsupportedError(`embed() needs a model with an encoder (bert, t5); this model is ${this.config.modelType ?? this.config.arch}`);
    const o = optionsObject('options', options, EMBED_OPTION_KEYS);
    const pooling = o.pooling === undefined ? 'mean' : oneOf('pooling', o.pooling, ['mean', 'cls'] as const);
    const normalize = o.normalize === undefined ? true : o.normalize;
    if (typeof normalize !== 'boolean') throw invalid('normalize', 'boolean', normalize);
    const list = typeof texts === 'string' ? [texts] : texts;
    if (!Array.isArray(list) || list.length === 0) throw invalid('texts', 'string or non-empty array of strings', texts);
    const longest = Math.min(this.config.maxContext, this.config.maxStepTokens);
    const seqs = Array.from(list, (t, i) => { // holes of a sparse array are checked as undefined
      if (!is.string(t) && !Array.isArray(t)) throw invalid(`texts[${i}]`, 'string or array of token ids', t);
      if (is.string(t)) checkTextLength(`texts[${i}]`, t, longest);
      const ids = is.string(t) ? this.#tok.encode(t) : Array.from(promptIds(`texts[${i}]`, t as number[], this.#tok.vocabSize));
      if (ids.length === 0 || ids.length > longest) {
        throw new InvalidArgumentError(`Expected 1 to ${longest} tokens (maxSeqLen, maxStepTokens) for texts[${i}] but received ${ids.length} tokens`);
      }
      return ids;
    });
    const out = await ctx.embedTokens({ tokens: Int32Array.from(seqs.flat()), counts: Int32Array.from(seqs.map((s) => s.length)), pooling, normalize });
    const C = this.config.dim;
    return seqs.map((_, i) => out.slice(i * C, (i + 1) * C));
  }

  /** Stops every context (calls in flight reject with DisposedError after the step in flight), then frees the device memory. */
  async dispose(): Promise<void> {
    const weights = this.#weights;
    if (!weights) return;
    this.#weights = null;
    this.#default = null;
    try {
      await Promise.all([...this.#contexts].map((c) => c.dispose()));
    } finally {
      weights.dispose();
    }
  }

  async [Symbol.asyncDispose](): Promise<void> { await this.dispose(); }

  #handle(): AddonModel {
    if (!this.#weights) throw new DisposedError('The model was disposed');
    return this.#weights;
  }

  #context(): Context {
    this.#handle();
    return this.#default!;
  }

  #rejectEncoder(): void {
    this.#handle();
    if (isEncoder(this.config.arch)) throw new UnsupportedError(`A ${this.config.modelType ?? this.config.arch} model is an encoder: use embed(), not generate()`);
  }

}

/** Prompt encoding for contexts (lib/context.ts PromptCodec) over the model's tokenizer. */
class PromptCodecImpl {
  constructor(readonly tok: TextCodec, readonly hf: HfTokenizer | null, readonly stopIds: Int32Array, readonly loadMs: number,
    readonly decoderStart?: number) {}
  get vocabSize(): number { return this.tok.vocabSize; }
  encode(text: string): number[] { return this.tok.encode(text); }
  encodeContinuation(text: string): number[] {
    if (this.hf) return this.hf.encode(text, false);
    const ids = this.tok.encode(text);
    return ids[0] === (this.tok.bos ?? BOS) ? ids.slice(1) : ids;
  }
  decoder(prev: number): TokenDecoder { return this.tok.decoder(prev); }
}

interface ResolvedContextOptions {
  native: AddonContextOptions;
  streamIdleTimeoutMs: number;
}

/** Sequences running at once unless the options say: a GPU gains from wide batches, the cpu backends do not. */
function defaultMaxBatch(device: string): number {
  return device.startsWith('cuda') ? 32 : 4;
}

/** ContextOptions → the addon's, validated against the engine's limits (lib/limits.ts). */
function resolveContextOptions(o: Record<string, unknown>, device: string, maxSeqLen: number): ResolvedContextOptions {
  const L = limits();
  const gpu = device.startsWith('cuda');
  const maxBatch = o.maxBatch === undefined ? defaultMaxBatch(device) : integerIn('maxBatch', o.maxBatch, 1, L.maxBatch);
  const maxContext = o.maxSeqLen === undefined ? maxSeqLen : integerIn('maxSeqLen', o.maxSeqLen, 1, maxSeqLen);
  // A step never carries more than every slot's whole context: a larger value would only size workspace that no
  // step can use (the workspace grows linearly with it; memory().workspace says what it costs).
  const mostStep = Math.min(L.maxStepTokens, maxBatch * maxContext);
  let maxStepTokens = Math.min(mostStep, Math.max(gpu ? 2048 : 512, maxBatch));
  if (o.maxStepTokens !== undefined) {
    if (!is.integer(o.maxStepTokens) || o.maxStepTokens < maxBatch || o.maxStepTokens > mostStep) {
      throw invalid('maxStepTokens', `integer between ${maxBatch} (maxBatch) and ${mostStep} (maxBatch × maxSeqLen)`, o.maxStepTokens);
    }
    maxStepTokens = o.maxStepTokens;
  }
  const native: AddonContextOptions = { maxBatch, maxContext, maxStepTokens };
  if (o.prefillChunk !== undefined) native.prefillChunk = integerIn('prefillChunk', o.prefillChunk, 1, maxStepTokens);
  if (o.kvCacheTokens !== undefined) native.kvCacheTokens = integerIn('kvCacheTokens', o.kvCacheTokens, 1, (2 ** 31 - 1) - L.kvBlockSize);
  if (o.kvCacheBytes !== undefined) native.kvCacheBytes = integerIn('kvCacheBytes', o.kvCacheBytes, 1, Number.MAX_SAFE_INTEGER);
  if (o.maxQueued !== undefined) native.maxQueued = integerIn('maxQueued', o.maxQueued, 0, L.maxQueued);
  if (o.prefixCaching !== undefined) {
    if (typeof o.prefixCaching !== 'boolean') throw invalid('prefixCaching', 'boolean', o.prefixCaching);
    native.prefixCaching = o.prefixCaching;
  }
  if (o.sharedPrefixAttention !== undefined) {
    if (typeof o.sharedPrefixAttention !== 'boolean') throw invalid('sharedPrefixAttention', 'boolean', o.sharedPrefixAttention);
    native.sharedPrefixAttention = o.sharedPrefixAttention;
  }
  if (o.cudaGraphs !== undefined) {
    if (typeof o.cudaGraphs !== 'boolean') throw invalid('cudaGraphs', 'boolean', o.cudaGraphs);
    native.cudaGraphs = o.cudaGraphs;
  }
  const streamIdleTimeoutMs = o.streamIdleTimeoutMs === undefined ? 60_000 : integerIn('streamIdleTimeoutMs', o.streamIdleTimeoutMs, 1, 2 ** 31 - 1);
  return { native, streamIdleTimeoutMs };
}

/**
 * Loads a model: a Hugging Face folder (config.json, safetensors, tokenizer.json), a GGUF file (llama, qwen2, gpt2;
 * F32/F16/BF16/Q8_0 weights, Q8_0 matrices kept int8 on the device; its tokenizer from the metadata), or a llama2.c
 * checkpoint (.bin) with its tokenizer, and makes its default context. Rejects with ModelFormatError for malformed
 * files, UnsupportedError for formats not supported yet, InvalidArgumentError for bad options, AbortError.
 */
export async function loadModel(file: string, options?: LoadModelOptions): Promise<Model> {
  const start = performance.now();
  if (!is.string(file) || file.length === 0) throw invalid('path', 'non-empty string', file);
  const o = optionsObject('options', options, LOAD_OPTION_KEYS);
  const signal = o.signal;
  if (signal !== undefined && !(signal instanceof AbortSignal)) throw invalid('signal', 'AbortSignal', signal);
  if (o.onProgress !== undefined && typeof o.onProgress !== 'function') throw invalid('onProgress', 'function', o.onProgress);
  if (o.tokenizer !== undefined && (!is.string(o.tokenizer) || o.tokenizer.length === 0)) throw invalid('tokenizer', 'non-empty string', o.tokenizer);
  const device = resolveDevice(o.device);
  const dtype: ModelDType = o.dtype === undefined ? (device.startsWith('cuda') ? 'float16' : 'float32')
    : oneOf('dtype', o.dtype, ['float32', 'float16', 'bfloat16'] as const);
  if (signal?.aborted) throw new AbortError('Model loading was aborted', { cause: signal.reason });

  const resolved = path.resolve(file);
  // A FIFO or a device is refused here, before anything opens it (opening a FIFO blocks until a writer comes).
  const stat = await statModelPath(resolved, 'model', true);
  if (stat.isDirectory() && !fs.existsSync(path.join(resolved, 'config.json'))) {
    throw new UnsupportedError(`${resolved} is a directory without config.json; expected a Hugging Face model folder or a llama2.c checkpoint (.bin)`);
  }
  let fileConfig: Omit<AddonModelConfig, 'dtype' | 'device' | 'maxBatch' | 'maxContext' | 'maxStepTokens'>;
  let tensors: Array<{ name: string; source: AddonTensorSource & { bytes: number } }>;
  let tokenizer: TextCodec;
  let info: Pick<ModelConfig, 'format' | 'tokenizerPath' | 'modelType' | 'stopIds'>;
  if (stat.isDirectory()) {
    if (o.tokenizer !== undefined) throw new InvalidArgumentError('The tokenizer option is for llama2.c checkpoints; a Hugging Face folder uses its tokenizer.json');
    const hf = await readHfModel(resolved, signal);
    fileConfig = hf.config;
    tensors = hf.tensors;
    const tok = await loadHfTokenizer(resolved, { bos: hf.bosTokenId, eos: hf.eosTokenIds.length ? hf.eosTokenIds[0] : null },
      { vocabSize: hf.config.vocabSize, signal });
    tokenizer = tok;
    const stopIds = hf.stopIds.length ? hf.stopIds : tok.eos >= 0 ? [tok.eos] : [];
    info = { format: 'hf', tokenizerPath: path.join(resolved, 'tokenizer.json'), modelType: hf.modelType, stopIds };
  } else if (resolved.toLowerCase().endsWith('.gguf')) {
    if (o.tokenizer !== undefined) throw new InvalidArgumentError('The tokenizer option is for llama2.c checkpoints; a GGUF file has its tokenizer in its metadata');
    const g = await readGGUFModel(resolved, signal);
    if (!g.tokenizer) throw new UnsupportedError(`${resolved}: ${g.tokenizerProblem ?? 'no tokenizer'}`);
    fileConfig = g.config;
    tensors = g.tensors;
    tokenizer = g.tokenizer;
    // GGUF models stop on EOS only, as llama.cpp does (run.c also stops on BOS: llama2.c checkpoints below).
    info = { format: 'gguf', tokenizerPath: resolved, modelType: g.architecture, stopIds: [g.tokenizer.eos] };
  } else {
    const ckpt = await readLlama2cCheckpoint(resolved, signal);
    fileConfig = ckpt.config;
    tensors = ckpt.tensors;
    const tokenizerPath = o.tokenizer !== undefined ? path.resolve(o.tokenizer) : findTokenizer(resolved, ckpt.config.vocabSize);
    tokenizer = await loadLlama2cTokenizer(tokenizerPath, ckpt.config.vocabSize, signal);
    info = { format: 'llama2c', tokenizerPath, stopIds: [EOS, BOS] };
  }
  const badStop = info.stopIds.find((id) => id >= fileConfig.vocabSize);
  if (badStop !== undefined) {
    throw new ModelFormatError(`Invalid model ${resolved}: the end-of-generation token id ${badStop} is not below the model's vocabulary of ${fileConfig.vocabSize}`);
  }
  return buildModel({ config: fileConfig, tensors, tokenizer, info, path: resolved }, o as LoadModelOptions, device, dtype, start);
}

/** @internal What a model is made of, however it was read (a loader, or eet bench's random built-in shapes). */
export interface ModelParts {
  config: Omit<AddonModelConfig, 'dtype' | 'device'>;
  tensors: ReadonlyArray<{ name: string; source: AddonTensorSource & { bytes: number } }>;
  /** null: prompts are token ids only and no text is decoded (random weights). */
  tokenizer: TextCodec | null;
  info: Pick<ModelConfig, 'format' | 'tokenizerPath' | 'modelType' | 'stopIds'>;
  path: string;
}

/**
 * @internal Loads the parts' tensors (`loadConcurrency` at a time: random fills are made off the JS thread, one
 * libuv thread each) and makes the default context.
 */
export async function buildModel(parts: ModelParts, o: LoadModelOptions & { loadConcurrency?: number }, device: string,
  dtype: ModelDType, start = performance.now()): Promise<Model> {
  const { signal } = o;
  const threads = o.threads === undefined ? binding().devices().cpuThreads : integerIn('threads', o.threads, 1, limits().maxThreads);
  const throwIfAborted = (): void => { if (signal?.aborted) throw new AbortError('Model loading was aborted', { cause: signal.reason }); };
  // The default context's options are checked before any weight is read.
  const contextOptions: ContextOptions = contextOptionsOf(o as Record<string, unknown>);
  if (hasEncoder(parts.config.arch) && o.maxStepTokens === undefined) {
    // An encoder reads a whole text in one pass: the step must hold the longest one.
    const longest = o.maxSeqLen === undefined ? parts.config.maxSeqLen : integerIn('maxSeqLen', o.maxSeqLen, 1, parts.config.maxSeqLen);
    const batch = o.maxBatch === undefined ? defaultMaxBatch(device) : integerIn('maxBatch', o.maxBatch, 1, limits().maxBatch);
    contextOptions.maxStepTokens = Math.min(Math.max(512, longest, batch), batch * longest);
  }
  resolveContextOptions(contextOptions as Record<string, unknown>, device, parts.config.maxSeqLen);
  throwIfAborted();

  const config: AddonModelConfig = { ...parts.config, dtype, device, threads };
  const native = new (binding().AddonModel)(config);
  try {
    const { tensors } = parts;
    const totalBytes = tensors.reduce((a, t) => a + t.source.bytes, 0);
    let loadedBytes = 0;
    let next = 0;
    const worker = async (): Promise<void> => {
      while (next < tensors.length) {
        const { name, source } = tensors[next++];
        throwIfAborted();
        await native.loadTensor(name, source);
        loadedBytes += source.bytes;
        o.onProgress?.({ loadedBytes, totalBytes, tensor: name });
      }
    };
    await Promise.all(Array.from({ length: Math.max(1, Math.min(o.loadConcurrency ?? 1, tensors.length)) }, worker));
    throwIfAborted();
    await native.finalize();
    throwIfAborted();
    return new Model(native, { ...config, ...parts.info, path: parts.path }, parts.tokenizer ?? new NoText(config.vocabSize),
      performance.now() - start, contextOptions);
  } catch (e) {
    native.dispose();
    throw e;
  }
}

/** The codec of a model without a tokenizer: token-id prompts, no text. */
class NoText implements TextCodec {
  constructor(readonly vocabSize: number) {}
  encode(): number[] { throw new UnsupportedError('This model has no tokenizer: pass prompts as token ids'); }
  decode(): string { return ''; }
  decoder(): TokenDecoder { return { push: () => '', flush: () => '' }; }
}

/** Token ids given to decode(): an array (or Int32Array) of integers in [0, vocabSize). */
function checkIds(name: string, ids: unknown, vocabSize: number): void {
  if (!Array.isArray(ids) && !(ids instanceof Int32Array)) throw invalid(name, 'array of token ids', ids);
  for (let i = 0; i < ids.length; i++) integerIn(`${name}[${i}]`, ids[i], 0, vocabSize - 1);
}

function findTokenizer(modelPath: string, vocabSize: number): string {
  const dir = path.dirname(modelPath);
  const tried = [`tok${vocabSize}.bin`, 'tokenizer.bin'].map((f) => path.join(dir, f));
  const found = tried.find((f) => fs.existsSync(f));
  if (!found) throw new ModelFormatError(`No tokenizer found for ${modelPath}: tried ${tried.join(', ')}. Pass the tokenizer option.`);
  return found;
}

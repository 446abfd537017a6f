// A Context: one serving instance over a model's weights — its KV block pool, its sequences and its engine loop
// (engine/context.h), with generate()/stream() on top. Any number of calls, from any number of callers, run at
// once: each prompt becomes an engine request that joins the running batch between two steps, with its own
// options. The loop runs natively; its events come back through the addon's thread-safe function and are routed
// here to the call that owns them (lib/generate/call.ts). Model.generate() uses the model's default context;
// model.createContext() makes more over the same weights.
import type { AddonContext, AddonContextConfig, AddonContextStats, AddonEmbedRequest, AddonEncoderMemory, AddonEventBatch } from './binding';
import { DisposedError, InvalidArgumentError } from './errors';
import { Call, CallPrompt, GenerateResult, StreamEvent } from './generate/call';
import { GenerateOptions, Prompt, SamplesOptions, isPromptIds, promptIds, resolveGenerateOptions } from './generate/options';
import type { TokenDecoder } from './generate/text';
import { checkTextLength, limits } from './limits';
import { invalid, is, type OptionKeys } from './validate';

export interface ContextOptions {
  /** Sequences running at once (default 4 on cpu and emu, 32 on a GPU); more requests wait for a slot. */
  maxBatch?: number;
  /** Context per sequence (prompt + generated tokens); at most, and by default, what the model was trained for. */
  maxSeqLen?: number;
  /**
   * Most tokens one forward step carries (default max(512, maxBatch) on cpu / emu, max(2048, maxBatch) on a GPU, at
   * most maxBatch × maxSeqLen); longer prompts are fed in chunks. The step workspace grows linearly with it
   * (memory().workspace).
   */
  maxStepTokens?: number;
  /** Most prompt tokens of one sequence per step (default maxStepTokens): smaller keeps decoding smoother. */
  prefillChunk?: number;
  /**
   * KV cache size in tokens, shared by all sequences (rounded up to blocks of 16). Default: maxBatch × maxSeqLen
   * (twice that on a GPU, for the prefix cache), at most 90% of the free device memory (1 GiB of host memory on
   * cpu / emu, but at least one full-context sequence).
   */
  kvCacheTokens?: number;
  /** The same as a byte budget (used when kvCacheTokens is absent). */
  kvCacheBytes?: number;
  /** Requests waiting for admission before generate() / stream() reject at once with BusyError (default 1024). */
  maxQueued?: number;
  /**
   * Reuse computed prompt blocks across requests (default true). Off: every prompt is computed in full (a clean
   * baseline, or tenants that must not observe each other's cache timing); n > 1 samples still share their prompt.
   */
  prefixCaching?: boolean;
  /**
   * Decode steps attend the KV blocks that several running sequences share (a common prompt prefix, the n samples of
   * one prompt) once for all of them, and each sequence's own blocks as usual, merging the two exactly (default
   * true). Off: every sequence reads its whole context. The same attention either way, summed in another order;
   * stats().sharedPrefixTokens counts the tokens that took the shared path.
   */
  sharedPrefixAttention?: boolean;
  /**
   * Record a decode step's kernel launches once per shape (batch size, context bound, penalties on or off) as a
   * CUDA graph and replay it for later steps of that shape, after one upload of the step's values (default true).
   * On emu the same path runs with the emulator's recording; the cpu backends ignore it. The same kernels with the
   * same arguments either way; stats().graphSteps counts the replayed steps. Off: every launch from the host.
   */
  cudaGraphs?: boolean;
  /** A stream whose consumer has not asked for its next event for this long is cancelled (default 60 000). */
  streamIdleTimeoutMs?: number;
}

/** Every context option: any other key is rejected (with the nearest of these). */
export const CONTEXT_OPTION_KEYS: OptionKeys<ContextOptions> = {
  maxBatch: true, maxSeqLen: true, maxStepTokens: true, prefillChunk: true, kvCacheTokens: true, kvCacheBytes: true,
  maxQueued: true, prefixCaching: true, sharedPrefixAttention: true, cudaGraphs: true, streamIdleTimeoutMs: true,
};

/**
 * Input shared by several prompts (Prompt-in-Decoder): computed once, then every prompt decoded against it in one
 * batch. Decoder-only models: `input` is prefilled once (its KV blocks shared through the prefix cache) and each
 * prompt continues it. Encoder-decoder models (t5): `input` is encoded once (one encoder memory, shared) and each
 * prompt is its decoder's forced prefix, after the decoder start token.
 */
export interface SharedInput {
  input: Prompt;
  prompts: readonly Prompt[];
}

export interface ContextStats extends AddonContextStats {
  /** Requests in flight in this context's calls (submitted, not done). */
  requests: number;
}

/** What a context needs of its model: prompt encoding, streaming decoders, the ids that end a generation. */
export interface PromptCodec {
  readonly vocabSize: number;
  readonly stopIds: Int32Array;
  readonly loadMs?: number;
  /** Token ids of a text prompt, with the model's special tokens (BOS). */
  encode(text: string): number[];
  /** Token ids of text that continues other tokens (no BOS). */
  encodeContinuation(text: string): number[];
  decoder(prev: number): TokenDecoder;
  /** Encoder-decoder models: the id the decoder starts from; a prompt is then the encoder's input. */
  readonly decoderStart?: number;
}

/** What #prepare made of a call's input. */
interface Prepared {
  call: Call;
  single: boolean;
  /** Decoder-only: the shared input to prefill first. */
  shared: Int32Array | null;
  /** Encoder-decoder: the inputs to encode (each prompt's, or the one shared input) and which one each prompt reads. */
  encoder: { inputs: Int32Array[]; of: number[]; prompts: CallPrompt[] } | null;
}

/** @internal how the model builds a context's native half */
export type NativeContextFactory = (onEvents: (batch: AddonEventBatch) => void) => AddonContext;

const abandoned = new FinalizationRegistry<Call>((call) => call.cancel());
/**
 * Contexts with requests in flight. The addon's event function holds its listener strongly until the context is
 * disposed, so the listener reaches the context through a WeakRef: a context (and its model) that the program
 * dropped without dispose() can be collected, and the addon then frees its memory. While requests are in flight
 * the context is held here, so their promises always settle.
 */
const busy = new Set<Context>();

export class Context {
  readonly config: Readonly<AddonContextConfig>;
  #native: AddonContext | null;
  readonly #codec: PromptCodec;
  readonly #idleMs: number;
  readonly #calls = new Map<number, { call: Call; prompt: number }>();
  #nextId = 1;
  #onDispose: (() => void) | undefined;

  /** @internal use model.createContext() */
  constructor(make: NativeContextFactory, codec: PromptCodec, idleMs: number, onDispose?: () => void) {
    this.#codec = codec;
    this.#idleMs = idleMs;
    const self = new WeakRef(this);
    this.#native = make((batch) => {
      const ctx = self.deref();
      if (ctx) ctx.#dispatch(batch);
    });
    this.config = Object.freeze(this.#native.config());
    this.#onDispose = onDispose;
  }

  get disposed(): boolean { return this.#native === null; }

  /** Generates from one prompt, or from several at once (one result each, in order; with `n`: prompts × n). */
  generate(prompts: Prompt | readonly Prompt[] | SharedInput, options: SamplesOptions): Promise<GenerateResult[]>;
  generate(prompt: Prompt, options?: GenerateOptions): Promise<GenerateResult>;
  generate(prompts: readonly Prompt[] | SharedInput, options?: GenerateOptions): Promise<GenerateResult[]>;
  async generate(prompts: Prompt | readonly Prompt[] | SharedInput, options?: GenerateOptions | SamplesOptions): Promise<GenerateResult | GenerateResult[]> {
    const prep = this.#prepare(prompts, options);
    const { call, single } = prep;
    await this.#begin(prep);
    const results = await call.results();
    return single ? results[0] : results;
  }

  /**
   * Token-by-token events for one prompt or several (`index` says which sample); validates before returning, and
   * hands the prompts to the engine when iteration starts. Leaving the loop early cancels what still runs.
   */
  stream(prompts: Prompt | readonly Prompt[] | SharedInput, options?: GenerateOptions | SamplesOptions): AsyncIterable<StreamEvent> {
    const prep = this.#prepare(prompts, options);
    const { call } = prep;
    const idleMs = this.#idleMs;
    const iterator = (async function* events(self: Context): AsyncGenerator<StreamEvent, void, undefined> {
      await self.#begin(prep);
      try {
        yield* call.events(idleMs);
      } finally {
        if (!call.done) call.cancel();
      }
    })(this);
    abandoned.register(iterator, call, call);
    return iterator;
  }

  /** The pool, the batch and what the engine has done so far. */
  stats(): ContextStats {
    return { ...this.#handle().stats(), requests: this.#calls.size };
  }

  /** @internal the encoder path (Model.embed): one pass per text through the low-level API. */
  embedTokens(request: AddonEmbedRequest): Promise<Float32Array> {
    return this.#handle().embed(request);
  }

  /** Device memory in bytes: the model's weights, this context's KV cache and workspace. */
  memory(): { weights: number; kvCache: number; workspace: number; total: number } {
    const m = this.#handle().memory();
    return { ...m, total: m.weights + m.kvCache + m.workspace };
  }

  /** Stops the engine loop after the step in flight (calls still running reject with DisposedError), frees the memory. */
  async dispose(): Promise<void> {
    const native = this.#native;
    if (!native) return;
    this.#native = null;
    try {
      await native.dispose();
    } finally {
      for (const { call } of this.#calls.values()) call.fail(new DisposedError('The model was disposed during generation'));
      this.#calls.clear();
      busy.delete(this);
      this.#onDispose?.();
    }
  }

  async [Symbol.asyncDispose](): Promise<void> { await this.dispose(); }

  #handle(): AddonContext {
    if (!this.#native) throw new DisposedError('The model was disposed');
    return this.#native;
  }

  #prepare(input: unknown, options: unknown): Prepared {
    const callStart = performance.now();
    const native = this.#handle();
    const maxN = Math.min(limits().maxN, this.config.maxBatch);
    const opts = resolveGenerateOptions(options, this.#codec.vocabSize, maxN);
    // A sequence can never generate more tokens than its context holds.
    opts.maxNewTokens = Math.min(opts.maxNewTokens, this.config.maxContext);
    let shared: Int32Array | null = null;
    let list: unknown[];
    let single = false;
    if (is.plainObject(input)) {
      const o = input as Partial<SharedInput>;
      if (!Array.isArray(o.prompts) || o.prompts.length === 0) throw invalid('prompts', 'non-empty array of prompts', o.prompts);
      // An encoder reads its input in one step; a decoder-only model prefills it in chunks.
      shared = this.#encode(o.input, 'input', false, this.#codec.decoderStart === undefined ? this.config.maxContext : this.#inputLimit());
      list = o.prompts;
    } else {
      single = typeof input === 'string' || isPromptIds(input);
      if (!single && (!Array.isArray(input) || input.length === 0)) {
        throw invalid('prompts', 'string, array of token ids, or non-empty array of those', input);
      }
      list = single ? [input] : (input as unknown[]);
    }
    const start = this.#codec.decoderStart;
    const encoder = start === undefined ? null : { inputs: shared ? [shared] : [], of: [] as number[], prompts: [] as CallPrompt[] };
    // Array.from, not map: a sparse array's holes must reach the check as undefined rather than stay holes
    const prompts: CallPrompt[] = Array.from(list, (p, i) => {
      const name = single ? 'prompt' : `prompts[${i}]`;
      let ids: Int32Array;
      if (encoder) {
        // The prompt is the decoder's forced prefix (after a shared input) or the encoder's input (alone).
        if (!shared) encoder.inputs.push(this.#encode(p, name, false, this.#inputLimit()));
        encoder.of.push(shared ? 0 : i);
        ids = Int32Array.from([start!, ...(shared ? this.#encode(p, name, true) : [])]);
      } else {
        ids = this.#encode(p, name, shared !== null);
        if (shared) ids = Int32Array.from([...shared, ...ids]);
      }
      if (ids.length > this.config.maxContext) {
        throw new InvalidArgumentError(`Expected at most ${this.config.maxContext} tokens (maxSeqLen) for ${name} but received ${ids.length} tokens`);
      }
      const last = ids[ids.length - 1];
      return { ids, decoder: () => this.#codec.decoder(last) };
    });
    const call = new Call(native, prompts, opts, this.#codec.stopIds, callStart, this.#codec.loadMs);
    if (encoder) encoder.prompts = prompts;
    return { call, single: single && !opts.nGiven, shared: encoder ? null : shared, encoder };
  }

  /** An encoder's input is read in one pass: it must fit a step as well as the context. */
  #inputLimit(): number {
    return Math.min(this.config.maxContext, this.config.maxStepTokens);
  }

  #encode(p: unknown, name: string, continuation: boolean, most = this.config.maxContext): Int32Array {
    let ids: Int32Array;
    if (typeof p === 'string') {
      checkTextLength(name, p, most);
      const list = continuation ? this.#codec.encodeContinuation(p) : this.#codec.encode(p);
      if (list.length === 0) throw invalid(name, 'text that encodes to at least one token', p);
      ids = Int32Array.from(list);
    } else if (p instanceof Int32Array || Array.isArray(p)) {
      ids = promptIds(name, p, this.#codec.vocabSize);
    } else {
      throw invalid(name, 'string or array of token ids', p);
    }
    if (ids.length > most) {
      const what = most < this.config.maxContext ? 'maxSeqLen, maxStepTokens' : 'maxSeqLen';
      throw new InvalidArgumentError(`Expected at most ${most} tokens (${what}) for ${name} but received ${ids.length} tokens`);
    }
    return ids;
  }

  /**
   * Hands a prepared call to the engine: a decoder-only shared input is prefilled first; an encoder-decoder call's
   * inputs are encoded first (one memory each, off the JS thread), and the memories' handles are let go once the
   * requests hold them.
   */
  async #begin(prep: Prepared): Promise<void> {
    const { call, shared, encoder } = prep;
    if (shared) await this.#prefill(shared, call);
    if (!encoder) {
      this.#start(call);
      return;
    }
    const native = this.#handle();
    const memories: AddonEncoderMemory[] = [];
    try {
      // One at a time: each pass holds the step lock anyway, and a libuv thread while it waits for it.
      for (const ids of encoder.inputs) memories.push(await native.encode(ids));
      encoder.prompts.forEach((p, i) => { p.memory = memories[encoder.of[i]]; });
      this.#start(call);
    } finally {
      for (const m of memories) native.releaseMemory(m);
      for (const p of encoder.prompts) delete p.memory;
    }
  }

  #start(call: Call): void {
    this.#handle();
    call.start(() => this.#nextId++, (id, prompt) => {
      this.#calls.set(id, { call, prompt });
      busy.add(this);
    });
  }

  /** Computes a shared input's KV once (a prefill-only request), so the prompts after it find it in the prefix cache. */
  async #prefill(ids: Int32Array, call: Call): Promise<void> {
    const warm = call.prefillOnly(ids);
    this.#start(warm);
    await warm.results();
  }

  #dispatch(b: AddonEventBatch): void {
    for (let i = 0; i < b.request.length; i++) {
      const e = this.#calls.get(b.request[i]);
      if (e) e.call.onToken(e.prompt, b, i);
    }
    for (const d of b.done) {
      const e = this.#calls.get(d.request);
      if (!e) continue;
      this.#calls.delete(d.request);
      if (this.#calls.size === 0) busy.delete(this);
      e.call.onDone(e.prompt, d);
      if (e.call.done) abandoned.unregister(e.call);
    }
  }
}

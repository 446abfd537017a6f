// One generate()/stream() call as the engine loop sees it: one engine request per prompt (its n samples fork in
// the engine), and on this side each sample's text (streaming UTF-8 decoding, stop strings), tokens, timings and
// end. The context (lib/context.ts) routes the engine's events here; the call hands them to generate()'s result
// or to stream()'s iterator.
//
// Ends: the engine reports EOS ('eos'), maxNewTokens or a full context ('length'); this side ends a sample on a
// stop string ('stop': the engine is told to cancel it — it may have computed one more token, which is dropped)
// and on abort ('abort': the engine cancels every unfinished sample at its next step boundary; what it generated
// until then stays; stream() stops yielding at once). The call is complete when the engine has reported every
// request done; an engine error fails the whole call.
import type { AddonContext, AddonEncoderMemory, AddonEventBatch, AddonRawLogprobs, AddonRequestDone } from '../binding';
import { AddonFinish } from '../binding';
import type { FinishReason, ResolvedOptions } from './options';
import { SequenceText, TokenDecoder } from './text';

/** A token id with its log-probability under the model's raw distribution. */
export interface TokenLogprob {
  token: number;
  logprob: number;
}

export interface StreamEvent {
  /** Which sample: prompt i, sample j at i × n + j (the prompt's index when n is 1; 0 for a single prompt). */
  index: number;
  /** The generated token id. */
  token: number;
  /** Text this token completed (may be '' while a UTF-8 character or a possible stop string is incomplete). */
  text: string;
  /** With `topLogprobs`: the token's log-probability under the raw distribution (log-softmax of the logits). */
  rawLogprob?: number;
  /** With `topLogprobs`: the most likely tokens at this position, descending (ties: lower id first). */
  topLogprobs?: TokenLogprob[];
  /** Set on the sample's last event (on abort the stream just ends: no further event). */
  finishReason?: FinishReason;
}

export interface GenerateResult {
  /** The generated text (not the prompt), cut before a stop string. */
  text: string;
  /** Generated token ids, including a final EOS when the model produced one. */
  tokens: number[];
  /** Natural log-probability of each generated token under the distribution it was sampled from. */
  logprobs: number[];
  /** With `logits: true`: each generated token's float32 logits (vocabSize). */
  logits?: Float32Array[];
  /**
   * With `topLogprobs`: each generated token's log-probability under the model's raw distribution (log-softmax of
   * its logits: no temperature, no penalties), and the `topLogprobs` most likely tokens at each position.
   */
  rawLogprobs?: number[];
  topLogprobs?: TokenLogprob[][];
  finishReason: FinishReason;
  /** cachedTokens: prompt tokens whose KV came from the prefix cache instead of being computed. */
  usage: { promptTokens: number; completionTokens: number; cachedTokens: number };
  timings: {
    /** Time loadModel took. */
    loadMs?: number;
    /** How long the engine held the prompt's request before its first admission into the running batch (waiting
     *  for a slot or KV blocks), measured by the engine; included in prefillMs. */
    queueMs: number;
    /** From handing the prompt to the engine (after tokenizing) to its first generated token: queueing + prefill. */
    prefillMs: number;
    /** From the first generated token to the end of the sample. */
    decodeMs: number;
    /** From the call to the first generated token. */
    ttftMs: number;
    /** Tokens after the first, per second of decodeMs (0 when fewer than 2 tokens). */
    tokensPerSecond: number;
  };
}

/** One prompt of a call, as handed to the engine. */
export interface CallPrompt {
  ids: Int32Array;
  decoder: () => TokenDecoder;
  /** Encoder-decoder models: the encoded input this prompt (the decoder's forced prefix) attends; set before start(). */
  memory?: AddonEncoderMemory;
}

class Sample {
  readonly tokens: number[] = [];
  readonly logprobs: number[] = [];
  readonly logits: Float32Array[] = [];
  readonly rawLogprobs: number[] = [];
  readonly topLogprobs: TokenLogprob[][] = [];
  readonly text: SequenceText;
  finish: FinishReason | null = null;
  firstAt = 0;
  endAt = 0;

  constructor(decoder: TokenDecoder, stop: readonly string[]) {
    this.text = new SequenceText(decoder, stop);
  }
}

const ENGINE_FINISH: Partial<Record<number, FinishReason>> = { [AddonFinish.Eos]: 'eos', [AddonFinish.Length]: 'length' };

export class Call {
  readonly ids: number[] = [];  // engine request id per prompt
  readonly #native: AddonContext;
  readonly #prompts: CallPrompt[];
  readonly #opts: ResolvedOptions;
  readonly #samples: Sample[];
  readonly #cached: number[];
  readonly #queueMs: number[];
  readonly #callStart: number;
  readonly #loadMs: number | undefined;
  readonly #stopIds: Int32Array;
  #submitAt = 0;
  #open = 0;  // requests the engine has not reported done
  #started = false;
  #error: Error | null = null;
  #events: StreamEvent[] = [];
  #wake: (() => void) | null = null;
  #onAbort: (() => void) | null = null;

  /** stopIds: the model's end-of-generation ids (EOS, and BOS for llama2.c checkpoints). */
  constructor(native: AddonContext, prompts: CallPrompt[], opts: ResolvedOptions, stopIds: Int32Array, callStart: number,
    loadMs?: number) {
    this.#native = native;
    this.#stopIds = stopIds;
    this.#prompts = prompts;
    this.#opts = opts;
    this.#callStart = callStart;
    this.#loadMs = loadMs;
    this.#samples = prompts.flatMap((p) => Array.from({ length: opts.n }, () => new Sample(p.decoder(), opts.stop)));
    this.#cached = prompts.map(() => 0);
    this.#queueMs = prompts.map(() => 0);
  }

  get done(): boolean { return this.#started && this.#open === 0; }

  /**
   * Hands every prompt to the engine under the ids `newId` gives (the context routes their events back). When the
   * engine refuses one (ERR_BUSY, or one that can never fit) it takes none, and this throws.
   */
  start(newId: () => number, register: (id: number, prompt: number) => void): void {
    if (this.#started) return;
    this.#started = true;
    const o = this.#opts;
    if (o.signal?.aborted) {
      for (const s of this.#samples) this.#end(s, 'abort');
      return;
    }
    this.#submitAt = performance.now();
    const ids = this.#prompts.map(() => newId());
    // All prompts at once: the engine queues them together, so they can be admitted in the same step.
    this.#native.submit(this.#prompts.map((p, i) => ({
      id: ids[i], prompt: p.ids, n: o.n, temperature: o.temperature, topK: o.topK, topP: o.topP,
      repetitionPenalty: o.repetitionPenalty, presencePenalty: o.presencePenalty, frequencyPenalty: o.frequencyPenalty,
      seed: seedOf(o.seed, i * o.n), maxNewTokens: o.maxNewTokens, stopIds: o.ignoreEos ? new Int32Array(0) : this.#stopIds,
      logits: o.logits, ...(o.topLogprobs !== undefined ? { topLogprobs: o.topLogprobs } : {}),
      ...(p.memory ? { memory: p.memory } : {}),
    })));
    ids.forEach((id, i) => {
      register(id, i);
      this.ids.push(id);
    });
    this.#open = ids.length;
    if (o.signal) {
      const onAbort = (): void => this.#abort();
      o.signal.addEventListener('abort', onAbort, { once: true });
      this.#onAbort = () => o.signal!.removeEventListener('abort', onAbort);
    }
  }

  /** Event `i` of an engine batch: a token (or the end) of one sample of prompt `prompt`. */
  onToken(prompt: number, b: AddonEventBatch, i: number): void {
    const index = b.index[i], token = b.token[i], finish = b.finish[i];
    const s = this.#samples[prompt * this.#opts.n + index];
    if (!s || s.finish) return;  // ended here already (stop string, abort): the engine's late token is dropped
    if (token < 0) {
      // Cancelled by the engine side without a token (abort, dispose): keep what was generated.
      this.#end(s, 'abort');
      this.#wake?.();
      return;
    }
    if (s.tokens.length === 0) s.firstAt = performance.now();
    s.tokens.push(token);
    s.logprobs.push(b.logprob[i]);
    const logits = b.logits?.[i];
    if (logits) s.logits.push(logits);
    // Every token event of a request that asked carries them (b.raw is then present).
    const raw = this.#opts.topLogprobs !== undefined && b.raw ? rawAt(b.raw, i) : undefined;
    if (raw) {
      s.rawLogprobs.push(raw.rawLogprob);
      s.topLogprobs.push(raw.topLogprobs);
    }
    const k = prompt * this.#opts.n + index;
    const engineEnd = ENGINE_FINISH[finish];
    let text: string;
    let end: FinishReason | null = null;
    if (engineEnd === 'eos') {
      text = '';
      end = 'eos';
    } else {
      text = s.text.push(token);
      if (s.text.stopped) {
        end = 'stop';
        this.#native.cancel(this.ids[prompt], index);
      } else if (engineEnd) {
        end = engineEnd;
      }
    }
    if (end) text += this.#end(s, end);
    this.#push({ index: k, token, text, ...raw, ...(end ? { finishReason: end } : {}) });
  }

  /** The engine is done with prompt `prompt`'s request (all its samples), or it failed. */
  onDone(prompt: number, done: AddonRequestDone): void {
    const { cachedTokens, queueMs, error } = done;
    this.#cached[prompt] = cachedTokens;
    this.#queueMs[prompt] = queueMs;
    this.#open--;
    if (error && !this.#error) {
      this.#error = error;
      this.cancel();
    }
    for (let j = 0; j < this.#opts.n; j++) {
      const s = this.#samples[prompt * this.#opts.n + j];
      if (!s.finish) this.#end(s, 'abort');
    }
    if (this.#open === 0) this.#onAbort?.();
    this.#wake?.();
  }

  /** Ends the whole call (a stream left early, an error): the engine cancels whatever still runs. */
  cancel(): void {
    for (const id of this.ids) this.#native.cancel(id);
  }

  /** Fails the call from outside (the context is going away). */
  fail(error: Error): void {
    this.#error ??= error;
    this.#open = 0;
    this.#onAbort?.();
    this.#wake?.();
  }

  /**
   * Stream events as they come; throws the call's error. A consumer that does not ask for the next event within
   * idleMs has abandoned the stream: the call is cancelled (it would otherwise hold its slots and blocks).
   */
  async *events(idleMs: number): AsyncGenerator<StreamEvent, void, undefined> {
    for (;;) {
      while (this.#events.length && !this.#aborted()) {
        const timer = setTimeout(() => this.#abort(), idleMs);
        timer.unref?.();
        try {
          yield this.#events.shift()!;
        } finally {
          clearTimeout(timer);
        }
      }
      if (this.#error) throw this.#error;
      if (this.done || this.#aborted()) return;
      await new Promise<void>((resolve) => (this.#wake = resolve));
      this.#wake = null;
    }
  }

  /** Waits for the end; the results in sample order. */
  async results(): Promise<GenerateResult[]> {
    while (!this.done && !this.#error) {
      this.#events.length = 0;
      await new Promise<void>((resolve) => (this.#wake = resolve));
      this.#wake = null;
    }
    if (this.#error) throw this.#error;
    return this.#samples.map((s, k) => this.#result(s, Math.floor(k / this.#opts.n)));
  }

  /** A call that only computes these ids' KV (shared input of several prompts): one request, nothing sampled. */
  prefillOnly(ids: Int32Array): Call {
    const o: ResolvedOptions = { ...this.#opts, n: 1, maxNewTokens: 0, stop: [], logits: false, topLogprobs: undefined };
    return new Call(this.#native, [{ ids, decoder: this.#prompts[0].decoder }], o, this.#stopIds, this.#callStart);
  }

  #aborted(): boolean { return this.#opts.signal?.aborted ?? false; }

  // The engine ends the samples at its next step boundary and reports them (token -1, then done): tokens it
  // computed before that still arrive and are kept, so an aborted generate() keeps everything the engine produced.
  #abort(): void {
    this.cancel();
    this.#wake?.();
  }

  #end(s: Sample, reason: FinishReason): string {
    s.finish = reason;
    s.endAt = performance.now();
    return s.text.finish();
  }

  #push(ev: StreamEvent): void {
    this.#events.push(ev);
    this.#wake?.();
  }

  #result(s: Sample, prompt: number): GenerateResult {
    const got = s.tokens.length > 0;
    const decodeMs = got ? s.endAt - s.firstAt : 0;
    const r: GenerateResult = {
      text: s.text.text,
      tokens: s.tokens,
      logprobs: s.logprobs,
      finishReason: s.finish ?? 'abort',
      usage: { promptTokens: this.#prompts[prompt].ids.length, completionTokens: s.tokens.length, cachedTokens: this.#cached[prompt] },
      timings: {
        ...(this.#loadMs !== undefined ? { loadMs: this.#loadMs } : {}),
        queueMs: this.#queueMs[prompt],
        prefillMs: got ? s.firstAt - this.#submitAt : 0,
        decodeMs,
        ttftMs: got ? s.firstAt - this.#callStart : 0,
        tokensPerSecond: s.tokens.length > 1 && decodeMs > 0 ? ((s.tokens.length - 1) * 1000) / decodeMs : 0,
      },
    };
    if (s.logits.length) r.logits = s.logits;
    if (this.#opts.topLogprobs !== undefined) {
      r.rawLogprobs = s.rawLogprobs;
      r.topLogprobs = s.topLogprobs;
    }
    return r;
  }
}

/** Event i's raw log-probabilities (its request asked for them). */
function rawAt(raw: AddonRawLogprobs, i: number): { rawLogprob: number; topLogprobs: TokenLogprob[] } {
  const topLogprobs: TokenLogprob[] = [];
  for (let k = raw.topOffset[i]; k < raw.topOffset[i + 1]; k++) topLogprobs.push({ token: raw.topIds[k], logprob: raw.topLogprob[k] });
  return { rawLogprob: raw.logprob[i], topLogprobs };
}

function seedOf(seed: bigint, k: number): bigint {
  return (seed + BigInt(k)) % (1n << 64n);
}

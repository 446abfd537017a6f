// The generation loop over AddonContext.step (continuous batching within one call).
//
// Each prompt becomes a sequence in a slot (startSequence(seed)); at most maxBatch are live, the rest wait and
// take the slot of one that finishes. Every step packs, for each live sequence, the tokens it still has to
// feed: a decoding sequence feeds its last sampled token (first, so decoding never waits), a new sequence its
// prompt — the whole prompt when it fits in maxStepTokens, otherwise a chunk, and the token sampled after a
// chunk that is not the prompt's last is ignored. A sequence ends on EOS or BOS (run.c stops when it samples
// BOS; the token is kept in `tokens`, not in the text), on a stop string, after maxNewTokens, when its context
// is full, or on abort; its slot is then ended. The step in flight is never cancelled.
import type { AddonContext } from '../binding';
import type { FinishReason, ResolvedOptions } from './options';
import { sequenceSeed } from './options';
import { SequenceText, TokenDecoder } from './text';

export interface StreamEvent {
  /** Which prompt (its index in the call's list; 0 for a single prompt). */
  index: number;
  /** The generated token id. */
  token: number;
  /** Text this token completed (may be '' while a UTF-8 character or a possible stop string is incomplete). */
  text: string;
  /** Set on the sequence's last event (on abort the stream just ends: no further event). */
  finishReason?: FinishReason;
}

export interface GenerateResult {
  /** The generated text (not the prompt), cut before a stop string. */
  text: string;
  /** Generated token ids, including a final EOS/BOS when the model produced one. */
  tokens: number[];
  /** Natural log-probability of each generated token under the distribution it was sampled from. */
  logprobs: number[];
  /** With `logits: true`: each generated token's float32 logits (vocabSize). */
  logits?: Float32Array[];
  finishReason: FinishReason;
  usage: { promptTokens: number; completionTokens: number };
  timings: {
    /** Time loadModel took. */
    loadMs?: number;
    /** From the first step carrying this prompt to its first generated token. */
    prefillMs: number;
    /** From the first generated token to the end of the sequence. */
    decodeMs: number;
    /** From the call to the first generated token (includes waiting for the model). */
    ttftMs: number;
    /** Tokens after the first, per second of decodeMs (0 when fewer than 2 tokens). */
    tokensPerSecond: number;
  };
}

export interface SchedulerLimits {
  maxBatch: number;
  maxContext: number;
  maxStepTokens: number;
  eosIds: readonly number[];
  loadMs?: number;
}

interface Sequence {
  index: number;
  prompt: Int32Array;
  slot: number;
  /** Tokens to feed, starting at pendingFrom. */
  pending: Int32Array | number[];
  pendingFrom: number;
  /** Tokens in the KV cache. */
  fed: number;
  tokens: number[];
  logprobs: number[];
  logits: Float32Array[];
  text: SequenceText;
  finish: FinishReason | null;
  prefillStart: number;
  firstToken: number;
  end: number;
}

/**
 * Runs the prompts to completion, yielding each step's events. `disposed()` is checked after every step; when
 * it turns true the run throws `onDisposed()`. The generator's finally ends every slot it holds.
 */
export async function* schedule(
  native: Pick<AddonContext, 'startSequence' | 'endSequence' | 'step'>,
  prompts: Int32Array[],
  decoders: TokenDecoder[],
  opts: ResolvedOptions,
  limits: SchedulerLimits,
  callStart: number,
  disposed: () => Error | null,
): AsyncGenerator<StreamEvent[], GenerateResult[], undefined> {
  const seqs: Sequence[] = prompts.map((prompt, index) => ({
    index, prompt, slot: -1, pending: prompt, pendingFrom: 0, fed: 0, tokens: [], logprobs: [], logits: [],
    text: new SequenceText(decoders[index], opts.stop), finish: null, prefillStart: 0, firstToken: 0, end: 0,
  }));
  const waiting = [...seqs];
  const live: Sequence[] = [];
  const now = (): number => performance.now();
  const finish = (s: Sequence, reason: FinishReason): string => {
    s.finish = reason;
    s.end = now();
    if (s.slot >= 0) native.endSequence(s.slot);
    s.slot = -1;
    return s.text.finish();
  };
  try {
    for (;;) {
      if (opts.signal?.aborted) {
        for (const s of [...live, ...waiting]) finish(s, 'abort');
        break;
      }
      while (live.length < limits.maxBatch && waiting.length > 0) {
        const s = waiting.shift()!;
        s.slot = native.startSequence(sequenceSeed(opts.seed, s.index));
        live.push(s);
      }
      if (live.length === 0) break;

      // Pack: fewest pending tokens first (decoding sequences, then prompt chunks) while the budget lasts.
      const left = (s: Sequence): number => s.pending.length - s.pendingFrom;
      const order = [...live].sort((a, b) => left(a) - left(b));
      const parts: Array<{ s: Sequence; count: number }> = [];
      let budget = limits.maxStepTokens;
      for (const s of order) {
        const count = Math.min(left(s), budget);
        if (count <= 0) continue;
        parts.push({ s, count });
        budget -= count;
      }
      const n = parts.length;
      const tokens = new Int32Array(limits.maxStepTokens - budget);
      let at = 0;
      const stepStart = now();
      for (const { s, count } of parts) {
        for (let i = 0; i < count; i++) tokens[at++] = s.pending[s.pendingFrom + i];
        if (s.fed === 0 && s.pendingFrom === 0) s.prefillStart = stepStart;
      }
      const result = await native.step({
        slots: Int32Array.from(parts, (p) => p.s.slot),
        tokens,
        counts: Int32Array.from(parts, (p) => p.count),
        temperature: new Float32Array(n).fill(opts.temperature),
        topK: new Int32Array(n).fill(opts.topK),
        topP: new Float32Array(n).fill(opts.topP),
        repetitionPenalty: new Float32Array(n).fill(opts.repetitionPenalty),
        logits: opts.logits ? 'last' : 'none',
      });
      const gone = disposed();
      if (gone) throw gone;
      const aborted = opts.signal?.aborted ?? false;
      const events: StreamEvent[] = [];
      parts.forEach(({ s, count }, i) => {
        s.fed += count;
        s.pendingFrom += count;
        if (s.pendingFrom < s.pending.length) return; // a prompt chunk that is not the last
        const token = result.tokens[i];
        if (s.tokens.length === 0) s.firstToken = now();
        s.tokens.push(token);
        s.logprobs.push(result.logprobs[i]);
        if (opts.logits && result.logits) {
          const v = result.logits.length / n;
          s.logits.push(result.logits.slice(i * v, (i + 1) * v));
        }
        let text: string;
        if (limits.eosIds.includes(token)) {
          text = finish(s, 'eos');
        } else {
          text = s.text.push(token);
          if (s.text.stopped) text += finish(s, 'stop');
          else if (s.tokens.length >= opts.maxNewTokens || s.fed >= limits.maxContext) text += finish(s, 'length');
          else if (aborted) text += finish(s, 'abort');
          else {
            s.pending = [token];
            s.pendingFrom = 0;
          }
        }
        events.push(s.finish ? { index: s.index, token, text, finishReason: s.finish } : { index: s.index, token, text });
      });
      for (let i = live.length - 1; i >= 0; i--) if (live[i].finish) live.splice(i, 1);
      if (events.length) yield events;
    }
  } finally {
    for (const s of live) if (s.slot >= 0) native.endSequence(s.slot);
  }
  return seqs.map((s) => result(s, limits, callStart));
}

function result(s: Sequence, limits: SchedulerLimits, callStart: number): GenerateResult {
  const got = s.tokens.length > 0;
  const decodeMs = got ? s.end - s.firstToken : 0;
  const r: GenerateResult = {
    text: s.text.text,
    tokens: s.tokens,
    logprobs: s.logprobs,
    finishReason: s.finish ?? 'abort',
    usage: { promptTokens: s.prompt.length, completionTokens: s.tokens.length },
    timings: {
      ...(limits.loadMs !== undefined ? { loadMs: limits.loadMs } : {}),
      prefillMs: got ? s.firstToken - s.prefillStart : 0,
      decodeMs,
      ttftMs: got ? s.firstToken - callStart : 0,
      tokensPerSecond: s.tokens.length > 1 && decodeMs > 0 ? ((s.tokens.length - 1) * 1000) / decodeMs : 0,
    },
  };
  if (s.logits.length) r.logits = s.logits;
  return r;
}

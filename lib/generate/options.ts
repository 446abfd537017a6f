// generate()/stream() options: the public types, their defaults and validation (one vocabulary: validate.ts).
import { invalid, integerIn, is, numberIn, optionsObject, type OptionKeys } from '../validate';
import { randomBytes } from 'crypto';
import { limits } from '../limits';

export type FinishReason = 'stop' | 'length' | 'eos' | 'abort';

/** A prompt: text (encoded with BOS first, as llama2.c's run.c) or token ids used as they are. */
export type Prompt = string | readonly number[] | Int32Array;

export interface GenerateOptions {
  /** Tokens to generate at most, not counting the prompt (default 256). A sequence also ends when its context is full. */
  maxNewTokens?: number;
  /** 0 = greedy (argmax). Default 1. */
  temperature?: number;
  /** Sample among the k most likely tokens; 0 = off (default). */
  topK?: number;
  /** Nucleus sampling: the smallest set of tokens whose probability reaches p; 1 = off (default). */
  topP?: number;
  /**
   * > 1 discourages tokens already in the sequence, prompt included (logit / p, or × p when negative); 1 = off
   * (default). In [0.01, 100]: beyond, logits overflow.
   */
  repetitionPenalty?: number;
  /**
   * OpenAI's presence_penalty, in [-2, 2]: subtracted from the logit of every token generated so far (not the
   * prompt's); > 0 favours new tokens. 0 = off (default). Applied with the other penalties, before temperature.
   */
  presencePenalty?: number;
  /** OpenAI's frequency_penalty, in [-2, 2]: subtracted once per time a token was generated so far. 0 = off (default). */
  frequencyPenalty?: number;
  /** Sampling seed (integer 0..2^64-1, number or bigint); sample k (= i × n + j) uses seed + k. Default: random. */
  seed?: number | bigint;
  /** Generation ends when the text contains one of these; the text is cut before it (finishReason 'stop'). */
  stop?: string | readonly string[];
  /**
   * Ends generation early: every unfinished sequence finishes with finishReason 'abort' and keeps what it has
   * generated (generate() resolves, stream() ends). The step in flight completes first.
   */
  signal?: AbortSignal;
  /** Return, for each generated token, the float32 logits it was sampled from (result.logits). */
  logits?: boolean;
  /**
   * OpenAI's logprobs / top_logprobs, integer 0–20: report each generated token's log-probability under the model's
   * raw distribution (log-softmax of its logits: no temperature, no penalties) and this many most likely tokens
   * with theirs (result.rawLogprobs / result.topLogprobs, stream events' rawLogprob / topLogprobs). Absent = off.
   */
  topLogprobs?: number;
  /** Do not end on the model's end-of-generation ids (EOS): benchmarks that need every sequence to run its length. */
  ignoreEos?: boolean;
}

/**
 * n samples per prompt: the prompt is computed once and the n sequences share its KV blocks. generate() then
 * resolves to an array of prompts × n results (sample j of prompt i at i × n + j) and stream events carry that index.
 */
export interface SamplesOptions extends GenerateOptions {
  n: number;
}

export interface ResolvedOptions {
  maxNewTokens: number;
  n: number;
  /** Whether n was given (generate() then returns one result per sample). */
  nGiven: boolean;
  temperature: number;
  topK: number;
  topP: number;
  repetitionPenalty: number;
  presencePenalty: number;
  frequencyPenalty: number;
  seed: bigint;
  stop: string[];
  signal: AbortSignal | undefined;
  logits: boolean;
  /** undefined: off. */
  topLogprobs: number | undefined;
  ignoreEos: boolean;
}

const U64 = 1n << 64n;

/** Every option generate() and stream() take: any other key is rejected (with the nearest of these). */
const GENERATE_OPTION_KEYS: OptionKeys<SamplesOptions> = {
  maxNewTokens: true, n: true, temperature: true, topK: true, topP: true, repetitionPenalty: true, presencePenalty: true,
  frequencyPenalty: true, seed: true, stop: true, signal: true, logits: true, topLogprobs: true, ignoreEos: true,
};

/** maxN: the most samples per prompt the context takes (its maxBatch, at most the engine's maxN). */
export function resolveGenerateOptions(options: unknown, vocabSize: number, maxN: number): ResolvedOptions {
  const o = optionsObject('options', options, GENERATE_OPTION_KEYS);
  const maxNewTokens = o.maxNewTokens === undefined ? 256 : integerIn('maxNewTokens', o.maxNewTokens, 1, Number.MAX_SAFE_INTEGER);
  const n = o.n === undefined ? 1 : integerIn('n', o.n, 1, maxN);
  const temperature = o.temperature === undefined ? 1 : numberIn('temperature', o.temperature, 0, limits().maxTemperature);
  const topK = o.topK === undefined ? 0 : integerIn('topK', o.topK, 0, vocabSize);
  let topP = 1;
  if (o.topP !== undefined) {
    // as the engine sees it: a float32 (1e-46 would arrive as 0)
    if (!is.number(o.topP) || !(Math.fround(o.topP) > 0 && o.topP <= 1)) throw invalid('topP', 'number greater than 0 and at most 1', o.topP);
    topP = o.topP;
  }
  const maxRep = limits().maxRepetitionPenalty;
  const repetitionPenalty = o.repetitionPenalty === undefined ? 1
    : numberIn('repetitionPenalty', o.repetitionPenalty, Math.fround(1 / maxRep), maxRep);
  const maxPenalty = limits().maxPenalty;
  const presencePenalty = o.presencePenalty === undefined ? 0 : numberIn('presencePenalty', o.presencePenalty, -maxPenalty, maxPenalty);
  const frequencyPenalty = o.frequencyPenalty === undefined ? 0 : numberIn('frequencyPenalty', o.frequencyPenalty, -maxPenalty, maxPenalty);
  let seed: bigint;
  if (o.seed === undefined) seed = randomBytes(8).readBigUInt64LE(0);
  else if (typeof o.seed === 'bigint' && o.seed >= 0n && o.seed < U64) seed = o.seed;
  else if (typeof o.seed === 'number' && Number.isSafeInteger(o.seed) && o.seed >= 0) seed = BigInt(o.seed);
  else throw invalid('seed', 'integer between 0 and 2^64-1 (number or bigint)', o.seed);
  let stop: string[] = [];
  if (o.stop !== undefined) {
    const list = typeof o.stop === 'string' ? [o.stop] : o.stop;
    if (!Array.isArray(list)) throw invalid('stop', 'non-empty string or array of non-empty strings', o.stop);
    // name the bad element (holes of a sparse array included), not "a value of type array"
    stop = Array.from(list as unknown[], (v, i) => {
      if (typeof v !== 'string' || v.length === 0) throw invalid(typeof o.stop === 'string' ? 'stop' : `stop[${i}]`, 'non-empty string', v);
      return v;
    });
  }
  const signal = o.signal;
  if (signal !== undefined && !(signal instanceof AbortSignal)) throw invalid('signal', 'AbortSignal', signal);
  const logits = o.logits === undefined ? false : o.logits;
  if (typeof logits !== 'boolean') throw invalid('logits', 'boolean', logits);
  const topLogprobs = o.topLogprobs === undefined ? undefined : integerIn('topLogprobs', o.topLogprobs, 0, limits().maxTopLogprobs);
  const ignoreEos = o.ignoreEos === undefined ? false : o.ignoreEos;
  if (typeof ignoreEos !== 'boolean') throw invalid('ignoreEos', 'boolean', ignoreEos);
  return {
    maxNewTokens, n, nGiven: o.n !== undefined, temperature, topK, topP, repetitionPenalty, presencePenalty, frequencyPenalty, seed, stop,
    signal, logits, topLogprobs, ignoreEos,
  };
}

/** The seed of sample `index` (prompt i, sample j: index i × n + j). */
export function sequenceSeed(seed: bigint, index: number): bigint {
  return (seed + BigInt(index)) % U64;
}

/** Token ids of a prompt given as ids: a non-empty list of integers in [0, vocabSize). */
export function promptIds(name: string, p: readonly number[] | Int32Array, vocabSize: number): Int32Array {
  if (p.length === 0) throw invalid(name, 'non-empty string or non-empty array of token ids', p);
  for (let i = 0; i < p.length; i++) integerIn(`${name}[${i}]`, p[i], 0, vocabSize - 1);
  return Int32Array.from(p);
}

export function isPromptIds(p: unknown): p is readonly number[] | Int32Array {
  return p instanceof Int32Array || (Array.isArray(p) && p.length > 0 && typeof p[0] === 'number');
}

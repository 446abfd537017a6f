// POST /v1/completions and /v1/chat/completions over the model's serving context: the request body (validated by
// schemas.ts) becomes one generate()/stream() call — every prompt a request of the engine, `n` samples forked from
// its one prompt pass — and the results become OpenAI's response, or its Server-Sent Events chunk by chunk.
// A client that goes away aborts its call: the engine cancels its sequences at the next step boundary.
import { randomBytes } from 'crypto';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { GenerateResult, TokenLogprob } from '../generate/call';
import type { FinishReason, SamplesOptions } from '../generate/options';
import type { ChatMessage, Model } from '../model';
import { badRequest, toHttpError } from './errors';
import type { ServerMetrics } from './metrics';
import { SseWriter } from './sse';

type Body = Record<string, unknown>;

/** One call as the routes describe it: the prompts as token ids, the engine's options, the response's shape. */
interface Job {
  chat: boolean;
  prompts: number[][];
  options: SamplesOptions;
  /** Top logprobs per token (0: only the token's own); null: no logprobs. */
  logprobs: number | null;
  stream: boolean;
  includeUsage: boolean;
  /** completions with echo: the prompt's text before each choice's text. */
  echo: string[] | null;
}

const finishOf = (r: FinishReason): string => (r === 'length' ? 'length' : 'stop');
const id = (prefix: string): string => `${prefix}-${randomBytes(12).toString('hex')}`;

/** What runs the generations: the model (its default context) or another context over its weights. */
type Engine = Pick<Model, 'generate' | 'stream'>;

export interface GenerationDeps {
  model: () => Model;
  engine: () => Engine;
  modelName: () => string;
  metrics: ServerMetrics;
}

/** Fields the engine cannot honour yet: a clear 400 rather than a silently different answer. */
function refuseUnsupported(b: Body, chat: boolean): void {
  if (b.logit_bias && Object.keys(b.logit_bias as object).length) throw badRequest('logit_bias is not supported yet', 'logit_bias', 'unsupported');
  if (!chat && typeof b.suffix === 'string' && b.suffix.length) throw badRequest('suffix (insertion) is not supported', 'suffix', 'unsupported');
  if (!chat && typeof b.best_of === 'number' && b.best_of !== (b.n ?? 1)) throw badRequest('best_of other than n is not supported', 'best_of', 'unsupported');
  if (chat && Array.isArray(b.tools) && b.tools.length) throw badRequest('tools (function calling) are not supported yet', 'tools', 'unsupported');
  const rf = b.response_format as { type?: string } | null | undefined;
  if (chat && rf && rf.type !== 'text') throw badRequest(`response_format ${JSON.stringify(rf.type)} is not supported yet (structured output); use "text"`, 'response_format.type', 'unsupported');
}

function seedOf(v: unknown): bigint | undefined {
  if (typeof v !== 'number') return undefined;
  const s = BigInt(Math.trunc(v));
  return ((s % (1n << 64n)) + (1n << 64n)) % (1n << 64n); // negative seeds wrap, as a uint64 would
}

/** The request's sampling fields → the engine's options. */
function options(b: Body, model: Model, chat: boolean, signal: AbortSignal): SamplesOptions {
  const topK = typeof b.top_k === 'number' && b.top_k > 0 ? b.top_k : 0;
  const maxTokens = (chat ? (b.max_completion_tokens ?? b.max_tokens) : b.max_tokens) as number | null | undefined;
  const o: SamplesOptions = {
    n: typeof b.n === 'number' ? b.n : 1,
    // completions: OpenAI's default of 16 tokens; chat: until the context is full or the model stops.
    maxNewTokens: typeof maxTokens === 'number' ? maxTokens : chat ? model.config.maxContext : 16,
    temperature: typeof b.temperature === 'number' ? b.temperature : 1,
    topP: typeof b.top_p === 'number' ? b.top_p : 1,
    topK: Math.min(topK, model.config.vocabSize),
    repetitionPenalty: typeof b.repetition_penalty === 'number' ? b.repetition_penalty : 1,
    presencePenalty: typeof b.presence_penalty === 'number' ? b.presence_penalty : 0,
    frequencyPenalty: typeof b.frequency_penalty === 'number' ? b.frequency_penalty : 0,
    ignoreEos: b.ignore_eos === true,
    signal,
  };
  const seed = seedOf(b.seed);
  if (seed !== undefined) o.seed = seed;
  if (typeof b.stop === 'string') o.stop = [b.stop];
  else if (Array.isArray(b.stop) && b.stop.length) o.stop = b.stop as string[];
  return o;
}

function chatMessages(b: Body): ChatMessage[] {
  return (b.messages as Array<{ role: string; content?: unknown }>).map((m, i) => {
    let content = '';
    if (typeof m.content === 'string') content = m.content;
    else if (Array.isArray(m.content)) {
      content = m.content.map((p: { type: string; text?: string }, k: number) => {
        if (p.type !== 'text' || typeof p.text !== 'string') {
          throw badRequest(`Only text content parts are supported (messages[${i}].content[${k}] is ${JSON.stringify(p.type)})`, `messages.${i}.content.${k}.type`, 'unsupported');
        }
        return p.text;
      }).join('');
    }
    return { role: m.role, content };
  });
}

/** Token-id prompts are checked against the vocabulary here, where the field's path is known. */
export function checkIds(ids: readonly number[], vocab: number, param: string): void {
  const bad = ids.findIndex((t) => t >= vocab);
  if (bad >= 0) throw badRequest(`Expected token ids below the vocabulary size ${vocab} but ${param}.${bad} is ${ids[bad]}`, `${param}.${bad}`);
}

async function prompts(b: Body, model: Model, chat: boolean): Promise<number[][]> {
  if (chat) return [await model.encodeChat(chatMessages(b))];
  const p = b.prompt;
  const V = model.config.vocabSize;
  if (typeof p === 'string') return [model.tokenizer.encode(p)];
  if (Array.isArray(p) && typeof p[0] === 'number') {
    checkIds(p as number[], V, 'prompt');
    return [p as number[]];
  }
  return (p as Array<string | number[]>).map((x, i) => {
    if (typeof x === 'string') return model.tokenizer.encode(x);
    checkIds(x, V, `prompt.${i}`);
    return x;
  });
}

export async function jobOf(b: Body, model: Model, chat: boolean, signal: AbortSignal): Promise<Job> {
  refuseUnsupported(b, chat);
  if (chat && typeof b.top_logprobs === 'number' && b.logprobs !== true) throw badRequest('top_logprobs requires logprobs: true', 'top_logprobs');
  const ps = await prompts(b, model, chat);
  const logprobs = chat ? (b.logprobs === true ? (typeof b.top_logprobs === 'number' ? b.top_logprobs : 0) : null)
    : (typeof b.logprobs === 'number' ? b.logprobs : null);
  const so = b.stream_options as { include_usage?: boolean } | null | undefined;
  const echo = !chat && b.echo === true ? ps.map((t) => model.tokenizer.decode(t)) : null;
  const opts = options(b, model, chat, signal);
  if (logprobs !== null) opts.topLogprobs = logprobs;
  return { chat, prompts: ps, options: opts, logprobs, stream: b.stream === true, includeUsage: so?.include_usage === true, echo };
}

/** A token's text as it appears after the token before it. */
function tokenText(model: Model, token: number, prev: number | undefined): string {
  return model.tokenizer.decode([token], prev);
}

/** OpenAI's chat logprobs of tokens (prev: the token before the first, for its text). */
function chatLogprobs(model: Model, tokens: number[], raw: number[], top: TokenLogprob[][], prev?: number): unknown {
  const entry = (t: number, lp: number, prev: number | undefined): { token: string; logprob: number; bytes: number[] } => {
    const s = tokenText(model, t, prev);
    return { token: s, logprob: lp, bytes: Array.from(Buffer.from(s, 'utf8')) };
  };
  return {
    content: tokens.map((t, k) => ({
      ...entry(t, raw[k], k ? tokens[k - 1] : prev),
      top_logprobs: (top[k] ?? []).map((x) => entry(x.token, x.logprob, k ? tokens[k - 1] : prev)),
    })),
  };
}

/** The completions API's logprobs (offset: where the first token's text starts in the choice's text). */
function completionLogprobs(model: Model, tokens: number[], raw: number[], top: TokenLogprob[][], offset: number, prev?: number): unknown {
  const before = (k: number): number | undefined => (k ? tokens[k - 1] : prev);
  const texts = tokens.map((t, k) => tokenText(model, t, before(k)));
  const offsets: number[] = [];
  let at = offset;
  for (const s of texts) { offsets.push(at); at += s.length; }
  return {
    tokens: texts,
    token_logprobs: raw,
    top_logprobs: tokens.map((_, k) => Object.fromEntries((top[k] ?? []).map((x) => [tokenText(model, x.token, before(k)), x.logprob]))),
    text_offset: offsets,
  };
}

function usage(job: Job, results: GenerateResult[]): Record<string, unknown> {
  const n = job.options.n;
  const prompt = job.prompts.reduce((a, p) => a + p.length, 0);
  const completion = results.reduce((a, r) => a + r.tokens.length, 0);
  const cached = results.filter((_, k) => k % n === 0).reduce((a, r) => a + r.usage.cachedTokens, 0);
  return { prompt_tokens: prompt, completion_tokens: completion, total_tokens: prompt + completion, prompt_tokens_details: { cached_tokens: cached } };
}

function observe(metrics: ServerMetrics, r: GenerateResult, arrived: number): void {
  const t = r.timings;
  if (r.tokens.length) metrics.ttft.observe(t.ttftMs / 1e3);
  metrics.e2e.observe((performance.now() - arrived) / 1e3);
  metrics.queue.observe(t.queueMs / 1e3);
  metrics.finished.inc({ finished_reason: r.finishReason });
}

/** The whole response at once. */
async function respond(job: Job, deps: GenerationDeps, model: Model, reply: FastifyReply, arrived: number): Promise<unknown> {
  const results = await deps.engine().generate(job.prompts, job.options);
  const created = Math.floor(Date.now() / 1000);
  for (const r of results) {
    observe(deps.metrics, r, arrived);
    if (r.tokens.length > 1) {
      const gap = r.timings.decodeMs / (r.tokens.length - 1) / 1e3;
      for (let k = 1; k < r.tokens.length; k++) deps.metrics.itl.observe(gap);
    }
  }
  if (results.some((r) => r.finishReason === 'abort') && reply.raw.destroyed) return reply; // the client left
  const choices = results.map((r, k) => {
    const logprobs = job.logprobs === null ? null : job.chat
      ? chatLogprobs(model, r.tokens, r.rawLogprobs ?? [], r.topLogprobs ?? [])
      : completionLogprobs(model, r.tokens, r.rawLogprobs ?? [], r.topLogprobs ?? [], job.echo?.[Math.floor(k / job.options.n)].length ?? 0);
    return job.chat
      ? { index: k, message: { role: 'assistant', content: r.text, refusal: null }, logprobs, finish_reason: finishOf(r.finishReason) }
      : { index: k, text: (job.echo?.[Math.floor(k / job.options.n)] ?? '') + r.text, logprobs, finish_reason: finishOf(r.finishReason) };
  });
  return {
    id: id(job.chat ? 'chatcmpl' : 'cmpl'),
    object: job.chat ? 'chat.completion' : 'text_completion',
    created,
    model: deps.modelName(),
    choices,
    usage: usage(job, results),
    system_fingerprint: null,
  };
}

/** Server-Sent Events, one chunk per token of a choice; the role first (chat), finish_reason last, usage on request. */
async function streamResponse(job: Job, deps: GenerationDeps, model: Model, reply: FastifyReply, arrived: number): Promise<void> {
  reply.hijack();
  const sse = new SseWriter(reply.raw);
  sse.start();
  const rid = id(job.chat ? 'chatcmpl' : 'cmpl');
  const created = Math.floor(Date.now() / 1000);
  const object = job.chat ? 'chat.completion.chunk' : 'text_completion';
  const chunk = (choices: unknown[], extra: Record<string, unknown> = {}): Record<string, unknown> =>
    ({ id: rid, object, created, model: deps.modelName(), system_fingerprint: null, choices, ...extra });
  const n = job.options.n;
  const samples = job.prompts.length * n;
  const lastAt = new Array<number>(samples).fill(0);
  const prev = new Array<number | undefined>(samples).fill(undefined);  // each choice's previous token
  const textLength = job.prompts.flatMap((_, i) => new Array<number>(n).fill(job.echo?.[i].length ?? 0));
  const generated = new Array<number>(samples).fill(0);
  try {
    if (job.chat) {
      for (let k = 0; k < samples; k++) await sse.send(chunk([{ index: k, delta: { role: 'assistant', content: '' }, logprobs: null, finish_reason: null }]));
    } else if (job.echo) {
      for (let k = 0; k < samples; k++) await sse.send(chunk([{ index: k, text: job.echo[Math.floor(k / n)], logprobs: null, finish_reason: null }]));
    }
    const ended = new Array<FinishReason | undefined>(samples);
    for await (const ev of deps.engine().stream(job.prompts, job.options)) {
      if (!sse.open) break;
      const k = ev.index;
      const now = performance.now();
      if (generated[k]++ === 0) {
        deps.metrics.ttft.observe((now - arrived) / 1e3);
      } else {
        deps.metrics.itl.observe((now - lastAt[k]) / 1e3);
      }
      lastAt[k] = now;
      let logprobs: unknown = null;
      if (job.logprobs !== null) {
        logprobs = job.chat
          ? chatLogprobs(model, [ev.token], [ev.rawLogprob ?? 0], [ev.topLogprobs ?? []], prev[k])
          : completionLogprobs(model, [ev.token], [ev.rawLogprob ?? 0], [ev.topLogprobs ?? []], textLength[k], prev[k]);
      }
      // text_offset counts the tokens' own texts, as the non-streamed response does.
      if (job.logprobs !== null && !job.chat) textLength[k] += tokenText(model, ev.token, prev[k]).length;
      prev[k] = ev.token;
      const finish = ev.finishReason ? finishOf(ev.finishReason) : null;
      if (ev.finishReason) ended[k] = ev.finishReason;
      if (job.chat) {
        if (ev.text || logprobs) await sse.send(chunk([{ index: k, delta: { content: ev.text }, logprobs, finish_reason: null }]));
        if (finish) await sse.send(chunk([{ index: k, delta: {}, logprobs: null, finish_reason: finish }]));
      } else {
        await sse.send(chunk([{ index: k, text: ev.text, logprobs, finish_reason: finish }]));
      }
    }
    for (let k = 0; k < samples; k++) deps.metrics.finished.inc({ finished_reason: ended[k] ?? 'abort' });
    deps.metrics.e2e.observe((performance.now() - arrived) / 1e3);
    if (job.includeUsage && sse.open) {
      const prompt = job.prompts.reduce((a, p) => a + p.length, 0);
      const completion = generated.reduce((a, x) => a + x, 0);
      await sse.send(chunk([], { usage: { prompt_tokens: prompt, completion_tokens: completion, total_tokens: prompt + completion } }));
    }
    await sse.done();
  } catch (e) {
    await sse.fail(toHttpError(e).body());
  }
}

/** The route handler of /v1/completions (chat false) and /v1/chat/completions (chat true). */
export function generationHandler(deps: GenerationDeps, chat: boolean, track: (ac: AbortController) => () => void) {
  return async (request: FastifyRequest, reply: FastifyReply): Promise<unknown> => {
    const arrived = performance.now();
    const model = deps.model();
    const b = request.body as Body;
    if (b.model !== deps.modelName()) {
      return reply.code(404).send({ error: { message: `The model ${JSON.stringify(b.model)} does not exist (this server serves ${JSON.stringify(deps.modelName())})`, type: 'invalid_request_error', param: 'model', code: 'model_not_found' } });
    }
    const ac = new AbortController();
    const untrack = track(ac);
    // The client went away before the response finished: cancel its sequences.
    reply.raw.once('close', () => { if (!reply.raw.writableFinished) ac.abort(); });
    try {
      const job = await jobOf(b, model, chat, ac.signal);
      if (job.stream) {
        await streamResponse(job, deps, model, reply, arrived);
        return reply;
      }
      return await respond(job, deps, model, reply, arrived);
    } finally {
      untrack();
    }
  };
}

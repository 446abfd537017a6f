// The OpenAI-compatible routes as one Fastify plugin (mount it in an existing app with app.register(eetRoutes, …)):
//   GET  /v1/models, /v1/models/:model
//   POST /v1/completions, /v1/chat/completions (generation.ts), /v1/embeddings (encoder models)
//   POST /tokenize, /detokenize
//   GET  /health (200 ready; 503 loading, draining or failed), /metrics (Prometheus text)
// Every route but /health and /metrics takes the bearer API key when one is set (compared in constant time);
// model names map to the one loaded model only — nothing a request says ever names a file. The plugin is
// encapsulated (no fastify-plugin wrapper): its error and 404 handlers stay scoped to its routes when mounted.
import { createHash, timingSafeEqual } from 'crypto';
import type { FastifyInstance, FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import { hasEncoder } from '../arch';
import type { Context, ContextStats } from '../context';
import type { Model } from '../model';
import { HttpError, badRequest, toHttpError, unavailable } from './errors';
import { checkIds, generationHandler } from './generation';
import { ServerMetrics } from './metrics';
import { chatBody, completionBody, detokenizeBody, embeddingBody, tokenizeBody } from './schemas';

/** What the routes serve: the model (null while it loads), and whether the server is going away. */
export class ServingState {
  model: Model | null = null;
  /** The context generations run in: the model's default one unless the server was given another. */
  context: Context | null = null;
  /** The id clients use for the model (set with the model). */
  modelName = '';
  failure: Error | null = null;
  draining = false;
  readonly inflight = new Set<AbortController>();
  readonly created = Math.floor(Date.now() / 1000);

  /** The serving context's stats, or null while there is none. */
  stats(): ContextStats | null {
    if (!this.model || this.model.disposed) return null;
    if (this.context) return this.context.disposed ? null : this.context.stats();
    return this.model.stats();
  }

  /** Registers a request's abort handle until it ends (drain aborts what is left after its grace period). */
  track(ac: AbortController): () => void {
    this.inflight.add(ac);
    return () => this.inflight.delete(ac);
  }
}

export interface EetRouteOptions {
  /** The model and its name (GET /v1/models lists it; a request naming another gets 404). */
  state: ServingState;
  /** Bearer token required on every route but /health and /metrics. */
  apiKey?: string;
  metrics?: ServerMetrics;
}

const digest = (s: string): Buffer => createHash('sha256').update(s).digest();

function authorizer(apiKey: string | undefined): (request: FastifyRequest) => void {
  if (!apiKey) return () => {};
  const expected = digest(apiKey);
  return (request) => {
    const h = request.headers.authorization ?? '';
    const m = /^Bearer (.+)$/i.exec(h);
    // Digests have one length: timingSafeEqual then compares in constant time whatever was sent.
    if (!m || !timingSafeEqual(digest(m[1]), expected)) {
      throw new HttpError(401, 'Incorrect API key provided', 'invalid_request_error', null, 'invalid_api_key');
    }
  };
}

export const eetRoutes: FastifyPluginAsync<EetRouteOptions> = async (app: FastifyInstance, opts) => {
  const { state } = opts;
  const metrics = opts.metrics ?? new ServerMetrics(() => state.stats());
  const authorize = authorizer(opts.apiKey);
  const model = (): Model => {
    if (state.draining) throw unavailable('The server is shutting down');
    if (!state.model) throw unavailable(state.failure ? `The model failed to load: ${state.failure.message}` : 'The model is loading');
    return state.model;
  };
  const deps = { model, engine: () => state.context ?? model(), modelName: () => state.modelName, metrics };
  const open = new Set(['/health', '/metrics']);

  app.addHook('onRequest', async (request) => {
    if (!open.has(request.routeOptions.url ?? '')) authorize(request);
  });
  app.addHook('onResponse', async (request, reply) => {
    metrics.httpRequests.inc({ route: request.routeOptions.url ?? 'unknown', status: String(reply.statusCode) });
  });
  app.setErrorHandler(async (error, _request, reply) => {
    const e = toHttpError(error);
    if (e.status === 429) reply.header('Retry-After', '1');
    return reply.code(e.status).send(e.body());
  });
  app.setNotFoundHandler(async (request, reply) => {
    const e = new HttpError(404, `Unknown route ${request.method} ${request.url}`, 'invalid_request_error', null, 'not_found');
    return reply.code(404).send(e.body());
  });

  app.get('/health', async (_request, reply) => {
    if (state.draining) return reply.code(503).send({ status: 'draining' });
    if (state.failure) return reply.code(503).send({ status: 'failed', message: state.failure.message });
    if (!state.model) return reply.code(503).send({ status: 'loading' });
    return { status: 'ok' };
  });

  app.get('/metrics', async (_request, reply) => {
    reply.header('Content-Type', metrics.registry.contentType);
    return metrics.registry.metrics();
  });

  const modelCard = (): Record<string, unknown> => ({
    id: state.modelName, object: 'model', created: state.created, owned_by: 'eet', max_model_len: model().config.maxContext,
  });
  app.get('/v1/models', async () => ({ object: 'list', data: [modelCard()] }));
  app.get('/v1/models/:model', async (request: FastifyRequest<{ Params: { model: string } }>, reply: FastifyReply) => {
    const card = modelCard();
    if (request.params.model !== state.modelName) return notFound(reply, request.params.model, state.modelName);
    return card;
  });

  const track = (ac: AbortController): (() => void) => state.track(ac);
  app.post('/v1/completions', { schema: { body: completionBody } }, generationHandler(deps, false, track));
  app.post('/v1/chat/completions', { schema: { body: chatBody } }, generationHandler(deps, true, track));

  app.post('/v1/embeddings', { schema: { body: embeddingBody } }, async (request, reply) => {
    const m = model();
    const b = request.body as { model: string; input: string | string[] | number[] | number[][]; encoding_format?: string | null; dimensions?: number | null };
    if (b.model !== state.modelName) return notFound(reply, b.model, state.modelName);
    if (!hasEncoder(m.config.arch)) throw badRequest(`${state.modelName} is not an embedding model (it generates text; use /v1/completions)`, 'model', 'unsupported');
    if (typeof b.dimensions === 'number' && b.dimensions !== m.config.dim) {
      throw badRequest(`This model's embeddings have ${m.config.dim} dimensions; dimensions ${b.dimensions} is not supported`, 'dimensions', 'unsupported');
    }
    const inputs: Array<string | number[]> = typeof b.input === 'string' ? [b.input]
      : typeof b.input[0] === 'number' ? [b.input as number[]] : (b.input as Array<string | number[]>);
    inputs.forEach((x, i) => { if (typeof x !== 'string') checkIds(x, m.config.vocabSize, typeof b.input[0] === 'number' ? 'input' : `input.${i}`); });
    const vectors = await m.embed(inputs, { pooling: 'mean', normalize: true });
    const tokens = inputs.reduce((a: number, x) => a + (typeof x === 'string' ? m.tokenizer.encode(x).length : x.length), 0);
    const encode = (v: Float32Array): number[] | string => (b.encoding_format === 'base64'
      ? Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString('base64') : Array.from(v));
    return {
      object: 'list', model: state.modelName,
      data: vectors.map((v, index) => ({ object: 'embedding', index, embedding: encode(v) })),
      usage: { prompt_tokens: tokens, total_tokens: tokens },
    };
  });

  app.post('/tokenize', { schema: { body: tokenizeBody } }, async (request, reply) => {
    const m = model();
    const b = request.body as { model?: string; prompt?: string; messages?: Array<{ role: string; content: string }>; add_generation_prompt?: boolean; add_special_tokens?: boolean };
    if (b.model !== undefined && b.model !== state.modelName) return notFound(reply, b.model, state.modelName);
    let tokens: number[];
    if (b.messages) tokens = await m.encodeChat(b.messages.map((x) => ({ role: x.role, content: typeof x.content === 'string' ? x.content : '' })), { addGenerationPrompt: b.add_generation_prompt ?? true });
    else if (typeof b.prompt === 'string') tokens = m.tokenizer.encode(b.prompt);
    else throw badRequest('Expected prompt or messages', 'prompt');
    if (b.add_special_tokens === false && tokens[0] === m.tokenizer.bos) tokens = tokens.slice(1);
    return { tokens, count: tokens.length, max_model_len: m.config.maxContext };
  });

  app.post('/detokenize', { schema: { body: detokenizeBody } }, async (request, reply) => {
    const m = model();
    const b = request.body as { model?: string; tokens: number[] };
    if (b.model !== undefined && b.model !== state.modelName) return notFound(reply, b.model, state.modelName);
    checkIds(b.tokens, m.config.vocabSize, 'tokens');
    return { prompt: m.tokenizer.decode(b.tokens) };
  });
};

function notFound(reply: FastifyReply, asked: string, served: string): FastifyReply {
  const e = new HttpError(404, `The model ${JSON.stringify(asked)} does not exist (this server serves ${JSON.stringify(served)})`, 'invalid_request_error', 'model', 'model_not_found');
  return reply.code(404).send(e.body());
}

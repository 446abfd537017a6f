// createServer(): the OpenAI-compatible server as a Node http.Server on Fastify, over a model (or a model still
// loading: /health says 503 until it is ready). eetPlugin mounts the same routes in an existing Fastify app:
//   await app.register(eetPlugin, { model, prefix: '/llm' });   // → /llm/v1/chat/completions, /llm/health, …
//   const server = await createServer(loadModel('model.gguf'), { apiKey: process.env.KEY });
//   await server.listen({ port: 8080 });                 // binds 127.0.0.1 unless a host is given
//   process.once('SIGTERM', () => server.drain(30_000).then(() => process.exit(0)));
import * as http from 'http';
import * as path from 'path';
import Fastify, { FastifyInstance, FastifyPluginAsync } from 'fastify';
import type { Context } from '../context';
import type { Model } from '../model';
import { ServerMetrics } from './metrics';
import { ServingState, eetRoutes } from './routes';

export { eetRoutes, ServingState } from './routes';
export type { EetRouteOptions } from './routes';

export interface CreateServerOptions {
  /** Generate in this context over the model's weights (default: the model's own, as model.generate() does). */
  context?: Context;
  /** The id clients use for the model (default: the model file's or folder's name). */
  modelName?: string;
  /** Bearer token required on every route but /health and /metrics. */
  apiKey?: string;
  /** Largest request body in bytes (default 1 MiB): larger bodies get 413. */
  bodyLimit?: number;
  /** Largest request header section in bytes (default 16 KiB) and most headers per request (default 100). */
  maxHeaderSize?: number;
  maxHeadersCount?: number;
  /** drain() disposes of the model (default true: the server owns it, as `eet serve`'s does). */
  disposeOnDrain?: boolean;
  /** Fastify's logger (pino) options, or true for its defaults; off by default. */
  logger?: boolean | Record<string, unknown>;
}

export interface EetPluginOptions {
  model: Model;
  /** The id clients use for the model (default: the model file's or folder's name). */
  modelName?: string;
  apiKey?: string;
  /** Generate in this context over the model's weights (default: the model's own). */
  context?: Context;
}

/** The routes for an existing Fastify app, over a loaded model (the app owns its lifecycle: no drain here). */
export const eetPlugin: FastifyPluginAsync<EetPluginOptions> = async (app, o) => {
  const state = new ServingState();
  state.model = o.model;
  state.modelName = o.modelName ?? path.basename(o.model.config.path);
  state.context = o.context ?? null;
  await app.register(eetRoutes, { state, apiKey: o.apiKey });
};

export interface EetServer {
  readonly app: FastifyInstance;
  readonly server: http.Server;
  readonly state: ServingState;
  /** Listens (host 127.0.0.1 unless told otherwise); resolves to the address, e.g. http://127.0.0.1:8080. */
  listen(options?: { port?: number; host?: string }): Promise<string>;
  /**
   * Stops accepting requests (new ones get 503), lets those in flight finish for up to graceMs, cuts the rest
   * (their clients see the stream end), closes the server and disposes of the model (unless disposeOnDrain is false).
   */
  drain(graceMs?: number): Promise<void>;
}

export async function createServer(model: Model | Promise<Model>, options: CreateServerOptions = {}): Promise<EetServer> {
  const state = new ServingState();
  const ready = Promise.resolve(model).then((m) => {
    state.modelName = options.modelName ?? path.basename(m.config.path);
    state.context = options.context ?? null;
    state.model = m;
    return m;
  }, (e: unknown) => {
    state.failure = e instanceof Error ? e : new Error(String(e));
    return null;
  });
  if (!(model instanceof Promise)) await ready;
  const maxHeaderSize = options.maxHeaderSize ?? 16 * 1024;
  const app = Fastify({
    logger: options.logger ?? false,
    bodyLimit: options.bodyLimit ?? 1024 * 1024,
    // Types are checked, not coerced: "temperature": "0.5" is a 400 naming the field, as OpenAI answers.
    ajv: { customOptions: { coerceTypes: false, removeAdditional: false, allErrors: false } },
    serverFactory: (handler) => {
      const server = http.createServer({ maxHeaderSize }, handler);
      server.maxHeadersCount = options.maxHeadersCount ?? 100;
      return server;
    },
  });
  const metrics = new ServerMetrics(() => state.stats());
  await app.register(eetRoutes, { state, apiKey: options.apiKey, metrics });
  await app.ready();
  return {
    app,
    server: app.server,
    state,
    async listen(o = {}) {
      return app.listen({ port: o.port ?? 8080, host: o.host ?? '127.0.0.1' });
    },
    async drain(graceMs = 30_000) {
      state.draining = true;
      const closing = app.close();  // no new connections; requests on open ones get 503 from the routes
      const deadline = Date.now() + graceMs;
      while (state.inflight.size > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      for (const ac of state.inflight) ac.abort();
      await closing;
      const m = await ready;
      if (options.disposeOnDrain !== false) await m?.dispose();
    },
  };
}

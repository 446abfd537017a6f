// The `http` scenario of `eet bench --scenarios`: the OpenAI-compatible server (lib/server/) on loopback, driven by
// C concurrent streaming clients for N requests, against the same load sent straight to the engine (stream() in
// the same process) — so the difference is the HTTP layer's cost. The clients run in a worker thread: a load
// generator on the server's own event loop would measure itself. Each way gets fresh prompts of the same lengths
// (the prefix cache must not serve a timed prompt). requests/s, output tok/s, TTFT and inter-token latency.
import { Worker } from 'worker_threads';
import type { Context } from '../context';
import { InternalError } from '../errors';
import type { Model } from '../model';
import { createServer } from '../server';
import { benchOptions } from './grid';
import type { TokenSource } from './random';
import { percentiles, type Percentiles } from './stats';

export interface HttpSettings { clients: number; requests: number; promptTokens: [number, number]; newTokens: number }

export interface HttpWay {
  mode: 'http' | 'direct';
  wallMs: number;
  requestsPerSec: number;
  tokPerSec: number;
  ttftMs: Percentiles;
  itlMs: Percentiles;
}

export interface HttpResult {
  clients: number;
  requests: number;
  promptTokens: { min: number; max: number };
  newTokens: number;
  ways: HttpWay[];
  /** direct tok/s ÷ http tok/s: what the HTTP layer costs in throughput (1 = nothing). */
  overhead: number;
}

interface Times { ttftMs: number; itlMs: number[]; tokens: number }

// Runs in the worker (self-contained: it is sent as source). C loops take requests in turn and read each SSE stream.
async function clientMain(job: { url: string; model: string; prompts: number[][]; clients: number; maxTokens: number }): Promise<{ wallMs: number; times: Times[] }> {
  let next = 0;
  const times: Times[] = [];
  const t0 = performance.now();
  const one = async (prompt: number[]): Promise<Times> => {
    const start = performance.now();
    const r = await fetch(`${job.url}/v1/completions`, {
      method: 'POST', headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: job.model, prompt, max_tokens: job.maxTokens, temperature: 0, stream: true, ignore_eos: true }),
    });
    if (!r.ok || !r.body) throw new Error(`HTTP ${r.status}: ${await r.text()}`);
    const t: Times = { ttftMs: NaN, itlMs: [], tokens: 0 };
    let last = 0, buffered = '';
    const decoder = new TextDecoder();
    for await (const part of r.body as unknown as AsyncIterable<Uint8Array>) {
      buffered += decoder.decode(part, { stream: true });
      let cut;
      while ((cut = buffered.indexOf('\n\n')) >= 0) {
        const event = buffered.slice(0, cut);
        buffered = buffered.slice(cut + 2);
        if (!event.startsWith('data: {')) continue;
        const chunk = JSON.parse(event.slice(6)) as { choices: unknown[] };
        if (!chunk.choices.length) continue;
        const now = performance.now();
        if (t.tokens === 0) t.ttftMs = now - start;
        else t.itlMs.push(now - last);
        last = now;
        t.tokens++;
      }
    }
    return t;
  };
  await Promise.all(Array.from({ length: job.clients }, async () => {
    while (next < job.prompts.length) times.push(await one(job.prompts[next++]));
  }));
  return { wallMs: performance.now() - t0, times };
}

const WORKER = `const { parentPort, workerData } = require('worker_threads');
const clientMain = ${clientMain.toString()};
clientMain(workerData).then((r) => parentPort.postMessage({ ok: r }), (e) => parentPort.postMessage({ error: String(e && e.stack || e) }));`;

function way(mode: HttpWay['mode'], wallMs: number, times: Times[], requests: number, expectedTokens: number): HttpWay {
  const tokens = times.reduce((a, t) => a + t.tokens, 0);
  if (times.length !== requests || tokens !== expectedTokens) {
    throw new InternalError(`eet bench: the ${mode} way ran ${times.length} of ${requests} requests and ${tokens} of ${expectedTokens} tokens`);
  }
  return {
    mode, wallMs, requestsPerSec: (requests * 1e3) / wallMs, tokPerSec: (tokens * 1e3) / wallMs,
    ttftMs: percentiles(times.map((t) => t.ttftMs)), itlMs: percentiles(times.flatMap((t) => t.itlMs)),
  };
}

/** Runs both ways in `ctx` (sized for `clients` sequences): HTTP first, then the engine directly. */
export async function httpScenario(model: Model, ctx: Context, s: HttpSettings, source: TokenSource): Promise<HttpResult> {
  const lengths = Array.from({ length: s.requests }, () => source.int(s.promptTokens[0], s.promptTokens[1]));
  const fresh = (): number[][] => lengths.map((n) => Array.from(source.ids(n)));
  const expected = s.requests * s.newTokens;
  const server = await createServer(model, { modelName: 'bench', context: ctx, disposeOnDrain: false, bodyLimit: 16 << 20 });
  let http: HttpWay;
  try {
    const url = await server.listen({ port: 0 });
    const worker = new Worker(WORKER, { eval: true, workerData: { url, model: 'bench', prompts: fresh(), clients: s.clients, maxTokens: s.newTokens } });
    const reply = await new Promise<{ ok?: { wallMs: number; times: Times[] }; error?: string }>((resolve, reject) => {
      worker.once('message', resolve);
      worker.once('error', reject);
    });
    await worker.terminate();
    if (!reply.ok) throw new InternalError(`eet bench: the HTTP load generator failed: ${reply.error}`);
    http = way('http', reply.ok.wallMs, reply.ok.times, s.requests, expected);
  } finally {
    await server.drain(1000);
  }
  const prompts = fresh();
  const times: Times[] = [];
  let next = 0;
  const t0 = performance.now();
  await Promise.all(Array.from({ length: s.clients }, async () => {
    while (next < prompts.length) {
      const prompt = prompts[next++];
      const start = performance.now();
      const t: Times = { ttftMs: NaN, itlMs: [], tokens: 0 };
      let last = 0;
      for await (const _event of ctx.stream(prompt, benchOptions(s.newTokens))) {
        const now = performance.now();
        if (t.tokens === 0) t.ttftMs = now - start;
        else t.itlMs.push(now - last);
        last = now;
        t.tokens++;
      }
      times.push(t);
    }
  }));
  const direct = way('direct', performance.now() - t0, times, s.requests, expected);
  return {
    clients: s.clients, requests: s.requests, newTokens: s.newTokens,
    promptTokens: { min: Math.min(...lengths), max: Math.max(...lengths) },
    ways: [http, direct], overhead: direct.tokPerSec / http.tokPerSec,
  };
}

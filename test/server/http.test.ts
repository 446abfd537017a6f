// The server at the HTTP level, without an SDK in the way: the exact SSE framing, and what a hostile or careless
// client sends — malformed JSON, huge bodies, wrong types, out-of-range and overflowing numbers, unknown routes,
// unsupported fields — each answered with OpenAI's error envelope and the right status; /health while loading;
// /tokenize and /detokenize; the loopback default.
import { loadModel, Model } from '../../lib/model';
import Fastify from 'fastify';
import { createServer, eetPlugin, EetServer } from '../../lib/server';
import { MODEL } from '../util/stories260k';

let model: Model;
let server: EetServer;
let url: string;

beforeAll(async () => {
  model = await loadModel(MODEL, { device: 'cpu', maxBatch: 4 });
  server = await createServer(model, { modelName: 'stories', bodyLimit: 64 * 1024 });
  url = await server.listen({ port: 0 });
});
afterAll(async () => { await server?.drain(1000); });

const post = (route: string, body: unknown, headers: Record<string, string> = {}): Promise<Response> =>
  fetch(`${url}${route}`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: typeof body === 'string' ? body : JSON.stringify(body) });

async function expectError(r: Response, status: number, param: string | null, message?: RegExp): Promise<void> {
  expect(r.status).toBe(status);
  const body = (await r.json()) as { error: { message: string; type: string; param: string | null; code: string | null } };
  expect(Object.keys(body)).toEqual(['error']);
  expect(Object.keys(body.error).sort()).toEqual(['code', 'message', 'param', 'type']);
  expect(body.error.param).toBe(param);
  if (message) expect(body.error.message).toMatch(message);
}

test('binds 127.0.0.1 by default', () => {
  expect(new URL(url).hostname).toBe('127.0.0.1');
});

test('SSE framing exactly as OpenAI: data: <json>\\n\\n per chunk, data: [DONE] last, the usage chunk before it', async () => {
  const r = await post('/v1/completions', { model: 'stories', prompt: 'Once upon a time', max_tokens: 5, temperature: 0, stream: true, stream_options: { include_usage: true } });
  expect(r.status).toBe(200);
  expect(r.headers.get('content-type')).toMatch(/^text\/event-stream/);
  const raw = await r.text();
  const events = raw.split('\n\n');
  expect(events.pop()).toBe('');
  expect(events.at(-1)).toBe('data: [DONE]');
  const chunks = events.slice(0, -1).map((e) => {
    expect(e.startsWith('data: ')).toBe(true);
    expect(e.includes('\n')).toBe(false);
    return JSON.parse(e.slice(6)) as { id: string; choices: Array<{ text: string; finish_reason: string | null }>; usage?: { completion_tokens: number } };
  });
  expect(new Set(chunks.map((c) => c.id)).size).toBe(1);
  const usage = chunks.pop()!;
  expect(usage.choices).toEqual([]);
  expect(usage.usage!.completion_tokens).toBe(5);
  expect(chunks).toHaveLength(5);
  expect(chunks.map((c) => c.choices[0].finish_reason)).toEqual([null, null, null, null, 'length']);
  const ref = await model.generate('Once upon a time', { maxNewTokens: 5, temperature: 0 });
  expect(chunks.map((c) => c.choices[0].text).join('')).toBe(ref.text);
});

test('malformed bodies: not JSON, not an object, too large, wrong types, out of range, overflowing numbers', async () => {
  await expectError(await post('/v1/completions', '{"model": "stories", "prompt": '), 400, null, /parse the JSON body/);
  await expectError(await post('/v1/completions', '[1, 2]'), 400, null);
  await expectError(await post('/v1/completions', { model: 'stories', prompt: 'x'.repeat(70 * 1024) }), 413, null, /too large/);
  await expectError(await post('/v1/completions', { model: 'stories' }), 400, 'prompt', /required/);
  await expectError(await post('/v1/completions', { model: 'stories', prompt: 'x', max_tokens: '5' }), 400, 'max_tokens');
  await expectError(await post('/v1/completions', { model: 'stories', prompt: 'x', max_tokens: -1 }), 400, 'max_tokens');
  await expectError(await post('/v1/completions', { model: 'stories', prompt: 'x', max_tokens: 1.5 }), 400, 'max_tokens');
  await expectError(await post('/v1/completions', { model: 'stories', prompt: 'x', top_p: 0 }), 400, 'top_p');
  await expectError(await post('/v1/completions', '{"model": "stories", "prompt": "x", "temperature": 1e999}'), 400, 'temperature');
  await expectError(await post('/v1/completions', '{"model": "stories", "prompt": "x", "n": -1e999}'), 400, 'n');
  await expectError(await post('/v1/completions', { model: 'stories', prompt: [1, -3] }), 400, 'prompt');
  await expectError(await post('/v1/completions', { model: 'stories', prompt: [1, 99999] }), 400, 'prompt.1', /vocabulary size 512/);
  await expectError(await post('/v1/completions', { model: 'stories', prompt: 'x', stop: [''] }), 400, 'stop');
  await expectError(await post('/v1/completions', { model: 'stories', prompt: 'x', n: 5 }), 400, 'n');
  await expectError(await post('/v1/completions', { model: 'stories', prompt: 'x', logit_bias: { 5: 100 } }), 400, 'logit_bias');
  await expectError(await post('/v1/completions', { model: 'stories', prompt: 'x', best_of: 3 }), 400, 'best_of');
  const ok = await post('/v1/completions', { model: 'stories', prompt: 'Once', max_tokens: 2, temperature: 0, user: 'u', some_future_field: { a: 1 } });
  expect(ok.status).toBe(200); // unknown fields are ignored, as OpenAI does
  await expectError(await fetch(`${url}/v1/nope`), 404, null, /Unknown route/);
  await expectError(await post('/v1/completions', { model: 'stories', prompt: 'x' }, { 'content-type': 'text/plain' }), 400, null); // a body that is not a JSON object
});

test('a request that can never fit the KV cache is a 400 naming the sizes; the server goes on', async () => {
  await expectError(await post('/v1/completions', { model: 'stories', prompt: [1, ...new Array(600).fill(5)] }), 400, 'prompt', /at most 512 tokens/);
  expect((await post('/v1/completions', { model: 'stories', prompt: 'Once', max_tokens: 2 })).status).toBe(200);
});

test('/tokenize and /detokenize', async () => {
  const t = await (await post('/tokenize', { model: 'stories', prompt: 'Once upon a time' })).json() as { tokens: number[]; count: number; max_model_len: number };
  expect(t.tokens).toEqual(model.tokenizer.encode('Once upon a time'));
  expect(t).toMatchObject({ count: t.tokens.length, max_model_len: 512 });
  const d = await (await post('/detokenize', { model: 'stories', tokens: t.tokens.slice(1) })).json() as { prompt: string };
  expect(d.prompt).toBe(model.tokenizer.decode(t.tokens.slice(1)));
  await expectError(await post('/detokenize', { tokens: [1, 9999] }), 400, 'tokens.1');
});

test('/health is 503 while the model loads and 200 when it is ready; /v1 answers 503 meanwhile', async () => {
  let release!: (m: Model) => void;
  const pending = new Promise<Model>((r) => { release = r; });
  const s = await createServer(pending, { modelName: 'later' });
  const u = await s.listen({ port: 0 });
  try {
    expect((await fetch(`${u}/health`)).status).toBe(503);
    await expectError(await fetch(`${u}/v1/models`), 503, null, /loading/);
    release(await loadModel(MODEL, { device: 'cpu' }));
    await new Promise((r) => setTimeout(r, 10));
    expect(await (await fetch(`${u}/health`)).json()).toEqual({ status: 'ok' });
  } finally {
    await s.drain(1000);
  }
});

test('headers: too many or too large are refused by the HTTP server', async () => {
  const many: Record<string, string> = {};
  for (let i = 0; i < 150; i++) many[`x-h${i}`] = 'v';
  const r = await fetch(`${url}/health`, { headers: many });
  expect(r.status).toBe(200); // beyond maxHeadersCount (100) the rest are dropped, not parsed
  const huge = await fetch(`${url}/health`, { headers: { 'x-big': 'a'.repeat(32 * 1024) } }).then((x) => x.status, () => 431);
  expect(huge).toBe(431);
});

test('eetPlugin mounts the routes under a prefix in an existing Fastify app, beside its own routes', async () => {
  const app = Fastify();
  app.get('/mine', async () => ({ mine: true }));
  await app.register(eetPlugin, { model, modelName: 'mounted', apiKey: 'k', prefix: '/llm' });
  const u = await app.listen({ port: 0, host: '127.0.0.1' });
  try {
    expect(await (await fetch(`${u}/mine`)).json()).toEqual({ mine: true });
    expect((await fetch(`${u}/llm/v1/models`)).status).toBe(401);
    const r = await fetch(`${u}/llm/v1/completions`, {
      method: 'POST', headers: { authorization: 'Bearer k', 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'mounted', prompt: 'Once upon a time', max_tokens: 6, temperature: 0 }),
    });
    const ref = await model.generate('Once upon a time', { maxNewTokens: 6, temperature: 0 });
    expect(((await r.json()) as { choices: Array<{ text: string }> }).choices[0].text).toBe(ref.text);
    expect((await fetch(`${u}/nothing`)).status).toBe(404);
  } finally {
    await app.close();
  }
});

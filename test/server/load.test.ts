// The server under load and faults: 64 concurrent streaming clients all get their solo answers; a client that
// disconnects mid-stream has its sequence gone from the engine (/metrics) shortly after; past --max-queued the
// rest get 429 and what was accepted completes; SIGTERM while streaming drains and exits 0 (`eet serve` in a child).
import { spawn } from 'child_process';
import OpenAI from 'openai';
import * as path from 'path';
import { loadModel, Model } from '../../lib/model';
import { createServer, EetServer } from '../../lib/server';
import { MODEL, references } from '../util/stories260k';

const REFS = references();
const PROMPTS = ['Once upon a time', 'Lily and Tom', 'The cat', 'One day', 'Tim had a', 'The sun', 'A little bird', 'Sam and'];

let model: Model;
let server: EetServer;
let url: string;
beforeAll(async () => {
  model = await loadModel(MODEL, { device: 'cpu', maxBatch: 16 });
  server = await createServer(model, { modelName: 'stories' });
  url = await server.listen({ port: 0 });
});
afterAll(async () => { await server?.drain(1000); });

async function metric(name: string): Promise<number> {
  const text = await (await fetch(`${url}/metrics`)).text();
  const m = new RegExp(`^${name} (\\S+)$`, 'm').exec(text);
  return m ? Number(m[1]) : NaN;
}

test('64 concurrent streaming clients: every one gets the text its prompt gets alone', async () => {
  const solo = new Map<string, string>();
  for (const p of PROMPTS) solo.set(p, (await model.generate(p, { maxNewTokens: 24, temperature: 0 })).text);
  const client = new OpenAI({ baseURL: `${url}/v1`, apiKey: 'none', maxRetries: 0 });
  const texts = await Promise.all(Array.from({ length: 64 }, async (_, i) => {
    const p = PROMPTS[i % PROMPTS.length];
    let text = '';
    for await (const c of await client.completions.create({ model: 'stories', prompt: p, max_tokens: 24, temperature: 0, stream: true })) {
      text += c.choices[0]?.text ?? '';
    }
    return [p, text] as const;
  }));
  for (const [p, text] of texts) expect(text).toBe(solo.get(p));
  expect(await metric('eet_num_requests_running')).toBe(0);
});

test('a client that disconnects mid-stream: its sequence leaves the engine', async () => {
  const ac = new AbortController();
  const r = await fetch(`${url}/v1/completions`, {
    method: 'POST', headers: { 'content-type': 'application/json' }, signal: ac.signal,
    body: JSON.stringify({ model: 'stories', prompt: REFS[0].prompt, max_tokens: 400, temperature: 0, stream: true }),
  });
  const reader = r.body!.getReader();
  await reader.read();
  await reader.read();
  expect(await metric('eet_num_requests_running')).toBe(1);
  const generated = await metric('eet_generation_tokens_total');
  ac.abort();
  let running = 1;
  for (let i = 0; i < 200 && running > 0; i++) {
    await new Promise((res) => setTimeout(res, 5));
    running = await metric('eet_num_requests_running');
  }
  expect(running).toBe(0);
  expect(await metric('eet_kv_blocks_used')).toBe(0);
  expect(await metric('eet_generation_tokens_total') - generated).toBeLessThan(400); // cut, not run to the end
});

test('n > 1 decodes through the shared-prefix path: /metrics counts it with the block arithmetic', async () => {
  // A 60-token prompt of run.c's own ids (BOS first): 3 full 16-token KV blocks shared by the n = 4 forks; each of
  // the 7 decode steps after the prompt pass attends them once for all 4 (48 keys × 3 other forks saved).
  const prompt = [1, ...REFS[0].printedIds.slice(0, 59)];
  const tokens0 = await metric('eet_shared_prefix_tokens_total');
  const saved0 = await metric('eet_shared_prefix_keys_saved_total');
  const r = await fetch(`${url}/v1/completions`, {
    method: 'POST', headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ model: 'stories', prompt, max_tokens: 8, temperature: 0, n: 4, ignore_eos: true }),
  });
  expect(r.status).toBe(200);
  const body = await r.json() as { choices: Array<{ text: string; finish_reason: string }> };
  expect(body.choices).toHaveLength(4);
  expect(new Set(body.choices.map((c) => c.text)).size).toBe(1); // greedy: the 4 samples agree
  if (body.choices[0].finish_reason !== 'length') throw new Error(`expected 8 tokens, finished by ${body.choices[0].finish_reason}`);
  expect(await metric('eet_shared_prefix_tokens_total') - tokens0).toBe(4 * 7);
  expect(await metric('eet_shared_prefix_keys_saved_total') - saved0).toBe(48 * 3 * 7);
});

test('overload: past maxQueued requests get 429 with Retry-After; the rest complete', async () => {
  const small = await loadModel(MODEL, { device: 'cpu', maxBatch: 1, maxQueued: 4 });
  const s = await createServer(small, { modelName: 'small' });
  const u = await s.listen({ port: 0 });
  try {
    const rs = await Promise.all(Array.from({ length: 20 }, () => fetch(`${u}/v1/completions`, {
      method: 'POST', headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'small', prompt: 'Once upon a time', max_tokens: 30, temperature: 0 }),
    })));
    const limited = rs.filter((r) => r.status === 429);
    const ok = rs.filter((r) => r.status === 200);
    expect(limited.length).toBeGreaterThan(0);
    expect(ok.length + limited.length).toBe(20);
    expect(ok.length).toBeGreaterThanOrEqual(4);
    expect(limited[0].headers.get('retry-after')).toBe('1');
    expect((await limited[0].json() as { error: { code: string } }).error.code).toBe('rate_limit_exceeded');
    const texts = await Promise.all(ok.map(async (r) => (await r.json() as { choices: Array<{ text: string }> }).choices[0].text));
    expect(new Set(texts).size).toBe(1);
  } finally {
    await s.drain(1000);
  }
});

test('SIGTERM while streaming: eet serve drains and exits 0', async () => {
  const cli = path.resolve(__dirname, '..', '..', 'dist', 'cli', 'main.js');
  const child = spawn(process.execPath, [cli, 'serve', MODEL, '--port', '0', '--device', 'cpu', '--grace-ms', '3000'], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => { stderr += d.toString(); });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  try {
    for (let i = 0; i < 500 && !/ready in/.test(stderr); i++) await new Promise((r) => setTimeout(r, 10));
    const u = /listening on (\S+)/.exec(stderr)![1];
    const r = await fetch(`${u}/v1/completions`, {
      method: 'POST', headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'stories260K.bin', prompt: 'Once upon a time', max_tokens: 300, temperature: 0, stream: true }),
    });
    const reader = r.body!.getReader();
    await reader.read();
    child.kill('SIGTERM');
    let body = '';
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      body += Buffer.from(value).toString();
    }
    expect(await exited).toBe(0);
    expect(stderr).toMatch(/SIGTERM: draining/);
    expect(body).toMatch(/data: /);
  } finally {
    if (child.exitCode === null) child.kill('SIGKILL');
  }
}, 60000);

// `eet serve` as the official OpenAI client (the `openai` npm package, a client nobody here wrote) sees it, on
// loopback: completions and chat (plain and streamed, with usage), n > 1, stop, seed, embeddings, and the SDK's error
// types for 400 / 401 / 404 / 429. What comes back is compared with the library's own generate() / chat() / embed()
// on the same model — the server must add transport, not change answers.
import OpenAI from 'openai';
import * as path from 'path';
import { loadModel, Model } from '../../lib/model';
import { createServer, EetServer } from '../../lib/server';
import { hfTensors, randomWeights } from '../util/engine-helpers';
import { CHAT_TEMPLATE, bpeTokenizer, removeFolders, wordPieceTokenizer, writeFolder } from '../util/hf-folders';
import { MODEL } from '../util/stories260k';

const KEY = 'sk-test-1234';
let model: Model;
let server: EetServer;
let client: OpenAI;

beforeAll(async () => {
  model = await loadModel(MODEL, { device: 'cpu', maxBatch: 8 });
  server = await createServer(model, { apiKey: KEY, modelName: 'stories' });
  const url = await server.listen({ port: 0 });
  client = new OpenAI({ baseURL: `${url}/v1`, apiKey: KEY, maxRetries: 0 });
});
afterAll(async () => {
  await server?.drain(1000);
  removeFolders();
});

describe('completions', () => {
  test('greedy text equals model.generate(); usage counts the tokens', async () => {
    const r = await client.completions.create({ model: 'stories', prompt: 'Once upon a time', max_tokens: 30, temperature: 0 });
    const ref = await model.generate('Once upon a time', { maxNewTokens: 30, temperature: 0 });
    expect(r.object).toBe('text_completion');
    expect(r.model).toBe('stories');
    expect(r.choices).toHaveLength(1);
    expect(r.choices[0]).toMatchObject({ index: 0, text: ref.text, finish_reason: 'length' });
    expect(r.usage).toMatchObject({ prompt_tokens: ref.usage.promptTokens, completion_tokens: 30, total_tokens: ref.usage.promptTokens + 30 });
  });

  test('streamed chunks add up to the same text; include_usage sends a final usage chunk with no choices', async () => {
    const plain = await client.completions.create({ model: 'stories', prompt: 'Lily and Tom', max_tokens: 25, temperature: 0 });
    const stream = await client.completions.create({
      model: 'stories', prompt: 'Lily and Tom', max_tokens: 25, temperature: 0, stream: true, stream_options: { include_usage: true },
    });
    let text = '';
    let finish: string | null = null;
    let usage;
    for await (const c of stream) {
      if (c.usage) {
        usage = c.usage;
        expect(c.choices).toEqual([]);
      }
      for (const ch of c.choices) {
        text += ch.text;
        finish = ch.finish_reason ?? finish;
      }
    }
    expect(text).toBe(plain.choices[0].text);
    expect(finish).toBe(plain.choices[0].finish_reason);
    expect(usage).toMatchObject({ completion_tokens: plain.usage!.completion_tokens, prompt_tokens: plain.usage!.prompt_tokens });
  });

  test('several prompts × n: choices i × n + j; a seed makes sampling reproducible; temperature 0 samples agree', async () => {
    const req = { model: 'stories', prompt: ['Once upon a time', 'The cat'], max_tokens: 12, temperature: 1, n: 2, seed: 7 };
    const a = await client.completions.create(req);
    const b = await client.completions.create(req);
    expect(a.choices.map((c) => c.index)).toEqual([0, 1, 2, 3]);
    expect(a.choices.map((c) => c.text)).toEqual(b.choices.map((c) => c.text));
    const lib = await model.generate(['Once upon a time', 'The cat'], { maxNewTokens: 12, temperature: 1, n: 2, seed: 7n });
    expect(a.choices.map((c) => c.text)).toEqual(lib.map((r) => r.text));
    const g = await client.completions.create({ model: 'stories', prompt: 'The cat', max_tokens: 10, temperature: 0, n: 3 });
    expect(new Set(g.choices.map((c) => c.text)).size).toBe(1);
  });

  test('stop strings cut the text; token-id prompts work', async () => {
    const full = await model.generate('Once upon a time', { maxNewTokens: 40, temperature: 0 });
    const stop = ' named';
    expect(full.text).toContain(stop);
    const r = await client.completions.create({ model: 'stories', prompt: 'Once upon a time', max_tokens: 40, temperature: 0, stop: [stop, 'zzz'] });
    expect(r.choices[0]).toMatchObject({ text: full.text.slice(0, full.text.indexOf(stop)), finish_reason: 'stop' });
    const ids = model.tokenizer.encode('Once upon a time');
    const byIds = await client.completions.create({ model: 'stories', prompt: ids, max_tokens: 40, temperature: 0 });
    expect(byIds.choices[0].text).toBe(full.text);
  });
});

describe('logprobs and penalties', () => {
  test('completions logprobs: the raw log-probability of each token and the top alternatives, as the library reports them', async () => {
    const lib = await model.generate('Once upon a time', { maxNewTokens: 8, temperature: 0, topLogprobs: 3 });
    const r = await client.completions.create({ model: 'stories', prompt: 'Once upon a time', max_tokens: 8, temperature: 0, logprobs: 3 });
    const lp = r.choices[0].logprobs!;
    expect(lp.token_logprobs).toEqual(lib.rawLogprobs);
    expect(lp.tokens!.join('')).toBe(r.choices[0].text);
    expect(lp.text_offset![0]).toBe(0);
    lp.top_logprobs!.forEach((top, k) => {
      const values = Object.values(top!);
      expect(values.length).toBeGreaterThan(0);
      expect(values.length).toBeLessThanOrEqual(3); // ids with the same text share a key
      expect(Math.max(...values)).toBeCloseTo(lib.topLogprobs![k][0].logprob, 9);
    });
  });

  test('chat-style logprobs streamed per token equal the non-streamed ones; penalties reach the engine', async () => {
    const lib = await model.generate('The cat', { maxNewTokens: 10, temperature: 0, frequencyPenalty: 1.5, presencePenalty: 0.5, topLogprobs: 2 });
    const r = await client.completions.create({
      model: 'stories', prompt: 'The cat', max_tokens: 10, temperature: 0, frequency_penalty: 1.5, presence_penalty: 0.5, logprobs: 2,
    });
    expect(r.choices[0].text).toBe(lib.text);
    expect(r.choices[0].logprobs!.token_logprobs).toEqual(lib.rawLogprobs);
    const stream = await client.completions.create({
      model: 'stories', prompt: 'The cat', max_tokens: 10, temperature: 0, frequency_penalty: 1.5, presence_penalty: 0.5, logprobs: 2, stream: true,
    });
    const streamed: number[] = [];
    const offsets: number[] = [];
    for await (const c of stream) for (const ch of c.choices) if (ch.logprobs) { streamed.push(...ch.logprobs.token_logprobs!); offsets.push(...ch.logprobs.text_offset!); }
    expect(streamed).toEqual(lib.rawLogprobs);
    expect(offsets).toEqual(r.choices[0].logprobs!.text_offset);
  });
});

describe('errors as the SDK types them', () => {
  test('400 BadRequestError names the field; 404 NotFoundError for another model; 401 AuthenticationError', async () => {
    const bad = await client.completions.create({ model: 'stories', prompt: 'x', temperature: 5 }).catch((e: unknown) => e);
    expect(bad).toBeInstanceOf(OpenAI.BadRequestError);
    expect(bad).toMatchObject({ status: 400, param: 'temperature', type: 'invalid_request_error' });
    const missing = await client.completions.create({ model: 'gpt-4', prompt: 'x' }).catch((e: unknown) => e);
    expect(missing).toBeInstanceOf(OpenAI.NotFoundError);
    expect(missing).toMatchObject({ status: 404, code: 'model_not_found' });
    const anon = new OpenAI({ baseURL: client.baseURL, apiKey: 'wrong', maxRetries: 0 });
    const unauthorized = await anon.models.list().catch((e: unknown) => e);
    expect(unauthorized).toBeInstanceOf(OpenAI.AuthenticationError);
    expect(await client.models.list()).toMatchObject({ data: [{ id: 'stories', object: 'model', owned_by: 'eet' }] });
  });

  test('429 RateLimitError (with Retry-After) past maxQueued; the requests that were accepted complete', async () => {
    const small = await loadModel(MODEL, { device: 'cpu', maxBatch: 1, maxQueued: 2 });
    const s = await createServer(small, { modelName: 'small' });
    const c = new OpenAI({ baseURL: `${await s.listen({ port: 0 })}/v1`, apiKey: 'none', maxRetries: 0 });
    try {
      const outs = await Promise.all(Array.from({ length: 12 }, () =>
        c.completions.create({ model: 'small', prompt: 'Once upon a time', max_tokens: 40, temperature: 0 }).catch((e: unknown) => e)));
      const limited = outs.filter((o) => o instanceof OpenAI.RateLimitError) as InstanceType<typeof OpenAI.RateLimitError>[];
      expect(limited.length).toBeGreaterThan(0);
      expect(limited[0].headers.get('retry-after')).toBe('1');
      const done = outs.filter((o) => !(o instanceof Error)) as OpenAI.Completion[];
      expect(done.length).toBeGreaterThanOrEqual(2);
      expect(done.length + limited.length).toBe(12);
      for (const d of done) expect(d.choices[0].text).toBe(done[0].choices[0].text);
    } finally {
      await s.drain(1000);
    }
  });
});

describe('chat and embeddings (tiny Hugging Face models)', () => {
  let chatServer: EetServer;
  let chatModel: Model;
  let chat: OpenAI;
  beforeAll(async () => {
    const V = 48;
    const cfg = { arch: 'llama', dim: 32, hiddenDim: 40, nLayers: 2, nHeads: 4, nKvHeads: 2, headDim: 8, vocabSize: V, maxSeqLen: 64, tiedEmbeddings: false } as const;
    const dir = await writeFolder({
      config: {
        architectures: ['LlamaForCausalLM'], model_type: 'llama', hidden_size: 32, intermediate_size: 40, num_hidden_layers: 2, num_attention_heads: 4,
        num_key_value_heads: 2, vocab_size: V, max_position_embeddings: 64, rms_norm_eps: 1e-5, rope_theta: 10000, tie_word_embeddings: false,
        torch_dtype: 'float32', bos_token_id: 1, eos_token_id: 2, hidden_act: 'silu',
      },
      tensors: hfTensors(cfg, randomWeights(cfg, 31)),
      tokenizer: bpeTokenizer(V, true),
      tokenizerConfig: { bos_token: '<s>', eos_token: '</s>', unk_token: '<unk>', add_bos_token: true, chat_template: CHAT_TEMPLATE },
    });
    chatModel = await loadModel(dir, { device: 'cpu', maxBatch: 4 });
    chatServer = await createServer(chatModel, { modelName: path.basename(dir) });
    chat = new OpenAI({ baseURL: `${await chatServer.listen({ port: 0 })}/v1`, apiKey: 'none', maxRetries: 0 });
  });
  afterAll(async () => { await chatServer?.drain(1000); });

  test('chat.completions = model.chat(); streamed: the role first, finish_reason last, the same content', async () => {
    const messages = [{ role: 'user' as const, content: 'hello world' }];
    const ref = await chatModel.chat(messages, { maxNewTokens: 8, temperature: 0 });
    const r = await chat.chat.completions.create({ model: path.basename(chatModel.config.path), messages, max_tokens: 8, temperature: 0 });
    expect(r.object).toBe('chat.completion');
    expect(r.choices[0].message).toMatchObject({ role: 'assistant', content: ref.text });
    const stream = await chat.chat.completions.create({
      model: path.basename(chatModel.config.path), messages, max_completion_tokens: 8, temperature: 0, stream: true,
    });
    const chunks = [];
    for await (const c of stream) chunks.push(c);
    expect(chunks[0].choices[0].delta.role).toBe('assistant');
    expect(chunks.map((c) => c.choices[0]?.delta.content ?? '').join('')).toBe(ref.text);
    expect(chunks.at(-1)!.choices[0].finish_reason).toBe(ref.finishReason === 'length' ? 'length' : 'stop');
    expect(chunks.slice(0, -1).every((c) => c.choices[0].finish_reason === null)).toBe(true);
  });

  test('chat logprobs: each token with its raw log-probability, bytes and top_logprobs, as the library reports them', async () => {
    const messages = [{ role: 'user' as const, content: 'hello cat' }];
    const lib = await chatModel.chat(messages, { maxNewTokens: 6, temperature: 0, topLogprobs: 2 });
    const r = await chat.chat.completions.create({
      model: path.basename(chatModel.config.path), messages, max_tokens: 6, temperature: 0, logprobs: true, top_logprobs: 2,
    });
    const content = r.choices[0].logprobs!.content!;
    expect(content.map((c) => c.logprob)).toEqual(lib.rawLogprobs);
    content.forEach((c, k) => {
      expect(c.bytes).toEqual(Array.from(Buffer.from(c.token, 'utf8')));
      expect(c.top_logprobs.map((t) => t.logprob)).toEqual(lib.topLogprobs![k].map((t) => t.logprob));
    });
    const missing = await chat.chat.completions.create({ model: path.basename(chatModel.config.path), messages, top_logprobs: 2 }).catch((x: unknown) => x);
    expect(missing).toMatchObject({ status: 400, param: 'top_logprobs' });
  });

  test('a model without a chat template, and unsupported features, get a clear 400', async () => {
    const e = await client.chat.completions.create({ model: 'stories', messages: [{ role: 'user', content: 'hi' }] }).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(OpenAI.BadRequestError);
    expect((e as Error).message).toMatch(/chat template/);
    const name = path.basename(chatModel.config.path);
    const rf = await chat.chat.completions.create({ model: name, messages: [{ role: 'user', content: 'x' }], response_format: { type: 'json_object' } }).catch((x: unknown) => x);
    expect(rf).toMatchObject({ status: 400, param: 'response_format.type' });
  });

  test('embeddings = model.embed() (float and base64); a decoder refuses them', async () => {
    const V = 32;
    const cfg = { arch: 'bert', dim: 32, hiddenDim: 48, nLayers: 1, nHeads: 4, nKvHeads: 4, headDim: 8, vocabSize: V, maxSeqLen: 32, nTokenTypes: 2, tiedEmbeddings: false } as const;
    const dir = await writeFolder({
      config: {
        architectures: ['BertModel'], model_type: 'bert', hidden_size: 32, intermediate_size: 48, num_hidden_layers: 1, num_attention_heads: 4,
        vocab_size: V, max_position_embeddings: 32, type_vocab_size: 2, layer_norm_eps: 1e-12, hidden_act: 'gelu', torch_dtype: 'float32',
      },
      tensors: hfTensors(cfg, randomWeights(cfg, 32)),
      tokenizer: wordPieceTokenizer(V),
      tokenizerConfig: {},
    });
    const bert = await loadModel(dir, { device: 'cpu' });
    const s = await createServer(bert, { modelName: 'bert' });
    const c = new OpenAI({ baseURL: `${await s.listen({ port: 0 })}/v1`, apiKey: 'none', maxRetries: 0 });
    try {
      const texts = ['the cat sat on the mat', 'a dog ran'];
      const ref = await bert.embed(texts);
      const r = await c.embeddings.create({ model: 'bert', input: texts, encoding_format: 'float' });
      expect(r.data.map((d) => d.index)).toEqual([0, 1]);
      r.data.forEach((d, i) => d.embedding.forEach((v, k) => expect(v).toBeCloseTo(ref[i][k], 6)));
      const b64 = await c.embeddings.create({ model: 'bert', input: 'a dog ran' }); // the SDK asks for base64 and decodes it
      b64.data[0].embedding.forEach((v, k) => expect(v).toBeCloseTo(ref[1][k], 6));
      const refused = await client.embeddings.create({ model: 'stories', input: 'x' }).catch((x: unknown) => x);
      expect(refused).toBeInstanceOf(OpenAI.BadRequestError);
    } finally {
      await s.drain(1000);
    }
  });
});

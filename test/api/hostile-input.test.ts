// Issue 11, items 5–8: what a model file or a caller can hand the package to hang it or to get an uncoded error.
//   5  a chat template that loops for ever or exhausts memory (rendered off the JS thread, within a budget); a
//      tokenizer.json id of 1e9 (a billion-slot sparse array) or past the model's vocabulary
//   6  a 100K-character prompt (refused before encoding; the merge is linearithmic: test/unit/merge.test.ts)
//   7  a post-processor without `single`, decode(null), an out-of-vocabulary `prev`
//   8  a GGUF SentencePiece vocabulary without "▁" (refused at load, not at every prompt)
import * as fs from 'fs';
import * as path from 'path';
import type { ModelFileConfig } from '../../lib/arch';
import { gv } from '../../lib/formats/gguf-writer';
import { PROMPT_CHARS_PER_TOKEN } from '../../lib/limits';
import { loadModel, type Model } from '../../lib/model';
import { parseLlama2cTokenizer } from '../../lib/tokenizers/llama2c';
import { TEMPLATE_LIMITS } from '../../lib/tokenizers/template';
import { expectCode, hfTensors, randomWeights } from '../util/engine-helpers';
import { LLAMA_SPEC, removeTmp, tinyVocab, tinyWeights, writeTinyGGUF } from '../util/gguf-models';
import { CHAT_TEMPLATE, bpeTokenizer, removeFolders, writeFolder, type Json } from '../util/hf-folders';
import { MODEL, TOKENIZER } from '../util/stories260k';

const V = 48;
const LLAMA_JSON = { model_type: 'llama', hidden_size: 32, intermediate_size: 40, num_hidden_layers: 1, num_attention_heads: 4, vocab_size: V, max_position_embeddings: 64 };
const LLAMA_CFG: ModelFileConfig = { arch: 'llama', dim: 32, hiddenDim: 40, nLayers: 1, nHeads: 4, nKvHeads: 4, headDim: 8, vocabSize: V, maxSeqLen: 64,
  normEps: 1e-6, ropeTheta: 10000, ropeLayout: 'half', tiedEmbeddings: false };
const TENSORS = hfTensors(LLAMA_CFG, randomWeights(LLAMA_CFG, 3));
const TOK_CONFIG = { bos_token: '<s>', eos_token: '</s>', unk_token: '<unk>', chat_template: CHAT_TEMPLATE };

/** A tiny llama folder; `edit` changes its tokenizer.json / tokenizer_config.json first. */
async function folder(edit: (tok: Json, config: Json) => void = () => {}): Promise<string> {
  const tok = bpeTokenizer(V, true);
  const config: Json = { ...TOK_CONFIG };
  edit(tok, config);
  return writeFolder({ config: LLAMA_JSON, tensors: TENSORS, tokenizer: tok, tokenizerConfig: config });
}

/** Longest gap between ticks of a 10 ms interval while `p` runs: how long the event loop was blocked. */
async function longestStall<T>(p: () => Promise<T>): Promise<{ stall: number; result: PromiseSettledResult<T> }> {
  let last = performance.now(), stall = 0;
  const timer = setInterval(() => { const now = performance.now(); stall = Math.max(stall, now - last); last = now; }, 10);
  const [result] = await Promise.allSettled([p()]);
  clearInterval(timer);
  return { stall: Math.max(stall, performance.now() - last), result };
}

afterAll(() => {
  removeFolders();
  removeTmp();
});

describe('chat templates run within a budget, off the JS thread (item 5)', () => {
  let model: Model;
  beforeAll(async () => { model = await loadModel(await folder(), { device: 'cpu', maxBatch: 1 }); });
  afterAll(() => model?.dispose());

  const hostile = async (template: string): Promise<Model> => loadModel(await folder((_, c) => { c.chat_template = template; }), { device: 'cpu', maxBatch: 1 });

  test('a loop of 10^8 empty iterations: ERR_MODEL_FORMAT after the time budget, the event loop free meanwhile', async () => {
    const m = await hostile('{% for i in range(10000) %}{% for j in range(10000) %}{% endfor %}{% endfor %}');
    const { stall, result } = await longestStall(() => m.applyChatTemplate([{ role: 'user', content: 'hi' }]));
    expect(result.status).toBe('rejected');
    expect((result as PromiseRejectedResult).reason).toMatchObject({ code: 'ERR_MODEL_FORMAT', message: expect.stringMatching(new RegExp(`did not finish within ${TEMPLATE_LIMITS.timeoutMs} ms`)) });
    // Rendered on this thread, the loop would have held it for the whole budget.
    expect(stall).toBeLessThan(TEMPLATE_LIMITS.timeoutMs / 2);
    await m.dispose();
  }, 30_000);

  test('range(10^8) needs gigabytes: ERR_MODEL_FORMAT, and this process lives on', async () => {
    const m = await hostile('{% for i in range(100000000) %}{% endfor %}x');
    await expectCode(m.chat([{ role: 'user', content: 'hi' }], { maxNewTokens: 1 }), 'ERR_MODEL_FORMAT', /memory|did not finish/);
    await m.dispose();
  }, 30_000);

  test('after templates that failed, the next render works (a fresh helper); messages that cannot be copied are an argument error', async () => {
    expect(await model.applyChatTemplate([{ role: 'user', content: 'hello' }])).toBe('<s><|user|>hello<|assistant|>');
    const odd = [{ role: 'user', content: 'x', extra: (): number => 1 }];
    await expectCode(model.applyChatTemplate(odd), 'ERR_INVALID_ARG', /messages/);
    expect(await model.applyChatTemplate([{ role: 'user', content: 'again' }], { addGenerationPrompt: false })).toBe('<s><|user|>again');
  });

  test('a rendered conversation longer than the context can hold is refused before encoding, naming messages', async () => {
    const long = 'a'.repeat(64 * PROMPT_CHARS_PER_TOKEN + 1);
    await expectCode(model.chat([{ role: 'user', content: long }]), 'ERR_INVALID_ARG', /for messages \(the rendered chat template\) but received a string of/);
  });
});

describe('tokenizer.json ids are checked against the model\'s vocabulary at load (items 5, 7)', () => {
  test('a vocab id of 1e9 (a billion-slot sparse array in the tokenizer library): ERR_MODEL_FORMAT at once', async () => {
    const d = await folder((tok) => { (tok.model as Json).vocab = { ...((tok.model as Json).vocab as Json), '<far>': 1e9 }; });
    await expectCode(loadModel(d, { device: 'cpu' }), 'ERR_MODEL_FORMAT', /"<far>" has id 1000000000, expected an integer from 0 to 47/);
  }, 15_000);

  test('ids at or past the model\'s vocabulary, negative or fractional ids', async () => {
    for (const [edit, re] of [
      [(tok: Json) => { (tok.added_tokens as Json[]).push({ id: V, content: '<x>', special: true }); }, /added_tokens\[5\] has id 48/],
      [(tok: Json) => { ((tok.model as Json).vocab as Json).a = -1; }, /"a" has id -1/],
      [(tok: Json) => { ((tok.model as Json).vocab as Json).a = 6.5; }, /"a" has id 6\.5/],
      [(tok: Json) => { (tok.model as Json).vocab = 'abc'; }, /model\.vocab is neither/],
    ] as const) {
      await expectCode(loadModel(await folder(edit), { device: 'cpu' }), 'ERR_MODEL_FORMAT', re);
    }
  });

  test('a TemplateProcessing post-processor without `single` fails at load, not with a TypeError at generate', async () => {
    const d = await folder((tok) => { delete (tok.post_processor as Json).single; });
    await expectCode(loadModel(d, { device: 'cpu' }), 'ERR_MODEL_FORMAT', /post_processor \(TemplateProcessing\) has no "single" list/);
  });

  test('any other post-processor the library cannot run fails at load too (probe encode)', async () => {
    // BertProcessing without `sep`: the library builds it, then throws a TypeError on every encode.
    const d = await folder((tok) => { tok.post_processor = { type: 'BertProcessing', cls: ['<s>', 1] }; });
    await expectCode(loadModel(d, { device: 'cpu' }), 'ERR_MODEL_FORMAT', /failed to encode the text/);
  });
});

describe('decode() and encode() arguments (item 7)', () => {
  let hf: Model, llama2c: Model;
  beforeAll(async () => {
    hf = await loadModel(await folder(), { device: 'cpu', maxBatch: 1 });
    llama2c = await loadModel(MODEL, { device: 'cpu', maxBatch: 1 });
  });
  afterAll(async () => { await hf?.dispose(); await llama2c?.dispose(); });

  test.each(['hf', 'llama2c'])('%s: bad ids and prev name the parameter', async (which) => {
    const m = which === 'hf' ? hf : llama2c;
    const last = m.config.vocabSize - 1;
    const decode = m.tokenizer.decode as (ids: unknown, prev?: unknown) => string;
    await expectCode(() => decode(null), 'ERR_INVALID_ARG', /for ids but received null/);
    await expectCode(() => decode('abc'), 'ERR_INVALID_ARG', /for ids but received "abc"/);
    await expectCode(() => decode([1, 2.5]), 'ERR_INVALID_ARG', /for ids\[1\] but received 2\.5/);
    await expectCode(() => decode([last + 1]), 'ERR_INVALID_ARG', new RegExp(`between 0 and ${last} for ids\\[0\\]`));
    // eslint-disable-next-line no-sparse-arrays
    await expectCode(() => decode([1, , 2]), 'ERR_INVALID_ARG', /for ids\[1\] but received undefined/);
    await expectCode(() => decode([1], last + 1), 'ERR_INVALID_ARG', new RegExp(`between 0 and ${last} for prev but received ${last + 1}`));
    await expectCode(() => decode([1], -1), 'ERR_INVALID_ARG', /for prev/);
    await expectCode(() => (m.tokenizer.encode as (t: unknown) => number[])(7), 'ERR_INVALID_ARG', /for text/);
    expect(typeof decode([1, 2], last)).toBe('string');
  });
});

describe('long text prompts are refused before they are encoded (item 6)', () => {
  let m: Model;
  beforeAll(async () => { m = await loadModel(MODEL, { device: 'cpu', maxBatch: 2 }); });
  afterAll(() => m?.dispose());

  test('100,000 characters against a 512-token context: ERR_INVALID_ARG naming the prompt and its length, without encoding', async () => {
    const max = 512 * PROMPT_CHARS_PER_TOKEN;
    const text = 'Once upon a time '.repeat(6000).slice(0, 100_000);
    const { stall, result } = await longestStall(() => m.generate(text, { maxNewTokens: 1 }));
    expect((result as PromiseRejectedResult).reason).toMatchObject({
      code: 'ERR_INVALID_ARG', message: `Expected at most ${max} characters (512 tokens of context × ${PROMPT_CHARS_PER_TOKEN}) for prompt but received a string of 100000 characters`,
    });
    expect(stall).toBeLessThan(500);
    await expectCode(m.generate(['ok', text], { maxNewTokens: 1 }), 'ERR_INVALID_ARG', /for prompts\[1\] but received a string of 100000 characters/);
    await expectCode(m.generate({ input: text, prompts: ['x'] }, { maxNewTokens: 1 }), 'ERR_INVALID_ARG', /for input/);
    await expectCode(() => m.tokenizer.encode(text), 'ERR_INVALID_ARG', /for text but received a string of 100000 characters/);
    // A context made shorter than the model's bounds its prompts by its own length.
    const ctx = m.createContext({ maxSeqLen: 16, maxBatch: 1 });
    await expectCode(ctx.generate('x'.repeat(16 * PROMPT_CHARS_PER_TOKEN + 1), { maxNewTokens: 1 }), 'ERR_INVALID_ARG', /at most 1024 characters/);
    await ctx.dispose();
  });

  test('text at the bound passes the character check and is refused by its token count instead', async () => {
    await expectCode(m.generate('a b '.repeat(512 * PROMPT_CHARS_PER_TOKEN / 4), { maxNewTokens: 1 }), 'ERR_INVALID_ARG', /Expected at most 512 tokens \(maxSeqLen\)/);
  });
});

describe('numbers the engine holds as float32 (found by the fuzzer)', () => {
  test('rms_norm_eps 1e308 is a format error naming the field, not Infinity passed to the engine', async () => {
    const d = await writeFolder({ config: { ...LLAMA_JSON, rms_norm_eps: 1e308 }, tensors: TENSORS, tokenizer: bpeTokenizer(V, true), tokenizerConfig: TOK_CONFIG });
    await expectCode(loadModel(d, { device: 'cpu' }), 'ERR_MODEL_FORMAT', /rms_norm_eps is 1e\+308, expected a positive number a float32 holds/);
  });

  test('rope_scaling factors likewise, and high_freq_factor must exceed low_freq_factor', async () => {
    const scaling = { rope_type: 'llama3', factor: 8, low_freq_factor: 1, high_freq_factor: 4, original_max_position_embeddings: 16 };
    for (const [edit, re] of [
      [{ factor: 1e308 }, /rope_scaling\.factor is 1e\+308, expected a positive number a float32 holds/],
      [{ low_freq_factor: 4, high_freq_factor: 1 }, /rope_scaling\.high_freq_factor \(1\) is not above low_freq_factor \(4\)/],
    ] as const) {
      const d = await writeFolder({ config: { ...LLAMA_JSON, rope_scaling: { ...scaling, ...edit } }, tensors: TENSORS, tokenizer: bpeTokenizer(V, true), tokenizerConfig: TOK_CONFIG });
      await expectCode(loadModel(d, { device: 'cpu' }), 'ERR_MODEL_FORMAT', re);
    }
  });

  test('rope_theta 1e-300 (zero as a float32) likewise', async () => {
    const d = await writeFolder({ config: { ...LLAMA_JSON, rope_theta: 1e-300 }, tensors: TENSORS, tokenizer: bpeTokenizer(V, true), tokenizerConfig: TOK_CONFIG });
    await expectCode(loadModel(d, { device: 'cpu' }), 'ERR_MODEL_FORMAT', /rope_theta is 1e-300, expected a positive number a float32 holds/);
  });
});

describe('a SentencePiece vocabulary without its dummy-prefix piece fails at load (item 8)', () => {
  test('GGUF: no "▁" piece', async () => {
    const v = tinyVocab(LLAMA_SPEC.vocab);
    const tokens = v.tokens.map((t) => t.replace(/\u2581/g, '_'));
    const { file } = await writeTinyGGUF(LLAMA_SPEC, tinyWeights(LLAMA_SPEC), { metadata: { 'tokenizer.ggml.tokens': gv.arr('string', tokens) } });
    await expectCode(loadModel(file, { device: 'cpu' }), 'ERR_MODEL_FORMAT', /no "▁" piece/);
  });

  test('llama2.c tokenizer: no " " piece', () => {
    const buf = Buffer.from(fs.readFileSync(TOKENIZER));
    const at = buf.indexOf(Buffer.from([1, 0, 0, 0, 0x20]));
    buf[at + 4] = 0x21; // the one-byte piece " " becomes "!"
    expect(() => parseLlama2cTokenizer(buf, path.basename(TOKENIZER))).toThrow(/no " " piece/);
  });
});

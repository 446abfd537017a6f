// GGUF models end to end: tiny random llama (GQA), qwen2 (biases, half-split RoPE) and gpt2 written by the GGUF
// writer in F32 and with Q8_0 matrices, loaded with loadModel(*.gguf) on cpu and emu, against fp64 references
// computed on the weights as the file holds them (Q8_0 dequantized: the engine keeps them int8 + f16 scales and
// runs gemm_q8, whose only departure from the reference is float32 accumulation). Also: the same weights through
// the raw-file path give identical logits; stories260K converted to GGUF by the test reproduces run.c's greedy
// output; malformed metadata and tensors give coded errors.
import * as fs from 'fs';
import { ggufMetadata, ggufTensorName } from '../../lib/arch/gguf';
import { AddonStepResult } from '../../lib/binding';
import { gv, writeGGUF } from '../../lib/formats/gguf-writer';
import { readGGUFModel } from '../../lib/loaders/gguf';
import { readLlama2cCheckpoint } from '../../lib/loaders/llama2c';
import { loadModel } from '../../lib/model';
import { loadLlama2cTokenizer } from '../../lib/tokenizers/llama2c';
import { argmax, buildModel, expectCode, relDiff, removeWeightFiles, request, row, writeWeights, type EngineConfig } from '../util/engine-helpers';
import {
  BERT_SPEC, GPT2_SPEC, LLAMA_SPEC, QWEN2_SPEC, TinySpec, referenceLogits, removeTmp, specConfig, tinyBpeMetadata, tinyWeights, tmpFile, writeTinyGGUF,
} from '../util/gguf-models';
import { MODEL, TOKENIZER, references } from '../util/stories260k';

afterAll(() => { removeTmp(); removeWeightFiles(); });

const PROMPT = [1, 270, 5, 77, 260, 19, 130, 281, 44];
const NEW_TOKENS = 8;
const TOL = { F32: 1e-5, F16: 1e-5, Q8_0: 2e-5 };
const SPECS: TinySpec[] = [LLAMA_SPEC, QWEN2_SPEC, GPT2_SPEC];

describe('GGUF → engine config', () => {
  for (const s of SPECS) {
    test(`${s.arch}: the metadata maps to the engine config; Q8_0 matrices are listed in q8Weights`, async () => {
      const { file } = await writeTinyGGUF(s, tinyWeights(s));
      const m = await readGGUFModel(file);
      expect(m.config).toEqual(specConfig(s));
      expect(m.tokenizerKind).toBe('llama');
      expect(m.tokenizer?.vocabSize).toBe(s.vocab);
      expect(m.chatTemplate).toContain('messages');
      const q = await readGGUFModel((await writeTinyGGUF(s, tinyWeights(s), { q8: true })).file);
      const mats = q.tensors.filter((t) => t.source.shape.length === 2 && t.name !== 'token_embd' && t.name !== 'position_embd');
      expect(q.config.q8Weights).toEqual(mats.map((t) => t.name));
      expect(q.tensors.find((t) => t.name === 'blk.0.ffn_down')?.source.dtype).toBe('q8_0');
    });
  }
});

for (const device of ['cpu', 'emu']) {
  describe(`loadModel(gguf) on ${device} vs the fp64 reference`, () => {
    for (const s of SPECS) {
      for (const type of ['F32', 'F16', 'Q8_0'] as const) {
        test(`${s.arch} ${type}${s.tied ? ' (tied head)' : ''}: logits of every generated token and greedy tokens`, async () => {
          const { file, stored } = await writeTinyGGUF(s, tinyWeights(s), {
            q8: type === 'Q8_0', q8Embeddings: type === 'Q8_0' && s.arch === 'qwen2', f16: type === 'F16',
          });
          const model = await loadModel(file, { device, dtype: 'float32', maxBatch: 1 });
          try {
            expect(model.config.format).toBe('gguf');
            const f32Bytes = [...stored.values()].reduce((a, t) => a + 4 * t.data.length, 0);
            if (type === 'Q8_0') expect(model.memory().weights).toBeLessThan(0.6 * f32Bytes); // int8 + f16 scales
            else expect(model.memory().weights).toBeGreaterThanOrEqual(f32Bytes); // converted to float32
            const out = await model.generate(PROMPT, { temperature: 0, maxNewTokens: NEW_TOKENS, logits: true });
            expect(out.tokens.length).toBeGreaterThan(0);
            const ref = referenceLogits(s, stored, [...PROMPT, ...out.tokens]);
            out.tokens.forEach((tok, i) => {
              const r = ref[PROMPT.length - 1 + i];
              expect(relDiff(out.logits![i], r)).toBeLessThan(TOL[type]);
              expect(tok).toBe(argmax(r));
            });
          } finally {
            await model.dispose();
          }
        });
      }
    }
  });
}

describe('the same weights through the raw-file path and the GGUF path (cpu)', () => {
  for (const s of SPECS) {
    test(`${s.arch}: identical logits at every position`, async () => {
      const w = tinyWeights(s);
      const { file } = await writeTinyGGUF(s, w);
      const cfg: EngineConfig = { ...specConfig(s), dtype: 'float32', device: 'cpu', maxBatch: 1, maxContext: 32, maxStepTokens: 32 };
      const g = await readGGUFModel(file);
      const viaGGUF = await buildModel(cfg, new Map(g.tensors.map((t) => [t.name, t.source])));
      const viaRaw = await buildModel(cfg, writeWeights(w));
      try {
        const run = async (m: typeof viaRaw): Promise<AddonStepResult> => {
          m.startSequence(1n);
          return m.step(request([0], [PROMPT]));
        };
        const a = await run(viaGGUF), b = await run(viaRaw);
        expect(Array.from(a.logits!)).toEqual(Array.from(b.logits!));
      } finally {
        viaGGUF.dispose();
        viaRaw.dispose();
      }
    });
  }
});

describe('bert in GGUF (cpu)', () => {
  test('maps to the engine config; embeddings through the GGUF path equal the raw path (F32) and follow them with Q8_0; loadModel refuses its WordPiece tokenizer', async () => {
    const s = BERT_SPEC;
    const w = tinyWeights(s);
    const meta = { 'tokenizer.ggml.model': gv.str('bert') };
    const { file } = await writeTinyGGUF(s, w, { metadata: meta });
    const g = await readGGUFModel(file);
    expect(g.config).toEqual(specConfig(s));
    expect(g.tokenizerProblem).toMatch(/"bert" is not supported yet/);
    await expectCode(loadModel(file, { device: 'cpu' }), 'ERR_UNSUPPORTED', /tokenizer\.ggml\.model "bert"/);
    const q = await readGGUFModel((await writeTinyGGUF(s, w, { metadata: meta, q8: true })).file);
    expect(q.config.q8Weights).toHaveLength(6 * s.nLayers);
    const cfg: EngineConfig = { ...g.config, dtype: 'float32', device: 'cpu', maxBatch: 2, maxContext: 32, maxStepTokens: 32 };
    const embedReq = {
      tokens: Int32Array.from([...PROMPT, 5, 6, 7]), counts: Int32Array.from([PROMPT.length, 3]),
      tokenTypes: Int32Array.from([...PROMPT.map(() => 0), 1, 1, 1]), pooling: 'mean' as const, normalize: true,
    };
    const models = [
      await buildModel(cfg, new Map(g.tensors.map((t) => [t.name, t.source]))),
      await buildModel(cfg, writeWeights(w)),
      await buildModel({ ...cfg, q8Weights: q.config.q8Weights }, new Map(q.tensors.map((t) => [t.name, t.source]))),
    ];
    try {
      const [viaGGUF, viaRaw, viaQ8] = await Promise.all(models.map((m) => m.embed(embedReq)));
      expect(Array.from(viaGGUF)).toEqual(Array.from(viaRaw));
      expect(relDiff(viaQ8, viaRaw)).toBeLessThan(5e-2);
    } finally {
      for (const m of models) m.dispose();
    }
  });
});

describe('stories260K converted to GGUF (cpu)', () => {
  test('reproduces run.c\'s greedy output for "Once upon a time"', async () => {
    const ckpt = await readLlama2cCheckpoint(MODEL);
    const tok = await loadLlama2cTokenizer(TOKENIZER, ckpt.config.vocabSize);
    const bytes = fs.readFileSync(MODEL);
    const c = ckpt.config;
    const tokens = Array.from({ length: c.vocabSize }, (_, i) => tok.piece(i).replace(/ /g, '\u2581'));
    const types = tokens.map((t, i) => (i === 0 ? 2 : i < 3 ? 3 : /^<0x[0-9A-F]{2}>$/.test(t) ? 6 : 1));
    const file = tmpFile('.gguf');
    await writeGGUF(file, {
      metadata: [
        ...ggufMetadata(c, 'llama'),
        ['tokenizer.ggml.model', gv.str('llama')],
        ['tokenizer.ggml.tokens', gv.arr('string', tokens)],
        ['tokenizer.ggml.scores', gv.arr('float32', tokens.map((_, i) => tok.score(i)))],
        ['tokenizer.ggml.token_type', gv.arr('int32', types)],
        ['tokenizer.ggml.bos_token_id', gv.u32(1)],
        ['tokenizer.ggml.eos_token_id', gv.u32(2)],
      ],
      tensors: ckpt.tensors.map(({ name, source }) => ({
        name: ggufTensorName(name),
        type: 'F32' as const,
        shape: source.shape,
        data: new Float32Array(bytes.buffer.slice(bytes.byteOffset + source.offset, bytes.byteOffset + source.offset + source.bytes)),
      })),
    });
    const ref = references().find((r) => r.prompt === 'Once upon a time')!;
    expect(ref.stoppedOnBos).toBe(false); // a GGUF model stops on EOS only (llama.cpp's rule), run.c also on BOS
    const model = await loadModel(file, { device: 'cpu', dtype: 'float32' });
    try {
      expect(model.tokenizer.encode(ref.prompt)).toEqual(ref.promptIds);
      const out = await model.generate(ref.prompt, { temperature: 0, maxNewTokens: 256 - (ref.promptIds.length - 1) });
      expect(out.tokens).toEqual(ref.printedIds.slice(ref.promptIds.length - 1));
      expect(model.tokenizer.decode(ref.promptIds.slice(1)) + out.text + '\n').toBe(ref.stdout);
    } finally {
      await model.dispose();
    }
  });
});

describe('malformed GGUF models give coded errors', () => {
  const s = LLAMA_SPEC;
  const cases: Array<[string, Parameters<typeof writeTinyGGUF>[2], string, RegExp]> = [
    ['missing embedding_length', { metadata: { 'llama.embedding_length': null } }, 'ERR_MODEL_FORMAT', /llama\.embedding_length" is missing/],
    ['missing block_count', { metadata: { 'llama.block_count': null } }, 'ERR_MODEL_FORMAT', /llama\.block_count/],
    ['head_count not dividing embedding_length', { metadata: { 'llama.attention.head_count': gv.u32(5) } }, 'ERR_MODEL_FORMAT', /head_count \(5\) does not divide/],
    ['head_count_kv not dividing head_count', { metadata: { 'llama.attention.head_count_kv': gv.u32(3) } }, 'ERR_MODEL_FORMAT', /head_count_kv \(3\) does not divide/],
    ['a string where a number belongs', { metadata: { 'llama.context_length': gv.str('64') } }, 'ERR_MODEL_FORMAT', /context_length" has type string/],
    ['zero feed_forward_length', { metadata: { 'llama.feed_forward_length': gv.u32(0) } }, 'ERR_MODEL_FORMAT', /feed_forward_length" = 0/],
    ['feed_forward_length not matching the tensors', { metadata: { 'llama.feed_forward_length': gv.u32(128) } }, 'ERR_MODEL_FORMAT', /blk\.0\.ffn_gate\.weight" has shape \[96, 64\], expected \[128, 64\]/],
    ['unknown architecture', { metadata: { 'general.architecture': gv.str('mamba') } }, 'ERR_UNSUPPORTED', /architecture "mamba"/],
    ['partial rotary', { metadata: { 'llama.rope.dimension_count': gv.u32(8) } }, 'ERR_UNSUPPORTED', /partial rotary/],
    ['a tensor missing', { tensors: (t) => t.filter((x) => x.name !== 'blk.1.attn_k.weight') }, 'ERR_MODEL_FORMAT', /"blk\.1\.attn_k\.weight" is missing/],
    ['an unknown tensor', { tensors: (t) => [...t, { name: 'blk.9.attn_q.weight', type: 'F32', shape: [2], data: [1, 2] }] }, 'ERR_MODEL_FORMAT', /"blk\.9\.attn_q\.weight" is not a tensor/],
    ['tokens count differing from token_embd rows', { metadata: { 'tokenizer.ggml.tokens': gv.arr('string', ['a', 'b']) } }, 'ERR_MODEL_FORMAT', /has 2 tokens but token_embd has 288 rows/],
    ['bos id out of range', { metadata: { 'tokenizer.ggml.bos_token_id': gv.u32(5000) } }, 'ERR_MODEL_FORMAT', /bos_token_id" = 5000/],
  ];
  for (const [what, opts, code, msg] of cases) {
    test(what, async () => {
      const { file } = await writeTinyGGUF(s, tinyWeights(s), opts);
      await expectCode(loadModel(file, { device: 'cpu' }), code, msg);
    });
  }

  test('a BPE tokenizer with an unsupported pre-tokenizer: loadModel says unsupported; readGGUFModel still maps the model', async () => {
    const { file } = await writeTinyGGUF(GPT2_SPEC, tinyWeights(GPT2_SPEC), { metadata: tinyBpeMetadata(GPT2_SPEC.vocab, 'deepseek-llm') });
    await expectCode(loadModel(file, { device: 'cpu' }), 'ERR_UNSUPPORTED', /tokenizer\.ggml\.pre "deepseek-llm"/);
    expect((await readGGUFModel(file)).tokenizer).toBeUndefined();
  });

  test('a BPE tokenizer without merges', async () => {
    const { file } = await writeTinyGGUF(GPT2_SPEC, tinyWeights(GPT2_SPEC), { metadata: { ...tinyBpeMetadata(GPT2_SPEC.vocab), 'tokenizer.ggml.merges': null } });
    await expectCode(loadModel(file, { device: 'cpu' }), 'ERR_MODEL_FORMAT', /tokenizer\.ggml\.merges" is missing/);
  });

  test('an unknown tokenizer model', async () => {
    const { file } = await writeTinyGGUF(s, tinyWeights(s), { metadata: { 'tokenizer.ggml.model': gv.str('rwkv') } });
    await expectCode(loadModel(file, { device: 'cpu' }), 'ERR_UNSUPPORTED', /tokenizer\.ggml\.model "rwkv"/);
  });

  test('a truncated file', async () => {
    const { file } = await writeTinyGGUF(s, tinyWeights(s));
    fs.truncateSync(file, fs.statSync(file).size - 100);
    await expectCode(loadModel(file, { device: 'cpu' }), 'ERR_MODEL_FORMAT', /past the end of the file/);
  });
});

describe('Q8_0 weights in the engine (cpu)', () => {
  test('q8Weights naming a tensor the model does not have is an argument error', async () => {
    const cfg: EngineConfig = { ...specConfig(LLAMA_SPEC), dtype: 'float32', device: 'cpu', maxBatch: 1, maxContext: 8, maxStepTokens: 8, q8Weights: ['blk.7.attn_q'] };
    await expectCode(() => buildModel(cfg, new Map()), 'ERR_INVALID_ARG', /blk\.7\.attn_q/);
  });

  test('a float source for a tensor listed in q8Weights is unsupported', async () => {
    const w = tinyWeights(LLAMA_SPEC);
    const cfg: EngineConfig = { ...specConfig(LLAMA_SPEC), dtype: 'float32', device: 'cpu', maxBatch: 1, maxContext: 8, maxStepTokens: 8, q8Weights: ['blk.0.ffn_down'] };
    await expectCode(buildModel(cfg, writeWeights(w)), 'ERR_UNSUPPORTED', /ffn_down.*not q8_0/);
  });

  test('a fused group that is only partly Q8_0 (attn_q Q8_0, attn_k/v F32) runs as float with attn_q dequantized', async () => {
    const s = LLAMA_SPEC;
    const { file, stored } = await writeTinyGGUF(s, tinyWeights(s), { q8: (n) => /attn_q$|ffn_down$/.test(n) });
    const g = await readGGUFModel(file);
    expect(g.config.q8Weights).toEqual(['blk.0.attn_q', 'blk.0.ffn_down', 'blk.1.attn_q', 'blk.1.ffn_down']);
    const cfg: EngineConfig = { ...g.config, dtype: 'float32', device: 'cpu', maxBatch: 1, maxContext: 32, maxStepTokens: 32 };
    const m = await buildModel(cfg, new Map(g.tensors.map((t) => [t.name, t.source])));
    try {
      m.startSequence(1n);
      const r = await m.step(request([0], [PROMPT]));
      const ref = referenceLogits(s, stored, PROMPT);
      PROMPT.forEach((_, i) => expect(relDiff(row(r.logits!, i, s.vocab), ref[i])).toBeLessThan(2e-5));
    } finally {
      m.dispose();
    }
  });

  test('float16 compute with Q8_0 matrices follows the reference (2e-2 relative)', async () => {
    const s = LLAMA_SPEC;
    const { file, stored } = await writeTinyGGUF(s, tinyWeights(s), { q8: true });
    const g = await readGGUFModel(file);
    const cfg: EngineConfig = { ...g.config, dtype: 'float16', device: 'cpu', maxBatch: 1, maxContext: 32, maxStepTokens: 32 };
    const m = await buildModel(cfg, new Map(g.tensors.map((t) => [t.name, t.source])));
    try {
      m.startSequence(1n);
      const r = await m.step(request([0], [PROMPT]));
      const ref = referenceLogits(s, stored, PROMPT);
      PROMPT.forEach((_, i) => {
        const got = row(r.logits!, i, s.vocab);
        expect(relDiff(got, ref[i])).toBeLessThan(2e-2);
      });
    } finally {
      m.dispose();
    }
  });
});

// T5 against Hugging Face transformers (test/fixtures/hf-t5, scripts/make_hf_t5_fixture.py): two tiny random
// models, T5 v1.0 (ReLU FFN, tied head scaled by d_model^-0.5) and v1.1 (gated-gelu, 3 heads of d_kv 16 over d_model
// 32, unscaled head), loaded from their HF folders (config.json + safetensors + a Unigram tokenizer.json), for two
// texts of different lengths (8 and 29 tokens):
//   encoder — the output's mean and first row (embed()'s 'mean' and 'cls' pooling) match HF's float64 encoder output
//             by the style.md rule (normalized MSE <= 1e-7 for fp32) and within 1e-5 of its largest value;
//   decoder — teacher-forced logits at every position of the target (position 0 from generate(text), position k from
//             a PiD prompt of the target's first k ids, all prompts of one input in one call) within 1e-5 of HF's
//             largest; greedy ids equal HF's (both texts in one call: two memories in one batch); HF's greedy
//             continuations of forced decoder prefixes (PiD prompts) equal; f16 / bf16 greedy ids follow HF's until
//             a first divergence that stays within HF's top 5 there.
import * as fs from 'fs';
import * as path from 'path';
import { loadModel } from '../../lib/model';
import { readHfModel } from '../../lib/loaders/hf';
import { relDiff, settledStats } from '../util/engine-helpers';

const DIR = path.join(__dirname, '..', 'fixtures', 'hf-t5');
interface Input {
  inputIds: number[]; encoderOutput: number[][]; decoderInputIds: number[]; logits: number[][]; greedyIds: number[];
  greedyMargins: number[]; greedyTop5: number[][];
}
interface Pid { prompt: string; promptIds: number[]; greedyIds: number[] }
const REF = JSON.parse(fs.readFileSync(path.join(DIR, 'reference.json'), 'utf8')) as {
  transformers: string; torch: string; texts: string[]; models: Record<'v1_0' | 'v1_1', { inputs: Input[]; pid: Pid[] }>;
};
const MODELS = ['v1_0', 'v1_1'] as const;

function nmse(a: ArrayLike<number>, ref: ArrayLike<number>): number {
  let num = 0, den = 0;
  for (let i = 0; i < ref.length; i++) {
    num += (a[i] - ref[i]) ** 2;
    den += ref[i] ** 2;
  }
  return num / den;
}

/** Mean and first row of each text's encoder output, concatenated. */
const pooled = (inputs: Input[]): number[] =>
  inputs.flatMap(({ encoderOutput: e }) => [...e[0].map((_, c) => e.reduce((s, row) => s + row[c], 0) / e.length), ...e[0]]);

describe(`T5 fixture (transformers ${REF.transformers}, torch ${REF.torch})`, () => {
  test.each(MODELS)('%s: config.json reads as the engine\'s t5 with its FFN, buckets and head size', async (name) => {
    const { config } = await readHfModel(path.join(DIR, name));
    expect(config).toMatchObject({
      arch: 't5', dim: 32, nLayers: 2, nDecoderLayers: 2, decoderStartTokenId: 0, relBuckets: 32, relMaxDistance: 128, normEps: 1e-6,
      ...(name === 'v1_0' ? { ffnActivation: 'relu', nHeads: 4, headDim: 8, hiddenDim: 48, scaleDecoderOutputs: true }
        : { ffnActivation: 'geglu_tanh', nHeads: 3, headDim: 16, hiddenDim: 24, scaleDecoderOutputs: false }),
      tiedEmbeddings: true,  // transformers 5 writes true for both (make_hf_t5_fixture.py's docstring)
    });
    expect(REF.models[name].inputs.map((x) => x.inputIds.length)).toEqual([8, 29]);
  });
});

describe.each(['cpu', 'emu'])('T5 encoder on %s equals transformers\'', (device) => {
  test.each(MODELS)('%s: two texts of different lengths in one call, mean and first-row pooling', async (name) => {
    const model = await loadModel(path.join(DIR, name), { device, dtype: 'float32', maxBatch: 2 });
    try {
      const inputs = REF.models[name].inputs;
      expect(REF.texts.map((t) => model.tokenizer.encode(t))).toEqual(inputs.map((x) => x.inputIds));
      const ids = inputs.map((x) => x.inputIds);
      const mean = await model.embed(ids, { pooling: 'mean', normalize: false });
      const cls = await model.embed(ids, { pooling: 'cls', normalize: false });
      const ours = ids.flatMap((_, i) => [...mean[i], ...cls[i]]);
      const ref = pooled(inputs);
      expect(nmse(ours, ref)).toBeLessThanOrEqual(1e-7);
      expect(relDiff(ours, ref)).toBeLessThan(1e-5);
    } finally {
      await model.dispose();
    }
  });
});

describe('T5 encoder in float16 / bfloat16 (the bias table converted to fp32 at load)', () => {
  // style.md: error vs the fp64 reference at most 2x that of the same math in that precision on the cpu reference
  // backend. The rule compares backends only, so a conversion bug shared by all would pass it: a gross-error bound
  // on the cpu reference catches those (dropping the position bias gives nmse 0.1 to 0.5). Its values: this sharp
  // random v1_1 model is sensitive to bf16 (HF's own encoder with its weights rounded to bf16 and fp32 math is at
  // nmse 2.9e-3, in full bf16 at 4.9e-4 by cancelling luck; ours 5.3e-3), so 2e-2 for bf16, 1e-3 for fp16.
  const embedOn = async (device: string, dtype: 'float16' | 'bfloat16', name: (typeof MODELS)[number]) => {
    const model = await loadModel(path.join(DIR, name), { device, dtype, maxBatch: 2 });
    try {
      const ids = REF.models[name].inputs.map((x) => x.inputIds);
      const mean = await model.embed(ids, { pooling: 'mean', normalize: false });
      const cls = await model.embed(ids, { pooling: 'cls', normalize: false });
      return ids.flatMap((_, i) => [...mean[i], ...cls[i]]);
    } finally {
      await model.dispose();
    }
  };
  test.each(MODELS.flatMap((name) => (['float16', 'bfloat16'] as const).map((dtype) => [name, dtype] as const)))('%s %s: cpu and emu within 2x of the cpu reference', async (name, dtype) => {
    const ref = pooled(REF.models[name].inputs);
    const base = nmse(await embedOn('cpu-ref', dtype, name), ref);
    expect(base).toBeLessThanOrEqual(dtype === 'bfloat16' ? 2e-2 : 1e-3);
    for (const device of ['cpu', 'emu']) {
      const err = nmse(await embedOn(device, dtype, name), ref);
      expect([device, err <= 2 * base]).toEqual([device, true]);
    }
  });
});

const GREEDY = { temperature: 0, ignoreEos: true } as const;

describe.each(['cpu', 'emu'])('T5 decoder on %s equals transformers\'', (device) => {
  test.each(MODELS)('%s: teacher-forced logits at every target position, both texts', async (name) => {
    const model = await loadModel(path.join(DIR, name), { device, dtype: 'float32', maxBatch: 16 });
    try {
      for (const x of REF.models[name].inputs) {
        const dec = x.decoderInputIds;
        // Position 0 reads [start]; position k reads [start, t1..tk]: the PiD prompt of the target's first k ids.
        const first = await model.generate(x.inputIds, { ...GREEDY, maxNewTokens: 1, logits: true });
        const prompts = dec.slice(1).map((_, k) => dec.slice(1, k + 2));
        const rest = await model.generate({ input: x.inputIds, prompts }, { ...GREEDY, maxNewTokens: 1, logits: true });
        const ours = [first, ...rest].map((r) => Array.from(r.logits![0]));
        expect(ours.length).toBe(x.logits.length);
        expect(relDiff(ours.flat(), x.logits.flat())).toBeLessThan(1e-5);
      }
    } finally {
      await model.dispose();
    }
  });

  test.each(MODELS)('%s: greedy ids of both texts in one call, and of forced decoder prefixes (PiD)', async (name) => {
    const model = await loadModel(path.join(DIR, name), { device, dtype: 'float32', maxBatch: 4 });
    try {
      const { inputs, pid } = REF.models[name];
      const n = inputs[0].greedyIds.length - 1;
      const rs = await model.generate(REF.texts, { ...GREEDY, maxNewTokens: n });
      expect(rs.map((r) => r.tokens)).toEqual(inputs.map((x) => x.greedyIds.slice(1)));  // HF's start with decoder_start
      const ps = await model.generate({ input: REF.texts[1], prompts: pid.map((p) => p.prompt) }, { ...GREEDY, maxNewTokens: pid[0].greedyIds.length });
      expect(ps.map((r) => r.tokens)).toEqual(pid.map((p) => p.greedyIds));
      expect(await settledStats(model)).toMatchObject({ encoderMemories: 0, blocksUsed: 0 });  // every memory went back to the pool
    } finally {
      await model.dispose();
    }
  });
});

describe('T5 decoder in float16 / bfloat16: greedy ids follow HF\'s until a divergence within HF\'s top 5', () => {
  const cases = MODELS.flatMap((name) => (['float16', 'bfloat16'] as const).flatMap((dtype) => ['cpu', 'emu'].map((device) => [name, dtype, device] as const)));
  test.each(cases)('%s %s on %s', async (name, dtype, device) => {
    const model = await loadModel(path.join(DIR, name), { device, dtype, maxBatch: 2 });
    try {
      const inputs = REF.models[name].inputs;
      const rs = await model.generate(inputs.map((x) => x.inputIds), { ...GREEDY, maxNewTokens: inputs[0].greedyIds.length - 1 });
      rs.forEach((r, i) => {
        const want = inputs[i].greedyIds.slice(1);
        const at = r.tokens.findIndex((t, k) => t !== want[k]);
        if (at >= 0) expect([at, inputs[i].greedyTop5[at]]).toEqual([at, expect.arrayContaining([r.tokens[at]])]);
      });
    } finally {
      await model.dispose();
    }
  });
});

describe('T5: an input that finds the KV pool full waits for running sequences to give their blocks back', () => {
  test('cpu: a 512-token input arriving while a long generation fills the pool is encoded once it ends', async () => {
    // 35 blocks of 16: A's memory (2 blocks) and its 500 decoded tokens (32 blocks) leave less than the 32 blocks B's
    // input needs from A's 17th token on, until A ends and its blocks return; B arrives at A's 20th token.
    const model = await loadModel(path.join(DIR, 'v1_1'), { device: 'cpu', dtype: 'float32', maxBatch: 2, kvCacheTokens: 35 * 16 });
    try {
      const a = REF.models.v1_1.inputs[1].inputIds;
      const big = Array.from({ length: 512 }, (_, i) => a[i % (a.length - 1)]);
      let b: Promise<unknown> | undefined;
      let aEnded = -1;
      for await (const ev of model.stream(a, { ...GREEDY, maxNewTokens: 500 })) {
        if (ev.token >= 0 && !b && (ev as { index: number }).index === 0) {
          const seen = model.stats();
          if (seen.generatedTokens >= 20) {
            expect(seen.blocksTotal - seen.blocksUsed).toBeLessThan(32);  // B cannot fit now
            b = model.generate(big, { ...GREEDY, maxNewTokens: 4 }).then((r) => ({ r, at: model.stats().steps }), (e: unknown) => e);
          }
        }
        if (ev.finishReason) aEnded = model.stats().steps;
      }
      const got = await b;
      expect(got).toMatchObject({ r: { tokens: expect.any(Array) } });
      expect((got as { r: { tokens: number[] } }).r.tokens).toHaveLength(4);
      expect(aEnded).toBeGreaterThan(0);
      expect(await settledStats(model)).toMatchObject({ encoderMemories: 0, blocksUsed: 0 });
    } finally {
      await model.dispose();
    }
  });
});

// Non-finite logits end a request with a NumericError (ERR_NUMERIC) on every backend, never a crash or a silent
// token (issue 11: one NaN weight used to crash the cpu sampler under top-k + top-p, and emu and greedy returned
// tokens). A NaN in one row of the token table poisons exactly the sequences whose prompt holds that token (its
// key and value reach every later position), so requests without it must go on and produce what they produce
// alone — checked against the fp64 reference of the same weights for the first token.
import { deviceReport } from '../../lib/devices';
import { NumericError } from '../../lib/errors';
import type { GenerateOptions } from '../../lib/generate/options';
import { loadModel, type Model } from '../../lib/model';
import { LLAMA_SPEC, referenceLogits, removeTmp, tinyWeights, writeTinyGGUF } from '../util/gguf-models';
import { argmax } from '../util/engine-helpers';

const devices = ['cpu', 'emu', ...(deviceReport().devices.some((d) => d.kind === 'cuda') ? ['cuda'] : [])];
const POISON = 7; // token whose embedding row is NaN
const BAD = [1, 40, POISON, 90];
const GOOD = [1, 40, 60, 90];
const SETTINGS: Array<[string, GenerateOptions]> = [
  ['greedy', { temperature: 0 }],
  ['top-k + top-p', { temperature: 0.8, topK: 20, topP: 0.9, seed: 3 }],
  ['penalties', { temperature: 0.8, repetitionPenalty: 1.3, presencePenalty: 0.5, seed: 4 }],
];

let file = '';
let nanHead = '';
const weights = tinyWeights(LLAMA_SPEC);

beforeAll(async () => {
  const w = new Map(weights);
  const embd = w.get('token_embd')!;
  const poisoned = Float32Array.from(embd.data);
  poisoned.fill(NaN, POISON * LLAMA_SPEC.dim, (POISON + 1) * LLAMA_SPEC.dim);
  w.set('token_embd', { shape: embd.shape, data: poisoned });
  file = (await writeTinyGGUF(LLAMA_SPEC, w)).file;
  // one NaN in the LM head: every request's logits hold a NaN at that id
  const h = new Map(weights);
  const out = h.get('output')!;
  const head = Float32Array.from(out.data);
  head[5 * LLAMA_SPEC.dim + 3] = NaN;
  h.set('output', { shape: out.shape, data: head });
  nanHead = (await writeTinyGGUF(LLAMA_SPEC, h)).file;
});
afterAll(removeTmp);

describe.each(devices)('%s', (device) => {
  let model: Model;
  let headModel: Model;
  beforeAll(async () => {
    model = await loadModel(file, { device });
    headModel = await loadModel(nanHead, { device });
  });
  afterAll(async () => {
    await model?.dispose();
    await headModel?.dispose();
  });

  test.each(SETTINGS)('%s: the poisoned request fails with ERR_NUMERIC, the one beside it is unaffected', async (_name, opts) => {
    const o = { ...opts, maxNewTokens: 6, ignoreEos: true };
    const alone = await model.generate(GOOD, o);
    const ref = referenceLogits(LLAMA_SPEC, weights, GOOD);
    if (!opts.temperature) expect(alone.tokens[0]).toBe(argmax(ref[GOOD.length - 1]));
    const [bad, good] = await Promise.allSettled([model.generate(BAD, o), model.generate(GOOD, o)]);
    expect(bad.status).toBe('rejected');
    const e = (bad as PromiseRejectedResult).reason;
    expect(e).toBeInstanceOf(NumericError);
    expect(e.code).toBe('ERR_NUMERIC');
    expect(e.message).toMatch(/non-finite logits.*step \d+, position 4 of sample 0/);
    expect(good.status).toBe('fulfilled');
    expect((good as PromiseFulfilledResult<{ tokens: number[] }>).value.tokens).toEqual(alone.tokens);
  });

  test('n > 1: the whole request fails; streams end with the error; the context stays usable', async () => {
    await expect(model.generate(BAD, { n: 3, temperature: 1, seed: 1, maxNewTokens: 4 })).rejects.toMatchObject({ code: 'ERR_NUMERIC' });
    const events: string[] = [];
    await expect((async () => {
      for await (const ev of model.stream(BAD, { maxNewTokens: 4 })) events.push(typeof ev);
    })()).rejects.toBeInstanceOf(NumericError);
    expect(events).toEqual([]);
    expect((await model.generate(GOOD, { maxNewTokens: 3, ignoreEos: true })).tokens).toHaveLength(3);
  });

  test.each(SETTINGS)('%s: one NaN in the LM head fails every request, repeatedly', async (_name, opts) => {
    for (let i = 0; i < 2; i++) {
      const r = await Promise.allSettled([headModel.generate(GOOD, { ...opts, maxNewTokens: 3 }), headModel.generate(BAD, { ...opts, maxNewTokens: 3 })]);
      for (const x of r) expect(x.status === 'rejected' && (x.reason as NumericError).code).toBe('ERR_NUMERIC');
    }
  });
});

// DecBERT per-layer attention masks (bert + config.json attention_mask_modes) end to end against Hugging Face
// transformers: test/fixtures/hf-decbert, made by scripts/make_hf_decbert_fixture.py, holds a tiny random BertModel
// and the embeddings transformers computes (in float64) for two texts of different lengths in one padded batch, with
// every layer's mask given explicitly (bidirectional = padding only, causal = lower-triangular, anticausal =
// upper-triangular). The engine embeds both texts in one pass through loadModel, on cpu and emu.
// Pass rule (style.md, float32 against a float64 reference): normalized MSE <= 1e-7, and the repo's model-test bound
// max |diff| / max |ref| < 1e-5. Each case must also miss every other case's reference by far, so a mask the engine
// ignored or swapped fails here.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { ggufMetadata } from '../../lib/arch/gguf';
import type { AddonAttentionMaskMode } from '../../lib/binding';
import { loadModel } from '../../lib/model';
import { readHfModel } from '../../lib/loaders/hf';
import { TestEngine, relDiff } from '../util/engine-helpers';

const DIR = path.join(__dirname, '..', 'fixtures', 'hf-decbert');
const MODEL = path.join(DIR, 'model');
interface Case {
  attention_mask_modes?: string | string[];
  texts: Array<{ mean: number[]; cls: number[] }>;
}
const REF = JSON.parse(fs.readFileSync(path.join(DIR, 'reference.json'), 'utf8')) as {
  transformers: string; torch: string; texts: string[]; inputIds: number[][]; cases: Record<string, Case>;
};
const LAYERS = 3;
const CASES = ['plain', 'bidirectional', 'causal', 'anticausal', 'mixed'] as const;
const EXPECTED_MODES: Record<(typeof CASES)[number], AddonAttentionMaskMode[]> = {
  plain: ['bidirectional', 'bidirectional', 'bidirectional'],
  bidirectional: ['bidirectional', 'bidirectional', 'bidirectional'],
  causal: ['causal', 'causal', 'causal'],
  anticausal: ['anticausal', 'anticausal', 'anticausal'],
  mixed: ['anticausal', 'bidirectional', 'causal'],
};

function nmse(a: ArrayLike<number>, ref: ArrayLike<number>): number {
  let num = 0, den = 0;
  for (let i = 0; i < ref.length; i++) {
    num += (a[i] - ref[i]) ** 2;
    den += ref[i] ** 2;
  }
  return num / den;
}

/** The error f throws (undefined when it returns). */
function thrown(f: () => unknown): unknown {
  try {
    f();
  } catch (e) {
    return e;
  }
  return undefined;
}

/** Both pooled vectors of every text of a case, concatenated. */
const pooled = (c: Case): number[] => c.texts.flatMap((t) => [...t.mean, ...t.cls]);

let tmp: string;
beforeAll(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'eet-decbert-'));
});
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

/** The fixture's folder with config.json's attention_mask_modes replaced (absent when `modes` is undefined). */
function folderWith(name: string, modes: unknown): string {
  const d = path.join(tmp, name);
  fs.mkdirSync(d, { recursive: true });
  for (const f of fs.readdirSync(MODEL)) if (f !== 'config.json') fs.copyFileSync(path.join(MODEL, f), path.join(d, f));
  const config = JSON.parse(fs.readFileSync(path.join(MODEL, 'config.json'), 'utf8')) as Record<string, unknown>;
  delete config.attention_mask_modes;
  if (modes !== undefined) config.attention_mask_modes = modes;
  fs.writeFileSync(path.join(d, 'config.json'), JSON.stringify(config));
  return d;
}

describe(`DecBERT fixture (transformers ${REF.transformers}, torch ${REF.torch})`, () => {
  test('the committed folder holds the mixed case; the cases differ, and explicit bidirectional masks equal plain BERT', () => {
    const config = JSON.parse(fs.readFileSync(path.join(MODEL, 'config.json'), 'utf8'));
    expect(config.attention_mask_modes).toEqual(REF.cases.mixed.attention_mask_modes);
    expect(REF.cases.plain.attention_mask_modes).toBeUndefined();
    expect(REF.inputIds.map((ids) => ids.length)).toEqual([9, 21]);
    expect(relDiff(pooled(REF.cases.bidirectional), pooled(REF.cases.plain))).toBeLessThan(1e-12);
    for (const a of CASES) {
      for (const b of CASES) {
        if (a !== b && !(['plain', 'bidirectional'].includes(a) && ['plain', 'bidirectional'].includes(b))) {
          expect(relDiff(pooled(REF.cases[a]), pooled(REF.cases[b]))).toBeGreaterThan(0.05);
        }
      }
    }
  });
});

describe.each(['cpu', 'emu'])('DecBERT masks on %s equal transformers\'', (device) => {
  test.each(CASES)('%s: two texts of different lengths in one call, mean and [CLS] pooling', async (name) => {
    const dir = name === 'mixed' ? MODEL : folderWith(name, REF.cases[name].attention_mask_modes);
    const model = await loadModel(dir, { device, dtype: 'float32', maxBatch: 2 });
    try {
      expect(model.config.attentionMaskModes).toEqual(EXPECTED_MODES[name]);
      expect(REF.texts.map((t) => model.tokenizer.encode(t))).toEqual(REF.inputIds);
      const mean = await model.embed(REF.texts, { pooling: 'mean', normalize: false });
      const cls = await model.embed(REF.texts, { pooling: 'cls', normalize: false });
      const ours = REF.texts.flatMap((_, i) => [...mean[i], ...cls[i]]);
      const ref = pooled(REF.cases[name]);
      expect(nmse(ours, ref)).toBeLessThanOrEqual(1e-7);
      expect(relDiff(ours, ref)).toBeLessThan(1e-5);
      for (const other of CASES) {
        const same = EXPECTED_MODES[other].join() === EXPECTED_MODES[name].join();
        if (!same) expect(relDiff(ours, pooled(REF.cases[other]))).toBeGreaterThan(0.05);
      }
    } finally {
      await model.dispose();
    }
  });
});

describe('attention_mask_modes validation', () => {
  test.each([
    ['sideways', /attention_mask_modes is "sideways", expected one of "bidirectional", "causal", "anticausal"/],
    [3, /attention_mask_modes is 3, expected one of/],
    [['causal', 'causal'], /attention_mask_modes is \["causal","causal"\] with 2 entries, expected one per layer \(num_hidden_layers 3\)/],
    [['causal', 'Causal', 'anticausal'], /attention_mask_modes\[1\] is "Causal", expected one of/],
    [['causal', null, 'anticausal'], /attention_mask_modes\[1\] is null, expected one of/],
    [{ all: 'causal' }, /attention_mask_modes is \{"all":"causal"\}, expected one of/],
  ])('config.json attention_mask_modes %j → ModelFormatError naming the field and the value', async (modes, message) => {
    const dir = folderWith(`bad-${JSON.stringify(modes).replace(/\W/g, '')}`, modes);
    await expect(readHfModel(dir)).rejects.toMatchObject({ code: 'ERR_MODEL_FORMAT', message: expect.stringMatching(message) });
    await expect(loadModel(dir, { device: 'cpu' })).rejects.toMatchObject({ code: 'ERR_MODEL_FORMAT' });
  });

  test('a huge list is shown cut short', async () => {
    const dir = folderWith('long', new Array(5000).fill('causal'));
    await expect(readHfModel(dir)).rejects.toMatchObject({ message: expect.stringMatching(/…" with 5000 entries|… with 5000 entries/) });
  });

  test('the engine checks the modes too: length, names, decoders', () => {
    const bert = {
      arch: 'bert', dim: 32, hiddenDim: 64, nLayers: LAYERS, nHeads: 4, nKvHeads: 4, headDim: 8, vocabSize: 128, maxSeqLen: 40,
      normEps: 1e-12, ropeTheta: 10000, ropeLayout: 'adjacent' as const, nTokenTypes: 2, tiedEmbeddings: false,
      dtype: 'float32' as const, device: 'cpu', maxBatch: 1, maxContext: 40, maxStepTokens: 40,
    };
    const engineError = (cfg: Record<string, unknown>, message: RegExp) =>
      expect(thrown(() => new TestEngine(cfg as never).dispose())).toMatchObject({ code: 'ERR_INVALID_ARG', message: expect.stringMatching(message) });
    engineError({ ...bert, attentionMaskModes: ['causal'] }, /Expected nLayers \(3\) for attentionMaskModes.length but received 1/);
    engineError({ ...bert, attentionMaskModes: ['causal', 'up', 'causal'] }, /for attentionMaskModes\[1\] but received up of type string/);
    engineError({ ...bert, attentionMaskModes: 'causal' }, /Expected array of mask names for attentionMaskModes/);
    engineError({ ...bert, arch: 'llama', nTokenTypes: undefined, attentionMaskModes: ['causal', 'causal', 'causal'] },
      /Expected no attentionMaskModes for a llama model \(a decoder attends causally\) but received 3 entries/);
  });

  test('GGUF has no per-layer masks: writing a causal config is refused, a bidirectional one is not', async () => {
    const { config } = await readHfModel(MODEL);
    expect(thrown(() => ggufMetadata(config, 'bert'))).toMatchObject({ code: 'ERR_UNSUPPORTED', message: expect.stringMatching(/attentionMaskModes \["anticausal","bidirectional","causal"\] cannot be written to GGUF/) });
    expect(() => ggufMetadata({ ...config, attentionMaskModes: EXPECTED_MODES.plain }, 'bert')).not.toThrow();
  });

  test('1-token texts (the decode path, where the masks agree) embed alike under every mask', async () => {
    const out: Float32Array[][] = [];
    for (const modes of [undefined, 'anticausal', 'causal']) {
      const model = await loadModel(folderWith(`one-token-${modes}`, modes), { device: 'emu', dtype: 'float32', maxBatch: 2 });
      try {
        out.push(await model.embed([[2], [5]], { pooling: 'cls', normalize: false }));
      } finally {
        await model.dispose();
      }
    }
    for (const o of out.slice(1)) for (const i of [0, 1]) expect(relDiff(o[i], out[0][i])).toBeLessThan(1e-6);
    expect(relDiff(out[0][0], out[0][1])).toBeGreaterThan(0.05);
  });
});

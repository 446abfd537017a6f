// Hugging Face folders as transformers 5 saves them: rope_theta and the rope scaling inside one `rope_parameters`
// object. Logits against transformers' own (test/fixtures/hf-rope, made by scripts/make_hf_rope_fixture.py): a
// loader that misses rope_parameters runs Qwen2 with theta 10000 instead of 1e6 and fails here.
import * as fs from 'fs';
import * as path from 'path';
import { readHfModel } from '../../lib/loaders/hf';
import { TestEngine, relDiff, request, row } from '../util/engine-helpers';

const DIR = path.join(__dirname, '..', 'fixtures', 'hf-rope');
const REF = JSON.parse(fs.readFileSync(path.join(DIR, 'logits.json'), 'utf8')) as {
  transformers: string; tokens: number[]; cases: Record<string, number[][]>;
};

describe.each([
  ['qwen2-theta', { ropeTheta: 1e6, ropeScaling: null }],
  ['llama-linear', { ropeTheta: 5e5, ropeScaling: { type: 'linear', factor: 4 } }],
] as const)(`%s (saved by transformers ${REF.transformers})`, (name, expected) => {
  test('config: rope_parameters read', async () => {
    const hf = await readHfModel(path.join(DIR, name));
    expect(hf.config).toMatchObject(expected);
  });

  test.each(['cpu', 'emu'])('%s: logits at every position equal transformers\'', async (device) => {
    const hf = await readHfModel(path.join(DIR, name));
    const n = REF.tokens.length;
    const model = new TestEngine({ ...hf.config, dtype: 'float32', device, maxBatch: 1, maxContext: n, maxStepTokens: n });
    try {
      for (const t of hf.tensors) await model.loadTensor(t.name, t.source);
      await model.finalize();
      const r = await model.step(request([model.startSequence(0n)], [REF.tokens], 'all'));
      const V = hf.config.vocabSize;
      REF.cases[name].forEach((ref, i) => expect(relDiff(row(r.logits!, i, V), ref)).toBeLessThan(1e-4));
    } finally {
      model.dispose();
    }
  });
});

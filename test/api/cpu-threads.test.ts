// The cpu backend's `threads` option (issue 12): validated against the engine's limit (limits().maxThreads), the
// default is the physical cores (model.config.threads), and the thread count never changes a result: the fast
// kernels split work over output columns, attention items and rows, never inside a sum, so one thread and two
// give bit-identical logits — checked on F32 and Q8_0 GGUF models, with prompts of unequal length generated
// together (the engine's steps then mix prefill chunks and decode rows).
import { binding } from '../../lib/binding';
import { limits } from '../../lib/limits';
import { loadModel, type Model } from '../../lib/model';
import { LLAMA_SPEC, removeTmp, tinyWeights, writeTinyGGUF, type TinySpec } from '../util/gguf-models';

// Big enough that every gemm is split over the pool (the kernels run small products on one thread).
const SPEC: TinySpec = { ...LLAMA_SPEC, dim: 256, hiddenDim: 512, nHeads: 8, nKvHeads: 4, vocab: 1024, ctx: 256, seed: 21 };
const PROMPTS = [[1, 40, 60, 90, 7, 300, 512, 33], [1, 900], [1, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23]];
const files: Record<string, string> = {};

beforeAll(async () => {
  const w = tinyWeights(SPEC);
  files.f32 = (await writeTinyGGUF(SPEC, w)).file;
  files.q8 = (await writeTinyGGUF(SPEC, w, { q8: true })).file;
});
afterAll(() => removeTmp());

describe('threads option', () => {
  test('default: the physical cores (at least 1), shown in model.config.threads', async () => {
    const m = await loadModel(files.f32, { device: 'cpu' });
    try {
      expect(binding().devices().cpuThreads).toBeGreaterThanOrEqual(1);
      expect(m.config.threads).toBe(binding().devices().cpuThreads);
    } finally {
      await m.dispose();
    }
  });

  test.each([0, -1, 1.5, limits().maxThreads + 1])('threads %p is refused with ERR_INVALID_ARG naming the bounds', async (bad) => {
    await expect(loadModel(files.f32, { device: 'cpu', threads: bad })).rejects.toMatchObject({
      code: 'ERR_INVALID_ARG',
      message: `Expected integer between 1 and ${limits().maxThreads} for threads but received ${bad} of type number`,
    });
  });

  test('threads of the wrong type is refused', async () => {
    await expect(loadModel(files.f32, { device: 'cpu', threads: '2' as unknown as number })).rejects.toMatchObject({
      code: 'ERR_INVALID_ARG', message: `Expected integer between 1 and ${limits().maxThreads} for threads but received "2" of type string`,
    });
  });
});

for (const kind of ['f32', 'q8'] as const) {
  test(`${kind}: threads 1 and 2 give bit-identical logits for prompts of 8, 2 and 20 tokens generated together`, async () => {
    const run = async (threads: number): Promise<Float32Array[][]> => {
      const m: Model = await loadModel(files[kind], { device: 'cpu', threads });
      try {
        expect(m.config.threads).toBe(threads);
        const out = await m.generate(PROMPTS, { temperature: 0, maxNewTokens: 12, ignoreEos: true, logits: true });
        return out.map((o) => o.logits!);
      } finally {
        await m.dispose();
      }
    };
    const one = await run(1);
    const two = await run(2);
    expect(two.length).toBe(PROMPTS.length);
    for (let p = 0; p < PROMPTS.length; p++) {
      expect(two[p].length).toBe(12);
      for (let t = 0; t < 12; t++) {
        expect(one[p][t].length).toBe(SPEC.vocab);
        expect(Buffer.compare(Buffer.from(one[p][t].buffer), Buffer.from(two[p][t].buffer))).toBe(0);
      }
    }
  });
}

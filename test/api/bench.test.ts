// `eet bench` as a child process (dist/cli/main.js: run `npx tsc -p tsconfig.build.json` first) and its pieces in
// process (lib/bench/): built-in shapes and model files (llama2.c .bin, GGUF written by test/util/gguf-models.ts)
// through the same generate() path users take, the report's structure, the serving scenarios' counts, and the random
// tensor source built-in shapes are made from (AddonModel.loadTensor({ random })). Times are never asserted.
import { spawnSync } from 'child_process';
import * as path from 'path';
import { parameterCount, type TensorSpec } from '../../lib/arch';
import { AddonRandomSource } from '../../lib/binding';
import { formatText } from '../../lib/bench/format';
import { runCell } from '../../lib/bench/grid';
import { loadBenchModel } from '../../lib/bench/load';
import { TokenSource } from '../../lib/bench/random';
import { kvBytesPerToken } from '../../lib/bench/roofline';
import { runBench, type BenchReport, type ModelBench } from '../../lib/bench/run';
import { runScenarios, scenarioDefaults, type ScenarioSettings } from '../../lib/bench/scenarios';
import { builtinShape, shapeTensors } from '../../lib/bench/shapes';
import { loadModel } from '../../lib/model';
import { TestEngine, type EngineConfig } from '../util/engine-helpers';
import { GPT2_SPEC, LLAMA_SPEC, removeTmp, specConfig, tinyWeights, writeTinyGGUF } from '../util/gguf-models';
import { MODEL } from '../util/stories260k';

const root = path.resolve(__dirname, '../..');
const cli = path.join(root, 'dist', 'cli', 'main.js');

function eet(...args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [cli, ...args], { cwd: root, encoding: 'utf8', timeout: 120_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

const finitePositive = (x: unknown): boolean => typeof x === 'number' && Number.isFinite(x) && x > 0;
const CELL_FIELDS = ['ttftMs', 'prefillTokPerSec', 'prefillTflops', 'decodeMsPerStep', 'decodeTokPerSec', 'decodeGBps', 'decodeRooflinePct'] as const;

function expectTimedCells(m: ModelBench, cells: Array<[number, number, number]>): void {
  expect(m.results.map((c) => [c.batch, c.prompt, c.newTokens])).toEqual(cells);
  for (const c of m.results) {
    for (const k of CELL_FIELDS) expect(`${k}: ${finitePositive(c[k])}`).toBe(`${k}: true`);
  }
}

let ggufLlama: string, ggufGpt2: string;
beforeAll(async () => {
  ggufLlama = (await writeTinyGGUF(LLAMA_SPEC, tinyWeights(LLAMA_SPEC))).file;
  ggufGpt2 = (await writeTinyGGUF(GPT2_SPEC, tinyWeights(GPT2_SPEC), { q8: true })).file;
});
afterAll(() => removeTmp());

describe('eet bench', () => {
  test('--model tiny --device cpu --json: the report, the grid context, every cell timed', () => {
    const r = eet('bench', '--model', 'tiny', '--device', 'cpu', '--batch', '1,3', '--prompt', '5,12', '--new', '3', '--json');
    expect(r.status).toBe(0);
    const report: BenchReport = JSON.parse(r.stdout);
    expect(report).toMatchObject({
      tool: 'eet bench', device: { id: 'cpu' }, dtype: 'float32', peak: null, repeat: 3, scenarios: [],
      grid: { batch: [1, 3], prompt: [5, 12], newTokens: [3] },
    });
    expect(finitePositive(report.bandwidth.bytesPerSecond)).toBe(true);
    const [m] = report.models;
    expect(m).toMatchObject({ model: 'tiny', source: 'builtin', arch: 'llama', status: 'ok', params: 123712 });
    expect(m.scenarios).toBeUndefined();
    // One context sized for the grid: 3 sequences of 12 + 3 positions; the step holds the largest prefill (3 × 12).
    expect(m.config).toMatchObject({ format: 'random', maxBatch: 3, maxContext: 15, maxStepTokens: 36, dtype: 'float32' });
    expect(m.memory!.total).toBe(m.memory!.weights + m.memory!.kvCache + m.memory!.workspace);
    expect(m.memory!.weights).toBeGreaterThanOrEqual(123712 * 4);
    expect(m.memory!.kvCache).toBeGreaterThanOrEqual(3 * 16 * kvBytesPerToken(builtinShape('tiny')!, 4));
    expectTimedCells(m, [[1, 5, 3], [1, 12, 3], [3, 5, 3], [3, 12, 3]]);
    for (const c of m.results) expect(c.prefillPeakPct).toBeNull();
  });

  test('text output on emu: headline, model line with the context and memory, the table', () => {
    const r = eet('bench', '--model', 'tiny', '--device', 'emu', '--batch', '1', '--prompt', '4', '--new', '2');
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/copy bandwidth [\d.]+ GB\/s .* tensor peak n\/a/);
    expect(r.stdout).toMatch(/tiny — .*random weights · llama · 123\.7 k params · grid context 1 × 6 positions, steps of 4 tokens, CUDA graphs on · memory: weights [\d.]+ kB, KV cache [\d.]+ kB, workspace [\d.]+ kB/);
    expect(r.stdout).toMatch(/batch prompt new │ TTFT ms prefill tok\/s +TFLOP\/s % peak │ ms\/token decode tok\/s +GB\/s % roofline/);
    expect(r.stdout).toMatch(/^ +1 +4 +2 │ /m);
    expect(r.stdout).toContain('TTFT = from the generate() call until every sequence has its first token');
  });

  test('GPT-2 shapes run (gpt2-124m on cpu)', () => {
    const r = eet('bench', '--model', 'gpt2-124m', '--device', 'cpu', '--batch', '2', '--prompt', '4', '--new', '3', '--repeat', '1', '--json');
    expect(r.status).toBe(0);
    const [m] = (JSON.parse(r.stdout) as BenchReport).models;
    expect(m).toMatchObject({ model: 'gpt2-124m', source: 'builtin', arch: 'gpt2', status: 'ok', params: 124439808 });
    expectTimedCells(m, [[2, 4, 3]]);
  });

  test('model files: a llama2.c checkpoint (stories260K), a GGUF llama (F32) and a GGUF gpt2 (Q8_0 matrices)', () => {
    const r = eet('bench', '--model', [MODEL, ggufLlama, ggufGpt2].join(','), '--device', 'cpu', '--batch', '2', '--prompt', '20', '--new', '4', '--json');
    expect(r.status).toBe(0);
    const [story, llama, gpt2] = (JSON.parse(r.stdout) as BenchReport).models;
    expect(story).toMatchObject({ source: 'file', arch: 'llama', status: 'ok', params: 260032, config: { format: 'llama2c', maxBatch: 2, maxContext: 24 } });
    expect(llama).toMatchObject({ source: 'file', arch: 'llama', status: 'ok', params: parameterCount(specConfig(LLAMA_SPEC)), config: { format: 'gguf' } });
    expect(gpt2).toMatchObject({ source: 'file', arch: 'gpt2', status: 'ok', params: parameterCount(specConfig(GPT2_SPEC)), config: { format: 'gguf' } });
    expect(gpt2.config!.q8Weights!.length).toBeGreaterThan(0);
    for (const m of [story, llama, gpt2]) expectTimedCells(m, [[2, 20, 4]]);
  });

  test('--no-grid --scenarios all: each scenario\'s fields, with token counts that add up', () => {
    const r = eet('bench', '--model', 'tiny', '--device', 'cpu', '--no-grid', '--scenarios', 'all', '--pid-documents', '64', '--pid-subtasks', '1,4', '--json');
    expect(r.status).toBe(0);
    const report: BenchReport = JSON.parse(r.stdout);
    expect(report.grid).toBeNull();
    expect(report.scenarios).toEqual(['concurrency', 'shared', 'busy', 'http', 'pid']);
    const [m] = report.models;
    expect(m.status).toBe('ok');
    expect(m.results).toEqual([]);
    const defaults = scenarioDefaults(false);
    const { concurrency: c, shared: s, busy: b, http: h, pid } = m.scenarios!;

    expect(c!.prompts).toBe(32);
    expect(c!.promptTokens.min).toBeGreaterThanOrEqual(16);
    expect(c!.promptTokens.max).toBeLessThanOrEqual(128);
    expect(c!.variants.map((v) => [v.mode, v.itlFrom])).toEqual([['streams', 'events'], ['one-call', 'per-sequence mean'], ['sequential', 'events']]);
    for (const v of c!.variants) {
      expect(v.generatedTokens).toBe(32 * defaults.concurrency.newTokens);
      // Fresh prompts each way: all of their tokens computed, none served by the prefix cache.
      expect([v.promptTokensComputed, v.promptTokensCached]).toEqual([c!.promptTokens.total, 0]);
      for (const x of [v.wallMs, v.tokPerSec, v.ttftMs.p50, v.itlMs.p99]) expect(finitePositive(x)).toBe(true);
      expect(v.ttftMs.p50).toBeLessThanOrEqual(v.ttftMs.p99);
      expect(v.itlMs.p50).toBeLessThanOrEqual(v.itlMs.p99);
    }

    expect(s).toMatchObject({ documentTokens: defaults.shared.documentTokens, questions: 16, newTokens: defaults.shared.newTokens });
    const doc = s!.documentTokens;
    // Every prompt token is either computed or taken from the cache; the question tokens are unknown here but the same both ways.
    const questionTokens = s!.shared.promptTokensComputed + s!.shared.promptTokensCached - doc - 16 * doc;
    expect(s!.unshared.promptTokensComputed + s!.unshared.promptTokensCached).toBe(16 * doc + questionTokens);
    expect(s!.unshared.promptTokensCached).toBe(0); // the baseline runs with prefixCaching: false
    expect(questionTokens).toBeGreaterThanOrEqual(16 * s!.questionTokens.min);
    expect(questionTokens).toBeLessThanOrEqual(16 * s!.questionTokens.max);
    expect(s!.shared.promptTokensComputed).toBeGreaterThanOrEqual(doc);
    expect(s!.shared.promptTokensComputed).toBeLessThan(s!.unshared.promptTokensComputed);
    expect(s!.shared.generatedTokens).toBe(16 * defaults.shared.newTokens);
    expect(s!.unshared.generatedTokens).toBe(s!.shared.generatedTokens);
    expect(s!.identicalAnswers).toBe(16); // float32 on cpu: sharing changes what is computed, not the answers
    expect(s!.speedup).toBeCloseTo(s!.unshared.wallMs / s!.shared.wallMs, 9);

    expect(b).toMatchObject({ batch: 4, newTokens: 128, busyMs: 10, freeMs: 10, runs: 3 });
    for (const x of [b!.idleTokPerSec, b!.busyTokPerSec, b!.ratio]) expect(finitePositive(x)).toBe(true);
    expect(b!.ratio).toBeCloseTo(b!.busyTokPerSec / b!.idleTokPerSec, 9);
    expect(b!.busyFraction).toBeGreaterThan(0.1); // the event loop really was busy…
    expect(b!.busyFraction).toBeLessThan(0.95); // …and really got free time

    // http: every request of both ways ran to its length (the way() check throws otherwise), timings sane.
    expect(h).toMatchObject({ clients: defaults.http.clients, requests: defaults.http.requests, newTokens: defaults.http.newTokens });
    expect(h!.ways.map((w) => w.mode)).toEqual(['http', 'direct']);
    for (const w of h!.ways) {
      expect(w.tokPerSec).toBeCloseTo((h!.requests * h!.newTokens * 1e3) / w.wallMs, 6);
      for (const x of [w.requestsPerSec, w.ttftMs.p50, w.itlMs.p50]) expect(finitePositive(x)).toBe(true);
    }
    expect(h!.overhead).toBeCloseTo(h!.ways[1].tokPerSec / h!.ways[0].tokPerSec, 9);

    // pid: a 64-token document (4 full KV blocks of 16) and S = 1, 4 sub-tasks, three ways each.
    expect(pid!.cases.map((x) => [x.documentTokens, x.subtasks, x.runs.map((r) => r.way)])).toEqual([
      [64, 1, ['independent', 'pid', 'pid+shared']], [64, 4, ['independent', 'pid', 'pid+shared']]]);
    for (const x of pid!.cases) {
      const [ind, off, on] = x.runs;
      const S = x.subtasks, newTokens = defaults.pid.newTokens;
      // Every way computes each sub-task prompt once; independent computes the document S times, pid once.
      const promptTokens = ind.promptTokensComputed - S * 64;
      expect(promptTokens).toBeGreaterThanOrEqual(S * defaults.pid.promptTokens[0]);
      expect(promptTokens).toBeLessThanOrEqual(S * defaults.pid.promptTokens[1]);
      expect(off.promptTokensComputed).toBe(64 + promptTokens);
      expect(on.promptTokensComputed).toBe(64 + promptTokens);
      // Greedy f32 on cpu: sharing changes what is read, not the answers.
      expect(x.runs.map((r) => r.sameAsIndependent)).toEqual([S, S, S]);
      // The shared path is taken only with it on and a group of 2 or more: every decode step after the first token.
      expect([ind.sharedPrefixTokens, off.sharedPrefixTokens, on.sharedPrefixTokens]).toEqual([0, 0, S > 1 ? S * (newTokens - 1) : 0]);
      expect(ind.decodeMsPerStep).toBeNull();
      for (const r of [off, on]) expect(finitePositive(r.decodeMsPerStep!)).toBe(true);
      expect(x.speedup).toBeCloseTo(ind.wallMs / on.wallMs, 9);
    }

    const text = formatText(report);
    expect(text).toMatch(/concurrency: 32 prompts of \d+–\d+ tokens \(\d+ in all\), 16 new tokens each/);
    expect(text).toMatch(/^32 concurrent stream\(\) calls +│ +[\d.]+ +\d+ │/m);
    expect(text).toMatch(/^one generate\(\) of 32 prompts † +│/m);
    expect(text).toMatch(/^one after another +│/m);
    expect(text).toMatch(/shared document: 256-token document \+ 16 questions of \d+–\d+ tokens, 8 new tokens each/);
    expect(text).toMatch(/speedup [\d.]+× · identical answers 16\/16/);
    expect(text).toMatch(/busy event loop: \d+ batches of 4 × 128 new tokens \(prompts of 16\) submitted together; .* median of 3 runs each/);
    expect(b!.rounds).toBeGreaterThanOrEqual(1);
    expect(text).toMatch(/ratio busy ÷ idle [\d.]+ \(target ≥ 0\.9/);
    expect(text).toMatch(/pid \(encode once, decode many\): one document of D tokens \+ S sub-task prompts of 8–24 tokens, 8 new tokens each/);
    expect(text).toMatch(/^64 +4 +pid\+shared +│ +[\d.]+ +│ +\d+ +│ +[\d.]+ +28 +│ +4\/4 +[\d.]+×$/m);
    expect(text).toMatch(/^64 +4 +independent +│ +[\d.]+ +│ +\d+ +│ +n\/a +0 +│ +4\/4 *$/m);
    expect(text).not.toContain('% roofline = '); // no grid, no grid footnote
  });

  test('bad arguments and models: exit code 1 with the reason', () => {
    let r = eet('bench', '--model', 'tiny', '--device', 'cpu', '--batch', '0');
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/Expected a comma-separated list of integers between 1 and 4096 for --batch but received "0"/);
    r = eet('bench', '--model', 'tiny', '--device', 'cpu', '--new', '1');
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/new tokens >= 2/);
    r = eet('bench', '--model', 'tiny', '--device', 'cpu', '--scenarios', 'concurrency,nope');
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/Expected a comma-separated list of concurrency, shared, busy, http, pid \(or all\) for --scenarios but received "concurrency,nope"/);
    r = eet('bench', '--model', 'tiny', '--device', 'cpu', '--no-grid');
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/--no-grid needs --scenarios/);
    r = eet('bench', '--model', path.join(root, 'nope.bin'), '--device', 'cpu', '--json');
    expect(r.status).toBe(1);
    expect(JSON.parse(r.stdout).models[0]).toMatchObject({ arch: null, status: 'error', error: { code: 'ERR_MODEL_FORMAT' } });
    expect(r.stderr).toMatch(/^eet: error: .*nope\.bin: Cannot open the model .* \(ERR_MODEL_FORMAT\)$/m);
    r = eet('bench', '--model', 'tinyy', '--device', 'cpu');
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/Expected a built-in shape \(tiny, tinyllama-1\.1b, .*\) or a model path for --model but received "tinyy": no such shape or file/);
    // stories260K holds 512 positions per sequence.
    r = eet('bench', '--model', MODEL, '--device', 'cpu', '--prompt', '600', '--new', '8', '--json');
    expect(r.status).toBe(1);
    expect(JSON.parse(r.stdout).models[0]).toMatchObject({ status: 'error', error: { code: 'ERR_INVALID_ARG' } });
    expect(r.stderr).toMatch(/maxSeqLen .*\(the grid needs prompt \+ new tokens = 608 positions per sequence\)/);
  });

  test('a grid cell that runs for a while reports its progress (prompt tokens, generated tokens)', async () => {
    const lines: string[] = [];
    await runBench({
      models: ['tiny'], device: 'cpu', dtype: 'float32', grid: { batch: [2], prompt: [400], newTokens: [60] }, repeat: 1, seed: 1,
      scenarios: [], bandwidthBytes: 1 << 20, log: (l) => lines.push(l), progressMs: 1,
    });
    const ticks = lines.filter((l) => l.includes('(of 800 and 120 per run)'));
    expect(ticks.length).toBeGreaterThan(0);
    expect(ticks.at(-1)).toMatch(/^ {2}batch 2 prompt 400 new 60: \d+ s, prompt tokens \d+, generated \d+ /);
  });

  test('--list-shapes --json', () => {
    const r = eet('bench', '--list-shapes', '--json');
    expect(r.status).toBe(0);
    expect(JSON.parse(r.stdout).map((s: { name: string }) => s.name)).toEqual(['tiny', 'tinyllama-1.1b', 'llama-7b', 'gpt3-layer-2l', 'gpt2-124m', 'gpt2-1.5b', 't5-tiny', 't5-base']);
  });
});

describe('the bench measures the path users take', () => {
  const sizes = { maxBatch: 3, maxSeqLen: 40, maxStepTokens: 16, prefillChunk: 8, positions: 40 }; // prefill in chunks of 8

  for (const [name, file] of [['stories260K.bin', (): string => MODEL], ['a GGUF llama', (): string => ggufLlama]] as const) {
    test(`${name}: the bench's greedy tokens are model.generate()'s for the same ids`, async () => {
      const bench = await loadBenchModel(file(), 'cpu', 'float32', 1, sizes);
      let run;
      try {
        expect(bench.source).toBe('file');
        expect(bench.model.config).toMatchObject({ maxBatch: 3, maxContext: 40, maxStepTokens: 16 });
        run = await runCell(bench.model, { batch: 3, prompt: 20, newTokens: 12 }, new TokenSource(bench.model.config.vocabSize, 5));
      } finally {
        await bench.model.dispose();
      }
      expect(run.prompts.map((p) => p.length)).toEqual([20, 20, 20]);
      expect(run.tokens.map((t) => t.length)).toEqual([12, 12, 12]);
      const model = await loadModel(file(), { device: 'cpu', dtype: 'float32' });
      try {
        for (let i = 0; i < 3; i++) {
          const alone = await model.generate(run.prompts[i], { temperature: 0, maxNewTokens: 12, ignoreEos: true });
          expect(run.tokens[i]).toEqual(alone.tokens);
          // Without ignoreEos a user's generation may stop earlier, never differ.
          const plain = await model.generate(run.prompts[i], { temperature: 0, maxNewTokens: 12 });
          expect(run.tokens[i].slice(0, plain.tokens.length)).toEqual(plain.tokens);
        }
      } finally {
        await model.dispose();
      }
      expect(new Set(run.tokens.map((t) => t.join())).size).toBeGreaterThan(1); // different prompts, different answers
    });
  }

  test('built-in shapes: random weights from the seed (same seed, same logits; another seed, others)', async () => {
    const prompt = new TokenSource(512, 1).ids(10);
    const logits = async (seed: number): Promise<Float32Array> => {
      const { model, source } = await loadBenchModel('tiny', 'cpu', 'float32', seed, sizes);
      try {
        expect(source).toBe('builtin');
        expect(model.config).toMatchObject({ format: 'random', maxSeqLen: 512 });
        return (await model.generate(prompt, { temperature: 0, maxNewTokens: 1, logits: true })).logits![0];
      } finally {
        await model.dispose();
      }
    };
    const a = await logits(1);
    expect(await logits(1)).toEqual(a);
    expect(await logits(2)).not.toEqual(a);
  });

  test('scenarios fit a file model\'s positions (stories260K: 512): the shared document gives way', async () => {
    const settings: ScenarioSettings = {
      concurrency: { prompts: 4, promptTokens: [16, 600], newTokens: 4 },
      shared: { documentTokens: 1000, questions: 3, questionTokens: [8, 24], newTokens: 4 },
      busy: { batch: 2, promptTokens: 8, newTokens: 16, busyMs: 2, freeMs: 2, runs: 1 },
      http: { clients: 2, requests: 4, promptTokens: [8, 600], newTokens: 4 },
      pid: { documentTokens: [1000], subtasks: [2], promptTokens: [8, 24], newTokens: 4 },
    };
    const { model } = await loadBenchModel(MODEL, 'cpu', 'float32', 1, { maxBatch: 1, positions: 1 });
    try {
      const s = await runScenarios(model, ['concurrency', 'shared', 'busy', 'pid'], settings, new TokenSource(512, 3), {}, () => {});
      expect(s.concurrency!.promptTokens.max).toBeLessThanOrEqual(512 - 4);
      expect(s.concurrency!.variants.every((v) => v.generatedTokens === 16)).toBe(true);
      expect(s.shared!.documentTokens).toBe(512 - 24 - 4);
      expect(s.shared!.shared.promptTokensComputed).toBeLessThan(s.shared!.unshared.promptTokensComputed);
      expect(s.shared!.identicalAnswers).toBe(3);
      expect(s.busy).toMatchObject({ batch: 2, newTokens: 16, runs: 1 });
      expect(s.pid!.cases.map((c) => [c.documentTokens, c.subtasks])).toEqual([[512 - 24 - 4, 2]]);
      expect(s.pid!.cases[0].runs.map((r) => r.sameAsIndependent)).toEqual([2, 2, 2]);
      expect(model.stats()).toMatchObject({ requests: 0, running: 0 }); // the scenarios' contexts are their own
    } finally {
      await model.dispose();
    }
  });
});

describe('AddonModel.loadTensor({ random })', () => {
  const shape = builtinShape('tiny')!;
  const config = (device: string): EngineConfig => ({
    arch: 'llama', dim: shape.dim, hiddenDim: shape.hiddenDim, nLayers: shape.nLayers, nHeads: shape.nHeads, nKvHeads: shape.nKvHeads,
    headDim: shape.headDim, vocabSize: shape.vocabSize, maxSeqLen: 64, normEps: 1e-5, ropeTheta: 10000, ropeLayout: 'half',
    tiedEmbeddings: shape.tiedEmbeddings, dtype: 'float32', device, maxBatch: 1, maxContext: 64, maxStepTokens: 16,
  });
  const source = (i: number, t: TensorSpec): AddonRandomSource =>
    ({ random: { seed: 77 + i, std: t.role === 'norm' ? 0 : 0.02, mean: t.role === 'norm' ? 1 : 0 }, shape: t.shape });

  async function logits(device: string): Promise<Float32Array> {
    const m = new TestEngine(config(device));
    try {
      const tensors = shapeTensors(shape);
      await Promise.all(tensors.map((t, i) => m.loadTensor(t.name, source(i, t))));
      await m.finalize();
      const tokens = Int32Array.from([1, 17, 300, 42, 511, 9, 250, 3]);
      const r = await m.step({
        slots: Int32Array.of(m.startSequence(1n)), tokens, counts: Int32Array.of(tokens.length),
        temperature: new Float32Array(1), topK: new Int32Array(1), topP: Float32Array.of(1), repetitionPenalty: Float32Array.of(1), logits: 'all',
      });
      return r.logits!;
    } finally {
      m.dispose();
    }
  }

  test('deterministic, the same on cpu and emu, numerically sane', async () => {
    const [cpu, emu, again] = [await logits('cpu'), await logits('emu'), await logits('cpu')];
    expect(cpu.length).toBe(8 * shape.vocabSize);
    expect(again).toEqual(cpu);
    let num = 0, den = 0, sum = 0, sq = 0;
    for (let i = 0; i < cpu.length; i++) {
      expect(Number.isFinite(cpu[i])).toBe(true);
      num += (emu[i] - cpu[i]) ** 2;
      den += cpu[i] ** 2;
      sum += cpu[i];
      sq += cpu[i] * cpu[i];
    }
    expect(num / den).toBeLessThan(1e-7);
    // tied classifier with std 0.02 rows over RMS-normalized states: logits ~ N(0, (0.02 √D)^2) = std 0.16
    const std = Math.sqrt(sq / cpu.length - (sum / cpu.length) ** 2);
    expect(std).toBeGreaterThan(0.05);
    expect(std).toBeLessThan(0.5);
  });

  test('validation: the tensor name and shape are checked; std must be >= 0', async () => {
    const m = new TestEngine(config('cpu'));
    try {
      await expect(m.loadTensor('blk.0.attn_q', { random: { seed: 1, std: 0.02 }, shape: [64, 63] })).rejects.toMatchObject({ code: 'ERR_MODEL_FORMAT' });
      await expect(m.loadTensor('nope', { random: { seed: 1, std: 0.02 }, shape: [64] })).rejects.toMatchObject({ code: 'ERR_MODEL_FORMAT' });
      await expect(m.loadTensor('output_norm', { random: { seed: 1, std: -1 }, shape: [64] })).rejects.toMatchObject({ code: 'ERR_INVALID_ARG' });
      await expect(m.loadTensor('output_norm', { random: { seed: -1, std: 0 }, shape: [64] })).rejects.toMatchObject({ code: 'ERR_INVALID_ARG' });
    } finally {
      m.dispose();
    }
  });
});

// `eet bench` as a child process (dist/cli/main.js: run `npx tsc -p tsconfig.build.json` first), and the random
// tensor source it builds its models from (AddonModel.loadTensor({ random })).
import { spawnSync } from 'child_process';
import * as path from 'path';
import { TestEngine, type EngineConfig } from '../util/engine-helpers';
import type { TensorSpec } from '../../lib/arch';
import { AddonRandomSource, binding } from '../../lib/binding';
import { builtinShape, shapeTensors } from '../../lib/bench/shapes';
import { MODEL } from '../util/stories260k';

const root = path.resolve(__dirname, '../..');
const cli = path.join(root, 'dist', 'cli', 'main.js');

function eet(...args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [cli, ...args], { cwd: root, encoding: 'utf8', timeout: 120_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

const finitePositive = (x: unknown): boolean => typeof x === 'number' && Number.isFinite(x) && x > 0;

describe('eet bench', () => {
  test('--model tiny --device cpu --json: every cell timed, roofline and memory filled in', () => {
    const r = eet('bench', '--model', 'tiny', '--device', 'cpu', '--batch', '1,3', '--prompt', '5,12', '--new', '3', '--json');
    expect(r.status).toBe(0);
    const report = JSON.parse(r.stdout);
    expect(report.tool).toBe('eet bench');
    expect(report.device.id).toBe('cpu');
    expect(report.peak).toBeNull();
    expect(finitePositive(report.bandwidth.bytesPerSecond)).toBe(true);
    const [m] = report.models;
    expect(m).toMatchObject({ model: 'tiny', source: 'builtin', arch: 'llama', status: 'ok', params: 123712 });
    expect(m.memory.total).toBe(m.memory.weights + m.memory.kvCache + m.memory.workspace);
    expect(m.memory.weights).toBeGreaterThanOrEqual(123712 * 4);
    expect(m.results.map((c: { batch: number; prompt: number }) => [c.batch, c.prompt])).toEqual([[1, 5], [1, 12], [3, 5], [3, 12]]);
    for (const c of m.results) {
      for (const k of ['ttftMs', 'prefillTokPerSec', 'prefillTflops', 'decodeMsPerStep', 'decodeTokPerSec', 'decodeGBps', 'decodeRooflinePct']) {
        expect(`${k}: ${finitePositive(c[k])}`).toBe(`${k}: true`);
      }
      expect(c.prefillPeakPct).toBeNull();
    }
  });

  test('text output: the table, the memory line, GPT-2 shapes reported as not supported yet', () => {
    const r = eet('bench', '--model', 'tiny,gpt2-124m', '--device', 'emu', '--batch', '1', '--prompt', '4', '--new', '2');
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/copy bandwidth [\d.]+ GB\/s .* tensor peak n\/a/);
    expect(r.stdout).toMatch(/tiny — .* memory: weights [\d.]+ kB, KV cache [\d.]+ kB, workspace [\d.]+ kB/);
    expect(r.stdout).toMatch(/batch prompt new │ TTFT ms prefill tok\/s +TFLOP\/s % peak │ ms\/token decode tok\/s +GB\/s % roofline/);
    expect(r.stdout).toMatch(/^ +1 +4 +2 │ /m);
    expect(r.stdout).toContain('gpt2-124m: not supported yet — the gpt2 architecture is not supported yet');
  });

  test('a llama2.c checkpoint path (stories260K)', () => {
    const r = eet('bench', '--model', MODEL, '--device', 'cpu', '--batch', '2', '--prompt', '20', '--new', '4', '--json');
    expect(r.status).toBe(0);
    const [m] = JSON.parse(r.stdout).models;
    expect(m).toMatchObject({ source: 'file', status: 'ok', params: 260032 });
    expect(m.results).toHaveLength(1);
  });

  test('bad grids and a missing model: exit code 1 with the reason', () => {
    let r = eet('bench', '--model', 'tiny', '--device', 'cpu', '--batch', '0');
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/Expected a comma-separated list of integers between 1 and 65536 for --batch but received "0"/);
    r = eet('bench', '--model', 'tiny', '--device', 'cpu', '--new', '1');
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/new tokens >= 2/);
    r = eet('bench', '--model', path.join(root, 'nope.bin'), '--device', 'cpu', '--json');
    expect(r.status).toBe(1);
    expect(JSON.parse(r.stdout).models[0]).toMatchObject({ status: 'error', error: { code: 'ERR_MODEL_FORMAT' } });
    expect(r.stderr).toMatch(/^eet: error: .*nope\.bin: Cannot open the model .* \(ERR_MODEL_FORMAT\)$/m);
  });

  test('--list-shapes --json', () => {
    const r = eet('bench', '--list-shapes', '--json');
    expect(r.status).toBe(0);
    expect(JSON.parse(r.stdout).map((s: { name: string }) => s.name)).toEqual(['tiny', 'tinyllama-1.1b', 'llama-7b', 'gpt3-layer-2l', 'gpt2-124m', 'gpt2-1.5b']);
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

// scripts/op-bench.js --dry-run (the per-op benchmark on emu: dist/ must be built, `npx tsc -p tsconfig.build.json`)
// and the addon's timeOpSync under it. On emu every op of a LLaMA and a GPT-2 step runs a few times and its outputs
// are checked; the report must say that its times are the host's. Times are never asserted.
import { spawnSync } from 'child_process';
import * as path from 'path';
import { binding } from '../../lib/binding';
import { EetError, InvalidArgumentError } from '../../lib/errors';
import type { OpBenchReport } from '../../lib/bench/ops';

const root = path.resolve(__dirname, '../..');
const script = path.join(root, 'scripts', 'op-bench.js');

function opBench(...args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [script, ...args], { cwd: root, encoding: 'utf8', timeout: 60_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe('scripts/op-bench.js --dry-run (emu)', () => {
  let report: OpBenchReport;
  beforeAll(() => {
    const r = opBench('--dry-run', '--json');
    expect(`${r.status} ${r.stderr.split('\n').filter((l) => !/: (decode|prefill) b=/.test(l)).join('\n')}`.trim()).toBe('0');
    report = JSON.parse(r.stdout);
  });

  test('labelled as host-clock times, not GPU times', () => {
    expect(report).toMatchObject({ tool: 'eet op-bench', device: { id: 'emu' }, dtype: 'float16', peak: null });
    expect(report.timing).toMatchObject({ clock: 'host', gpu: false, cacheScrubbed: false, warmup: 1, reps: 2 });
    expect(report.timing.note).toContain('say nothing about a GPU');
  });

  test('every op of a LLaMA and a GPT-2 step, decode and prefill, ran and passed its output check', () => {
    expect(report.models.map((m) => [m.model, m.arch, m.settings.map((s) => s.label)])).toEqual([
      ['tiny', 'llama', ['decode b=1 ctx=20', 'decode b=2 ctx=20', 'prefill b=1 prompt=8']],
      ['tiny-gpt2', 'gpt2', ['decode b=1 ctx=20', 'decode b=2 ctx=20', 'prefill b=1 prompt=8']],
    ]);
    const all = report.models.flatMap((m) => m.settings.flatMap((s) => s.ops.map((o) => ({ ...o, where: `${m.model} ${s.label} ${o.name}` }))));
    expect(all.filter((o) => o.status !== 'ok').map((o) => `${o.where}: ${o.error?.message}`)).toEqual([]);
    expect([...new Set(all.map((o) => o.op))].sort()).toEqual(
      ['act', 'attention', 'embedding', 'gemm', 'gemm_q8', 'kv_append', 'norm', 'rope', 'rope_kv_append', 'sample', 'shared_attention']);
    for (const o of all) {
      expect(`${o.where}: ${[o.medianMs, o.minMs, o.maxMs, o.floorMs].every((x) => typeof x === 'number' && x >= 0)}`).toBe(`${o.where}: true`);
      expect(o.minMs! <= o.medianMs! && o.medianMs! <= o.maxMs!).toBe(true);
    }
    for (const s of report.models.flatMap((m) => m.settings)) {
      const own = s.ops.filter((o) => o.perStep > 0);
      expect(s.step.ms).toBeCloseTo(own.reduce((a, o) => a + o.perStep * o.medianMs!, 0), 9);
    }
  });

  test('the text report: one table per shape and step, the warning first', () => {
    const r = opBench('--dry-run', '--model', 'tiny', '--batch', '1', '--prompt', '4');
    expect(r.status).toBe(0);
    const lines = r.stdout.split('\n');
    expect(lines[0]).toMatch(/^eet op-bench: emu .* float16 · copy bandwidth [\d.]+ GB\/s .* tensor peak n\/a/);
    expect(lines[1]).toMatch(/^NOT GPU TIMES: host clock on emu/);
    expect(r.stdout).toContain('tiny (llama) — decode b=1 ctx=20');
    expect(r.stdout).toContain('tiny (llama) — prefill b=1 prompt=4');
    expect(r.stdout).toMatch(/^op +×\/step +shape +│ +median µs +GB\/s +% BW +TFLOP\/s +% peak +│ +floor µs +% roofline$/m);
    expect(r.stdout).toMatch(/^output_norm \+ lm_head +1 +M=1 N=512 K=64 \+ rms_norm +│/m);
    expect(r.stdout).toMatch(/^lm_head +— +M=1 N=512 K=64 +│/m); // the unfused pair, a variant
  });

  test('--ops gemm --no-decode --square: the prefill GEMMs only (the tensor-core tiles at 80 tokens) and a square GEMM', () => {
    const r = opBench('--dry-run', '--model', 'tiny', '--no-decode', '--ops', 'gemm', '--prompt', '80', '--square', '64', '--json');
    expect(r.status).toBe(0);
    const rep = JSON.parse(r.stdout) as OpBenchReport;
    expect(rep.only).toEqual(['gemm']);
    expect(rep.models.map((m) => [m.model, m.settings.map((s) => s.label)])).toEqual([['tiny', ['prefill b=1 prompt=80']]]);
    const ops = rep.models[0].settings[0].ops;
    expect(ops.map((o) => [o.name, o.op, o.about, o.status])).toEqual([
      ['attn_q|k|v', 'gemm', 'M=80 N=128 K=64', 'ok'], ['attn_output', 'gemm', 'M=80 N=64 K=64', 'ok'],
      ['ffn_gate|up', 'gemm', 'M=80 N=344 K=64', 'ok'], ['ffn_down', 'gemm', 'M=80 N=64 K=172', 'ok'],
      ['output_norm + lm_head', 'gemm', 'M=1 N=512 K=64 + rms_norm', 'ok'], ['lm_head', 'gemm', 'M=1 N=512 K=64', 'ok'],
    ]);
    expect(rep.square.map((o) => [o.name, o.about, o.perStep, o.flops, o.status])).toEqual([['square 64', 'M=64 N=64 K=64', 0, 2 * 64 ** 3, 'ok']]);
    expect(opBench('--dry-run', '--ops', 'gemm,nope').stderr).toMatch(/expected ops among gemm, gemm_q8, .* for --ops but received gemm,nope/);
  });

  test('bad usage exits 2 and says why', () => {
    const r = opBench('--dry-run', '--model', 'no-such-shape');
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/unknown shape no-such-shape \(known: .*tinyllama-1\.1b.*tiny-gpt2/);
    expect(opBench('--dry-run', '--reps', '0').stderr).toMatch(/expected positive integers for --reps/);
  });
});

describe('timeOpSync', () => {
  const b = binding();
  const norm = (y: unknown) => ({
    kind: 'rms', dtype: 0, rows: 3, cols: 8, eps: 1e-5,
    x: new b.AddonTensor('emu', 0, 24, new Float32Array(24).fill(0.5)), weight: new b.AddonTensor('emu', 0, 8, new Float32Array(8).fill(2)), y,
  });

  test('runs the op warm-up + reps times on emu: one host-clock time per timed launch, the output written', () => {
    const y = new b.AddonTensor('emu', 0, 24, null, 'poison');
    const t = b.timeOpSync('norm', 'emu', norm(y), { warmup: 0, reps: 3 });
    expect([t.clock, t.cacheScrubbed, t.ms.length]).toEqual(['host', false, 3]);
    expect(Array.from(y.readSync() as Float32Array).every((v) => Math.abs(v - 2) < 1e-4)).toBe(true); // 0.5 / rms(0.5) · 2
  });

  test('errors are EetErrors with codes: bad op, bad counts, bad arguments (checked once, before any launch)', () => {
    const y = new b.AddonTensor('emu', 0, 24, null, 'poison');
    const err = (f: () => unknown): EetError => { try { f(); } catch (e) { return e as EetError; } throw new Error('no error'); };
    const e1 = err(() => b.timeOpSync('no_such_op', 'emu', {}, { reps: 1 }));
    expect([e1 instanceof InvalidArgumentError, e1.code, e1.message]).toEqual([true, 'ERR_INVALID_ARG', 'Expected a known op name for op but received no_such_op of type string']);
    expect(err(() => b.timeOpSync('norm', 'emu', norm(y), { reps: 0 })).message).toBe('Expected integer in [1, 10000] for reps but received 0 of type number');
    expect(err(() => b.timeOpSync('norm', 'emu', norm(y), { reps: 1, warmup: -1 })).code).toBe('ERR_INVALID_ARG');
    const small = new b.AddonTensor('emu', 0, 8, null, 'poison');
    expect(err(() => b.timeOpSync('norm', 'emu', norm(small), { reps: 2 })).message).toBe('Expected at least 24 elements for y but received 8');
    expect(Array.from(small.readSync() as Float32Array).every(Number.isNaN)).toBe(true); // nothing launched
    expect(err(() => b.timeOpSync('norm', 'emu', norm(y), null as never)).code).toBe('ERR_INVALID_ARG');
  });
});

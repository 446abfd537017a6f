// scripts/gpu-suite.sh --dry-run: the GPU kit's own test. The same steps run on cpu/emu at small sizes (no
// sanitizer; python baselines skipped without torch), and the report and JSON must exist and name every step.
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

const root = path.resolve(__dirname, '..', '..');
// Most valuable first: correctness, speed (the model bench, each op, the prefill GEMMs beside cuBLAS, serving),
// sanitizers, HF baselines.
const STEPS = ['addon', 'tsc', 'ops', 'models', 'bench', 'bench-eager', 'opbench', 'gemm-bench', 'cublas', 'serving', 'pid-t5', 'memcheck', 'racecheck', 'hf-bench', 'fixtures', 'llama-cpp'];

describe('scripts/gpu-suite.sh --dry-run', () => {
  const out = fs.mkdtempSync(path.join(os.tmpdir(), 'eet-gpu-suite-'));
  let r: ReturnType<typeof spawnSync>;
  let report: {
    dryRun: boolean;
    steps: Array<{ name: string; status: string; note: string }>;
    ops: { passed: number; failed: number } | null;
    bench: { models: Array<{ model: string; status: string; results: unknown[] }> } | null;
    opbench: { timing: { gpu: boolean }; models: Array<{ model: string; settings: Array<{ ops: Array<{ status: string }> }> }> } | null;
    serving: { grid: unknown; models: Array<{ model: string; status: string; scenarios?: Record<string, unknown> }> } | null;
  };

  beforeAll(() => {
    r = spawnSync('bash', ['scripts/gpu-suite.sh', '--dry-run'], {
      cwd: root,
      env: { ...process.env, OUT: out, SUITE_DEADLINE_S: '240' },
      encoding: 'utf8',
      timeout: 280000,
    });
    report = JSON.parse(fs.readFileSync(path.join(out, 'report.json'), 'utf8'));
  }, 300000);

  afterAll(() => fs.rmSync(out, { recursive: true, force: true }));

  test('exits 0 and writes report.md, report.json, logs.tar.gz', () => {
    expect(r.status).toBe(0);
    for (const f of ['report.md', 'report.json', 'logs.tar.gz']) expect(fs.existsSync(path.join(out, f))).toBe(true);
    expect(fs.readdirSync(out).length).toBeLessThanOrEqual(8); // the device returns at most 8 files
  });

  test('every step is in the report; the ones that can run here passed', () => {
    expect(report.dryRun).toBe(true);
    expect(report.steps.map((s) => s.name)).toEqual(STEPS);
    const status = Object.fromEntries(report.steps.map((s) => [s.name, s.status]));
    for (const name of ['addon', 'tsc', 'ops', 'models', 'bench', 'bench-eager', 'opbench', 'gemm-bench', 'serving', 'pid-t5', 'memcheck', 'racecheck']) {
      expect(`${name}: ${status[name]}`).toBe(`${name}: pass`);
    }
    expect(status['llama-cpp']).toBe('skipped');
    const md = fs.readFileSync(path.join(out, 'report.md'), 'utf8');
    for (const name of STEPS) expect(md).toContain(`| ${name} |`);
    expect(md).toContain('## Benchmark (eet bench)');
    expect(md).toContain('## Decode launched from the host (eet bench --no-cuda-graphs)');
    expect(md).toContain('## Per-op benchmark (scripts/op-bench.js)');
    expect(md).toContain('## Prefill GEMMs: eet vs cuBLAS (gemm-bench, scripts/cublas_bench.py)');
    // the tiny shape at 80 tokens (the tensor-core GEMM) and the square GEMM, in both dtypes (cuBLAS: n/a without torch)
    expect(md).toMatch(/^\| tiny \| prefill b=1 prompt=80 \| attn_q\\\|k\\\|v \| 80 128 64 \| [\d.]+ \| [\d.na/]+ \| [\d.na/×]+ \| [\d.]+ \|/m);
    expect(md).toMatch(/^\| — \| square \| square 64 \| 64 64 64 \| [\d.]+ \|/m);
    expect(md).toContain('**NOT GPU TIMES: host clock on emu');
    // the | of a name escaped in the table; a decode step runs q|k|v with attn_norm as its prologue
    expect(md).toMatch(/^\| attn_norm \+ attn_q\\\|k\\\|v \| 2 \| M=1 N=128 K=64 \+ rms_norm \| /m);
    expect(md).toContain('## Serving scenarios (eet bench --scenarios)');
    expect(md).toMatch(/\| 32 concurrent stream\(\) calls \|/);
    expect(md).toContain('## PiD on a T5 (eet bench --scenarios pid)');
    expect(md).toMatch(/^\| 200 \| 16 \| pid\+shared \|/m);
  });

  test('op cases ran and passed; the bench ran tiny and gpt2-124m; op-bench ran on emu; the serving step ran every scenario', () => {
    expect(report.ops!.passed).toBeGreaterThan(0);
    expect(report.ops!.failed).toBe(0);
    for (const name of ['tiny', 'gpt2-124m']) {
      const m = report.bench!.models.find((x) => x.model === name)!;
      expect([name, m.status, m.results.length]).toEqual([name, 'ok', 2]);
    }
    expect(report.opbench!.timing.gpu).toBe(false);
    expect(report.opbench!.models.map((m) => m.model)).toEqual(['tiny', 'tiny-gpt2']);
    expect(report.opbench!.models.flatMap((m) => m.settings.flatMap((x) => x.ops)).filter((o) => o.status !== 'ok')).toEqual([]);
    expect(report.serving!.grid).toBeNull();
    const [serving] = report.serving!.models;
    expect(serving.status).toBe('ok');
    expect(Object.keys(serving.scenarios!)).toEqual(['concurrency', 'shared', 'busy', 'http', 'pid']);
  });
});

describe('scripts/gpu-suite.sh --plan', () => {
  const plan = (...args: string[]): string[][] => {
    const r = spawnSync('bash', ['scripts/gpu-suite.sh', '--plan', ...args], { cwd: root, encoding: 'utf8', timeout: 30000 });
    expect(r.status).toBe(0);
    return r.stdout.trim().split('\n').map((l) => l.split('\t'));
  };

  test('on the GPU: every step in order, within a deadline that leaves the suite under 8 minutes', () => {
    const lines = plan();
    expect(lines[0][0]).toBe('deadline');
    // steps are cut at the deadline less 10 s (a killed one gets 5 s more); the report follows
    expect(Number(lines[0][1]) + 5).toBeLessThanOrEqual(480 - 10);
    expect(lines.slice(1).map((l) => l[0])).toEqual(STEPS);
    const cmd = Object.fromEntries(lines.slice(1).map((l) => [l[0], l[2]]));
    expect(cmd.ops).toContain('-t cuda vs cpu-ref');
    expect(cmd.opbench).toMatch(/^node scripts\/op-bench\.js --model tinyllama-1\.1b,llama-7b,.* --device cuda .*--q8 --out \$WORK\/opbench\.json$/);
    expect(cmd['gemm-bench']).toMatch(/for dt in float16 bfloat16; do node scripts\/op-bench\.js .* --prompt 512,2048 --square 8192 .*--no-decode --ops gemm$/);
    expect(cmd.cublas).toMatch(/^python3 scripts\/cublas_bench\.py --from \$WORK\/gemm-float16\.json --dtypes float16,bfloat16 --device cuda /);
    expect(cmd.memcheck).toMatch(/^compute-sanitizer --tool memcheck .* -d cuda$/);
    expect(cmd['hf-bench']).toContain('--variants eager,compiled');
  });

  test('the dry run\'s plan: op-bench on emu', () => {
    const cmd = Object.fromEntries(plan('--dry-run').slice(1).map((l) => [l[0], l[2]]));
    expect(cmd.opbench).toBe('node scripts/op-bench.js --dry-run --out $WORK/opbench.json');
  });
});

// scripts/gpu-suite.sh --dry-run: the GPU kit's own test. The same steps run on cpu/emu at small sizes (no
// sanitizer; python baselines skipped without torch), and the report and JSON must exist and name every step.
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

const root = path.resolve(__dirname, '..', '..');
const STEPS = ['addon', 'tsc', 'ops', 'models', 'fixtures', 'memcheck', 'racecheck', 'bench', 'serving', 'hf-bench', 'llama-cpp'];

describe('scripts/gpu-suite.sh --dry-run', () => {
  const out = fs.mkdtempSync(path.join(os.tmpdir(), 'eet-gpu-suite-'));
  let r: ReturnType<typeof spawnSync>;
  let report: {
    dryRun: boolean;
    steps: Array<{ name: string; status: string; note: string }>;
    ops: { passed: number; failed: number } | null;
    bench: { models: Array<{ model: string; status: string; results: unknown[] }> } | null;
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
    for (const name of ['addon', 'tsc', 'ops', 'models', 'memcheck', 'racecheck', 'bench', 'serving']) {
      expect(`${name}: ${status[name]}`).toBe(`${name}: pass`);
    }
    expect(status['llama-cpp']).toBe('skipped');
    const md = fs.readFileSync(path.join(out, 'report.md'), 'utf8');
    for (const name of STEPS) expect(md).toContain(`| ${name} |`);
    expect(md).toContain('## Benchmark (eet bench)');
    expect(md).toContain('## Serving scenarios (eet bench --scenarios)');
    expect(md).toMatch(/\| 32 concurrent stream\(\) calls \|/);
  });

  test('op cases ran and passed; the bench ran tiny and gpt2-124m; the serving step ran every scenario', () => {
    expect(report.ops!.passed).toBeGreaterThan(0);
    expect(report.ops!.failed).toBe(0);
    for (const name of ['tiny', 'gpt2-124m']) {
      const m = report.bench!.models.find((x) => x.model === name)!;
      expect([name, m.status, m.results.length]).toEqual([name, 'ok', 2]);
    }
    expect(report.serving!.grid).toBeNull();
    const [serving] = report.serving!.models;
    expect(serving.status).toBe('ok');
    expect(Object.keys(serving.scenarios!)).toEqual(['concurrency', 'shared', 'busy', 'http', 'pid']);
  });
});

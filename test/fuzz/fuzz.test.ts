// The fuzzer's CI budget (scripts/fuzz/run.js --ci: a fixed seed, 300 cases per format over llama2.c checkpoints and
// tokenizers, GGUF files, safetensors files and Hugging Face folders) must end with no failure: no crash, hang,
// heap exhaustion, event-loop stall, untyped or internal error, and every unmutated seed running cleanly. It runs the
// compiled package (dist/: `npm test` builds it first). Non-finite logits from fuzzed weights end in ERR_NUMERIC
// (coded). A failure prints each case's mutations and the command that replays it.
import { execFile } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

interface Summary {
  cases: number;
  seconds: number;
  counts: Record<string, Record<string, number>>;
  failures: Array<{ format: string; index: number; seed: number; outcome: string; step: string; code: string; message: string; desc?: string[]; dir?: string }>;
}

const ROOT = path.resolve(__dirname, '../..');

test('the CI fuzz budget: every case ends ok or with a coded error', async () => {
  const out = fs.mkdtempSync(path.join(os.tmpdir(), 'eet-fuzz-failures-'));
  const stdout = await new Promise<string>((resolve, reject) => {
    execFile(process.execPath, [path.join(ROOT, 'scripts/fuzz/run.js'), '--ci', '--json', '--out', out], { cwd: ROOT, maxBuffer: 64 * 2 ** 20 },
      (err, so, se) => (err && !so ? reject(new Error(`the fuzzer failed to run: ${err.message}\n${se}`)) : resolve(so)));
  });
  const s = JSON.parse(stdout.trim().split('\n').pop()!) as Summary;
  const report = s.failures.map((f) => `${f.format} case ${f.index}: ${f.outcome} at ${f.step} (${f.code}) ${f.message.split('\n')[0]}\n` +
    `    mutations: ${(f.desc ?? []).join('; ')}\n    replay: npm run fuzz -- --seed ${f.seed} --case ${f.index} --format ${f.format}`).join('\n');
  expect(report).toBe('');
  // Every case was run and classified; each format reached generation in some cases (a fuzzer whose every case
  // dies at the header would pass without testing much).
  const total = Object.values(s.counts).reduce((a, c) => a + Object.values(c).reduce((x, y) => x + y, 0), 0);
  expect(total).toBe(s.cases);
  for (const [format, c] of Object.entries(s.counts)) {
    expect([format, (c.ok ?? 0) >= s.cases / Object.keys(s.counts).length / 20]).toEqual([format, true]);
  }
  fs.rmSync(out, { recursive: true, force: true });
}, 300_000);

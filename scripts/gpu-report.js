#!/usr/bin/env node
// Writes the GPU suite's report (scripts/gpu-suite.sh): OUT/report.md and OUT/report.json from the suite's work
// folder: steps.tsv (name, status, exit code, seconds, note), logs/<step>.log, and the JSON the steps left there
// (ops.json and models.json from jest --json, bench.json from `eet bench --json`, opbench.json from
// scripts/op-bench.js, gemm-float16.json / gemm-bfloat16.json from its GEMM-only runs, cublas.json from
// cublas_bench.py, serving.json from `eet bench --no-grid --scenarios … --json`, hf.json from hf_bench.py).
// Usage: node scripts/gpu-report.js WORK OUT [--dry-run]
'use strict';
const fs = require('fs');
const path = require('path');

const [work, out] = process.argv.slice(2, 4);
const dry = process.argv.includes('--dry-run');
const root = path.resolve(__dirname, '..');
const readJson = (f) => { try { return JSON.parse(fs.readFileSync(path.join(work, f), 'utf8')); } catch { return null; } };
const readLog = (name) => { try { return fs.readFileSync(path.join(work, 'logs', `${name}.log`), 'utf8'); } catch { return ''; } };
const tail = (text, n) => text.trimEnd().split('\n').slice(-n).join('\n');
const fmt = (x, d = 1) => (typeof x === 'number' && Number.isFinite(x) ? x.toFixed(d) : 'n/a');

const steps = fs.readFileSync(path.join(work, 'steps.tsv'), 'utf8').trim().split('\n').filter(Boolean).map((l) => {
  const [name, status, rc, seconds, note] = l.split('\t');
  return { name, status, exitCode: rc === '-' ? null : Number(rc), seconds: Number(seconds), note: note || '' };
});

// jest --json: per test file, counts and the failures (first line of each message).
function jestSummary(j) {
  if (!j) return null;
  return {
    passed: j.numPassedTests, failed: j.numFailedTests + (j.numRuntimeErrorTestSuites || 0), skipped: j.numPendingTests + (j.numTodoTests || 0),
    files: j.testResults.map((f) => {
      const a = f.assertionResults || [];
      return {
        file: path.relative(root, f.name),
        passed: a.filter((t) => t.status === 'passed').length,
        failed: a.filter((t) => t.status === 'failed').length + (f.status === 'failed' && a.length === 0 ? 1 : 0),
        skipped: a.filter((t) => t.status === 'pending' || t.status === 'skipped' || t.status === 'todo').length,
        failures: [
          ...a.filter((t) => t.status === 'failed').map((t) => ({ test: t.fullName, message: (t.failureMessages[0] || '').split('\n').slice(0, 3).join(' ') })),
          ...(f.status === 'failed' && a.length === 0 ? [{ test: '(suite failed to run)', message: (f.message || '').split('\n').slice(0, 3).join(' ') }] : []),
        ],
      };
    }),
  };
}

// compute-sanitizer prints "========= ERROR SUMMARY: N errors" (memcheck) or "RACECHECK SUMMARY: N hazards ...".
function sanitizerVerdict(name) {
  const log = readLog(name);
  const lines = log.split('\n').filter((l) => /ERROR SUMMARY|RACECHECK SUMMARY|LEAK SUMMARY/.test(l)).map((l) => l.replace(/^=+ */, ''));
  return lines.length ? lines.join('; ') : null;
}

// eet bench beside HF (decode tok/s and TTFT ratios: eet / HF, > 1 means eet is faster / has a longer TTFT).
function comparisons(bench, hf) {
  if (!bench || !hf) return [];
  const rows = [];
  for (const m of bench.models) {
    const h = hf.models.find((x) => x.model === m.model);
    if (m.status !== 'ok' || !h) continue;
    for (const c of m.results) {
      const same = (v) => h.results.find((x) => x.variant === v && x.batch === c.batch && x.prompt === c.prompt && x.newTokens === c.newTokens && x.status === 'ok');
      const e = same('eager'), k = same('compiled');
      rows.push({
        model: m.model, batch: c.batch, prompt: c.prompt, newTokens: c.newTokens,
        eetDecodeTokPerSec: c.decodeTokPerSec, hfEagerDecodeTokPerSec: e?.decodeTokPerSec ?? null, hfCompiledDecodeTokPerSec: k?.decodeTokPerSec ?? null,
        eetTtftMs: c.ttftMs, hfEagerTtftMs: e?.ttftMs ?? null, hfCompiledTtftMs: k?.ttftMs ?? null,
      });
    }
  }
  return rows;
}
// eet's prefill GEMMs (gemm-bench, one report per dtype) beside cuBLAS at the same shapes (cublas.json), TFLOP/s.
function gemmComparison(eet, cublas) {
  if (!eet.float16 && !eet.bfloat16) return [];
  const cases = (r) => (r ? [...r.models.flatMap((m) => m.settings.flatMap((s) => s.ops.map((o) => ({ where: `${m.model}\t${s.label}`, o })))),
    ...(r.square || []).map((o) => ({ where: '\tsquare', o }))] : []);
  const tflops = (r, where, name) => cases(r).find((c) => c.where === where && c.o.name === name)?.o.tflops ?? null;
  const blas = (m, n, k, dtype) => cublas?.results.find((x) => x.m === m && x.n === n && x.k === k && x.dtype === dtype && x.status === 'ok')?.tflops ?? null;
  return cases(eet.float16 || eet.bfloat16).filter((c) => c.o.op === 'gemm').map(({ where, o }) => {
    const [m, n, k] = (o.about.match(/^M=(\d+) N=(\d+) K=(\d+)$/) || []).slice(1).map(Number);
    const [model, step] = where.split('\t');
    return {
      model, step, name: o.name, m, n, k,
      eet: { float16: tflops(eet.float16, where, o.name), bfloat16: tflops(eet.bfloat16, where, o.name) },
      cublas: { float16: blas(m, n, k, 'float16'), bfloat16: blas(m, n, k, 'bfloat16') },
    };
  });
}
const ratio = (a, b) => (typeof a === 'number' && typeof b === 'number' && b > 0 ? `${(a / b).toFixed(2)}×` : 'n/a');

const addonInfo = (() => { try { return JSON.parse(readLog('addon').split('\n').find((l) => l.startsWith('{'))); } catch { return null; } })();
const bench = readJson('bench.json');
const opbench = readJson('opbench.json');
const benchEager = readJson('bench-eager.json');
const serving = readJson('serving.json');
const pidT5 = readJson('pid-t5.json');
const hf = readJson('hf.json');
const gemmBench = { float16: readJson('gemm-float16.json'), bfloat16: readJson('gemm-bfloat16.json') };
const cublas = readJson('cublas.json');
const device = addonInfo?.cuda?.[0]?.name ?? (dry ? 'no GPU (dry run on cpu/emu)' : 'no CUDA device found');
const report = {
  tool: 'scripts/gpu-suite.sh', dryRun: dry, date: new Date().toISOString(), device,
  steps, ops: jestSummary(readJson('ops.json')), models: jestSummary(readJson('models.json')),
  sanitizers: { memcheck: sanitizerVerdict('memcheck'), racecheck: sanitizerVerdict('racecheck') },
  bench, opbench, gemmBench, cublas, gemmVsCublas: gemmComparison(gemmBench, cublas), serving, pidT5, hf, comparisons: comparisons(bench, hf),
};

// On the GPU, a test step that passed without running a single test means the cuda tests were all skipped.
for (const [name, sum] of [['ops', report.ops], ['models', report.models]]) {
  const s = steps.find((x) => x.name === name);
  if (!dry && s?.status === 'pass' && sum && sum.passed === 0) Object.assign(s, { status: 'fail', note: 'no test ran: every cuda test was skipped (no usable GPU?)' });
}

const md = [];
md.push(`# EET GPU suite${dry ? ' (dry run)' : ''} — ${device}`, '', `${report.date}; node ${process.version}.`, '');
md.push('| step | status | seconds | note |', '|---|---|---:|---|');
for (const s of steps) md.push(`| ${s.name} | ${s.status === 'pass' || s.status === 'skipped' ? s.status : `**${s.status}**`} | ${s.seconds} | ${s.note.replace(/\|/g, '\\|')} |`);
md.push('');
for (const [title, sum] of [['Op tests', report.ops], ['Model tests', report.models]]) {
  md.push(`## ${title}`, '');
  if (!sum) { md.push('No results (see the step above).', ''); continue; }
  md.push(`${sum.passed} passed, ${sum.failed} failed, ${sum.skipped} skipped.`, '', '| file | passed | failed | skipped |', '|---|---:|---:|---:|');
  for (const f of sum.files) md.push(`| ${f.file} | ${f.passed} | ${f.failed} | ${f.skipped} |`);
  const failures = sum.files.flatMap((f) => f.failures);
  if (failures.length) {
    md.push('', 'Failures:', '');
    for (const x of failures.slice(0, 30)) md.push(`- \`${x.test}\`: ${x.message.slice(0, 300)}`);
    if (failures.length > 30) md.push(`- … and ${failures.length - 30} more (logs.tar.gz)`);
  }
  md.push('');
}
// A bench report as Markdown through the compiled formatter; its JSON when dist/ is unusable.
function benchSection(title, r, step, file = 'format.js', formatter = 'formatMarkdown') {
  md.push('', `## ${title}`, '');
  if (!r) {
    md.push(`No results (see the ${step} step).`);
    return;
  }
  try {
    md.push(require(path.join(root, 'dist', 'bench', file))[formatter](r));
  } catch (e) {
    md.push('```json', JSON.stringify(r, null, 1).slice(0, 20000), '```');
  }
}
benchSection('Benchmark (eet bench)', bench, 'bench');
benchSection('Decode launched from the host (eet bench --no-cuda-graphs)', benchEager, 'bench-eager');
benchSection('Per-op benchmark (scripts/op-bench.js)', opbench, 'opbench', 'opformat.js', 'formatOpMarkdown');
md.push('', '## Prefill GEMMs: eet vs cuBLAS (gemm-bench, scripts/cublas_bench.py)', '');
if (report.gemmVsCublas.length) {
  const gpuTimes = [gemmBench.float16, gemmBench.bfloat16].every((r) => !r || r.timing.gpu) && (!cublas || cublas.timing.gpu);
  if (!gpuTimes) md.push('**NOT GPU TIMES: a dry run (eet on emu, torch on the cpu); the table only checks the report.**', '');
  md.push(`TFLOP/s, median of the timed launches, the L2 scrubbed before each. eet: ${gemmBench.float16?.timing.note ?? 'n/a'}. ` +
    `cuBLAS: ${cublas ? `torch ${cublas.torch} on ${cublas.device}, torch.matmul(x, w.t())${cublas.blasLibrary ? ` (${cublas.blasLibrary})` : ''}` : 'not run (see the cublas step)'}. ` +
    'Ratios are eet ÷ cuBLAS (above 1× eet is faster).', '');
  md.push('| model | step | GEMM | M N K | eet f16 | cuBLAS f16 | ratio | eet bf16 | cuBLAS bf16 | ratio |', '|---|---|---|---|---:|---:|---:|---:|---:|---:|');
  for (const r of report.gemmVsCublas) {
    md.push(`| ${r.model || '—'} | ${r.step} | ${r.name.replace(/\|/g, '\\|')} | ${r.m} ${r.n} ${r.k} | ${fmt(r.eet.float16)} | ${fmt(r.cublas.float16)} | ` +
      `${ratio(r.eet.float16, r.cublas.float16)} | ${fmt(r.eet.bfloat16)} | ${fmt(r.cublas.bfloat16)} | ${ratio(r.eet.bfloat16, r.cublas.bfloat16)} |`);
  }
} else {
  const s = steps.find((x) => x.name === 'gemm-bench');
  md.push(`No results: gemm-bench ${s ? `${s.status}${s.note ? ` (${s.note})` : ''}` : 'not run'}.`);
}
benchSection('Serving scenarios (eet bench --scenarios)', serving, 'serving');
benchSection('PiD on a T5 (eet bench --scenarios pid)', pidT5, 'pid-t5');
md.push('');
md.push('## Sanitizers', '');
for (const name of ['memcheck', 'racecheck']) {
  const s = steps.find((x) => x.name === name);
  md.push(`- ${name}: ${s ? s.status : 'not run'}${report.sanitizers[name] ? ` — ${report.sanitizers[name]}` : ''}${s?.note ? ` (${s.note})` : ''}`);
}
md.push('', '## eet vs HF transformers (same shapes, dtype, random weights)', '');
if (report.comparisons.length) {
  md.push(`HF: torch ${hf.torch}, transformers ${hf.transformers}, ${hf.dtype}. Ratios are eet ÷ HF: decode tok/s above 1× means eet is faster; TTFT below 1× means eet is faster. "compiled" = static KV cache + torch.compile (${hf.compileMode ?? 'reduce-overhead'}).`, '');
  md.push('| model | batch | prompt | new | eet tok/s | HF eager | ratio | HF compiled | ratio | eet TTFT ms | HF eager | ratio | HF compiled | ratio |',
    '|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|');
  for (const c of report.comparisons) {
    md.push(`| ${c.model} | ${c.batch} | ${c.prompt} | ${c.newTokens} | ${fmt(c.eetDecodeTokPerSec)} | ${fmt(c.hfEagerDecodeTokPerSec)} | ${ratio(c.eetDecodeTokPerSec, c.hfEagerDecodeTokPerSec)} | ` +
      `${fmt(c.hfCompiledDecodeTokPerSec)} | ${ratio(c.eetDecodeTokPerSec, c.hfCompiledDecodeTokPerSec)} | ${fmt(c.eetTtftMs, 2)} | ${fmt(c.hfEagerTtftMs, 2)} | ` +
      `${ratio(c.eetTtftMs, c.hfEagerTtftMs)} | ${fmt(c.hfCompiledTtftMs, 2)} | ${ratio(c.eetTtftMs, c.hfCompiledTtftMs)} |`);
  }
  const errs = (hf.models || []).flatMap((m) => [...(m.error ? [`${m.model}: ${m.error}`] : []), ...m.results.filter((r) => r.status !== 'ok').map((r) => `${m.model} ${r.variant} b${r.batch} p${r.prompt}: ${r.status} ${r.error || ''}`)]);
  if (errs.length) md.push('', 'HF cells not measured:', '', ...errs.slice(0, 20).map((e) => `- ${e}`));
} else {
  const s = steps.find((x) => x.name === 'hf-bench');
  md.push(`No comparison: hf-bench ${s ? `${s.status}${s.note ? ` (${s.note})` : ''}` : 'not run'}.`);
}
md.push('', 'llama.cpp (node-llama-cpp): not run — planned with the GGUF issue.', '');
const bad = steps.filter((s) => s.status === 'fail' || s.status === 'timeout');
if (bad.length) {
  md.push('## Logs of the failed steps (last 40 lines; all logs in logs.tar.gz)', '');
  for (const s of bad) md.push(`### ${s.name}`, '', '```', tail(readLog(s.name), 40), '```', '');
}
fs.writeFileSync(path.join(out, 'report.md'), md.join('\n') + '\n');
fs.writeFileSync(path.join(out, 'report.json'), JSON.stringify(report, null, 1) + '\n');
process.stdout.write(`gpu-report: ${path.join(out, 'report.md')}\n`);

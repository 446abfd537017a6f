#!/usr/bin/env node
// `npm run fuzz`: mutates llama2.c checkpoints and tokenizers, GGUF files, safetensors files and Hugging Face folders
// (scripts/fuzz/cases.js) and runs each case in a pool of child processes (scripts/fuzz/child.js), one case at a
// time per child, with a timeout. Outcomes: ok, coded (an EetError with a code: what a broken file should give), and
// the failures — crash (a signal or an abnormal exit), oom (the child's capped heap ran out), timeout (a hang), untyped
// (an error without a code), internal (ERR_INTERNAL / ERR_KERNEL), blocked (the event loop stalled for seconds),
// memory (the child's RSS grew past a bound), harness (the fuzzer itself failed to write the case), seed (an unmutated
// seed did not run cleanly: the mutations of a broken seed would test nothing). Failing cases are written under --out (default fuzz-failures/, git-
// ignored) with case.json (the seed, the mutations, the error) and replay with one command.
//
//   npm run fuzz                                  the CI budget (fixed seed, 300 cases per format)
//   npm run fuzz -- --cases 10000 --seed 7        a longer run
//   npm run fuzz -- --seed 7 --case 123 --format gguf     replay one case (prints its outcome; --keep DIR keeps its files)
//   npm run fuzz -- --replay fuzz-failures/gguf-s7-c123
// Other flags: --jobs N (default: CPU count), --timeout MS (10000), --formats a,b, --heap MB (512), --json, --steps (where
// cases ended, by step and code).
'use strict';

const fs = require('fs');
const os = require('os');
const path = require('path');
const { fork } = require('child_process');
const { FORMATS, materialize, seedCount } = require('./cases');

const CI_SEED = 20240611;
const CI_PER_FORMAT = 300;
/** Stalls of the event loop longer than this fail a case (generous: CI machines are loaded). */
const BLOCKED_MS = 3000;
/** A child whose RSS passes this after a case fails it (the tiny seeds need well under 300 MB). */
const RSS_LIMIT = 3 * 2 ** 30;
/** Children are replaced after this many cases, so a slow leak is not blamed on an innocent case. */
const RECYCLE = 100;
const FAILURES = new Set(['crash', 'oom', 'timeout', 'untyped', 'internal', 'blocked', 'memory', 'harness']);

function parseArgs(argv) {
  const a = { seed: undefined, cases: undefined, jobs: os.cpus().length, timeout: 10000, formats: FORMATS, heap: 512, out: 'fuzz-failures', json: false };
  for (let i = 0; i < argv.length; i++) {
    const k = argv[i], next = () => argv[++i];
    if (k === '--seed') a.seed = Number(next());
    else if (k === '--cases') a.cases = Number(next());
    else if (k === '--jobs') a.jobs = Number(next());
    else if (k === '--timeout') a.timeout = Number(next());
    else if (k === '--formats' || k === '--format') a.formats = next().split(',');
    else if (k === '--heap') a.heap = Number(next());
    else if (k === '--out') a.out = next();
    else if (k === '--case') a.case = Number(next());
    else if (k === '--replay') a.replay = next();
    else if (k === '--keep') a.keep = next();
    else if (k === '--json') a.json = true;
    else if (k === '--steps') a.steps = true;
    else if (k === '--ci') a.ci = true;
    else throw new Error(`unknown flag ${k} (see the header of scripts/fuzz/run.js)`);
  }
  for (const f of a.formats) if (!FORMATS.includes(f)) throw new Error(`unknown format ${f} (formats: ${FORMATS.join(', ')})`);
  if (a.cases === undefined && a.seed === undefined) a.ci = true;
  if (a.ci) {
    a.seed ??= CI_SEED;
    a.cases ??= CI_PER_FORMAT * a.formats.length;
  }
  a.seed ??= 1;
  a.cases ??= 1000;
  return a;
}

/** A child process that runs cases one at a time and reports each outcome. */
class Child {
  constructor(args) {
    this.args = args;
    this.stderr = '';
    this.done = 0;
    this.proc = fork(path.join(__dirname, 'child.js'), [], { execArgv: [`--max-old-space-size=${args.heap}`], stdio: ['ignore', 'ignore', 'pipe', 'ipc'] });
    this.proc.stderr.on('data', (d) => { this.stderr = (this.stderr + d).slice(-4000); });
    this.ready = new Promise((resolve, reject) => {
      this.proc.once('message', (m) => (m.type === 'ready' ? resolve() : reject(new Error('child did not start'))));
      this.proc.once('exit', (code) => reject(new Error(`a fuzz child exited while starting (${code}): ${this.stderr}`)));
    });
  }

  /** Runs one case; resolves with its result, whatever happens to the process. */
  run(key, type = 'case') {
    this.stderr = '';
    this.done++;
    return new Promise((resolve) => {
      let step = 'start';
      const finish = (r) => {
        clearTimeout(timer);
        this.proc.removeListener('message', onMessage);
        this.proc.removeListener('exit', onExit);
        resolve(r.step === 'process' ? { ...r, step } : r);
      };
      const onMessage = (m) => {
        if (m.type === 'note') step = m.step;
        else if (m.type === 'result') finish(m);
      };
      const onExit = (code, signal) => {
        const oom = /heap out of memory|ERR_WORKER_OUT_OF_MEMORY|Allocation failed/.test(this.stderr);
        finish({ outcome: oom ? 'oom' : 'crash', step: 'process', code: signal ?? `exit ${code}`, message: this.stderr.slice(-1500) });
      };
      const timer = setTimeout(() => {
        this.proc.removeListener('exit', onExit);
        this.proc.kill('SIGKILL');
        finish({ outcome: 'timeout', step: 'process', code: `no answer in ${this.args.timeout} ms`, message: this.stderr.slice(-1500) });
      }, this.args.timeout);
      this.proc.on('message', onMessage);
      this.proc.once('exit', onExit);
      this.proc.send({ type, ...key });
    });
  }

  get alive() { return this.proc.exitCode === null && this.proc.signalCode === null && !this.proc.killed; }

  /** Stops the child and removes the case folders it could not (killed or crashed in the middle of a case). */
  kill() {
    if (this.alive) this.proc.kill('SIGKILL');
    const prefix = `eet-fuzz-${this.proc.pid}-`;
    for (const f of fs.readdirSync(os.tmpdir())) if (f.startsWith(prefix)) fs.rmSync(path.join(os.tmpdir(), f), { recursive: true, force: true });
  }
}

/** Classifies a child's result: its own outcome, or a failure of the event loop or memory bound. */
function classify(r) {
  if (r.outcome === 'ok' || r.outcome === 'coded') {
    if (r.loopMs > BLOCKED_MS) return { ...r, outcome: 'blocked', message: `the event loop stalled for ${r.loopMs.toFixed(0)} ms` };
    if (r.rss > RSS_LIMIT) return { ...r, outcome: 'memory', message: `RSS ${(r.rss / 2 ** 20).toFixed(0)} MB after the case` };
  }
  return r;
}

/** Writes a failing case's files and case.json under out/, named so one command replays it. */
function save(args, seeds, key, r) {
  const dir = path.resolve(args.out, `${key.format}-s${key.seed}-c${key.index}`);
  fs.rmSync(dir, { recursive: true, force: true });
  fs.mkdirSync(path.join(dir, 'files'), { recursive: true });
  const c = materialize(seeds, key.seed, key.index, key.format, path.join(dir, 'files'));
  const replay = `npm run fuzz -- --seed ${key.seed} --case ${key.index} --format ${key.format}`;
  fs.writeFileSync(path.join(dir, 'case.json'), JSON.stringify({ ...key, desc: c.desc, device: c.device, sampling: c.sampling, model: c.model,
    options: c.options, outcome: r.outcome, step: r.step, code: r.code, message: r.message, stack: r.stack, replay }, null, 2));
  return dir;
}

/** Every seed, unmutated, must run to the end: otherwise its mutations would only ever test the seed's own error. */
async function checkSeeds(args) {
  const seeds = require('./seeds').buildSeeds();
  const child = new Child(args);
  await child.ready;
  const broken = [];
  for (const format of args.formats) {
    for (let i = 0; i < seedCount(seeds, format); i++) {
      const r = await child.run({ seed: args.seed, index: i, format, pristine: true });
      if (r.outcome !== 'ok') broken.push({ format, index: i, outcome: 'seed', step: r.step, code: r.code, message: `an unmutated seed did not run cleanly: ${r.outcome} ${r.message ?? ''}`, desc: r.desc });
      if (!child.alive) break;
    }
  }
  child.kill();
  return broken;
}

async function runAll(args) {
  const keys = Array.from({ length: args.cases }, (_, i) => ({ seed: args.seed, index: i, format: args.formats[i % args.formats.length] }));
  const counts = {};
  const steps = {};
  const failures = [];
  let next = 0, finished = 0;
  const t0 = Date.now();
  let seeds = null;
  const worker = async () => {
    let child = null;
    while (next < keys.length) {
      const key = keys[next++];
      if (!child || !child.alive || child.done >= RECYCLE) {
        child?.kill();
        child = new Child(args);
        await child.ready;
      }
      const r = classify(await child.run(key));
      // A child that reported an uncaught error exits after it: never hand it the next case.
      if (r.step === 'uncaught') child.kill();
      counts[key.format] ??= {};
      counts[key.format][r.outcome] = (counts[key.format][r.outcome] ?? 0) + 1;
      const at = `${key.format} ${r.outcome} at ${r.step ?? 'end'}${r.code ? ` (${r.code})` : ''}`;
      steps[at] ??= { n: 0, example: key.index };
      steps[at].n++;
      if (FAILURES.has(r.outcome)) {
        seeds ??= require('./seeds').buildSeeds();
        let dir;
        try {
          dir = save(args, seeds, key, r);
        } catch (e) {
          dir = `(not saved: ${e.message})`;
        }
        failures.push({ ...key, outcome: r.outcome, step: r.step, code: r.code, message: String(r.message).slice(0, 400), desc: r.desc, dir });
        if (!args.json) process.stderr.write(`FAIL ${key.format} case ${key.index}: ${r.outcome} at ${r.step} (${r.code}) ${String(r.message).split('\n')[0].slice(0, 200)}\n  ${(r.desc ?? []).join('; ')}\n  saved: ${dir}\n`);
      }
      if (++finished % 500 === 0 && !args.json) process.stderr.write(`… ${finished}/${keys.length} cases, ${failures.length} failures, ${((Date.now() - t0) / 1000).toFixed(0)} s\n`);
    }
    child?.kill();
  };
  failures.push(...await checkSeeds(args));
  await Promise.all(Array.from({ length: Math.max(1, args.jobs) }, worker));
  return { seed: args.seed, cases: keys.length, formats: args.formats, seconds: (Date.now() - t0) / 1000, counts, steps, failures };
}

/** One case in a fresh child, its outcome printed (and its files kept with --keep). */
async function replay(args) {
  let key;
  if (args.replay) {
    const c = JSON.parse(fs.readFileSync(path.join(args.replay, 'case.json'), 'utf8'));
    key = { seed: c.seed, index: c.index, format: c.format };
  } else {
    key = { seed: args.seed, index: args.case, format: args.formats.length === 1 ? args.formats[0] : FORMATS[args.case % FORMATS.length] };
  }
  if (args.keep) {
    fs.mkdirSync(args.keep, { recursive: true });
    const c = materialize(require('./seeds').buildSeeds(), key.seed, key.index, key.format, args.keep);
    process.stdout.write(`files in ${args.keep}: load ${c.model} with ${JSON.stringify({ device: c.device, ...c.options })}\n`);
  }
  const child = new Child(args);
  await child.ready;
  const r = classify(await child.run(key));
  child.kill();
  process.stdout.write(JSON.stringify({ ...key, ...r }, null, 2) + '\n');
  return FAILURES.has(r.outcome) ? 1 : 0;
}

async function main() {
  const args = parseArgs(process.argv.slice(2));
  if (args.replay || args.case !== undefined) return replay(args);
  if (!args.json) process.stderr.write(`fuzz: seed ${args.seed}, ${args.cases} cases over ${args.formats.join(', ')}, ${args.jobs} children, timeout ${args.timeout} ms\n`);
  const s = await runAll(args);
  if (args.json) process.stdout.write(JSON.stringify(s) + '\n');
  else {
    process.stdout.write(`fuzz: ${s.cases} cases in ${s.seconds.toFixed(1)} s (seed ${s.seed})\n`);
    for (const [f, c] of Object.entries(s.counts)) process.stdout.write(`  ${f.padEnd(12)} ${Object.entries(c).map(([k, v]) => `${k} ${v}`).join(', ')}\n`);
    if (args.steps) for (const [k, v] of Object.entries(s.steps).sort((x, y) => y[1].n - x[1].n)) process.stdout.write(`    ${String(v.n).padStart(6)}  ${k} (e.g. case ${v.example})\n`);
    process.stdout.write(s.failures.length ? `${s.failures.length} failures (saved under ${path.resolve(args.out)})\n` : 'no failures\n');
  }
  return s.failures.length ? 1 : 0;
}

main().then((code) => { process.exitCode = code; }, (e) => { process.stderr.write(`fuzz: ${e.stack}\n`); process.exitCode = 2; });

#!/usr/bin/env node
// The per-op benchmark: every op of a decode step and a prefill step of the built-in shapes, each timed alone with
// device events (warm-up, N launches, median), printed beside the roofline (the copy bandwidth measured in this
// run, the device table's tensor peak). lib/bench/ops.ts does the work; run `npx tsc -p tsconfig.build.json` first.
//   node scripts/op-bench.js --model tinyllama-1.1b,llama-7b --batch 1,16 --context 512 --prompt 512 [--json]
//   node scripts/op-bench.js --dry-run [--json]     on emu: tiny shapes, 2 launches per op, outputs checked; the
//                                                    times are the host's and say nothing about a GPU (CI runs it);
//                                                    --device emu means the same
// Options: --device (default cuda, emu for --dry-run), --dtype (float16; float32 on cpu/emu outside a dry run),
// --batch (decode batches), --context (decode contexts per sequence, the new token included), --prompt (prefill
// tokens per sequence), --prefill-batch, --reps, --warmup, --no-scrub (keep the L2 warm between launches), --q8
// (Q8_0 GEMM variants), --bandwidth-bytes, --out FILE (the JSON report, rewritten after each step: a run cut short leaves what it
// measured), --ops gemm[,…] (only these ops of each step), --no-decode (prefill steps only), --square 8192[,…] (square
// GEMMs M = N = K after the shapes). The GPU suite's gemm-bench step uses the last three for the prefill GEMMs it
// compares with cuBLAS (scripts/cublas_bench.py):
//   node scripts/op-bench.js --model llama-7b --prompt 512,2048 --no-decode --ops gemm --square 8192
// Exit status: 0 when every op ran and passed its output check, 1 otherwise, 2 on bad usage.
'use strict';
const fs = require('fs');
const path = require('path');

const dist = path.join(__dirname, '..', 'dist', 'bench');
const usage = (msg) => {
  process.stderr.write(`op-bench: ${msg}\n`);
  process.exit(2);
};

function parse(argv) {
  const flags = { scrub: true, q8: false, json: false, dryRun: false, decode: true };
  const takes = ['--model', '--device', '--dtype', '--batch', '--context', '--prompt', '--prefill-batch', '--reps', '--warmup', '--bandwidth-bytes', '--out',
    '--ops', '--square'];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--json') flags.json = true;
    else if (a === '--dry-run') flags.dryRun = true;
    else if (a === '--no-scrub') flags.scrub = false;
    else if (a === '--q8') flags.q8 = true;
    else if (a === '--no-decode') flags.decode = false;
    else if (takes.includes(a)) {
      if (i + 1 >= argv.length) usage(`${a} needs a value`);
      flags[a.slice(2).replace(/-(\w)/g, (_, c) => c.toUpperCase())] = argv[++i];
    } else usage(`unknown argument ${a}`);
  }
  return flags;
}

function ints(name, text) {
  const v = String(text).split(',').map((x) => x.trim());
  if (!v.every((x) => /^\d+$/.test(x) && Number(x) >= 1)) usage(`expected positive integers for --${name} but received ${text}`);
  return v.map(Number);
}

/** The JSON report to a file, whole or not at all (a temporary file renamed over it). */
function write(file, report) {
  fs.writeFileSync(`${file}.tmp`, JSON.stringify(report, null, 1) + '\n');
  fs.renameSync(`${file}.tmp`, file);
}

function nonNegative(name, text) {
  if (!/^\d+$/.test(String(text).trim())) usage(`expected a non-negative integer for --${name} but received ${text}`);
  return Number(text);
}

function main() {
  const f = parse(process.argv.slice(2));
  let ops, format, shapes;
  try {
    ops = require(path.join(dist, 'ops.js'));
    format = require(path.join(dist, 'opformat.js'));
    shapes = require(path.join(dist, 'shapes.js'));
  } catch (e) {
    usage(`cannot load ${dist} (${e.message.split('\n')[0]}): run npx tsc -p tsconfig.build.json first`);
  }
  const { resolveDevice } = require(path.join(dist, '..', 'devices.js'));
  const device = resolveDevice(f.device ?? (f.dryRun ? 'emu' : 'cuda'));
  const dry = f.dryRun || device === 'emu'; // the emulator runs a GPU shape's step for hours: emu is a dry run
  const gpu = device.startsWith('cuda');
  const dtype = f.dtype ?? (gpu || dry ? 'float16' : 'float32');
  if (!['float32', 'float16', 'bfloat16'].includes(dtype)) usage(`expected float32, float16 or bfloat16 for --dtype but received ${dtype}`);
  const names = (f.model ?? (dry ? 'tiny,tiny-gpt2' : 'tinyllama-1.1b,llama-7b,gpt3-layer-2l,gpt2-124m,gpt2-1.5b')).split(',').map((s) => s.trim());
  const known = [...shapes.BUILTIN_SHAPES, ...ops.DRY_RUN_SHAPES];
  const chosen = names.map((n) => known.find((s) => s.name === n) ?? usage(`unknown shape ${n} (known: ${[...new Set(known.map((s) => s.name))].join(', ')})`));
  const prefillBatch = ints('prefill-batch', f.prefillBatch ?? '1');
  const settings = [
    ...(f.decode ? ints('batch', f.batch ?? (dry ? '1,2' : '1,16')) : []).flatMap((b) =>
      ints('context', f.context ?? (dry ? '20' : '512')).map((c) => ({ phase: 'decode', batch: b, tokens: c }))),
    ...ints('prompt', f.prompt ?? (dry ? '8' : '512')).flatMap((p) => prefillBatch.map((b) => ({ phase: 'prefill', batch: b, tokens: p }))),
  ];
  for (const s of chosen) {
    for (const st of settings) {
      if (st.tokens > s.maxSeqLen && s.arch === 'gpt2') usage(`${s.name} holds ${s.maxSeqLen} positions; ${st.tokens} asked`);
    }
  }
  const reps = ints('reps', f.reps ?? (dry ? '2' : '50'))[0];
  if (reps > 10000) usage(`expected at most 10000 for --reps but received ${reps}`);
  const knownOps = ['gemm', 'gemm_q8', 'norm', 'embedding', 'rope', 'rope_kv_append', 'kv_append', 'attention', 'shared_attention', 'act', 'sample'];
  const only = f.ops === undefined ? undefined : String(f.ops).split(',').map((x) => x.trim());
  if (only && !only.every((x) => knownOps.includes(x))) usage(`expected ops among ${knownOps.join(', ')} for --ops but received ${f.ops}`);
  const report = ops.runOpBench({
    device, dtype, shapes: chosen, settings, ops: only, square: f.square === undefined ? undefined : ints('square', f.square),
    reps, warmup: f.warmup === undefined ? (dry ? 1 : 5) : nonNegative('warmup', f.warmup),
    scrubCache: f.scrub, q8: f.q8 || dry, bandwidthBytes: f.bandwidthBytes ? ints('bandwidth-bytes', f.bandwidthBytes)[0] : undefined,
    log: (line) => process.stderr.write(`op-bench: ${line}\n`),
    progress: (partial) => f.out && write(f.out, partial),
  });
  if (f.out) write(f.out, report);
  process.stdout.write(f.json ? JSON.stringify(report, null, 1) + '\n' : format.formatOpText(report) + '\n');
  const bad = report.models.flatMap((m) => m.settings.flatMap((s) => s.ops.filter((o) => o.status !== 'ok')));
  return bad.length ? 1 : 0;
}

try {
  process.exitCode = main();
} catch (e) {
  process.stderr.write(`op-bench: ${e.code ? `${e.code}: ` : ''}${e.message}\n`);
  process.exitCode = 1;
}

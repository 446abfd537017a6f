#!/usr/bin/env node
// Side by side on this machine's CPU: this package's cpu backend and llama.cpp (node-llama-cpp) on the same random
// GGUF files, in one run, alternating, several repetitions. Prints prefill and decode tokens/s (median and
// min–max), the ratios eet / llama.cpp (median of the per-repetition ratios, so a drift of the machine's speed
// cancels), and decode's achieved weight-read bandwidth beside a measured memory-copy bandwidth.
//
//   node scripts/bench-llamacpp.mjs [--shapes 85m,0.5b] [--types F32,F16,Q8_0] [--threads 1,2] [--reps 3]
//                                   [--prompt 256] [--gen 64] [--dir DIR]
//
// Needs the TypeScript build (npm run build:ts) and node-llama-cpp (node scripts/oracles.js, or
// npm install --no-save node-llama-cpp@3.22.1 @node-llama-cpp/linux-x64@3.22.1). The GGUF files are written once
// into --dir (default: the OS temp folder) and reused. Each engine runs with its own defaults otherwise (llama.cpp:
// F16 KV cache; eet: the KV cache in the model dtype), greedy, no EOS stop; eet with prefix caching off, llama.cpp
// with its history cleared, so every repetition computes the whole prompt.
import { createRequire } from 'module';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { fileURLToPath } from 'url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const require = createRequire(import.meta.url);

// ---- options ----------------------------------------------------------------------------------------------------
const SHAPES = {
  // the shape: LLaMA dim 768, 12 layers (85M parameters in the layers), vocabulary 32000
  '85m': { dim: 768, hiddenDim: 2048, nLayers: 12, nHeads: 12, nKvHeads: 12, vocabSize: 32000 },
  // about 0.5B parameters (476M in the layers, 82M in the embedding and head)
  '0.5b': { dim: 1280, hiddenDim: 3456, nLayers: 24, nHeads: 20, nKvHeads: 20, vocabSize: 32000 },
};
const args = process.argv.slice(2);
const opt = (name, def) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 && i + 1 < args.length ? args[i + 1] : def;
};
if (args.includes('--help') || args.includes('-h')) {
  console.log(fs.readFileSync(fileURLToPath(import.meta.url), 'utf8').split('\n').slice(1, 16).map((l) => l.replace(/^\/\/ ?/, '')).join('\n'));
  process.exit(0);
}
const shapes = opt('shapes', '85m,0.5b').split(',');
const types = opt('types', 'F32,F16,Q8_0').split(',');
const threadCounts = opt('threads', '1,2').split(',').map(Number);
const reps = Number(opt('reps', '3'));
const promptLen = Number(opt('prompt', '256'));
const gen = Number(opt('gen', '64'));
const dir = opt('dir', path.join(os.tmpdir(), 'eet-bench-llamacpp'));
for (const s of shapes) if (!SHAPES[s]) throw new Error(`unknown shape ${s}; one of ${Object.keys(SHAPES).join(', ')}`);
for (const t of types) if (!['F32', 'F16', 'Q8_0'].includes(t)) throw new Error(`unknown type ${t}; F32, F16 or Q8_0`);

let llamaCpp;
try {
  llamaCpp = await import('node-llama-cpp');
} catch {
  console.error('node-llama-cpp is not installed. Run `node scripts/oracles.js`, or:\n' +
    '  npm install --no-save node-llama-cpp@3.22.1 @node-llama-cpp/linux-x64@3.22.1');
  process.exit(1);
}
let eet, gguf, ggufArch, arch, half;
try {
  eet = require(path.join(root, 'dist/index.js'));
  gguf = require(path.join(root, 'dist/formats/gguf-writer.js'));
  ggufArch = require(path.join(root, 'dist/arch/gguf.js'));
  arch = require(path.join(root, 'dist/arch/index.js'));
  half = require(path.join(root, 'dist/half.js'));
} catch (e) {
  console.error(`The TypeScript build is missing (${e.message}). Run: npm run build:ts`);
  process.exit(1);
}

// ---- the GGUF files ---------------------------------------------------------------------------------------------
function fileConfig(s) {
  return {
    arch: 'llama', ...s, headDim: s.dim / s.nHeads, maxSeqLen: 2048, normEps: 1e-5, ropeTheta: 10000,
    ropeLayout: 'adjacent', tiedEmbeddings: false,
  };
}

/** Uniform values of standard deviation std from a xorshift generator (fast: the 0.5B shape has 558M of them). */
function randomValues(n, seed, std, offset = 0) {
  const a = std * Math.sqrt(3);
  const out = new Float32Array(n);
  let x = (seed * 2654435761) >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    x ^= x << 13; x >>>= 0; x ^= x >>> 17; x ^= x << 5; x >>>= 0;
    out[i] = offset + (x / 4294967296 * 2 - 1) * a;
  }
  return out;
}

function vocabulary(n) {
  const tokens = ['<unk>', '<s>', '</s>'];
  const types = [2, 3, 3];
  for (let b = 0; b < 256; b++) { tokens.push(`<0x${b.toString(16).toUpperCase().padStart(2, '0')}>`); types.push(6); }
  tokens.push('▁'); types.push(1); // the SentencePiece dummy prefix, which the GGUF loader requires
  for (let i = 0; tokens.length < n; i++) { tokens.push(`▁w${i}`); types.push(1); }
  return { tokens, types, scores: tokens.map((_, i) => -i) };
}

async function writeModel(shapeName, type) {
  const file = path.join(dir, `llama-${shapeName}-${type}.gguf`);
  if (fs.existsSync(file)) return file;
  fs.mkdirSync(dir, { recursive: true });
  const cfg = fileConfig(SHAPES[shapeName]);
  const v = vocabulary(cfg.vocabSize);
  const { gv } = gguf;
  const metadata = [
    ...ggufArch.ggufMetadata(cfg, 'llama'),
    ['general.name', gv.str(`bench-${shapeName}`)],
    ['tokenizer.ggml.model', gv.str('llama')],
    ['tokenizer.ggml.tokens', gv.arr('string', v.tokens)],
    ['tokenizer.ggml.scores', gv.arr('float32', v.scores)],
    ['tokenizer.ggml.token_type', gv.arr('int32', v.types)],
    ['tokenizer.ggml.bos_token_id', gv.u32(1)],
    ['tokenizer.ggml.eos_token_id', gv.u32(2)],
  ];
  let seed = 1;
  const tensors = arch.tensorList(cfg).map((t) => {
    const s = seed++;
    const n = t.shape.reduce((a, b) => a * b, 1);
    // matrices (not the embedding) in the file's type; norms and the embedding table in F32 (F16 in an F16 file)
    const ttype = t.role === 'matrix' ? type : type === 'F16' && t.shape.length === 2 ? 'F16' : 'F32';
    return {
      name: ggufArch.ggufTensorName(t.name), type: ttype, shape: t.shape,
      bytes: () => {
        const data = t.role === 'norm' ? randomValues(n, s, 0.1, 1) : randomValues(n, s, t.role === 'embedding' ? 1 : 1 / Math.sqrt(t.shape[1]));
        if (ttype === 'Q8_0') return gguf.quantizeQ8_0(data);
        if (ttype === 'F16') {
          const h = new Uint16Array(n);
          for (let i = 0; i < n; i++) h[i] = half.f32ToF16Bits(data[i]);
          return new Uint8Array(h.buffer);
        }
        return new Uint8Array(data.buffer);
      },
    };
  });
  process.stderr.write(`writing ${file} ...\n`);
  await gguf.writeGGUFStreaming(file + '.part', { metadata, tensors });
  fs.renameSync(file + '.part', file);
  return file;
}

/** Bytes decode reads per token: every matrix and the head once (the embedding row is negligible). */
function weightBytesPerToken(s, type) {
  const per = type === 'F32' ? 4 : type === 'F16' ? 2 : 34 / 32;
  const layer = 4 * s.dim * s.dim + 3 * s.dim * s.hiddenDim;
  return (s.nLayers * layer + s.vocabSize * s.dim) * per;
}

// ---- the two engines --------------------------------------------------------------------------------------------
function promptIds(vocab) {
  let x = 12345;
  const ids = [1];
  while (ids.length < promptLen) { x = (x * 1103515245 + 12345) >>> 0; ids.push(259 + (x % (vocab - 259))); }
  return ids;
}

async function runEet(model, ids) {
  const t0 = performance.now();
  let first = 0, last = 0, n = 0;
  for await (const ev of model.stream(ids, { temperature: 0, maxNewTokens: gen, ignoreEos: true })) {
    if (ev.token === undefined) continue;
    last = performance.now();
    if (n++ === 0) first = last;
  }
  if (n !== gen) throw new Error(`eet generated ${n} tokens, expected ${gen}`);
  return { prefill: promptLen / ((first - t0) / 1000), decode: (n - 1) / ((last - first) / 1000) };
}

async function runLlama(ctx, ids) {
  const seq = ctx.getSequence();
  try {
    const t0 = performance.now();
    let first = 0, last = 0, n = 0;
    for await (const _ of seq.evaluate(ids, { temperature: 0, yieldEogToken: true })) {
      last = performance.now();
      if (n++ === 0) first = last;
      if (n >= gen) break;
    }
    return { prefill: promptLen / ((first - t0) / 1000), decode: (n - 1) / ((last - first) / 1000) };
  } finally {
    seq.dispose();
  }
}

// ---- statistics and printing ------------------------------------------------------------------------------------
const median = (a) => { const s = [...a].sort((x, y) => x - y); const m = s.length >> 1; return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2; };
const fmt = (a, d = 1) => `${median(a).toFixed(d)} (${Math.min(...a).toFixed(d)}–${Math.max(...a).toFixed(d)})`;

const { binding } = require(path.join(root, 'dist/binding.js'));
const copy = [];
for (let i = 0; i < 5; i++) copy.push(binding().benchCopyBandwidth('cpu', { bytes: 256 << 20, iters: 4 }).bytesPerSecond / 1e9);
const load = os.loadavg().map((l) => l.toFixed(2)).join(' ');
console.log(`machine: ${os.cpus()[0]?.model ?? 'cpu'}, ${os.cpus().length} logical CPUs; eet cpu kernels: ${binding().devices().cpuIsa}, ` +
  `default threads ${binding().devices().cpuThreads}; memory copy ${fmt(copy)} GB/s (read + write); load average ${load}`);
console.log(`prompt ${promptLen} tokens, ${gen} greedy tokens, ${reps} repetitions per cell, engines alternating\n`);

const llama = await llamaCpp.getLlama({ gpu: false, build: 'never', logLevel: llamaCpp.LlamaLogLevel.error });
const rows = [];
for (const shapeName of shapes) {
  for (const type of types) {
    const file = await writeModel(shapeName, type);
    const shape = SHAPES[shapeName];
    const ids = promptIds(shape.vocabSize);
    const lmodel = await llama.loadModel({ modelPath: file });
    for (const threads of threadCounts) {
      const dtype = type === 'F16' ? 'float16' : 'float32';
      const emodel = await eet.loadModel(file, { device: 'cpu', dtype, threads, maxBatch: 1, maxSeqLen: promptLen + gen + 16, prefixCaching: false });
      const lctx = await lmodel.createContext({ contextSize: promptLen + gen + 16, threads, batchSize: promptLen });
      const r = { e: { prefill: [], decode: [] }, l: { prefill: [], decode: [] }, ratio: { prefill: [], decode: [] } };
      await runEet(emodel, ids.slice(0, 32)); // warm-up: first touch of the weights, the pool's threads
      await runLlama(lctx, ids.slice(0, 32));
      for (let i = 0; i < reps; i++) {
        // alternate which engine goes first
        const order = i % 2 === 0 ? ['e', 'l'] : ['l', 'e'];
        const got = {};
        for (const k of order) got[k] = k === 'e' ? await runEet(emodel, ids) : await runLlama(lctx, ids);
        for (const k of ['e', 'l']) for (const p of ['prefill', 'decode']) r[k][p].push(got[k][p]);
        for (const p of ['prefill', 'decode']) r.ratio[p].push(got.e[p] / got.l[p]);
      }
      await lctx.dispose();
      await emodel.dispose();
      const gbs = (tps) => tps.map((t) => (t * weightBytesPerToken(shape, type)) / 1e9);
      const row = {
        shape: shapeName, type, threads,
        eetPrefill: fmt(r.e.prefill), llamaPrefill: fmt(r.l.prefill), prefillRatio: fmt(r.ratio.prefill, 2),
        eetDecode: fmt(r.e.decode), llamaDecode: fmt(r.l.decode), decodeRatio: fmt(r.ratio.decode, 2),
        eetGBs: fmt(gbs(r.e.decode)), llamaGBs: fmt(gbs(r.l.decode)),
      };
      rows.push(row);
      console.log(JSON.stringify(row));
    }
    await lmodel.dispose();
  }
}
await llama.dispose();

const head = ['shape', 'type', 'thr', 'prefill eet', 'prefill llama.cpp', 'ratio', 'decode eet', 'decode llama.cpp', 'ratio', 'decode GB/s eet', 'GB/s llama.cpp'];
const lines = rows.map((r) => [r.shape, r.type, String(r.threads), r.eetPrefill, r.llamaPrefill, r.prefillRatio, r.eetDecode, r.llamaDecode, r.decodeRatio, r.eetGBs, r.llamaGBs]);
console.log(`\ntokens/s, median (min–max) over ${reps} repetitions; ratio = eet / llama.cpp per repetition; GB/s = weight bytes read per decode token × tokens/s (memory copy: ${median(copy).toFixed(1)} GB/s)`);
console.log(`| ${head.join(' | ')} |\n|${head.map(() => '---').join('|')}|`);
for (const l of lines) console.log(`| ${l.join(' | ')} |`);
console.log(`load average at the end: ${os.loadavg().map((l) => l.toFixed(2)).join(' ')}`);

#!/usr/bin/env node
// A few norm, attention and GEMM calls on one device, for `compute-sanitizer --tool racecheck` (scripts/gpu-suite.sh):
// shared-memory hazards only show up when the kernels run, so this drives every path once — RMS and layer norm
// at a row that fits one pass and a folded 12288-wide row; attention as a prompt pass (several queries, causal,
// unequal lengths; bf16 on tensor cores, and on the SIMT kernel through simtPrefill), as decode (one query, long
// context: the split-KV path) and as shared-prefix decode; the prefill GEMMs' cp.async pipelines (float and Q8_0)
// on each tile a 132-SM H200 picks for these shapes, with more K tiles than pipeline stages where cheap, and the
// ordinary-load path — and checks the outputs are finite.
// Usage: node scripts/gpu-racecheck.js [device]   (default cuda; the suite's dry run uses emu)
'use strict';
const path = require('path');
const addon = require('node-gyp-build')(path.resolve(__dirname, '..'));

const device = process.argv[2] || 'cuda';
const F32 = 0, BF16 = 2, I32 = 3, I8 = 4;
let seed = 12345;
const rand = () => { seed = (seed * 1103515245 + 12345) >>> 0; return seed / 2 ** 32 - 0.5; };

function floats(n, dtype, scale = 1) {
  const f = Float32Array.from({ length: n }, () => rand() * 2 * scale);
  if (dtype === F32) return new addon.AddonTensor(device, F32, n, f);
  const bits = new Uint16Array(new Uint32Array(f.buffer).map((u) => u >>> 16)); // bf16: the top half
  return new addon.AddonTensor(device, BF16, n, bits);
}
const ints = (a) => new addon.AddonTensor(device, I32, a.length, Int32Array.from(a));
const empty = (n, dtype) => new addon.AddonTensor(device, dtype, n, null, 'zero');

function finite(name, t, dtype) {
  const a = t.readSync();
  const vals = dtype === F32 ? a : new Float32Array(new Uint32Array(Array.from(a, (h) => h << 16)).buffer);
  const bad = vals.findIndex((v) => !Number.isFinite(v));
  if (bad >= 0) throw new Error(`${name}: non-finite output at ${bad}`);
}

const calls = [];
for (const dtype of [F32, BF16]) {
  const dt = dtype === F32 ? 'f32' : 'bf16';
  for (const [kind, rows, cols] of [['rms', 5, 4096], ['layer', 3, 4096], ['rms', 2, 12288], ['layer', 2, 12288], ['rms', 3, 100]]) {
    calls.push([`norm(kind=${kind}, dtype=${dt}, rows=${rows}, cols=${cols})`, () => {
      const y = empty(rows * cols, dtype);
      addon.runOpSync('norm', device, {
        kind, dtype, rows, cols, eps: 1e-5, x: floats(rows * cols, dtype), weight: floats(cols, dtype),
        ...(kind === 'layer' ? { bias: floats(cols, dtype) } : {}), y,
      });
      finite('norm', y, dtype);
    }]);
  }
  const blockSize = 16, nKvHeads = 2, headDim = 128, nHeads = 8;
  const attnCalls = [['prompt', [64, 33], [64, 40], false], ['decode', [1, 1, 1, 1], [1000, 17, 513, 1], false]];
  if (dtype === BF16) attnCalls.push(['prompt, simt kernel', [64, 33], [64, 40], true]);
  for (const [what, qLens, ctxLens, simtPrefill] of attnCalls) {
    calls.push([`attention(${what}, dtype=${dt}, q=${qLens}, ctx=${ctxLens})`, () => {
      const batch = qLens.length;
      const maxBlocksPerSeq = Math.ceil(Math.max(...ctxLens) / blockSize);
      const blocks = batch * maxBlocksPerSeq;
      const cacheElems = blocks * nKvHeads * blockSize * headDim;
      const nTokens = qLens.reduce((a, b) => a + b, 0);
      const qStart = [0];
      for (const n of qLens) qStart.push(qStart[qStart.length - 1] + n);
      const out = empty(nTokens * nHeads * headDim, dtype);
      addon.runOpSync('attention', device, {
        dtype, blockSize, nKvHeads, headDim, batch, nHeads, nTokens, maxBlocksPerSeq, scale: 1 / Math.sqrt(headDim), mask: 'causal',
        q: floats(nTokens * nHeads * headDim, dtype), out, kCache: floats(cacheElems, dtype), vCache: floats(cacheElems, dtype),
        blockTable: ints(Array.from({ length: blocks }, (_, i) => blocks - 1 - i)), qStart: ints(qStart), ctxLen: ints(ctxLens),
        simtPrefill,
      });
      finite('attention', out, dtype);
    }]);
  }
  // Shared-prefix decode: a group of 3 on 992 shared keys (62 blocks, the leader's; the shared kernel, a chunk the
  // shared length cuts), tails of 0, 17 and 300 keys (the decode kernel from key_begin), a loose sequence; the
  // combine merges them.
  calls.push([`shared_attention(dtype=${dt}, group of 3 on 992 keys, tails 0/17/300, one loose)`, () => {
    const ctxLens = [992, 1009, 1292, 77], sharedLens = [992, 992, 992, 0], batch = 4, leader = 2;
    const maxBlocksPerSeq = Math.ceil(Math.max(...ctxLens) / blockSize);
    const blocks = batch * maxBlocksPerSeq;
    const cacheElems = blocks * nKvHeads * blockSize * headDim;
    const table = Array.from({ length: blocks }, (_, i) => blocks - 1 - i);
    for (const b of [0, 1]) for (let k = 0; k < 992 / blockSize; k++) table[b * maxBlocksPerSeq + k] = table[leader * maxBlocksPerSeq + k];
    const out = empty(batch * nHeads * headDim, dtype);
    addon.runOpSync('shared_attention', device, {
      dtype, blockSize, nKvHeads, headDim, batch, nHeads, nGroups: 1, maxBlocksPerSeq, scale: 1 / Math.sqrt(headDim),
      q: floats(batch * nHeads * headDim, dtype), out, kCache: floats(cacheElems, dtype), vCache: floats(cacheElems, dtype),
      blockTable: ints(table), ctxLen: ints(ctxLens), sharedLen: ints(sharedLens), groupStart: ints([0, 3]),
      groupSeqs: ints([leader, 0, 1]),
    });
    finite('shared_attention', out, dtype);
  }]);
}

// Prefill GEMMs (bf16; M > 64: the tensor-core tiles, cuda/gemm_tile.cuh). In comments: the tile on 132 SMs.
for (const [m, n, k, ldx, tile] of [[130, 300, 200, 200, '64x128, 7 K tiles'], [129, 16896, 160, 160, '128x256, 5 K tiles'],
  [512, 4096, 64, 64, '128x128'], [100, 96, 136, 140, '64x128, ordinary loads']]) {
  calls.push([`gemm(dtype=bf16, m=${m}, n=${n}, k=${k}, ldx=${ldx}: ${tile})`, () => {
    const y = empty(m * n, BF16);
    addon.runOpSync('gemm', device, { dtype: BF16, m, n, k, ldx, ldy: n, x: floats((m - 1) * ldx + k, BF16), w: floats(n * k, BF16, 0.05), y });
    finite('gemm', y, BF16);
  }]);
}
// Q8_0 weights: n·k int8 then n·k/32 float16 scales (0x2000 = 2^-7), the op runner's layout.
function q8(n, k) {
  const a = Int8Array.from({ length: n * k + (n * k) / 16 }, (_, i) => (i < n * k ? Math.round(rand() * 250) : i % 2 ? 0x20 : 0));
  return new addon.AddonTensor(device, I8, a.length, a);
}
for (const [m, n, k, tile] of [[512, 4096, 64, '128x128'], [130, 300, 224, '64x128, 7 K tiles']]) {
  calls.push([`gemm_q8(dtype=bf16, m=${m}, n=${n}, k=${k}: ${tile})`, () => {
    const y = empty(m * n, BF16);
    addon.runOpSync('gemm_q8', device, { dtype: BF16, m, n, k, ldx: k, ldy: n, x: floats(m * k, BF16), w: q8(n, k), y });
    finite('gemm_q8', y, BF16);
  }]);
}

let failed = 0;
for (const [name, run] of calls) {
  try {
    run();
    console.log(`ok   ${name}`);
  } catch (e) {
    failed++;
    console.log(`FAIL ${name}: ${e.message}`);
  }
}
console.log(`racecheck ops on ${device}: ${calls.length - failed} passed, ${failed} failed`);
process.exitCode = failed ? 1 : 0;

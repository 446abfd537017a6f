// `eet bench`: times prefill and decode over a grid on one device, straight on AddonModel.step (no tokenizer,
// no scheduler: the numbers are the engine's), and relates them to the roofline (roofline.ts).
// Per cell (batch B, prompt P, new tokens N): B sequences start; the prefill feeds their random prompts
// (chunked by maxStepTokens) and samples each one's first token — its wall time is the time to first token;
// then N − 1 decode steps of one token per sequence. Greedy sampling, nothing stops early.
import * as os from 'os';
import type { AddonContext, AddonModel, AddonModelConfig, AddonTensorSource } from '../binding';
import { binding } from '../binding';
import { EetError, InvalidArgumentError, UnsupportedError } from '../errors';
import { readLlama2cCheckpoint } from '../loaders/llama2c';
import { GridCell, GridSpec, gridCells, gridLimits, prefillChunks } from './grid';
import { BenchDType, DTYPE_BYTES, ShapeDims, decodeBytes, paramCounts, peakFlops, percent, prefillFlops } from './roofline';
import { builtinShape, llamaTensors } from './shapes';

export interface BenchOptions {
  /** Built-in shape names (shapes.ts) or llama2.c checkpoint paths. */
  models: string[];
  /** A resolved device: 'cpu', 'emu', 'cuda:N'. */
  device: string;
  dtype: BenchDType;
  grid: GridSpec;
  /** Timed runs per cell; the median is reported. */
  repeat: number;
  /** Prefill step size cap (tokens); default: the largest B × P of the grid, at most 8192 (512 on cpu/emu). */
  maxStepTokens?: number;
  seed: number;
  /** Bytes per buffer of the bandwidth copy; default 1 GiB on cuda, 64 MiB elsewhere. */
  bandwidthBytes?: number;
  log?: (line: string) => void;
}

export interface CellResult extends GridCell {
  ttftMs: number;
  prefillTokPerSec: number;
  prefillTflops: number;
  prefillPeakPct: number | null;
  decodeMsPerStep: number;
  decodeTokPerSec: number;
  decodeGBps: number;
  decodeRooflinePct: number | null;
}

export interface ModelBench {
  model: string;
  source: 'builtin' | 'file';
  arch: string;
  status: 'ok' | 'unsupported' | 'error';
  error?: { code: string; message: string };
  about?: string;
  params?: number;
  config?: AddonModelConfig;
  memory?: { weights: number; kvCache: number; workspace: number; total: number };
  loadMs?: number;
  results: CellResult[];
}

export interface BenchReport {
  tool: 'eet bench';
  device: { id: string; name: string };
  dtype: BenchDType;
  bandwidth: { bytesPerSecond: number; bytes: number; iters: number };
  peak: { label: string; flops: number } | null;
  grid: GridSpec;
  repeat: number;
  models: ModelBench[];
}

export function deviceName(device: string): string {
  if (device.startsWith('cuda')) {
    const index = device === 'cuda' ? 0 : Number(device.slice(5));
    return binding().devices().cuda.find((d) => d.index === index)?.name ?? device;
  }
  return device === 'emu' ? 'SIMT emulator (emu)' : `${os.cpus()[0]?.model ?? 'cpu'} (cpu reference)`;
}

/** Runs `n` promises from `make` with at most `k` in flight. */
async function pool(n: number, k: number, make: (i: number) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => { while (next < n) await make(next++); };
  await Promise.all(Array.from({ length: Math.min(k, n) }, worker));
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

interface Loaded {
  weights: AddonModel;
  native: AddonContext;
  config: AddonModelConfig;
  dims: ShapeDims;
  source: 'builtin' | 'file';
  about?: string;
}

async function load(spec: string, o: BenchOptions, limits: { maxBatch: number; maxContext: number; maxStepTokens: number }): Promise<Loaded> {
  const { AddonModel: Ctor } = binding();
  const shape = builtinShape(spec);
  const base = { dtype: o.dtype, device: o.device };
  let config: AddonModelConfig;
  let tensors: Array<{ name: string; source: AddonTensorSource }>;
  if (shape) {
    if (shape.arch !== 'llama') throw new UnsupportedError(`the ${shape.arch} architecture is not supported yet (it comes with a later issue); LLaMA-family shapes run`);
    config = {
      arch: 'llama', dim: shape.dim, hiddenDim: shape.hiddenDim, nLayers: shape.nLayers, nHeads: shape.nHeads, nKvHeads: shape.nKvHeads,
      headDim: shape.headDim, vocabSize: shape.vocabSize, maxSeqLen: Math.max(shape.maxSeqLen, limits.maxContext), normEps: shape.normEps,
      ropeTheta: shape.ropeTheta, ropeLayout: 'half', tiedEmbeddings: shape.tiedEmbeddings, ...base,
    };
    // Norm weights 1, everything else uniform with std 0.02 (GPT-2/LLaMA init): activations stay O(1).
    tensors = llamaTensors(shape).map((t, i) => ({
      name: t.name,
      source: { random: { seed: o.seed * 1000003 + i, std: t.norm ? 0 : 0.02, mean: t.norm ? 1 : 0 }, shape: t.shape },
    }));
  } else {
    const ckpt = await readLlama2cCheckpoint(spec);
    if (limits.maxContext > ckpt.config.maxSeqLen) {
      throw new InvalidArgumentError(`Expected prompt + new tokens <= ${ckpt.config.maxSeqLen} (the model's seq_len) for ${spec} but the grid needs ${limits.maxContext}`);
    }
    config = { ...ckpt.config, ...base };
    tensors = ckpt.tensors;
  }
  const weights = new Ctor(config);
  let native: AddonContext;
  try {
    // Several tensors at once: random fills are host-generated per tensor, off the JS thread (libuv pool).
    await pool(tensors.length, Math.max(1, os.availableParallelism?.() ?? 4), (i) => weights.loadTensor(tensors[i].name, tensors[i].source));
    await weights.finalize();
    native = new (binding().AddonContext)(weights, limits, () => {});
  } catch (e) {
    weights.dispose();
    throw e;
  }
  return { weights, native, config, dims: config, source: shape ? 'builtin' : 'file', about: shape?.about };
}

function randomTokens(n: number, vocab: number, seed: number): Int32Array {
  const out = new Int32Array(n);
  let x = (seed * 2654435761) >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    x ^= x << 13; x >>>= 0; x ^= x >>> 17; x ^= x << 5; x >>>= 0;
    out[i] = 3 + (x % Math.max(1, vocab - 3)); // above the special ids 0..2
  }
  return out;
}

function greedy(n: number): Pick<Parameters<AddonContext['step']>[0], 'temperature' | 'topK' | 'topP' | 'repetitionPenalty'> {
  return { temperature: new Float32Array(n), topK: new Int32Array(n), topP: new Float32Array(n).fill(1), repetitionPenalty: new Float32Array(n).fill(1) };
}

/** One timed run of a cell: [prefill ms, decode ms]. */
async function runCell(m: Loaded, c: GridCell, maxStepTokens: number, seed: number): Promise<[number, number]> {
  const { native } = m;
  const slots = Array.from({ length: c.batch }, (_, i) => native.startSequence(BigInt(seed + i)));
  try {
    const prompts = slots.map((_, i) => randomTokens(c.prompt, m.config.vocabSize, seed + 7919 * i));
    const next = new Int32Array(c.batch);
    const fed = new Array<number>(c.batch).fill(0);
    const t0 = performance.now();
    for (const chunk of prefillChunks(c.batch, c.prompt, maxStepTokens)) {
      const tokens = new Int32Array(chunk.reduce((a, [, n]) => a + n, 0));
      let at = 0;
      for (const [seq, n] of chunk) { tokens.set(prompts[seq].subarray(fed[seq], fed[seq] + n), at); fed[seq] += n; at += n; }
      const r = await native.step({
        slots: Int32Array.from(chunk, ([seq]) => slots[seq]), tokens, counts: Int32Array.from(chunk, ([, n]) => n), ...greedy(chunk.length),
      });
      chunk.forEach(([seq], i) => { next[seq] = r.tokens[i]; });
    }
    const t1 = performance.now();
    const all = Int32Array.from(slots), ones = new Int32Array(c.batch).fill(1), sampling = greedy(c.batch);
    for (let s = 1; s < c.newTokens; s++) {
      const r = await native.step({ slots: all, tokens: next, counts: ones, ...sampling });
      next.set(r.tokens);
    }
    return [t1 - t0, performance.now() - t1];
  } finally {
    for (const s of slots) native.endSequence(s);
  }
}

function cellResult(m: Loaded, c: GridCell, prefillMs: number, decodeMs: number, r: BenchReport): CellResult {
  const bytes = DTYPE_BYTES[r.dtype];
  const steps = c.newTokens - 1;
  const flops = prefillFlops(m.dims, c.batch, c.prompt);
  const decBytes = decodeBytes(m.dims, bytes, c.batch, c.prompt, steps);
  const prefillFlopsPerSec = flops / (prefillMs / 1e3);
  const decodeBytesPerSec = decBytes / (decodeMs / 1e3);
  return {
    ...c,
    ttftMs: prefillMs,
    prefillTokPerSec: (c.batch * c.prompt) / (prefillMs / 1e3),
    prefillTflops: prefillFlopsPerSec / 1e12,
    prefillPeakPct: percent(prefillFlopsPerSec, r.peak?.flops ?? null),
    decodeMsPerStep: decodeMs / steps,
    decodeTokPerSec: (c.batch * steps) / (decodeMs / 1e3),
    decodeGBps: decodeBytesPerSec / 1e9,
    decodeRooflinePct: percent(decodeBytesPerSec, r.bandwidth.bytesPerSecond),
  };
}

export async function runBench(o: BenchOptions): Promise<BenchReport> {
  const log = o.log ?? ((): void => {});
  const cells = gridCells(o.grid);
  const { maxBatch, maxContext } = gridLimits(cells);
  const gpu = o.device.startsWith('cuda');
  const maxStepTokens = Math.max(maxBatch, o.maxStepTokens ?? Math.min(Math.max(...cells.map((c) => c.batch * c.prompt)), gpu ? 8192 : 512));
  const bw = binding().benchCopyBandwidth(o.device, { bytes: o.bandwidthBytes ?? (gpu ? 1 << 30 : 64 << 20), iters: gpu ? 10 : 3 });
  const name = deviceName(o.device);
  const report: BenchReport = {
    tool: 'eet bench',
    device: { id: o.device, name },
    dtype: o.dtype,
    bandwidth: { bytesPerSecond: bw.bytesPerSecond, bytes: bw.bytes, iters: bw.iters },
    peak: gpu ? peakFlops(name, o.dtype) : null,
    grid: o.grid,
    repeat: o.repeat,
    models: [],
  };
  for (const spec of o.models) {
    const shape = builtinShape(spec);
    const entry: ModelBench = { model: spec, source: shape ? 'builtin' : 'file', arch: shape?.arch ?? 'llama', status: 'ok', about: shape?.about, results: [] };
    report.models.push(entry);
    let m: Loaded | undefined;
    try {
      log(`loading ${spec} on ${o.device} (${o.dtype})`);
      const t = performance.now();
      m = await load(spec, o, { maxBatch, maxContext, maxStepTokens });
      entry.loadMs = performance.now() - t;
      entry.config = m.config;
      entry.params = paramCounts(m.dims).total;
      const mem = m.native.memory();
      entry.memory = { ...mem, total: mem.weights + mem.kvCache + mem.workspace };
      await runCell(m, { batch: 1, prompt: Math.min(8, cells[0].prompt), newTokens: 3 }, maxStepTokens, o.seed); // warm-up
      for (const c of cells) {
        const runs: Array<[number, number]> = [];
        for (let i = 0; i < o.repeat; i++) runs.push(await runCell(m, c, maxStepTokens, o.seed + i));
        const res = cellResult(m, c, median(runs.map((x) => x[0])), median(runs.map((x) => x[1])), report);
        entry.results.push(res);
        log(`  batch ${c.batch} prompt ${c.prompt} new ${c.newTokens}: ttft ${res.ttftMs.toFixed(1)} ms, decode ${res.decodeTokPerSec.toFixed(1)} tok/s`);
      }
    } catch (e) {
      if (!(e instanceof EetError)) throw e;
      entry.status = e.code === 'ERR_UNSUPPORTED' ? 'unsupported' : 'error';
      entry.error = { code: e.code, message: e.message };
    } finally {
      await m?.native.dispose();
      m?.weights.dispose();
    }
  }
  return report;
}

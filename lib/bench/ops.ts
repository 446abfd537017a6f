// The per-op benchmark ("measure like llm.c", style.md): every op of a decode step and a prefill step of the
// built-in shapes (the plan: opplan.ts), each timed alone through the addon's timeOpSync — device events on cuda,
// warm-up launches first, then N timed launches (an L2 scrub before each on cuda), the median reported — beside
// the roofline: the copy bandwidth measured in the same run for bytes, the device table's tensor peak for FLOPs
// (roofline.ts). Each case's outputs start poisoned and are checked afterwards, so a case whose kernel never ran
// fails. On cpu and emu the clock is the host's: a dry run of the script and of its report, not a measurement.
import { binding, type AddonArray, type AddonDTypeCode, type AddonTensor } from '../binding';
import { EetError } from '../errors';
import { f32ToBf16Bits, f32ToF16Bits } from '../half';
import { planSquareGemms, planStep, settingLabel, type OpCase, type PlanCheck, type PlanSetting, type PlanTensor } from './opplan';
import { DTYPE_BYTES, peakFlops, type BenchDType } from './roofline';
import { deviceName } from './run';
import { BUILTIN_SHAPES, type BuiltinShape } from './shapes';
import { median } from './stats';

/** Shapes for dry runs on emu besides the built-in 'tiny' (LLaMA): a GPT-2 of the same size, for its ops. */
export const DRY_RUN_SHAPES: readonly BuiltinShape[] = [
  BUILTIN_SHAPES.find((s) => s.name === 'tiny')!,
  {
    name: 'tiny-gpt2', arch: 'gpt2', about: 'a GPT-2-shaped toy for dry runs on emu', dim: 64, hiddenDim: 256, nLayers: 2, nHeads: 4,
    nKvHeads: 4, headDim: 16, vocabSize: 512, maxSeqLen: 64, tiedEmbeddings: true, normEps: 1e-5, ropeTheta: 10000,
  },
];

export interface OpBenchOptions {
  /** A resolved device: 'cuda:N', 'emu', 'cpu'. */
  device: string;
  dtype: BenchDType;
  shapes: BuiltinShape[];
  settings: PlanSetting[];
  reps: number;
  warmup: number;
  /** A fill larger than the L2 before each timed launch (cuda): weights come from DRAM, as in a real step. */
  scrubCache: boolean;
  q8: boolean;
  /** Only the cases of these ops (runOpSync names: 'gemm', 'attention' …); every op when absent. */
  ops?: string[];
  /** Square GEMMs M = N = K of these sizes, timed after the shapes (report.square). */
  square?: number[];
  /** Bytes per buffer of the bandwidth copy (default 1 GiB on cuda, 16 MiB elsewhere). */
  bandwidthBytes?: number;
  log?: (line: string) => void;
  /** Called with the report so far after each step (shape and setting): a run cut short still leaves its results. */
  progress?: (partial: OpBenchReport) => void;
}

export interface OpResult {
  name: string;
  op: string;
  about: string;
  perStep: number;
  bytes: number;
  flops: number;
  status: 'ok' | 'error';
  error?: { code: string; message: string };
  /** Times of the timed launches (ms): median, fastest, slowest. */
  medianMs: number | null;
  minMs: number | null;
  maxMs: number | null;
  gbps: number | null;
  /** Achieved bytes/s ÷ the measured copy bandwidth. */
  bandwidthPct: number | null;
  tflops: number | null;
  /** Achieved FLOP/s ÷ the tensor peak (null without a peak). */
  peakPct: number | null;
  /** The larger of bytes ÷ bandwidth and FLOPs ÷ peak: no version of the op runs much faster. */
  floorMs: number | null;
  bound: 'memory' | 'compute' | null;
  /** floor ÷ median. */
  rooflinePct: number | null;
}

export interface SettingResult extends PlanSetting {
  label: string;
  ops: OpResult[];
  /** Σ perStep × median over the step's own ops (null when one failed), and the same sum of floors. */
  step: { ms: number | null; floorMs: number | null };
}

export interface OpBenchReport {
  tool: 'eet op-bench';
  device: { id: string; name: string };
  dtype: BenchDType;
  timing: {
    /** 'cuda-event' on a GPU; 'host' on cpu/emu (null when no op ran). */
    clock: string | null;
    /** Whether the times are GPU times at all: false on cpu and emu (a dry run of the script). */
    gpu: boolean;
    cacheScrubbed: boolean;
    warmup: number;
    reps: number;
    note: string;
  };
  bandwidth: { bytesPerSecond: number; bytes: number; iters: number };
  peak: { label: string; flops: number } | null;
  models: Array<{ model: string; arch: string; about: string; settings: SettingResult[] }>;
  /** The ops the run was limited to (OpBenchOptions.ops), null for all: step sums then cover only those. */
  only: string[] | null;
  /** The square GEMMs asked for (OpBenchOptions.square), in order. */
  square: OpResult[];
}

const DTYPE_CODE: Record<BenchDType, AddonDTypeCode> = { float32: 0, float16: 1, bfloat16: 2 };

/** xorshift32: seedable random tensor contents. */
function rng(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13; x ^= x >>> 17; x ^= x << 5;
    return (x >>>= 0);
  };
}

/**
 * Host data for the random tensors: one array of uniform values (std 0.02) as large as the largest tensor, whose
 * prefixes every random tensor is uploaded from, grown on demand. It repeats a random block of a prime number of
 * elements (copied, not drawn: a 7B shape's tensors are ~10^9 elements, and drawing costs ~7 ns each); the contents
 * only need to be ordinary numbers (never zeros: METHOD.md), and a prime period keeps rows from repeating.
 */
class Noise {
  static readonly PERIOD = 1048573;
  #f32: Float32Array | null = null;
  #half: Uint16Array | null = null;
  readonly #next = rng(12345);
  constructor(private readonly dtype: BenchDType) {}

  values(numel: number, lo = -0.0346, hi = 0.0346): Float32Array {
    const a = new Float32Array(numel);
    for (let i = 0; i < numel; i++) a[i] = lo + ((hi - lo) * this.#next()) / 4294967296;
    return a;
  }

  /** `numel` random elements of the dtype (raw bits for float16/bfloat16). */
  random(numel: number): Float32Array | Uint16Array {
    if (this.dtype === 'float32') {
      if (!this.#f32 || this.#f32.length < numel) this.#f32 = tile(new Float32Array(numel), this.values(Math.min(numel, Noise.PERIOD)));
      return this.#f32.subarray(0, numel);
    }
    if (!this.#half || this.#half.length < numel) this.#half = tile(new Uint16Array(numel), this.halfBits(this.values(Math.min(numel, Noise.PERIOD))));
    return this.#half.subarray(0, numel);
  }

  halfBits(v: Float32Array): Uint16Array {
    const conv = this.dtype === 'bfloat16' ? f32ToBf16Bits : f32ToF16Bits;
    return Uint16Array.from(v, conv);
  }

  /** Q8_0 weights in the op runner's layout: N·K int8 in [-127, 127], then N·K/32 float16 scales ~1e-3. */
  q8(numel: number): Int8Array {
    const q = numel - numel / 17; // numel = N·K · (1 + 1/16)
    const a = new Int8Array(numel);
    const block = Int8Array.from({ length: Math.min(q, Noise.PERIOD) }, () => (this.#next() % 255) - 127);
    tile(a.subarray(0, q), block);
    const scales = new Uint16Array(a.buffer, q, (numel - q) / 2);
    tile(scales, Uint16Array.from({ length: Math.min(scales.length, Noise.PERIOD) }, () => f32ToF16Bits(0.0005 + (0.001 * this.#next()) / 4294967296)));
    return a;
  }
}

/** `out` filled with copies of `block`, by doubling copies. */
function tile<T extends Float32Array | Uint16Array | Int8Array>(out: T, block: T): T {
  out.set(block.subarray(0, Math.min(block.length, out.length)));
  for (let n = block.length; n < out.length; n *= 2) out.copyWithin(n, 0, Math.min(n, out.length - n));
  return out;
}

function makeTensor(device: string, dtype: BenchDType, spec: PlanTensor, noise: Noise): AddonTensor {
  const { AddonTensor } = binding();
  const code: AddonDTypeCode = spec.dtype === 'op' ? DTYPE_CODE[dtype] : spec.dtype === 'float32' ? 0 : spec.dtype === 'int32' ? 3 : 4;
  const f = spec.fill;
  if (f === 'poison') return new AddonTensor(device, code, spec.numel, null, 'poison');
  let data: AddonArray;
  if (f === 'q8') data = noise.q8(spec.numel);
  else if (f instanceof Int32Array) data = f;
  else if (f instanceof Float32Array) data = code === 0 ? f : noise.halfBits(f);
  else if (f === 'logits') {
    const v = noise.values(spec.numel, -8, 8);
    data = code === 0 ? v : noise.halfBits(v);
  } else data = code === 0 && dtype !== 'float32' ? noise.values(spec.numel) : noise.random(spec.numel);
  return new AddonTensor(device, code, spec.numel, data);
}

/** Whether a finished case's tensor satisfies its check: null, or a sentence saying why not. */
export function checkTensor(name: string, data: AddonArray, spec: PlanTensor, check: PlanCheck, dtype: BenchDType): string | null {
  const half = data instanceof Uint16Array || Object.prototype.toString.call(data) === '[object Uint16Array]';
  const expMask = dtype === 'bfloat16' ? 0x7f80 : 0x7c00;
  const finite = half ? (i: number): boolean => ((data[i] as number) & expMask) !== expMask : (i: number): boolean => Number.isFinite(data[i]);
  let count = 0;
  for (let i = 0; i < data.length; i++) {
    if (spec.dtype === 'int32') {
      const max = check.kind === 'written' && check.max !== undefined ? check.max : 2 ** 31;
      if (data[i] < 0 || data[i] >= max) return `${name}[${i}] = ${data[i]}: not written (expected [0, ${max}))`;
      continue;
    }
    if (finite(i)) count++;
    else if (check.kind !== 'finiteCount') return `${name}[${i}] is not finite: ${check.kind === 'written' ? 'never written' : 'corrupted'}`;
  }
  if (check.kind === 'finiteCount' && count !== check.count) return `${name}: ${count} elements written, expected ${check.count}`;
  return null;
}

interface Roof { bytesPerSecond: number; peak: number | null }

function withRoofline(c: OpCase, ms: number[], roof: Roof): OpResult {
  const med = median(ms);
  const s = med / 1000;
  const byteFloor = roof.bytesPerSecond > 0 ? c.bytes / roof.bytesPerSecond : null;
  const flopFloor = roof.peak && c.flops > 0 ? c.flops / roof.peak : c.flops === 0 ? 0 : null;
  const floor = byteFloor === null ? null : Math.max(byteFloor, flopFloor ?? 0);
  return {
    ...base(c), status: 'ok', medianMs: med, minMs: Math.min(...ms), maxMs: Math.max(...ms),
    gbps: s > 0 ? c.bytes / s / 1e9 : null,
    bandwidthPct: s > 0 && roof.bytesPerSecond > 0 ? (100 * c.bytes) / s / roof.bytesPerSecond : null,
    tflops: c.flops > 0 && s > 0 ? c.flops / s / 1e12 : null,
    peakPct: c.flops > 0 && s > 0 && roof.peak ? (100 * c.flops) / s / roof.peak : null,
    floorMs: floor === null ? null : floor * 1000,
    bound: byteFloor === null || flopFloor === null ? null : flopFloor > byteFloor ? 'compute' : 'memory',
    rooflinePct: floor !== null && s > 0 ? (100 * floor) / s : null,
  };
}

function base(c: OpCase): Pick<OpResult, 'name' | 'op' | 'about' | 'perStep' | 'bytes' | 'flops'> {
  return { name: c.name, op: c.op, about: c.about, perStep: c.perStep, bytes: c.bytes, flops: c.flops };
}

const failed = (c: OpCase, code: string, message: string): OpResult => ({
  ...base(c), status: 'error', error: { code, message }, medianMs: null, minMs: null, maxMs: null, gbps: null, bandwidthPct: null,
  tflops: null, peakPct: null, floorMs: null, bound: null, rooflinePct: null,
});

/** Creates a case's tensors, times it, checks its outputs, and frees its tensors. */
function runCase(c: OpCase, o: OpBenchOptions, noise: Noise, roof: Roof, seen: { clock: string | null; scrubbed: boolean }): OpResult {
  const made: Record<string, AddonTensor> = {};
  try {
    for (const [name, spec] of Object.entries(c.tensors)) made[name] = makeTensor(o.device, o.dtype, spec, noise);
    const t = binding().timeOpSync(c.op, o.device, { ...c.params, dtype: DTYPE_CODE[o.dtype], ...made }, { warmup: o.warmup, reps: o.reps, scrubCache: o.scrubCache });
    seen.clock = t.clock;
    seen.scrubbed = t.cacheScrubbed;
    const ms = Array.from(t.ms);
    if (ms.length !== o.reps) return failed(c, 'ERR_INTERNAL', `timeOpSync returned ${ms.length} times for ${o.reps} launches`);
    for (const [name, check] of Object.entries(c.checks)) {
      const why = checkTensor(name, made[name].readSync(), c.tensors[name], check, o.dtype);
      if (why) return failed(c, 'ERR_CHECK', why);
    }
    return withRoofline(c, ms, roof);
  } catch (e) {
    if (!(e instanceof EetError)) throw e;
    return failed(c, e.code, e.message);
  } finally {
    for (const t of Object.values(made)) t.dispose();
  }
}

function stepSums(ops: OpResult[]): SettingResult['step'] {
  const own = ops.filter((r) => r.perStep > 0);
  if (own.some((r) => r.status !== 'ok')) return { ms: null, floorMs: null };
  const sum = (f: (r: OpResult) => number | null): number | null =>
    own.reduce<number | null>((a, r) => (a === null || f(r) === null ? null : a + r.perStep * f(r)!), 0);
  return { ms: sum((r) => r.medianMs), floorMs: sum((r) => r.floorMs) };
}

export function runOpBench(o: OpBenchOptions): OpBenchReport {
  const log = o.log ?? ((): void => {});
  const gpu = o.device.startsWith('cuda');
  const bw = binding().benchCopyBandwidth(o.device, { bytes: o.bandwidthBytes ?? (gpu ? 1 << 30 : 16 << 20), iters: gpu ? 10 : 3 });
  const name = deviceName(o.device);
  const peak = gpu ? peakFlops(name, o.dtype) : null;
  const roof: Roof = { bytesPerSecond: bw.bytesPerSecond, peak: peak?.flops ?? null };
  const seen = { clock: null as string | null, scrubbed: false };
  const lim = binding().limits();
  const blockSize = lim.kvBlockSize;
  const decodeMaxM = o.dtype === 'float32' ? lim.gemmDecodeMaxMF32 : lim.gemmDecodeMaxM;
  const noise = new Noise(o.dtype);
  const models: OpBenchReport['models'] = [];
  const square: OpResult[] = [];
  const report = (): OpBenchReport => {
    const note = gpu
      ? `device events around each launch${seen.scrubbed ? ', the L2 scrubbed before each' : ''}; median of ${o.reps} after ${o.warmup} warm-up launches`
      : `host clock on ${o.device}: a dry run (every op ran, outputs checked, report format); these times say nothing about a GPU`;
    return {
      tool: 'eet op-bench', device: { id: o.device, name }, dtype: o.dtype,
      timing: { clock: seen.clock, gpu, cacheScrubbed: seen.scrubbed, warmup: o.warmup, reps: o.reps, note },
      bandwidth: { bytesPerSecond: bw.bytesPerSecond, bytes: bw.bytes, iters: bw.iters }, peak, models, only: o.ops ?? null, square,
    };
  };
  const planOptions = { dtypeBytes: DTYPE_BYTES[o.dtype], blockSize, q8: o.q8, decodeMaxM };
  const run = (c: OpCase): OpResult => {
    const r = runCase(c, o, noise, roof, seen);
    if (r.status !== 'ok') log(`  ${c.name}: ${r.error!.code}: ${r.error!.message}`);
    return r;
  };
  for (const shape of o.shapes) {
    const entry = { model: shape.name, arch: shape.arch, about: shape.about, settings: [] as SettingResult[] };
    models.push(entry);
    for (const s of o.settings) {
      const label = settingLabel(s);
      log(`${shape.name}: ${label}`);
      const ops = planStep(shape, s, planOptions).filter((c) => !o.ops || o.ops.includes(c.op)).map(run);
      entry.settings.push({ ...s, label, ops, step: stepSums(ops) });
      o.progress?.(report());
    }
  }
  if (o.square?.length) {
    log(`square GEMMs ${o.square.join(', ')}`);
    square.push(...planSquareGemms(o.square, planOptions).filter((c) => !o.ops || o.ops.includes(c.op)).map(run));
    o.progress?.(report());
  }
  return report();
}

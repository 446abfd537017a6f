// Backend comparison for ops (ggml test-backend-ops style). The reference is the cpu-ref backend (engine/cpu/: the
// plain loops in fp64). For each case:
//   emu vs cpu-ref, emu in reversed thread order vs cpu-ref, cuda vs cpu-ref when a GPU is present (skipped
//   otherwise), and, for the ops the fast cpu backend implements itself (FAST_CPU_OPS), cpu vs cpu-ref once per
//   instruction set this machine can run (avx512, avx2, generic: EET_CPU_ISA in a worker of its own, two
//   threads). The cpu backend runs the reference code itself for the other ops.
//   And, for cases that name one (OpCase.independent), the cpu reference vs an independent computation by another op.
// Pass rules (style.md):
//   float32 outputs:  normalized MSE  sum((dev-cpu)^2) / sum(cpu^2)  <= 1e-7
//   float16/bfloat16: rms(dev - ref) <= 2 * rms(cpuLowp - ref), where ref is the cpu op on the same values in
//                     float32 (fp64 accumulation) and cpuLowp the cpu op in the low precision (flash-attention's rule)
//   int32 outputs:    exactly equal
//   cases marked exact (cast): every float output equal to the cpu's bit for bit (-0, inf and subnormals too)
//   NaN in a device output never passes; outputs start poisoned (NaN bytes) so unwritten elements fail.
// Kernels run in child processes (worker.js): a crash or hang fails the case, not the runner.
import { ChildProcess, fork } from 'child_process';
import * as path from 'path';
import { binding } from '../../lib/binding';
import { fromHalfBits, toHalfBits } from '../../lib/half';

export type FloatDType = 'float32' | 'float16' | 'bfloat16';
const CODE: Record<string, number> = { float32: 0, float16: 1, bfloat16: 2, int32: 3, int8: 4 };
export const SHORT: Record<FloatDType, string> = { float32: 'f32', float16: 'f16', bfloat16: 'bf16' };

/** setEmuOptions' target options (lib/binding.ts). */
export interface EmuOptions { smCount?: number; maxSharedMemoryPerBlockOptin?: number }

/** The emu's per-block shared memory on sm_86 / sm_89 (99 KiB), below sm_90's 227 KiB default. */
export const SM86_SMEM = 101376;

/** Input data: floats (rounded to the case dtype), int32 indices, or int8 raw bytes. */
export type InputArray = Float32Array | Int32Array | Int8Array;

export interface OutputSpec {
  numel: number;
  /** 'op' (the case's dtype, the default), or a fixed dtype. */
  dtype?: 'op' | FloatDType | 'int32';
}

export interface OpCase {
  /** Named by its parameters: `norm(kind=rms, dtype=f16, rows=33, cols=12288)`. */
  name: string;
  op: string;
  dtype: FloatDType;
  /** Scalar parameters for runOpSync (the harness adds `dtype`). */
  params: Record<string, unknown>;
  /** Float32Array inputs are rounded to the case dtype (unless listed in f32Inputs); Int32Array and Int8Array (raw
   *  bytes, e.g. quantized weights) as they are. */
  inputs: () => Record<string, InputArray>;
  outputs: Record<string, OutputSpec>;
  /** Inputs that the op updates in place; compared like outputs. */
  inout?: string[];
  /** Outputs passed as the same tensor as an input (output name -> input name): tests in-place aliasing. */
  aliases?: Record<string, string>;
  f32Inputs?: string[];
  /** Outputs must equal the cpu's exactly (ops that only round once, like cast); no float32 reference run. */
  exact?: boolean;
  /** The device the emu emulates for this case (setEmuOptions: SM count, per-block shared memory); sm_90's when
   *  absent. Say so in the case's name. */
  emu?: EmuOptions;
  /** Devices that do not support this case: shown as skipped with "not supported". */
  unsupported?: Array<'emu' | 'cuda'>;
  timeoutMs?: number;
  /** An independent computation of the same result by another op on the cpu (e.g. plain attention over each whole
   *  context for the shared-prefix op): the cpu reference's `output` must match that op's `output` by the float32
   *  rule (for float16/bfloat16 cases, both run in float32 on the same rounded inputs). */
  independent?: {
    op: string;
    params: Record<string, unknown>;
    inputs: (inputs: Record<string, InputArray>) => Record<string, InputArray>;
    output: string;
    numel: number;
  };
}

interface WorkerReply {
  id?: number;
  result?: string;
  ready?: boolean;
  outputs?: Record<string, Float32Array | Uint16Array | Int32Array>;
  ms?: number;
  error?: { code: string; message: string };
}

/** Ops with their own kernels in the fast cpu backend (engine/backend_cpu.cpp FastOp). */
export const FAST_CPU_OPS = new Set(['gemm', 'gemm_q8', 'attention', 'shared_attention', 'norm', 'act', 'rope', 'rope_kv_append']);

/** Instruction sets of the fast cpu kernels this machine runs, the best (the default) first. */
export const CPU_ISAS: string[] = (() => {
  const all = ['avx512', 'avx2', 'generic'];
  let native = 'generic';
  try {
    native = binding().devices().cpuIsa;
  } catch { /* no addon: the op tests fail on their own */ }
  return all.slice(Math.max(0, all.indexOf(native)));
})();

export class OpWorker {
  private child: ChildProcess | null = null;
  /** Extra environment of the child (EET_CPU_ISA, EET_CPU_THREADS). */
  constructor(private readonly env: Record<string, string> = {}) {}
  private ready: Promise<void> | null = null;
  private nextId = 1;
  private pending = new Map<number, { resolve: (r: WorkerReply) => void; reject: (e: Error) => void }>();

  private start(): Promise<void> {
    if (this.ready) return this.ready;
    const child = fork(path.join(__dirname, 'worker.js'), [], {
      serialization: 'advanced', stdio: ['ignore', 'inherit', 'inherit', 'ipc'], env: { ...process.env, ...this.env },
    });
    this.child = child;
    this.ready = new Promise<void>((resolve, reject) => {
      child.on('message', (m: WorkerReply) => {
        if (m.ready) return resolve();
        const p = m.id !== undefined ? this.pending.get(m.id) : undefined;
        if (p) {
          this.pending.delete(m.id!);
          p.resolve(m);
        }
      });
      child.on('exit', (code, signal) => {
        const why = new Error(`op worker died (${signal ? `signal ${signal}` : `exit code ${code}`})`);
        reject(why);
        for (const p of this.pending.values()) p.reject(why);
        this.pending.clear();
        if (this.child === child) {
          this.child = null;
          this.ready = null;
        }
      });
    });
    return this.ready;
  }

  async run(msg: Record<string, unknown>, timeoutMs: number): Promise<WorkerReply> {
    await this.start();
    const id = this.nextId++;
    const child = this.child!;
    return new Promise<WorkerReply>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        child.kill('SIGKILL');
        reject(new Error(`op timed out after ${timeoutMs} ms (worker killed)`));
      }, timeoutMs);
      this.pending.set(id, {
        resolve: (r) => { clearTimeout(timer); resolve(r); },
        reject: (e) => { clearTimeout(timer); reject(e); },
      });
      child.send({ ...msg, id });
    });
  }

  stop(): void {
    this.child?.kill('SIGKILL');
    this.child = null;
    this.ready = null;
  }
}

export const hasGpu: boolean = (() => {
  try {
    return binding().devices().cudaUsable;
  } catch {
    return false;
  }
})();

type Outputs = Record<string, Float32Array | Int32Array>;

/** A typed array's kind by its tag: arrays from the worker belong to the main realm, not jest's, so
 *  `instanceof Uint16Array` is false for them (that once made fp16/bf16 outputs compare as raw bits). */
export function arrayKind(a: unknown): string {
  return ArrayBuffer.isView(a) ? Object.prototype.toString.call(a).slice(8, -1) : typeof a;
}

/** Worker outputs as numbers: float16/bfloat16 bit patterns decoded, everything in this realm's arrays. */
export function toF32(a: Float32Array | Uint16Array | Int32Array, dtype: string): Float32Array | Int32Array {
  switch (arrayKind(a)) {
    case 'Uint16Array': return fromHalfBits(a as Uint16Array, dtype as 'float16' | 'bfloat16');
    case 'Float32Array': return Float32Array.from(a as Float32Array);
    case 'Int32Array': return Int32Array.from(a as Int32Array);
    default: throw new Error(`unexpected output array ${arrayKind(a)}`);
  }
}

async function runOn(worker: OpWorker, c: OpCase, device: string, dtype: FloatDType, reverseOrder: boolean, inputs: Record<string, InputArray>): Promise<Outputs> {
  const tensors: Record<string, unknown> = {};
  for (const [name, data] of Object.entries(inputs)) {
    if (data instanceof Int32Array) tensors[name] = { dtype: CODE.int32, data };
    else if (data instanceof Int8Array) tensors[name] = { dtype: CODE.int8, data };
    else if (dtype === 'float32' || c.f32Inputs?.includes(name)) tensors[name] = { dtype: CODE.float32, data };
    else tensors[name] = { dtype: CODE[dtype], data: toHalfBits(data, dtype) };
  }
  const outDtype = (o: OutputSpec) => (o.dtype === undefined || o.dtype === 'op' ? dtype : o.dtype);
  for (const [name, o] of Object.entries(c.outputs)) {
    if (!c.aliases?.[name]) tensors[name] = { dtype: CODE[outDtype(o)], numel: o.numel, fill: 'poison' };
  }
  const names = [...Object.keys(c.outputs), ...(c.inout ?? [])];
  const reply = await worker.run(
    { op: c.op, device, reverseOrder, emu: c.emu, params: { ...c.params, dtype: CODE[dtype] }, tensors, aliases: c.aliases ?? {}, outputs: names },
    c.timeoutMs ?? 300000,
  );
  if (reply.error) throw Object.assign(new Error(`${device}: ${reply.error.code}: ${reply.error.message}`), { code: reply.error.code });
  const out: Outputs = {};
  for (const name of names) {
    const spec = c.outputs[name];
    const dt = spec ? outDtype(spec) : c.f32Inputs?.includes(name) ? 'float32' : dtype;
    out[name] = toF32(reply.outputs![name], dt);
  }
  return out;
}

/** Values rounded to what dtype holds, as float32 (the inputs every run sees). */
function roundInputs(inputs: Record<string, InputArray>, c: OpCase): Record<string, InputArray> {
  if (c.dtype === 'float32') return inputs;
  const out: Record<string, InputArray> = {};
  for (const [k, v] of Object.entries(inputs)) {
    out[k] = v instanceof Float32Array && !c.f32Inputs?.includes(k) ? fromHalfBits(toHalfBits(v, c.dtype), c.dtype) : v;
  }
  return out;
}

export interface Verdict { ok: boolean; detail: string }

function lengthMismatch(dev: ArrayLike<number>, ref: ArrayLike<number>): Verdict | null {
  return dev.length === ref.length ? null : { ok: false, detail: `length ${dev.length} != ${ref.length}` };
}

export function compareF32(dev: Float32Array, ref: Float32Array): Verdict {
  const bad = lengthMismatch(dev, ref);
  if (bad) return bad;
  let num = 0, den = 0, nan = -1, maxAbs = 0;
  for (let i = 0; i < ref.length; i++) {
    if (dev[i] !== dev[i] && nan < 0) nan = i; // NaN (no global lookups in hot loops: slow under jest)
    const d = dev[i] - ref[i];
    num += d * d;
    den += ref[i] * ref[i];
    const ad = d < 0 ? -d : d;
    if (ad > maxAbs) maxAbs = ad;
  }
  if (nan >= 0) return { ok: false, detail: `NaN at ${nan} (ref ${ref[nan]})` };
  const nmse = den > 0 ? num / den : num;
  return { ok: nmse <= 1e-7, detail: `nmse ${nmse.toExponential(2)} (limit 1e-7), max |diff| ${maxAbs.toExponential(2)}` };
}

export function compareLowp(dev: Float32Array, cpuLowp: Float32Array, ref: Float32Array): Verdict {
  const bad = lengthMismatch(dev, ref);
  if (bad) return bad;
  let eDev = 0, eCpu = 0, nan = -1;
  for (let i = 0; i < ref.length; i++) {
    if (dev[i] !== dev[i] && nan < 0) nan = i; // NaN (no global lookups in hot loops: slow under jest)
    eDev += (dev[i] - ref[i]) ** 2;
    eCpu += (cpuLowp[i] - ref[i]) ** 2;
  }
  if (nan >= 0) return { ok: false, detail: `NaN at ${nan} (ref ${ref[nan]})` };
  const rDev = Math.sqrt(eDev / Math.max(ref.length, 1));
  const rCpu = Math.sqrt(eCpu / Math.max(ref.length, 1));
  return { ok: rDev <= 2 * rCpu, detail: `rms error ${rDev.toExponential(3)} vs cpu-in-precision ${rCpu.toExponential(3)} (limit 2x)` };
}

export function compareExact(dev: Int32Array | Float32Array, ref: Int32Array | Float32Array): Verdict {
  const bad = lengthMismatch(dev, ref);
  if (bad) return bad;
  for (let i = 0; i < ref.length; i++) {
    if (Number.isNaN(dev[i]) || !Object.is(dev[i], ref[i])) return { ok: false, detail: `element ${i}: ${dev[i]} != ${ref[i]}` };
  }
  return { ok: true, detail: 'exact' };
}

/** Registers the jest tests for an op's cases. */
export function opSuite(title: string, cases: OpCase[]): void {
  const worker = new OpWorker();
  // cpu results per case, shared by that case's device tests (they run in order within the file)
  const refs = new Map<string, Promise<{ inputs: Record<string, InputArray>; cpu: Outputs; ref: Outputs | null }>>();
  const reference = (c: OpCase) => {
    let r = refs.get(c.name);
    if (!r) {
      r = (async () => {
        const inputs = roundInputs(c.inputs(), c);
        const cpu = await runOn(worker, c, 'cpu-ref', c.dtype, false, inputs);
        const ref = c.dtype === 'float32' || c.exact ? null : await runOn(worker, c, 'cpu-ref', 'float32', false, inputs);
        return { inputs, cpu, ref };
      })();
      refs.set(c.name, r);
    }
    return r;
  };

  // The fast cpu kernels: one worker per instruction set (and thread count, EET_CPU_THREADS).
  const cpuWorkers = new Map<string, OpWorker>();
  const cpuWorker = (isa: string, threads: number) => {
    const key = `${isa}/${threads}`;
    let w = cpuWorkers.get(key);
    if (!w) cpuWorkers.set(key, (w = new OpWorker({ EET_CPU_ISA: isa, EET_CPU_THREADS: String(threads) })));
    return w;
  };

  const check = async (c: OpCase, device: string, reverse: boolean, runner: OpWorker = worker) => {
    const { inputs, cpu, ref } = await reference(c);
    const dev = await runOn(runner, c, device, c.dtype, reverse, inputs);
    const failures: string[] = [];
    for (const name of Object.keys(dev)) {
      const d = dev[name];
      let v: Verdict;
      if (arrayKind(d) === 'Int32Array' || c.exact) v = compareExact(d, cpu[name]);
      else if (!ref || (c.outputs[name]?.dtype === 'float32') || c.f32Inputs?.includes(name)) v = compareF32(d as Float32Array, cpu[name] as Float32Array);
      else v = compareLowp(d as Float32Array, cpu[name] as Float32Array, ref[name] as Float32Array);
      if (!v.ok) failures.push(`${name}: ${v.detail}`);
    }
    if (failures.length) throw new Error(`${device}${reverse ? ' (reversed thread order)' : ''} vs cpu-ref, ${c.name}:\n  ${failures.join('\n  ')}`);
  };

  const independent = async (c: OpCase) => {
    const ind = c.independent!;
    const { inputs, cpu, ref } = await reference(c);
    const other: OpCase = { ...c, op: ind.op, params: ind.params, outputs: { [ind.output]: { numel: ind.numel } }, inout: undefined, aliases: undefined };
    const expected = await runOn(worker, other, 'cpu-ref', 'float32', false, ind.inputs(inputs));
    const got = (c.dtype === 'float32' ? cpu : ref!)[ind.output];
    const v = compareF32(got as Float32Array, expected[ind.output] as Float32Array);
    if (!v.ok) throw new Error(`cpu-ref ${c.op} vs cpu-ref ${ind.op}, ${c.name}: ${v.detail}`);
  };

  describe(title, () => {
    afterAll(() => {
      worker.stop();
      for (const w of cpuWorkers.values()) w.stop();
    });
    for (const c of cases) {
      if (c.independent) test(`cpu-ref vs ${c.independent.op} (independent): ${c.name}`, () => independent(c));
      const emuOk = !c.unsupported?.includes('emu');
      const cudaOk = !c.unsupported?.includes('cuda');
      if (FAST_CPU_OPS.has(c.op)) {
        // every instruction set, on two threads (products too small to split run on one; test/api/cpu-threads
        // checks that one and two threads give identical results)
        for (const isa of CPU_ISAS) {
          test(`cpu(${isa}) vs cpu-ref: ${c.name}`, () => check(c, 'cpu', false, cpuWorker(isa, 2)));
        }
      }
      (emuOk ? test : test.skip)(`emu vs cpu-ref: ${c.name}${emuOk ? '' : ' (not supported)'}`, () => check(c, 'emu', false));
      (emuOk ? test : test.skip)(`emu(reversed) vs cpu-ref: ${c.name}${emuOk ? '' : ' (not supported)'}`, async () => {
        await check(c, 'emu', true);
        if (!(hasGpu && cudaOk)) refs.delete(c.name); // the last user of this case's reference
      });
      (hasGpu && cudaOk ? test : test.skip)(`cuda vs cpu-ref: ${c.name}${cudaOk ? '' : ' (not supported)'}`, async () => {
        await check(c, 'cuda', false);
        refs.delete(c.name);
      });
    }
  });
}

/** Cartesian product of named parameter lists, for generating cases by loops. */
export function grid<T extends Record<string, readonly unknown[]>>(axes: T): Array<{ [K in keyof T]: T[K][number] }> {
  let out: Array<Record<string, unknown>> = [{}];
  for (const [k, vals] of Object.entries(axes)) out = out.flatMap((o) => vals.map((v) => ({ ...o, [k]: v })));
  return out as Array<{ [K in keyof T]: T[K][number] }>;
}

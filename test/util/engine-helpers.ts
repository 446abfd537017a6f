// Shared helpers of the model tests that drive the engine (TestEngine) with tiny random weights through a real file, and the
// fp64 building blocks of their independent references (row vectors as Float64Array). Which tensors a model has
// comes from its architecture's description (lib/arch/); the references read them by the engine's names.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { ARCHITECTURES, tensorList, type ArchShape, type ModelFileConfig } from '../../lib/arch';
import { AddonContext, AddonEmbedRequest, AddonModel, AddonModelConfig, AddonStepRequest, AddonTensorSource, binding } from '../../lib/binding';
import { normal } from './random';

export interface Weight {
  shape: number[];
  data: Float32Array;
}
export type Weights = Map<string, Weight>;

/** Std of the embedding tables unless a caller says otherwise: the token table dominates its sum with the others. */
const EMBEDDING_STD: Record<string, number> = { token_embd: 1, position_embd: 0.5, token_types: 0.5 };

/**
 * Random values for every tensor of the config's architecture, in the description's order, one seed each from
 * `seed` on: matrices ~ N(0, 1/in), embeddings ~ N(0, EMBEDDING_STD²), norm gains ~ 1 + N(0, 0.2²), biases
 * ~ N(0, biasStd²). `std` overrides the std of any tensor by name.
 */
export function randomWeights(cfg: ArchShape, seed: number, opts: { std?: Record<string, number>; biasStd?: number } = {}): Weights {
  const w: Weights = new Map();
  let s = seed;
  for (const t of tensorList(cfg)) {
    const n = t.shape.reduce((a, b) => a * b, 1);
    const std = opts.std?.[t.name];
    let data: Float32Array;
    if (t.role === 'norm') {
      data = normal(n, s++, std ?? 0.2);
      for (let i = 0; i < n; i++) data[i] += 1;
    } else if (t.role === 'bias') {
      data = normal(n, s++, std ?? opts.biasStd ?? 0.2);
    } else {
      data = normal(n, s++, std ?? (t.role === 'embedding' ? EMBEDDING_STD[t.name] ?? 1 : 1 / Math.sqrt(t.shape[1])));
    }
    w.set(t.name, { shape: t.shape, data });
  }
  return w;
}

/**
 * The weights under their Hugging Face names (each tensor's first name in the description, through `rename`),
 * Conv1D matrices marked `t` to be stored transposed: what a safetensors file of the model holds.
 */
export function hfTensors(cfg: ArchShape, w: Weights, rename: (name: string) => string = (n) => n): Array<{ name: string; w: Weight; t?: boolean }> {
  return tensorList(cfg).map((t) => ({ name: rename(t.hf[0]), w: w.get(t.name)!, t: t.hfConv1D === true }));
}

/** Every described architecture at a small shape, twice: with every optional tensor (untied head, q/k/v biases) and without. */
export function archShapeVariants(): ModelFileConfig[] {
  return ARCHITECTURES.flatMap((a) => [false, true].map((flag): ModelFileConfig => ({
    arch: a.arch, dim: 24, hiddenDim: 40, nLayers: 2, nHeads: 3, nKvHeads: a.arch === 'llama' ? 1 : 3, headDim: 8, vocabSize: 30, maxSeqLen: 16,
    normEps: 1e-5, ropeTheta: 10000, ropeLayout: 'half', tiedEmbeddings: !flag, qkvBias: a.arch === 'llama' ? flag : undefined,
    nTokenTypes: a.arch === 'bert' ? 2 : undefined,
    ...(a.arch === 't5' || a.arch === 't5encoder' ? { relBuckets: 32, relMaxDistance: 128, ffnActivation: flag ? 'geglu_tanh' as const : 'relu' as const } : {}),
    // t5: an untied head with more decoder layers than encoder layers, or a tied head with as many
    ...(a.arch === 't5' ? { nDecoderLayers: flag ? 3 : 2, decoderStartTokenId: 0, scaleDecoderOutputs: !flag } : {}),
  })));
}

/** (rows, cols) → (cols, rows): Hugging Face's Conv1D layout of an engine matrix. */
export function transpose(w: Weight): Weight {
  const [r, c] = w.shape;
  const d = new Float32Array(r * c);
  for (let i = 0; i < r; i++) for (let j = 0; j < c; j++) d[j * r + i] = w.data[i * c + j];
  return { shape: [c, r], data: d };
}

let tmp: string | undefined;
let fileCount = 0;

/** Removes the files writeWeights wrote (call from a top-level afterAll). */
export function removeWeightFiles(): void {
  if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
  tmp = undefined;
}

/** Writes every tensor to one file after a few leading bytes (so offsets are non-zero and unaligned). */
export function writeWeights(w: Weights): Map<string, AddonTensorSource> {
  tmp ??= fs.mkdtempSync(path.join(os.tmpdir(), 'eet-models-'));
  const file = path.join(tmp, `weights-${fileCount++}.bin`);
  const chunks: Buffer[] = [Buffer.from('EETTEST')];
  const sources = new Map<string, AddonTensorSource>();
  let offset = chunks[0].length;
  for (const [name, t] of w) {
    const bytes = Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength);
    sources.set(name, { path: file, offset, bytes: bytes.length, dtype: 'float32', shape: t.shape });
    chunks.push(bytes);
    offset += bytes.length;
  }
  fs.writeFileSync(file, Buffer.concat(chunks));
  return sources;
}

/** A model's config plus the sizes of the one context the model tests run it in. */
export type EngineConfig = AddonModelConfig & { maxBatch: number; maxContext: number; maxStepTokens: number };

/**
 * What the model tests drive: a model's weights (AddonModel) and one context over them, used through the
 * context's low-level API (startSequence / step / endSequence, embed). The context is created on first use, so
 * its own errors (a model not finalized, sizes out of range) surface there, coded by the engine.
 */
export class TestEngine {
  readonly weights: AddonModel;
  readonly cfg: EngineConfig;
  #ctx: AddonContext | undefined;

  constructor(cfg: EngineConfig) {
    this.cfg = cfg;
    this.weights = new (binding().AddonModel)(cfg);
  }

  get ctx(): AddonContext {
    this.#ctx ??= new (binding().AddonContext)(this.weights, {
      maxBatch: this.cfg.maxBatch, maxContext: this.cfg.maxContext, maxStepTokens: this.cfg.maxStepTokens,
    }, () => {});
    return this.#ctx;
  }

  loadTensor(name: string, source: AddonTensorSource): Promise<void> { return this.weights.loadTensor(name, source); }
  finalize(): Promise<void> { return this.weights.finalize(); }
  startSequence(seed: bigint): number { return this.ctx.startSequence(seed); }
  endSequence(slot: number): void { this.ctx.endSequence(slot); }
  step(request: AddonStepRequest): ReturnType<AddonContext['step']> {
    try {
      return this.ctx.step(request);
    } catch (e) {
      return Promise.reject(e);
    }
  }
  embed(request: AddonEmbedRequest): Promise<Float32Array> {
    try {
      return this.ctx.embed(request);
    } catch (e) {
      return Promise.reject(e);
    }
  }
  memory(): { weights: number; kvCache: number; workspace: number } { return this.ctx.memory(); }
  dispose(): void {
    void this.#ctx?.dispose();
    this.weights.dispose();
  }
}

export async function buildModel(cfg: EngineConfig, sources: Map<string, AddonTensorSource>): Promise<TestEngine> {
  const model = new TestEngine(cfg);
  await Promise.all([...sources].map(([name, src]) => model.loadTensor(name, src)));
  await model.finalize();
  return model;
}

// ---- fp64 math -----------------------------------------------------------------------------------------------------

/** y = W x (+ b) for W (out, in). */
export function linear(w: Weight, x: Float64Array, b?: Weight): Float64Array {
  const [out, inn] = w.shape;
  const y = new Float64Array(out);
  for (let o = 0; o < out; o++) {
    let acc = b ? b.data[o] : 0;
    for (let i = 0; i < inn; i++) acc += w.data[o * inn + i] * x[i];
    y[o] = acc;
  }
  return y;
}

export function layerNorm(x: Float64Array, w: Weight, b: Weight, eps: number): Float64Array {
  const n = x.length;
  const mean = x.reduce((a, v) => a + v, 0) / n;
  const variance = x.reduce((a, v) => a + (v - mean) * (v - mean), 0) / n;
  const s = 1 / Math.sqrt(variance + eps);
  return x.map((v, i) => (v - mean) * s * w.data[i] + b.data[i]);
}

export function add(a: Float64Array, b: Float64Array): Float64Array {
  return a.map((v, i) => v + b[i]);
}

export function geluTanh(x: number): number {
  return 0.5 * x * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (x + 0.044715 * x * x * x)));
}

/** erf by its Taylor series (|x| < 6; beyond, ±1 to double precision). */
export function erf(x: number): number {
  if (Math.abs(x) >= 6) return Math.sign(x);
  let term = x;
  let sum = x;
  for (let n = 1; n < 200; n++) {
    term *= (-x * x) / n;
    const add = term / (2 * n + 1);
    sum += add;
    if (Math.abs(add) < 1e-17 * Math.abs(sum)) break;
  }
  return (2 / Math.sqrt(Math.PI)) * sum;
}

export function geluErf(x: number): number {
  return 0.5 * x * (1 + erf(x / Math.SQRT2));
}

/**
 * Multi-head attention of one query row over keys/values rows (all heads, head h at h*hd; MHA).
 * Returns the concatenated heads.
 */
export function attend(q: Float64Array, keys: Float64Array[], values: Float64Array[], nHeads: number, hd: number): Float64Array {
  const out = new Float64Array(nHeads * hd);
  for (let h = 0; h < nHeads; h++) {
    const scores = keys.map((k) => {
      let s = 0;
      for (let d = 0; d < hd; d++) s += q[h * hd + d] * k[h * hd + d];
      return s / Math.sqrt(hd);
    });
    const m = Math.max(...scores);
    const e = scores.map((s) => Math.exp(s - m));
    const sum = e.reduce((a, b) => a + b, 0);
    for (let t = 0; t < e.length; t++) {
      for (let d = 0; d < hd; d++) out[h * hd + d] += (e[t] / sum) * values[t][h * hd + d];
    }
  }
  return out;
}

// ---- requests and comparisons ----------------------------------------------------------------------------------------

export function request(slots: number[], seqs: number[][], logits: 'none' | 'last' | 'all' = 'all'): AddonStepRequest {
  const B = slots.length;
  return {
    slots: Int32Array.from(slots),
    tokens: Int32Array.from(seqs.flat()),
    counts: Int32Array.from(seqs.map((s) => s.length)),
    temperature: new Float32Array(B),
    topK: new Int32Array(B),
    topP: new Float32Array(B).fill(1),
    repetitionPenalty: new Float32Array(B).fill(1),
    logits,
  };
}

export function row(a: Float32Array, r: number, width: number): Float32Array {
  return a.subarray(r * width, (r + 1) * width);
}

/** max |a - ref| / max |ref|. */
export function relDiff(a: ArrayLike<number>, ref: ArrayLike<number>): number {
  expect(a.length).toBe(ref.length);
  let m = 0;
  let scale = 0;
  for (let i = 0; i < a.length; i++) {
    m = Math.max(m, Math.abs(a[i] - ref[i]));
    scale = Math.max(scale, Math.abs(ref[i]));
  }
  return m / scale;
}

export function argmax(a: ArrayLike<number>): number {
  let best = 0;
  for (let i = 1; i < a.length; i++) if (a[i] > a[best]) best = i;
  return best;
}

export async function expectCode(p: Promise<unknown> | (() => unknown), code: string, message?: RegExp): Promise<void> {
  let err: unknown;
  try {
    await (typeof p === 'function' ? p() : p);
  } catch (e) {
    err = e;
  }
  expect(err).toBeDefined();
  expect((err as { code?: string }).code).toBe(code);
  if (message) expect((err as Error).message).toMatch(message);
}

/**
 * The context's stats once its memories are back in the pool. The call's handle on a memory is let go on the JS
 * thread right after the requests are submitted; when the requests end first (a few steps), the last holder is that
 * handle and the blocks return at the loop's next iteration, which the stats show then. Polls up to 2 s: a memory
 * that is never freed still fails.
 */
export async function settledStats(model: { stats(): { encoderMemories: number; blocksUsed: number } }): Promise<{ encoderMemories: number; blocksUsed: number }> {
  for (let i = 0; i < 200; i++) {
    const s = model.stats();
    if (s.encoderMemories === 0 && s.blocksUsed === 0) return s;
    await new Promise((r) => setTimeout(r, 10));
  }
  return model.stats();
}

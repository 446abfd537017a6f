// A plain JS llama forward pass behind the AddonModel interface (lib/binding.ts), written from the stories260K
// README's description of run.c: RMSNorm eps 1e-5, adjacent-pair RoPE theta 1e4, GQA, SiLU-gated FFN, tied or
// separate classifier. float32 storage, double accumulation. It lets the TypeScript generation loop be tested
// without the native engine (test/unit/generation-loop.test.ts); it is not used by the package.
import * as fs from 'fs';
import type { AddonContextOptions, AddonModelConfig, AddonStepRequest, AddonStepResult, AddonTensorSource } from '../../lib/binding';
import type { EngineFactory } from '../../lib/model';
import { UnsupportedError } from '../../lib/errors';
import { rng } from './random';

export class ReferenceLlama {
  readonly c: AddonModelConfig & { maxBatch: number; maxContext: number };
  readonly w = new Map<string, Float32Array>();
  /** Per slot: null when free, else its KV cache and RNG. */
  slots: Array<{ k: Float32Array[]; v: Float32Array[]; len: number; rand: () => number; seen: Set<number> } | null> = [];
  readonly steps: AddonStepRequest[] = [];
  disposed = false;
  stepDelayMs = 0;

  constructor(config: AddonModelConfig) {
    this.c = { ...config, maxBatch: 0, maxContext: 0 };
  }

  /** Both halves of the engine (weights and context) for loadModelWith; `made` sees each instance. */
  static factory(made: (ref: ReferenceLlama) => void = () => {}): EngineFactory {
    return {
      model: (config) => {
        const ref = new ReferenceLlama(config);
        made(ref);
        return ref as never;
      },
      context: (model, options: AddonContextOptions) => {
        const ref = model as unknown as ReferenceLlama;
        ref.c.maxBatch = options.maxBatch;
        ref.c.maxContext = options.maxContext ?? ref.c.maxSeqLen;
        ref.slots = new Array(options.maxBatch).fill(null);
        return ref as never;
      },
    };
  }

  async loadTensor(name: string, source: AddonTensorSource): Promise<void> {
    if (!('path' in source)) throw new Error('the JS reference engine reads tensors from files only');
    const fh = await fs.promises.open(source.path, 'r');
    try {
      const buf = Buffer.alloc(source.bytes);
      await fh.read(buf, 0, source.bytes, source.offset);
      this.w.set(name, new Float32Array(buf.buffer, buf.byteOffset, source.bytes / 4));
    } finally {
      await fh.close();
    }
  }

  async finalize(): Promise<void> {
    if (!this.w.has('token_embd') || !this.w.has('output_norm')) throw new Error('missing tensors');
  }

  startSequence(seed: bigint): number {
    const slot = this.slots.indexOf(null);
    if (slot < 0) throw new Error('no free slot');
    const kv = this.c.nKvHeads * this.c.headDim;
    const mk = (): Float32Array[] => Array.from({ length: this.c.nLayers }, () => new Float32Array(this.c.maxContext * kv));
    this.slots[slot] = { k: mk(), v: mk(), len: 0, rand: rng(Number(seed % 0xffffffffn)), seen: new Set() };
    return slot;
  }

  endSequence(slot: number): void {
    if (!this.slots[slot]) throw new Error(`slot ${slot} is not live`);
    this.slots[slot] = null;
  }

  async step(req: AddonStepRequest): Promise<AddonStepResult> {
    await new Promise((r) => setTimeout(r, this.stepDelayMs));
    this.steps.push(req);
    const n = req.slots.length;
    const V = this.c.vocabSize;
    const tokens = new Int32Array(n);
    const logprobs = new Float32Array(n);
    const logits = req.logits === 'last' ? new Float32Array(n * V) : undefined;
    let at = 0;
    for (let i = 0; i < n; i++) {
      const s = this.slots[req.slots[i]];
      if (!s) throw new Error(`slot ${req.slots[i]} is not live`);
      let out: Float32Array = new Float32Array(V);
      for (let j = 0; j < req.counts[i]; j++) {
        const t = req.tokens[at++];
        s.seen.add(t);
        out = this.forward(s, t);
      }
      const [tok, lp] = this.sample(out, req.temperature[i], s.rand);
      tokens[i] = tok;
      logprobs[i] = lp;
      logits?.set(out, i * V);
    }
    return logits ? { tokens, logprobs, logits } : { tokens, logprobs };
  }

  async embed(): Promise<Float32Array> {
    throw new UnsupportedError('embed(): only encoder models (bert) compute embeddings; use step()');
  }

  memory(): { weights: number; kvCache: number; workspace: number } {
    let weights = 0;
    for (const t of this.w.values()) weights += t.byteLength;
    return { weights, kvCache: 2 * this.c.maxBatch * this.c.nLayers * this.c.maxContext * this.c.nKvHeads * this.c.headDim * 4, workspace: 0 };
  }

  dispose(): Promise<void> {
    this.disposed = true;
    return Promise.resolve();
  }

  private sample(logits: Float32Array, temperature: number, rand: () => number): [number, number] {
    let best = 0;
    for (let i = 1; i < logits.length; i++) if (logits[i] > logits[best]) best = i;
    const T = temperature === 0 ? 1 : temperature;
    let sum = 0;
    for (let i = 0; i < logits.length; i++) sum += Math.exp((logits[i] - logits[best]) / T);
    if (temperature === 0) return [best, -Math.log(sum)];
    let r = rand() * sum;
    for (let i = 0; i < logits.length; i++) {
      const p = Math.exp((logits[i] - logits[best]) / T);
      if ((r -= p) <= 0 || i === logits.length - 1) return [i, Math.log(p / sum)];
    }
    return [best, 0];
  }

  private forward(s: NonNullable<ReferenceLlama['slots'][number]>, token: number): Float32Array {
    const { dim: D, hiddenDim: F, nLayers: L, nHeads: H, nKvHeads: KV, headDim: hs, vocabSize: V } = this.c;
    const pos = s.len++;
    if (pos >= this.c.maxContext) throw new Error('context full');
    const w = (name: string): Float32Array => this.w.get(name)!;
    const x = Float32Array.from(w('token_embd').subarray(token * D, (token + 1) * D));
    const rms = (v: Float32Array, g: Float32Array): Float32Array => {
      let ss = 0;
      for (const a of v) ss += a * a;
      const k = 1 / Math.sqrt(ss / v.length + this.c.normEps);
      return Float32Array.from(v, (a, i) => a * k * g[i]);
    };
    const mat = (m: Float32Array, v: Float32Array, rows: number): Float32Array => {
      const out = new Float32Array(rows);
      const n = v.length;
      for (let r = 0; r < rows; r++) {
        let acc = 0;
        for (let j = 0; j < n; j++) acc += m[r * n + j] * v[j];
        out[r] = acc;
      }
      return out;
    };
    const rope = (v: Float32Array): void => {
      for (let i = 0; i < v.length; i += 2) {
        const f = 1 / Math.pow(this.c.ropeTheta, (i % hs) / hs);
        const a = pos * f, c = Math.cos(a), sn = Math.sin(a);
        const v0 = v[i], v1 = v[i + 1];
        v[i] = v0 * c - v1 * sn;
        v[i + 1] = v0 * sn + v1 * c;
      }
    };
    const kvDim = KV * hs;
    for (let l = 0; l < L; l++) {
      const xb = rms(x, w(`blk.${l}.attn_norm`));
      const q = mat(w(`blk.${l}.attn_q`), xb, D);
      const k = mat(w(`blk.${l}.attn_k`), xb, kvDim);
      const v = mat(w(`blk.${l}.attn_v`), xb, kvDim);
      rope(q);
      rope(k);
      s.k[l].set(k, pos * kvDim);
      s.v[l].set(v, pos * kvDim);
      const att = new Float32Array(D);
      for (let h = 0; h < H; h++) {
        const g = Math.floor(h / (H / KV));
        const scores = new Float64Array(pos + 1);
        let mx = -Infinity;
        for (let t = 0; t <= pos; t++) {
          let d = 0;
          for (let i = 0; i < hs; i++) d += q[h * hs + i] * s.k[l][t * kvDim + g * hs + i];
          scores[t] = d / Math.sqrt(hs);
          mx = Math.max(mx, scores[t]);
        }
        let sum = 0;
        for (let t = 0; t <= pos; t++) sum += (scores[t] = Math.exp(scores[t] - mx));
        for (let i = 0; i < hs; i++) {
          let acc = 0;
          for (let t = 0; t <= pos; t++) acc += (scores[t] / sum) * s.v[l][t * kvDim + g * hs + i];
          att[h * hs + i] = acc;
        }
      }
      const o = mat(w(`blk.${l}.attn_output`), att, D);
      for (let i = 0; i < D; i++) x[i] += o[i];
      const xf = rms(x, w(`blk.${l}.ffn_norm`));
      const a = mat(w(`blk.${l}.ffn_gate`), xf, F);
      const b = mat(w(`blk.${l}.ffn_up`), xf, F);
      const hb = Float32Array.from(a, (ai, i) => (ai / (1 + Math.exp(-ai))) * b[i]);
      const d = mat(w(`blk.${l}.ffn_down`), hb, D);
      for (let i = 0; i < D; i++) x[i] += d[i];
    }
    const xn = rms(x, w('output_norm'));
    return mat(this.c.tiedEmbeddings ? w('token_embd') : w('output'), xn, V);
  }
}

// The per-op benchmark's plan (scripts/op-bench.js, lib/bench/ops.ts): every op one decode or prefill step of a
// built-in shape runs, as a runOpSync call (native/ops.cpp names and params), in the order and with the arguments
// engine/arch_llama.cpp, engine/arch_gpt2.cpp and engine/runner.cpp give it, with the fewest bytes it must move
// (each input read once, each output written once) and its FLOPs. Pure functions of the shape; no native code
// (unit-tested in test/unit/opplan.test.ts).
//   decode  (B sequences, each with C tokens of context counting the new one): one token per sequence, T = B.
//   prefill (B prompts of P tokens): T = B·P packed tokens; the LM head and the sampler see each sequence's last row.
// Per layer (× nLayers): norm, q|k|v GEMM, RoPE fused with the KV append (LLaMA) or the KV append, attention, output GEMM (+ residual), norm, MLP
// GEMMs and activation. Once per step: the embedding, the gather of the rows to sample, the final norm, the LM
// head, the sampler. LLaMA steps of T <= decodeMaxM tokens (the decode GEMM kernels' rows) run the norms and SwiGLU
// as the GEMMs' input prologues (xform: attn_norm into q|k|v, ffn_norm into gate|up, SwiGLU into down), as
// engine/arch_llama.cpp does, and the final norm as the LM head's when B <= decodeMaxM (engine/graph.cpp
// normed_lm_head). Variants a step may run instead of its plain op (perStep 0: timed, left out of the
// step sum): LLaMA's unfused RoPE and KV append, the unfused norms, SwiGLU and plain GEMMs that the prologues
// replace, the SIMT prompt attention where a 16-bit prompt runs on tensor cores, shared-prefix attention (B > 1
// sequences sharing all but their last 16 keys), a top-p sampler, Q8_0 GEMMs.
// Differences from the engine, for stable repetitions: outputs the engine writes in place (activation, residual
// GEMMs) go to a separate tensor here (the same bytes move); q, k and v are views of one q|k|v row (ldq/ldk/ldv as
// in the engine) but in separate tensors.
import type { BuiltinShape } from './shapes';

/**
 * How a tensor starts: random values (std 0.02, weights' scale), logits (uniform on [-8, 8): a peaked softmax, as
 * trained models give, since a sampler's work depends on it), Q8_0 blocks (random int8, small float16 scales), NaN
 * bytes (poison), or given values.
 */
export type PlanFill = 'random' | 'logits' | 'poison' | 'q8' | Int32Array | Float32Array;

export interface PlanTensor {
  /** 'op': the benchmark's float dtype. */
  dtype: 'op' | 'float32' | 'int32' | 'int8';
  numel: number;
  fill: PlanFill;
}

/**
 * What must hold after the timed runs, so a case that never ran its kernel fails:
 *   written      the tensor started poisoned and every element is now finite (or, int32, in [0, max))
 *   finiteCount  the tensor started poisoned and exactly this many elements are finite (a cache the op appends to)
 *   finite       updated in place: still finite everywhere
 */
export type PlanCheck = { kind: 'written'; max?: number } | { kind: 'finiteCount'; count: number } | { kind: 'finite' };

export interface OpCase {
  /** The layer tensor or step part it stands for: 'attn_qkv', 'attention', 'lm_head', 'sample (top-p)' … */
  name: string;
  op: string;
  /** Its dimensions, for the tables: 'M=1 N=2560 K=2048'. */
  about: string;
  /** runOpSync's scalar and array params (the runner adds dtype and the tensors). */
  params: Record<string, unknown>;
  tensors: Record<string, PlanTensor>;
  checks: Record<string, PlanCheck>;
  /** How many times a step runs it (nLayers for layer ops; 0 for a variant). */
  perStep: number;
  /** The fewest bytes it moves through device memory. */
  bytes: number;
  flops: number;
}

export interface PlanSetting {
  phase: 'decode' | 'prefill';
  /** Sequences. */
  batch: number;
  /** decode: context per sequence, the new token included; prefill: prompt tokens per sequence. */
  tokens: number;
}

export interface PlanOptions {
  /** Bytes per element of the float dtype. */
  dtypeBytes: number;
  /** KV cache block (engine/limits.h kvBlockSize). */
  blockSize: number;
  /** Add the Q8_0 GEMM variant of every layer matrix and the head. */
  q8: boolean;
  /** Rows of the decode GEMM kernels in this dtype (engine/limits.h gemmDecodeMaxM, gemmDecodeMaxMF32 for float32):
   *  LLaMA steps of at most that many tokens fuse their norms and SwiGLU into the GEMMs. */
  decodeMaxM: number;
}

export function settingLabel(s: PlanSetting): string {
  return s.phase === 'decode' ? `decode b=${s.batch} ctx=${s.tokens}` : `prefill b=${s.batch} prompt=${s.tokens}`;
}

const Q8_BYTES_PER_WEIGHT = 34 / 32;
const TOP_P = { temperature: 0.8, topK: 0, topP: 0.95 };

const iota = (n: number, f: (i: number) => number): Int32Array => Int32Array.from({ length: n }, (_, i) => f(i));
const t = (dtype: PlanTensor['dtype'], numel: number, fill: PlanFill): PlanTensor => ({ dtype, numel, fill });
/** Elements a (rows, cols) matrix with row stride ld spans. */
const extent = (rows: number, cols: number, ld: number): number => (rows === 0 ? 0 : (rows - 1) * ld + cols);

/**
 * A GEMM's optional parts: x's row stride (default k, 2k for swiglu), a bias, a residual added to the output, and
 * the input prologue (native/ops.cpp xform): rms_norm reads a gain (k) beside x (eps: the model's), swiglu reads
 * x's gate|up rows, 2k wide. The rms's second read of the rows is from L2 and not counted.
 */
export interface GemmExtras { ldx?: number; bias?: boolean; residual?: boolean; xform?: 'rms_norm' | 'swiglu'; eps?: number }

/**
 * One GEMM y (m, n) = x (m, k) · Wᵀ (W (n, k)) as a case, and, with o.q8 and k a multiple of 32, its Q8_0 variant
 * (perStep 0).
 */
export function planGemm(name: string, m: number, n: number, k: number, perStep: number, o: PlanOptions, x: GemmExtras = {}): OpCase[] {
  const e = o.dtypeBytes;
  const cols = x.xform === 'swiglu' ? 2 * k : k;
  const ldx = x.ldx ?? cols;
  const tensors: Record<string, PlanTensor> = { x: t('op', extent(m, cols, ldx), 'random'), w: t('op', n * k, 'random'), y: t('op', m * n, 'poison') };
  if (x.bias) tensors.bias = t('op', n, 'random');
  if (x.residual) tensors.residual = t('op', m * n, 'random');
  const params: Record<string, unknown> = { m, n, k, ldx, ldy: n };
  if (x.xform) params.xform = x.xform;
  if (x.xform === 'rms_norm') {
    params.eps = x.eps;
    tensors.gain = t('op', k, 'random');
  }
  const bytes = (n * k + m * cols + m * n * (x.residual ? 2 : 1) + (x.bias ? n : 0) + (x.xform === 'rms_norm' ? k : 0)) * e;
  const about = `M=${m} N=${n} K=${k}${x.xform ? ` + ${x.xform}` : ''}`;
  const cases: OpCase[] = [{ name, op: 'gemm', about, params, tensors, checks: { y: { kind: 'written' } }, perStep, bytes, flops: 2 * m * n * k }];
  if (!o.q8 || k % 32 !== 0) return cases;
  const q8: Record<string, PlanTensor> = { ...tensors, w: t('int8', n * k + (n * k) / 16, 'q8'), y: t('op', m * n, 'poison') };
  cases.push({
    name: `${name} (q8_0)`, op: 'gemm_q8', about, params, tensors: q8,
    checks: { y: { kind: 'written' } }, perStep: 0, bytes: bytes - n * k * (e - Q8_BYTES_PER_WEIGHT), flops: 2 * m * n * k,
  });
  return cases;
}

export function planSquareGemms(sizes: number[], o: PlanOptions): OpCase[] {
  return sizes.flatMap((n) => planGemm(`square ${n}`, n, n, n, 0, o));
}

/** The ops of one step of `shape` in `setting`, in the order the engine runs them. */
export function planStep(shape: BuiltinShape, setting: PlanSetting, o: PlanOptions): OpCase[] {
  if (shape.arch !== 'llama' && shape.arch !== 'gpt2') throw new Error(`op plan: no plan for the ${shape.arch} architecture`);
  const gpt2 = shape.arch === 'gpt2';
  const e = o.dtypeBytes;
  const { dim, hiddenDim: hid, nLayers: L, nHeads: H, nKvHeads: Hkv, headDim: hd, vocabSize: V } = shape;
  const qW = H * hd, kvW = Hkv * hd, qkvW = qW + 2 * kvW;
  const B = setting.batch;
  const decode = setting.phase === 'decode';
  const per = decode ? 1 : setting.tokens; // tokens per sequence in this step
  const ctx = setting.tokens; // keys each sequence attends over (its last query)
  const T = B * per;
  const positions = iota(T, (i) => (decode ? ctx - 1 : i % per));
  const cases: OpCase[] = [];

  // The Q8_0 variant is added for the GEMMs a step runs (perStep > 0), not for the unfused ones a prologue replaced.
  const gemm = (name: string, m: number, n: number, k: number, perStep: number, x: GemmExtras = {}): void => {
    const xs = x.xform === 'rms_norm' ? { ...x, eps: shape.normEps } : x;
    cases.push(...planGemm(name, m, n, k, perStep, o, xs).filter((c) => perStep > 0 || c.op !== 'gemm_q8'));
  };
  // A LLaMA step's norm + GEMM over `rows` rows: one GEMM with the norm as its prologue when fused (rows within the
  // decode GEMM kernels', as engine/graph.cpp and normed_lm_head decide), the two ops otherwise; the unfused pair
  // stays as variants beside the fused GEMM.
  const fused = !gpt2 && T <= o.decodeMaxM;
  const normGemm = (normName: string, gemmName: string, n: number, perStep: number, rows = T, bias = gpt2): void => {
    if (!gpt2 && rows <= o.decodeMaxM) {
      gemm(`${normName} + ${gemmName}`, rows, n, dim, perStep, { xform: 'rms_norm' });
      norm(normName, rows, 0);
      gemm(gemmName, rows, n, dim, 0);
    } else {
      norm(normName, rows, perStep);
      gemm(gemmName, rows, n, dim, perStep, { bias });
    }
  };
  const norm = (name: string, rows: number, perStep: number): void => {
    const tensors: Record<string, PlanTensor> = { x: t('op', rows * dim, 'random'), weight: t('op', dim, 'random'), y: t('op', rows * dim, 'poison') };
    if (gpt2) tensors.bias = t('op', dim, 'random');
    cases.push({
      name, op: 'norm', about: `${gpt2 ? 'layer' : 'rms'} ${rows}×${dim}`, params: { kind: gpt2 ? 'layer' : 'rms', rows, cols: dim, eps: shape.normEps },
      tensors, checks: { y: { kind: 'written' } }, perStep, bytes: (2 * rows * dim + (gpt2 ? 2 : 1) * dim) * e, flops: 0,
    });
  };

  // Paged cache: sequence b owns blocks b·nb … b·nb + nb − 1 (nb covers its context).
  const nb = Math.ceil(ctx / o.blockSize);
  const layout = { blockSize: o.blockSize, nKvHeads: Hkv, headDim: hd };
  const cacheElems = B * nb * o.blockSize * kvW;
  const blockTable = iota(B * nb, (i) => i);
  const slots = iota(T, (i) => {
    const b = Math.floor(i / per);
    return (b * nb + Math.floor(positions[i] / o.blockSize)) * o.blockSize + (positions[i] % o.blockSize);
  });

  // ---- the embedding (+ learned positions)
  const emb: Record<string, PlanTensor> = {
    ids: t('int32', T, iota(T, (i) => (i * 7919 + 3) % V)), table: t('op', V * dim, 'random'), out: t('op', T * dim, 'poison'),
  };
  if (gpt2) Object.assign(emb, { posTable: t('op', shape.maxSeqLen * dim, 'random'), pos: t('int32', T, positions) });
  cases.push({
    name: gpt2 ? 'token_embd + position_embd' : 'token_embd', op: 'embedding', about: `${T} rows of ${dim}`,
    params: { n: T, cols: dim, vocab: V, ...(gpt2 ? { nPos: shape.maxSeqLen } : {}) }, tensors: emb, checks: { out: { kind: 'written' } },
    perStep: 1, bytes: T * 4 + T * dim * e * (gpt2 ? 3 : 2) + (gpt2 ? T * 4 : 0), flops: 0,
  });

  // ---- one layer
  normGemm('attn_norm', gpt2 ? 'attn_qkv' : 'attn_q|k|v', qkvW, L);
  // LLaMA runs RoPE and the KV append as one op (rope_kv_append); the two unfused ops are timed beside it as variants.
  const kvAppend = (name: string, perStep: number): OpCase => ({
    name, op: 'kv_append', about: `${T} tokens × ${Hkv} heads × ${hd}`,
    params: { ...layout, nTokens: T, ldk: qkvW, ldv: qkvW },
    tensors: {
      k: t('op', extent(T, kvW, qkvW), 'random'), v: t('op', extent(T, kvW, qkvW), 'random'), slots: t('int32', T, slots),
      kCache: t('op', cacheElems, 'poison'), vCache: t('op', cacheElems, 'poison'),
    },
    checks: { kCache: { kind: 'finiteCount', count: T * kvW }, vCache: { kind: 'finiteCount', count: T * kvW } },
    perStep, bytes: 4 * T * kvW * e + T * 4, flops: 0,
  });
  if (gpt2) {
    cases.push(kvAppend('kv_append', L));
  } else {
    const inv = Float32Array.from({ length: hd / 2 }, (_, i) => 1 / Math.pow(shape.ropeTheta, (2 * i) / hd));
    cases.push({
      name: 'rope + kv_append', op: 'rope_kv_append', about: `${T} tokens × (${H} + ${Hkv}) heads × ${hd}, k and v to the cache`,
      params: { ropeLayout: 'half', ...layout, nTokens: T, nHeads: H, ldq: qkvW, ldk: qkvW, ldv: qkvW },
      tensors: {
        q: t('op', extent(T, qW, qkvW), 'random'), k: t('op', extent(T, kvW, qkvW), 'random'), v: t('op', extent(T, kvW, qkvW), 'random'),
        pos: t('int32', T, positions), invFreq: t('float32', hd / 2, inv), slots: t('int32', T, slots),
        kCache: t('op', cacheElems, 'poison'), vCache: t('op', cacheElems, 'poison'),
      },
      checks: { q: { kind: 'finite' }, kCache: { kind: 'finiteCount', count: T * kvW }, vCache: { kind: 'finiteCount', count: T * kvW } },
      perStep: L, bytes: 2 * T * (qW + 2 * kvW) * e + 2 * T * 4, flops: 0,
    });
    cases.push({
      name: 'rope', op: 'rope', about: `${T} tokens × (${H} + ${Hkv}) heads × ${hd} (unfused)`,
      params: { layout: 'half', nTokens: T, nHeads: H, nKvHeads: Hkv, headDim: hd, ldq: qkvW, ldk: qkvW },
      tensors: {
        q: t('op', extent(T, qW, qkvW), 'random'), k: t('op', extent(T, kvW, qkvW), 'random'),
        pos: t('int32', T, positions), invFreq: t('float32', hd / 2, inv),
      },
      checks: { q: { kind: 'finite' }, k: { kind: 'finite' } }, perStep: 0, bytes: 2 * T * (qW + kvW) * e + T * 4, flops: 0,
    });
    cases.push(kvAppend('kv_append', 0));
  }
  const attnCommon = {
    q: t('op', extent(T, qW, qkvW), 'random'), out: t('op', T * qW, 'poison'),
    kCache: t('op', cacheElems, 'random'), vCache: t('op', cacheElems, 'random'),
  };
  const scale = 1 / Math.sqrt(hd);
  // keys read once (prefill: each sequence's P keys; decode: each context), q read once, out written once
  const kvRead = B * ctx * kvW * 2 * e;
  const attnFlops = decode ? 4 * H * hd * B * ctx : 4 * H * hd * B * ((per * (per + 1)) / 2);
  const attention = (name: string, perStep: number, extra: Record<string, unknown> = {}): OpCase => ({
    name, op: 'attention', about: `${decode ? 'decode' : 'prompt, causal'}: ${B} × ${per} queries over ${ctx} keys, ${H}/${Hkv} heads × ${hd}`,
    params: { ...layout, batch: B, nHeads: H, nTokens: T, maxBlocksPerSeq: nb, scale, mask: 'causal', ldq: qkvW, ldo: qW, ...extra },
    tensors: {
      ...attnCommon, blockTable: t('int32', B * nb, blockTable),
      qStart: t('int32', B + 1, iota(B + 1, (b) => b * per)), ctxLen: t('int32', B, iota(B, () => ctx)),
    },
    checks: { out: { kind: 'written' } }, perStep, bytes: kvRead + 2 * T * qW * e + B * (nb + 2) * 4, flops: attnFlops,
  });
  cases.push(attention('attention', L));
  // A 16-bit prompt pass with head_dim a multiple of 16 (<= 256) runs on tensor cores (cuda/attention_prefill_mma.cu);
  // the SIMT kernel it replaced is timed beside it (the op's simtPrefill switch).
  if (!decode && e === 2 && hd % 16 === 0 && hd <= 256) cases.push(attention('attention (simt)', 0, { simtPrefill: true }));
  if (decode && B > 1 && ctx > 1) {
    // One group of all B: the leader's blocks hold the shared keys (all but the last ≤ 16), each member its own tail.
    const shared = Math.max(1, ctx - Math.min(16, ctx - 1));
    const sharedBlocks = Math.floor(shared / o.blockSize);
    const table = iota(B * nb, (i) => (i % nb < sharedBlocks ? i % nb : i));
    cases.push({
      name: 'shared_attention', op: 'shared_attention', about: `decode: ${B} queries, ${shared} shared keys + ${ctx - shared} own each`,
      params: { ...layout, batch: B, nHeads: H, nGroups: 1, maxBlocksPerSeq: nb, scale, ldq: qkvW, ldo: qW },
      tensors: {
        ...attnCommon, blockTable: t('int32', B * nb, table), ctxLen: t('int32', B, iota(B, () => ctx)),
        sharedLen: t('int32', B, iota(B, () => shared)), groupStart: t('int32', 2, Int32Array.from([0, B])), groupSeqs: t('int32', B, iota(B, (i) => i)),
      },
      checks: { out: { kind: 'written' } }, perStep: 0,
      bytes: (shared + B * (ctx - shared)) * kvW * 2 * e + 2 * T * qW * e + B * (nb + 3) * 4, flops: attnFlops,
    });
  }
  gemm('attn_output', T, dim, qW, L, { bias: gpt2, residual: true });
  if (gpt2) {
    norm('ffn_norm', T, L);
    gemm('ffn_up', T, hid, dim, L, { bias: true });
    cases.push({
      name: 'gelu', op: 'act', about: `gelu_tanh ${T}×${hid}`, params: { kind: 'gelu_tanh', m: T, n: hid },
      tensors: { x: t('op', T * hid, 'random'), bias: t('op', hid, 'random'), y: t('op', T * hid, 'poison') },
      checks: { y: { kind: 'written' } }, perStep: L, bytes: (2 * T * hid + hid) * e, flops: 0,
    });
    gemm('ffn_down', T, dim, hid, L, { bias: true, residual: true });
  } else {
    normGemm('ffn_norm', 'ffn_gate|up', 2 * hid, L);
    if (fused) gemm('swiglu + ffn_down', T, dim, hid, L, { xform: 'swiglu', residual: true });
    cases.push({
      name: 'swiglu', op: 'act', about: `swiglu ${T}×${hid}`, params: { kind: 'swiglu', m: T, n: hid, ldx: 2 * hid, ldu: 2 * hid, ldy: hid },
      tensors: { x: t('op', extent(T, hid, 2 * hid), 'random'), up: t('op', extent(T, hid, 2 * hid), 'random'), y: t('op', T * hid, 'poison') },
      checks: { y: { kind: 'written' } }, perStep: fused ? 0 : L, bytes: 3 * T * hid * e, flops: 0,
    });
    gemm('ffn_down', T, dim, hid, fused ? 0 : L, { ldx: 2 * hid, residual: true });
  }

  // ---- the step's end: each sequence's last row → final norm → LM head → sampler
  cases.push({
    name: 'gather rows', op: 'embedding', about: `${B} of ${T} rows`, params: { n: B, cols: dim, vocab: T },
    tensors: { ids: t('int32', B, iota(B, (b) => b * per + per - 1)), table: t('op', T * dim, 'random'), out: t('op', B * dim, 'poison') },
    checks: { out: { kind: 'written' } }, perStep: 1, bytes: B * 4 + 2 * B * dim * e, flops: 0,
  });
  normGemm('output_norm', 'lm_head', V, 1, B, false);
  const sample = (name: string, s: { temperature: number; topK: number; topP: number }, perStep: number): void => {
    cases.push({
      name, op: 'sample', about: `${B}×${V}, t=${s.temperature}${s.topK ? ` top-k ${s.topK}` : ''}${s.topP < 1 ? ` top-p ${s.topP}` : ''}`,
      params: {
        batch: B, vocab: V, temperature: Array(B).fill(s.temperature), topK: Array(B).fill(s.topK), topP: Array(B).fill(s.topP),
        repetitionPenalty: Array(B).fill(1), seed: Array.from({ length: B }, (_, b) => b + 1), step: Array(B).fill(0),
      },
      tensors: { logits: t('op', B * V, 'logits'), tokensOut: t('int32', B, 'poison') },
      checks: { tokensOut: { kind: 'written', max: V } }, perStep, bytes: B * V * e + B * 4, flops: 0,
    });
  };
  sample('sample (greedy)', { temperature: 0, topK: 0, topP: 1 }, 1); // what `eet bench` asks for
  sample('sample (top-p)', TOP_P, 0);
  return cases;
}

// The cases of the attention op tests (attention.test.ts: the SIMT prompt kernel and decode; attention_mma.test.ts:
// the tensor-core prompt kernel): one Spec per case, built into an OpCase with its inputs and a name that states
// its geometry. Every case packs its sequences and reads K/V through a shuffled (non-contiguous) block table whose
// unused entries are -1.
// Layouts: 'dense' (default strides), 'fused' (q rows strided as in a fused QKV buffer, padded cache strides,
// 16-byte loads still possible), 'odd' (odd strides everywhere: scalar loads; out strided, so `out` is an in/out
// tensor whose gaps must stay untouched).
import { binding, type AddonAttentionMaskMode } from '../../lib/binding';
import { EmuOptions, FloatDType, OpCase, SHORT } from './harness';
import { normal, shuffled, uniform } from '../util/random';

export type Layout = 'dense' | 'fused' | 'odd';
export type Mask = AddonAttentionMaskMode | 'cross';  // cross: T5's decoder over an encoder memory (no layer config)

export interface Spec {
  dtype: FloatDType;
  headDim: number;
  nHeads: number;
  nKvHeads: number;
  mask: Mask;
  blockSize: number;
  ctx: number[];
  nq: number[];
  layout?: Layout;
  timeoutMs?: number;
  /** T5's relative position bias: a random (nHeads, buckets) table; scale 1 when `t5Scale` (else 1/sqrt(D)). */
  rel?: { buckets: number; maxDistance: number; bidirectional: boolean; t5Scale?: boolean };
  /** The SM count the decode split aims to fill (the op's smCount; the backend's when absent): on every device,
   *  so a GPU run takes the same split. */
  smCount?: number;
  /** The emulated device (for the prompt tile that fits its shared memory). */
  emu?: EmuOptions;
  /** Prompt passes the tensor-core kernel would take (f16/bf16, head_dim a multiple of 16 up to 256): run the SIMT
   *  kernel instead (the op's simtPrefill switch). */
  simt?: boolean;
}

/** Whether op_attention runs a prompt pass of this spec on the tensor-core kernel (cuda/attention_prefill_mma.cu)
 *  unless told otherwise: its tile fits every emulated device these tests configure (71,168 bytes at most). */
export function tensorCoreEligible(s: Spec): boolean {
  return !s.nq.every((n) => n === 1) && s.dtype !== 'float32' && s.headDim % 16 === 0 && s.headDim <= 256;
}

/** The decode split a case gets (engine/ops.h), for its name and the coverage checks below. */
export function splitOf(s: Spec) {
  return binding().attentionDecodeSplit({ batch: s.ctx.length, nHeads: s.nHeads, nKvHeads: s.nKvHeads, maxCtxLen: Math.max(...s.ctx), smCount: s.smCount ?? 132 });
}

export const list = (xs: number[]) => (xs.length > 6 ? `${xs.length}x` : `[${xs.join(',')}]`);

let nextSeed = 1;
export function attentionCase(s: Spec): OpCase {
  const seed = (nextSeed += 7919);
  const layout = s.layout ?? 'dense';
  const D = s.headDim, bs = s.blockSize, batch = s.ctx.length;
  const row = s.nHeads * D;
  const ldq = layout === 'dense' ? row : layout === 'fused' ? 3 * row : row + 1;
  const ldo = layout === 'odd' ? row + 3 : row;
  const headStride = layout === 'dense' ? bs * D : layout === 'fused' ? bs * D + 8 : bs * D + 1;
  const blockStride = s.nKvHeads * headStride + (layout === 'dense' ? 0 : layout === 'fused' ? 16 : 5);
  const used = s.ctx.map((c) => Math.ceil(c / bs));
  const maxBlocksPerSeq = Math.max(...used) + 1;
  const nBlocks = used.reduce((a, b) => a + b, 0) + 3;
  const perm = shuffled(nBlocks, seed);
  const blockTable = new Int32Array(batch * maxBlocksPerSeq).fill(-1);
  let next = 0;
  for (let b = 0; b < batch; b++) for (let i = 0; i < used[b]; i++) blockTable[b * maxBlocksPerSeq + i] = perm[next++];
  const qStart = new Int32Array(batch + 1);
  for (let b = 0; b < batch; b++) qStart[b + 1] = qStart[b] + s.nq[b];
  const nTokens = qStart[batch];
  const decode = s.nq.every((n) => n === 1);
  const rel = s.rel
    ? `, rel=${s.rel.bidirectional ? 'bi' : 'uni'}/${s.rel.buckets}/${s.rel.maxDistance}${s.rel.t5Scale ? ', scale=1' : ''}`
    : '';
  const split = decode && s.smCount !== undefined ? splitOf(s) : null;
  const sms = s.smCount === undefined ? '' : `, sms=${s.smCount}` +
    (split ? ` (${split.headsPerBlock} heads x ${split.nChunks} chunks of ${split.chunkLen})` : '');
  const emu = s.emu?.maxSharedMemoryPerBlockOptin ? `, emu smem ${s.emu.maxSharedMemoryPerBlockOptin}` : '';
  const mma = tensorCoreEligible(s);
  const kernel = mma ? `, kernel=${s.simt ? 'simt' : 'mma'}` : '';
  const name =
    `attention(${decode ? 'decode' : 'prompt'}, dtype=${SHORT[s.dtype]}, D=${D}, heads=${s.nHeads}/${s.nKvHeads}, ` +
    `${s.mask}, bs=${bs}, ctx=${list(s.ctx)}${decode ? '' : `, nq=${list(s.nq)}`}, layout=${layout}${rel}${sms}${emu}${kernel})`;
  const relParams = s.rel
    ? { relBuckets: s.rel.buckets, relMaxDistance: s.rel.maxDistance, relBidirectional: s.rel.bidirectional }
    : {};
  const outIsInout = layout === 'odd';
  return {
    name,
    op: 'attention',
    dtype: s.dtype,
    params: {
      blockSize: bs, nKvHeads: s.nKvHeads, headDim: D, headStride, blockStride, batch, nHeads: s.nHeads, nTokens,
      maxBlocksPerSeq, scale: s.rel?.t5Scale ? 1 : 1 / Math.sqrt(D), mask: s.mask, ldq, ldo, ...relParams,
      ...(s.smCount === undefined ? {} : { smCount: s.smCount }),
      ...(mma && s.simt ? { simtPrefill: true } : {}),
    },
    emu: s.emu,
    inputs: () => ({
      q: normal(nTokens * ldq, seed + 1),
      kCache: uniform(nBlocks * blockStride, seed + 2, -1.7, 1.7),  // std ~1; uniform is 4x cheaper to draw
      vCache: uniform(nBlocks * blockStride, seed + 3, -1.7, 1.7),
      blockTable,
      qStart,
      ctxLen: Int32Array.from(s.ctx),
      ...(outIsInout ? { out: normal(nTokens * ldo, seed + 4) } : {}),
      ...(s.rel ? { relBiasTable: normal(s.nHeads * s.rel.buckets, seed + 5) } : {}),
    }),
    f32Inputs: s.rel ? ['relBiasTable'] : undefined,
    outputs: outIsInout ? {} : { out: { numel: nTokens * ldo } },
    inout: outIsInout ? ['out'] : undefined,
    timeoutMs: s.timeoutMs,
  };
}

// The arithmetic of `eet bench` (design.md "Performance method"): count bytes and FLOPs first, then compare.
//   decode step  : bounded by memory bandwidth. Bytes read ≈ every weight the step multiplies by (the token
//                  embedding table only when it doubles as the classifier) + the KV cache each sequence attends
//                  over. % roofline = achieved bytes/s ÷ the device's measured copy bandwidth.
//   prefill      : bounded by tensor throughput. FLOPs = 2 × matmul params × tokens + causal attention
//                  (QKᵀ and PV over the lower triangle: 2 × heads × head_dim × P² per layer and sequence) + the
//                  classifier for each sequence's last position. % peak = achieved FLOP/s ÷ the GPU's dense peak.
// Pure functions of the shape; no native code (unit-tested in test/unit/bench.test.ts).
import { archOf, tensorList, type ArchShape, type ModelFileConfig, type TensorRole, type TensorSpec } from '../arch';
import { numel } from '../arch/common';

/**
 * The shape fields the arithmetic needs (a subset of AddonModelConfig): the architecture's tensors follow from it;
 * q8Weights (GGUF Q8_0 matrices kept int8 on the device) changes the bytes a decode step reads.
 */
export type ShapeDims = ArchShape & Pick<ModelFileConfig, 'q8Weights'>;

/** Bytes per weight of a Q8_0 matrix: blocks of 32 int8 values and one float16 scale. */
export const Q8_0_BYTES = 34 / 32;

export interface ParamCounts {
  /** Embedding tables: tokens (V × D), and learned positions / token types where the architecture has them. */
  embedding: number;
  /** Matmul weights of all layers a decode step reads (LLaMA: q, k, v, o, gate, up, down; t5: the decoder's). */
  layerMatmul: number;
  /** Encoder-decoder models: the encoder's matmul weights (read once per input, not per decode step); else 0. */
  encoderMatmul: number;
  /** Vectors: norm weights and biases. */
  norms: number;
  /** Separate classifier V × D (0 when tied to the embedding). */
  head: number;
  total: number;
}

/** The counts by role over the architecture's description (lib/arch/), one block sized once for all layers. */
export function paramCounts(s: ShapeDims): ParamCounts {
  const layout = archOf(s.arch).tensors(s);
  const outside = [...layout.before, ...layout.after];
  const block = layout.block(0);
  const sum = (ts: TensorSpec[], roles: TensorRole[]): number => ts.filter((t) => roles.includes(t.role)).reduce((a, t) => a + numel(t.shape), 0);
  const embedding = sum(outside, ['embedding']);
  const norms = sum(outside, ['norm', 'bias']) + s.nLayers * sum(block, ['norm', 'bias']);
  const stackMatmul = s.nLayers * sum(block, ['matrix']);
  if (archOf(s.arch).encoderDecoder) {
    // t5: the blocks are the encoder's; the decoder's layers are listed after them (dec.blk.*), then the head.
    const decoder = sum(outside.filter((t) => t.name.startsWith('dec.blk.')), ['matrix']);
    const head = sum(outside, ['matrix']) - decoder;
    return { embedding, layerMatmul: decoder, encoderMatmul: stackMatmul, norms, head, total: embedding + decoder + stackMatmul + norms + head };
  }
  const head = sum(outside, ['matrix']);
  return { embedding, layerMatmul: stackMatmul, encoderMatmul: 0, norms, head, total: embedding + stackMatmul + norms + head };
}

export const DTYPE_BYTES = { float32: 4, float16: 2, bfloat16: 2 } as const;
export type BenchDType = keyof typeof DTYPE_BYTES;

/** Weight bytes one decode step reads: layers, norms and the classifier (the V × D table, tied or not). */
export function decodeWeightBytes(s: ShapeDims, dtypeBytes: number): number {
  const p = paramCounts(s);
  const bytes = (p.layerMatmul + p.norms + s.vocabSize * s.dim) * dtypeBytes;
  if (!s.q8Weights?.length) return bytes;
  const q8 = new Set(s.q8Weights);
  const kept = tensorList(s).filter((t) => t.role === 'matrix' && q8.has(t.name)).reduce((a, t) => a + numel(t.shape), 0);
  return bytes - kept * (dtypeBytes - Q8_0_BYTES);
}

/** KV-cache bytes per cached token (all layers, K and V; t5: the decoder's self-attention). */
export function kvBytesPerToken(s: ShapeDims, dtypeBytes: number): number {
  return 2 * (s.nDecoderLayers ?? s.nLayers) * s.nKvHeads * s.headDim * dtypeBytes;
}

/**
 * Bytes read by the decode steps of one grid cell: `batch` sequences, each with `prompt` tokens cached, run
 * `steps` decode steps; step i (0-based) attends over prompt + i + 1 positions (the cache plus the new token).
 */
export function decodeBytes(s: ShapeDims, dtypeBytes: number, batch: number, prompt: number, steps: number): number {
  const positions = steps * prompt + (steps * (steps + 1)) / 2; // Σ_{i<steps} (prompt + i + 1)
  return steps * decodeWeightBytes(s, dtypeBytes) + batch * positions * kvBytesPerToken(s, dtypeBytes);
}

/** FLOPs of a prefill of `batch` prompts of `prompt` tokens (logits for each sequence's last position only). */
export function prefillFlops(s: ShapeDims, batch: number, prompt: number): number {
  const p = paramCounts(s);
  if (p.encoderMatmul > 0) {
    // t5: the prompt is the encoder's input (bidirectional: all of 4·h·d·P² per layer), then each decoder layer's
    // cross K and V of it, then one decoder token (its start id) through the decoder and the head.
    const crossKv = 2 * 2 * s.nHeads * s.headDim * s.dim * (s.nDecoderLayers ?? s.nLayers) * batch * prompt;
    const encoder = 2 * p.encoderMatmul * batch * prompt + 4 * s.nLayers * s.nHeads * s.headDim * prompt * prompt * batch;
    return encoder + crossKv + 2 * (p.layerMatmul + s.vocabSize * s.dim) * batch;
  }
  const matmul = 2 * p.layerMatmul * batch * prompt;
  const attention = 2 * s.nLayers * s.nHeads * s.headDim * prompt * prompt * batch; // causal: half of 4·h·d·P²
  const classifier = 2 * s.vocabSize * s.dim * batch;
  return matmul + attention + classifier;
}

/** Approximate dense (no sparsity) vendor peaks in FLOP/s: tensor-core bf16/fp16, and plain fp32. */
export interface PeakEntry {
  match: RegExp;
  label: string;
  half: number;
  fp32: number;
}

export const PEAKS: readonly PeakEntry[] = [
  { match: /H200/i, label: 'H200', half: 989e12, fp32: 67e12 },
  { match: /H100.*PCIe/i, label: 'H100 PCIe', half: 756e12, fp32: 51e12 },
  { match: /H100.*NVL/i, label: 'H100 NVL', half: 835e12, fp32: 60e12 },
  { match: /H100|H800|GH200/i, label: 'H100 SXM', half: 989e12, fp32: 67e12 },
  { match: /A100|A800/i, label: 'A100', half: 312e12, fp32: 19.5e12 },
  { match: /L40S/i, label: 'L40S', half: 362e12, fp32: 91.6e12 },
  { match: /L40/i, label: 'L40', half: 181e12, fp32: 90.5e12 },
  { match: /\bL4\b/i, label: 'L4', half: 121e12, fp32: 30.3e12 },
  { match: /A10G/i, label: 'A10G', half: 70e12, fp32: 31.2e12 },
  { match: /\bA10\b/i, label: 'A10', half: 125e12, fp32: 31.2e12 },
  { match: /RTX 4090/i, label: 'RTX 4090', half: 165e12, fp32: 82.6e12 },
  { match: /RTX 3090/i, label: 'RTX 3090', half: 71e12, fp32: 35.6e12 },
];

/** The peak for a device name and dtype, or null (cpu, emu, unknown GPU). */
export function peakFlops(deviceName: string, dtype: BenchDType): { label: string; flops: number } | null {
  const e = PEAKS.find((p) => p.match.test(deviceName));
  if (!e) return null;
  return { label: e.label, flops: dtype === 'float32' ? e.fp32 : e.half };
}

/** a ÷ b as a percentage, or null when either is missing. */
export function percent(achieved: number | null, peak: number | null): number | null {
  if (achieved === null || peak === null || !(peak > 0)) return null;
  return (100 * achieved) / peak;
}

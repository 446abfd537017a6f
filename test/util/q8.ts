// Q8_0 weights for tests, in the gemm_q8 device layout (engine/ops.h GemmQ8Args): one byte buffer holding the
// (N, K) int8 q, then the (N, K/32) float16 scale bits, little-endian.
//   randomQ8:    random q (the whole int8 range) and random float16 scales: exercises the kernels
//   quantizeQ8_0: ggml's Q8_0 rule on float weights (d = max|w| / 127 per block of 32, q = round(w / d), d stored
//                as float16), for checking the quantized gemm against the float one
import { f16BitsToF32, f32ToF16Bits } from '../../lib/half';
import { rng } from './random';

const { abs, floor, fround, max } = Math;

export interface Q8Weights {
  /** The gemm_q8 `w` tensor: n*k bytes of q, then n*k/32 float16 scales. */
  blob: Int8Array;
  /** The weights it represents, d * q, as float64 (exact). */
  dequant: Float64Array;
  /** d per block (N, K/32), as float64. */
  scales: Float64Array;
}

function pack(q: Int8Array, scaleBits: Uint16Array, n: number, k: number): Q8Weights {
  const blob = new Int8Array(n * k + (n * k) / 16);
  blob.set(q);
  const bytes = new Uint8Array(blob.buffer, n * k);
  const scales = new Float64Array(scaleBits.length);
  for (let i = 0; i < scaleBits.length; i++) {
    bytes[2 * i] = scaleBits[i] & 0xff;
    bytes[2 * i + 1] = scaleBits[i] >> 8;
    scales[i] = f16BitsToF32(scaleBits[i]);
  }
  const dequant = new Float64Array(n * k);
  for (let i = 0; i < n * k; i++) dequant[i] = scales[floor(i / 32)] * q[i];
  return { blob, dequant, scales };
}

/** Random q in [-128, 127] and float16 scales in [dLo, dHi) (a few negative), for (n, k) weights, k % 32 == 0. */
export function randomQ8(n: number, k: number, seed: number, dLo = 0.002, dHi = 0.02): Q8Weights {
  const r = rng(seed);
  const q = new Int8Array(n * k);
  for (let i = 0; i < q.length; i++) q[i] = floor(r() * 256) - 128;
  const s = new Uint16Array((n * k) / 32);
  for (let i = 0; i < s.length; i++) s[i] = f32ToF16Bits((r() < 0.1 ? -1 : 1) * (dLo + (dHi - dLo) * r()));
  return pack(q, s, n, k);
}

/** ggml's quantize_row_q8_0 on (n, k) float weights: per block d = amax / 127 (float32), q = roundf(w / d). */
export function quantizeQ8_0(w: Float32Array, n: number, k: number): Q8Weights {
  const q = new Int8Array(n * k);
  const s = new Uint16Array((n * k) / 32);
  for (let b = 0; b < s.length; b++) {
    let amax = 0;
    for (let i = 0; i < 32; i++) amax = max(amax, abs(w[32 * b + i]));
    const d = fround(amax / 127);
    const id = d ? fround(1 / d) : 0;
    s[b] = f32ToF16Bits(d);
    for (let i = 0; i < 32; i++) {
      const v = fround(w[32 * b + i] * id);
      q[32 * b + i] = (v < 0 ? -1 : 1) * floor(abs(v) + 0.5); // roundf: halves away from zero
    }
  }
  return pack(q, s, n, k);
}

// float16 / bfloat16 bit patterns <-> numbers, round to nearest even (the same rules as engine/half.h).
const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

export function f32ToBf16Bits(x: number): number {
  f32[0] = x;
  const u = u32[0];
  if ((u & 0x7fffffff) > 0x7f800000) return ((u >>> 16) | 0x40) & 0xffff; // NaN stays NaN
  return ((u + 0x7fff + ((u >>> 16) & 1)) >>> 16) & 0xffff;
}

export function bf16BitsToF32(h: number): number {
  u32[0] = (h & 0xffff) << 16;
  return f32[0];
}

export function f32ToF16Bits(x: number): number {
  f32[0] = x;
  const u = u32[0];
  const sign = (u >>> 16) & 0x8000;
  const a = u & 0x7fffffff;
  if (a > 0x7f800000) return sign | 0x7e00;
  if (a >= 0x477ff000) return sign | 0x7c00;
  if (a < 0x38800000) {
    // subnormal: units of 2^-24, rounded to nearest even (Math.round would round ties up)
    const v = f32[0] < 0 ? -f32[0] : f32[0];
    const scaled = v * 16777216;
    let q = Math.floor(scaled);
    const rem = scaled - q;
    if (rem > 0.5 || (rem === 0.5 && (q & 1) === 1)) q++;
    return sign | q;
  }
  const r = (a + 0xfff + ((a >>> 13) & 1)) >>> 0;
  return sign | (((r - 0x38000000) >>> 13) & 0x7fff);
}

export function f16BitsToF32(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >>> 10) & 0x1f;
  const man = h & 0x3ff;
  if (exp === 0x1f) return man ? NaN : sign * Infinity;
  if (exp === 0) return sign * man * 2 ** -24;
  return sign * (1 + man / 1024) * 2 ** (exp - 15);
}

export function toHalfBits(src: ArrayLike<number>, dtype: 'float16' | 'bfloat16'): Uint16Array {
  const out = new Uint16Array(src.length);
  const conv = dtype === 'float16' ? f32ToF16Bits : f32ToBf16Bits;
  for (let i = 0; i < src.length; i++) out[i] = conv(src[i]);
  return out;
}

export function fromHalfBits(src: Uint16Array, dtype: 'float16' | 'bfloat16'): Float32Array {
  const out = new Float32Array(src.length);
  const conv = dtype === 'float16' ? f16BitsToF32 : bf16BitsToF32;
  for (let i = 0; i < src.length; i++) out[i] = conv(src[i]);
  return out;
}

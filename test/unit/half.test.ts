// Half-precision conversions: the native ones (engine/half.h) against the compiler's IEEE _Float16 conversions,
// and the TypeScript ones (lib/half.ts) against the native ones for every float16 pattern and many floats.
import { execFileSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { bf16BitsToF32, f16BitsToF32, f32ToBf16Bits, f32ToF16Bits } from '../../lib/half';
import { tensor } from '../../lib';

test('engine/half.h matches the compiler _Float16 conversions', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'eet-half-'));
  const exe = path.join(dir, 'half_check');
  execFileSync('g++', ['-std=c++17', '-O2', path.join(__dirname, '..', 'native', 'half_check.cpp'), '-o', exe]);
  const out = execFileSync(exe, { encoding: 'utf8' });
  expect(out.trim()).toBe('OK (0 failures)');
  fs.rmSync(dir, { recursive: true, force: true });
}, 120000);

test('lib/half.ts agrees with engine/half.h (through the cpu backend) for every float16 pattern', async () => {
  const all = new Uint16Array(65536).map((_, i) => i);
  const finite = all.filter((h) => (h & 0x7c00) !== 0x7c00);
  // TS decode, then native encode of those floats must give the same bits back
  const floats = Float32Array.from(finite, (h) => f16BitsToF32(h));
  const viaNative = tensor(floats, [floats.length], { dtype: 'float16' }); // TS encodes here...
  expect(Array.from((await viaNative.toArray()) as Uint16Array)).toEqual(Array.from(finite));
  for (let i = 0; i < finite.length; i += 1) expect(f32ToF16Bits(floats[i])).toBe(finite[i]);
});

test('TS rounding: ties to even, overflow, subnormals, bfloat16', () => {
  expect(f32ToF16Bits(1 + 2 ** -11)).toBe(0x3c00); // tie -> even (1.0)
  expect(f32ToF16Bits(1 + 3 * 2 ** -11)).toBe(0x3c02); // tie -> even (1 + 2^-9)
  expect(f32ToF16Bits(65504)).toBe(0x7bff);
  expect(f32ToF16Bits(65520)).toBe(0x7c00); // rounds to inf
  expect(f32ToF16Bits(2 ** -24)).toBe(0x0001);
  expect(f32ToF16Bits(2 ** -25)).toBe(0x0000); // tie between 0 and 2^-24 -> even (0)
  expect(f32ToF16Bits(-0)).toBe(0x8000);
  expect(f32ToBf16Bits(1 + 2 ** -8)).toBe(0x3f80); // tie -> even
  expect(f32ToBf16Bits(1 + 3 * 2 ** -8)).toBe(0x3f82);
  expect(bf16BitsToF32(0x4049)).toBe(3.140625);
  expect(Number.isNaN(bf16BitsToF32(f32ToBf16Bits(NaN)))).toBe(true);
});

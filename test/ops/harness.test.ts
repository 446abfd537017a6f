// The harness itself must be able to fail: its decoding of worker outputs and its three pass rules.
import { fromHalfBits, toHalfBits } from '../../lib/half';
import { OpWorker, arrayKind, compareExact, compareF32, compareLowp, toF32 } from './harness';

const worker = new OpWorker();
afterAll(() => worker.stop());

test('float16 outputs from the worker are decoded to numbers, not compared as bit patterns', async () => {
  const src = new Float32Array([1.5, -2, 0.1, 65504]);
  const r = await worker.run({
    op: 'cast', device: 'cpu', params: { srcDtype: 0, dstDtype: 1, n: 4 },
    tensors: { src: { dtype: 0, data: src }, dst: { dtype: 1, numel: 4, fill: 'poison' } }, aliases: {}, outputs: ['dst'],
  }, 60000);
  expect(r.error).toBeUndefined();
  const raw = r.outputs!.dst;
  expect(arrayKind(raw)).toBe('Uint16Array'); // from the main realm: `instanceof` would say false here
  expect(Array.from(toF32(raw, 'float16'))).toEqual([1.5, -2, 0.0999755859375, 65504]);
});

test('compareF32 rejects an error above nmse 1e-7, NaN and a wrong length', () => {
  const ref = Float32Array.from({ length: 1000 }, (_, i) => Math.sin(i) + 2);
  expect(compareF32(Float32Array.from(ref), ref).ok).toBe(true);
  expect(compareF32(ref.map((v) => v * (1 + 1e-3)), ref).ok).toBe(false);
  const nan = Float32Array.from(ref);
  nan[7] = NaN;
  expect(compareF32(nan, ref).ok).toBe(false);
  expect(compareF32(ref.subarray(1), ref).ok).toBe(false);
});

test('compareLowp allows rounding-level error and rejects more than twice the cpu error', () => {
  const ref = Float32Array.from({ length: 4096 }, (_, i) => Math.cos(i * 0.37) * 3);
  const cpu = fromHalfBits(toHalfBits(ref, 'bfloat16'), 'bfloat16');
  expect(compareLowp(Float32Array.from(cpu), cpu, ref).ok).toBe(true);
  // one bf16 ulp off everywhere: well over twice the rounding error of the cpu result
  const off = fromHalfBits(toHalfBits(ref, 'bfloat16').map((b) => b + 1), 'bfloat16');
  expect(compareLowp(off, cpu, ref).ok).toBe(false);
});

test('compareExact rejects any difference, including -0 vs 0', () => {
  expect(compareExact(new Int32Array([1, 2, 3]), new Int32Array([1, 2, 3])).ok).toBe(true);
  expect(compareExact(new Int32Array([1, 2, 4]), new Int32Array([1, 2, 3])).ok).toBe(false);
  expect(compareExact(new Float32Array([-0]), new Float32Array([0])).ok).toBe(false);
  expect(compareExact(new Int32Array([1, 2]), new Int32Array([1, 2, 3])).ok).toBe(false);
});

// Tensor handles through the public API: creation from each typed array, shapes, devices, reads, moves,
// disposal, and the argument errors (messages pinned, style.md).
import { DisposedError, EetError, InvalidArgumentError, empty, tensor } from '../../lib';
import { f16BitsToF32, bf16BitsToF32 } from '../../lib/half';
import { uniform } from '../util/random';

const devices = ['cpu', 'emu'] as const;

describe.each(devices)('tensor on %s', (device) => {
  test('float32 round trip keeps every bit', async () => {
    const data = uniform(1000, 1, -100, 100);
    const t = tensor(data, [10, 100], { device });
    expect(t.shape).toEqual([10, 100]);
    expect(t.dtype).toBe('float32');
    expect(t.device).toBe(device);
    expect(t.size).toBe(1000);
    const back = await t.toArray();
    expect(Object.prototype.toString.call(back)).toBe('[object Float32Array]'); // native arrays come from the main realm, not jest's
    expect(Array.from(back)).toEqual(Array.from(data));
    t.dispose();
  });

  test.each(['float16', 'bfloat16'] as const)('Float32Array stored as %s is rounded to nearest', async (dtype) => {
    // 1 + 2^-12 is not representable in either; nearest is 1. 3.140625 is exact in both.
    const t = tensor(new Float32Array([1 + 2 ** -12, 3.140625, -2, 65504]), [4], { dtype, device });
    const bits = (await t.toArray()) as Uint16Array;
    const conv = dtype === 'float16' ? f16BitsToF32 : bf16BitsToF32;
    expect(Array.from(bits, conv).slice(0, 3)).toEqual([1, 3.140625, -2]);
    t.dispose();
  });

  test('Uint16Array is taken as raw half bits', async () => {
    const bits = new Uint16Array([0x3c00, 0xc000, 0x7bff]); // 1, -2, 65504 in float16
    const t = tensor(bits, [3], { dtype: 'float16', device });
    expect(Array.from((await t.toArray()) as Uint16Array)).toEqual([0x3c00, 0xc000, 0x7bff]);
  });

  test('int32 and int8', async () => {
    const i = tensor(new Int32Array([1, -2, 2147483647]), [3], { device });
    expect(i.dtype).toBe('int32');
    expect(Array.from(await i.toArray())).toEqual([1, -2, 2147483647]);
    const b = tensor(new Int8Array([-128, 127]), [2], { device });
    expect(Array.from(await b.toArray())).toEqual([-128, 127]);
  });

  test('to() copies across devices', async () => {
    const t = tensor(uniform(33, 2), [33], { device });
    const other = t.to(device === 'cpu' ? 'emu' : 'cpu');
    expect(Array.from(await other.toArray())).toEqual(Array.from(await t.toArray()));
    t.dispose();
    expect(Array.from(await other.toArray()).length).toBe(33); // independent of the source
  });

  test('dispose, disposed and Symbol.dispose', async () => {
    const t = tensor(new Float32Array(4), [4], { device });
    expect(t.disposed).toBe(false);
    t[Symbol.dispose]();
    expect(t.disposed).toBe(true);
    await expect(t.toArray()).rejects.toBeInstanceOf(DisposedError);
    expect(() => t.to('cpu')).toThrow(expect.objectContaining({ code: 'ERR_DISPOSED' }));
    t.dispose(); // idempotent
  });

  test('empty() poison fills NaN bytes', async () => {
    const t = empty([5], { dtype: 'float32', device, fill: 'poison' });
    expect(Array.from(await t.toArray()).every(Number.isNaN)).toBe(true);
    const z = empty([2, 3], { dtype: 'int32', device });
    expect(Array.from(await z.toArray())).toEqual([0, 0, 0, 0, 0, 0]);
  });
});

describe('tensor argument errors', () => {
  test('shape must match the data', () => {
    expect(() => tensor(new Float32Array(6), [4, 2])).toThrow(
      new InvalidArgumentError('Expected dimensions whose product is 6 (the data length) for shape but received "[4, 2]" of type string'),
    );
  });
  test('bad device', () => {
    expect(() => tensor(new Float32Array(1), [1], { device: 'gpu' as never })).toThrow(
      "Expected 'cpu', 'cpu-ref', 'emu', 'cuda', 'cuda:N' or 'auto' for device but received \"gpu\" of type string",
    );
  });
  test('Uint16Array needs a half dtype', () => {
    expect(() => tensor(new Uint16Array(1), [1])).toThrow("Expected one of 'float16', 'bfloat16' for dtype but received undefined");
  });
  test('negative dimension', () => {
    expect(() => empty([-1])).toThrow('Expected integer between 0 and 2147483647 for shape[0] but received -1 of type number');
  });
  test('empty() and tensor() take the same shapes: at most 8 dimensions, a safe element count', () => {
    const nine = new Array(9).fill(1);
    expect(() => empty(nine)).toThrow('Expected array of up to 8 non-negative integers for shape but received a value of type array');
    expect(() => tensor(new Float32Array(1), nine)).toThrow('Expected array of up to 8 non-negative integers for shape');
    expect(() => empty(new Array(100).fill(1))).toThrow('for shape');
    expect(() => empty([2 ** 31 - 1, 2 ** 31 - 1, 2 ** 31 - 1])).toThrow('Expected dimensions whose product is at most 2^53 - 1 for shape');
    expect(empty(new Array(8).fill(1)).shape).toEqual(new Array(8).fill(1));
  });
  test('unknown option keys', () => {
    expect(() => empty([1], { dtyp: 'float32' } as never)).toThrow('Unknown option "dtyp" in options; did you mean "dtype"?');
    expect(() => tensor(new Float32Array(1), [1], { devce: 'cpu' } as never)).toThrow('Unknown option "devce" in options; did you mean "device"?');
  });
  test('data type', () => {
    expect(() => tensor([1, 2] as never, [2])).toThrow('Expected Float32Array, Uint16Array, Int32Array or Int8Array for data but received a value of type array');
  });
  test('errors are EetErrors with codes', () => {
    try {
      tensor(new Float32Array(1), [2]);
      throw new Error('did not throw');
    } catch (e) {
      expect(e).toBeInstanceOf(EetError);
      expect((e as EetError).code).toBe('ERR_INVALID_ARG');
    }
  });
});

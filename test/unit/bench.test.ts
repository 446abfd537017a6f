// The bench arithmetic (lib/bench/roofline.ts, grid.ts, shapes.ts): byte and FLOP counts against hand-computed
// values and published parameter counts; grid parsing and prefill chunking.
import { gridCells, gridLimits, parseList, prefillChunks } from '../../lib/bench/grid';
import { decodeBytes, decodeWeightBytes, kvBytesPerToken, paramCounts, peakFlops, percent, prefillFlops, ShapeDims } from '../../lib/bench/roofline';
import { BUILTIN_SHAPES, builtinShape, shapeTensors } from '../../lib/bench/shapes';

// A shape small enough to count by hand: D 4, F 8, 1 layer, 2 heads of 2, 1 kv head, vocab 10, untied.
const small: ShapeDims = { arch: 'llama', maxSeqLen: 16, dim: 4, hiddenDim: 8, nLayers: 1, nHeads: 2, nKvHeads: 1, headDim: 2, vocabSize: 10, tiedEmbeddings: false };

describe('paramCounts', () => {
  test('hand-counted small shape', () => {
    // q 4x4, k 2x4, v 2x4, o 4x4, gate/up 8x4, down 4x8 = 16+8+8+16+32+32+32 = 144
    expect(paramCounts(small)).toEqual({ embedding: 40, layerMatmul: 144, norms: 12, head: 40, total: 236 });
    expect(paramCounts({ ...small, tiedEmbeddings: true }).total).toBe(196);
  });

  test('published sizes: Llama-2-7B 6.74 B, TinyLlama 1.10 B', () => {
    expect(paramCounts(builtinShape('llama-7b')!).total).toBe(6738415616);
    expect(paramCounts(builtinShape('tinyllama-1.1b')!).total).toBe(1100048384);
  });

  test('GPT-2 small and XL as Hugging Face counts them (GPT2LMHeadModel.num_parameters(): tied head, learned positions, biases)', () => {
    expect(paramCounts(builtinShape('gpt2-124m')!).total).toBe(124439808);
    expect(paramCounts(builtinShape('gpt2-1.5b')!).total).toBe(1557611200);
  });

  test('the tensor list of every shape matches the count', () => {
    for (const s of BUILTIN_SHAPES) {
      const n = shapeTensors(s).reduce((a, t) => a + t.shape.reduce((x, y) => x * y, 1), 0);
      expect([s.name, n]).toEqual([s.name, paramCounts(s).total]);
    }
  });
});

describe('decode bytes', () => {
  test('weights read per step: layers + norms + the V x D classifier, tied or not', () => {
    expect(decodeWeightBytes(small, 2)).toBe((144 + 12 + 40) * 2);
    expect(decodeWeightBytes({ ...small, tiedEmbeddings: true }, 2)).toBe((144 + 12 + 40) * 2);
  });

  test('Q8_0 matrices (GGUF q8Weights) are read at 34 bytes per 32 weights', () => {
    // q 4x4 and the 10x4 classifier kept Q8_0; the rest f32
    expect(decodeWeightBytes({ ...small, q8Weights: ['blk.0.attn_q', 'output'] }, 4)).toBe((144 + 12 + 40) * 4 - (16 + 40) * (4 - 34 / 32));
    expect(decodeWeightBytes({ ...small, q8Weights: [] }, 4)).toBe(decodeWeightBytes(small, 4));
  });

  test('KV bytes per token: 2 (K,V) x layers x kv heads x head dim x dtype', () => {
    expect(kvBytesPerToken(small, 2)).toBe(2 * 1 * 1 * 2 * 2);
  });

  test('steps attend over prompt + i + 1 positions', () => {
    // batch 3, prompt 5, 4 steps: positions 6+7+8+9 = 30 per sequence
    const w = decodeWeightBytes(small, 4), kv = kvBytesPerToken(small, 4);
    expect(decodeBytes(small, 4, 3, 5, 4)).toBe(4 * w + 3 * 30 * kv);
    expect(decodeBytes(small, 4, 1, 0, 1)).toBe(w + kv);
  });
});

describe('prefill FLOPs', () => {
  test('2 x matmul params x tokens + causal attention + last-position classifier', () => {
    // batch 2, prompt 3: 2*144*6 + 2*1*2*2*9*2 + 2*10*4*2
    expect(prefillFlops(small, 2, 3)).toBe(1728 + 144 + 160);
  });

  test('Llama-7B at 512 tokens is about 6.7 TFLOP', () => {
    const f = prefillFlops(builtinShape('llama-7b')!, 1, 512);
    expect(f / 1e12).toBeCloseTo(6.70, 1);
  });
});

describe('peaks and percentages', () => {
  test('by GPU name', () => {
    expect(peakFlops('NVIDIA H100 80GB HBM3', 'float16')).toEqual({ label: 'H100 SXM', flops: 989e12 });
    expect(peakFlops('NVIDIA H100 PCIe', 'bfloat16')?.label).toBe('H100 PCIe');
    expect(peakFlops('NVIDIA H200', 'bfloat16')?.flops).toBe(989e12);
    expect(peakFlops('NVIDIA A100-SXM4-80GB', 'float32')?.flops).toBe(19.5e12);
    expect(peakFlops('NVIDIA L4', 'float16')?.label).toBe('L4');
    expect(peakFlops('NVIDIA L40S', 'float16')?.label).toBe('L40S');
    expect(peakFlops('Intel(R) Xeon(R) (cpu reference)', 'float32')).toBeNull();
  });

  test('percent', () => {
    expect(percent(1.5e12, 3e12)).toBe(50);
    expect(percent(1, null)).toBeNull();
    expect(percent(null, 2)).toBeNull();
    expect(percent(1, 0)).toBeNull();
  });
});

describe('grid', () => {
  test('parseList', () => {
    expect(parseList('batch', '1,8, 32')).toEqual([1, 8, 32]);
    expect(parseList('batch', '4,4,1')).toEqual([4, 1]);
    for (const bad of ['', '0', '1,,2', 'x', '-1', '1.5', '2000000']) {
      expect(() => parseList('batch', bad)).toThrow(/Expected a comma-separated list of integers between 1 and \d+ for batch/);
    }
  });

  test('cells: batch outermost; new tokens >= 2', () => {
    const cells = gridCells({ batch: [1, 2], prompt: [8], newTokens: [4, 16] });
    expect(cells).toEqual([
      { batch: 1, prompt: 8, newTokens: 4 }, { batch: 1, prompt: 8, newTokens: 16 },
      { batch: 2, prompt: 8, newTokens: 4 }, { batch: 2, prompt: 8, newTokens: 16 },
    ]);
    expect(gridLimits(cells)).toEqual({ maxBatch: 2, maxContext: 24 });
    expect(() => gridCells({ batch: [1], prompt: [8], newTokens: [1] })).toThrow(/new tokens >= 2/);
  });

  test('prefill chunks cover every prompt token once, at most maxStepTokens per step', () => {
    for (const [b, p, m] of [[1, 1, 1], [3, 5, 4], [4, 512, 512], [2, 7, 100], [5, 3, 1]]) {
      const steps = prefillChunks(b, p, m);
      const fed = new Array<number>(b).fill(0);
      for (const step of steps) {
        expect(step.reduce((a, [, n]) => a + n, 0)).toBeLessThanOrEqual(m);
        expect(new Set(step.map(([s]) => s)).size).toBe(step.length); // a sequence at most once per step
        for (const [s, n] of step) { expect(n).toBeGreaterThan(0); fed[s] += n; }
      }
      expect(fed).toEqual(new Array<number>(b).fill(p));
      expect(steps.length).toBe(Math.ceil((b * p) / m));
    }
    expect(prefillChunks(3, 5, 4)).toEqual([[[0, 4]], [[0, 1], [1, 3]], [[1, 2], [2, 2]], [[2, 3]]]);
  });
});

// The bench arithmetic (lib/bench/roofline.ts, grid.ts, shapes.ts, stats.ts, random.ts, scenarios.ts' sizing):
// byte and FLOP counts against hand-computed values and published parameter counts; grid parsing, the batch times
// a cell takes from generate()'s results, seeded prompts, percentiles, and how scenarios fit a model.
import { NO_ROPE } from '../../lib/arch/common';
import { batchTimes, cellResult, gridCells, gridLimits, parseList } from '../../lib/bench/grid';
import type { GenerateResult } from '../../lib/model';
import { TokenSource } from '../../lib/bench/random';
import { decodeBytes, decodeWeightBytes, kvBytesPerToken, paramCounts, peakFlops, percent, prefillFlops, ShapeDims } from '../../lib/bench/roofline';
import { fitScenarios, scenarioDefaults, scenarioPositions } from '../../lib/bench/scenarios';
import { BUILTIN_SHAPES, builtinShape, shapeConfig, shapeTensors } from '../../lib/bench/shapes';
import { median, percentiles } from '../../lib/bench/stats';

// A shape small enough to count by hand: D 4, F 8, 1 layer, 2 heads of 2, 1 kv head, vocab 10, untied.
const small: ShapeDims = { arch: 'llama', maxSeqLen: 16, dim: 4, hiddenDim: 8, nLayers: 1, nHeads: 2, nKvHeads: 1, headDim: 2, vocabSize: 10, tiedEmbeddings: false };

describe('paramCounts', () => {
  test('hand-counted small shape', () => {
    // q 4x4, k 2x4, v 2x4, o 4x4, gate/up 8x4, down 4x8 = 16+8+8+16+32+32+32 = 144
    expect(paramCounts(small)).toEqual({ embedding: 40, layerMatmul: 144, encoderMatmul: 0, norms: 12, head: 40, total: 236 });
    expect(paramCounts({ ...small, tiedEmbeddings: true }).total).toBe(196);
  });

  test('T5-base as Hugging Face counts it (T5ForConditionalGeneration.num_parameters(), tied head): 222,903,552', () => {
    const p = paramCounts(builtinShape('t5-base')!);
    expect(p.total).toBe(222903552);
    // A decode step reads the decoder's layers (self + cross attention + FFN), not the encoder's.
    expect([p.encoderMatmul, p.layerMatmul]).toEqual([12 * (4 + 8) * 768 * 768, 12 * (8 + 8) * 768 * 768]);
  });

  test('published sizes: Llama-2-7B 6.74 B, TinyLlama 1.10 B', () => {
    expect(paramCounts(builtinShape('llama-7b')!).total).toBe(6738415616);
    expect(paramCounts(builtinShape('tinyllama-1.1b')!).total).toBe(1100048384);
  });

  test('GPT-2 small and XL as Hugging Face counts them (GPT2LMHeadModel.num_parameters(): tied head, learned positions, biases)', () => {
    expect(paramCounts(builtinShape('gpt2-124m')!).total).toBe(124439808);
    expect(paramCounts(builtinShape('gpt2-1.5b')!).total).toBe(1557611200);
  });

  test('GPT-2 shapes use the loaders\' no-RoPE values; a longer context grows the config (and GPT-2\'s position table)', () => {
    const g = builtinShape('gpt2-124m')!;
    expect(shapeConfig(g)).toMatchObject({ arch: 'gpt2', maxSeqLen: 1024, ...NO_ROPE, hiddenDim: 3072, nKvHeads: 12, headDim: 64 });
    expect(shapeConfig(g, 2000).maxSeqLen).toBe(2000);
    expect(shapeConfig(g, 10).maxSeqLen).toBe(1024);
    expect(shapeTensors(g, 2000).find((t) => t.name === 'position_embd')!.shape).toEqual([2000, 768]);
    expect(shapeConfig(builtinShape('tiny')!)).toMatchObject({ arch: 'llama', ropeLayout: 'half', ropeTheta: 10000 });
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

});

describe('cell times from generate() results', () => {
  const result = (ttftMs: number, decodeMs: number): GenerateResult => ({
    text: '', tokens: [], logprobs: [], finishReason: 'length', usage: { promptTokens: 0, completionTokens: 0, cachedTokens: 0 },
    timings: { queueMs: 0, prefillMs: ttftMs, decodeMs, ttftMs, tokensPerSecond: 0 },
  });

  test('TTFT waits for the last first token; decode runs from there to the last token', () => {
    // first tokens at 10 and 14 ms; ends at 10 + 50 = 60 and 14 + 40 = 54
    expect(batchTimes([result(10, 50), result(14, 40)])).toEqual({ ttftMs: 14, decodeMs: 46 });
    expect(batchTimes([result(3, 9)])).toEqual({ ttftMs: 3, decodeMs: 9 });
  });

  test('rates: tokens over the times, FLOPs and bytes over the roofline', () => {
    const roof = { dims: small, dtypeBytes: 4, peakFlops: 1e6, bytesPerSecond: 1e6 };
    const c = cellResult({ batch: 2, prompt: 3, newTokens: 5 }, 4, 8, roof);
    expect(c.prefillTokPerSec).toBe(6 / 0.004);
    expect(c.decodeMsPerStep).toBe(2);
    expect(c.decodeTokPerSec).toBe(8 / 0.008);
    expect(c.prefillTflops * 1e12).toBeCloseTo(prefillFlops(small, 2, 3) / 0.004, 3);
    expect(c.prefillPeakPct).toBeCloseTo(100 * prefillFlops(small, 2, 3) / 0.004 / 1e6, 6);
    expect(c.decodeRooflinePct).toBeCloseTo(100 * decodeBytes(small, 4, 2, 3, 4) / 0.008 / 1e6, 6);
    expect(cellResult({ batch: 1, prompt: 1, newTokens: 2 }, 1, 1, { ...roof, peakFlops: null }).prefillPeakPct).toBeNull();
  });
});

describe('seeded prompts', () => {
  test('deterministic per seed, different across seeds, never the special ids 0..2, inside the vocabulary', () => {
    const a = new TokenSource(10, 7), b = new TokenSource(10, 7), c = new TokenSource(10, 8);
    const x = a.ids(500);
    expect(b.ids(500)).toEqual(x);
    expect(c.ids(500)).not.toEqual(x);
    expect(Math.min(...x)).toBe(3);
    expect(Math.max(...x)).toBe(9);
    // consecutive draws differ: fresh prompts for every run
    expect(a.ids(64)).not.toEqual(new TokenSource(10, 7).ids(64));
  });

  test('int(lo, hi) covers [lo, hi] inclusive', () => {
    const r = new TokenSource(100, 3);
    const seen = new Set(Array.from({ length: 400 }, () => r.int(16, 20)));
    expect([...seen].sort()).toEqual([16, 17, 18, 19, 20]);
  });
});

describe('stats', () => {
  test('median and nearest-rank percentiles', () => {
    expect(median([3, 1, 2])).toBe(2);
    expect(median([4, 1, 3, 2])).toBe(2.5);
    expect(median([])).toBeNaN();
    const xs = Array.from({ length: 200 }, (_, i) => 200 - i); // 1..200
    expect(percentiles(xs)).toEqual({ p50: 100, p99: 198 });
    expect(percentiles([5, 1, 9])).toEqual({ p50: 5, p99: 9 });
    expect(percentiles([]).p50).toBeNaN();
  });
});

describe('scenario sizes', () => {
  test('defaults: the GPU sizes of the brief, smaller new tokens and document on cpu', () => {
    const gpu = scenarioDefaults(true), cpu = scenarioDefaults(false);
    expect(gpu.concurrency).toEqual({ prompts: 32, promptTokens: [16, 128], newTokens: 64 });
    expect(gpu.shared).toMatchObject({ documentTokens: 1000, questions: 16, questionTokens: [8, 24], newTokens: 16 });
    expect(gpu.busy).toMatchObject({ batch: 4, newTokens: 128, busyMs: 10, freeMs: 10 });
    expect(cpu.concurrency.newTokens).toBeLessThan(gpu.concurrency.newTokens);
    expect(cpu.shared.documentTokens).toBeLessThan(gpu.shared.documentTokens);
  });

  test('positions needed, and fitting a model with fewer: prompts and the document give way, new tokens stay', () => {
    const s = scenarioDefaults(true);
    expect(scenarioPositions(s, ['concurrency'])).toBe(192);
    expect(scenarioPositions(s, ['concurrency', 'shared', 'busy'])).toBe(1040);
    expect(scenarioPositions(s, [])).toBe(1);
    expect(fitScenarios(s, 4096)).toEqual(s);
    const fit = fitScenarios(s, 160);
    expect(fit.concurrency).toEqual({ prompts: 32, promptTokens: [16, 96], newTokens: 64 });
    expect(fit.shared.documentTokens).toBe(160 - 24 - 16);
    expect(fit.busy.promptTokens).toBe(16);
    expect(scenarioPositions(fit, ['concurrency', 'shared', 'busy'])).toBe(160);
    expect(() => fitScenarios(s, 100)).toThrow(/leave no room for the busy-loop prompts/);
  });
});

// The per-op benchmark's plan (lib/bench/opplan.ts): the ops of a step in the engine's order, their bytes and FLOPs
// against hand-computed values, and against the bench's own parameter and FLOP counts (roofline.ts, which counts from
// the architecture descriptions); the paged-cache indices it builds; the output checks (lib/bench/ops.ts
// checkTensor) on arrays that were and were not written.
import { checkTensor } from '../../lib/bench/ops';
import { planSquareGemms, planStep, settingLabel, type OpCase, type PlanOptions } from '../../lib/bench/opplan';
import { paramCounts, prefillFlops } from '../../lib/bench/roofline';
import { builtinShape } from '../../lib/bench/shapes';

const f16: PlanOptions = { dtypeBytes: 2, blockSize: 16, q8: false, decodeMaxM: 64 };
const tl = builtinShape('tinyllama-1.1b')!; // dim 2048, hidden 5632, 22 layers, 32 heads / 4 kv heads × 64, vocab 32000
const byName = (cases: OpCase[], name: string): OpCase => cases.find((c) => c.name === name)!;
const ints = (c: OpCase, name: string): number[] => Array.from(c.tensors[name].fill as Int32Array);

describe('planStep', () => {
  test('a LLaMA decode step: the engine\'s ops in order, once or once per layer; the norms (the final one too) and SwiGLU as GEMM prologues', () => {
    const cases = planStep(tl, { phase: 'decode', batch: 1, tokens: 512 }, f16);
    expect(cases.map((c) => [c.name, c.op, c.perStep])).toEqual([
      ['token_embd', 'embedding', 1], ['attn_norm + attn_q|k|v', 'gemm', 22], ['attn_norm', 'norm', 0], ['attn_q|k|v', 'gemm', 0],
      ['rope + kv_append', 'rope_kv_append', 22], ['rope', 'rope', 0], ['kv_append', 'kv_append', 0], ['attention', 'attention', 22], ['attn_output', 'gemm', 22],
      ['ffn_norm + ffn_gate|up', 'gemm', 22], ['ffn_norm', 'norm', 0], ['ffn_gate|up', 'gemm', 0],
      ['swiglu + ffn_down', 'gemm', 22], ['swiglu', 'act', 0], ['ffn_down', 'gemm', 0], ['gather rows', 'embedding', 1],
      ['output_norm + lm_head', 'gemm', 1], ['output_norm', 'norm', 0], ['lm_head', 'gemm', 0],
      ['sample (greedy)', 'sample', 1], ['sample (top-p)', 'sample', 0],
    ]);
    expect(settingLabel({ phase: 'decode', batch: 1, tokens: 512 })).toBe('decode b=1 ctx=512');
  });

  test('the prologues\' params: rms_norm with the model\'s eps and a gain of dim; swiglu over the 2·hidden gate|up rows', () => {
    const cases = planStep(tl, { phase: 'decode', batch: 2, tokens: 64 }, f16);
    const qkv = byName(cases, 'attn_norm + attn_q|k|v');
    expect(qkv.params).toEqual({ m: 2, n: 2560, k: 2048, ldx: 2048, ldy: 2560, xform: 'rms_norm', eps: tl.normEps });
    expect([qkv.tensors.gain.numel, qkv.tensors.x.numel]).toEqual([2048, 2 * 2048]);
    expect(qkv.bytes).toBe((2560 * 2048 + 2 * 2048 + 2 * 2560 + 2048) * 2); // W, x, y, the gain
    const down = byName(cases, 'swiglu + ffn_down');
    expect(down.params).toEqual({ m: 2, n: 2048, k: 5632, ldx: 11264, ldy: 2048, xform: 'swiglu' });
    expect(down.tensors.x.numel).toBe(2 * 11264);
    expect(down.bytes).toBe((2048 * 5632 + 2 * 11264 + 2 * 2 * 2048) * 2); // W, gate and up, the residual and y
  });

  test('steps beyond the decode GEMMs\' rows (and GPT-2) run the norms and the activation as ops of their own', () => {
    const names = (batch: number, o: PlanOptions) => planStep(tl, { phase: 'decode', batch, tokens: 64 }, o).map((c) => [c.name, c.perStep]);
    const unfused = [['attn_norm', 22], ['attn_q|k|v', 22], ['ffn_norm', 22], ['ffn_gate|up', 22], ['swiglu', 22], ['ffn_down', 22]];
    expect(names(65, f16)).toEqual(expect.arrayContaining(unfused));
    expect(names(17, { ...f16, dtypeBytes: 4, decodeMaxM: 16 })).toEqual(expect.arrayContaining(unfused));
    expect(names(16, { ...f16, dtypeBytes: 4, decodeMaxM: 16 })).toEqual(expect.arrayContaining([['attn_norm + attn_q|k|v', 22], ['attn_norm', 0]]));
    expect(names(65, f16).filter(([n]) => String(n).includes(' + ')).map(([n]) => n)).toEqual(['rope + kv_append']);
  });

  test('hand-computed bytes and FLOPs (TinyLlama, f16, b = 1, 512 keys)', () => {
    const cases = planStep(tl, { phase: 'decode', batch: 1, tokens: 512 }, f16);
    const qkv = byName(cases, 'attn_q|k|v'); // the unfused variant: W (2048 + 2·256) × 2048, x 2048, y 2560
    expect([qkv.bytes, qkv.flops, qkv.params]).toEqual([(2560 * 2048 + 2048 + 2560) * 2, 2 * 2560 * 2048, { m: 1, n: 2560, k: 2048, ldx: 2048, ldy: 2560 }]);
    const down = byName(cases, 'ffn_down'); // reads the gate half of gate|up (row stride 2 × 5632), adds the residual
    expect([down.bytes, down.params.ldx]).toEqual([(2048 * 5632 + 5632 + 2 * 2048) * 2, 11264]);
    const att = byName(cases, 'attention'); // K and V of 512 tokens × 4 kv heads × 64, q and out 2048, 32 blocks + 2 ints
    expect([att.bytes, att.flops]).toEqual([512 * 256 * 2 * 2 + 2 * 2048 * 2 + (32 + 2) * 4, 4 * 32 * 64 * 512]);
    expect(byName(cases, 'kv_append').bytes).toBe(4 * 256 * 2 + 4);
    // q, k, v read once; q, the cache's k and v written once; pos and slot
    expect(byName(cases, 'rope + kv_append').bytes).toBe(2 * (2048 + 2 * 256) * 2 + 2 * 4);
    expect(byName(cases, 'swiglu').bytes).toBe(3 * 5632 * 2);
    expect(byName(cases, 'sample (greedy)').bytes).toBe(32000 * 2 + 4);
  });

  test('the GEMMs of a decode step multiply by every matrix once: the layer matrices and the head (roofline.ts counts)', () => {
    for (const name of ['tinyllama-1.1b', 'llama-7b', 'gpt2-124m', 'gpt2-1.5b', 'gpt3-layer-2l']) {
      const s = builtinShape(name)!;
      const gemms = planStep(s, { phase: 'decode', batch: 1, tokens: 64 }, f16).filter((c) => c.op === 'gemm');
      const weights = gemms.reduce((a, c) => a + c.perStep * (c.params.n as number) * (c.params.k as number), 0);
      expect(`${name}: ${weights}`).toBe(`${name}: ${paramCounts(s).layerMatmul + s.vocabSize * s.dim}`);
    }
  });

  test('prefill FLOPs: the GEMMs give roofline.ts prefillFlops less its attention term; causal attention counted exactly', () => {
    for (const [name, B, P] of [['tinyllama-1.1b', 1, 512], ['llama-7b', 2, 128], ['gpt2-124m', 1, 100]] as const) {
      const s = builtinShape(name)!;
      const cases = planStep(s, { phase: 'prefill', batch: B, tokens: P }, f16);
      const sum = (op: string): number => cases.filter((c) => c.op === op).reduce((a, c) => a + c.perStep * c.flops, 0);
      expect(sum('gemm')).toBe(prefillFlops(s, B, P) - 2 * s.nLayers * s.nHeads * s.headDim * P * P * B);
      expect(sum('attention')).toBe(s.nLayers * 4 * s.nHeads * s.headDim * B * ((P * (P + 1)) / 2));
      const head = cases.find((c) => c.name.endsWith('lm_head') && c.perStep === 1)!;
      expect(head.params.m).toBe(B); // one row per sequence reaches the head
    }
  });

  test('a 16-bit prompt times the SIMT attention kernel beside the tensor-core one (simtPrefill), left out of the step', () => {
    const cases = planStep(tl, { phase: 'prefill', batch: 2, tokens: 20 }, f16);
    const [plain, simt] = [byName(cases, 'attention'), byName(cases, 'attention (simt)')];
    expect(cases.map((c) => c.name).indexOf('attention (simt)')).toBe(cases.map((c) => c.name).indexOf('attention') + 1);
    expect([plain.perStep, plain.params.simtPrefill, simt.perStep, simt.params.simtPrefill]).toEqual([22, undefined, 0, true]);
    expect({ ...simt, name: '', perStep: 0, params: { ...simt.params, simtPrefill: undefined } })
      .toEqual({ ...plain, name: '', perStep: 0, params: { ...plain.params, simtPrefill: undefined } });
    // No variant where the op runs the SIMT kernel anyway: decode, float32, a head dim that is not a multiple of 16.
    expect(planStep(tl, { phase: 'decode', batch: 2, tokens: 20 }, f16).some((c) => c.name === 'attention (simt)')).toBe(false);
    expect(planStep(tl, { phase: 'prefill', batch: 2, tokens: 20 }, { ...f16, dtypeBytes: 4 }).some((c) => c.name === 'attention (simt)')).toBe(false);
    const odd = { ...tl, dim: 2 * 32 * 40, headDim: 40 };
    expect(planStep(odd, { phase: 'prefill', batch: 2, tokens: 20 }, f16).some((c) => c.name === 'attention (simt)')).toBe(false);
  });

  test('GPT-2: learned positions, LayerNorm and GEMM biases, GELU, no RoPE', () => {
    const cases = planStep(builtinShape('gpt2-124m')!, { phase: 'decode', batch: 2, tokens: 30 }, f16);
    expect(cases.map((c) => c.name)).toEqual(['token_embd + position_embd', 'attn_norm', 'attn_qkv', 'kv_append', 'attention', 'shared_attention',
      'attn_output', 'ffn_norm', 'ffn_up', 'gelu', 'ffn_down', 'gather rows', 'output_norm', 'lm_head', 'sample (greedy)', 'sample (top-p)']);
    expect(byName(cases, 'attn_qkv').bytes).toBe((2304 * 768 + 2 * 768 + 2 * 2304 + 2304) * 2);
    expect(byName(cases, 'attn_norm').params).toMatchObject({ kind: 'layer', rows: 2, cols: 768 });
    expect(ints(byName(cases, 'token_embd + position_embd'), 'pos')).toEqual([29, 29]);
  });

  test('paged cache: each sequence its own blocks, the new token at its position; the shared group reads the leader\'s blocks', () => {
    const cases = planStep(tl, { phase: 'decode', batch: 3, tokens: 40 }, f16); // 3 blocks a sequence, position 39 = block 2, slot 7
    expect(ints(byName(cases, 'kv_append'), 'slots')).toEqual([2 * 16 + 7, (3 + 2) * 16 + 7, (6 + 2) * 16 + 7]);
    expect(byName(cases, 'kv_append').checks.kCache).toEqual({ kind: 'finiteCount', count: 3 * 256 });
    const att = byName(cases, 'attention');
    expect([ints(att, 'blockTable'), ints(att, 'qStart'), ints(att, 'ctxLen')]).toEqual([[0, 1, 2, 3, 4, 5, 6, 7, 8], [0, 1, 2, 3], [40, 40, 40]]);
    const shared = byName(cases, 'shared_attention'); // 24 shared keys (all but 16): block 0 whole is shared, block 1 cut
    expect([ints(shared, 'blockTable'), ints(shared, 'sharedLen')]).toEqual([[0, 1, 2, 0, 4, 5, 0, 7, 8], [24, 24, 24]]);
    expect(shared.bytes).toBe((24 + 3 * 16) * 256 * 2 * 2 + 2 * 3 * 2048 * 2 + 3 * (3 + 3) * 4);
    const prefill = planStep(tl, { phase: 'prefill', batch: 2, tokens: 20 }, f16);
    expect(ints(byName(prefill, 'kv_append'), 'slots')).toEqual([...Array(20).keys(), ...Array.from({ length: 20 }, (_, i) => 32 + i)]);
    expect(ints(byName(prefill, 'gather rows'), 'ids')).toEqual([19, 39]);
  });

  test('Q8_0 variants: one per GEMM, left out of the step, weight bytes at 34/32 per weight', () => {
    const cases = planStep(tl, { phase: 'decode', batch: 1, tokens: 64 }, { ...f16, q8: true });
    const q8 = cases.filter((c) => c.op === 'gemm_q8');
    expect(q8.map((c) => [c.name, c.perStep])).toEqual([['attn_norm + attn_q|k|v (q8_0)', 0], ['attn_output (q8_0)', 0], ['ffn_norm + ffn_gate|up (q8_0)', 0], ['swiglu + ffn_down (q8_0)', 0], ['output_norm + lm_head (q8_0)', 0]]);
    expect(byName(cases, 'swiglu + ffn_down (q8_0)').params).toMatchObject({ xform: 'swiglu', ldx: 2 * 5632 });
    const head = byName(cases, 'output_norm + lm_head (q8_0)');
    expect(head.bytes).toBe(32000 * 2048 * (34 / 32) + (2048 + 32000 + 2048) * 2); // x, logits and the norm's gain
    expect(head.tensors.w).toMatchObject({ dtype: 'int8', numel: 32000 * 2048 * (17 / 16), fill: 'q8' });
  });

  test('every tensor that starts poisoned is checked afterwards', () => {
    for (const name of ['tiny', 'tinyllama-1.1b', 'gpt2-124m']) {
      for (const setting of [{ phase: 'decode', batch: 4, tokens: 33 }, { phase: 'prefill', batch: 2, tokens: 9 }] as const) {
        for (const c of planStep(builtinShape(name)!, setting, { ...f16, q8: true })) {
          const poisoned = Object.entries(c.tensors).filter(([, t]) => t.fill === 'poison').map(([n]) => n);
          expect(`${c.name}: ${poisoned.filter((n) => !c.checks[n]).join()}`).toBe(`${c.name}: `);
          expect(poisoned.length + Object.values(c.checks).filter((k) => k.kind === 'finite').length).toBeGreaterThan(0);
        }
      }
    }
  });
});

describe('checkTensor (an op that did not run fails its case)', () => {
  const f32 = { dtype: 'op' as const, numel: 4, fill: 'poison' as const };
  test('float outputs: poison left anywhere fails; finite everywhere passes', () => {
    expect(checkTensor('y', new Float32Array([1, 2, 3, 4]), f32, { kind: 'written' }, 'float32')).toBeNull();
    expect(checkTensor('y', new Float32Array([1, NaN, 3, 4]), f32, { kind: 'written' }, 'float32')).toBe('y[1] is not finite: never written');
    const poison = 0xffff; // what AddonTensor's poison fill leaves in a half tensor
    expect(checkTensor('y', new Uint16Array([0x3c00, poison, 0, 0]), f32, { kind: 'written' }, 'float16')).toBe('y[1] is not finite: never written');
    expect(checkTensor('y', new Uint16Array([0x3c00, 0x7c00, 0, 0]), f32, { kind: 'written' }, 'float16')).toMatch(/^y\[1\]/); // +inf
    expect(checkTensor('y', new Uint16Array([0x3f80, 0x7f80, 0, 0]), f32, { kind: 'written' }, 'bfloat16')).toMatch(/^y\[1\]/);
    expect(checkTensor('y', new Uint16Array([0x3f80, 0x7c00, 0, 0]), f32, { kind: 'written' }, 'bfloat16')).toBeNull(); // 0x7c00 is finite in bf16
  });

  test('a cache: exactly the appended elements written', () => {
    const cache = new Float32Array([NaN, 1, NaN, 2]);
    expect(checkTensor('kCache', cache, f32, { kind: 'finiteCount', count: 2 }, 'float32')).toBeNull();
    expect(checkTensor('kCache', cache, f32, { kind: 'finiteCount', count: 3 }, 'float32')).toBe('kCache: 2 elements written, expected 3');
  });

  test('sampled tokens: in [0, vocab); the poison (-1) fails', () => {
    const spec = { dtype: 'int32' as const, numel: 2, fill: 'poison' as const };
    expect(checkTensor('tokensOut', new Int32Array([0, 511]), spec, { kind: 'written', max: 512 }, 'float16')).toBeNull();
    expect(checkTensor('tokensOut', new Int32Array([5, -1]), spec, { kind: 'written', max: 512 }, 'float16')).toMatch(/^tokensOut\[1\] = -1/);
    expect(checkTensor('tokensOut', new Int32Array([512, 0]), spec, { kind: 'written', max: 512 }, 'float16')).toMatch(/^tokensOut\[0\] = 512/);
  });
});

describe('planSquareGemms', () => {
  test('M = N = K: x, W and y each moved once, 2·n³ FLOPs, not part of a step; the Q8_0 variant with q8', () => {
    const [sq] = planSquareGemms([8192], f16);
    expect([sq.name, sq.op, sq.about, sq.perStep, sq.flops, sq.bytes]).toEqual(['square 8192', 'gemm', 'M=8192 N=8192 K=8192', 0, 2 * 8192 ** 3, 3 * 8192 ** 2 * 2]);
    expect(sq.params).toEqual({ m: 8192, n: 8192, k: 8192, ldx: 8192, ldy: 8192 });
    expect(planSquareGemms([64, 96], { ...f16, q8: true }).map((c) => [c.name, c.op])).toEqual([
      ['square 64', 'gemm'], ['square 64 (q8_0)', 'gemm_q8'], ['square 96', 'gemm'], ['square 96 (q8_0)', 'gemm_q8'],
    ]);
  });
});

// The same model as a Hugging Face folder (config.json + model.safetensors, HF names, GPT-2's Conv1D matrices stored
// transposed) and as a GGUF file (GGUF names and metadata) must give identical outputs in our engine: both loaders
// map to the same config and the same tensors, so the logits at every position are bit-identical (cpu, float32).
import * as fs from 'fs';
import * as path from 'path';
import type { ModelFileConfig } from '../../lib/arch';
import { binding } from '../../lib/binding';
import { writeSafetensors, type SafetensorsWriterTensor } from '../../lib/formats/safetensors-writer';
import { readGGUFModel } from '../../lib/loaders/gguf';
import { readHfModel } from '../../lib/loaders/hf';
import { hfTensors, transpose, type Weights, TestEngine } from '../util/engine-helpers';
import { GPT2_SPEC, QWEN2_SPEC, removeTmp, specConfig, tinyWeights, tmpFile, writeTinyGGUF, type TinySpec } from '../util/gguf-models';

afterAll(() => removeTmp());

/** The weights under their Hugging Face names (lib/arch/, checked against HF transformers by test/unit/arch.test.ts), Conv1D matrices stored (in, out). */
function hfFile(s: TinySpec, w: Weights): SafetensorsWriterTensor[] {
  return hfTensors(specConfig(s), w).map(({ name, w: x, t }) => {
    const stored = t ? transpose(x) : x;
    return { name, dtype: 'F32', shape: stored.shape, data: stored.data };
  });
}

function hfConfig(s: TinySpec): Record<string, unknown> {
  if (s.arch === 'gpt2') {
    return { model_type: 'gpt2', architectures: ['GPT2LMHeadModel'], n_embd: s.dim, n_layer: s.nLayers, n_head: s.nHeads,
      n_positions: s.ctx, n_inner: s.hiddenDim, vocab_size: s.vocab, layer_norm_epsilon: 1e-5, activation_function: 'gelu_new',
      tie_word_embeddings: s.tied, torch_dtype: 'float32' };
  }
  return { model_type: 'qwen2', architectures: ['Qwen2ForCausalLM'], hidden_size: s.dim, intermediate_size: s.hiddenDim,
    num_hidden_layers: s.nLayers, num_attention_heads: s.nHeads, num_key_value_heads: s.nKvHeads, vocab_size: s.vocab,
    max_position_embeddings: s.ctx, rms_norm_eps: 1e-5, rope_theta: 5000, tie_word_embeddings: s.tied, hidden_act: 'silu',
    torch_dtype: 'float32' };
}

async function build(cfg: ModelFileConfig,
  tensors: Array<{ name: string; source: Parameters<TestEngine['loadTensor']>[1] }>): Promise<TestEngine> {
  const m = new TestEngine({ ...cfg, dtype: 'float32', device: 'cpu', maxBatch: 1, maxContext: 64, maxStepTokens: 64 });
  for (const t of tensors) await m.loadTensor(t.name, t.source);
  await m.finalize();
  return m;
}

async function allLogits(m: TestEngine, tokens: number[]): Promise<Float32Array> {
  const slot = m.startSequence(1n);
  const r = await m.step({
    slots: Int32Array.of(slot), tokens: Int32Array.from(tokens), counts: Int32Array.of(tokens.length),
    temperature: Float32Array.of(0), topK: Int32Array.of(0), topP: Float32Array.of(1), repetitionPenalty: Float32Array.of(1),
    logits: 'all',
  });
  m.endSequence(slot);
  return r.logits!;
}

describe.each([['qwen2 (half-split RoPE, q/k/v biases, tied head)', QWEN2_SPEC], ['gpt2 (Conv1D weights, untied head)', GPT2_SPEC]] as const)(
  'safetensors folder = GGUF file: %s',
  (_label, spec) => {
    test('same config, same tensors, bit-identical logits at every position', async () => {
      const w = tinyWeights(spec);
      const { file } = await writeTinyGGUF(spec, w);
      const dir = path.join(path.dirname(tmpFile('.dir')), `hf-${spec.arch}`);
      fs.mkdirSync(dir, { recursive: true });
      fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify(hfConfig(spec)));
      await writeSafetensors(path.join(dir, 'model.safetensors'), hfFile(spec, w));

      const hf = await readHfModel(dir);
      const gg = await readGGUFModel(file);
      // The engine-relevant config fields agree (maxSeqLen and other loader-specific extras aside).
      for (const k of ['arch', 'dim', 'hiddenDim', 'nLayers', 'nHeads', 'nKvHeads', 'headDim', 'vocabSize', 'normEps', 'tiedEmbeddings'] as const) {
        expect([k, hf.config[k]]).toEqual([k, gg.config[k]]);
      }
      if (spec.arch !== 'gpt2') {
        for (const k of ['ropeTheta', 'ropeLayout', 'qkvBias'] as const) expect([k, hf.config[k]]).toEqual([k, gg.config[k]]);
      }
      expect(hf.tensors.map((t) => t.name).sort()).toEqual(gg.tensors.map((t) => t.name).sort());

      const a = await build(hf.config, hf.tensors);
      const b = await build(gg.config, gg.tensors);
      const tokens = Array.from({ length: 24 }, (_, i) => (i * 37 + 5) % spec.vocab);
      const la = await allLogits(a, tokens);
      const lb = await allLogits(b, tokens);
      expect(la.length).toBe(tokens.length * spec.vocab);
      expect(Buffer.from(la.buffer, la.byteOffset, la.byteLength).equals(Buffer.from(lb.buffer, lb.byteOffset, lb.byteLength))).toBe(true);
      // and not trivially: the logits vary across positions
      expect(new Set(Array.from(la.subarray(0, 50)).map((x) => x.toFixed(3))).size).toBeGreaterThan(10);
      a.dispose();
      b.dispose();
    });
  },
);

// The same model as a Hugging Face folder (config.json + model.safetensors, HF names, GPT-2's Conv1D matrices stored
// transposed) and as a GGUF file (GGUF names and metadata) must give identical outputs in our engine: both loaders
// map to the same config and the same tensors, so the logits at every position are bit-identical (cpu, float32).
import * as fs from 'fs';
import * as path from 'path';
import { binding } from '../../lib/binding';
import { writeSafetensors, type SafetensorsWriterTensor } from '../../lib/formats/safetensors-writer';
import { readGGUFModel } from '../../lib/loaders/gguf';
import { readHfModel } from '../../lib/loaders/hf';
import { type Weight, type Weights, TestEngine, type EngineConfig } from '../util/engine-helpers';
import { GPT2_SPEC, QWEN2_SPEC, removeTmp, tinyWeights, tmpFile, writeTinyGGUF, type TinySpec } from '../util/gguf-models';

afterAll(() => removeTmp());

function transpose(w: Weight): Weight {
  const [r, c] = w.shape;
  const d = new Float32Array(r * c);
  for (let i = 0; i < r; i++) for (let j = 0; j < c; j++) d[j * r + i] = w.data[i * c + j];
  return { shape: [c, r], data: d };
}

/** HF names written by hand (not taken from the loader's table), so the test checks the mapping too. */
function hfTensors(s: TinySpec, w: Weights): SafetensorsWriterTensor[] {
  const out: SafetensorsWriterTensor[] = [];
  const put = (hf: string, engine: string, t = false) => {
    const x = t ? transpose(w.get(engine)!) : w.get(engine)!;
    out.push({ name: hf, dtype: 'F32', shape: x.shape, data: x.data });
  };
  if (s.arch === 'gpt2') {
    put('transformer.wte.weight', 'token_embd');
    put('transformer.wpe.weight', 'position_embd');
    for (let l = 0; l < s.nLayers; l++) {
      const h = `transformer.h.${l}`, b = `blk.${l}`;
      put(`${h}.ln_1.weight`, `${b}.attn_norm`); put(`${h}.ln_1.bias`, `${b}.attn_norm.bias`);
      put(`${h}.attn.c_attn.weight`, `${b}.attn_qkv`, true); put(`${h}.attn.c_attn.bias`, `${b}.attn_qkv.bias`);
      put(`${h}.attn.c_proj.weight`, `${b}.attn_output`, true); put(`${h}.attn.c_proj.bias`, `${b}.attn_output.bias`);
      put(`${h}.ln_2.weight`, `${b}.ffn_norm`); put(`${h}.ln_2.bias`, `${b}.ffn_norm.bias`);
      put(`${h}.mlp.c_fc.weight`, `${b}.ffn_up`, true); put(`${h}.mlp.c_fc.bias`, `${b}.ffn_up.bias`);
      put(`${h}.mlp.c_proj.weight`, `${b}.ffn_down`, true); put(`${h}.mlp.c_proj.bias`, `${b}.ffn_down.bias`);
    }
    put('transformer.ln_f.weight', 'output_norm'); put('transformer.ln_f.bias', 'output_norm.bias');
    if (!s.tied) put('lm_head.weight', 'output');
    return out;
  }
  put('model.embed_tokens.weight', 'token_embd');
  for (let l = 0; l < s.nLayers; l++) {
    const h = `model.layers.${l}`, b = `blk.${l}`;
    put(`${h}.input_layernorm.weight`, `${b}.attn_norm`);
    for (const [e, n] of [['attn_q', 'q_proj'], ['attn_k', 'k_proj'], ['attn_v', 'v_proj']]) {
      put(`${h}.self_attn.${n}.weight`, `${b}.${e}`);
      put(`${h}.self_attn.${n}.bias`, `${b}.${e}.bias`);
    }
    put(`${h}.self_attn.o_proj.weight`, `${b}.attn_output`);
    put(`${h}.post_attention_layernorm.weight`, `${b}.ffn_norm`);
    put(`${h}.mlp.gate_proj.weight`, `${b}.ffn_gate`);
    put(`${h}.mlp.up_proj.weight`, `${b}.ffn_up`);
    put(`${h}.mlp.down_proj.weight`, `${b}.ffn_down`);
  }
  put('model.norm.weight', 'output_norm');
  if (!s.tied) put('lm_head.weight', 'output');
  return out;
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

async function build(cfg: Omit<EngineConfig, 'dtype' | 'device' | 'maxBatch' | 'maxContext' | 'maxStepTokens'>,
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
      await writeSafetensors(path.join(dir, 'model.safetensors'), hfTensors(spec, w));

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

// Hugging Face model directories: config.json (validated and mapped to the engine's config), the safetensors
// weights (model.safetensors or a sharded index) with their names mapped to the engine's GGUF-style names
// (binding.ts), and the generation stop ids of generation_config.json. The tokenizer is lib/tokenizers/hf.ts.
//
// Architectures: llama, mistral, qwen2 (the engine's 'llama' arch; Hugging Face stores q/k with the half-split
// RoPE layout, and Qwen2 adds q/k/v biases), gpt2 (Conv1D weights stored (in, out): loaded transposed), and
// bert (encoder; names with or without the "bert." prefix). Tensors the model does not use are ignored.
import * as fs from 'fs';
import * as path from 'path';
import type { AddonFileSource, AddonModelConfig, AddonRopeScaling } from '../binding';
import { ModelFormatError, UnsupportedError } from '../errors';
import { SafetensorsTensor, readSafetensorsModel, safetensorsSource } from '../formats/safetensors';

export const HF_ARCHITECTURES = ['llama', 'mistral', 'qwen2', 'gpt2', 'bert'] as const;
export type HfModelType = (typeof HF_ARCHITECTURES)[number];

/** The class names of `architectures` that identify a model type when model_type is absent. */
const ARCH_CLASSES: Record<string, HfModelType> = {
  LlamaForCausalLM: 'llama', MistralForCausalLM: 'mistral', Qwen2ForCausalLM: 'qwen2',
  GPT2LMHeadModel: 'gpt2', GPT2Model: 'gpt2', BertModel: 'bert', BertForMaskedLM: 'bert', BertForPreTraining: 'bert',
};

export type HfFileConfig = Omit<AddonModelConfig, 'dtype' | 'device' | 'maxBatch' | 'maxContext' | 'maxStepTokens'>;

export interface HfConfig {
  modelType: HfModelType;
  config: HfFileConfig;
  /** torch_dtype as written (informational: weights are converted to the requested dtype on load). */
  torchDtype: string | null;
  /** bos/eos ids of config.json (eos: int or list), when present. */
  bosTokenId: number | null;
  eosTokenIds: number[];
}

export interface HfModel extends HfConfig {
  dir: string;
  tensors: Array<{ name: string; source: AddonFileSource }>;
  /** Stop ids: generation_config.json's eos_token_id, then config.json's, without repeats. */
  stopIds: number[];
}

type Json = Record<string, unknown>;
const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);

function fail(file: string, what: string): never {
  throw new ModelFormatError(`Invalid Hugging Face config ${file}: ${what}`);
}

/** Reads a JSON object file; absent → null when optional. */
export async function readJsonObject(file: string, optional: boolean): Promise<Json | null> {
  let text: string;
  try {
    text = await fs.promises.readFile(file, 'utf8');
  } catch (e) {
    if (optional && (e as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw new ModelFormatError(`Cannot read ${file}: ${(e as Error).message}`, { cause: e });
  }
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (e) {
    throw new ModelFormatError(`${file} is not valid JSON (${(e as Error).message})`, { cause: e });
  }
  if (!isObject(v)) throw new ModelFormatError(`${file} is not a JSON object`);
  return v;
}

/** Token ids of a field that is an int, a list of ints, or absent/null. */
export function tokenIds(file: string, json: Json, field: string): number[] {
  const v = json[field];
  if (v === undefined || v === null) return [];
  const list = Array.isArray(v) ? v : [v];
  if (!list.every((x) => Number.isSafeInteger(x) && (x as number) >= 0)) fail(file, `${field} is ${JSON.stringify(v)}, expected a token id or a list of them`);
  return list as number[];
}

function modelTypeOf(file: string, json: Json): HfModelType {
  const mt = json.model_type;
  if (mt !== undefined && typeof mt !== 'string') fail(file, `model_type is ${JSON.stringify(mt)}, expected a string`);
  const archs = json.architectures;
  if (archs !== undefined && !(Array.isArray(archs) && archs.every((a) => typeof a === 'string'))) {
    fail(file, `architectures is ${JSON.stringify(archs)}, expected a list of class names`);
  }
  if (typeof mt === 'string') {
    if ((HF_ARCHITECTURES as readonly string[]).includes(mt)) return mt as HfModelType;
    throw new UnsupportedError(`Unsupported model_type "${mt}" in ${file} (supported: ${HF_ARCHITECTURES.join(', ')})`);
  }
  const names = (archs ?? []) as string[];
  const known = names.find((a) => Object.hasOwn(ARCH_CLASSES, a));
  if (known) return ARCH_CLASSES[known];
  if (names.length) throw new UnsupportedError(`Unsupported architecture ${names.join(', ')} in ${file} (supported: ${HF_ARCHITECTURES.join(', ')})`);
  fail(file, 'neither model_type nor architectures is given');
}

/**
 * Validates config.json and maps it to the engine config. Unknown architectures and features the engine lacks
 * (rope scaling types, attention biases on llama, other activations) → UnsupportedError; missing or malformed
 * fields → ModelFormatError naming the field.
 */
export function parseHfConfig(file: string, json: Json): HfConfig {
  const modelType = modelTypeOf(file, json);
  const int = (field: string, dflt?: number, min = 1): number => {
    const v = json[field];
    if (v === undefined || v === null) {
      if (dflt !== undefined) return dflt;
      fail(file, `missing field ${field}`);
    }
    if (!Number.isSafeInteger(v) || (v as number) < min || (v as number) > 2 ** 31 - 1) fail(file, `${field} is ${JSON.stringify(v)}, expected an integer >= ${min}`);
    return v as number;
  };
  const num = (field: string, dflt: number): number => {
    const v = json[field];
    if (v === undefined || v === null) return dflt;
    if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0) fail(file, `${field} is ${JSON.stringify(v)}, expected a positive number`);
    return v;
  };
  const bool = (field: string, dflt: boolean): boolean => {
    const v = json[field];
    if (v === undefined || v === null) return dflt;
    if (typeof v !== 'boolean') fail(file, `${field} is ${JSON.stringify(v)}, expected true or false`);
    return v;
  };
  const act = (field: string, allowed: string[], dflt: string): void => {
    const v = json[field] ?? dflt;
    if (typeof v !== 'string') fail(file, `${field} is ${JSON.stringify(v)}, expected a string`);
    if (!allowed.includes(v)) throw new UnsupportedError(`Unsupported ${field} "${v}" for ${modelType} in ${file} (supported: ${allowed.join(', ')})`);
  };
  const torchDtype = typeof json.torch_dtype === 'string' ? json.torch_dtype : typeof json.dtype === 'string' ? json.dtype : null;
  const bosIds = tokenIds(file, json, 'bos_token_id');
  const ids = { torchDtype, bosTokenId: bosIds.length ? bosIds[0] : null, eosTokenIds: tokenIds(file, json, 'eos_token_id') };

  let dim: number, nLayers: number, nHeads: number, hiddenDim: number, maxSeqLen: number;
  if (modelType === 'gpt2') {
    dim = int('n_embd');
    nLayers = int('n_layer');
    nHeads = int('n_head');
    maxSeqLen = int('n_positions');
    hiddenDim = int('n_inner', 4 * dim);
  } else {
    dim = int('hidden_size');
    nLayers = int('num_hidden_layers');
    nHeads = int('num_attention_heads');
    maxSeqLen = int('max_position_embeddings');
    hiddenDim = int('intermediate_size');
  }
  const vocabSize = int('vocab_size');
  const nKvHeads = modelType === 'gpt2' || modelType === 'bert' ? nHeads : int('num_key_value_heads', nHeads);
  if (json.head_dim === undefined || json.head_dim === null || modelType === 'gpt2' || modelType === 'bert') {
    if (dim % nHeads !== 0) fail(file, `num_attention_heads (${nHeads}) does not divide the hidden size (${dim})`);
  }
  const headDim = modelType === 'gpt2' || modelType === 'bert' ? dim / nHeads : int('head_dim', dim / nHeads);
  if (nKvHeads > nHeads || nHeads % nKvHeads !== 0) fail(file, `num_key_value_heads (${nKvHeads}) does not divide num_attention_heads (${nHeads})`);
  const base = { dim, hiddenDim, nLayers, nHeads, nKvHeads, headDim, vocabSize, maxSeqLen, ropeTheta: 10000, ropeLayout: 'half' as const };

  if (modelType === 'gpt2') {
    act('activation_function', ['gelu_new', 'gelu_pytorch_tanh', 'gelu_fast'], 'gelu_new');
    const config: HfFileConfig = { ...base, arch: 'gpt2', normEps: num('layer_norm_epsilon', 1e-5), tiedEmbeddings: bool('tie_word_embeddings', true) };
    return { modelType, config, ...ids };
  }
  if (modelType === 'bert') {
    act('hidden_act', ['gelu'], 'gelu');
    const pet = json.position_embedding_type ?? 'absolute';
    if (pet !== 'absolute') throw new UnsupportedError(`Unsupported position_embedding_type ${JSON.stringify(pet)} for bert in ${file} (supported: absolute)`);
    const config: HfFileConfig = {
      ...base, arch: 'bert', normEps: num('layer_norm_eps', 1e-12), nTokenTypes: int('type_vocab_size', 2), tiedEmbeddings: false,
    };
    return { modelType, config, ...ids };
  }
  // llama, mistral, qwen2
  if (headDim % 2 !== 0) fail(file, `the head size (${headDim}) is odd; RoPE rotates pairs`);
  act('hidden_act', ['silu'], 'silu');
  if (modelType === 'llama' && (bool('attention_bias', false) || bool('mlp_bias', false))) {
    throw new UnsupportedError(`Unsupported attention_bias / mlp_bias in ${file}: the llama engine has biases only on q/k/v (qwen2)`);
  }
  // Sliding-window attention equals full attention while the context fits the window: cap the context there.
  const windowed = modelType === 'mistral' || (modelType === 'qwen2' && bool('use_sliding_window', false));
  if (windowed && json.sliding_window !== undefined && json.sliding_window !== null) base.maxSeqLen = Math.min(maxSeqLen, int('sliding_window'));
  const config: HfFileConfig = {
    ...base,
    arch: 'llama',
    normEps: num('rms_norm_eps', 1e-6),
    ropeTheta: num('rope_theta', 10000),
    ropeScaling: ropeScaling(file, json.rope_scaling, maxSeqLen),
    qkvBias: modelType === 'qwen2',
    tiedEmbeddings: bool('tie_word_embeddings', false),
  };
  return { modelType, config, ...ids };
}

function ropeScaling(file: string, v: unknown, maxPos: number): AddonRopeScaling | null {
  if (v === undefined || v === null) return null;
  if (!isObject(v)) fail(file, `rope_scaling is ${JSON.stringify(v)}, expected an object`);
  const type = v.rope_type ?? v.type;
  const pos = (field: string, dflt?: number): number => {
    const x = v[field] ?? dflt;
    if (typeof x !== 'number' || !Number.isFinite(x) || x <= 0) fail(file, `rope_scaling.${field} is ${JSON.stringify(v[field])}, expected a positive number`);
    return x;
  };
  if (type === 'default') return null;
  if (type === 'linear') return { type: 'linear', factor: pos('factor') };
  if (type === 'llama3') {
    return {
      type: 'llama3', factor: pos('factor'), lowFreqFactor: pos('low_freq_factor'), highFreqFactor: pos('high_freq_factor'),
      originalMaxPositionEmbeddings: pos('original_max_position_embeddings', maxPos),
    };
  }
  throw new UnsupportedError(`Unsupported rope_scaling type ${JSON.stringify(type)} in ${file} (supported: linear, llama3)`);
}

interface Want {
  engine: string;
  /** Hugging Face names to try, in order. */
  hf: string[];
  transpose?: boolean;
}

/** The tensors the engine needs for a config, each with the Hugging Face names it may have. */
export function hfTensorNames(modelType: HfModelType, config: HfFileConfig): Want[] {
  const want: Want[] = [];
  const L = config.nLayers;
  if (modelType === 'gpt2') {
    const p = (n: string) => [`transformer.${n}`, n];
    const wb = (engine: string, hf: string, transpose = false) => {
      want.push({ engine, hf: p(`${hf}.weight`), transpose }, { engine: `${engine}.bias`, hf: p(`${hf}.bias`) });
    };
    want.push({ engine: 'token_embd', hf: p('wte.weight') }, { engine: 'position_embd', hf: p('wpe.weight') });
    for (let l = 0; l < L; l++) {
      wb(`blk.${l}.attn_norm`, `h.${l}.ln_1`);
      wb(`blk.${l}.attn_qkv`, `h.${l}.attn.c_attn`, true);
      wb(`blk.${l}.attn_output`, `h.${l}.attn.c_proj`, true);
      wb(`blk.${l}.ffn_norm`, `h.${l}.ln_2`);
      wb(`blk.${l}.ffn_up`, `h.${l}.mlp.c_fc`, true);
      wb(`blk.${l}.ffn_down`, `h.${l}.mlp.c_proj`, true);
    }
    wb('output_norm', 'ln_f');
    if (!config.tiedEmbeddings) want.push({ engine: 'output', hf: ['lm_head.weight'] });
    return want;
  }
  if (modelType === 'bert') {
    const p = (n: string) => [`bert.${n}`, n];
    // LayerNorm weights: weight/bias, or gamma/beta in old checkpoints.
    const norm = (engine: string, hf: string) => {
      want.push({ engine, hf: [...p(`${hf}.weight`), ...p(`${hf}.gamma`)] }, { engine: `${engine}.bias`, hf: [...p(`${hf}.bias`), ...p(`${hf}.beta`)] });
    };
    const wb = (engine: string, hf: string) => want.push({ engine, hf: p(`${hf}.weight`) }, { engine: `${engine}.bias`, hf: p(`${hf}.bias`) });
    want.push(
      { engine: 'token_embd', hf: p('embeddings.word_embeddings.weight') },
      { engine: 'position_embd', hf: p('embeddings.position_embeddings.weight') },
      { engine: 'token_types', hf: p('embeddings.token_type_embeddings.weight') },
    );
    norm('token_embd_norm', 'embeddings.LayerNorm');
    for (let l = 0; l < L; l++) {
      const e = `encoder.layer.${l}`;
      wb(`blk.${l}.attn_q`, `${e}.attention.self.query`);
      wb(`blk.${l}.attn_k`, `${e}.attention.self.key`);
      wb(`blk.${l}.attn_v`, `${e}.attention.self.value`);
      wb(`blk.${l}.attn_output`, `${e}.attention.output.dense`);
      norm(`blk.${l}.attn_output_norm`, `${e}.attention.output.LayerNorm`);
      wb(`blk.${l}.ffn_up`, `${e}.intermediate.dense`);
      wb(`blk.${l}.ffn_down`, `${e}.output.dense`);
      norm(`blk.${l}.layer_output_norm`, `${e}.output.LayerNorm`);
    }
    return want;
  }
  const one = (engine: string, hf: string) => want.push({ engine, hf: [hf] });
  one('token_embd', 'model.embed_tokens.weight');
  for (let l = 0; l < L; l++) {
    const h = `model.layers.${l}`;
    one(`blk.${l}.attn_norm`, `${h}.input_layernorm.weight`);
    for (const [e, n] of [['attn_q', 'q_proj'], ['attn_k', 'k_proj'], ['attn_v', 'v_proj']]) {
      one(`blk.${l}.${e}`, `${h}.self_attn.${n}.weight`);
      if (config.qkvBias) one(`blk.${l}.${e}.bias`, `${h}.self_attn.${n}.bias`);
    }
    one(`blk.${l}.attn_output`, `${h}.self_attn.o_proj.weight`);
    one(`blk.${l}.ffn_norm`, `${h}.post_attention_layernorm.weight`);
    one(`blk.${l}.ffn_gate`, `${h}.mlp.gate_proj.weight`);
    one(`blk.${l}.ffn_up`, `${h}.mlp.up_proj.weight`);
    one(`blk.${l}.ffn_down`, `${h}.mlp.down_proj.weight`);
  }
  one('output_norm', 'model.norm.weight');
  if (!config.tiedEmbeddings) one('output', 'lm_head.weight');
  return want;
}

/** Maps the file's tensors to the engine's; missing ones → ModelFormatError listing them; extras are ignored. */
export function mapHfTensors(dir: string, modelType: HfModelType, config: HfFileConfig, tensors: SafetensorsTensor[]): HfModel['tensors'] {
  const byName = new Map(tensors.map((t) => [t.name, t]));
  const out: HfModel['tensors'] = [];
  const missing: string[] = [];
  for (const w of hfTensorNames(modelType, config)) {
    const t = w.hf.map((n) => byName.get(n)).find((x) => x !== undefined);
    if (!t) {
      missing.push(w.hf[0]);
      continue;
    }
    const source = safetensorsSource(t);
    if (w.transpose) {
      if (t.shape.length !== 2) throw new ModelFormatError(`Invalid Hugging Face model ${dir}: tensor "${t.name}" has shape [${t.shape.join(', ')}], expected a 2-D Conv1D weight`);
      source.transpose = true;
    }
    out.push({ name: w.engine, source });
  }
  if (missing.length) {
    const shown = missing.length > 20 ? `${missing.slice(0, 20).join(', ')} and ${missing.length - 20} more` : missing.join(', ');
    throw new ModelFormatError(`Invalid Hugging Face model ${dir}: missing tensors ${shown}`);
  }
  return out;
}

/** Reads a model directory: config.json, generation_config.json (optional), the safetensors headers. */
export async function readHfModel(dir: string): Promise<HfModel> {
  const configFile = path.join(dir, 'config.json');
  const json = (await readJsonObject(configFile, false))!;
  const parsed = parseHfConfig(configFile, json);
  const genFile = path.join(dir, 'generation_config.json');
  const gen = await readJsonObject(genFile, true);
  const stopIds = [...new Set([...(gen ? tokenIds(genFile, gen, 'eos_token_id') : []), ...parsed.eosTokenIds])];
  const st = await readSafetensorsModel(dir);
  const tensors = mapHfTensors(dir, parsed.modelType, parsed.config, st.tensors);
  return { ...parsed, dir, tensors, stopIds };
}

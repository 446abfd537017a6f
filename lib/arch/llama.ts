// The LLaMA family → the engine's 'llama' (engine/arch_llama.cpp): Llama 2/3, Mistral, Qwen2. Pre-norm blocks with
// RMSNorm, RoPE, grouped-query attention, a SwiGLU MLP; Qwen2 adds q/k/v biases. The RoPE pairing differs by
// file: llama.cpp's converter permutes llama's Q/K rows so its "normal" RoPE (pairs 2i, 2i+1) applies ('adjacent',
// as are llama2.c checkpoints), GGUF qwen2 keeps the NEOX half split, and Hugging Face stores every model with
// rotate_half's split (pairs i, i + d/2): 'half'.
import type { AddonRopeScaling } from '../binding';
import { UnsupportedError } from '../errors';
import type { GGUFValue } from '../formats/gguf';
import { gv } from '../formats/gguf-writer';
import { hfSizes, qkvRows, tensor } from './common';
import type { ArchDescription, HfConfigReader, ModelFileConfig } from './types';

type LlamaModelType = 'llama' | 'mistral' | 'qwen2';
type LlamaGGUFName = 'llama' | 'qwen2';

/**
 * The RoPE settings object: transformers 4 writes rope_theta and rope_scaling at the top level; transformers 5
 * writes one rope_parameters object holding both (rope_theta, rope_type, factor, …). Either is read.
 */
function hfRope(r: HfConfigReader): { field: string; o: Record<string, unknown> } | null {
  for (const field of ['rope_scaling', 'rope_parameters']) {
    const v = r.raw(field);
    if (v === undefined || v === null) continue;
    if (typeof v !== 'object' || Array.isArray(v)) r.invalid(`${field} is ${JSON.stringify(v)}, expected an object`);
    return { field, o: v as Record<string, unknown> };
  }
  return null;
}

/** The engine holds RoPE numbers as float32: 1e308 would become Infinity there, 1e-300 zero. */
function isFloat32Positive(v: unknown): v is number {
  return typeof v === 'number' && Math.fround(v) > 0 && Number.isFinite(Math.fround(v));
}

/** rope_theta, or (transformers 5) rope_parameters.rope_theta; 10000 when neither is there. */
function hfRopeTheta(r: HfConfigReader): number {
  const top = r.raw('rope_theta');
  if (top !== undefined && top !== null) return r.num('rope_theta', 10000);
  const p = r.raw('rope_parameters');
  const v = p !== null && typeof p === 'object' && !Array.isArray(p) ? (p as Record<string, unknown>).rope_theta : undefined;
  if (v === undefined || v === null) return 10000;
  if (!isFloat32Positive(v)) r.invalid(`rope_parameters.rope_theta is ${JSON.stringify(v)}, expected a positive number a float32 holds`);
  return v;
}

/** Hugging Face's rope scaling (rope_scaling, or rope_parameters) → the engine's; 'default' and absent are none. */
function hfRopeScaling(r: HfConfigReader, maxPos: number): AddonRopeScaling | null {
  const rope = hfRope(r);
  if (!rope) return null;
  const { field: name, o } = rope;
  const type = o.rope_type ?? o.type;
  const pos = (field: string, dflt?: number): number => {
    const x = o[field] ?? dflt;
    if (!isFloat32Positive(x)) r.invalid(`${name}.${field} is ${JSON.stringify(o[field])}, expected a positive number a float32 holds`);
    return x;
  };
  if (type === undefined && name === 'rope_parameters') return null;
  if (type === 'default') return null;
  if (type === 'linear') return { type: 'linear', factor: pos('factor') };
  if (type === 'llama3') {
    const s = {
      type: 'llama3' as const, factor: pos('factor'), lowFreqFactor: pos('low_freq_factor'), highFreqFactor: pos('high_freq_factor'),
      originalMaxPositionEmbeddings: pos('original_max_position_embeddings', maxPos),
    };
    if (!(s.highFreqFactor > s.lowFreqFactor)) r.invalid(`${name}.high_freq_factor (${s.highFreqFactor}) is not above low_freq_factor (${s.lowFreqFactor})`);
    return s;
  }
  return r.unsupported(`Unsupported ${name} type ${JSON.stringify(type)} in ${r.file} (supported: linear, llama3)`);
}

export const llama: ArchDescription<LlamaModelType, LlamaGGUFName> = {
  arch: 'llama',

  tensors(c) {
    const { q, kv } = qkvRows(c);
    const qkv = [['attn_q', q, 'q_proj'], ['attn_k', kv, 'k_proj'], ['attn_v', kv, 'v_proj']] as const;
    return {
      before: [tensor('token_embd', [c.vocabSize, c.dim], 'embedding', ['model.embed_tokens.weight'])],
      block: (l) => {
        const b = `blk.${l}.`;
        const hf = (n: string): string[] => [`model.layers.${l}.${n}`];
        return [
          tensor(`${b}attn_norm`, [c.dim], 'norm', hf('input_layernorm.weight')),
          ...qkv.map(([n, rows, p]) => tensor(`${b}${n}`, [rows, c.dim], 'matrix', hf(`self_attn.${p}.weight`))),
          ...(c.qkvBias ? qkv.map(([n, rows, p]) => tensor(`${b}${n}.bias`, [rows], 'bias', hf(`self_attn.${p}.bias`))) : []),
          tensor(`${b}attn_output`, [c.dim, q], 'matrix', hf('self_attn.o_proj.weight')),
          tensor(`${b}ffn_norm`, [c.dim], 'norm', hf('post_attention_layernorm.weight')),
          tensor(`${b}ffn_gate`, [c.hiddenDim, c.dim], 'matrix', hf('mlp.gate_proj.weight')),
          tensor(`${b}ffn_up`, [c.hiddenDim, c.dim], 'matrix', hf('mlp.up_proj.weight')),
          tensor(`${b}ffn_down`, [c.dim, c.hiddenDim], 'matrix', hf('mlp.down_proj.weight')),
        ];
      },
      after: [
        tensor('output_norm', [c.dim], 'norm', ['model.norm.weight']),
        ...(c.tiedEmbeddings ? [] : [tensor('output', [c.vocabSize, c.dim], 'matrix', ['lm_head.weight'])]),
      ],
    };
  },

  gguf: {
    names: ['llama', 'qwen2'],
    config(r, common) {
      const a = r.name;
      const config: ModelFileConfig = {
        arch: 'llama',
        ...common,
        normEps: r.number('attention.layer_norm_rms_epsilon'),
        ropeTheta: r.number('rope.freq_base', 10000),
        ropeLayout: a === 'qwen2' ? 'half' : 'adjacent',
      };
      if (a === 'qwen2') config.qkvBias = true;
      const hd = common.headDim;
      if (hd % 2 !== 0) r.invalid(`the head size ${hd} is odd; RoPE rotates pairs`);
      const rotDim = r.int('rope.dimension_count', hd);
      if (rotDim !== hd) r.unsupported(`${a}.rope.dimension_count = ${rotDim}, partial rotary (head size ${hd}) is not supported`);
      const scaling = r.string('rope.scaling.type', 'none');
      if (scaling === 'linear') config.ropeScaling = { type: 'linear', factor: r.number('rope.scaling.factor') };
      else if (scaling !== 'none') r.unsupported(`${a}.rope.scaling.type "${scaling}" is not supported (none, linear)`);
      if (r.tensorShape('rope_freqs')) r.unsupported('a rope_freqs tensor (Llama 3.1 rope scaling in GGUF) is not supported yet');
      return config;
    },
    metadata(c, name) {
      // What config() maps back to this config: qwen2 is the only GGUF name with the half split and q/k/v biases.
      const qwen2 = name === 'qwen2';
      if ((c.ropeLayout === 'half') !== qwen2 || Boolean(c.qkvBias) !== qwen2) {
        throw new UnsupportedError(`GGUF ${name} models have ${qwen2 ? '' : 'no '}q/k/v biases and ${qwen2 ? 'half-split' : 'adjacent-pair'} RoPE`);
      }
      if (c.ropeScaling?.type === 'llama3') throw new UnsupportedError('llama3 rope scaling (a rope_freqs tensor in GGUF) is not supported yet');
      const out: Array<[string, GGUFValue]> = [
        [`${name}.attention.layer_norm_rms_epsilon`, gv.f32(c.normEps)],
        [`${name}.rope.freq_base`, gv.f32(c.ropeTheta)],
        [`${name}.rope.dimension_count`, gv.u32(c.headDim)],
      ];
      if (c.ropeScaling) out.push([`${name}.rope.scaling.type`, gv.str('linear')], [`${name}.rope.scaling.factor`, gv.f32(c.ropeScaling.factor)]);
      return out;
    },
  },

  hf: {
    modelTypes: { llama: ['LlamaForCausalLM'], mistral: ['MistralForCausalLM'], qwen2: ['Qwen2ForCausalLM'] },
    config(r) {
      const mt = r.modelType;
      const { dim, nLayers, nHeads, maxSeqLen, hiddenDim, vocabSize } = hfSizes(r);
      const nKvHeads = r.int('num_key_value_heads', nHeads);
      const headDimField = r.raw('head_dim');
      if ((headDimField === undefined || headDimField === null) && dim % nHeads !== 0) {
        r.invalid(`num_attention_heads (${nHeads}) does not divide the hidden size (${dim})`);
      }
      const headDim = r.int('head_dim', dim / nHeads);
      if (nKvHeads > nHeads || nHeads % nKvHeads !== 0) r.invalid(`num_key_value_heads (${nKvHeads}) does not divide num_attention_heads (${nHeads})`);
      if (headDim % 2 !== 0) r.invalid(`the head size (${headDim}) is odd; RoPE rotates pairs`);
      r.oneOf('hidden_act', ['silu'], 'silu');
      if (mt === 'llama' && (r.bool('attention_bias', false) || r.bool('mlp_bias', false))) {
        r.unsupported(`Unsupported attention_bias / mlp_bias in ${r.file}: the llama engine has biases only on q/k/v (qwen2)`);
      }
      // Sliding-window attention equals full attention while the context fits the window: cap the context there.
      const windowed = mt === 'mistral' || (mt === 'qwen2' && r.bool('use_sliding_window', false));
      const window = r.raw('sliding_window');
      return {
        arch: 'llama',
        dim, hiddenDim, nLayers, nHeads, nKvHeads, headDim, vocabSize,
        maxSeqLen: windowed && window !== undefined && window !== null ? Math.min(maxSeqLen, r.int('sliding_window')) : maxSeqLen,
        normEps: r.num('rms_norm_eps', 1e-6),
        ropeTheta: hfRopeTheta(r),
        ropeLayout: 'half',
        ropeScaling: hfRopeScaling(r, maxSeqLen),
        qkvBias: mt === 'qwen2',
        tiedEmbeddings: r.bool('tie_word_embeddings', false),
      };
    },
  },

  llama2c: {
    config: (h) => ({
      arch: 'llama', dim: h.dim, hiddenDim: h.hiddenDim, nLayers: h.nLayers, nHeads: h.nHeads, nKvHeads: h.nKvHeads, headDim: h.dim / h.nHeads,
      vocabSize: h.vocabSize, maxSeqLen: h.seqLen, normEps: 1e-5, ropeTheta: 10000, ropeLayout: 'adjacent', tiedEmbeddings: h.tied,
    }),
    layers: [
      ['rms_att_weight', 'attn_norm'], ['wq', 'attn_q'], ['wk', 'attn_k'], ['wv', 'attn_v'], ['wo', 'attn_output'],
      ['rms_ffn_weight', 'ffn_norm'], ['w1', 'ffn_gate'], ['w2', 'ffn_down'], ['w3', 'ffn_up'],
    ],
  },
};

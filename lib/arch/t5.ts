// T5 → the engine's 't5' (engine/arch_t5.cpp): an encoder-decoder. T5 v1.0 (ReLU FFN, config feed_forward_proj
// "relu") and v1.1 / Flan-T5 ("gated-gelu": gelu_new(wi_0 x) * wi_1 x); RMS norms without bias, no biases, unscaled
// attention with a learned relative-position bias held by layer 0 of each stack (HF: an Embedding (num_buckets,
// n_heads), transposed on load to the engine's (n_heads, num_buckets)); cross-attention has none. Engine names follow
// llama.cpp's `t5` GGUF names (enc.blk.N.*, dec.blk.N.*, dec.output_norm, output). The decoder's blocks follow the
// encoder's (`after`), so a model may have a different number of each. A T5EncoderModel checkpoint (the encoder
// alone: sentence embeddings) is the engine's 't5encoder', an encoder like bert.
import { UnsupportedError } from '../errors';
import { gv } from '../formats/gguf-writer';
import { NO_ROPE, tensor } from './common';
import type { ArchDescription, ArchShape, HfConfigReader, ModelFileConfig, TensorSpec } from './types';

/** feed_forward_proj → the engine's FFN activation. */
const FFN: Record<string, 'relu' | 'geglu_tanh'> = { relu: 'relu', 'gated-gelu': 'geglu_tanh' };
/** llama.cpp's t5 has no key for it: every released T5 uses 128 (HF's default). */
const GGUF_REL_MAX_DISTANCE = 128;

/** One stack's layer l: attention (and, in the decoder, cross-attention) and the FFN, with HF's names. */
function block(c: ArchShape, stack: 'enc' | 'dec', l: number): TensorSpec[] {
  const att = c.nHeads * c.headDim;
  const b = `${stack}.blk.${l}.`;
  const e = `${stack === 'enc' ? 'encoder' : 'decoder'}.block.${l}.layer.`;
  const m = (name: string, shape: number[], hf: string): TensorSpec => tensor(`${b}${name}`, shape, 'matrix', [`${e}${hf}.weight`]);
  const ffn = stack === 'enc' ? '1' : '2';  // the decoder's cross-attention is its layer 1
  const cross = stack === 'dec'
    ? [
        tensor(`${b}cross_attn_norm`, [c.dim], 'norm', [`${e}1.layer_norm.weight`]),
        m('cross_attn_q', [att, c.dim], '1.EncDecAttention.q'),
        m('cross_attn_k', [att, c.dim], '1.EncDecAttention.k'),
        m('cross_attn_v', [att, c.dim], '1.EncDecAttention.v'),
        m('cross_attn_o', [c.dim, att], '1.EncDecAttention.o'),
      ]
    : [];
  return [
    tensor(`${b}attn_norm`, [c.dim], 'norm', [`${e}0.layer_norm.weight`]),
    m('attn_q', [att, c.dim], '0.SelfAttention.q'),
    m('attn_k', [att, c.dim], '0.SelfAttention.k'),
    m('attn_v', [att, c.dim], '0.SelfAttention.v'),
    m('attn_o', [c.dim, att], '0.SelfAttention.o'),
    ...cross,
    tensor(`${b}ffn_norm`, [c.dim], 'norm', [`${e}${ffn}.layer_norm.weight`]),
    ...(c.ffnActivation === 'geglu_tanh'
      ? [m('ffn_gate', [c.hiddenDim, c.dim], `${ffn}.DenseReluDense.wi_0`), m('ffn_up', [c.hiddenDim, c.dim], `${ffn}.DenseReluDense.wi_1`)]
      : [m('ffn_up', [c.hiddenDim, c.dim], `${ffn}.DenseReluDense.wi`)]),
    m('ffn_down', [c.dim, c.hiddenDim], `${ffn}.DenseReluDense.wo`),
  ];
}

/** A stack's relative-position table (HF (num_buckets, n_heads): transposed on load). */
function relTable(c: ArchShape, stack: 'enc' | 'dec'): TensorSpec {
  const hf = `${stack === 'enc' ? 'encoder' : 'decoder'}.block.0.layer.0.SelfAttention.relative_attention_bias.weight`;
  return tensor(`${stack}.blk.0.attn_rel_b`, [c.nHeads, c.relBuckets ?? 0], 'embedding', [hf], true);
}

export const t5: ArchDescription<'t5', 't5'> = {
  arch: 't5',
  encoderDecoder: true,

  tensors(c) {
    const decoder: TensorSpec[] = [relTable(c, 'dec')];
    for (let l = 0; l < (c.nDecoderLayers ?? 0); l++) decoder.push(...block(c, 'dec', l));
    return {
      before: [
        tensor('token_embd', [c.vocabSize, c.dim], 'embedding', ['shared.weight', 'encoder.embed_tokens.weight']),
        relTable(c, 'enc'),
      ],
      block: (l) => block(c, 'enc', l),
      after: [
        tensor('enc.output_norm', [c.dim], 'norm', ['encoder.final_layer_norm.weight']),
        ...decoder,
        tensor('dec.output_norm', [c.dim], 'norm', ['decoder.final_layer_norm.weight']),
        ...(c.tiedEmbeddings ? [] : [tensor('output', [c.vocabSize, c.dim], 'matrix', ['lm_head.weight'])]),
      ],
    };
  },

  gguf: {
    names: ['t5'],
    ownHeadDim: true,
    config(r, common): ModelFileConfig {
      const proj = r.tensorShape('enc.blk.0.ffn_gate') ? 'geglu_tanh' : 'relu';  // llama.cpp tells them apart so
      const relBuckets = r.int('attention.relative_buckets_count', 32);
      return {
        arch: 't5', ...common, nKvHeads: common.nHeads, normEps: r.number('attention.layer_norm_epsilon', 1e-6), ...NO_ROPE,
        nDecoderLayers: r.int('decoder_block_count', common.nLayers), decoderStartTokenId: r.int('decoder_start_token_id', 0, 0),
        relBuckets, relMaxDistance: GGUF_REL_MAX_DISTANCE, ffnActivation: proj,
        // A GGUF head is `output` unless absent; HF's v1.0 scaling goes with a tied head (as transformers 4 did).
        scaleDecoderOutputs: common.tiedEmbeddings,
      };
    },
    metadata: (c, name) => [
      [`${name}.attention.key_length`, gv.u32(c.headDim)],
      [`${name}.attention.value_length`, gv.u32(c.headDim)],
      [`${name}.attention.layer_norm_epsilon`, gv.f32(c.normEps)],
      [`${name}.attention.relative_buckets_count`, gv.u32(c.relBuckets ?? 32)],
      [`${name}.decoder_start_token_id`, gv.u32(c.decoderStartTokenId ?? 0)],
      [`${name}.decoder_block_count`, gv.u32(c.nDecoderLayers ?? c.nLayers)],
    ],
  },

  hf: {
    modelTypes: { t5: ['T5ForConditionalGeneration', 'T5Model', 'T5EncoderModel'] },
    config(r) {
      const enc = encoderConfig(r);
      const classes = r.raw('architectures');
      if (Array.isArray(classes) && classes.length === 1 && classes[0] === 'T5EncoderModel') return { ...enc, arch: 't5encoder' };
      const tiedEmbeddings = r.bool('tie_word_embeddings', true);
      return {
        ...enc, tiedEmbeddings,
        nDecoderLayers: r.int('num_decoder_layers', enc.nLayers),
        decoderStartTokenId: r.int('decoder_start_token_id', 0, 0),
        // transformers 5 writes it; before, a tied head implied it.
        scaleDecoderOutputs: r.bool('scale_decoder_outputs', tiedEmbeddings),
      };
    },
  },
};

/** The encoder's config fields of a T5 config.json (arch 't5'; the decoder's are the caller's). */
function encoderConfig(r: HfConfigReader): ModelFileConfig {
  const proj = r.raw('feed_forward_proj') ?? 'relu';
  const ffnActivation = typeof proj === 'string' ? FFN[proj] : undefined;
  if (!ffnActivation) {
    r.unsupported(`Unsupported feed_forward_proj ${JSON.stringify(proj)} for t5 in ${r.file} (supported: ${Object.keys(FFN).join(', ')})`);
  }
  const nHeads = r.int('num_heads');
  return {
    arch: 't5', dim: r.int('d_model'), hiddenDim: r.int('d_ff'), nLayers: r.int('num_layers'), nHeads, nKvHeads: nHeads,
    headDim: r.int('d_kv'), vocabSize: r.int('vocab_size'),
    // T5 has no position table: n_positions (512 in the original configs) only bounds the context.
    maxSeqLen: r.int('n_positions', 512),
    normEps: r.num('layer_norm_epsilon', 1e-6), ...NO_ROPE,
    relBuckets: r.int('relative_attention_num_buckets', 32), relMaxDistance: r.int('relative_attention_max_distance', 128),
    ffnActivation, tiedEmbeddings: false,  // an encoder has no head
  };
}

/** T5's encoder alone (HF T5EncoderModel): embed() pools its output; no decoder, no generation. */
export const t5encoder: ArchDescription<never, never> = {
  arch: 't5encoder',
  encoder: true,
  tensors: (c) => ({
    before: [
      tensor('token_embd', [c.vocabSize, c.dim], 'embedding', ['shared.weight', 'encoder.embed_tokens.weight']),
      relTable(c, 'enc'),
    ],
    block: (l) => block(c, 'enc', l),
    after: [tensor('enc.output_norm', [c.dim], 'norm', ['encoder.final_layer_norm.weight'])],
  }),
  gguf: {
    names: [],
    config: (r) => r.unsupported('T5 encoder-only GGUF files are not read'),
    metadata() {
      throw new UnsupportedError('T5 encoder-only models cannot be written to GGUF (llama.cpp\'s t5 has a decoder)');
    },
  },
  // Reached through t5's config (model_type t5, class T5EncoderModel).
  hf: { modelTypes: {}, config: (r) => r.unsupported(`${r.file}: t5encoder is read through model_type t5`) },
};

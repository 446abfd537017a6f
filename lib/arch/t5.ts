// T5 → the engine's 't5' (engine/arch_t5.cpp): for now its encoder only (embed() pools the encoder output; the
// decoder with cross-attention comes next). T5 v1.0 (ReLU FFN, config feed_forward_proj "relu") and v1.1 / Flan-T5
// ("gated-gelu": gelu_new(wi_0 x) * wi_1 x); RMS norms without bias, no biases, unscaled attention with a learned
// relative-position bias held by layer 0 (HF: an Embedding (num_buckets, n_heads), transposed on load to the
// engine's (n_heads, num_buckets)). Engine names follow llama.cpp's `t5` GGUF names (enc.blk.N.*), though GGUF files
// are not read yet: their encoder-decoder layout arrives with the decoder.
import { UnsupportedError } from '../errors';
import { NO_ROPE, tensor } from './common';
import type { ArchDescription, TensorSpec } from './types';

/** feed_forward_proj → the engine's FFN activation. */
const FFN: Record<string, 'relu' | 'geglu_tanh'> = { relu: 'relu', 'gated-gelu': 'geglu_tanh' };

export const t5: ArchDescription<'t5', never> = {
  arch: 't5',
  encoder: true,

  tensors(c) {
    const att = c.nHeads * c.headDim;
    const gated = c.ffnActivation === 'geglu_tanh';
    return {
      before: [
        tensor('token_embd', [c.vocabSize, c.dim], 'embedding', ['shared.weight', 'encoder.embed_tokens.weight']),
        // HF stores it (num_buckets, n_heads), as a Conv1D weight is stored (in, out): transposed on load.
        tensor('enc.blk.0.attn_rel_b', [c.nHeads, c.relBuckets ?? 0], 'embedding',
               ['encoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight'], true),
      ],
      block: (l) => {
        const b = `enc.blk.${l}.`;
        const e = `encoder.block.${l}.layer.`;
        const m = (name: string, shape: number[], hf: string): TensorSpec => tensor(`${b}${name}`, shape, 'matrix', [`${e}${hf}.weight`]);
        return [
          tensor(`${b}attn_norm`, [c.dim], 'norm', [`${e}0.layer_norm.weight`]),
          m('attn_q', [att, c.dim], '0.SelfAttention.q'),
          m('attn_k', [att, c.dim], '0.SelfAttention.k'),
          m('attn_v', [att, c.dim], '0.SelfAttention.v'),
          m('attn_o', [c.dim, att], '0.SelfAttention.o'),
          tensor(`${b}ffn_norm`, [c.dim], 'norm', [`${e}1.layer_norm.weight`]),
          ...(gated
            ? [m('ffn_gate', [c.hiddenDim, c.dim], '1.DenseReluDense.wi_0'), m('ffn_up', [c.hiddenDim, c.dim], '1.DenseReluDense.wi_1')]
            : [m('ffn_up', [c.hiddenDim, c.dim], '1.DenseReluDense.wi')]),
          m('ffn_down', [c.dim, c.hiddenDim], '1.DenseReluDense.wo'),
        ];
      },
      after: [tensor('enc.output_norm', [c.dim], 'norm', ['encoder.final_layer_norm.weight'])],
    };
  },

  gguf: {
    names: [],
    config(r) {
      return r.unsupported('t5 GGUF files are not read yet (the encoder-decoder layout arrives with the decoder)');
    },
    metadata() {
      throw new UnsupportedError('t5 models cannot be written to GGUF yet');
    },
  },

  hf: {
    modelTypes: { t5: ['T5ForConditionalGeneration', 'T5EncoderModel', 'T5Model'] },
    config(r) {
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
        ffnActivation, tiedEmbeddings: r.bool('tie_word_embeddings', true),
      };
    },
  },
};

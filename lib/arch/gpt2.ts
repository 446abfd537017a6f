// GPT-2 → the engine's 'gpt2' (engine/arch_gpt2.cpp): learned positions, pre-LN blocks with LayerNorm biases, a
// fused q|k|v projection with bias, a GELU (tanh) MLP, the head tied to the token embedding unless an lm_head is
// stored. Hugging Face's Conv1D keeps its matrices (in, out): they load transposed. GGUF already holds (out, in).
// Hugging Face names come with the "transformer." prefix (GPT2LMHeadModel.save_pretrained) or without it (GPT2Model,
// the hub's gpt2 checkpoints); lm_head is never under it.
import { gv } from '../formats/gguf-writer';
import { NO_ROPE, qkvRows, tensor, withBias } from './common';
import type { ArchDescription } from './types';

const named = (n: string): string[] => [`transformer.${n}`, n];

export const gpt2: ArchDescription<'gpt2', 'gpt2'> = {
  arch: 'gpt2',

  tensors(c) {
    const { q, kv } = qkvRows(c);
    return {
      before: [
        tensor('token_embd', [c.vocabSize, c.dim], 'embedding', named('wte.weight')),
        tensor('position_embd', [c.maxSeqLen, c.dim], 'embedding', named('wpe.weight')),
      ],
      block: (l) => {
        const b = `blk.${l}.`;
        const h = (n: string): string[] => named(`h.${l}.${n}.weight`);
        return [
          ...withBias(tensor(`${b}attn_norm`, [c.dim], 'norm', h('ln_1'))),
          ...withBias(tensor(`${b}attn_qkv`, [q + 2 * kv, c.dim], 'matrix', h('attn.c_attn'), true)),
          ...withBias(tensor(`${b}attn_output`, [c.dim, q], 'matrix', h('attn.c_proj'), true)),
          ...withBias(tensor(`${b}ffn_norm`, [c.dim], 'norm', h('ln_2'))),
          ...withBias(tensor(`${b}ffn_up`, [c.hiddenDim, c.dim], 'matrix', h('mlp.c_fc'), true)),
          ...withBias(tensor(`${b}ffn_down`, [c.dim, c.hiddenDim], 'matrix', h('mlp.c_proj'), true)),
        ];
      },
      after: [
        ...withBias(tensor('output_norm', [c.dim], 'norm', named('ln_f.weight'))),
        ...(c.tiedEmbeddings ? [] : [tensor('output', [c.vocabSize, c.dim], 'matrix', ['lm_head.weight'])]),
      ],
    };
  },

  gguf: {
    names: ['gpt2'],
    config: (r, common) => ({ arch: 'gpt2', ...common, normEps: r.number('attention.layer_norm_epsilon'), ...NO_ROPE }),
    metadata: (c, name) => [[`${name}.attention.layer_norm_epsilon`, gv.f32(c.normEps)]],
  },

  hf: {
    modelTypes: { gpt2: ['GPT2LMHeadModel', 'GPT2Model'] },
    config(r) {
      const dim = r.int('n_embd');
      const nLayers = r.int('n_layer');
      const nHeads = r.int('n_head');
      const maxSeqLen = r.int('n_positions');
      const hiddenDim = r.int('n_inner', 4 * dim);
      const vocabSize = r.int('vocab_size');
      if (dim % nHeads !== 0) r.invalid(`num_attention_heads (${nHeads}) does not divide the hidden size (${dim})`);
      r.oneOf('activation_function', ['gelu_new', 'gelu_pytorch_tanh', 'gelu_fast'], 'gelu_new');
      return {
        arch: 'gpt2', dim, hiddenDim, nLayers, nHeads, nKvHeads: nHeads, headDim: dim / nHeads, vocabSize, maxSeqLen,
        normEps: r.num('layer_norm_epsilon', 1e-5), ...NO_ROPE, tiedEmbeddings: r.bool('tie_word_embeddings', true),
      };
    },
  },
};

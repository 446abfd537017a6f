// BERT → the engine's 'bert' (engine/arch_bert.cpp), an encoder (embed() instead of step()): token + position +
// token-type embeddings and a LayerNorm, post-LN blocks with biases everywhere, bidirectional attention, a GELU (erf)
// MLP; no LM head. Hugging Face names come with the "bert." prefix (BertFor* task classes) or without it
// (BertModel); old checkpoints call LayerNorm's weight and bias gamma and beta.
// DecBERT ("Enhancing the Language Understanding of BERT with Causal Attention Masks") keeps the weights and gives
// each layer an attention mask: config.json `attention_mask_modes`, one of ATTENTION_MASK_MODES for all layers or a
// list with one per layer; absent = all bidirectional (plain BERT).
import type { AddonAttentionMaskMode } from '../binding';
import { UnsupportedError } from '../errors';
import { gv } from '../formats/gguf-writer';
import { limits } from '../limits';
import { NO_ROPE, hfSizes, qkvRows, tensor, withBias } from './common';
import type { ArchDescription, HfConfigReader, TensorSpec } from './types';

const ATTENTION_MASK_MODES: readonly AddonAttentionMaskMode[] = ['bidirectional', 'causal', 'anticausal'];

/** A config value in an error message, cut short (a hostile file may hold a huge one). */
const shown = (v: unknown): string => {
  const s = JSON.stringify(v) ?? String(v);
  return s.length > 80 ? `${s.slice(0, 80)}…` : s;
};

/**
 * One mask for every layer. The loaders check nLayers against the engine's limit only after the description has
 * read the config (checkConfigLimits), so a hostile layer count is clamped here rather than sizing an array.
 */
const everyLayer = (nLayers: number, m: AddonAttentionMaskMode): AddonAttentionMaskMode[] =>
  new Array<AddonAttentionMaskMode>(Math.min(nLayers, limits().maxLayers)).fill(m);

/** config.json's attention_mask_modes as nLayers modes; a bad value → ModelFormatError naming the field and the value. */
function hfMaskModes(r: HfConfigReader, nLayers: number): AddonAttentionMaskMode[] {
  const field = 'attention_mask_modes';
  const raw = r.raw(field);
  const mode = (v: unknown, name: string): AddonAttentionMaskMode => {
    if (typeof v === 'string' && (ATTENTION_MASK_MODES as readonly string[]).includes(v)) return v as AddonAttentionMaskMode;
    return r.invalid(`${name} is ${shown(v)}, expected one of ${ATTENTION_MASK_MODES.map((m) => `"${m}"`).join(', ')}`);
  };
  if (raw === undefined || raw === null) return everyLayer(nLayers, 'bidirectional');
  if (!Array.isArray(raw)) return everyLayer(nLayers, mode(raw, field));
  if (raw.length !== nLayers) r.invalid(`${field} is ${shown(raw)} with ${raw.length} entries, expected one per layer (num_hidden_layers ${nLayers})`);
  return raw.map((v, i) => mode(v, `${field}[${i}]`));
}

const named = (n: string): string[] => [`bert.${n}`, n];
const layerNorm = (name: string, dim: number, hf: string): TensorSpec[] =>
  withBias(tensor(name, [dim], 'norm', [...named(`${hf}.weight`), ...named(`${hf}.gamma`)]));

export const bert: ArchDescription<'bert', 'bert'> = {
  arch: 'bert',
  encoder: true,

  tensors(c) {
    const { q, kv } = qkvRows(c);
    return {
      before: [
        tensor('token_embd', [c.vocabSize, c.dim], 'embedding', named('embeddings.word_embeddings.weight')),
        tensor('position_embd', [c.maxSeqLen, c.dim], 'embedding', named('embeddings.position_embeddings.weight')),
        tensor('token_types', [c.nTokenTypes ?? 0, c.dim], 'embedding', named('embeddings.token_type_embeddings.weight')),
        ...layerNorm('token_embd_norm', c.dim, 'embeddings.LayerNorm'),
      ],
      block: (l) => {
        const b = `blk.${l}.`;
        const e = `encoder.layer.${l}.`;
        const linear = (name: string, shape: number[], hf: string): TensorSpec[] =>
          withBias(tensor(`${b}${name}`, shape, 'matrix', named(`${e}${hf}.weight`)));
        return [
          ...linear('attn_q', [q, c.dim], 'attention.self.query'),
          ...linear('attn_k', [kv, c.dim], 'attention.self.key'),
          ...linear('attn_v', [kv, c.dim], 'attention.self.value'),
          ...linear('attn_output', [c.dim, q], 'attention.output.dense'),
          ...layerNorm(`${b}attn_output_norm`, c.dim, `${e}attention.output.LayerNorm`),
          ...linear('ffn_up', [c.hiddenDim, c.dim], 'intermediate.dense'),
          ...linear('ffn_down', [c.dim, c.hiddenDim], 'output.dense'),
          ...layerNorm(`${b}layer_output_norm`, c.dim, `${e}output.LayerNorm`),
        ];
      },
      after: [],
    };
  },

  gguf: {
    names: ['bert'],
    config(r, common) {
      const config = { arch: 'bert' as const, ...common, normEps: r.number('attention.layer_norm_epsilon'), ...NO_ROPE };
      const types = r.tensorShape('token_types');
      if (!types) return r.invalid('tensor "token_types.weight" is missing');
      // No LM head: nothing is tied, whatever output's absence would mean for a decoder.
      return { ...config, nTokenTypes: types[0], tiedEmbeddings: false, attentionMaskModes: everyLayer(config.nLayers, 'bidirectional') };
    },
    metadata: (c, name) => {
      // GGUF's bert has one attention.causal flag, which this engine does not read: per-layer masks have no key.
      if (c.attentionMaskModes?.some((m) => m !== 'bidirectional')) {
        throw new UnsupportedError(`attentionMaskModes ${shown(c.attentionMaskModes)} cannot be written to GGUF (its bert has no per-layer masks)`);
      }
      return [
        [`${name}.attention.layer_norm_epsilon`, gv.f32(c.normEps)],
        [`${name}.attention.causal`, gv.bool(false)],
      ];
    },
  },

  hf: {
    modelTypes: { bert: ['BertModel', 'BertForMaskedLM', 'BertForPreTraining'] },
    config(r) {
      const { dim, nLayers, nHeads, maxSeqLen, hiddenDim, vocabSize } = hfSizes(r);
      if (dim % nHeads !== 0) r.invalid(`num_attention_heads (${nHeads}) does not divide the hidden size (${dim})`);
      r.oneOf('hidden_act', ['gelu'], 'gelu');
      const pet = r.raw('position_embedding_type') ?? 'absolute';
      if (pet !== 'absolute') r.unsupported(`Unsupported position_embedding_type ${JSON.stringify(pet)} for bert in ${r.file} (supported: absolute)`);
      return {
        arch: 'bert', dim, hiddenDim, nLayers, nHeads, nKvHeads: nHeads, headDim: dim / nHeads, vocabSize, maxSeqLen,
        normEps: r.num('layer_norm_eps', 1e-12), ...NO_ROPE, nTokenTypes: r.int('type_vocab_size', 2), tiedEmbeddings: false,
        attentionMaskModes: hfMaskModes(r, nLayers),
      };
    },
  },
};

// T5's tokenizer from GGUF metadata (tokenizer.ggml.model 't5', as llama.cpp's converter writes it): a SentencePiece
// Unigram vocabulary — tokens, scores, token_type (1 normal, 2 unknown, 3 control, 4 user-defined, 6 byte) — with
// the unk / eos ids, add_space_prefix, remove_extra_whitespaces, add_eos_token and the normalizer's
// precompiled_charsmap. It is restated as the tokenizer.json Hugging Face's T5 converter would write (Unigram model,
// Metaspace pre-tokenizer and decoder, Precompiled + whitespace-collapsing normalizer, '$A </s>' post-processor) and
// run by @huggingface/tokenizers, the library the HF folders' tokenizers run on: one Unigram implementation, not two.
import { HfTokenizer } from './hf';

type Json = Record<string, unknown>;

/** The GGUF tokenizer fields this needs, validated by the loader (lib/loaders/gguf.ts). */
export interface GGUFUnigram {
  file: string;
  tokens: string[];
  scores: ArrayLike<number>;
  types: ArrayLike<number> | undefined;
  unk: number;
  eos: number;
  addSpacePrefix: boolean;
  removeExtraWhitespaces: boolean;
  addEos: boolean;
  /** The normalizer's table (SentencePiece's precompiled_charsmap), or null. */
  charsmap: Uint8Array | null;
}

const CONTROL = 3, USER_DEFINED = 4, BYTE = 6;

export function ggufT5Tokenizer(g: GGUFUnigram, vocabSize: number): HfTokenizer {
  const type = (i: number): number => (g.types ? g.types[i] : 1);
  const metaspace = { type: 'Metaspace', replacement: '\u2581', prepend_scheme: g.addSpacePrefix ? 'always' : 'never', split: true };
  const normalizers: Json[] = [];
  if (g.charsmap) normalizers.push({ type: 'Precompiled', precompiled_charsmap: Buffer.from(g.charsmap).toString('base64') });
  if (g.removeExtraWhitespaces) normalizers.push({ type: 'Replace', pattern: { Regex: ' {2,}' }, content: ' ' });
  const eos = g.tokens[g.eos];
  const json: Json = {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: g.tokens.flatMap((content, id) => (type(id) === CONTROL || type(id) === USER_DEFINED
      ? [{ id, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: type(id) === CONTROL }]
      : [])),
    normalizer: normalizers.length ? { type: 'Sequence', normalizers } : null,
    pre_tokenizer: metaspace,
    post_processor: g.addEos
      ? {
          type: 'TemplateProcessing',
          single: [{ Sequence: { id: 'A', type_id: 0 } }, { SpecialToken: { id: eos, type_id: 0 } }],
          pair: [{ Sequence: { id: 'A', type_id: 0 } }, { SpecialToken: { id: eos, type_id: 0 } }, { Sequence: { id: 'B', type_id: 0 } },
            { SpecialToken: { id: eos, type_id: 0 } }],
          special_tokens: { [eos]: { id: eos, ids: [g.eos], tokens: [eos] } },
        }
      : null,
    decoder: metaspace,
    model: {
      type: 'Unigram',
      unk_id: g.unk,
      vocab: g.tokens.map((t, i) => [t, g.scores[i]]),
      byte_fallback: g.tokens.some((_, i) => type(i) === BYTE),
    },
  };
  return new HfTokenizer(json, { eos_token: eos, unk_token: g.tokens[g.unk] }, { bos: null, eos: g.eos }, g.file, vocabSize);
}

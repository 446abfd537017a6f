// Byte-level BPE tokenizers (GPT-2, Llama 3, Qwen2) from GGUF metadata: tokenizer.ggml.model 'gpt2' with tokens,
// merges ("a b", by rank), token_type (3 = control, 4 = user-defined: matched whole before BPE) and
// tokenizer.ggml.pre naming the pre-tokenizer regex. Encoding goes through @huggingface/tokenizers (a
// tokenizer.json assembled from the metadata); decoding maps each token's characters back to bytes (GPT-2's
// bytes_to_unicode table) and assembles UTF-8 across tokens (streaming-safe). Control tokens print nothing.
import { Tokenizer as HFTokenizer } from '@huggingface/tokenizers';
import { ModelFormatError, UnsupportedError } from '../errors';
import { integerIn } from '../validate';
import type { TextTokenizer } from './types';

/**
 * tokenizer.ggml.pre → the split regex before byte-level mapping (null: GPT-2's own, inside ByteLevel). llama.cpp's
 * names; 'default' (its fallback when the key is absent) is a different regex and is not supported.
 */
const PRE_REGEX: Readonly<Record<string, string | null>> = {
  'gpt-2': null,
  'llama-bpe': "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+",
  qwen2: "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+",
};
export const BPE_PRE_TOKENIZERS = Object.keys(PRE_REGEX);

/** GPT-2's bytes_to_unicode: printable latin-1 bytes stand for themselves, the others for U+0100 onwards. */
function byteDecoder(): Map<string, number> {
  const m = new Map<string, number>();
  let n = 0;
  for (let b = 0; b < 256; b++) {
    const printable = (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff);
    m.set(String.fromCharCode(printable ? b : 256 + n++), b);
  }
  return m;
}

export interface BpeSpecial {
  bos: number;
  eos: number;
  addBos: boolean;
}

export class ByteLevelBpeTokenizer implements TextTokenizer {
  readonly vocabSize: number;
  readonly bos: number;
  readonly eos: number;
  readonly addBos: boolean;
  readonly #hf: HFTokenizer;
  readonly #file: string;
  /** What each id prints; null for control tokens. */
  readonly #bytes: (Uint8Array | null)[];

  constructor(tokens: string[], merges: string[], types: ArrayLike<number> | undefined, pre: string, special: BpeSpecial, file = 'tokenizer') {
    if (!(pre in PRE_REGEX)) {
      throw new UnsupportedError(`${file}: tokenizer.ggml.pre "${pre}" is not supported (supported: ${BPE_PRE_TOKENIZERS.join(', ')})`);
    }
    this.#file = file;
    this.vocabSize = tokens.length;
    this.bos = special.bos;
    this.eos = special.eos;
    this.addBos = special.addBos;
    const dec = byteDecoder();
    this.#bytes = tokens.map((t, id) => {
      if (types && (types[id] === 3)) return null;
      if (types && types[id] === 4) return new Uint8Array(Buffer.from(t, 'utf8'));
      const out = new Uint8Array(t.length);
      for (let i = 0; i < t.length; i++) {
        const b = dec.get(t[i]);
        if (b === undefined) return new Uint8Array(Buffer.from(t, 'utf8')); // not byte-level text: print as is
        out[i] = b;
      }
      return out;
    });
    const vocab: Record<string, number> = Object.create(null);
    tokens.forEach((t, id) => { if (!(t in vocab)) vocab[t] = id; });
    // A merge whose parts or result are not tokens would make the library drop text silently.
    merges.forEach((m, i) => {
      const [a, b] = m.split(' ');
      if (!(a in vocab) || !(b in vocab) || !(a + b in vocab)) {
        throw new ModelFormatError(`${file}: tokenizer.ggml.merges[${i}] = ${JSON.stringify(m)} merges into or from a string that is not a token`);
      }
    });
    const added = tokens.flatMap((t, id) => (types && (types[id] === 3 || types[id] === 4)
      ? [{ id, content: t, single_word: false, lstrip: false, rstrip: false, normalized: false, special: types[id] === 3 }] : []));
    const regex = PRE_REGEX[pre];
    const byteLevel = { type: 'ByteLevel', add_prefix_space: false, trim_offsets: false, use_regex: regex === null };
    const json = {
      version: '1.0',
      truncation: null,
      padding: null,
      added_tokens: added,
      normalizer: null,
      pre_tokenizer: regex === null ? byteLevel : {
        type: 'Sequence',
        pretokenizers: [{ type: 'Split', pattern: { Regex: regex }, behavior: 'Isolated', invert: false }, byteLevel],
      },
      post_processor: null,
      decoder: { type: 'ByteLevel', add_prefix_space: false, trim_offsets: false, use_regex: false },
      model: {
        type: 'BPE', dropout: null, unk_token: null, continuing_subword_prefix: null, end_of_word_suffix: null,
        fuse_unk: false, byte_fallback: false, ignore_merges: pre === 'llama-bpe', vocab, merges,
      },
    };
    try {
      this.#hf = new HFTokenizer(json, {});
    } catch (e) {
      throw new ModelFormatError(`${file}: cannot build the BPE tokenizer: ${(e as Error).message}`, { cause: e });
    }
  }

  /** BOS first when addBos, then the BPE ids of the text (control tokens in the text are matched whole). */
  encode(text: string): number[] {
    let ids: number[] = [];
    try {
      if (text.length > 0) ids = this.#hf.encode(text, { add_special_tokens: false }).ids;
    } catch (e) {
      throw new ModelFormatError(`${this.#file}: the BPE tokenizer failed to encode the text: ${(e as Error).message}`, { cause: e });
    }
    if (ids.some((id) => !Number.isInteger(id) || id < 0 || id >= this.vocabSize)) {
      throw new ModelFormatError(`${this.#file}: the BPE tokenizer has no token for part of the text`);
    }
    return this.addBos ? [this.bos, ...ids] : ids;
  }

  decode(ids: readonly number[]): string {
    const d = this.decoder();
    let s = '';
    for (const id of ids) s += d.push(id);
    return s + d.flush();
  }

  /** A streaming decoder (no `prev`: byte-level BPE has no leading-space rule). */
  decoder(): { push(id: number): string; flush(): string } {
    const utf8 = new TextDecoder('utf-8', { fatal: false });
    return {
      push: (id: number): string => {
        integerIn('token id', id, 0, this.vocabSize - 1);
        const b = this.#bytes[id];
        return b && b.length ? utf8.decode(b, { stream: true }) : '';
      },
      flush: (): string => utf8.decode(),
    };
  }
}

// Tiny Hugging Face model folders written by the tests: config.json + model.safetensors + a hand-made tokenizer.json
// (a Metaspace BPE for decoders, a WordPiece for bert) + tokenizer_config.json (with a chat template) +
// generation_config.json. Shared by test/models/hf.test.ts and the server tests.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { writeSafetensors, SafetensorsWriterTensor } from '../../lib/formats/safetensors-writer';
import { transpose, type Weight } from './engine-helpers';

let tmp: string | undefined;
let dirCount = 0;

/** Removes the folders writeFolder wrote (call from a top-level afterAll). */
export function removeFolders(): void {
  if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
  tmp = undefined;
}

export type Json = Record<string, unknown>;

// ---- tokenizers written by hand ------------------------------------------------------------------------------------

const special = (id: number, content: string) => ({ id, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true });

/** A Metaspace BPE (Llama-style): specials 0..4, '▁', a..z, a few merges, fillers up to `size` ids. */
export function bpeTokenizer(size: number, withBos: boolean): Json {
  const vocab: Record<string, number> = { '<unk>': 0, '<s>': 1, '</s>': 2, '<|user|>': 3, '<|assistant|>': 4, '▁': 5 };
  for (const c of 'abcdefghijklmnopqrstuvwxyz') vocab[c] = Object.keys(vocab).length;
  const merges = [['▁', 'h'], ['e', 'l'], ['el', 'l'], ['▁h', 'ell'], ['▁hell', 'o'], ['▁', 'w'], ['o', 'r'], ['▁w', 'or'], ['▁wor', 'l'], ['▁worl', 'd'], ['▁', 'c'], ['a', 't'], ['▁c', 'at']];
  for (const [a, b] of merges) vocab[a + b] = Object.keys(vocab).length;
  while (Object.keys(vocab).length < size) vocab[`<f${Object.keys(vocab).length}>`] = Object.keys(vocab).length;
  const meta = { type: 'Metaspace', replacement: '▁', prepend_scheme: 'first', split: false };
  return {
    version: '1.0',
    added_tokens: [special(0, '<unk>'), special(1, '<s>'), special(2, '</s>'), special(3, '<|user|>'), special(4, '<|assistant|>')],
    normalizer: null,
    pre_tokenizer: meta,
    post_processor: withBos
      ? { type: 'TemplateProcessing', single: [{ SpecialToken: { id: '<s>', type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }], pair: [], special_tokens: { '<s>': { id: '<s>', ids: [1], tokens: ['<s>'] } } }
      : null,
    decoder: meta,
    model: { type: 'BPE', dropout: null, unk_token: '<unk>', continuing_subword_prefix: null, end_of_word_suffix: null, fuse_unk: true, byte_fallback: false, vocab, merges: merges.map(([a, b]) => `${a} ${b}`) },
  };
}

export const BERT_WORDS = ['[PAD]', '[UNK]', '[CLS]', '[SEP]', '[MASK]', 'the', 'cat', 'sat', 'on', 'mat', 'a', 'dog', 'ran', '##s', 'hello', 'world', '.'];
export function wordPieceTokenizer(size: number): Json {
  const vocab: Record<string, number> = {};
  BERT_WORDS.forEach((w, i) => (vocab[w] = i));
  while (Object.keys(vocab).length < size) vocab[`[unused${Object.keys(vocab).length}]`] = Object.keys(vocab).length;
  return {
    version: '1.0',
    added_tokens: [0, 1, 2, 3, 4].map((i) => special(i, BERT_WORDS[i])),
    normalizer: { type: 'BertNormalizer', clean_text: true, handle_chinese_chars: true, strip_accents: null, lowercase: true },
    pre_tokenizer: { type: 'BertPreTokenizer' },
    post_processor: {
      type: 'TemplateProcessing',
      single: [{ SpecialToken: { id: '[CLS]', type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }, { SpecialToken: { id: '[SEP]', type_id: 0 } }],
      pair: [],
      special_tokens: { '[CLS]': { id: '[CLS]', ids: [2], tokens: ['[CLS]'] }, '[SEP]': { id: '[SEP]', ids: [3], tokens: ['[SEP]'] } },
    },
    decoder: { type: 'WordPiece', prefix: '##', cleanup: true },
    model: { type: 'WordPiece', unk_token: '[UNK]', continuing_subword_prefix: '##', max_input_chars_per_word: 100, vocab },
  };
}

export const CHAT_TEMPLATE = "{{ bos_token }}{% for m in messages %}<|{{ m['role'] }}|>{{ m['content'] }}{% endfor %}{% if add_generation_prompt %}<|assistant|>{% endif %}";

// ---- writing a folder ----------------------------------------------------------------------------------------------

export interface Folder {
  config: Json;
  /** HF name → weight; `t` marks a matrix to store transposed (Conv1D). */
  tensors: Array<{ name: string; w: Weight; t?: boolean }>;
  dtype?: 'F32' | 'F16' | 'BF16';
  tokenizer: Json;
  tokenizerConfig: Json;
  generationConfig?: Json;
}

export async function writeFolder(f: Folder): Promise<string> {
  tmp ??= fs.mkdtempSync(path.join(os.tmpdir(), 'eet-hf-'));
  const dir = path.join(tmp, `model-${dirCount++}`);
  fs.mkdirSync(dir);
  fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify(f.config));
  fs.writeFileSync(path.join(dir, 'tokenizer.json'), JSON.stringify(f.tokenizer));
  fs.writeFileSync(path.join(dir, 'tokenizer_config.json'), JSON.stringify(f.tokenizerConfig));
  if (f.generationConfig) fs.writeFileSync(path.join(dir, 'generation_config.json'), JSON.stringify(f.generationConfig));
  const st: SafetensorsWriterTensor[] = f.tensors.map(({ name, w, t }) => {
    const x = t ? transpose(w) : w;
    return { name, dtype: f.dtype ?? 'F32', shape: x.shape, data: x.data };
  });
  // Extra tensors a checkpoint may carry: ignored by the loader.
  st.push({ name: 'model.rotary_emb.inv_freq', dtype: 'F32', shape: [2], data: [1, 2] });
  await writeSafetensors(path.join(dir, 'model.safetensors'), st);
  return dir;
}


// Hugging Face tokenizers (tokenizer.json through @huggingface/tokenizers) and chat templates
// (tokenizer_config.json's chat_template through @huggingface/jinja), in the shape Model uses.
//
// BOS rules: the tokenizer's post-processor adds its special tokens (Llama's <s>, BERT's [CLS] … [SEP]);
// tokenizer_config.json's add_bos_token, when given, then forces BOS on (prepended if absent) or off. A chat
// prompt is rendered text that already holds its special tokens, so it is encoded without adding any (as
// transformers' apply_chat_template does).
// Decoding skips special tokens. The streaming decoder decodes a short window of ids with context and hands out
// the new suffix, holding back text that ends in an incomplete UTF-8 sequence (U+FFFD).
//
// tokenizer.json is checked before the library sees it: every id an integer below the model's vocabulary (a vocab id
// of 1e9 would make the library build — and walk — a sparse array of a billion slots), and a test text is encoded
// and decoded at load, so a tokenizer that can only fail (a post-processor without `single`) fails there. Whatever
// the library still throws later becomes a ModelFormatError, and ids it cannot map are reported, not passed on.
import * as fs from 'fs';
import * as path from 'path';
import { Tokenizer as HfTokenizerImpl } from '@huggingface/tokenizers';
import { EetError, InvalidArgumentError, ModelFormatError, UnsupportedError } from '../errors';
import type { TokenDecoder } from '../generate/text';
import { READ_LIMITS } from '../loaders/files';
import { readJsonObject } from '../loaders/hf';
import { renderTemplate } from './template';

export interface ChatMessage {
  role: string;
  content: string;
}

export interface ChatTemplateOptions {
  /** Append the assistant turn's opening (default true). */
  addGenerationPrompt?: boolean;
}

type Json = Record<string, unknown>;

/** A special token field of tokenizer_config.json: a string or an AddedToken object { content }. */
function tokenText(v: unknown): string | null {
  if (typeof v === 'string') return v;
  if (typeof v === 'object' && v !== null && typeof (v as Json).content === 'string') return (v as Json).content as string;
  return null;
}

/** The engine's largest vocabulary (engine/limits.h maxVocab): the bound on ids when the model's is not known. */
const MAX_VOCAB = 2 ** 24;
const PROBE_TEXT = 'Hello, world! 123';

const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);

/**
 * Checks the parts of tokenizer.json the library trusts: model.vocab (token → id, or Unigram's [piece, score] list),
 * added_tokens ({ id, content }), a TemplateProcessing post-processor's `single`/`pair` lists. Ids must be below
 * `vocabSize`. Returns the largest id + 1.
 */
export function checkTokenizerJson(file: string, json: Json, vocabSize: number): number {
  const fail = (what: string): never => { throw new ModelFormatError(`Invalid tokenizer ${file}: ${what}`); };
  const model = json.model;
  if (!isObject(model)) fail('"model" is not an object');
  const m = model as Json;
  let size = 0;
  const id = (v: unknown, what: string): void => {
    if (!Number.isInteger(v) || (v as number) < 0 || (v as number) >= vocabSize) {
      fail(`${what} has id ${JSON.stringify(v)}, expected an integer from 0 to ${vocabSize - 1} (the model's vocabulary)`);
    }
    size = Math.max(size, (v as number) + 1);
  };
  if (Array.isArray(m.vocab)) {
    if (m.vocab.length > vocabSize) fail(`model.vocab has ${m.vocab.length} pieces, more than the model's vocabulary of ${vocabSize}`);
    m.vocab.forEach((p, i) => {
      if (!Array.isArray(p) || typeof p[0] !== 'string' || typeof p[1] !== 'number') fail(`model.vocab[${i}] is not a [piece, score] pair`);
    });
    size = m.vocab.length;
  } else if (isObject(m.vocab)) {
    for (const [token, v] of Object.entries(m.vocab)) id(v, `model.vocab token ${JSON.stringify(token.slice(0, 40))}`);
  } else {
    fail('model.vocab is neither an object (token → id) nor a list of [piece, score]');
  }
  const added = json.added_tokens ?? [];
  if (!Array.isArray(added)) fail('"added_tokens" is not a list');
  (added as unknown[]).forEach((t, i) => {
    if (!isObject(t) || typeof t.content !== 'string') fail(`added_tokens[${i}] has no string "content"`);
    id((t as Json).id, `added_tokens[${i}]`);
  });
  const pp = json.post_processor;
  if (isObject(pp) && pp.type === 'TemplateProcessing') {
    for (const k of ['single', 'pair']) if (!Array.isArray(pp[k])) fail(`post_processor (TemplateProcessing) has no "${k}" list`);
  }
  return size;
}

export class HfTokenizer {
  /** Ids the model accepts (its vocabulary; the tokenizer's ids are all below it). */
  readonly vocabSize: number;
  readonly bos: number;
  readonly eos: number;
  readonly chatTemplate: string | null;
  readonly #tok: HfTokenizerImpl;
  readonly #file: string;
  readonly #addBos: boolean | undefined;
  readonly #specials: Record<string, string>;

  /** `vocabSize`: the model's vocabulary (every id of the tokenizer must be below it); absent: the tokenizer's own. */
  constructor(tokenizerJson: Json, tokenizerConfig: Json, ids: { bos: number | null; eos: number | null }, file = 'tokenizer.json',
    vocabSize?: number) {
    this.#file = file;
    const size = checkTokenizerJson(file, tokenizerJson, vocabSize ?? MAX_VOCAB);
    this.vocabSize = vocabSize ?? size;
    try {
      this.#tok = new HfTokenizerImpl(tokenizerJson, tokenizerConfig);
    } catch (e) {
      throw new ModelFormatError(`Invalid tokenizer ${file}: ${(e as Error).message}`, { cause: e });
    }
    this.#specials = {};
    for (const k of ['bos_token', 'eos_token', 'unk_token', 'pad_token', 'sep_token', 'cls_token', 'mask_token']) {
      const t = tokenText(tokenizerConfig[k]);
      if (t !== null) this.#specials[k] = t;
    }
    const idOf = (k: string): number | undefined => (this.#specials[k] === undefined ? undefined : this.#tok.token_to_id(this.#specials[k]));
    this.bos = idOf('bos_token') ?? ids.bos ?? -1;
    this.eos = idOf('eos_token') ?? ids.eos ?? -1;
    for (const [k, v] of [['bos', this.bos], ['eos', this.eos]] as const) {
      if (v >= this.vocabSize) throw new ModelFormatError(`Invalid tokenizer ${file}: the ${k} token id ${v} is not below the model's vocabulary of ${this.vocabSize}`);
    }
    const a = tokenizerConfig.add_bos_token;
    this.#addBos = typeof a === 'boolean' ? a : undefined;
    this.chatTemplate = pickTemplate(tokenizerConfig.chat_template);
    // A tokenizer that fails on any text (a broken post-processor, decoder or normalizer) fails here, at load.
    for (const special of [true, false]) this.#text(this.#library(PROBE_TEXT, special).filter((id) => Number.isInteger(id)));
  }

  /** Token ids of text; `special` (default true) adds the model's special tokens (BOS rules above). */
  encode(text: string, special = true): number[] {
    const ids = this.#encode(text, special);
    if (!special || this.bos < 0 || this.#addBos === undefined) return ids;
    if (this.#addBos && ids[0] !== this.bos) ids.unshift(this.bos);
    if (!this.#addBos && ids[0] === this.bos && this.#encode(text, false)[0] !== this.bos) ids.shift();
    return ids;
  }

  /** Text of ids (special tokens skipped); `prev`, when given, is the token before them (context for spacing). */
  decode(ids: readonly number[], prev?: number): string {
    if (prev === undefined || prev < 0) return this.#text(ids);
    const d = this.decoder(prev);
    let s = '';
    for (const id of ids) s += d.push(id);
    return s + d.flush();
  }

  /** A streaming decoder: push ids one at a time; `prev` is context (the prompt's last token). */
  decoder(prev?: number): TokenDecoder {
    let ctx: number[] = prev === undefined || prev < 0 ? [] : [prev];
    let ids = ctx.slice();
    let done = this.#text(ids).length; // characters of decode(ids) already handed out
    return {
      push: (id: number): string => {
        ids.push(id);
        const text = this.#text(ids);
        if (text.endsWith('\uFFFD')) return '';
        const out = text.slice(done);
        done = text.length;
        if (ids.length > 24) { // keep the window short: the last few ids become the context
          ctx = ids.slice(-4);
          ids = ctx.slice();
          done = this.#text(ids).length;
        }
        return out;
      },
      flush: (): string => {
        const out = this.#text(ids).slice(done);
        done += out.length;
        return out;
      },
    };
  }

  /** Renders the chat template (tokenizer_config.json) for messages, off the JS thread (lib/tokenizers/template.ts). */
  async applyChatTemplate(messages: readonly ChatMessage[], options: ChatTemplateOptions = {}): Promise<string> {
    if (this.chatTemplate === null) throw new UnsupportedError('This model has no chat template (tokenizer_config.json chat_template)');
    if (!Array.isArray(messages) || messages.length === 0) throw new InvalidArgumentError('Expected a non-empty array of { role, content } messages for messages');
    messages.forEach((m, i) => {
      if (typeof m !== 'object' || m === null || typeof m.role !== 'string' || typeof m.content !== 'string') {
        throw new InvalidArgumentError(`Expected { role: string, content: string } for messages[${i}] but received ${JSON.stringify(m)}`);
      }
    });
    const addGenerationPrompt = options.addGenerationPrompt ?? true;
    if (typeof addGenerationPrompt !== 'boolean') throw new InvalidArgumentError(`Expected a boolean for addGenerationPrompt but received ${String(addGenerationPrompt)}`);
    return renderTemplate(this.chatTemplate, { messages, add_generation_prompt: addGenerationPrompt, ...this.#specials });
  }

  /** The library's encode; its failures are ModelFormatErrors. */
  #library(text: string, special: boolean): number[] {
    try {
      return this.#tok.encode(text, { add_special_tokens: special }).ids.slice();
    } catch (e) {
      throw new ModelFormatError(`The tokenizer ${this.#file} failed to encode the text: ${(e as Error).message}`, { cause: e });
    }
  }

  /** Ids of the text; ids the library could not map (no unk_token) are a ModelFormatError. */
  #encode(text: string, special: boolean): number[] {
    const ids = this.#library(text, special);
    for (const id of ids) {
      if (!Number.isInteger(id) || id < 0 || id >= this.vocabSize) {
        throw new ModelFormatError(`The tokenizer ${this.#file} has no id for part of the text (it has no unk_token) or gave id ${String(id)}`);
      }
    }
    return ids;
  }

  /** The library's decode of the ids it knows (ids of the model's vocabulary beyond the tokenizer's print nothing). */
  #text(ids: readonly number[]): string {
    const known = ids.filter((id) => this.#tok.id_to_token(id) !== undefined);
    if (known.length === 0) return '';
    try {
      return this.#tok.decode(known, { skip_special_tokens: true });
    } catch (e) {
      if (e instanceof EetError) throw e;
      throw new ModelFormatError(`The tokenizer ${this.#file} failed to decode ids: ${(e as Error).message}`, { cause: e });
    }
  }
}

/** chat_template: a string, or a list of { name, template } (the 'default' one is used). */
function pickTemplate(v: unknown): string | null {
  if (typeof v === 'string') return v;
  if (Array.isArray(v)) {
    const d = v.find((t) => typeof t === 'object' && t !== null && (t as Json).name === 'default');
    if (d && typeof (d as Json).template === 'string') return (d as Json).template as string;
  }
  return null;
}

/**
 * Loads dir/tokenizer.json and dir/tokenizer_config.json (optional); `vocabSize` is the model's vocabulary, which
 * every id of the tokenizer must be below.
 */
export async function loadHfTokenizer(dir: string, ids: { bos: number | null; eos: number | null },
  { vocabSize, signal }: { vocabSize?: number; signal?: AbortSignal } = {}): Promise<HfTokenizer> {
  const file = path.join(dir, 'tokenizer.json');
  if (!fs.existsSync(file)) throw new ModelFormatError(`No tokenizer found for ${dir}: ${file} does not exist`);
  const json = (await readJsonObject(file, false, { maxBytes: READ_LIMITS.tokenizerJson, signal }))!;
  const config = (await readJsonObject(path.join(dir, 'tokenizer_config.json'), true, { signal })) ?? {};
  return new HfTokenizer(json, config, ids, file, vocabSize);
}

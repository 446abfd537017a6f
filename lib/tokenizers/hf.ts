// Hugging Face tokenizers (tokenizer.json through @huggingface/tokenizers) and chat templates
// (tokenizer_config.json's chat_template through @huggingface/jinja), in the shape Model uses.
//
// BOS rules: the tokenizer's post-processor adds its special tokens (Llama's <s>, BERT's [CLS] … [SEP]);
// tokenizer_config.json's add_bos_token, when given, then forces BOS on (prepended if absent) or off. A chat
// prompt is rendered text that already holds its special tokens, so it is encoded without adding any (as
// transformers' apply_chat_template does).
// Decoding skips special tokens. The streaming decoder decodes a short window of ids with context and hands out
// the new suffix, holding back text that ends in an incomplete UTF-8 sequence (U+FFFD).
import * as fs from 'fs';
import * as path from 'path';
import { Template } from '@huggingface/jinja';
import { Tokenizer as HfTokenizerImpl } from '@huggingface/tokenizers';
import { InvalidArgumentError, ModelFormatError, UnsupportedError } from '../errors';
import type { TokenDecoder } from '../generate/text';
import { READ_LIMITS } from '../loaders/files';
import { readJsonObject } from '../loaders/hf';

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

export class HfTokenizer {
  readonly vocabSize: number;
  readonly bos: number;
  readonly eos: number;
  readonly chatTemplate: string | null;
  readonly #tok: HfTokenizerImpl;
  readonly #addBos: boolean | undefined;
  readonly #specials: Record<string, string>;

  constructor(tokenizerJson: Json, tokenizerConfig: Json, ids: { bos: number | null; eos: number | null }, file = 'tokenizer.json') {
    try {
      this.#tok = new HfTokenizerImpl(tokenizerJson, tokenizerConfig);
    } catch (e) {
      throw new ModelFormatError(`Invalid tokenizer ${file}: ${(e as Error).message}`, { cause: e });
    }
    this.vocabSize = this.#tok.get_vocab(true).size;
    this.#specials = {};
    for (const k of ['bos_token', 'eos_token', 'unk_token', 'pad_token', 'sep_token', 'cls_token', 'mask_token']) {
      const t = tokenText(tokenizerConfig[k]);
      if (t !== null) this.#specials[k] = t;
    }
    const idOf = (k: string): number | undefined => (this.#specials[k] === undefined ? undefined : this.#tok.token_to_id(this.#specials[k]));
    this.bos = idOf('bos_token') ?? ids.bos ?? -1;
    this.eos = idOf('eos_token') ?? ids.eos ?? -1;
    const a = tokenizerConfig.add_bos_token;
    this.#addBos = typeof a === 'boolean' ? a : undefined;
    this.chatTemplate = pickTemplate(tokenizerConfig.chat_template);
  }

  /** Token ids of text; `special` (default true) adds the model's special tokens (BOS rules above). */
  encode(text: string, special = true): number[] {
    const ids = this.#tok.encode(text, { add_special_tokens: special }).ids.slice();
    if (!special || this.bos < 0 || this.#addBos === undefined) return ids;
    if (this.#addBos && ids[0] !== this.bos) ids.unshift(this.bos);
    if (!this.#addBos && ids[0] === this.bos && this.#tok.encode(text, { add_special_tokens: false }).ids[0] !== this.bos) ids.shift();
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

  /** Renders the chat template (tokenizer_config.json) for messages. */
  applyChatTemplate(messages: readonly ChatMessage[], options: ChatTemplateOptions = {}): string {
    if (this.chatTemplate === null) throw new UnsupportedError('This model has no chat template (tokenizer_config.json chat_template)');
    if (!Array.isArray(messages) || messages.length === 0) throw new InvalidArgumentError('Expected a non-empty array of { role, content } messages for messages');
    messages.forEach((m, i) => {
      if (typeof m !== 'object' || m === null || typeof m.role !== 'string' || typeof m.content !== 'string') {
        throw new InvalidArgumentError(`Expected { role: string, content: string } for messages[${i}] but received ${JSON.stringify(m)}`);
      }
    });
    const addGenerationPrompt = options.addGenerationPrompt ?? true;
    if (typeof addGenerationPrompt !== 'boolean') throw new InvalidArgumentError(`Expected a boolean for addGenerationPrompt but received ${String(addGenerationPrompt)}`);
    try {
      return new Template(this.chatTemplate).render({ messages, add_generation_prompt: addGenerationPrompt, ...this.#specials });
    } catch (e) {
      throw new ModelFormatError(`The chat template failed: ${(e as Error).message}`, { cause: e });
    }
  }

  #text(ids: readonly number[]): string {
    return ids.length ? this.#tok.decode(ids as number[], { skip_special_tokens: true }) : '';
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

/** Loads dir/tokenizer.json (at most READ_LIMITS.tokenizerJson bytes) and dir/tokenizer_config.json (optional). */
export async function loadHfTokenizer(dir: string, ids: { bos: number | null; eos: number | null },
  { signal }: { signal?: AbortSignal } = {}): Promise<HfTokenizer> {
  const file = path.join(dir, 'tokenizer.json');
  if (!fs.existsSync(file)) throw new ModelFormatError(`No tokenizer found for ${dir}: ${file} does not exist`);
  const json = (await readJsonObject(file, false, { maxBytes: READ_LIMITS.tokenizerJson, signal }))!;
  const config = (await readJsonObject(path.join(dir, 'tokenizer_config.json'), true, { signal })) ?? {};
  return new HfTokenizer(json, config, ids, file);
}

// llama2.c tokenizer files (tokenizer.bin, tok512.bin): SentencePiece pieces with scores, and run.c's exact
// encode and decode rules.
//
// File: uint32 max_token_length, then for each id: float32 score, int32 len, len raw bytes (no NUL). The
// number of pieces is not stored; it must equal the model's vocab_size.
//
// encode (run.c): BOS (1); then, when the text is non-empty, the " " piece as a dummy prefix; then each UTF-8
// code point's piece, or its bytes as byte-fallback ids (byte + 3) when the code point has no piece; then
// repeatedly merge the leftmost adjacent pair whose concatenation is a piece with the highest score.
//
// decode (run.c): a piece right after BOS loses its leading space; `<0xXX>` pieces are the raw byte; a piece of
// one byte that is neither printable ASCII nor whitespace is dropped (run.c's safe_printf). One departure:
// run.c also drops single bytes >= 0x80, so it cannot print byte-fallback UTF-8; here they are kept and
// assembled into characters (a partial character waits for its next bytes: streaming-safe).
import { ModelFormatError } from '../errors';
import { READ_LIMITS, readRegularFile } from '../loaders/files';
import { integerIn } from '../validate';
import { mergePairs } from './merge';

export const BOS = 1;
export const EOS = 2;

const BYTE_PIECE = /^<0x([0-9A-Fa-f]{2})>$/;

export class Llama2cTokenizer {
  readonly vocabSize: number;
  readonly maxTokenLength: number;
  readonly bos: number;
  readonly eos: number;
  /** Whether encode() puts BOS first (GGUF tokenizer.ggml.add_bos_token; always for llama2.c files). */
  readonly addBos: boolean;
  /** Byte-fallback id of each byte value (the `<0xXX>` pieces). */
  readonly #byteIds: Int32Array;
  /** Each piece's bytes as a latin1 string (one char per byte). */
  readonly #pieces: string[];
  readonly #scores: Float32Array;
  /** latin1 piece -> lowest id holding it. */
  readonly #ids = new Map<string, number>();
  /** What each id prints, after byte-piece conversion; null when safe_printf drops it. */
  readonly #bytes: (Uint8Array | null)[];
  readonly #bytesAfterBos: (Uint8Array | null)[];
  readonly #spaceId: number;

  /** @internal use loadLlama2cTokenizer / parseLlama2cTokenizer */
  constructor(pieces: string[], scores: Float32Array, maxTokenLength: number,
    special: { bos?: number; eos?: number; addBos?: boolean; byteIds?: Int32Array } = {}) {
    this.bos = special.bos ?? BOS;
    this.eos = special.eos ?? EOS;
    this.addBos = special.addBos ?? true;
    this.#byteIds = special.byteIds ?? Int32Array.from({ length: 256 }, (_, b) => b + 3);
    this.#pieces = pieces;
    this.#scores = scores;
    this.vocabSize = pieces.length;
    this.maxTokenLength = maxTokenLength;
    pieces.forEach((p, id) => { if (!this.#ids.has(p)) this.#ids.set(p, id); });
    this.#spaceId = this.#ids.get(' ') ?? -1;
    this.#bytes = pieces.map((p) => printable(p));
    this.#bytesAfterBos = pieces.map((p) => printable(p.startsWith(' ') ? p.slice(1) : p));
  }

  /** The raw piece of an id (byte-fallback pieces as their `<0xXX>` text). */
  piece(id: number): string {
    this.#check(id);
    return Buffer.from(this.#pieces[id], 'latin1').toString('utf8');
  }

  score(id: number): number {
    this.#check(id);
    return this.#scores[id];
  }

  /** run.c's encode with BOS first (no EOS; no BOS either when addBos is false). */
  encode(text: string): number[] {
    const bytes = Buffer.from(text, 'utf8');
    const tokens: number[] = [];
    if (bytes.length > 0) {
      if (this.#spaceId < 0) throw new ModelFormatError('The tokenizer has no " " piece (needed as the dummy prefix)');
      tokens.push(this.#spaceId);
    }
    // Code points: a lead byte starts a group; up to 4 bytes (run.c's grouping, even for invalid UTF-8).
    let start = 0;
    for (let i = 0; i < bytes.length; i++) {
      if ((bytes[i] & 0xc0) !== 0x80) start = i;
      const next = i + 1 < bytes.length ? bytes[i + 1] : 0;
      if ((next & 0xc0) === 0x80 && i + 1 - start < 4) continue;
      const id = this.#ids.get(bytes.toString('latin1', start, i + 1));
      if (id !== undefined) tokens.push(id);
      else for (let j = start; j <= i; j++) tokens.push(this.#byteIds[bytes[j]]);
      start = i + 1;
    }
    const merged = this.#merge(tokens);
    return this.addBos ? [this.bos, ...merged] : merged;
  }

  /** Greedy merges: the highest-scoring pair, leftmost on ties (run.c's rule; lib/tokenizers/merge.ts). */
  #merge(tokens: number[]): number[] {
    return mergePairs(tokens, (a, b) => this.#ids.get(this.#pieces[a] + this.#pieces[b]) ?? -1, (id) => this.#scores[id]);
  }

  /** The bytes run.c prints for `id` after `prev` (empty when dropped). */
  pieceBytes(prev: number, id: number): Uint8Array {
    this.#check(id);
    return (prev === this.bos ? this.#bytesAfterBos[id] : this.#bytes[id]) ?? EMPTY;
  }

  /**
   * Decodes ids as run.c prints them. `prev` is the token before ids[0] (BOS by default, so a first piece loses
   * its leading space as after a prompt's BOS); BOS and EOS themselves print nothing here.
   */
  decode(ids: readonly number[], prev = this.bos): string {
    const d = this.decoder(prev);
    let s = '';
    for (const id of ids) s += d.push(id);
    return s + d.flush();
  }

  /** A streaming decoder: push ids one at a time; text comes out as soon as its UTF-8 is complete. */
  decoder(prev = this.bos): { push(id: number): string; flush(): string } {
    const utf8 = new TextDecoder('utf-8', { fatal: false });
    let last = prev;
    return {
      push: (id: number): string => {
        const bytes = id === this.bos || id === this.eos ? EMPTY : this.pieceBytes(last, id);
        last = id;
        return bytes.length ? utf8.decode(bytes, { stream: true }) : '';
      },
      flush: (): string => utf8.decode(),
    };
  }

  #check(id: number): void {
    integerIn('token id', id, 0, this.vocabSize - 1);
  }
}

const EMPTY = new Uint8Array(0);

/** What run.c prints for a piece (latin1 string): byte pieces become the byte; safe_printf's drop rule. */
function printable(piece: string): Uint8Array | null {
  const m = BYTE_PIECE.exec(piece);
  const bytes = m ? Uint8Array.of(parseInt(m[1], 16)) : Buffer.from(piece, 'latin1');
  if (bytes.length === 0) return null;
  if (bytes.length === 1) {
    const b = bytes[0];
    const isPrint = b >= 0x20 && b <= 0x7e;
    const isSpace = b === 0x20 || (b >= 0x09 && b <= 0x0d);
    if (!isPrint && !isSpace && b < 0x80) return null;
  }
  return bytes;
}

/** Parses a tokenizer file's contents; `expectedVocab` (the model's vocab_size) is checked when given. */
export function parseLlama2cTokenizer(buf: Buffer, file = 'tokenizer', expectedVocab?: number): Llama2cTokenizer {
  const fail = (what: string): never => { throw new ModelFormatError(`Invalid llama2.c tokenizer ${file}: ${what}`); };
  if (buf.length < 4) fail(`the file has ${buf.length} bytes, fewer than the 4-byte max_token_length header`);
  const maxLen = buf.readUInt32LE(0);
  if (maxLen < 1 || maxLen > 65536) fail(`max_token_length is ${maxLen}, expected 1..65536`);
  const pieces: string[] = [];
  const scores: number[] = [];
  let off = 4;
  while (off < buf.length) {
    const id = pieces.length;
    if (expectedVocab !== undefined && id >= expectedVocab) {
      fail(`${buf.length - off} bytes follow the ${expectedVocab} pieces the model's vocab_size calls for`);
    }
    if (off + 8 > buf.length) fail(`truncated in the header of piece ${id} at byte ${off} (file size ${buf.length})`);
    const score = buf.readFloatLE(off);
    const len = buf.readInt32LE(off + 4);
    if (!Number.isFinite(score)) fail(`piece ${id} has a non-finite score ${score}`);
    if (len < 0 || len > maxLen) fail(`piece ${id} has length ${len}, expected 0..${maxLen} (max_token_length)`);
    off += 8;
    if (off + len > buf.length) fail(`truncated in piece ${id}: ${len} bytes needed at byte ${off}, the file has ${buf.length}`);
    pieces.push(buf.toString('latin1', off, off + len));
    scores.push(score);
    off += len;
  }
  if (expectedVocab !== undefined && pieces.length !== expectedVocab) {
    fail(`it has ${pieces.length} pieces but the model's vocab_size is ${expectedVocab}`);
  }
  if (pieces.length < 259) fail(`it has ${pieces.length} pieces; ids 0..258 (unk, BOS, EOS, 256 byte pieces) are required`);
  // run.c's encode starts every non-empty text with the " " piece (the dummy prefix): without it no prompt encodes.
  if (!pieces.includes(' ')) fail('it has no " " piece (the dummy prefix every encoded text starts with)');
  for (let b = 0; b < 256; b++) {
    const m = BYTE_PIECE.exec(pieces[b + 3]);
    if (!m || parseInt(m[1], 16) !== b) fail(`piece ${b + 3} should be the byte piece <0x${b.toString(16).toUpperCase().padStart(2, '0')}>`);
  }
  return new Llama2cTokenizer(pieces, Float32Array.from(scores), maxLen);
}

/** Reads and parses a tokenizer file (a regular file of at most READ_LIMITS.llama2cTokenizer bytes). */
export async function loadLlama2cTokenizer(file: string, expectedVocab?: number, signal?: AbortSignal): Promise<Llama2cTokenizer> {
  const buf = await readRegularFile(file, 'tokenizer', READ_LIMITS.llama2cTokenizer, signal);
  return parseLlama2cTokenizer(buf, file, expectedVocab);
}

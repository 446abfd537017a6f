// What Model needs of a tokenizer (lib/tokenizers/llama2c.ts: SentencePiece; lib/tokenizers/bpe.ts: byte-level BPE).
export interface TextTokenizer {
  readonly vocabSize: number;
  readonly bos: number;
  readonly eos: number;
  /** Token ids (BOS first when the tokenizer adds one). */
  encode(text: string): number[];
  /** Text of the ids; `prev` is the token before them. */
  decode(ids: readonly number[], prev?: number): string;
  /** A streaming decoder: text comes out as soon as its UTF-8 is complete. */
  decoder(prev?: number): { push(id: number): string; flush(): string };
}

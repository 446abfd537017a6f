// Seeded random prompts for the bench. Every prompt the bench sends is fresh: the context's prefix cache would
// otherwise serve a repeated prompt's full KV blocks and the bench would time less prefill than it claims.
export class TokenSource {
  #x: number;

  constructor(readonly vocabSize: number, seed: number) {
    this.#x = Math.imul(seed + 1, 2654435761) >>> 0 || 1;
  }

  /** xorshift32: fast, seedable, good enough for token ids. */
  next(): number {
    let x = this.#x;
    x ^= x << 13; x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5; x >>>= 0;
    this.#x = x;
    return x;
  }

  /** An integer in [lo, hi]. */
  int(lo: number, hi: number): number {
    return lo + (this.next() % (hi - lo + 1));
  }

  /** n token ids above 0..2 (unk, BOS, EOS in llama2.c and SentencePiece vocabularies: no prompt asks to stop). */
  ids(n: number): Int32Array {
    const out = new Int32Array(n);
    const span = Math.max(1, this.vocabSize - 3);
    for (let i = 0; i < n; i++) out[i] = Math.min(this.vocabSize - 1, 3 + (this.next() % span));
    return out;
  }
}

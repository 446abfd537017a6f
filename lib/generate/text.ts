// The text of one generated sequence, built token by token: streaming UTF-8 decoding (the tokenizer's
// decoder), stop strings, and how much of it is safe to hand out yet. Text that could be the start of a stop
// string is held back until it is known not to be one, so streamed text never has to be taken back.

export interface TokenDecoder {
  push(id: number): string;
  flush(): string;
}

export class SequenceText {
  #decoder: TokenDecoder;
  readonly #stop: readonly string[];
  /** Everything decoded so far (may run past a stop string until it is cut). */
  #full = '';
  /** Characters of #full already handed out. */
  #emitted = 0;
  #stopped = false;

  constructor(decoder: TokenDecoder, stop: readonly string[]) {
    this.#decoder = decoder;
    this.#stop = stop;
  }

  /** The final text once finished; before that, what has been handed out. */
  get text(): string { return this.#full.slice(0, this.#emitted); }
  get stopped(): boolean { return this.#stopped; }

  /** Adds a token; returns the text that became safe to hand out (cut before a stop string when one appears). */
  push(id: number): string {
    if (this.#stopped) return '';
    this.#full += this.#decoder.push(id);
    return this.#release(false);
  }

  /** The sequence ended: returns whatever was held back (still cut at a stop string). */
  finish(): string {
    if (this.#stopped) return '';
    this.#full += this.#decoder.flush();
    return this.#release(true);
  }

  #release(final: boolean): string {
    let cut = -1;
    for (const s of this.#stop) {
      const at = this.#full.indexOf(s, this.#emitted);
      if (at !== -1 && (cut === -1 || at < cut)) cut = at;
    }
    let end = this.#full.length;
    if (cut !== -1) {
      this.#stopped = true;
      end = cut;
      this.#full = this.#full.slice(0, cut);
    } else if (!final) {
      end -= this.#heldBack();
    }
    const out = this.#full.slice(this.#emitted, end);
    this.#emitted = end;
    return out;
  }

  /** Length of the longest suffix of #full that is a proper prefix of a stop string. */
  #heldBack(): number {
    let hold = 0;
    for (const s of this.#stop) {
      for (let n = Math.min(s.length - 1, this.#full.length - this.#emitted); n > hold; n--) {
        if (this.#full.endsWith(s.slice(0, n))) { hold = n; break; }
      }
    }
    return hold;
  }
}

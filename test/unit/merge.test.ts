// The linearithmic SentencePiece merge (lib/tokenizers/merge.ts) against run.c's loop, written here as run.c has it:
// rescan every adjacent pair, merge the best-scoring one (leftmost on ties, scores at or below -1e10 never), repeat.
import * as fs from 'fs';
import { mergePairs } from '../../lib/tokenizers/merge';
import { Llama2cTokenizer, loadLlama2cTokenizer } from '../../lib/tokenizers/llama2c';
import { TOKENIZER, references } from '../util/stories260k';

function runcMerge(tokens: number[], pairOf: (a: number, b: number) => number, score: (id: number) => number): number[] {
  const t = tokens.slice();
  for (;;) {
    let best = -1e10, at = -1, id = -1;
    for (let i = 0; i + 1 < t.length; i++) {
      const p = pairOf(t[i], t[i + 1]);
      if (p !== -1 && score(p) > best) { best = score(p); at = i; id = p; }
    }
    if (at === -1) return t;
    t.splice(at, 2, id);
  }
}

/** A deterministic generator (the tests must not depend on Math.random). */
function lcg(seed: number): () => number {
  let s = seed >>> 0;
  return () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32);
}

/** A random vocabulary over a small alphabet: pieces are strings, the pair table concatenates, scores tie often. */
function randomVocab(rand: () => number, alphabet: number, extra: number, withEmpty: boolean) {
  const pieces: string[] = [];
  const ids = new Map<string, number>();
  const add = (p: string): void => { if (!ids.has(p)) { ids.set(p, pieces.length); pieces.push(p); } };
  for (let c = 0; c < alphabet; c++) add(String.fromCharCode(97 + c));
  if (withEmpty) add('');
  while (pieces.length < alphabet + extra) {
    const a = pieces[Math.floor(rand() * pieces.length)], b = pieces[Math.floor(rand() * pieces.length)];
    if ((a + b).length <= 6) add(a + b);
  }
  // Few distinct scores: ties everywhere; some at or below run.c's -1e10 floor.
  const scores = pieces.map(() => [-3, -2, -1, 0, 1, -1e10, -2e10][Math.floor(rand() * 7)]);
  return {
    pieces,
    pairOf: (a: number, b: number): number => ids.get(pieces[a] + pieces[b]) ?? -1,
    score: (id: number): number => scores[id],
  };
}

describe('mergePairs equals run.c\'s merge loop', () => {
  for (const [alphabet, extra, withEmpty] of [[2, 6, false], [3, 20, false], [4, 40, true], [6, 80, true], [26, 300, false]] as const) {
    test(`random vocabularies (alphabet ${alphabet}, ${extra} merged pieces${withEmpty ? ', an empty piece' : ''}), 200 texts each`, () => {
      const rand = lcg(alphabet * 1000 + extra);
      for (let v = 0; v < 10; v++) {
        const voc = randomVocab(rand, alphabet, extra, withEmpty);
        for (let k = 0; k < 20; k++) {
          const n = [0, 1, 2, 3, 17, 64, 301][Math.floor(rand() * 7)];
          const tokens = Array.from({ length: n }, () => Math.floor(rand() * alphabet));
          expect(mergePairs(tokens, voc.pairOf, voc.score)).toEqual(runcMerge(tokens, voc.pairOf, voc.score));
        }
      }
    });
  }

  test('work is linear in the tokens: a few pair lookups and score reads per token', () => {
    const rand = lcg(7);
    const voc = randomVocab(rand, 3, 40, false);
    const n = 100_000;
    const tokens = Array.from({ length: n }, () => Math.floor(rand() * 3));
    let lookups = 0, reads = 0;
    const out = mergePairs(tokens, (a, b) => (lookups++, voc.pairOf(a, b)), (id) => (reads++, voc.score(id)));
    expect(out.length).toBeLessThan(n);
    // run.c's loop reads a score per pair per merge: about n²/2 here. The heap pushes at most 3n entries, each read
    // once, and each pop or push looks one pair up.
    expect(reads).toBeLessThanOrEqual(3 * n);
    expect(lookups).toBeLessThanOrEqual(6 * n);
  });
});

describe('the llama2.c tokenizer with the linearithmic merge', () => {
  let tok: Llama2cTokenizer;
  beforeAll(async () => { tok = await loadLlama2cTokenizer(TOKENIZER, 512); });

  test('12,000 characters of story text: the same ids as run.c\'s loop on the same pieces', () => {
    // The pieces and scores as the file has them, fed to run.c's loop.
    const buf = fs.readFileSync(TOKENIZER);
    const pieces: string[] = [];
    const scores: number[] = [];
    for (let off = 4; off < buf.length;) {
      scores.push(buf.readFloatLE(off));
      const len = buf.readInt32LE(off + 4);
      pieces.push(buf.toString('latin1', off + 8, off + 8 + len));
      off += 8 + len;
    }
    const ids = new Map<string, number>();
    pieces.forEach((p, i) => { if (!ids.has(p)) ids.set(p, i); });
    const text = references().map((r) => r.stdout).join(' ').repeat(20).slice(0, 12_000);
    const encoded = tok.encode(text);
    // encode = BOS + merge(" " + one id per character or its byte-fallback ids); the story text is ASCII.
    const start = [ids.get(' ')!, ...Buffer.from(text, 'latin1').toString('latin1').split('').map((c) => ids.get(c) ?? c.charCodeAt(0) + 3)];
    const expected = runcMerge(start, (a, b) => ids.get(pieces[a] + pieces[b]) ?? -1, (id) => scores[id]);
    expect(encoded).toEqual([1, ...expected]);
  });
});

// SentencePiece's greedy merge (run.c's encode loop) in O(n log n): repeatedly merge the adjacent pair whose
// concatenation is the best-scoring piece, the leftmost one on ties, until no pair is a piece. run.c rescans every
// pair after each merge (O(n²): 8 s for 100K characters); here the tokens are a doubly linked list and the candidate
// pairs sit in a binary heap ordered by (score descending, position ascending). A merge only changes the pairs on
// either side of it, so it pushes at most two entries; entries made stale by an earlier merge are recognised when
// popped (their left token changed or their right neighbour is gone) and dropped. Positions are the tokens' indices in
// the input: merging never reorders tokens, so index order is left-to-right order and ties break exactly as run.c's.

/** run.c starts its search at best_score = -1e10: a pair scoring at or below that is never merged. */
const NO_SCORE = -1e10;

/**
 * Merges `tokens` (ids) in place of a copy and returns the result. `pairOf(a, b)` is the id of the piece a+b or -1;
 * `score(id)` its score.
 */
export function mergePairs(tokens: readonly number[], pairOf: (a: number, b: number) => number, score: (id: number) => number): number[] {
  const n = tokens.length;
  if (n < 2) return tokens.slice();
  const tok = Int32Array.from(tokens);
  const next = new Int32Array(n);
  const prev = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    next[i] = i + 1 < n ? i + 1 : -1;
    prev[i] = i - 1;
  }
  // Heap entries: the left token's index, the id it held and the merged id. At most n - 1 initial pairs and two per
  // merge (n - 1 merges at most).
  const cap = 3 * n;
  const eLeft = new Int32Array(cap);
  const eTok = new Int32Array(cap);
  const eId = new Int32Array(cap);
  const eScore = new Float64Array(cap);
  const heap = new Int32Array(cap);
  let entries = 0;
  let size = 0;

  // a before b: higher score, then the smaller (leftmost) position.
  const before = (a: number, b: number): boolean => eScore[a] > eScore[b] || (eScore[a] === eScore[b] && eLeft[a] < eLeft[b]);
  const push = (left: number): void => {
    const right = next[left];
    if (right < 0) return;
    const id = pairOf(tok[left], tok[right]);
    if (id < 0) return;
    const s = score(id);
    if (!(s > NO_SCORE)) return;
    const e = entries++;
    eLeft[e] = left;
    eTok[e] = tok[left];
    eId[e] = id;
    eScore[e] = s;
    let i = size++;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!before(e, heap[parent])) break;
      heap[i] = heap[parent];
      i = parent;
    }
    heap[i] = e;
  };
  const pop = (): number => {
    const top = heap[0];
    const last = heap[--size];
    let i = 0;
    for (;;) {
      const l = 2 * i + 1;
      if (l >= size) break;
      const c = l + 1 < size && before(heap[l + 1], heap[l]) ? l + 1 : l;
      if (!before(heap[c], last)) break;
      heap[i] = heap[c];
      i = c;
    }
    heap[i] = last;
    return top;
  };

  // An entry is current when its left token is alive, still holds the id it held, and the pair it now forms with its
  // right neighbour merges to the entry's id (then its score and position, hence its heap order, are the current
  // pair's). Whenever a token changes, the pairs on both sides of it get fresh entries; older ones fail this check.
  const alive = new Uint8Array(n).fill(1);
  for (let i = 0; i + 1 < n; i++) push(i);
  while (size > 0) {
    const e = pop();
    const left = eLeft[e];
    if (!alive[left] || tok[left] !== eTok[e]) continue;
    const right = next[left];
    if (right < 0 || pairOf(tok[left], tok[right]) !== eId[e]) continue;
    tok[left] = eId[e];
    alive[right] = 0;
    next[left] = next[right];
    if (next[right] >= 0) prev[next[right]] = left;
    if (prev[left] >= 0) push(prev[left]);
    push(left);
  }
  const out: number[] = [];
  for (let i = 0; i >= 0; i = next[i]) out.push(tok[i]);
  return out;
}

// The sample op's cpu reference alone (in-process): different seeds give different tokens, the draw follows the
// softmax distribution (frequencies over 4000 seeds within 5 sigma), the penalties are the formula of ops.h
// computed here in JS (greedy token and log-probability); and non-finite logits (NaN, +-infinity) give token -1 on
// every backend, also from any block of a multi-block row.
import { normal, randInt } from '../util/random';
import { binding } from '../../lib/binding';
import { deviceReport } from '../../lib/devices';
import { PENALTIES, Row, SEED_ROWS, repeatRow, seedRows } from './sample_rows';

// ---- the cpu reference alone ----------------------------------------------------------------------------------
/** Each row's history: its ids (prompt then generated) and where the generated ones begin. */
interface History { ids: number[]; start: number }

function cpuSample(vocab: number, logits: Float32Array, rows: Row[], history?: History[], device = 'cpu'): { tokens: Int32Array; logprobs: Float32Array } {
  const b = binding();
  const batch = rows.length;
  const tLogits = new b.AddonTensor(device, 0, logits.length, logits);
  const tOut = new b.AddonTensor(device, 3, batch, null);
  const tLogprob = new b.AddonTensor(device, 0, batch, null);
  const stride = history ? Math.max(1, ...history.map((h) => h.ids.length)) : 0;
  const hist = new Int32Array(batch * stride);
  history?.forEach((h, i) => hist.set(h.ids, i * stride));
  const tHistory = history ? new b.AddonTensor(device, 3, hist.length, hist) : null;
  try {
    b.runOpSync('sample', device, {
      dtype: 0,
      batch,
      vocab,
      logits: tLogits,
      tokensOut: tOut,
      logprobOut: tLogprob,
      temperature: rows.map((r) => r.temperature),
      topK: rows.map((r) => r.topK),
      topP: rows.map((r) => r.topP),
      repetitionPenalty: rows.map((r) => r.penalty),
      presencePenalty: rows.map((r) => r.presence ?? 0),
      frequencyPenalty: rows.map((r) => r.frequency ?? 0),
      seed: rows.map((r) => r.seed),
      step: rows.map((r) => r.step),
      ...(history
        ? { history: tHistory, historyStride: stride, historyLen: history.map((h) => h.ids.length), historyStart: history.map((h) => h.start) }
        : {}),
    });
    return { tokens: tOut.readSync() as Int32Array, logprobs: tLogprob.readSync() as Float32Array };
  } finally {
    tLogits.dispose();
    tOut.dispose();
    tLogprob.dispose();
    tHistory?.dispose();
  }
}

/** ops.h step 1 in fp64: repetition over the whole history, frequency and presence over its generated part. */
function penalised(l: ArrayLike<number>, r: Row, h: History): number[] {
  const out = Array.from(l);
  const count = new Map<number, number>();
  h.ids.slice(h.start).forEach((id) => count.set(id, (count.get(id) ?? 0) + 1));
  for (const id of new Set(h.ids)) {
    let v = out[id] > 0 ? out[id] / r.penalty : out[id] * r.penalty;
    const c = count.get(id) ?? 0;
    if (c > 0) v -= (r.frequency ?? 0) * c + (r.presence ?? 0);
    out[id] = v;
  }
  return out;
}

describe('sample (cpu reference)', () => {
  test('different seeds and steps give different tokens', () => {
    const vocab = 512;
    const { tokens } = cpuSample(vocab, repeatRow(vocab, 700)(), seedRows(vocab).map((r) => ({ ...r, topK: 0, topP: 1 })));
    expect(new Set(tokens).size).toBeGreaterThanOrEqual(SEED_ROWS / 2);
  });

  test('draws follow softmax(l / T) restricted by top-k', () => {
    const vocab = 6;
    const l = [0.5, -1, 2, 1, 0, 1.5];
    const n = 4000;
    const rows = (topK: number): Row[] =>
      Array.from({ length: n }, (_, i) => ({ temperature: 0.8, topK, topP: 1, penalty: 1, seed: i, step: 3 * i + 1 }));
    const logits = new Float32Array(n * vocab);
    for (let r = 0; r < n; r++) logits.set(l, r * vocab);
    for (const topK of [0, 3]) {
      const kept = l.map((v) => (topK === 0 || v >= [...l].sort((a, b) => b - a)[topK - 1] ? Math.exp(v / 0.8) : 0));
      const z = kept.reduce((a, b) => a + b, 0);
      const counts = new Array(vocab).fill(0);
      for (const t of cpuSample(vocab, logits, rows(topK)).tokens) counts[t]++;
      kept.forEach((e, i) => {
        const p = e / z;
        expect(Math.abs(counts[i] - n * p)).toBeLessThanOrEqual(5 * Math.sqrt(n * p * (1 - p)) + 1e-9);
      });
    }
  });

  test('presence and frequency count only the generated part of the history; repetition counts all of it', () => {
    // logits [1, 2, 3, 0.5]; prompt [2], generated [2, 1]: id 2 occurs twice (once generated), id 1 once
    const l = Float32Array.of(1, 2, 3, 0.5);
    const greedy = (p: Partial<Row>): Row => ({ temperature: 0, topK: 0, topP: 1, penalty: 1, seed: 1, step: 0, ...p });
    const cases: Array<[Partial<Row>, History, number]> = [
      [{}, { ids: [2, 2, 1], start: 1 }, 2],
      [{ frequency: 1, presence: 0.6 }, { ids: [2, 2, 1], start: 1 }, 2], // 3 - 1 - 0.6 = 1.4 > 1
      [{ frequency: 2, presence: 0.6 }, { ids: [2, 2, 1], start: 1 }, 0], // 3 - 2 - 0.6 = 0.4 < 1
      [{ frequency: 1 }, { ids: [2, 2, 2], start: 0 }, 1], // 3 - 3 = 0: the count is 3
      [{ frequency: 2, presence: 2 }, { ids: [2, 1, 1], start: 1 }, 2], // id 2 only in the prompt: untouched
      [{ frequency: 2, presence: 2 }, { ids: [2, 1, 1], start: 3 }, 2], // nothing generated yet
      [{ penalty: 4 }, { ids: [2, 1, 1], start: 3 }, 0], // repetition sees the prompt: 3 / 4, 2 / 4 < 1
      [{ presence: -2 }, { ids: [3], start: 0 }, 2], // negative encourages: 0.5 + 2 = 2.5, still below 3
      [{ presence: -2, frequency: -0.6 }, { ids: [3], start: 0 }, 3], // 0.5 + 0.6 + 2 = 3.1 > 3
    ];
    for (const [p, h, want] of cases) {
      expect({ p, h, token: cpuSample(4, l, [greedy(p)], [h]).tokens[0] }).toEqual({ p, h, token: want });
    }
  });

  test('penalised greedy tokens and log-probabilities match the formula computed in JS', () => {
    const vocab = 300, batch = PENALTIES.length * 3;
    const logits = normal(batch * vocab, 41, 1.5);
    const rows = PENALTIES.flatMap((p, i) => [0, 1, 2].map((k) => ({ temperature: 0, topK: 0, topP: 1, ...p, seed: i, step: k })));
    const history: History[] = rows.map((_, b) => {
      const ids = Array.from(randInt(40, 50 + b, 0, 12)); // a dozen ids, repeated
      for (const id of new Set(ids)) logits[b * vocab + id] += 2.5; // make them contenders
      return { ids, start: [0, 17, 40][b % 3] };
    });
    const got = cpuSample(vocab, logits, rows, history);
    let changed = 0;
    rows.forEach((r, b) => {
      const raw = logits.subarray(b * vocab, (b + 1) * vocab);
      const l = penalised(raw, r, history[b]);
      const best = l.indexOf(Math.max(...l));
      const mx = l[best];
      const lse = mx + Math.log(l.reduce((a, v) => a + Math.exp(v - mx), 0));
      expect(got.tokens[b]).toBe(best);
      expect(Math.abs(got.logprobs[b] - (l[best] - lse))).toBeLessThan(1e-4);
      if (best !== raw.indexOf(Math.max(...raw))) changed++;
    });
    expect(changed).toBeGreaterThan(rows.length / 4); // the penalties did move tokens
  });

  test('the op runner range-checks the new per-row values before the kernel sees them', () => {
    const l = Float32Array.of(1, 2, 3, 0.5);
    const row: Row = { temperature: 0, topK: 0, topP: 1, penalty: 1, seed: 1, step: 0 };
    expect(() => cpuSample(4, l, [{ ...row, presence: 2.5 }], [{ ids: [1], start: 0 }])).toThrow('Expected presencePenalty[0] in [-2, 2] but received 2.5');
    expect(() => cpuSample(4, l, [{ ...row, frequency: NaN }], [{ ids: [1], start: 0 }])).toThrow(/Expected frequencyPenalty\[0\] in \[-2, 2\]/);
    expect(() => cpuSample(4, l, [row], [{ ids: [1, 2], start: 3 }])).toThrow('Expected historyStart[0] in [0, 2] (historyLen) but received 3');
  });
});

// ops.h: a row with a non-finite penalised logit gets token -1 and a NaN log-probability (the engine's ERR_NUMERIC);
// the other rows of the call are sampled as usual. Every backend, every branch that would otherwise sort, select
// or draw over the bad values (greedy, top-k, top-p, both, penalties that overflow a finite logit).
describe('sample: non-finite logits', () => {
  const devices = ['cpu', 'emu', ...(deviceReport().devices.some((d) => d.kind === 'cuda') ? ['cuda'] : [])];
  const vocab = 300;
  const settings: Array<Partial<Row>> = [
    { temperature: 0 },
    { temperature: 0.8, topK: 40 },
    { temperature: 0.8, topP: 0.9 },
    { temperature: 1, topK: 40, topP: 0.5 },
    { temperature: 1.2 },
  ];
  const bad: Array<[string, (row: Float32Array) => void]> = [
    ['one NaN', (r) => { r[17] = NaN; }],
    ['+infinity', (r) => { r[0] = Infinity; }],
    ['-infinity', (r) => { r[vocab - 1] = -Infinity; }],
    ['all NaN', (r) => r.fill(NaN)],
  ];
  test.each(devices)('%s: the bad rows give -1 and NaN, the good rows their usual token', (device) => {
    const rows: Row[] = [];
    const logits: number[] = [];
    const isBad: boolean[] = [];
    for (const [si, s] of settings.entries()) {
      for (const [bi, [, spoil]] of [...bad.entries(), [bad.length, ['none', () => undefined]] as const]) {
        const l = normal(vocab, 60 + 10 * si + bi, 2);
        spoil(l);
        logits.push(...l);
        rows.push({ temperature: 1, topK: 0, topP: 1, penalty: 1, seed: si, step: bi, ...s });
        isBad.push(bi < bad.length);
      }
    }
    const got = cpuSample(vocab, Float32Array.from(logits), rows, undefined, device);
    const good = cpuSample(vocab, Float32Array.from(logits.filter((_, i) => !isBad[Math.floor(i / vocab)])),
      rows.filter((_, i) => !isBad[i]));
    let g = 0;
    rows.forEach((_, i) => {
      if (isBad[i]) {
        expect({ row: i, token: got.tokens[i], nan: Number.isNaN(got.logprobs[i]) }).toEqual({ row: i, token: -1, nan: true });
      } else {
        expect({ row: i, token: got.tokens[i] }).toEqual({ row: i, token: good.tokens[g++] });
        expect(got.tokens[i]).toBeGreaterThanOrEqual(0);
      }
    });
  });

  // 32000 ids are 16 blocks of the device sampler: the bad value sits at a block's first or last id, in the middle
  // of the row, or in the partial last block; the flag must reach the row's decision from any of them.
  test.each(devices)('%s: multi-block rows: a non-finite value in any block gives -1', (device) => {
    const V = 32000;
    const spoils: Array<(row: Float32Array) => void> = [
      (r) => { r[2047] = Infinity; },
      (r) => { r[2048] = NaN; },
      (r) => { r[20000] = -Infinity; },
      (r) => { r[V - 1] = NaN; },
      () => undefined,
    ];
    const rows: Row[] = [];
    const logits = new Float32Array(3 * spoils.length * V);
    const isBad: boolean[] = [];
    const settings: Array<Partial<Row>> = [{ temperature: 0 }, { temperature: 0.8, topK: 40, topP: 0.9 }, { temperature: 1.2 }];
    settings.forEach((s, si) => {
      spoils.forEach((spoil, bi) => {
        const l = normal(V, 160 + 10 * si + bi, 2);
        spoil(l);
        logits.set(l, rows.length * V);
        rows.push({ temperature: 1, topK: 0, topP: 1, penalty: 1, seed: si, step: bi, ...s });
        isBad.push(bi < spoils.length - 1);
      });
    });
    const got = cpuSample(V, logits, rows, undefined, device);
    const goodRows = rows.filter((_, i) => !isBad[i]);
    const goodLogits = new Float32Array(goodRows.length * V);
    let g = 0;
    rows.forEach((_, i) => { if (!isBad[i]) goodLogits.set(logits.subarray(i * V, (i + 1) * V), V * g++); });
    const good = cpuSample(V, goodLogits, goodRows);
    g = 0;
    rows.forEach((_, i) => {
      const want = isBad[i] ? -1 : good.tokens[g++];
      expect({ row: i, token: got.tokens[i], nan: Number.isNaN(got.logprobs[i]) }).toEqual({ row: i, token: want, nan: isBad[i] });
    });
  });

  test.each(devices)('%s: a repetition penalty that overflows a finite logit gives -1', (device) => {
    // 3e38 / 0.01 is +infinity in float32; without the history row 1 is an ordinary row
    const l = normal(2 * vocab, 99, 1);
    l[5] = 3e38;
    l[vocab + 5] = 3e38;
    const row: Row = { temperature: 0.7, topK: 0, topP: 0.9, penalty: 0.01, seed: 1, step: 0 };
    const got = cpuSample(vocab, l, [row, row], [{ ids: [5], start: 0 }, { ids: [6], start: 0 }], device);
    expect(Array.from(got.tokens)).toEqual([-1, 5]);
  });
});

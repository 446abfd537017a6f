// sample op: emu (and cuda when present) vs the cpu reference; token ids must match exactly, log-probabilities by
// the f32 rule. Each call mixes rows with different settings (greedy next to sampled, top-k/top-p on and off,
// repetition / presence / frequency penalties on and off with duplicated history ids, the generated part of the
// history starting at 0, in the middle or at its end), so every branch of cuda/sample.cu runs in one launch:
//   - rows x vocab x dtype: vocab 1, 2, 33, 512, 32000, 151936 with two rows;
//   - multi-block rows (the device sampler puts 2048 ids in a block): vocab 1000 (one block), 32000 (16), 151936 (75,
//     the last partial) at batch 16 with every top-k {0, 1, 40, vocab} x top-p {1, 0.9, 0.1}, a top-k boundary below
//     top-p's, greedy and penalised rows, and at batch 1 (top-k 40 + top-p 0.9); tied logits at 32000 and 151936;
//     rows with nearly every logit in one radix bin (more candidates than the per-row list holds: the fallback that
//     re-reads the row), some with outliers in the bins above;
//   - penalties: each of the three alone, together, negative, at the range ends, on a tied grid (equal penalised
//     values must break ties the same way), for vocab 33, 5000 (two prepare chunks) and 151936;
//   - the settings sweep: temperature {0, 0.7, 1.5} x top_k {0, 1, 40, vocab} x top_p {1, 0.9, 0.5, 0.01}, one
//     row each;
//   - ties: logits on a coarse grid, so argmax and the top-k / top-p boundaries fall on repeated values;
//   - seeds: 32 rows with the same logits and different (seed, step), including a seed above 2^53.
// Non-finite logits (NaN, +-infinity) give token -1 on every backend, also from any block of a multi-block row.
// Plus checks of the cpu reference alone (in-process): different seeds give different tokens, the draw follows
// the softmax distribution (frequencies over 4000 seeds within 5 sigma), and the penalties are the formula of
// ops.h computed here in JS (greedy token and log-probability).
import { FloatDType, OpCase, SHORT, opSuite } from './harness';
import { normal, randInt, uniform } from '../util/random';
import { binding } from '../../lib/binding';
import { deviceReport } from '../../lib/devices';

const DTYPES: FloatDType[] = ['float32', 'float16', 'bfloat16'];

interface Row {
  temperature: number;
  topK: number;
  topP: number;
  penalty: number;
  /** Presence and frequency penalties (absent = 0). */
  presence?: number;
  frequency?: number;
  seed: number | bigint;
  step: number;
}

// Per-row settings cycled through by the mixed-batch cases: greedy, filtered, unfiltered, penalised (repetition
// alone, presence or frequency alone, both with and without repetition, negative ones).
const MIX: Array<Omit<Row, 'seed' | 'step'>> = [
  { temperature: 0, topK: 0, topP: 1, penalty: 1.3, presence: 0.5 },
  { temperature: 0.7, topK: 40, topP: 0.9, penalty: 1.3 },
  { temperature: 1.5, topK: 0, topP: 1, penalty: 1, frequency: 0.7 },
  { temperature: 1, topK: 0, topP: 0.5, penalty: 1.3, presence: -1.5, frequency: 1.2 },
  { temperature: 0.7, topK: 1, topP: 0.01, penalty: 1 },
  { temperature: 1.5, topK: 40, topP: 1, penalty: 1.3, frequency: -0.4 },
  { temperature: 0, topK: 40, topP: 0.9, penalty: 1, presence: 2, frequency: 2 },
];

interface CaseSpec {
  name: string;
  dtype: FloatDType;
  vocab: number;
  rows: Row[];
  logits: () => Float32Array;
  /** History length per row (ids drawn with duplicates); no history tensor when absent. */
  historyLens?: number[];
  /** Where each row's generated tokens begin in its history; default: a third of the way, rounded down. */
  historyStarts?: number[];
  logprob: boolean;
  seed: number;
  /** Added to the logit of every id in a row's history: penalised ids then compete for the top, so a wrong count
   *  changes tokens rather than hiding in the tail of the distribution. */
  boostHistory?: number;
}

function sampleCase(s: CaseSpec): OpCase {
  const batch = s.rows.length;
  const params: Record<string, unknown> = {
    batch,
    vocab: s.vocab,
    temperature: s.rows.map((r) => r.temperature),
    topK: s.rows.map((r) => r.topK),
    topP: s.rows.map((r) => r.topP),
    repetitionPenalty: s.rows.map((r) => r.penalty),
    presencePenalty: s.rows.map((r) => r.presence ?? 0),
    frequencyPenalty: s.rows.map((r) => r.frequency ?? 0),
    seed: s.rows.map((r) => r.seed),
    step: s.rows.map((r) => r.step),
  };
  const stride = s.historyLens ? Math.max(1, ...s.historyLens) + 3 : 0;
  if (s.historyLens) {
    params.historyStride = stride;
    params.historyLen = s.historyLens;
    params.historyStart = s.historyStarts ?? s.historyLens.map((n) => Math.floor(n / 3));
  }
  const outputs: OpCase['outputs'] = { tokensOut: { numel: batch, dtype: 'int32' } };
  if (s.logprob) outputs.logprobOut = { numel: batch, dtype: 'float32' };
  return {
    name: s.name,
    op: 'sample',
    dtype: s.dtype,
    params,
    inputs: () => {
      const logits = s.logits();
      const inputs: Record<string, Float32Array | Int32Array> = { logits };
      if (s.historyLens) {
        // ids from a small range so that they repeat; the tail of each row past its length is valid ids too
        const history = randInt(batch * stride, s.seed + 7, 0, Math.max(1, Math.min(s.vocab, 24)));
        const spread = randInt(batch * stride, s.seed + 8, 0, s.vocab);
        for (let i = 0; i < history.length; i += 3) history[i] = spread[i];
        inputs.history = history;
        if (s.boostHistory) {
          for (let b = 0; b < batch; b++) {
            const ids = new Set(history.subarray(b * stride, (b + 1) * stride));
            for (const id of ids) logits[b * s.vocab + id] += s.boostHistory;
          }
        }
      }
      return inputs;
    },
    outputs,
    timeoutMs: 120000,
  };
}

const mixedRows = (batch: number, offset: number): Row[] =>
  Array.from({ length: batch }, (_, i) => ({ ...MIX[(i + offset) % MIX.length], seed: 1000 + 17 * i + offset, step: i * 3 + offset }));

const cases: OpCase[] = [];

// rows x vocab x dtype, mixed settings per row
[1, 2, 33, 512, 32000].forEach((vocab, vi) => {
  DTYPES.forEach((dtype, di) => {
    [1, 5].forEach((batch, bi) => {
      const seed = 100 * vi + 10 * di + bi;
      const rows = mixedRows(batch, vi + di + 1);
      cases.push(
        sampleCase({
          name: `sample(dtype=${SHORT[dtype]}, batch=${batch}, vocab=${vocab}, mixed settings${bi ? ', history' : ''})`,
          dtype,
          vocab,
          rows,
          logits: () => normal(batch * vocab, seed, 2.5),
          historyLens: bi ? rows.map((_, i) => (i * 7) % 20) : undefined,
          logprob: di !== 2 || bi === 0,
          seed,
        }),
      );
    });
  });
});

// the Qwen-sized vocabulary: one greedy penalised row and one top-p row, and a top-k + top-p row in bf16
DTYPES.forEach((dtype, di) => {
  const vocab = 151936;
  const rows: Row[] =
    di === 0
      ? [
          { temperature: 0, topK: 0, topP: 1, penalty: 1.3, seed: 5, step: 0 },
          { temperature: 0.7, topK: 0, topP: 0.9, penalty: 1.3, seed: 6, step: 1 },
        ]
      : [{ temperature: di === 1 ? 1.5 : 1, topK: di === 1 ? 0 : 40, topP: di === 1 ? 1 : 0.5, penalty: 1.3, seed: 7 + di, step: 2 }];
  cases.push(
    sampleCase({
      name: `sample(dtype=${SHORT[dtype]}, batch=${rows.length}, vocab=${vocab}, mixed settings, history)`,
      dtype,
      vocab,
      rows,
      logits: () => normal(rows.length * vocab, 900 + di, 3),
      historyLens: rows.map((_, i) => 40 + i),
      logprob: true,
      seed: 900 + di,
    }),
  );
});

// multi-block rows (cuda/sample.cu: 2048 ids per block, so 1000 is one block, 32000 sixteen, 151936 seventy-five
// with a partial last one). Batch 16: top-k {0, 1, 40, vocab} x top-p {1, 0.9, 0.1} once each, a greedy row, a top-k
// whose boundary falls below top-p's (k = vocab / 8, top-p 0.5), penalised rows; batch 1: top-k 40 + top-p 0.9.
const blockRows = (vocab: number): Row[] => {
  const rows: Row[] = [];
  for (const topK of [0, 1, 40, vocab]) {
    for (const topP of [1, 0.9, 0.1]) {
      rows.push({ temperature: rows.length % 2 ? 1.3 : 0.8, topK, topP, penalty: 1, seed: 90 + rows.length, step: rows.length });
    }
  }
  rows.push({ temperature: 0, topK: 40, topP: 0.9, penalty: 1.3, presence: 0.5, seed: 1, step: 1 });
  rows.push({ temperature: 1, topK: Math.floor(vocab / 8), topP: 0.5, penalty: 1, seed: 2, step: 2 });
  rows.push({ temperature: 0.7, topK: 40, topP: 0.9, penalty: 1.3, frequency: 0.5, seed: 3, step: 3 });
  rows.push({ temperature: 1.5, topK: 0, topP: 1, penalty: 1, presence: -1, frequency: 1, seed: 4, step: 4 });
  return rows;
};
[1000, 32000, 151936].forEach((vocab, vi) => {
  const seed = 800 + 10 * vi;
  const rows = blockRows(vocab);
  cases.push(
    sampleCase({
      name: `sample(dtype=f32, batch=${rows.length}, vocab=${vocab}, multi-block, top-k x top-p, history)`,
      dtype: 'float32',
      vocab,
      rows,
      logits: () => normal(rows.length * vocab, seed, 2.5),
      historyLens: rows.map((_, i) => 10 + i),
      boostHistory: 2,
      logprob: true,
      seed,
    }),
  );
  const dtype = DTYPES[1 + (vi % 2)];
  cases.push(
    sampleCase({
      name: `sample(dtype=${SHORT[dtype]}, batch=1, vocab=${vocab}, multi-block, top-k 40, top-p 0.9)`,
      dtype,
      vocab,
      rows: [{ temperature: 0.8, topK: 40, topP: 0.9, penalty: 1, seed: 5 + vi, step: 7 }],
      logits: () => normal(vocab, seed + 1, 3),
      logprob: true,
      seed: seed + 1,
    }),
  );
});
// multi-block ties: logits on a grid of 0.5, so the k-th value and top-p's groups span many ids and several blocks
[32000, 151936].forEach((vocab, vi) => {
  const seed = 850 + vi;
  const rows = vi === 0 ? blockRows(vocab) : blockRows(vocab).filter((r) => r.topK !== 0 && r.topP !== 1);
  cases.push(
    sampleCase({
      name: `sample(dtype=f32, batch=${rows.length}, vocab=${vocab}, multi-block, tied logits)`,
      dtype: 'float32',
      vocab,
      rows,
      logits: () => normal(rows.length * vocab, seed, 2).map((v) => Math.round(v * 2) / 2 + 0.25),
      logprob: true,
      seed,
    }),
  );
});
// every id of a row in one or two first-digit bins (logits within a few hundredths of 1.1): more candidates than
// the per-row list holds (16384), so the selection re-reads the whole row. In the rows marked `outliers`, 30 ids
// spread over the row hold values in [1.5, 2.5]: bins above the candidates, whose mass counts as sure.
[32000, 151936].forEach((vocab, vi) => {
  const seed = 870 + vi;
  const spec: Array<[Row, boolean]> = [
    [{ temperature: 0.5, topK: 40, topP: 1, penalty: 1, seed: 11, step: 0 }, true],
    [{ temperature: 0.05, topK: 0, topP: 0.9, penalty: 1, seed: 12, step: 1 }, false],
    [{ temperature: 0.5, topK: 40, topP: 0.9, penalty: 1, seed: 13, step: 2 }, true],
    [{ temperature: 1, topK: 0, topP: 0.95, penalty: 1, seed: 14, step: 3 }, true],
    [{ temperature: 0.02, topK: 40, topP: 0.5, penalty: 1, seed: 15, step: 4 }, false],
    [{ temperature: 0.1, topK: vocab - 1, topP: 0.1, penalty: 1, seed: 16, step: 5 }, false],
  ];
  const chosen = vi === 0 ? spec : spec.slice(1, 3);
  const rows = chosen.map(([r]) => r);
  cases.push(
    sampleCase({
      name: `sample(dtype=f32, batch=${rows.length}, vocab=${vocab}, multi-block, nearly every logit in one bin)`,
      dtype: 'float32',
      vocab,
      rows,
      logits: () => {
        const l = normal(rows.length * vocab, seed, 0.03).map((v) => v + 1.1);
        const ids = randInt(30 * rows.length, seed + 1, 0, vocab);
        const vals = uniform(30 * rows.length, seed + 2, 1.5, 2.5);
        chosen.forEach(([, outliers], b) => {
          if (!outliers) return;
          for (let j = 30 * b; j < 30 * (b + 1); j++) l[b * vocab + ids[j]] = vals[j];
        });
        return l;
      },
      logprob: true,
      seed,
    }),
  );
});

// the settings sweep, one row per combination, one call per temperature
[0, 0.7, 1.5].forEach((temperature, ti) => {
  const vocab = 512;
  const rows: Row[] = [];
  for (const topK of [0, 1, 40, vocab]) {
    for (const topP of [1, 0.9, 0.5, 0.01]) {
      rows.push({ temperature, topK, topP, penalty: rows.length % 2 ? 1.3 : 1, seed: 31 * rows.length + ti, step: 11 });
    }
  }
  const dtype = DTYPES[ti];
  cases.push(
    sampleCase({
      name: `sample(dtype=${SHORT[dtype]}, batch=${rows.length}, vocab=${vocab}, temperature=${temperature}, topK x topP sweep, history)`,
      dtype,
      vocab,
      rows,
      logits: () => normal(rows.length * vocab, 300 + ti, 2),
      historyLens: rows.map((_, i) => (i * 5) % 13),
      logprob: true,
      seed: 300 + ti,
    }),
  );
});

// ties: logits on a grid of 0.5 over a few values, so maxima, k-th values and top-p groups repeat
[33, 512, 5000].forEach((vocab, vi) => {
  DTYPES.forEach((dtype, di) => {
    const seed = 500 + 10 * vi + di;
    const batch = 7;
    const rows = mixedRows(batch, vi + di).map((r, i) => ({ ...r, topK: [0, 1, 2, 3, 5, 40, vocab][i] }));
    cases.push(
      sampleCase({
        name: `sample(dtype=${SHORT[dtype]}, batch=${batch}, vocab=${vocab}, tied logits)`,
        dtype,
        vocab,
        rows,
        logits: () => normal(batch * vocab, seed, 1.5).map((v) => Math.round(v * 2) / 2 + 0.25),
        historyLens: vi === 1 ? rows.map((_, i) => i % 4) : undefined,
        logprob: true,
        seed,
      }),
    );
  });
});

// penalties: every combination of repetition / presence / frequency on and off (and a row with a history but no
// penalty), each greedy and sampled, the generated part of the history starting at 0, in the middle or at its end
const PENALTIES: Array<Pick<Row, 'penalty' | 'presence' | 'frequency'>> = [
  { penalty: 1, presence: 0, frequency: 0 },
  { penalty: 1.3, presence: 0, frequency: 0 },
  { penalty: 1, presence: 1.5, frequency: 0 },
  { penalty: 1, presence: 0, frequency: 1.5 },
  { penalty: 1, presence: -2, frequency: 0.25 },
  { penalty: 0.8, presence: 0.5, frequency: -1 },
  { penalty: 1.3, presence: 2, frequency: 2 },
  { penalty: 1, presence: -2, frequency: -2 },
];
const penaltyRows = (sampled: boolean[]): Row[] =>
  sampled.flatMap((t, si) => PENALTIES.map((p, i) => ({ temperature: t ? 1 : 0, topK: 0, topP: t && i % 2 ? 0.9 : 1, ...p, seed: 40 + i, step: si })));
const startsOf = (lens: number[]): number[] => lens.map((n, i) => [0, Math.floor(n / 2), n][i % 3]);
[33, 5000].forEach((vocab, vi) => {
  DTYPES.forEach((dtype, di) => {
    const seed = 600 + 10 * vi + di;
    const rows = penaltyRows([false, true]);
    const lens = rows.map((_, i) => 30 + ((i * 7) % 25));
    cases.push(
      sampleCase({
        name: `sample(dtype=${SHORT[dtype]}, batch=${rows.length}, vocab=${vocab}, penalties, history ids boosted)`,
        dtype,
        vocab,
        rows,
        logits: () => normal(rows.length * vocab, seed, 1.5),
        historyLens: lens,
        historyStarts: startsOf(lens),
        boostHistory: 3,
        logprob: true,
        seed,
      }),
    );
  });
});
// the largest vocabulary (38 prepare chunks): penalised ids anywhere in the row
{
  const vocab = 151936;
  const rows = penaltyRows([false]).filter((_, i) => i % 2 === 0);
  const lens = rows.map((_, i) => 60 + i);
  cases.push(
    sampleCase({
      name: `sample(dtype=f32, batch=${rows.length}, vocab=${vocab}, penalties, history ids boosted)`,
      dtype: 'float32',
      vocab,
      rows,
      logits: () => normal(rows.length * vocab, 650, 2),
      historyLens: lens,
      historyStarts: startsOf(lens),
      boostHistory: 4,
      logprob: true,
      seed: 650,
    }),
  );
}
// ties after the penalties: logits on a grid of 0.5 and penalties in multiples of 0.25, so penalised values land on
// values other ids hold and argmax / top-k / top-p decide between exactly equal floats
DTYPES.forEach((dtype, di) => {
  const vocab = 512;
  const seed = 660 + di;
  const rows: Row[] = [0, 0.8, 1.5].flatMap((temperature, ti) =>
    [0, 1, 3, 40].map((topK, ki) => ({
      temperature, topK, topP: ki % 2 ? 0.75 : 1, penalty: ki === 3 ? 2 : 1, presence: 0.25 * (ki - 1), frequency: 0.5, seed: 70 + 4 * ti + ki, step: ti,
    })));
  const lens = rows.map((_, i) => 20 + i);
  cases.push(
    sampleCase({
      name: `sample(dtype=${SHORT[dtype]}, batch=${rows.length}, vocab=${vocab}, penalties on tied logits)`,
      dtype,
      vocab,
      rows,
      logits: () => normal(rows.length * vocab, seed, 1.5).map((v) => Math.round(v * 2) / 2 + 0.25),
      historyLens: lens,
      historyStarts: startsOf(lens),
      boostHistory: 2,
      logprob: true,
      seed,
    }),
  );
});

// seeds: the same logits on every row, different (seed, step)
const SEED_ROWS = 32;
const seedRows = (vocab: number): Row[] =>
  Array.from({ length: SEED_ROWS }, (_, i) => ({
    temperature: 1.5,
    topK: i % 4 === 3 ? 40 : 0,
    topP: i % 4 === 2 ? 0.9 : 1,
    penalty: 1,
    seed: i === 0 ? 2n ** 63n + 12345n : 77 + (i >> 1),
    step: i & 1 ? 1000 + i : i,
  }));
const repeatRow = (vocab: number, seed: number) => () => {
  const row = normal(vocab, seed, 1);
  const out = new Float32Array(SEED_ROWS * vocab);
  for (let r = 0; r < SEED_ROWS; r++) out.set(row, r * vocab);
  return out;
};
DTYPES.forEach((dtype, di) => {
  const vocab = [512, 33, 3000][di];
  cases.push(
    sampleCase({
      name: `sample(dtype=${SHORT[dtype]}, batch=${SEED_ROWS}, vocab=${vocab}, same logits, different seeds)`,
      dtype,
      vocab,
      rows: seedRows(vocab),
      logits: repeatRow(vocab, 700 + di),
      logprob: di === 0,
      seed: 700 + di,
    }),
  );
});

opSuite('sample', cases);

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

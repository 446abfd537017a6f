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
// The cpu reference's own checks and the non-finite logits are in sample_reference.test.ts.
import { FloatDType, OpCase, SHORT, opSuite } from './harness';
import { normal, randInt, uniform } from '../util/random';
import { binding } from '../../lib/binding';
import { PENALTIES, Row, SEED_ROWS, repeatRow, seedRows } from './sample_rows';

const DTYPES: FloatDType[] = ['float32', 'float16', 'bfloat16'];


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

// seeds: the same logits on every row, different (seed, step) (sample_rows.ts)
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

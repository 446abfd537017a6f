// sample op: emu (and cuda when present) vs the cpu reference; token ids must match exactly, log-probabilities by
// the f32 rule. Each call mixes rows with different settings (greedy next to sampled, top-k/top-p on and off,
// repetition penalty with duplicated history ids), so every branch of cuda/sample.cu runs in one launch:
//   - rows x vocab x dtype: vocab 1, 2, 33, 512, 32000 (256- and 512-thread blocks), 151936 with two rows;
//   - the settings sweep: temperature {0, 0.7, 1.5} x top_k {0, 1, 40, vocab} x top_p {1, 0.9, 0.5, 0.01}, one
//     row each;
//   - ties: logits on a coarse grid, so argmax and the top-k / top-p boundaries fall on repeated values;
//   - seeds: 32 rows with the same logits and different (seed, step), including a seed above 2^53.
// Plus two checks of the cpu reference alone (in-process): different seeds give different tokens, and the draw
// follows the softmax distribution (frequencies over 4000 seeds within 5 sigma).
import { FloatDType, OpCase, SHORT, opSuite } from './harness';
import { normal, randInt } from '../util/random';
import { binding } from '../../lib/binding';

const DTYPES: FloatDType[] = ['float32', 'float16', 'bfloat16'];

interface Row {
  temperature: number;
  topK: number;
  topP: number;
  penalty: number;
  seed: number | bigint;
  step: number;
}

// Per-row settings cycled through by the mixed-batch cases: greedy, filtered, unfiltered, penalised.
const MIX: Array<Omit<Row, 'seed' | 'step'>> = [
  { temperature: 0, topK: 0, topP: 1, penalty: 1.3 },
  { temperature: 0.7, topK: 40, topP: 0.9, penalty: 1.3 },
  { temperature: 1.5, topK: 0, topP: 1, penalty: 1 },
  { temperature: 1, topK: 0, topP: 0.5, penalty: 1.3 },
  { temperature: 0.7, topK: 1, topP: 0.01, penalty: 1 },
  { temperature: 1.5, topK: 40, topP: 1, penalty: 1.3 },
  { temperature: 0, topK: 40, topP: 0.9, penalty: 1 },
];

interface CaseSpec {
  name: string;
  dtype: FloatDType;
  vocab: number;
  rows: Row[];
  logits: () => Float32Array;
  /** History length per row (ids drawn with duplicates); no history tensor when absent. */
  historyLens?: number[];
  logprob: boolean;
  seed: number;
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
    seed: s.rows.map((r) => r.seed),
    step: s.rows.map((r) => r.step),
  };
  const stride = s.historyLens ? Math.max(1, ...s.historyLens) + 3 : 0;
  if (s.historyLens) {
    params.historyStride = stride;
    params.historyLen = s.historyLens;
  }
  const outputs: OpCase['outputs'] = { tokensOut: { numel: batch, dtype: 'int32' } };
  if (s.logprob) outputs.logprobOut = { numel: batch, dtype: 'float32' };
  return {
    name: s.name,
    op: 'sample',
    dtype: s.dtype,
    params,
    inputs: () => {
      const inputs: Record<string, Float32Array | Int32Array> = { logits: s.logits() };
      if (s.historyLens) {
        // ids from a small range so that they repeat; the tail of each row past its length is valid ids too
        inputs.history = randInt(batch * stride, s.seed + 7, 0, Math.max(1, Math.min(s.vocab, 24)));
        const spread = randInt(batch * stride, s.seed + 8, 0, s.vocab);
        for (let i = 0; i < inputs.history.length; i += 3) inputs.history[i] = spread[i];
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
function cpuSample(vocab: number, logits: Float32Array, rows: Row[]): Int32Array {
  const b = binding();
  const batch = rows.length;
  const tLogits = new b.AddonTensor('cpu', 0, logits.length, logits);
  const tOut = new b.AddonTensor('cpu', 3, batch, null);
  try {
    b.runOpSync('sample', 'cpu', {
      dtype: 0,
      batch,
      vocab,
      logits: tLogits,
      tokensOut: tOut,
      temperature: rows.map((r) => r.temperature),
      topK: rows.map((r) => r.topK),
      topP: rows.map((r) => r.topP),
      repetitionPenalty: rows.map((r) => r.penalty),
      seed: rows.map((r) => r.seed),
      step: rows.map((r) => r.step),
    });
    return tOut.readSync() as Int32Array;
  } finally {
    tLogits.dispose();
    tOut.dispose();
  }
}

describe('sample (cpu reference)', () => {
  test('different seeds and steps give different tokens', () => {
    const vocab = 512;
    const tokens = cpuSample(vocab, repeatRow(vocab, 700)(), seedRows(vocab).map((r) => ({ ...r, topK: 0, topP: 1 })));
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
      for (const t of cpuSample(vocab, logits, rows(topK))) counts[t]++;
      kept.forEach((e, i) => {
        const p = e / z;
        expect(Math.abs(counts[i] - n * p)).toBeLessThanOrEqual(5 * Math.sqrt(n * p * (1 - p)) + 1e-9);
      });
    }
  });
});

// Rows of sample calls shared by the op tests (sample.test.ts) and the cpu reference's own checks
// (sample_reference.test.ts).
import { normal } from '../util/random';

export interface Row {
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

// seeds: the same logits on every row, different (seed, step)
export const SEED_ROWS = 32;
export const seedRows = (vocab: number): Row[] =>
  Array.from({ length: SEED_ROWS }, (_, i) => ({
    temperature: 1.5,
    topK: i % 4 === 3 ? 40 : 0,
    topP: i % 4 === 2 ? 0.9 : 1,
    penalty: 1,
    seed: i === 0 ? 2n ** 63n + 12345n : 77 + (i >> 1),
    step: i & 1 ? 1000 + i : i,
  }));
export const repeatRow = (vocab: number, seed: number) => () => {
  const row = normal(vocab, seed, 1);
  const out = new Float32Array(SEED_ROWS * vocab);
  for (let r = 0; r < SEED_ROWS; r++) out.set(row, r * vocab);
  return out;
};

// Penalty settings: each alone, together, negative, at the range ends.
export const PENALTIES: Array<Pick<Row, 'penalty' | 'presence' | 'frequency'>> = [
  { penalty: 1, presence: 0, frequency: 0 },
  { penalty: 1.3, presence: 0, frequency: 0 },
  { penalty: 1, presence: 1.5, frequency: 0 },
  { penalty: 1, presence: 0, frequency: 1.5 },
  { penalty: 1, presence: -2, frequency: 0.25 },
  { penalty: 0.8, presence: 0.5, frequency: -1 },
  { penalty: 1.3, presence: 2, frequency: 2 },
  { penalty: 1, presence: -2, frequency: -2 },
];

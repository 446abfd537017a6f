// The SIMT emulator's own self-test kernels (cuda/emu/selftest.cu), in both thread orders, in a child process:
// reductions, shuffles with widths and exited lanes, votes, partial warps, 3-D blocks, dynamic shared memory,
// atomics, intrinsics, and the kernel bugs it must report as ERR_KERNEL instead of hanging or crashing
// (divergent barriers, deadlocked collectives, a null store, a fiber stack overflow, bad launch sizes).
import { binding } from '../../lib/binding';
import { OpWorker } from './harness';

const cases = binding().emuSelfTestCases();
const worker = new OpWorker();
afterAll(() => worker.stop());

test('the self-test has its cases', () => {
  expect(cases).toEqual(expect.arrayContaining(['block_reduce', 'shuffle', 'race', 'expect_divergent_barrier', 'expect_null_store']));
});

describe.each([false, true])('emu self-test (reversed thread order: %s)', (reverseOrder) => {
  test.each(cases.filter((c) => c !== 'race'))('%s', async (name) => {
    const r = await worker.run({ selftest: name, reverseOrder }, 120000);
    if (r.error) throw new Error(`${r.error.code}: ${r.error.message}`);
    expect(r.result).toMatch(/^ok/);
  });
});

test('a racy kernel gives different results in the two thread orders', async () => {
  const fwd = await worker.run({ selftest: 'race', reverseOrder: false }, 120000);
  const rev = await worker.run({ selftest: 'race', reverseOrder: true }, 120000);
  expect(fwd.result).not.toEqual(rev.result);
});

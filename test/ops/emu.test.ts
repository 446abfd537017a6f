// The SIMT emulator's own self-test kernels (cuda/emu/selftest*.cu), in both thread orders, in a child process:
// reductions, shuffles with widths and exited lanes, votes, partial warps, 3-D blocks, dynamic shared memory,
// atomics, intrinsics, the emulated inline PTX (ldmatrix's lane layout, ldmatrix feeding mma, cp.async's zero fill
// and groups, and the emu's model of its asynchrony), and the kernel bugs it must report as ERR_KERNEL instead of
// hanging or crashing (divergent barriers, deadlocked collectives, a null store, a fiber stack overflow, bad launch
// sizes, dynamic shared memory over the emulated target's limit, a misaligned cp.async, ldmatrix outside shared
// memory).
import { binding } from '../../lib/binding';
import { OpWorker, SM86_SMEM } from './harness';

const cases = binding().emuSelfTestCases();
const worker = new OpWorker();
afterAll(() => worker.stop());

test('the self-test has its cases', () => {
  expect(cases).toEqual(expect.arrayContaining([
    'block_reduce', 'shuffle', 'race', 'ldmatrix', 'ldmatrix_mma', 'cp_async', 'cp_async_pending', 'expect_divergent_barrier',
    'expect_null_store', 'expect_cp_async_misaligned', 'expect_ldmatrix_outside_smem',
  ]));
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

// The emulated device's shared memory per block follows the target (setEmuOptions): sm_90's 227 KiB (232448 bytes)
// by default, sm_86/sm_89's 99 KiB (101376 bytes) when set; a launch over it is an ERR_KERNEL naming both sizes.
describe.each([
  ['sm_90 (default)', undefined, 232448],
  ['sm_86 / sm_89', { maxSharedMemoryPerBlockOptin: SM86_SMEM }, 101376],
])('emu shared memory limit, %s', (_name, emu, limit) => {
  test.each([false, true])('a launch at the limit runs, one over it fails (reversed thread order: %s)', async (reverseOrder) => {
    const r = await worker.run({ selftest: 'expect_smem_over_limit', reverseOrder, emu }, 120000);
    if (r.error) throw new Error(`${r.error.code}: ${r.error.message}`);
    expect(r.result).toContain(`dynamic shared memory of ${limit + 16} bytes is over the emulated target's per-block opt-in limit of ${limit} bytes`);
  });
});

test('setEmuOptions refuses targets out of range', () => {
  const b = binding();
  try {
    expect(() => b.setEmuOptions({ smCount: 0 })).toThrow(/smCount/);
    expect(() => b.setEmuOptions({ maxSharedMemoryPerBlockOptin: 300000 })).toThrow(/maxSharedMemoryPerBlockOptin/);
  } finally {
    b.setEmuOptions({});
  }
});

// Teardown without dispose(): (1) terminating a worker thread while its generations, streams and tensor reads are
// in flight must not take the process down (async completions after the environment is torn down aborted it 24 of
// 25 times); each worker's context is stopped by the environment cleanup hook, and completions that arrive while the
// environment terminates leave JS alone. (2) A model the program drops without dispose() is collected, and its
// context's engine thread and memory go with it. Both run in child processes: a crash fails the test, not jest.
import { execFile } from 'child_process';
import * as path from 'path';
import { promisify } from 'util';
import { MODEL } from '../util/stories260k';

const script = path.join(__dirname, '..', 'util', 'terminate-worker.js');
const dropped = path.join(__dirname, '..', 'util', 'dropped-models.js');

for (const [device, rounds] of [['cpu', 12], ['emu', 6]] as const) {
  test(`${device}: ${rounds} workers terminated mid-generation; the process lives`, async () => {
    const { stdout } = await promisify(execFile)(process.execPath, [script, MODEL, device, String(rounds)], { timeout: 120000 });
    expect(stdout.trim()).toBe('OK');
  }, 150000);
}

test('models dropped without dispose() are collected with their engine threads', async () => {
  const { stdout } = await promisify(execFile)(process.execPath, ['--expose-gc', dropped, MODEL], { timeout: 120000 });
  const counts = JSON.parse(stdout) as number[];
  // One engine thread per live context: 30 leaked contexts would add 30 threads; collected ones add none.
  expect(counts[2] - counts[0]).toBeLessThanOrEqual(2);
}, 150000);

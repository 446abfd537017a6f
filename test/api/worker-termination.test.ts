// Terminating a worker thread while its generations, streams and tensor reads are in flight must not take the
// process down (issue: async completions after the environment is torn down aborted it 24 of 25 times). Each
// worker's context is stopped by the environment cleanup hook; completions that arrive while the environment
// terminates leave JS alone. Runs in a child process: a crash fails the test, not jest.
import { execFile } from 'child_process';
import * as path from 'path';
import { promisify } from 'util';
import { MODEL } from '../util/stories260k';

const script = path.join(__dirname, '..', 'util', 'terminate-worker.js');

for (const [device, rounds] of [['cpu', 12], ['emu', 6]] as const) {
  test(`${device}: ${rounds} workers terminated mid-generation; the process lives`, async () => {
    const { stdout } = await promisify(execFile)(process.execPath, [script, MODEL, device, String(rounds)], { timeout: 120000 });
    expect(stdout.trim()).toBe('OK');
  }, 150000);
}

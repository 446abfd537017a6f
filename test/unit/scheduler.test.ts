// The KV block pool and the step scheduler without a model (test/native/scheduler_check.cpp): pool reference
// counts, prefix-cache lookups and LRU eviction, admission and slots, chunked prefill beside decoding, n-sample
// forks (shared blocks, copied partial block, seeds), preemption of the newest with exact tokens after recompute,
// cancellation and failures. Built with AddressSanitizer and UBSan: the scheduler frees sequences while it walks
// them, and a use after free must fail here rather than corrupt a server.
import { execFileSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

test('engine/block_pool + engine/scheduler: every planned step and its bookkeeping (ASan, UBSan)', () => {
  const root = path.resolve(__dirname, '..', '..');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'eet-sched-'));
  const exe = path.join(dir, 'scheduler_check');
  try {
    execFileSync('g++', [
      '-std=c++17', '-O1', '-g', '-Wall', '-Werror', '-fsanitize=address,undefined', '-fno-sanitize-recover=all',
      `-I${root}`, path.join(root, 'test/native/scheduler_check.cpp'),
      ...['block_pool.cpp', 'scheduler.cpp', 'error.cpp'].map((f) => path.join(root, 'engine', f)), '-o', exe,
    ]);
    const out = execFileSync(exe, { encoding: 'utf8', env: { ...process.env, ASAN_OPTIONS: 'detect_leaks=1' } });
    expect(out.trim().split('\n').at(-1)).toBe('OK (0 failures)');
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}, 180000);

// A sticky CUDA error (the context is lost: here an illegal address injected through the EET_TEST_HOOKS hook)
// must not kill the process: frees after it never throw (they run from destructors), and every later call on that
// device reports one clear ERR_CUDA — the context was lost, restart — instead of errors naming unrelated ops.
// Runs in a child process (the device is unusable for the rest of its life). GPU only: skipped without one.
// With EET_CUDA_SYNC=1 the fault is reported by the launch that made it, naming the kernel and the op.
import { spawnSync } from 'child_process';
import * as path from 'path';
import { deviceReport } from '../../lib/devices';
import { MODEL } from '../util/stories260k';

const hasGpu = deviceReport().devices.some((d) => d.kind === 'cuda');

(hasGpu ? test : test.skip)('cuda: after a lost context every call says so, frees never throw, the cpu still works', () => {
  const child = spawnSync(process.execPath, ['--expose-gc', path.join(__dirname, '../util/cuda-fault.js'), MODEL], {
    encoding: 'utf8', env: { ...process.env, EET_TEST_HOOKS: '1' }, timeout: 120000,
  });
  expect({ status: child.status, signal: child.signal, stderr: child.stderr }).toEqual({ status: 0, signal: null, stderr: '' });
  const r = JSON.parse(child.stdout.trim().split('\n').at(-1)!);
  expect(r.before).toEqual({ ok: true });
  const lost = { code: 'ERR_CUDA', message: expect.stringMatching(/cuda:0: the device context was lost \(cudaErrorIllegalAddress.*restart the process/) };
  for (const k of ['fault', 'generate', 'read', 'alloc', 'load']) expect({ [k]: r[k] }).toEqual({ [k]: lost });
  expect(r.dispose).toEqual({ ok: true });
  expect(r.cpu).toEqual({ ok: true });
});

(hasGpu ? test : test.skip)('cuda: EET_CUDA_SYNC=1 runs a model and reports a fault at its launch, naming the kernel and the op', () => {
  const child = spawnSync(process.execPath, ['--expose-gc', path.join(__dirname, '../util/cuda-fault.js'), MODEL], {
    encoding: 'utf8', env: { ...process.env, EET_TEST_HOOKS: '1', EET_CUDA_SYNC: '1' }, timeout: 120000,
  });
  expect({ status: child.status, signal: child.signal, stderr: child.stderr }).toEqual({ status: 0, signal: null, stderr: '' });
  const r = JSON.parse(child.stdout.trim().split('\n').at(-1)!);
  expect(r.before).toEqual({ ok: true });
  expect(r.fault).toEqual({
    code: 'ERR_CUDA',
    message: expect.stringMatching(/the device context was lost \(cudaErrorIllegalAddress .* in kernel .*embedding_kernel.* \(op embedding, an injected fault\), EET_CUDA_SYNC=1\)/),
  });
  expect(r.cpu).toEqual({ ok: true });
});

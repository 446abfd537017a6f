// Child-process script for test/api/cuda-lost.test.ts (GPU only, EET_TEST_HOOKS=1): loses the CUDA context on
// purpose (an illegal address), then makes every kind of later call and prints one JSON line of what each did.
// Frees run from destructors after the loss (dispose, GC), so a free that threw would terminate this process.
'use strict';
const path = require('path');
const { loadModel, tensor } = require(path.resolve(__dirname, '../../dist'));
const { binding } = require(path.resolve(__dirname, '../../dist/binding'));

const outcome = async (f) => {
  try {
    await f();
    return { ok: true };
  } catch (e) {
    return { code: e.code, message: String(e.message) };
  }
};

(async () => {
  const [modelPath] = process.argv.slice(2);
  const m = await loadModel(modelPath, { device: 'cuda' });
  const t = tensor(new Float32Array(1024).fill(1), [1024], { device: 'cuda' });
  const r = {};
  r.before = await outcome(() => m.generate('Once upon a time', { maxNewTokens: 4 }));
  r.fault = await outcome(() => binding().injectCudaFault('cuda'));
  r.generate = await outcome(() => m.generate('Once upon a time', { maxNewTokens: 4 }));
  r.read = await outcome(() => t.toArray());
  r.alloc = await outcome(() => tensor(new Float32Array(8), [8], { device: 'cuda' }));
  r.load = await outcome(() => loadModel(modelPath, { device: 'cuda' }));
  r.dispose = await outcome(() => m.dispose());
  t.dispose();
  global.gc?.();
  const cpu = await loadModel(modelPath, { device: 'cpu' });
  r.cpu = await outcome(() => cpu.generate('Once upon a time', { maxNewTokens: 4 }));
  await cpu.dispose();
  process.stdout.write(JSON.stringify(r) + '\n');
})().catch((e) => {
  process.stdout.write(JSON.stringify({ crashed: String(e && e.stack) }) + '\n');
  process.exitCode = 1;
});

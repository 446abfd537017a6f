// Child-process script for test/api/worker-termination.test.ts: workers load stories260K, start generations,
// streams and tensor reads on the given device, and are terminated mid-flight at varied moments. A crash (an
// async completion or an engine event touching the torn-down environment) kills this process; success prints OK.
'use strict';
const { Worker, isMainThread, parentPort, workerData } = require('worker_threads');
const path = require('path');

if (isMainThread) {
  const [model, device, rounds] = process.argv.slice(2);
  (async () => {
    for (let i = 0; i < Number(rounds); i++) {
      const w = new Worker(__filename, { workerData: { model, device } });
      w.on('error', () => {});
      await new Promise((r) => w.once('message', r));
      await new Promise((r) => setTimeout(r, 2 + (i % 7) * 4));
      await w.terminate();
    }
    process.stdout.write('OK\n');
  })();
} else {
  const { loadModel, tensor } = require(path.resolve(__dirname, '../../dist'));
  (async () => {
    const m = await loadModel(workerData.model, { device: workerData.device });
    parentPort.postMessage('loaded');
    const work = [];
    for (let k = 0; k < 3; k++) work.push(m.generate('Once upon a time', { maxNewTokens: 300, temperature: 0 }));
    work.push((async () => { for await (const ev of m.stream('Lily', { maxNewTokens: 300 })) void ev; })());
    const t = tensor(new Float32Array(1 << 16).fill(1), [1 << 16], { device: workerData.device });
    for (let k = 0; k < 50; k++) work.push(t.toArray());
    await Promise.all(work);
  })().catch(() => {});
}

// Child process for op tests: runs ops on one backend and sends the outputs back. Kernels run here, not in the
// jest process, so a native crash or a hang fails the case being run (the harness sees the exit or times out)
// instead of killing the test runner (../shared/emu-notes.md "A fatal native error kills jest").
'use strict';
const path = require('path');
const addon = require('node-gyp-build')(path.resolve(__dirname, '..', '..'));

addon.setErrorFactory((code, message) => Object.assign(new Error(message), { code }));

// msg: { id, selftest: name, reverseOrder, emu } runs an emulator self-test case, or
// msg: { id, op, device, reverseOrder, emu, params, tensors: { name: { dtype, data?, numel?, fill? } }, aliases, outputs: [name] }
// emu: the emulated device's options (setEmuOptions: smCount, maxSharedMemoryPerBlockOptin), defaults when absent.
process.on('message', (msg) => {
  const made = [];
  try {
    if (msg.selftest) {
      addon.setEmuOptions({ ...msg.emu, reverseOrder: !!msg.reverseOrder });
      process.send({ id: msg.id, result: addon.emuSelfTest(msg.selftest) });
      return;
    }
    if (msg.device === 'emu') addon.setEmuOptions({ ...msg.emu, reverseOrder: !!msg.reverseOrder });
    const params = { ...msg.params };
    for (const [name, t] of Object.entries(msg.tensors)) {
      const handle = t.data
        ? new addon.AddonTensor(msg.device, t.dtype, t.data.length, t.data)
        : new addon.AddonTensor(msg.device, t.dtype, t.numel, null, t.fill || 'poison');
      made.push(handle);
      params[name] = handle;
    }
    for (const [out, input] of Object.entries(msg.aliases || {})) params[out] = params[input]; // in-place cases
    const t0 = process.hrtime.bigint();
    addon.runOpSync(msg.op, msg.device, params);
    const ms = Number(process.hrtime.bigint() - t0) / 1e6;
    const outputs = {};
    for (const name of msg.outputs) outputs[name] = params[name].readSync();
    process.send({ id: msg.id, outputs, ms });
  } catch (e) {
    process.send({ id: msg.id, error: { code: e.code || 'ERR_UNKNOWN', message: e.message } });
  } finally {
    for (const h of made) h.dispose();
  }
});
process.send({ ready: true });

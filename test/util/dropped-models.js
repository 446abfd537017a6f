// Child-process script for test/api/teardown.test.ts (run with --expose-gc): loads and drops models without
// dispose(), one generation each, and prints the process's thread count after each batch of 10 is collected. Every
// context runs one native engine thread; a context that is never freed keeps its thread and its memory.
'use strict';
const fs = require('fs');
const path = require('path');
const { loadModel } = require(path.resolve(__dirname, '../../dist'));

const threads = () => Number(/Threads:\s+(\d+)/.exec(fs.readFileSync('/proc/self/status', 'utf8'))[1]);
const settle = () => new Promise((r) => setTimeout(r, 50));

(async () => {
  const counts = [];
  for (let i = 0; i < 30; i++) {
    const m = await loadModel(process.argv[2], { device: 'cpu' });
    await m.generate('Once', { maxNewTokens: 4 });
    if (i % 10 === 9) {
      for (let k = 0; k < 3; k++) { global.gc(); await settle(); }
      counts.push(threads());
    }
  }
  process.stdout.write(JSON.stringify(counts) + '\n');
})();

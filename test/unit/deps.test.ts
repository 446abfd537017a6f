// The dependency rule of the C++ layers (scripts/check-deps.js): engine/ includes nothing from cuda/ or native/,
// native/ only engine/ and itself, cuda/ only itself and engine/. The repository must pass; synthetic sources that
// break the rule must be reported, so the check cannot silently pass.
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

interface Violation {
  file: string;
  line: number;
  include: string;
  target: string;
  message: string;
}
const root = path.resolve(__dirname, '..', '..');
const script = path.join(root, 'scripts', 'check-deps.js');
// eslint-disable-next-line @typescript-eslint/no-require-imports
const deps = require(script) as {
  checkFile(root: string, file: string, text: string): Violation[];
  checkTree(root: string): Violation[];
};
const check = (file: string, text: string) => deps.checkFile(root, file, text).map((v) => `${v.line} ${v.target}`);

describe('scripts/check-deps.js', () => {
  test('the repository follows the rule', () => {
    expect(deps.checkTree(root)).toEqual([]);
  });

  test.each([
    ['engine/cpu/sample.cpp', '#include "../../cuda/rng.cuh"', '1 cuda/rng.cuh'],
    ['engine/backend_emu.cpp', '#include <vector>\n#include "../cuda/emu/emu.h"', '2 cuda/emu/emu.h'],
    ['engine/model.cpp', '#include "cuda/common.cuh"', '1 cuda/common.cuh'], // from the include root
    ['engine/ops.cpp', '#  include <cuda/emu/emu.h>', '1 cuda/emu/emu.h'], // angled, found in the repository
    ['engine/ops.cpp', '#include "../cuda/no_such_file.cuh"', '1 cuda/no_such_file.cuh'],
    ['engine/ops.cpp', '#include "../native/addon.h"', '1 native/addon.h'],
    ['engine/backend.cpp', '#include <cuda_runtime.h>', '1 cuda_runtime.h'],
    ['native/addon.cpp', '#include "../cuda/emu/emu.h"', '1 cuda/emu/emu.h'],
    ['native/ops.cpp', '#include "../lib/binding.ts"', '1 lib/binding.ts'],
    ['native/ops.cpp', '#include "../../outside.h"', '1 ../outside.h'],
    ['native/ops.cpp', '#include <cub/cub.cuh>', '1 cub/cub.cuh'],
    ['cuda/norm.cu', '#include "../native/addon.h"', '1 native/addon.h'],
  ])('reports %s: %j', (file, text, expected) => {
    expect(check(file, text)).toEqual([expected]);
  });

  test.each([
    ['engine/cpu/sample.cpp', '#include "../rng.h"\n#include "reference.h"\n#include <vector>'],
    ['native/addon.cpp', '#include <napi.h>\n#include <node_api.h>\n#include "addon.h"\n#include "../engine/backend.h"'],
    ['cuda/sample.cu', '#include "common.cuh"\n#include "../engine/rng.h"\n#include <cuda_runtime.h>'],
    ['engine/ops.cpp', '// #include "../cuda/common.cuh"\n/* #include "../cuda/common.cuh"\n */'],
  ])('allows %s: %j', (file, text) => {
    expect(check(file, text)).toEqual([]);
  });

  test('the command line exits 1 and names each violation in a tree that breaks the rule', () => {
    const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'eet-deps-'));
    try {
      for (const d of ['engine', 'native', 'cuda']) fs.mkdirSync(path.join(tmp, d));
      fs.writeFileSync(path.join(tmp, 'cuda', 'rng.cuh'), '#pragma once\n');
      fs.writeFileSync(path.join(tmp, 'engine', 'ops.h'), '#pragma once\n');
      fs.writeFileSync(path.join(tmp, 'engine', 'sample.cpp'), '#include "ops.h"\n#include "../cuda/rng.cuh"\n');
      fs.writeFileSync(path.join(tmp, 'native', 'addon.cpp'), '#include <napi.h>\n#include "../engine/ops.h"\n');
      let r = spawnSync(process.execPath, [script, tmp], { encoding: 'utf8' });
      expect(r.status).toBe(1);
      expect(r.stderr).toContain('engine/sample.cpp:2: "../cuda/rng.cuh" -> cuda/rng.cuh');
      expect(r.stderr.trim().split('\n')).toHaveLength(1);

      fs.rmSync(path.join(tmp, 'engine', 'sample.cpp'));
      r = spawnSync(process.execPath, [script, tmp], { encoding: 'utf8' });
      expect(r.status).toBe(0);
      expect(r.stdout).toContain('0 violation(s)');
    } finally {
      fs.rmSync(tmp, { recursive: true, force: true });
    }
  });
});

// The attention decode split and workspace plan against a brute-force sweep of every (batch, context)
// (test/native/workspace_check.cpp), built with UBSan: the split keeps its contract (chunks cover the context, a block
// per SM wherever the finest split has one) and the planned size is the sweep's maximum for shapes whose decode chunk
// count is not monotonic in the context (issue 11 item 10), for several GQA ratios and SM counts. Also the sampler's
// workspace layout (section offsets as ops.h documents them; sizes past int64 rejected with ERR_INVALID_ARG).
import { execFileSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

test('engine/op_workspace: the decode split keeps its contract, and attention_workspace_plan() and shared_attention_workspace_plan() are the maximum over every reachable (batch, context); the sampler layout', () => {
  const root = path.resolve(__dirname, '..', '..');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'eet-ws-'));
  const exe = path.join(dir, 'workspace_check');
  try {
    execFileSync('g++', [
      '-std=c++17', '-O2', '-Wall', '-Werror', '-fsanitize=undefined', '-fno-sanitize-recover=all',
      `-I${root}`, path.join(root, 'test/native/workspace_check.cpp'), path.join(root, 'engine/op_workspace.cpp'),
      path.join(root, 'engine/error.cpp'), '-o', exe,
    ]);
    const out = execFileSync(exe, { encoding: 'utf8' });
    expect(out.trim().split('\n').at(-1)).toBe('OK (0 failures)');
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}, 120000);

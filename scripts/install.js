#!/usr/bin/env node
// Chooses how the addon gets onto this machine (toolchain.md "Choosing the build at install"):
//   1. a prebuilt binary under prebuilds/ that loads here          -> nothing to build
//   2. nvcc and cmake are available                                -> cmake-js: cpu + emu + cuda backends
//   3. otherwise                                                   -> npm's node-gyp with binding.gyp: cpu + emu
// `--force` skips step 1. EET_CUDA_ARCHS overrides the CUDA architectures (CMake syntax, e.g. "90" or
// "80-real;90"); EET_BUILD=gyp forces step 3. Exits non-zero with the build tool's output when a build fails.
'use strict';
const { spawnSync, execFileSync } = require('child_process');
const fs = require('fs');
const path = require('path');

const root = path.resolve(__dirname, '..');
const force = process.argv.includes('--force');

function log(msg) {
  process.stderr.write(`eet: ${msg}\n`);
}

function prebuildLoads() {
  const dir = path.join(root, 'prebuilds', `${process.platform}-${process.arch}`);
  if (!fs.existsSync(dir)) return false;
  try {
    require('node-gyp-build')(root);
    return true;
  } catch (e) {
    log(`prebuild did not load (${e.message.split('\n')[0]}); building from source`);
    return false;
  }
}

function which(cmd) {
  const r = spawnSync('sh', ['-c', `command -v ${cmd}`], { encoding: 'utf8' });
  return r.status === 0 ? r.stdout.trim() : null;
}

function findNvcc() {
  if (process.env.CUDACXX && fs.existsSync(process.env.CUDACXX)) return process.env.CUDACXX;
  return which('nvcc') || (fs.existsSync('/usr/local/cuda/bin/nvcc') ? '/usr/local/cuda/bin/nvcc' : null);
}

function run(cmd, args) {
  log(`${cmd} ${args.join(' ')}`);
  const r = spawnSync(cmd, args, { cwd: root, stdio: 'inherit' });
  if (r.error) throw r.error;
  return r.status === 0;
}

function buildCmake(nvcc) {
  const cmakeJs = require.resolve('cmake-js/bin/cmake-js');
  const jobs = String(Math.max(1, Math.min(require('os').availableParallelism?.() ?? 2, 8)));
  const args = [cmakeJs, 'rebuild', '--parallel', jobs, `--CDCMAKE_CUDA_COMPILER=${nvcc}`];
  if (process.env.EET_CUDA_ARCHS) args.push(`--CDCMAKE_CUDA_ARCHITECTURES=${process.env.EET_CUDA_ARCHS}`);
  return run(process.execPath, args);
}

function buildGyp() {
  // npm exposes its bundled node-gyp to scripts; calling it directly avoids a registry download via npx.
  const bundled = process.env.npm_config_node_gyp;
  if (bundled && fs.existsSync(bundled)) return run(process.execPath, [bundled, 'rebuild', '--jobs=2', '--nodedir=' + path.dirname(path.dirname(process.execPath))]);
  const gyp = which('node-gyp');
  if (gyp) return run(gyp, ['rebuild', '--jobs=2']);
  const npmGyp = path.join(path.dirname(process.execPath), '..', 'lib', 'node_modules', 'npm', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js');
  if (fs.existsSync(npmGyp)) return run(process.execPath, [npmGyp, 'rebuild', '--jobs=2', '--nodedir=' + path.dirname(path.dirname(process.execPath))]);
  log('no node-gyp found (it ships with npm); install npm or a C++ toolchain');
  return false;
}

function main() {
  if (!force && prebuildLoads()) {
    log('using the prebuilt binary');
    return 0;
  }
  const nvcc = process.env.EET_BUILD === 'gyp' ? null : findNvcc();
  const cmake = which('cmake');
  if (nvcc && cmake) {
    log(`building with CUDA (nvcc: ${nvcc})`);
    if (buildCmake(nvcc)) return 0;
    log('the CUDA build failed; see the output above');
    return 1;
  }
  log(nvcc ? 'cmake not found: building without CUDA (cpu and emu backends only)'
           : 'nvcc not found: building without CUDA (cpu and emu backends only)');
  return buildGyp() ? 0 : 1;
}

try {
  process.exitCode = main();
} catch (e) {
  log(e.stack || String(e));
  process.exitCode = 1;
}

#!/usr/bin/env node
// Chooses how the addon gets onto this machine (toolchain.md "Choosing the build at install"):
//   1. a prebuilt binary under prebuilds/ that loads here          -> nothing to build
//   2. nvcc and cmake are available                                -> cmake-js: cpu + emu + cuda backends
//   3. otherwise                                                   -> npm's node-gyp with binding.gyp: cpu + emu
// `--force` skips step 1. EET_CUDA_ARCHS overrides the CUDA architectures (CMake syntax, e.g. "90" or
// "80-real;90"); EET_BUILD=gyp forces step 3; EET_BUILD=cuda makes step 2 required (release prebuilds: fail rather
// than fall back to a build without CUDA). Exits non-zero with the build tool's output when a build fails.
// Step 1 needs no compiler at all: a user with a matching prebuild installs with node alone.
'use strict';
const { spawnSync } = require('child_process');
const fs = require('fs');
const path = require('path');

const root = path.resolve(__dirname, '..');
const force = process.argv.includes('--force');

function log(msg) {
  process.stderr.write(`eet: ${msg}\n`);
}

// The prebuild node-gyp-build picks for this platform, if it loads; null otherwise. PREBUILDS_ONLY makes
// node-gyp-build ignore build/ (it is read when node-gyp-build is first required, so set it before).
function prebuildLoads() {
  const dir = path.join(root, 'prebuilds', `${process.platform}-${process.arch}`);
  if (!fs.existsSync(dir)) {
    log(`no prebuilt binary for ${process.platform}-${process.arch} in this package; building from source`);
    return null;
  }
  try {
    process.env.PREBUILDS_ONLY = '1';
    const gypBuild = require('node-gyp-build');
    const file = gypBuild.resolve(root);
    require(file);
    return file;
  } catch (e) {
    log(`prebuild did not load (${e.message.split('\n')[0]}); building from source`);
    return null;
  } finally {
    delete process.env.PREBUILDS_ONLY;
  }
}

// An executable on PATH, found without a shell (install must work with node alone on PATH).
function which(cmd) {
  for (const dir of (process.env.PATH || '').split(path.delimiter)) {
    if (!dir) continue;
    const file = path.join(dir, cmd);
    try {
      fs.accessSync(file, fs.constants.X_OK);
      if (fs.statSync(file).isFile()) return file;
    } catch {
      // not here
    }
  }
  return null;
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

// A build tool can exit 0 without building (a stray `node-gyp` shim on PATH did): the addon must be there, new.
function builtSince(start) {
  const file = path.join(root, 'build', 'Release', 'eet.node');
  try {
    if (fs.statSync(file).mtimeMs >= start - 2000) return true;
  } catch {
    // missing
  }
  log(`the build reported success but did not produce ${path.relative(root, file)}`);
  return false;
}

function main() {
  const mode = process.env.EET_BUILD || '';
  if (!['', 'gyp', 'cuda'].includes(mode)) {
    log(`EET_BUILD must be "gyp" or "cuda", got ${JSON.stringify(mode)}`);
    return 1;
  }
  const prebuild = force ? null : prebuildLoads();
  if (prebuild) {
    log(`using the prebuilt binary ${path.relative(root, prebuild)}; nothing to compile`);
    return 0;
  }
  const start = Date.now();
  const nvcc = mode === 'gyp' ? null : findNvcc();
  const cmake = mode === 'gyp' ? null : which('cmake');
  if (nvcc && cmake) {
    log(`building with CUDA (nvcc: ${nvcc})`);
    if (buildCmake(nvcc) && builtSince(start)) return 0;
    log('the CUDA build failed; see the output above');
    return 1;
  }
  const why = mode === 'gyp' ? 'EET_BUILD=gyp' : nvcc ? 'cmake not found' : 'nvcc not found';
  if (mode === 'cuda') {
    log(`EET_BUILD=cuda but ${why}: not building without CUDA`);
    return 1;
  }
  log(`${why}: building without CUDA (cpu and emu backends only)`);
  return buildGyp() && builtSince(start) ? 0 : 1;
}

try {
  process.exitCode = main();
} catch (e) {
  log(e.stack || String(e));
  process.exitCode = 1;
}

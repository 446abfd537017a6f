#!/usr/bin/env node
// Makes the prebuilt binary that ships in the npm package (README "Prebuilt binaries").
//   npm run make-prebuild                       build the release binary, then place it (below)
//   node scripts/prebuild.js --from FILE [--to DIR]   place an addon that is already built (tests, CI artifacts)
// The release build is the CUDA variant for every default architecture of CMakeLists.txt (SASS sm_80/86/89/90 +
// compute_90 PTX; EET_CUDA_ARCHS is ignored), with EET_BUILD=cuda so that a machine without nvcc or cmake fails
// instead of shipping a binary without CUDA; the result must hold a CUDA fat binary (.nv_fatbin).
// Placing: copy to DIR/prebuilds/<platform>-<arch>/eet.napi[.glibc|.musl].node (DIR: the repository root), strip
// it, and remove what was there (node-gyp-build picks among files by tag, not by age). Node-API 8: one binary for
// every Node version >= 20. The libc tag keeps a glibc binary from being picked on musl (Alpine), where it could
// not load; those users build from source. Prints the binary's floors (highest GLIBC_/GLIBCXX_ symbol versions).
'use strict';
const { execFileSync, spawnSync } = require('child_process');
const fs = require('fs');
const path = require('path');

const root = path.resolve(__dirname, '..');

function arg(name) {
  const i = process.argv.indexOf(name);
  return i > 0 ? process.argv[i + 1] : undefined;
}

function libcTag() {
  if (process.platform !== 'linux') return '';
  return fs.existsSync('/etc/alpine-release') ? '.musl' : '.glibc';
}

// `objdump` output, or null where binutils is missing.
function objdump(flag, file) {
  const r = spawnSync('objdump', [flag, file], { encoding: 'utf8', maxBuffer: 1 << 28 });
  return r.status === 0 ? r.stdout : null;
}

// Compares dotted versions numerically ('2.9' < '2.34').
function compareVersions(a, b) {
  const x = a.split('.').map(Number);
  const y = b.split('.').map(Number);
  for (let i = 0; i < Math.max(x.length, y.length); i++) {
    if ((x[i] || 0) !== (y[i] || 0)) return (x[i] || 0) - (y[i] || 0);
  }
  return 0;
}

// The highest version of each versioned library the binary imports symbols from, e.g. { GLIBC: '2.34' }.
function floors(file) {
  const text = objdump('-T', file);
  if (text === null) return null;
  const best = {};
  for (const [, lib, ver] of text.matchAll(/\((GLIBC|GLIBCXX|CXXABI)_([0-9.]+)\)/g)) {
    if (!best[lib] || compareVersions(ver, best[lib]) > 0) best[lib] = ver;
  }
  return best;
}

function buildRelease() {
  const env = { ...process.env, EET_BUILD: 'cuda' };
  delete env.EET_CUDA_ARCHS; // all default architectures
  execFileSync(process.execPath, [path.join(__dirname, 'install.js'), '--force'], { cwd: root, env, stdio: 'inherit' });
  const built = path.join(root, 'build', 'Release', 'eet.node');
  const sections = objdump('-h', built);
  if (sections !== null && !/\s\.nv_fatbin\s/.test(sections)) {
    throw new Error(`${built} has no .nv_fatbin section: the build did not compile CUDA code`);
  }
  return built;
}

function place(built, dir) {
  const outDir = path.join(dir, 'prebuilds', `${process.platform}-${process.arch}`);
  fs.rmSync(outDir, { recursive: true, force: true });
  fs.mkdirSync(outDir, { recursive: true });
  const out = path.join(outDir, `eet.napi${libcTag()}.node`);
  fs.copyFileSync(built, out);
  if (process.platform === 'linux') execFileSync('strip', ['--strip-unneeded', out]);
  return out;
}

function main() {
  const from = arg('--from');
  const to = path.resolve(arg('--to') || root);
  const built = from ? path.resolve(from) : buildRelease();
  const out = place(built, to);
  const f = process.platform === 'linux' ? floors(out) : null;
  const floorText = f ? Object.entries(f).sort().map(([k, v]) => `${k} ${v}`).join(', ') : 'unknown (no objdump)';
  console.log(`prebuild: ${out} (${(fs.statSync(out).size / 1e6).toFixed(1)} MB); needs ${floorText}`);
}

main();

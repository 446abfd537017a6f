#!/usr/bin/env node
// Installs the test oracles that stay out of package-lock.json: node-llama-cpp (llama.cpp, CPU prebuilt) for
// test/models/llamacpp.test.ts, test/models/gguf-llamacpp.test.ts and test/oracles/. `npm test` runs this first.
//
// Why outside the lockfile: node-llama-cpp lists an optional binary package for every platform, and this registry
// does not serve most of them, so a lockfile that holds node-llama-cpp lacks their entries and `npm ci` refuses it.
// `npm install --no-save` adds the pinned versions to node_modules without touching package.json or the lockfile
// (and without running this package's own install script, which npm runs only for an argument-less install).
// Optional packages are omitted (its CUDA/Vulkan builds are hundreds of MB); the CPU build for this platform is
// named explicitly instead.
//
// Idempotent: when the pinned versions are already in node_modules it does nothing (no npm call). `npm ci` empties
// node_modules, so the next `npm test` installs them again (from npm's cache when it has them).
// Exits non-zero when the install fails: the oracle tests must run, never be skipped for want of their oracle.
'use strict';
const { spawnSync } = require('child_process');
const fs = require('fs');
const path = require('path');

const VERSION = '3.22.1';
// node-llama-cpp's prebuilt CPU binary packages (its optionalDependencies), by Node's platform-arch.
const CPU_BUILD = {
  'linux-x64': '@node-llama-cpp/linux-x64',
  'linux-arm64': '@node-llama-cpp/linux-arm64',
  'darwin-arm64': '@node-llama-cpp/mac-arm64-metal',
  'darwin-x64': '@node-llama-cpp/mac-x64',
  'win32-x64': '@node-llama-cpp/win-x64',
};

const root = path.resolve(__dirname, '..');

function wanted() {
  const pkgs = ['node-llama-cpp'];
  const cpu = CPU_BUILD[`${process.platform}-${process.arch}`];
  if (cpu) pkgs.push(cpu);
  return pkgs;
}

function installedVersion(name) {
  try {
    return JSON.parse(fs.readFileSync(path.join(root, 'node_modules', name, 'package.json'), 'utf8')).version;
  } catch {
    return null;
  }
}

function main() {
  const pkgs = wanted();
  const missing = pkgs.filter((p) => installedVersion(p) !== VERSION);
  if (missing.length === 0) return 0;
  if (!CPU_BUILD[`${process.platform}-${process.arch}`]) {
    process.stderr.write(`oracles: no prebuilt llama.cpp CPU package is known for ${process.platform}-${process.arch}\n`);
  }
  // Under `npm test`, npm_execpath is the running npm's CLI; otherwise npm from PATH.
  const npm = /npm-cli\.js$/.test(process.env.npm_execpath || '') ? [process.execPath, process.env.npm_execpath] : ['npm'];
  const args = ['install', '--no-save', '--omit=optional', '--prefer-offline', '--no-audit', '--no-fund',
    ...pkgs.map((p) => `${p}@${VERSION}`)];
  process.stderr.write(`oracles: ${missing.join(', ')} missing; npm ${args.join(' ')}\n`);
  const t0 = Date.now();
  const r = spawnSync(npm[0], [...npm.slice(1), ...args], { cwd: root, stdio: 'inherit' });
  if (r.error) throw r.error;
  const still = pkgs.filter((p) => installedVersion(p) !== VERSION);
  if (r.status !== 0 || still.length) {
    process.stderr.write(`oracles: install failed (npm exit ${r.status}; missing: ${still.join(', ') || 'none'})\n`);
    return 1;
  }
  process.stderr.write(`oracles: installed in ${((Date.now() - t0) / 1000).toFixed(1)} s\n`);
  return 0;
}

process.exitCode = main();

#!/usr/bin/env node
// Checks that every __global__ function in cuda/ was launched under the emu backend during the tests.
//   EET_EMU_TRACE=/tmp/trace.txt npm test && node scripts/kernel-coverage.js /tmp/trace.txt
// The emulator appends "<object> <offset> <demangled name>" the first time each kernel is launched in a process
// (cuda/emu/emu.cpp trace_launch); the kernel names in the sources come from their `__global__` declarations.
'use strict';
const fs = require('fs');
const path = require('path');

const root = path.resolve(__dirname, '..');
const tracePath = process.argv[2];
if (!tracePath) {
  console.error('usage: kernel-coverage.js <trace file written with EET_EMU_TRACE>');
  process.exit(2);
}

function kernelsInSources() {
  const found = new Map(); // name -> file
  const walk = (dir) => {
    for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
      const p = path.join(dir, e.name);
      if (e.isDirectory()) walk(p);
      else if (/\.(cu|cuh)$/.test(e.name)) {
        const src = fs.readFileSync(p, 'utf8').replace(/\/\/.*$/gm, '').replace(/\/\*[\s\S]*?\*\//g, '');
        const re = /__global__\s+(?:__launch_bounds__\s*\([^)]*\)\s*)?void\s+(?:__launch_bounds__\s*\([^)]*\)\s*)?(\w+)\s*\(/g;
        for (let m; (m = re.exec(src)); ) found.set(m[1], path.relative(root, p));
      }
    }
  };
  walk(path.join(root, 'cuda'));
  return found;
}

function launchedNames() {
  const names = new Set();
  for (const line of fs.readFileSync(tracePath, 'utf8').split('\n')) {
    const parts = line.split(' ');
    if (parts.length < 3) continue;
    let sig = parts.slice(2).join(' ').replace(/^void /, '');
    sig = sig.slice(0, sig.search(/[<(]/) === -1 ? sig.length : sig.search(/[<(]/));
    names.add(sig.split('::').pop());
  }
  return names;
}

const kernels = kernelsInSources();
const launched = launchedNames();
const missing = [...kernels].filter(([name]) => !launched.has(name));
for (const [name, file] of [...kernels].sort()) console.log(`${launched.has(name) ? 'launched' : 'MISSING '}  ${name}  (${file})`);
console.log(`\n${kernels.size - missing.length} of ${kernels.size} __global__ functions in cuda/ were launched under emu`);
if (missing.length) process.exit(1);

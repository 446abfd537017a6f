#!/usr/bin/env node
// Source lists for binding.gyp (gyp has no globs). `node scripts/sources.js host` prints the host C++ sources;
// `node scripts/sources.js emu` writes one-line wrappers that compile each cuda/*.cu with the host compiler for
// the emu backend (the same ones CMakeLists.txt generates) and prints their paths.
'use strict';
const fs = require('fs');
const path = require('path');

const root = path.resolve(__dirname, '..');
const rel = (p) => path.relative(root, p).split(path.sep).join('/');
const list = (dir, ext) =>
  fs.existsSync(path.join(root, dir))
    ? fs.readdirSync(path.join(root, dir)).filter((f) => f.endsWith(ext)).sort().map((f) => path.join(root, dir, f))
    : [];

const what = process.argv[2];
if (what === 'host') {
  const files = ['native', 'engine', 'engine/cpu', 'engine/fast', 'cuda', 'cuda/emu'].flatMap((d) => list(d, '.cpp'));
  process.stdout.write(files.map(rel).join('\n') + '\n');
} else if (what === 'emu') {
  const outDir = path.join(root, 'build', 'emu-gen');
  fs.mkdirSync(outDir, { recursive: true });
  const out = [];
  for (const src of [...list('cuda', '.cu'), ...list('cuda/emu', '.cu')]) {
    const name = `${path.basename(path.dirname(src))}_${path.basename(src, '.cu')}.cpp`;
    const wrapper = path.join(outDir, name);
    const content = `// generated: ${rel(src)} compiled by the host compiler for the emu backend\n#include "../../${rel(src)}"\n`;
    if (!fs.existsSync(wrapper) || fs.readFileSync(wrapper, 'utf8') !== content) fs.writeFileSync(wrapper, content);
    out.push(rel(wrapper));
  }
  process.stdout.write(out.join('\n') + '\n');
} else {
  console.error('usage: sources.js host|emu');
  process.exit(2);
}

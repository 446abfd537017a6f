#!/usr/bin/env node
// The dependency rule of the C++ layers (design.md "Layers": lib -> native -> engine; cuda/ implements engine's op
// interface), checked on the #include lines of every C++/CUDA source:
//   engine/  includes engine/ only: nothing from cuda/ (nor native/), and no CUDA toolkit header (engine/ is plain
//            C++, built without nvcc by the gyp build too)
//   native/  includes native/ and engine/ only, no CUDA toolkit header; system headers (napi.h, node_api.h, the
//            C++ library) are fine
//   cuda/    includes cuda/ and engine/ only
// Each include is resolved as the compilers resolve it: "quoted" from the including file's folder, then from the
// repository root (both builds put it on the include path); <angled> from the repository root, else it is a system
// header. A quoted include found nowhere is taken relative to the including file (or to the root when it starts
// with a top-level folder of the repository), so a typo cannot hide a violation.
//   node scripts/check-deps.js [root]   prints every violation as file:line and exits 1 if there is any
// test/unit/deps.test.ts runs it (jest, so CI enforces it) and feeds it violating sources to prove it reports them.
'use strict';
const fs = require('fs');
const path = require('path');

const SOURCE = /\.(c|cc|cpp|cxx|h|hh|hpp|inl|cu|cuh)$/;
// What each layer may include from the repository.
const ALLOWED = { engine: ['engine'], native: ['native', 'engine'], cuda: ['cuda', 'engine'] };
const WHY = {
  engine: 'engine/ includes only engine/ (cuda/ implements its interfaces, native/ uses them)',
  native: 'native/ includes only engine/ and its own headers',
  cuda: 'cuda/ includes only cuda/ and engine/',
};
// CUDA toolkit headers (runtime, math libraries, CCCL); only cuda/ may use them.
const CUDA_TOOLKIT = /^(cuda\w*\.h|cuda\/|cub\/|thrust\/|cooperative_groups|cu(blas|fft|rand|sparse|solver)\w*\.h|nvrtc\.h|nvml\.h|nvtx|mma\.h)/;

// Blanks /* */ comments (keeping line numbers); // comments cannot start a line with #include.
function stripBlockComments(text) {
  return text.replace(/\/\*[\s\S]*?\*\//g, (c) => c.replace(/[^\n]/g, ' '));
}

// The repository-relative path an include refers to, or null for a system header.
function resolve(root, file, spelled, quoted) {
  const exists = (rel) => fs.existsSync(path.join(root, rel));
  const fromRoot = path.posix.normalize(spelled);
  if (quoted) {
    const fromFile = path.posix.normalize(path.posix.join(path.posix.dirname(file), spelled));
    if (exists(fromFile)) return fromFile;
    if (exists(fromRoot)) return fromRoot;
    const top = fromRoot.split('/')[0];
    if (!spelled.startsWith('.') && top !== fromRoot && fs.existsSync(path.join(root, top))) return fromRoot;
    return fromFile;
  }
  return exists(fromRoot) ? fromRoot : null;
}

// Violations in one source file. `file` is repository-relative with forward slashes; `text` its contents.
function checkFile(root, file, text) {
  const layer = file.split('/')[0];
  const allowed = ALLOWED[layer];
  if (!allowed) return [];
  const out = [];
  stripBlockComments(text)
    .split('\n')
    .forEach((line, i) => {
      const m = /^\s*#\s*include\s*([<"])([^>"]+)[>"]/.exec(line);
      if (!m) return;
      const quoted = m[1] === '"';
      const spelled = m[2].trim();
      const include = quoted ? `"${spelled}"` : `<${spelled}>`;
      const at = { file, line: i + 1, include };
      const target = resolve(root, file, spelled, quoted);
      if (target === null || !fs.existsSync(path.join(root, target))) {
        // No such file in the repository: a system header, or a quoted include looked up on the system path.
        if (layer !== 'cuda' && CUDA_TOOLKIT.test(spelled)) {
          out.push({ ...at, target: spelled, message: `CUDA toolkit header in ${layer}/: only cuda/ may include one` });
        }
        if (target === null) return;
      }
      const top = target.split('/')[0];  // '..' when it leaves the repository
      if (!target.includes('/') || !allowed.includes(top)) out.push({ ...at, target, message: WHY[layer] });
    });
  return out;
}

function sourcesUnder(root, dir) {
  const abs = path.join(root, dir);
  if (!fs.existsSync(abs)) return [];
  return fs.readdirSync(abs, { withFileTypes: true }).flatMap((e) => {
    const rel = `${dir}/${e.name}`;
    if (e.isDirectory()) return sourcesUnder(root, rel);
    return SOURCE.test(e.name) ? [rel] : [];
  });
}

// Violations in every source of the checked layers under root.
function checkTree(root) {
  return Object.keys(ALLOWED)
    .flatMap((layer) => sourcesUnder(root, layer))
    .sort()
    .flatMap((file) => checkFile(root, file, fs.readFileSync(path.join(root, file), 'utf8')));
}

const format = (v) => `${v.file}:${v.line}: ${v.include} -> ${v.target}: ${v.message}`;

module.exports = { checkFile, checkTree, format };

if (require.main === module) {
  const root = path.resolve(process.argv[2] || path.join(__dirname, '..'));
  const violations = checkTree(root);
  for (const v of violations) console.error(format(v));
  const n = Object.keys(ALLOWED).flatMap((layer) => sourcesUnder(root, layer)).length;
  console.log(`check-deps: ${n} sources in ${Object.keys(ALLOWED).join('/, ')}/ checked, ${violations.length} violation(s)`);
  if (violations.length) process.exit(1);
}

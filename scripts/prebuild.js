#!/usr/bin/env node
// Makes the prebuilt binary shipped in the npm package: the CUDA build for every default architecture
// (SASS sm_80/86/89/90 + compute_90 PTX), stripped, at prebuilds/<platform>-<arch>/eet.napi.node where
// node-gyp-build finds it (Node-API 8: one binary for every Node version >= 20). Needs nvcc + cmake.
'use strict';
const { execFileSync } = require('child_process');
const fs = require('fs');
const path = require('path');

const root = path.resolve(__dirname, '..');
const env = { ...process.env };
delete env.EET_CUDA_ARCHS; // all default architectures
delete env.EET_BUILD;
execFileSync(process.execPath, [path.join(__dirname, 'install.js'), '--force'], { cwd: root, env, stdio: 'inherit' });
const built = path.join(root, 'build', 'Release', 'eet.node');
const dir = path.join(root, 'prebuilds', `${process.platform}-${process.arch}`);
fs.mkdirSync(dir, { recursive: true });
const out = path.join(dir, 'eet.napi.node');
fs.copyFileSync(built, out);
execFileSync('strip', ['--strip-unneeded', out]);
console.log(`prebuild: ${path.relative(root, out)} (${(fs.statSync(out).size / 1e6).toFixed(1)} MB)`);

// Issue 11: a package with a prebuilt binary installs and runs without any build tool. The addon this checkout
// built (build/Release/eet.node: the CUDA variant when nvcc was found, as CI builds it) is placed by
// scripts/prebuild.js into the unpacked tarball, which is packed again (as a release is) and installed with npm
// into an empty folder whose PATH holds node and sh only: no compiler, make, cmake or nvcc. The install must
// succeed, say it used the prebuild, leave no build/ behind; the package then loads the prebuild and generates
// stories260K's reference tokens on cpu; so must an install with --ignore-scripts (node-gyp-build finds the
// prebuild at run time). A control proves the PATH cannot build: without the prebuild the same install script
// fails there.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { ROOT, generateIn, npmCli, out, pack, referenceTokens, run, unpack, userEnv, type Packed } from './pack-util';

const PREBUILD = path.join('prebuilds', `${process.platform}-${process.arch}`, 'eet.napi.glibc.node');
const TOOLS = ['cc', 'gcc', 'c++', 'g++', 'clang', 'clang++', 'make', 'cmake', 'ninja', 'nvcc'];

let tmp: string;
let bin: string; // the only folder on PATH
let app: string; // the user's empty project
let withPrebuild: Packed;

/** PATH for the user: a folder holding node and sh only. */
const bareEnv = (): NodeJS.ProcessEnv => userEnv({ PATH: bin });

beforeAll(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'eet-prebuild-'));
  const built = path.join(ROOT, 'build', 'Release', 'eet.node');
  if (!fs.existsSync(built)) throw new Error(`${built} is missing: build the addon first (npm ci / npm install does)`);

  const stage = unpack(pack(ROOT, path.join(tmp, 'src')).tarball, path.join(tmp, 'stage'));
  fs.rmSync(path.join(stage, 'prebuilds'), { recursive: true, force: true });
  const r = run(process.execPath, [path.join(ROOT, 'scripts', 'prebuild.js'), '--from', built, '--to', stage], ROOT, userEnv());
  if (r.status !== 0) throw new Error(`scripts/prebuild.js failed: ${out(r)}`);
  withPrebuild = pack(stage, path.join(tmp, 'release'));

  bin = path.join(tmp, 'bin');
  fs.mkdirSync(bin);
  fs.symlinkSync(process.execPath, path.join(bin, 'node'));
  fs.symlinkSync('/bin/sh', path.join(bin, 'sh'));
  app = path.join(tmp, 'app');
  fs.mkdirSync(app);
  fs.writeFileSync(path.join(app, 'package.json'), JSON.stringify({ name: 'app', version: '1.0.0', private: true }));
});

afterAll(() => {
  if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
});

test('the release tarball holds the prebuild where node-gyp-build looks', () => {
  expect(withPrebuild.files).toContain(PREBUILD.split(path.sep).join('/'));
});

test('the bare PATH has node and sh, and no compiler, make, cmake or nvcc', () => {
  const which = (tool: string) => run('/bin/sh', ['-c', `command -v ${tool} || true`], tmp, bareEnv()).stdout.trim();
  expect(TOOLS.map(which).filter(Boolean)).toEqual([]);
  expect(['node', 'sh'].map(which)).toEqual([path.join(bin, 'node'), path.join(bin, 'sh')]);
});

test('npm installs the tarball into an empty folder with that PATH, using the prebuild and compiling nothing', () => {
  const args = [npmCli(), 'install', withPrebuild.tarball, '--prefer-offline', '--foreground-scripts', '--no-audit', '--no-fund'];
  const r = run(process.execPath, args, app, bareEnv(), 300_000);
  expect({ status: r.status, log: r.status === 0 ? '' : out(r) }).toEqual({ status: 0, log: '' });
  // scripts/install.js ran (npm runs it for a dependency) and stopped at the prebuild.
  expect(r.stdout + r.stderr).toContain(`eet: using the prebuilt binary ${PREBUILD}; nothing to compile`);
  expect(fs.existsSync(path.join(app, 'node_modules', 'eet', 'build'))).toBe(false);
});

test('the installed package loads the prebuild and generates stories260K on cpu', () => {
  const g = generateIn(app, bareEnv());
  expect(g.addon).toBe(path.join(app, 'node_modules', 'eet', PREBUILD));
  expect(g.tokens).toEqual(referenceTokens());
});

test('with install scripts disabled (--ignore-scripts) the prebuild still loads at run time', () => {
  const quiet = path.join(tmp, 'app-ignore-scripts');
  fs.mkdirSync(quiet);
  fs.writeFileSync(path.join(quiet, 'package.json'), JSON.stringify({ name: 'quiet', version: '1.0.0', private: true }));
  const args = [npmCli(), 'install', withPrebuild.tarball, '--ignore-scripts', '--prefer-offline', '--no-audit', '--no-fund'];
  const r = run(process.execPath, args, quiet, bareEnv(), 300_000);
  expect({ status: r.status, log: r.status === 0 ? '' : out(r) }).toEqual({ status: 0, log: '' });
  const g = generateIn(quiet, bareEnv());
  expect(g.addon).toBe(path.join(quiet, 'node_modules', 'eet', PREBUILD));
  expect(g.tokens).toEqual(referenceTokens());
});

test('control: without the prebuild, the install script cannot build with that PATH', () => {
  const pkg = path.join(app, 'node_modules', 'eet');
  fs.rmSync(path.join(pkg, 'prebuilds'), { recursive: true, force: true });
  const r = run(process.execPath, ['scripts/install.js'], pkg, bareEnv(), 120_000);
  expect(r.status).not.toBe(0);
  // It got as far as trying to build, and the build tool failed (node-gyp finds no Python, make or compiler).
  expect(r.stderr).toMatch(/building without CUDA/);
  expect(r.stdout + r.stderr).toContain('gyp ERR! not ok');
});

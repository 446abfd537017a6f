// Issue 11: the npm package builds from source. `npm pack` (what `npm publish` uploads), unpacked into a temp
// folder, built there by scripts/install.js with node-gyp (cpu + emu: EET_BUILD=gyp, what a machine without nvcc
// or cmake gets), then `require('eet')` from that folder generates stories260K's reference tokens on cpu.
// The build sees only the tarball's files (plus node_modules for node-addon-api): a file the build reads but
// `files` in package.json leaves out (scripts/sources.js was one) fails it.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { ROOT, generateIn, out, pack, referenceTokens, run, unpack, userEnv, type Packed } from './pack-util';

let tmp: string;
let packed: Packed;
let app: string; // a folder with node_modules/eet = the unpacked tarball
let pkg: string;

beforeAll(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'eet-pack-'));
  packed = pack(ROOT, tmp);
  app = path.join(tmp, 'app');
  const unpacked = unpack(packed.tarball, path.join(tmp, 'unpacked'));
  pkg = path.join(app, 'node_modules', 'eet');
  fs.mkdirSync(path.dirname(pkg), { recursive: true });
  fs.renameSync(unpacked, pkg);
  // A prebuild in the working tree (npm run make-prebuild) would be packed too; this test is about the source build.
  fs.rmSync(path.join(pkg, 'prebuilds'), { recursive: true, force: true });
  // The runtime and build dependencies (node-addon-api's headers) from this checkout, not from the registry.
  fs.symlinkSync(path.join(ROOT, 'node_modules'), path.join(pkg, 'node_modules'), 'dir');
});

afterAll(() => {
  if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
});

describe('npm pack', () => {
  test('the tarball holds the build entry points and the sources they read', () => {
    for (const f of ['package.json', 'binding.gyp', 'CMakeLists.txt', 'scripts/install.js', 'scripts/sources.js', 'dist/index.js']) {
      expect(packed.files).toContain(f);
    }
    for (const dir of ['native', 'engine', 'engine/cpu', 'cuda', 'cuda/emu']) {
      for (const f of fs.readdirSync(path.join(ROOT, dir)).filter((x) => /\.(cpp|h|cu|cuh)$/.test(x))) {
        expect(packed.files).toContain(`${dir}/${f}`);
      }
    }
    // Tests and development scripts stay out of what users download.
    expect(packed.files.filter((f) => /^(test|lib|docs|\.ci)\/|^scripts\/(oracles|prebuild)\.js$/.test(f))).toEqual([]);
  });
});

describe('a source build from the tarball with node-gyp (cpu + emu)', () => {
  test('scripts/install.js builds it and the addon generates stories260K on cpu', () => {
    const t0 = Date.now();
    const r = run(process.execPath, ['scripts/install.js', '--force'], pkg, userEnv({ EET_BUILD: 'gyp' }), 400_000);
    expect({ status: r.status, log: r.status === 0 ? '' : out(r) }).toEqual({ status: 0, log: '' });
    expect(r.stderr).toContain('EET_BUILD=gyp: building without CUDA');
    expect(r.stdout + r.stderr).toContain('gyp info ok');
    process.stderr.write(`packaging: node-gyp build of the tarball took ${((Date.now() - t0) / 1000).toFixed(1)} s\n`);

    const g = generateIn(app, userEnv());
    expect(g.addon).toBe(path.join(pkg, 'build', 'Release', 'eet.node'));
    expect(g.tokens).toEqual(referenceTokens());
    expect(g.cudaUnavailableReason).toMatch(/no CUDA support/);
  });
});

// Helpers for the packaging tests: pack the package as npm publishes it, unpack it, run npm in a clean
// environment, and generate with stories260K in a child process through `require('eet')` as a user would.
import { spawnSync, type SpawnSyncReturns } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { MODEL, references } from '../util/stories260k';

export const ROOT = path.resolve(__dirname, '../..');

/** npm's CLI script: the npm running `npm test`, else the one installed beside node. */
export function npmCli(): string {
  const fromEnv = process.env.npm_execpath;
  if (fromEnv && /npm-cli\.js$/.test(fromEnv)) return fromEnv;
  const besideNode = path.resolve(path.dirname(process.execPath), '..', 'lib', 'node_modules', 'npm', 'bin', 'npm-cli.js');
  if (fs.existsSync(besideNode)) return besideNode;
  throw new Error('npm-cli.js not found (run the tests with `npm test`)');
}

/**
 * The environment of a user's shell: no npm_* variables from the `npm test` that runs jest (they would steer the
 * nested npm and scripts/install.js, e.g. npm_config_node_gyp), no EET_* build or test switches, and none of the
 * PATH entries npm adds for scripts (node_modules/.bin folders, its node-gyp shim).
 */
export function userEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (!/^(npm_|EET_|INIT_CWD$|NODE_ENV$|JEST_)/i.test(k)) env[k] = v;
  }
  env.PATH = (env.PATH ?? '')
    .split(path.delimiter)
    .filter((d) => d && !/node-gyp-bin|node_modules[\\/]\.bin/.test(d))
    .join(path.delimiter);
  return { ...env, ...extra };
}

export function run(cmd: string, args: string[], cwd: string, env: NodeJS.ProcessEnv, timeoutMs = 300_000): SpawnSyncReturns<string> {
  const r = spawnSync(cmd, args, { cwd, env, encoding: 'utf8', timeout: timeoutMs, maxBuffer: 1 << 26 });
  if (r.error) throw r.error;
  return r;
}

/** Output of a child for a failure message. */
export const out = (r: SpawnSyncReturns<string>): string => `exit ${r.status} ${r.signal ?? ''}\n${r.stdout}\n${r.stderr}`;

export interface Packed {
  tarball: string;
  files: string[];
}

/**
 * `npm pack` of `dir` into `dest`. --ignore-scripts: no `prepare` (it would recompile dist/ while other test files
 * run the CLI from it); `npm test` compiles dist/ before jest, and the test checks it is there.
 */
export function pack(dir: string, dest: string): Packed {
  if (!fs.existsSync(path.join(dir, 'dist', 'index.js'))) {
    throw new Error(`${dir}/dist/index.js is missing: compile it first (npm test does: tsc -p tsconfig.build.json)`);
  }
  fs.mkdirSync(dest, { recursive: true });
  const r = run(process.execPath, [npmCli(), 'pack', '--ignore-scripts', '--json', '--pack-destination', dest], dir, userEnv());
  if (r.status !== 0) throw new Error(`npm pack failed: ${out(r)}`);
  const info = JSON.parse(r.stdout) as Array<{ filename: string; files: Array<{ path: string }> }>;
  return { tarball: path.join(dest, info[0].filename), files: info[0].files.map((f) => f.path) };
}

/** Unpacks a tarball into `dir` (npm tarballs hold one folder, package/); returns the package folder. */
export function unpack(tarball: string, dir: string): string {
  fs.mkdirSync(dir, { recursive: true });
  const r = run('tar', ['-xzf', tarball, '-C', dir], dir, process.env);
  if (r.status !== 0) throw new Error(`tar failed: ${out(r)}`);
  return path.join(dir, 'package');
}

/** What the generation child prints. */
export interface Generated {
  /** The file node-gyp-build loads for the package (the addon that ran). */
  addon: string;
  tokens: number[];
  cudaUnavailableReason: string | null;
}

export const PROMPT = 'Once upon a time';
export const NEW_TOKENS = 40;

/** run.c's greedy tokens after PROMPT (../shared/models/stories260K/README.md), the first NEW_TOKENS of them. */
export function referenceTokens(): number[] {
  const r = references().find((x) => x.prompt === PROMPT)!;
  const generated = r.printedIds.slice(r.promptIds.length - 1);
  expect(generated.length).toBeGreaterThanOrEqual(NEW_TOKENS);
  return generated.slice(0, NEW_TOKENS);
}

/** `require('eet')` from `cwd` in a child process, greedy generation on cpu; returns what it printed. */
export function generateIn(cwd: string, env: NodeJS.ProcessEnv): Generated {
  const script = `
    const eet = require('eet');
    const pkg = require('path').dirname(require.resolve('eet/package.json'));
    const addon = require(require.resolve('node-gyp-build', { paths: [pkg] })).resolve(pkg);
    (async () => {
      const model = await eet.loadModel(${JSON.stringify(MODEL)}, { device: 'cpu', dtype: 'float32' });
      const r = await model.generate(${JSON.stringify(PROMPT)}, { temperature: 0, maxNewTokens: ${NEW_TOKENS} });
      await model.dispose();
      const { cudaUnavailableReason } = eet.deviceReport();
      process.stdout.write(JSON.stringify({ addon, tokens: r.tokens, cudaUnavailableReason }));
    })().catch((e) => { console.error(e); process.exit(1); });`;
  const r = run(process.execPath, ['-e', script], cwd, env, 120_000);
  if (r.status !== 0) throw new Error(`generation failed: ${out(r)}`);
  return JSON.parse(r.stdout) as Generated;
}

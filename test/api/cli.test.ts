// The `eet` CLI as a child process (dist/cli/main.js: run `npx tsc -p tsconfig.build.json` first).
import { spawn, spawnSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { MODEL, references } from '../util/stories260k';

const root = path.resolve(__dirname, '../..');
const cli = path.join(root, 'dist', 'cli', 'main.js');

function eet(...args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [cli, ...args], { cwd: root, encoding: 'utf8', timeout: 300_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe('eet CLI', () => {
  test('dist/cli/main.js starts with a node shebang', () => {
    expect(fs.readFileSync(cli, 'utf8').startsWith('#!/usr/bin/env node\n')).toBe(true);
  });

  test('generate "Once upon a time" --temperature 0 --max-new-tokens 20 --device cpu prints run.c\'s text', () => {
    const ref = references().find((r) => r.prompt === 'Once upon a time')!;
    const r = eet('generate', MODEL, 'Once upon a time', '--temperature', '0', '--max-new-tokens', '20', '--device', 'cpu');
    expect(r.stderr).toMatch(/time to first token [\d.]+ ms; [\d.]+ tokens\/s/);
    expect(r.status).toBe(0);
    const expected = ref.stdout.slice(0, r.stdout.length - 1);
    expect(r.stdout.length).toBeGreaterThan(60);
    expect(r.stdout.endsWith('\n')).toBe(true);
    expect(ref.stdout.startsWith(r.stdout.slice(0, -1))).toBe(true);
    expect(r.stdout.slice(0, -1)).toBe(expected);
  });

  test('a malformed model: one clean error line and exit code 1', () => {
    const r = eet('generate', path.join(root, 'package.json'), 'x', '--device', 'cpu', '--tokenizer', path.join(root, 'package.json'));
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/^eet: error: Invalid llama2\.c checkpoint .*package\.json: .* \(ERR_MODEL_FORMAT\)\n$/);
    expect(r.stdout).toBe('');
  });

  test('a bad option value: exit code 1 and the option named', () => {
    const r = eet('generate', MODEL, 'x', '--top-k', 'many');
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/--top-k.*many.*Expected an integer/);
  });

  test('an out-of-range option: the API\'s message', () => {
    const r = eet('generate', MODEL, 'x', '--device', 'cpu', '--max-new-tokens', '0', '--no-progress');
    expect(r.status).toBe(1);
    expect(r.stderr).toContain('Expected positive integer for maxNewTokens but received 0 of type number');
  });

  test('--version prints the package version', () => {
    const r = eet('--version');
    expect(r).toEqual({ status: 0, stdout: JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8')).version + '\n', stderr: '' });
  });

  test('numbers are decimal: -t 0x10 and -t "" are refused, 1e-1 is taken', () => {
    for (const bad of ['0x10', '', 'Infinity', '0b1']) {
      const r = eet('generate', MODEL, 'x', '-t', bad, '--device', 'cpu');
      expect({ bad, status: r.status, stderr: r.stderr.split('\n')[0] }).toEqual({ bad, status: 1, stderr: expect.stringMatching(/-t, --temperature.*Expected a decimal number|Expected a finite number/) });
    }
    const r = eet('generate', MODEL, 'Once', '-t', '1e-1', '-n', '3', '--device', 'cpu', '--no-progress');
    expect(r.status).toBe(0);
  });

  test('--stop \'\' names the empty text; a prompt that fails validation is not echoed', () => {
    let r = eet('generate', MODEL, 'x', '--stop', '', '--device', 'cpu');
    expect(r.status).toBe(1);
    expect(r.stderr).toContain('Expected non-empty string for stop[0] but received "" of type string');
    r = eet('generate', MODEL, 'x '.repeat(600), '--device', 'cpu', '--no-progress');
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/Expected at most 512 tokens \(maxSeqLen\) for prompt/);
    expect(r.stdout).toBe('');
  });

  test('generate --help lists every model format', () => {
    const r = eet('generate', '--help');
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/llama2\.c .*\.gguf.*Hugging Face folder/s);
  });

  test('a reader that closes stdout (| head) ends generation quietly, exit 0', async () => {
    const child = spawn(process.execPath, [cli, 'generate', MODEL, 'Once upon a time', '-n', '500', '--device', 'emu', '--no-progress'], { cwd: root });
    let stderr = '';
    child.stderr.on('data', (d) => { stderr += d; });
    child.stdout.once('data', () => child.stdout.destroy());
    const code = await new Promise<number | null>((resolve) => child.on('exit', (c) => resolve(c)));
    expect({ code, stderr }).toEqual({ code: 0, stderr: '' });
  }, 120_000);

  test('Ctrl-C stops the generation and exits 130, with the summary line', async () => {
    const child = spawn(process.execPath, [cli, 'generate', MODEL, 'Once upon a time', '-n', '500', '--device', 'emu', '--no-progress'], { cwd: root });
    let stderr = '';
    let stdout = '';
    child.stderr.on('data', (d) => { stderr += d; });
    child.stdout.on('data', (d) => {
      if (stdout === '') setTimeout(() => child.kill('SIGINT'), 50);
      stdout += d;
    });
    const code = await new Promise<number | null>((resolve) => child.on('exit', (c) => resolve(c)));
    expect(code).toBe(130);
    expect(stderr).toMatch(/^eet: \d+ tokens \(abort\);/);
    expect(stdout.startsWith('Once upon a time')).toBe(true);
  }, 120_000);

  test('a missing model argument', () => {
    const r = eet('generate');
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/missing required argument 'model'/);
  });
});

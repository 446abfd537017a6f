// The `eet` CLI as a child process (dist/cli/main.js: run `npx tsc -p tsconfig.build.json` first).
import { spawnSync } from 'child_process';
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

  test('a missing model argument', () => {
    const r = eet('generate');
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/missing required argument 'model'/);
  });
});

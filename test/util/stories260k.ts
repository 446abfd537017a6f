// The stories260K fixture (../shared/models/stories260K, never copied into the repo) and llama2.c run.c's
// reference outputs, parsed from its README at test time: nothing here is pasted from it.
import * as fs from 'fs';
import * as path from 'path';

/**
 * ../shared/models/stories260K beside the repo root (path.resolve(__dirname, '../../../shared/…')); a worktree or
 * a device machine's copy may hold it one or two levels further up, or inside the checkout: the nearest wins.
 */
export const STORIES_DIR = ((): string => {
  const rel = path.join('shared', 'models', 'stories260K');
  for (let dir = path.resolve(__dirname, '../..'); ; dir = path.dirname(dir)) {
    const candidate = path.join(dir, rel);
    if (fs.existsSync(path.join(candidate, 'README.md'))) return candidate;
    if (path.dirname(dir) === dir) return path.resolve(__dirname, '../../..', rel);
  }
})();
export const MODEL = path.join(STORIES_DIR, 'stories260K.bin');
export const TOKENIZER = path.join(STORIES_DIR, 'tok512.bin');
/** run.c's -n in the README's runs: positions printed, prompt pieces included. */
export const STEPS = 256;

export interface Reference {
  /** The -i prompt. */
  prompt: string;
  /** run.c's encode of the prompt, BOS first. */
  promptIds: number[];
  /** Exact stdout, final newline included. */
  stdout: string;
  /** Printed ids: the prompt pieces (promptIds without BOS), then the generated ones. */
  printedIds: number[];
  /** Generation ended because BOS was sampled (before -n was reached). */
  stoppedOnBos: boolean;
}

export interface Unconditional {
  /** The run without -i: its stdout as shown (a plain code block), plus run.c's final newline. */
  stdout: string;
  /** The README says this equals the output with -i "Once upon a time". */
  sameAsPrompt: string;
}

function sections(): string[] {
  return fs.readFileSync(path.join(STORIES_DIR, 'README.md'), 'utf8').split(/^### /m).slice(1);
}

export function references(): Reference[] {
  const out: Reference[] = [];
  for (const s of sections()) {
    const header = s.split('\n', 1)[0];
    const prompt = /-i "([^"]*)"/.exec(header);
    if (!prompt || !header.startsWith('`./run')) continue;
    const json = [...s.matchAll(/```json\n([\s\S]*?)\n```/g)].map((m) => JSON.parse(m[1]) as unknown);
    const ids = /Prompt ids[^`]*`(\[[^`]*\])`/.exec(s);
    if (json.length !== 2 || typeof json[0] !== 'string' || !Array.isArray(json[1]) || !ids) {
      throw new Error(`Cannot parse the README section ${header}`);
    }
    out.push({
      prompt: prompt[1],
      promptIds: JSON.parse(ids[1]) as number[],
      stdout: json[0],
      printedIds: json[1] as number[],
      stoppedOnBos: /BOS was sampled/.test(s),
    });
  }
  if (out.length === 0) throw new Error('No reference runs found in the stories260K README');
  return out;
}

export function unconditional(): Unconditional {
  const s = sections().find((x) => x.startsWith('Unconditional'));
  if (!s) throw new Error('No unconditional run in the stories260K README');
  const block = /\n```\n([\s\S]*?)\n```/.exec(s);
  const same = /With `-i "([^"]*)"` the output is identical/.exec(s);
  if (!block || !same) throw new Error('Cannot parse the unconditional section of the stories260K README');
  return { stdout: block[1] + '\n', sameAsPrompt: same[1] };
}

#!/usr/bin/env node
// The `eet` command line.
//   eet bench [--model …]         prefill/decode timings over a grid against the roofline (lib/cli/bench.ts)
//   eet inspect <model>            architecture, parameters, dtypes, memory, tokenizer of a model file (lib/cli/inspect.ts)
//   eet serve <model>              the OpenAI-compatible HTTP server (lib/cli/serve.ts, lib/server/)
//   eet generate <model> [prompt]   stream a continuation of the prompt to stdout (the prompt first, as
//                                   llama2.c's run.c prints it); time to first token and tokens/s go to stderr.
//                                   -N k: k samples of the prompt (one prompt pass, shared KV blocks).
// Errors from the package (EetError) print one line and exit with code 1; Ctrl-C stops the generation and exits
// with 130 (128 + SIGINT, as shells report it); a closed stdout (`eet generate … | head`) ends it quietly.
import { Command, InvalidArgumentError as OptionError } from 'commander';
import * as cliProgress from 'cli-progress';
import * as fs from 'fs';
import * as path from 'path';
import { EetError } from '../errors';
import { loadModel, Model, ModelDType } from '../model';
import { limits } from '../limits';
import { FinishReason, GenerateOptions, SamplesOptions, resolveGenerateOptions } from '../generate/options';
import { registerBench } from './bench';
import { registerInspect } from './inspect';
import { registerServe } from './serve';

function integer(v: string): number {
  if (!/^-?\d+$/.test(v.trim())) throw new OptionError('Expected an integer.');
  return Number(v);
}

/** A decimal number as people write one: not hex (0x10), binary, 'Infinity' or an empty string, which Number() takes. */
function number(v: string): number {
  if (!/^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/.test(v.trim())) throw new OptionError('Expected a decimal number.');
  const n = Number(v);
  if (!Number.isFinite(n)) throw new OptionError('Expected a finite number.');
  return n;
}

/** How the command ended besides errors: Ctrl-C (exit 130) or a reader that closed stdout (exit 0, quietly). */
const run = { interrupted: false, stdoutClosed: false, abort: new AbortController() };

/** Writes to stdout unless the reader went away (EPIPE arrives as an 'error' event, after the write). */
function out(text: string): void {
  if (!run.stdoutClosed) process.stdout.write(text);
}

function version(): string {
  const pkg = JSON.parse(fs.readFileSync(path.join(__dirname, '..', '..', 'package.json'), 'utf8')) as { version: string };
  return pkg.version;
}

interface GenerateFlags {
  maxNewTokens: number;
  temperature: number;
  topK?: number;
  topP?: number;
  repetitionPenalty?: number;
  seed?: number;
  device: string;
  dtype?: ModelDType;
  tokenizer?: string;
  maxSeqLen?: number;
  stop?: string[];
  samples?: number;
  progress: boolean;
}

async function generate(modelPath: string, prompt: string, flags: GenerateFlags): Promise<void> {
  const options: GenerateOptions = {
    maxNewTokens: flags.maxNewTokens,
    temperature: flags.temperature,
    topK: flags.topK,
    topP: flags.topP,
    repetitionPenalty: flags.repetitionPenalty,
    seed: flags.seed,
    stop: flags.stop,
  };
  const samples = flags.samples ?? 1;
  resolveGenerateOptions({ ...options, n: samples }, Number.MAX_SAFE_INTEGER, limits().maxN); // bad values fail before the model loads
  const bar = new cliProgress.SingleBar(
    { format: 'loading {bar} {percentage}% | {tensor}', stream: process.stderr, hideCursor: true, clearOnComplete: true },
    cliProgress.Presets.shades_classic,
  );
  let started = false;
  const model = await loadModel(modelPath, {
    device: flags.device,
    dtype: flags.dtype,
    tokenizer: flags.tokenizer,
    maxSeqLen: flags.maxSeqLen,
    maxBatch: Math.max(1, samples),
    onProgress: flags.progress
      ? (p): void => {
        if (!started) { bar.start(p.totalBytes, 0, { tensor: '' }); started = true; }
        bar.update(p.loadedBytes, { tensor: p.tensor });
      }
      : undefined,
  }).finally(() => { if (started) bar.stop(); });

  const onSigint = (): void => {
    run.interrupted = true;
    run.abort.abort();
  };
  process.once('SIGINT', onSigint);
  try {
    const signal = run.abort.signal;
    if (samples > 1) {
      await printSamples(model, prompt, { ...options, n: samples, signal });
      return;
    }
    const t0 = performance.now();
    const events = model.stream(prompt, { ...options, signal }); // validates the prompt before anything is printed
    out(prompt);
    let first = 0;
    let count = 0;
    let finish: FinishReason = 'abort';
    for await (const ev of events) {
      if (count++ === 0) first = performance.now();
      if (ev.text) out(ev.text);
      if (ev.finishReason) finish = ev.finishReason;
    }
    const end = performance.now();
    out('\n');
    if (run.stdoutClosed) return;
    const tps = count > 1 ? ((count - 1) * 1000) / (end - first) : 0;
    process.stderr.write(
      `eet: ${count} tokens (${finish}); time to first token ${(first - t0).toFixed(1)} ms; ` +
      `${tps.toFixed(1)} tokens/s; load ${model.loadMs.toFixed(0)} ms on ${model.config.device} (${model.config.dtype})\n`,
    );
  } finally {
    process.removeListener('SIGINT', onSigint);
    await model.dispose();
  }
}

/** n samples of one prompt (its pass runs once; the samples share its KV blocks): printed one after another. */
async function printSamples(model: Model, prompt: string, options: SamplesOptions): Promise<void> {
  const t0 = performance.now();
  const results = await model.generate(prompt, options);
  const ms = performance.now() - t0;
  let tokens = 0;
  results.forEach((r, j) => {
    tokens += r.tokens.length;
    out(`${j ? '\n' : ''}--- sample ${j + 1} of ${results.length} (${r.finishReason}) ---\n${prompt}${r.text}\n`);
  });
  process.stderr.write(
    `eet: ${results.length} samples, ${tokens} tokens in ${ms.toFixed(0)} ms (${((tokens * 1000) / ms).toFixed(1)} tokens/s together); ` +
    `load ${model.loadMs.toFixed(0)} ms on ${model.config.device} (${model.config.dtype})\n`,
  );
}

export function program(): Command {
  const cmd = new Command('eet').description('EET for Node.js: transformer inference').showHelpAfterError()
    .version(version(), '-V, --version', 'print the version');
  cmd
    .command('generate')
    .description('generate text from a model (llama2.c checkpoint .bin, GGUF file, or Hugging Face folder)')
    .argument('<model>', 'model: llama2.c .bin (its tokenizer beside it or -z), .gguf, or a Hugging Face folder (config.json, safetensors, tokenizer.json)')
    .argument('[prompt]', 'prompt text ("" or omitted: unconditional)', '')
    .option('-n, --max-new-tokens <n>', 'tokens to generate at most', integer, 256)
    .option('-t, --temperature <t>', '0 = greedy', number, 1)
    .option('--top-k <k>', 'sample among the k most likely tokens (0 = off)', integer)
    .option('--top-p <p>', 'nucleus sampling threshold (1 = off)', number)
    .option('--repetition-penalty <r>', '> 1 discourages repeats (1 = off)', number)
    .option('-s, --seed <seed>', 'sampling seed', integer)
    .option('--stop <text...>', 'stop when the text contains one of these')
    .option('-N, --samples <n>', 'samples of the prompt, printed one after another (its pass runs once)', integer)
    .option('-d, --device <device>', "'auto', 'cpu', 'emu', 'cuda' or 'cuda:N'", 'auto')
    .option('--dtype <dtype>', "'float32', 'float16' or 'bfloat16' (default: float16 on a GPU, else float32)")
    .option('-z, --tokenizer <file>', 'tokenizer file (default: tok<vocab>.bin or tokenizer.bin next to the model)')
    .option('--max-seq-len <n>', 'context length (default: the model\'s)', integer)
    .option('--no-progress', 'no progress bar while loading')
    .action((model: string, prompt: string, flags: GenerateFlags) => generate(model, prompt, flags));
  registerBench(cmd);
  registerInspect(cmd);
  registerServe(cmd);
  return cmd;
}

export async function main(argv: string[] = process.argv): Promise<number> {
  const onStdoutError = (e: NodeJS.ErrnoException): void => {
    if (e.code !== 'EPIPE') throw e;
    run.stdoutClosed = true; // the reader is gone: stop generating, say nothing
    run.abort.abort();
  };
  process.stdout.on('error', onStdoutError);
  try {
    await program().parseAsync(argv);
    return run.interrupted ? 130 : 0;
  } catch (e) {
    if (e instanceof EetError) {
      process.stderr.write(`eet: error: ${e.message} (${e.code})\n`);
      return 1;
    }
    throw e;
  }
}

if (require.main === module) {
  main().then((code) => { process.exitCode = code; }, (e: unknown) => {
    process.stderr.write(`eet: internal error: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
    process.exitCode = 1;
  });
}

// `eet bench`: prefill and decode over a grid, beside the memory-bandwidth roofline and the tensor peak
// (lib/bench/). Models: built-in random-weight shapes (--list-shapes) or llama2.c checkpoint paths.
import { Command, InvalidArgumentError as OptionError } from 'commander';
import { resolveDevice } from '../devices';
import { EetError, EetErrorCode, InvalidArgumentError } from '../errors';
import { gridCells, parseList } from '../bench/grid';
import { BenchDType } from '../bench/roofline';
import { formatText } from '../bench/format';
import { runBench } from '../bench/run';
import { BUILTIN_SHAPES } from '../bench/shapes';

interface BenchFlags {
  model?: string;
  device: string;
  dtype?: BenchDType;
  batch?: string;
  prompt?: string;
  new?: string;
  repeat: number;
  maxStepTokens?: number;
  seed: number;
  bandwidthBytes?: number;
  json: boolean;
  listShapes: boolean;
}

function positive(v: string): number {
  if (!/^\d+$/.test(v.trim()) || Number(v) < 1) throw new OptionError('Expected a positive integer.');
  return Number(v);
}

async function bench(flags: BenchFlags): Promise<void> {
  if (flags.listShapes) {
    if (flags.json) process.stdout.write(JSON.stringify(BUILTIN_SHAPES, null, 1) + '\n');
    else for (const s of BUILTIN_SHAPES) process.stdout.write(`${s.name.padEnd(16)} ${s.arch.padEnd(6)} ${s.about}\n`);
    return;
  }
  const device = resolveDevice(flags.device);
  const gpu = device.startsWith('cuda');
  if (flags.dtype !== undefined && !['float32', 'float16', 'bfloat16'].includes(flags.dtype)) {
    throw new InvalidArgumentError(`Expected 'float32', 'float16' or 'bfloat16' for --dtype but received ${JSON.stringify(flags.dtype)}`);
  }
  const grid = {
    batch: parseList('--batch', flags.batch ?? (gpu ? '1,16' : '1,2'), 65536),
    prompt: parseList('--prompt', flags.prompt ?? (gpu ? '128,512' : '16')),
    newTokens: parseList('--new', flags.new ?? (gpu ? '128' : '8')),
  };
  gridCells(grid); // validates before anything loads
  const report = await runBench({
    models: (flags.model ?? (gpu ? 'llama-7b' : 'tiny')).split(',').map((m) => m.trim()).filter(Boolean),
    device,
    dtype: flags.dtype ?? (gpu ? 'float16' : 'float32'),
    grid,
    repeat: flags.repeat,
    maxStepTokens: flags.maxStepTokens,
    seed: flags.seed,
    bandwidthBytes: flags.bandwidthBytes,
    log: (line) => process.stderr.write(`eet bench: ${line}\n`),
  });
  process.stdout.write(flags.json ? JSON.stringify(report, null, 1) + '\n' : formatText(report) + '\n');
  const failed = report.models.filter((m) => m.status === 'error');
  if (failed.length) {
    throw new EetError(failed[0].error!.code as EetErrorCode, failed.map((m) => `${m.model}: ${m.error!.message}`).join('; '));
  }
}

export function registerBench(cmd: Command): void {
  cmd
    .command('bench')
    .description('time prefill and decode over a grid against the roofline (built-in random-weight shapes or a model file)')
    .option('-m, --model <models>', "comma-separated built-in shapes (see --list-shapes) or llama2.c .bin paths (default: llama-7b on a GPU, tiny elsewhere)")
    .option('-d, --device <device>', "'auto', 'cpu', 'emu', 'cuda' or 'cuda:N'", 'auto')
    .option('--dtype <dtype>', "'float32', 'float16' or 'bfloat16' (default: float16 on a GPU, else float32)")
    .option('-b, --batch <list>', 'batch sizes, e.g. 1,8,32 (default: 1,16 on a GPU, 1,2 elsewhere)')
    .option('-p, --prompt <list>', 'prompt lengths (default: 128,512 on a GPU, 16 elsewhere)')
    .option('-n, --new <list>', 'new tokens per sequence, >= 2 (default: 128 on a GPU, 8 elsewhere)')
    .option('--repeat <n>', 'timed runs per cell; the median is reported', positive, 1)
    .option('--max-step-tokens <n>', 'prefill chunk size in tokens (default: the largest batch x prompt, capped)', positive)
    .option('--seed <n>', 'seed of the random weights and prompts', positive, 1)
    .option('--bandwidth-bytes <n>', 'buffer size of the copy-bandwidth probe (default: 1 GiB on a GPU, 64 MiB elsewhere)', positive)
    .option('--json', 'print the report as JSON', false)
    .option('--list-shapes', 'list the built-in shapes (with --json: as JSON)', false)
    .action((flags: BenchFlags) => bench(flags));
}

// `eet bench`: prefill and decode over a grid beside the memory-bandwidth roofline and the tensor peak, and serving
// scenarios (lib/bench/). Models: built-in random-weight shapes (--list-shapes) or model paths; every timing goes
// through generate() / stream().
import { Command, InvalidArgumentError as OptionError } from 'commander';
import { resolveDevice } from '../devices';
import { limits } from '../limits';
import { EetError, EetErrorCode, InvalidArgumentError } from '../errors';
import { gridCells, parseList } from '../bench/grid';
import { BenchDType } from '../bench/roofline';
import { formatText } from '../bench/format';
import { runBench } from '../bench/run';
import { SCENARIO_NAMES, ScenarioName, scenarioDefaults } from '../bench/scenarios';
import { BUILTIN_SHAPES } from '../bench/shapes';

interface BenchFlags {
  model?: string;
  device: string;
  dtype?: BenchDType;
  batch?: string;
  prompt?: string;
  new?: string;
  grid: boolean;
  scenarios?: string;
  pidDocuments?: string;
  pidSubtasks?: string;
  repeat?: number;
  maxStepTokens?: number;
  prefillChunk?: number;
  cudaGraphs: boolean;
  seed: number;
  bandwidthBytes?: number;
  json: boolean;
  listShapes: boolean;
}

function positive(v: string): number {
  if (!/^\d+$/.test(v.trim()) || Number(v) < 1) throw new OptionError('Expected a positive integer.');
  return Number(v);
}

/** "concurrency,busy" or "all" → the scenario names, in the order given. */
function parseScenarios(text: string): ScenarioName[] {
  const names = text.split(',').map((s) => s.trim());
  if (names.length === 1 && names[0] === 'all') return [...SCENARIO_NAMES];
  if (names.some((n) => !(SCENARIO_NAMES as readonly string[]).includes(n))) {
    throw new InvalidArgumentError(`Expected a comma-separated list of ${SCENARIO_NAMES.join(', ')} (or all) for --scenarios but received ${JSON.stringify(text)}`);
  }
  return [...new Set(names as ScenarioName[])];
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
  const scenarios = flags.scenarios === undefined ? [] : parseScenarios(flags.scenarios);
  if (!flags.grid && scenarios.length === 0) throw new InvalidArgumentError('Nothing to run: --no-grid needs --scenarios');
  // The engine's bounds (a cell must fit one context: batch ≤ maxBatch, prompt + new ≤ maxSeqLen, checked by gridCells)
  const L = limits();
  const grid = flags.grid ? {
    batch: parseList('--batch', flags.batch ?? (gpu ? '1,16' : '1,2'), L.maxBatch),
    prompt: parseList('--prompt', flags.prompt ?? (gpu ? '128,512' : '16'), L.maxSeqLen - 1),
    newTokens: parseList('--new', flags.new ?? (gpu ? '128' : '8'), L.maxSeqLen - 1),
  } : null;
  if (grid) gridCells(grid); // validates before anything loads
  const settings = scenarioDefaults(gpu);
  if (flags.pidDocuments !== undefined) settings.pid.documentTokens = parseList('--pid-documents', flags.pidDocuments, L.maxSeqLen - 1);
  if (flags.pidSubtasks !== undefined) settings.pid.subtasks = parseList('--pid-subtasks', flags.pidSubtasks, L.maxBatch);
  const report = await runBench({
    models: (flags.model ?? (gpu ? 'llama-7b' : 'tiny')).split(',').map((m) => m.trim()).filter(Boolean),
    device,
    dtype: flags.dtype ?? (gpu ? 'float16' : 'float32'),
    grid,
    // Tiny cpu runs last a few ms: one garbage collection in the JS thread skews a run, the median of 3 does not.
    repeat: flags.repeat ?? (device === 'cpu' ? 3 : 1),
    maxStepTokens: flags.maxStepTokens,
    prefillChunk: flags.prefillChunk,
    cudaGraphs: flags.cudaGraphs,
    seed: flags.seed,
    bandwidthBytes: flags.bandwidthBytes,
    scenarios,
    scenarioSettings: settings,
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
    .description('time generate() over a grid against the roofline, and serving scenarios (built-in random-weight shapes or model files)')
    .option('-m, --model <models>', 'comma-separated built-in shapes (see --list-shapes) or model paths: llama2.c .bin, .gguf, Hugging Face folder ' +
      '(default: llama-7b on a GPU, tiny elsewhere)')
    .option('-d, --device <device>', "'auto', 'cpu', 'emu', 'cuda' or 'cuda:N'", 'auto')
    .option('--dtype <dtype>', "'float32', 'float16' or 'bfloat16' (default: float16 on a GPU, else float32)")
    .option('-b, --batch <list>', 'batch sizes, e.g. 1,8,32 (default: 1,16 on a GPU, 1,2 elsewhere)')
    .option('-p, --prompt <list>', 'prompt lengths (default: 128,512 on a GPU, 16 elsewhere)')
    .option('-n, --new <list>', 'new tokens per sequence, >= 2 (default: 128 on a GPU, 8 elsewhere)')
    .option('--no-grid', 'skip the grid (run only --scenarios)')
    .option('-s, --scenarios <list>', `serving scenarios to run after the grid: ${SCENARIO_NAMES.join(', ')} or all (default: none)`)
    .option('--pid-documents <list>', 'pid scenario: document lengths D (default: 1000,4000 on a GPU, 1000 elsewhere)')
    .option('--pid-subtasks <list>', 'pid scenario: sub-task counts S (default: 1,4,16,64)')
    .option('--repeat <n>', 'timed runs per grid cell; the median is reported (default: 3 on cpu, else 1)', positive)
    .option('--max-step-tokens <n>', "the contexts' step size in tokens (grid default: its largest batch x prompt, capped; scenarios: the engine's)", positive)
    .option('--prefill-chunk <n>', 'most prompt tokens of one sequence per step (default: the step size)', positive)
    .option('--no-cuda-graphs', 'launch every decode step from the host (default: record each step shape once as a CUDA graph and replay it)')
    .option('--seed <n>', 'seed of the random weights and prompts', positive, 1)
    .option('--bandwidth-bytes <n>', 'buffer size of the copy-bandwidth probe (default: 1 GiB on a GPU, 64 MiB elsewhere)', positive)
    .option('--json', 'print the report as JSON', false)
    .option('--list-shapes', 'list the built-in shapes (with --json: as JSON)', false)
    .action((flags: BenchFlags) => bench(flags));
}

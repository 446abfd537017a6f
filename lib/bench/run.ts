// `eet bench`: for each model — a built-in random-weight shape or a model path — one Model whose default context is
// sized for the grid; every timing goes through generate() / stream() with token-id prompts, the code path users
// run (lib/context.ts). The grid (grid.ts) times prefill and decode beside the roofline (roofline.ts); the serving
// scenarios (scenarios.ts) time concurrent callers, a shared document and a busy event loop.
import * as os from 'os';
import { binding } from '../binding';
import { EetError } from '../errors';
import type { Model, ModelConfig } from '../model';
import { CellResult, GridCell, GridSpec, cellResult, gridCells, gridLimits, runCell } from './grid';
import { loadBenchModel, type BenchModel, type BenchSizes } from './load';
import { TokenSource } from './random';
import { BenchDType, DTYPE_BYTES, paramCounts, peakFlops } from './roofline';
import { median } from './stats';
import { builtinShape } from './shapes';
import { ScenarioName, ScenarioResults, ScenarioSettings, runScenarios, scenarioDefaults, scenarioPositions } from './scenarios';

export interface BenchOptions {
  /** Built-in shape names (shapes.ts) or model paths (llama2.c .bin, .gguf, Hugging Face folder). */
  models: string[];
  /** A resolved device: 'cpu', 'emu', 'cuda:N'. */
  device: string;
  dtype: BenchDType;
  /** null: no grid (scenarios only). */
  grid: GridSpec | null;
  /** Timed runs per cell; the median is reported. */
  repeat: number;
  /** The contexts' step size (tokens); grid default: its largest batch × prompt, at most 8192 (512 on cpu/emu). */
  maxStepTokens?: number;
  /** Most prompt tokens of one sequence per step (default: maxStepTokens). */
  prefillChunk?: number;
  /** Decode steps replayed from device graphs (ContextOptions.cudaGraphs; default true). */
  cudaGraphs?: boolean;
  seed: number;
  /** Bytes per buffer of the bandwidth copy; default 1 GiB on cuda, 64 MiB elsewhere. */
  bandwidthBytes?: number;
  scenarios: ScenarioName[];
  /** Default: scenarioDefaults(on a GPU). */
  scenarioSettings?: ScenarioSettings;
  log?: (line: string) => void;
  /** How often a running grid cell logs its progress (default 5000 ms). */
  progressMs?: number;
}

export interface ModelBench {
  model: string;
  source: 'builtin' | 'file';
  /** The engine architecture (null when a file failed to load). */
  arch: string | null;
  status: 'ok' | 'unsupported' | 'error';
  error?: { code: string; message: string };
  about?: string;
  params?: number;
  /** The model's config with its default (grid) context's sizes. */
  config?: ModelConfig;
  /** The grid context's memory. */
  memory?: { weights: number; kvCache: number; workspace: number; total: number };
  loadMs?: number;
  results: CellResult[];
  scenarios?: ScenarioResults;
}

export interface BenchReport {
  tool: 'eet bench';
  device: { id: string; name: string };
  dtype: BenchDType;
  bandwidth: { bytesPerSecond: number; bytes: number; iters: number };
  peak: { label: string; flops: number } | null;
  grid: GridSpec | null;
  repeat: number;
  scenarios: ScenarioName[];
  models: ModelBench[];
}

export function deviceName(device: string): string {
  if (device.startsWith('cuda')) {
    const index = device === 'cuda' ? 0 : Number(device.slice(5));
    return binding().devices().cuda.find((d) => d.index === index)?.name ?? device;
  }
  if (device === 'emu') return 'SIMT emulator (emu)';
  return `${os.cpus()[0]?.model ?? 'cpu'} (${device === 'cpu-ref' ? 'cpu reference' : `cpu ${binding().devices().cpuIsa}`})`;
}

/** The grid context's sizes (and how long a built-in shape must be for the scenarios too). */
function benchSizes(cells: GridCell[], o: BenchOptions, settings: ScenarioSettings): BenchSizes {
  const positions = scenarioPositions(settings, o.scenarios);
  const graphs = o.cudaGraphs === undefined ? {} : { cudaGraphs: o.cudaGraphs };
  if (cells.length === 0) return { maxBatch: 1, maxStepTokens: o.maxStepTokens, prefillChunk: o.prefillChunk, ...graphs, positions };
  const { maxBatch, maxContext } = gridLimits(cells);
  const largest = Math.max(...cells.map((c) => c.batch * c.prompt));
  const maxStepTokens = Math.max(maxBatch, o.maxStepTokens ?? Math.min(largest, o.device.startsWith('cuda') ? 8192 : 512));
  return { maxBatch, maxSeqLen: maxContext, maxStepTokens, prefillChunk: o.prefillChunk, ...graphs, positions: Math.max(positions, maxContext) };
}

/** Every few seconds while a grid cell runs: how far its prompt passes and decode steps are (a long cell otherwise
 *  looks hung). From the context's counters, as deltas since the cell began. */
function progress(model: Model, c: GridCell, log: (line: string) => void, everyMs: number): NodeJS.Timeout {
  const start = model.stats();
  const t0 = performance.now();
  const timer = setInterval(() => {
    const s = model.stats();
    const prompt = s.promptTokensComputed + s.promptTokensCached - start.promptTokensComputed - start.promptTokensCached;
    log(`  batch ${c.batch} prompt ${c.prompt} new ${c.newTokens}: ${((performance.now() - t0) / 1000).toFixed(0)} s, ` +
      `prompt tokens ${prompt}, generated ${s.generatedTokens - start.generatedTokens} (of ${c.batch * c.prompt} and ${c.batch * c.newTokens} per run)`);
  }, everyMs);
  timer.unref();
  return timer;
}

export async function runBench(o: BenchOptions): Promise<BenchReport> {
  const log = o.log ?? ((): void => {});
  const gpu = o.device.startsWith('cuda');
  const cells = o.grid ? gridCells(o.grid) : [];
  const settings = o.scenarioSettings ?? scenarioDefaults(gpu);
  const sizes = benchSizes(cells, o, settings);
  const bw = binding().benchCopyBandwidth(o.device, { bytes: o.bandwidthBytes ?? (gpu ? 1 << 30 : 64 << 20), iters: gpu ? 10 : 3 });
  const name = deviceName(o.device);
  const report: BenchReport = {
    tool: 'eet bench',
    device: { id: o.device, name },
    dtype: o.dtype,
    bandwidth: { bytesPerSecond: bw.bytesPerSecond, bytes: bw.bytes, iters: bw.iters },
    peak: gpu ? peakFlops(name, o.dtype) : null,
    grid: o.grid,
    repeat: o.repeat,
    scenarios: o.scenarios,
    models: [],
  };
  for (const spec of o.models) {
    const shape = builtinShape(spec);
    const entry: ModelBench = { model: spec, source: shape ? 'builtin' : 'file', arch: shape?.arch ?? null, status: 'ok', results: [] };
    report.models.push(entry);
    log(`loading ${spec} on ${o.device} (${o.dtype})`);
    const t = performance.now();
    let loaded: BenchModel;
    try {
      loaded = await loadBenchModel(spec, o.device, o.dtype, o.seed, sizes);
    } catch (e) {
      fail(entry, e);
      continue;
    }
    const { model } = loaded;
    try {
      Object.assign(entry, { arch: model.config.arch, about: loaded.about, loadMs: performance.now() - t, config: model.config });
      entry.params = paramCounts(model.config).total;
      entry.memory = model.memory();
      const source = new TokenSource(model.config.vocabSize, o.seed);
      if (cells.length) {
        // Warm-up: first-use costs (kernel loading, the JS path's JIT) would otherwise land in the first cell.
        const prompt = Math.min(8, cells[0].prompt);
        const warm = { prompt, newTokens: Math.min(16, model.config.maxContext - prompt) };
        for (const batch of new Set([1, sizes.maxBatch])) await runCell(model, { batch, ...warm }, source);
        const roof = { dims: model.config, dtypeBytes: DTYPE_BYTES[model.config.dtype], peakFlops: report.peak?.flops ?? null, bytesPerSecond: bw.bytesPerSecond };
        for (const c of cells) {
          const runs = [];
          const ticker = progress(model, c, log, o.progressMs ?? 5000);
          try {
            for (let i = 0; i < o.repeat; i++) runs.push(await runCell(model, c, source));
          } finally {
            clearInterval(ticker);
          }
          const res = cellResult(c, median(runs.map((r) => r.ttftMs)), median(runs.map((r) => r.decodeMs)), roof);
          entry.results.push(res);
          log(`  batch ${c.batch} prompt ${c.prompt} new ${c.newTokens}: ttft ${res.ttftMs.toFixed(1)} ms, decode ${res.decodeTokPerSec.toFixed(1)} tok/s`);
        }
      }
      if (o.scenarios.length) {
        entry.scenarios = await runScenarios(model, o.scenarios, settings, source, { maxStepTokens: o.maxStepTokens, prefillChunk: o.prefillChunk }, log);
      }
    } catch (e) {
      fail(entry, e);
    } finally {
      await model.dispose();
    }
  }
  return report;
}

/** Records a package error on the model's entry (the others still run); anything else is a bug and propagates. */
function fail(entry: ModelBench, e: unknown): void {
  if (!(e instanceof EetError)) throw e;
  entry.status = e.code === 'ERR_UNSUPPORTED' ? 'unsupported' : 'error';
  entry.error = { code: e.code, message: e.message };
}

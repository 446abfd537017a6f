// Renders a BenchReport: a terminal table (`eet bench`) or Markdown (scripts/gpu-report.js uses the compiled one).
import type { HttpWay } from './http';
import type { CellResult } from './grid';
import type { BenchReport, ModelBench } from './run';
import type { PidResult } from './pid';
import type { BusyResult, ConcurrencyResult, ConcurrencyVariant, ScenarioContext, ScenarioResults, SharedResult, SharedRun } from './scenarios';

const f = (x: number | null | undefined, digits = 1): string => (x === null || x === undefined || !Number.isFinite(x) ? 'n/a' : x.toFixed(digits));

/** Three significant digits for small values, whole numbers for large ones. */
const sig = (x: number | null | undefined): string => (x === null || x === undefined || !Number.isFinite(x) ? 'n/a' : x >= 100 ? x.toFixed(0) : x.toPrecision(3));

export function paramsText(n: number): string {
  return n >= 1e9 ? `${(n / 1e9).toFixed(2)} B` : n >= 1e6 ? `${(n / 1e6).toFixed(1)} M` : `${(n / 1e3).toFixed(1)} k`;
}

export function bytesText(n: number): string {
  if (n >= 1e9) return `${(n / 1e9).toFixed(2)} GB`;
  if (n >= 1e6) return `${(n / 1e6).toFixed(1)} MB`;
  return `${(n / 1e3).toFixed(1)} kB`;
}

export function headline(r: BenchReport): string {
  const bw = r.bandwidth;
  const peak = r.peak ? `${(r.peak.flops / 1e12).toFixed(0)} TFLOP/s (${r.peak.label}, dense ${r.dtype === 'float32' ? 'fp32' : 'tensor core'}, vendor figure)` : 'n/a';
  return `eet bench: ${r.device.id} ${r.device.name} · ${r.dtype} · copy bandwidth ${(bw.bytesPerSecond / 1e9).toFixed(1)} GB/s ` +
    `(2 × ${bytesText(bw.bytes)} × ${bw.iters}) · tensor peak ${peak}`;
}

/** The model, and the grid's context (sizes, memory) when the grid ran. */
export function modelLine(m: ModelBench, grid: boolean): string {
  if (m.status !== 'ok' || !m.memory || !m.config) return `${m.model}: ${m.status === 'unsupported' ? 'not supported' : 'error'} — ${m.error?.message ?? ''}`;
  const mem = m.memory, c = m.config;
  const context = grid
    ? `grid context ${c.maxBatch} × ${c.maxContext} positions, steps of ${c.maxStepTokens} tokens, CUDA graphs ${c.cudaGraphs ? 'on' : 'off'} · ` +
      `memory: weights ${bytesText(mem.weights)}, ` +
      `KV cache ${bytesText(mem.kvCache)}, workspace ${bytesText(mem.workspace)} (total ${bytesText(mem.total)})`
    : `weights ${bytesText(mem.weights)}`;
  return `${m.model}${m.about ? ` — ${m.about}` : ''}${m.source === 'builtin' ? ', random weights' : ''} · ${c.arch} · ${paramsText(m.params ?? 0)} params · ` +
    `${context} · load ${f((m.loadMs ?? 0) / 1e3, 1)} s`;
}

function contextText(c: ScenarioContext): string {
  return `context ${c.maxBatch} × ${c.maxContext} positions, steps of ${c.maxStepTokens} tokens, KV cache ${bytesText(c.kvCacheBytes)}, ` +
    `workspace ${bytesText(c.workspaceBytes)}`;
}

/** Columns right-aligned (the first `left` left-aligned), a │ before each column index in `bars`. */
export function textTable(head: string[], rows: string[][], bars: number[], left = 0): string {
  const all = [head, ...rows];
  const w = head.map((_, i) => Math.max(...all.map((r) => r[i].length)));
  return all.map((r) => r.map((x, i) => `${bars.includes(i) ? '│ ' : ''}${i < left ? x.padEnd(w[i]) : x.padStart(w[i])}`).join(' ')).join('\n');
}

export function mdTable(head: string[], rows: string[][], left = 0): string[] {
  return [`| ${head.join(' | ')} |`, `|${head.map((_, i) => (i < left ? '---' : '---:')).join('|')}|`, ...rows.map((r) => `| ${r.join(' | ')} |`)];
}

interface Table { title: string; head: string[]; rows: string[][]; bars: number[]; left: number; notes: string[] }

const GRID_HEAD = ['batch', 'prompt', 'new', 'TTFT ms', 'prefill tok/s', 'TFLOP/s', '% peak', 'ms/token', 'decode tok/s', 'GB/s', '% roofline'];

function gridRow(c: CellResult): string[] {
  return [String(c.batch), String(c.prompt), String(c.newTokens), f(c.ttftMs, 2), f(c.prefillTokPerSec, 0), sig(c.prefillTflops),
    f(c.prefillPeakPct), f(c.decodeMsPerStep, 3), f(c.decodeTokPerSec, 1), sig(c.decodeGBps), f(c.decodeRooflinePct)];
}

const WAY: Record<ConcurrencyVariant['mode'], (n: number) => string> = {
  'streams': (n) => `${n} concurrent stream() calls`,
  'one-call': (n) => `one generate() of ${n} prompts`,
  'sequential': () => 'one after another',
};

function concurrencyTable(c: ConcurrencyResult): Table {
  const p = c.promptTokens;
  return {
    title: `concurrency: ${c.prompts} prompts of ${p.min}–${p.max} tokens (${p.total} in all), ${c.newTokens} new tokens each; ` +
      `each way with fresh prompts of the same lengths; ${contextText(c.context)}`,
    head: ['way', 'wall ms', 'tok/s', 'TTFT p50', 'TTFT p99', 'ITL p50', 'ITL p99', 'computed', 'cached'],
    rows: c.variants.map((v) => [WAY[v.mode](c.prompts) + (v.itlFrom === 'events' ? '' : ' †'), f(v.wallMs, 1), f(v.tokPerSec, 0),
      f(v.ttftMs.p50, 2), f(v.ttftMs.p99, 2), f(v.itlMs.p50, 3), f(v.itlMs.p99, 3), String(v.promptTokensComputed), String(v.promptTokensCached)]),
    bars: [1, 3, 5, 7],
    left: 1,
    notes: ['tok/s = generated tokens / wall time; TTFT and ITL (inter-token latency) in ms, from stream events as they reach JS;',
      '† generate() has no events: its ITL is each sequence\'s mean (decode time / (tokens − 1)). computed / cached: prompt tokens.'],
  };
}

function sharedTable(s: SharedResult): Table {
  const row = (way: string, r: SharedRun): string[] => [way, f(r.wallMs, 1), String(r.promptTokensComputed), String(r.promptTokensCached), String(r.generatedTokens)];
  return {
    title: `shared document: ${s.documentTokens}-token document + ${s.questions} questions of ${s.questionTokens.min}–${s.questionTokens.max} tokens, ` +
      `${s.newTokens} new tokens each; each way in a fresh ${contextText(s.context)}`,
    head: ['way', 'wall ms', 'prompt tokens computed', 'cached', 'generated'],
    rows: [row('{ input, prompts } (shared)', s.shared), row('whole prompts, no prefix cache', s.unshared)],
    bars: [1, 2],
    left: 1,
    notes: [`speedup ${f(s.speedup, 2)}× · identical answers ${s.identicalAnswers}/${s.questions}`],
  };
}

function busyTable(b: BusyResult): Table {
  return {
    title: `busy event loop: ${b.rounds} batches of ${b.batch} × ${b.newTokens} new tokens (prompts of ${b.promptTokens}) submitted together; ` +
      `the JS thread spins ${b.busyMs} ms, ` +
      `then frees the loop ${b.freeMs} ms (measured ${f(100 * b.busyFraction, 0)}% busy); median of ${b.runs} runs each; ${contextText(b.context)}`,
    head: ['event loop', 'tok/s'],
    rows: [['idle', f(b.idleTokPerSec, 1)], ['busy', f(b.busyTokPerSec, 1)]],
    bars: [1],
    left: 1,
    notes: [`ratio busy ÷ idle ${f(b.ratio, 2)} (target ≥ 0.9: the engine loop is native)`],
  };
}

function httpTable(h: NonNullable<ScenarioResults['http']>): Table {
  const row = (w: HttpWay): string[] => [w.mode === 'http' ? `HTTP, ${h.clients} streaming clients` : `engine directly, ${h.clients} stream() loops`,
    f(w.wallMs, 1), f(w.requestsPerSec, 1), f(w.tokPerSec, 0), f(w.ttftMs.p50, 2), f(w.ttftMs.p99, 2), f(w.itlMs.p50, 3), f(w.itlMs.p99, 3)];
  return {
    title: `http: ${h.requests} requests of ${h.promptTokens.min}–${h.promptTokens.max} prompt tokens, ${h.newTokens} new tokens each, ` +
      `the OpenAI server on loopback (clients in a worker thread) vs the same load on the engine; ${contextText(h.context)}`,
    head: ['way', 'wall ms', 'req/s', 'tok/s', 'TTFT p50', 'TTFT p99', 'ITL p50', 'ITL p99'],
    rows: h.ways.map(row),
    bars: [1, 4, 6],
    left: 1,
    notes: [`HTTP overhead: direct ÷ HTTP tok/s = ${f(h.overhead, 2)} (1 = none); TTFT and ITL in ms as each client sees them`],
  };
}

function pidTable(p: PidResult): Table {
  const encdec = p.cases.some((c) => c.runs.some((r) => r.encoderTokens > 0));
  const rows = p.cases.flatMap((c) => c.runs.map((r) => [String(c.documentTokens), String(c.subtasks), r.way, f(r.wallMs, 1),
    String(r.promptTokensComputed + r.encoderTokens), f(r.decodeMsPerStep, 3),
    String(encdec ? r.memoryKeysSaved : r.sharedPrefixTokens), `${r.sameAsIndependent}/${c.subtasks}`,
    r.way === 'pid+shared' ? `${f(c.speedup, 2)}×` : '']));
  return {
    title: `pid (encode once, decode many): one document of D tokens + S sub-task prompts of ${p.promptTokens[0]}–${p.promptTokens[1]} tokens, ` +
      `${p.newTokens} new tokens each; each way in a fresh context`,
    head: ['D', 'S', 'way', 'wall ms', encdec ? 'tokens computed (encoder + decoder prompt)' : 'prompt tokens computed', 'decode ms/step',
      encdec ? 'memory keys saved' : 'shared-path tokens', 'same answers', 'speedup'],
    rows,
    bars: [3, 4, 5, 7],
    left: 3,
    notes: [encdec
      ? 'independent: one call per sub-task (its own encoder pass and memory); pid: { input, prompts } (the document encoded once, ' +
        'one memory for every prompt), cross-attention per sequence; pid+shared: decode steps read the memory once per step for all readers.'
      : 'independent: whole prompts, prefix cache off; pid: { input, prompts } (the document prefilled once, its KV blocks shared), ' +
        'shared-prefix attention off; pid+shared: the same with it on (decode reads the shared blocks once per group).',
      'speedup = independent wall ÷ pid+shared wall; same answers: greedy tokens equal to the independent way\'s.'],
  };
}

function scenarioTables(s: ScenarioResults): Table[] {
  return [s.concurrency && concurrencyTable(s.concurrency), s.shared && sharedTable(s.shared), s.busy && busyTable(s.busy),
    s.http && httpTable(s.http), s.pid && pidTable(s.pid)].filter((t): t is Table => t !== undefined);
}

export function formatText(r: BenchReport): string {
  const out = [headline(r), ''];
  for (const m of r.models) {
    out.push(modelLine(m, r.grid !== null));
    if (m.results.length) out.push(textTable(GRID_HEAD, m.results.map(gridRow), [3, 7]));
    for (const t of scenarioTables(m.scenarios ?? {})) out.push('', t.title, textTable(t.head, t.rows, t.bars, t.left), ...t.notes);
    out.push('');
  }
  if (r.grid) {
    out.push('TTFT = from the generate() call until every sequence has its first token; ms/token = decode time after that / (new − 1);');
    out.push('% roofline = bytes read per decode step (weights + KV cache) / time ÷ copy bandwidth; % peak = prefill FLOPs / TTFT ÷ tensor peak.');
  }
  return out.join('\n');
}

export function formatMarkdown(r: BenchReport): string {
  const out = [headline(r), ''];
  for (const m of r.models) {
    out.push(`**${modelLine(m, r.grid !== null)}**`, '');
    if (m.results.length) out.push(...mdTable(GRID_HEAD, m.results.map(gridRow)), '');
    for (const t of scenarioTables(m.scenarios ?? {})) out.push(`*${t.title}*`, '', ...mdTable(t.head, t.rows, t.left), '', ...t.notes.map((n) => `${n}  `), '');
  }
  return out.join('\n');
}

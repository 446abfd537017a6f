// Renders a BenchReport: a terminal table (`eet bench`) or Markdown (scripts/gpu-report.js uses the compiled one).
import type { BenchReport, CellResult, ModelBench } from './run';

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

export function modelLine(m: ModelBench): string {
  if (m.status !== 'ok') return `${m.model}: ${m.status === 'unsupported' ? 'not supported yet' : 'error'} — ${m.error?.message ?? ''}`;
  const mem = m.memory!;
  return `${m.model}${m.about ? ` — ${m.about}` : ''}${m.source === 'builtin' ? ', random weights' : ''} · ${paramsText(m.params ?? 0)} params · ` +
    `memory: weights ${bytesText(mem.weights)}, KV cache ${bytesText(mem.kvCache)}, workspace ${bytesText(mem.workspace)} (total ${bytesText(mem.total)}) · ` +
    `load ${f((m.loadMs ?? 0) / 1e3, 1)} s`;
}

const HEAD = ['batch', 'prompt', 'new', 'TTFT ms', 'prefill tok/s', 'TFLOP/s', '% peak', 'ms/token', 'decode tok/s', 'GB/s', '% roofline'];

function row(c: CellResult): string[] {
  return [String(c.batch), String(c.prompt), String(c.newTokens), f(c.ttftMs, 2), f(c.prefillTokPerSec, 0), sig(c.prefillTflops),
    f(c.prefillPeakPct), f(c.decodeMsPerStep, 3), f(c.decodeTokPerSec, 1), sig(c.decodeGBps), f(c.decodeRooflinePct)];
}

export function textTable(cells: readonly CellResult[]): string {
  const rows = [HEAD, ...cells.map(row)];
  const w = HEAD.map((_, i) => Math.max(...rows.map((r) => r[i].length)));
  const line = (r: string[]): string => r.map((x, i) => x.padStart(w[i])).slice(0, 3).join(' ') + ' │ ' +
    r.slice(3, 7).map((x, i) => x.padStart(w[i + 3])).join(' ') + ' │ ' + r.slice(7).map((x, i) => x.padStart(w[i + 7])).join(' ');
  return rows.map(line).join('\n');
}

export function formatText(r: BenchReport): string {
  const out = [headline(r), ''];
  for (const m of r.models) {
    out.push(modelLine(m));
    if (m.status === 'ok') out.push(textTable(m.results));
    out.push('');
  }
  out.push('TTFT = the prefill step(s) + first sample; ms/token = one decode step (every sequence of the batch gains a token);');
  out.push('% roofline = bytes read per decode step (weights + KV cache) / time ÷ copy bandwidth; % peak = prefill FLOPs / TTFT ÷ tensor peak.');
  return out.join('\n');
}

export function formatMarkdown(r: BenchReport): string {
  const out = [headline(r), ''];
  for (const m of r.models) {
    out.push(`**${modelLine(m)}**`, '');
    if (m.status !== 'ok' || m.results.length === 0) continue;
    out.push(`| ${HEAD.join(' | ')} |`, `|${HEAD.map(() => '---:').join('|')}|`);
    for (const c of m.results) out.push(`| ${row(c).join(' | ')} |`);
    out.push('');
  }
  return out.join('\n');
}

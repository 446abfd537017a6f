// Renders an OpBenchReport (lib/bench/ops.ts): a terminal table (scripts/op-bench.js) or Markdown (scripts/gpu-report.js
// uses the compiled one). One table per shape and step: each op's median time beside its roofline.
import { bytesText, mdTable, textTable } from './format';
import type { OpBenchReport, OpResult, SettingResult } from './ops';

const f = (x: number | null | undefined, digits = 1): string => (x === null || x === undefined || !Number.isFinite(x) ? 'n/a' : x.toFixed(digits));
const sig = (x: number | null): string => (x === null || !Number.isFinite(x) ? 'n/a' : x >= 100 ? x.toFixed(0) : x >= 0.01 ? x.toPrecision(3) : '<0.01');
const us = (ms: number | null): string => (ms === null ? 'n/a' : ms * 1000 >= 100 ? (ms * 1000).toFixed(0) : (ms * 1000).toFixed(1));

export const OP_HEAD = ['op', '×/step', 'shape', 'median µs', 'GB/s', '% BW', 'TFLOP/s', '% peak', 'floor µs', '% roofline'];

function row(r: OpResult): string[] {
  if (r.status !== 'ok') return [r.name, String(r.perStep), r.about, `${r.error?.code}`, '', '', '', '', '', ''];
  return [r.name, r.perStep ? String(r.perStep) : '—', r.about, us(r.medianMs), sig(r.gbps), f(r.bandwidthPct), r.flops ? sig(r.tflops) : '',
    r.flops ? f(r.peakPct) : '', us(r.floorMs), `${f(r.rooflinePct)}${r.bound === 'compute' ? ' (FLOPs)' : ''}`];
}

export function opHeadline(r: OpBenchReport): string {
  const bw = r.bandwidth;
  const peak = r.peak ? `${(r.peak.flops / 1e12).toFixed(0)} TFLOP/s (${r.peak.label}, vendor figure)` : 'n/a';
  return `eet op-bench: ${r.device.id} ${r.device.name} · ${r.dtype} · copy bandwidth ${(bw.bytesPerSecond / 1e9).toFixed(1)} GB/s ` +
    `(2 × ${bytesText(bw.bytes)} × ${bw.iters}) · tensor peak ${peak} · timing: ${r.timing.note}`;
}

function stepLine(r: OpBenchReport, s: SettingResult): string {
  const what = r.only ? `only the ${r.only.join(', ')} ops of the step` : 'step';
  return `${what} (Σ ×/step × median, variants — left out): ${s.step.ms === null ? 'n/a (an op failed)' : `${f(s.step.ms, 3)} ms`}, ` +
    `floor ${s.step.floorMs === null ? 'n/a' : `${f(s.step.floorMs, 3)} ms`}`;
}

const SQUARE_TITLE = 'square GEMMs (M = N = K)';

const dryWarning = (r: OpBenchReport): string[] =>
  (r.timing.gpu ? [] : [`NOT GPU TIMES: ${r.timing.note}.`]);

export function formatOpText(r: OpBenchReport): string {
  const out = [opHeadline(r), ...dryWarning(r), ''];
  for (const m of r.models) {
    for (const s of m.settings) {
      out.push(`${m.model} (${m.arch}) — ${s.label}`, textTable(OP_HEAD, s.ops.map(row), [3, 8], 3), stepLine(r, s));
      for (const e of s.ops.filter((x) => x.status !== 'ok')) out.push(`  ${e.name}: ${e.error?.code}: ${e.error?.message}`);
      out.push('');
    }
  }
  if (r.square.length) out.push(SQUARE_TITLE, textTable(OP_HEAD, r.square.map(row), [3, 8], 3), '');
  return out.join('\n');
}

export function formatOpMarkdown(r: OpBenchReport): string {
  const out = [opHeadline(r), '', ...dryWarning(r).map((w) => `**${w}**`), ''];
  out.push('Bytes: the fewest an op moves (each input read once, each output written once); % BW: achieved ÷ the copy ' +
    'bandwidth; floor: the larger of bytes ÷ bandwidth and FLOPs ÷ peak; % roofline: floor ÷ median. ×/step — : a variant ' +
    '(shared-prefix attention, top-p sampler, Q8_0 weights), not in the step sum.', '');
  for (const m of r.models) {
    for (const s of m.settings) {
      const cells = s.ops.map((o) => row(o).map((c) => c.replace(/\|/g, '\\|'))); // 'attn_q|k|v' inside a Markdown table
      out.push(`**${m.model} — ${s.label}**`, '', ...mdTable(OP_HEAD, cells, 3), '', stepLine(r, s), '');
      for (const e of s.ops.filter((x) => x.status !== 'ok')) out.push(`- ${e.name}: ${e.error?.code}: ${(e.error?.message ?? '').slice(0, 300)}`);
      if (s.ops.some((x) => x.status !== 'ok')) out.push('');
    }
  }
  if (r.square.length) out.push(`**${SQUARE_TITLE}**`, '', ...mdTable(OP_HEAD, r.square.map(row), 3), '');
  return out.join('\n');
}

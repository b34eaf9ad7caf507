// The HTML report of a campaign (`sim stress --html FILE`; `sim stress merge`
// renders a merged summary the same way): runs over time, each run's wall
// time, which oracles the campaign exercised, and the failures with the
// commands that rerun them. Rendered from the StressSummary object alone
// (the campaign's --json), so any summary can be drawn.

import { type StressSummary, stressText } from '../stress.js';
import { configLines } from '../report.js';
import type { Cell, DataTable } from '../report-data.js';
import { num } from '../report-data.js';
import { type ChartOrAbsent, htmlPage, linesHtml, tableHtml } from './page.js';
import { sig } from './charts.js';

const PALETTE = ['#1f77b4', '#d62728', '#2ca02c', '#ff7f0e'];
const base = (legend: string[]) => ({ animation: false, color: PALETTE, textStyle: { fontFamily: 'system-ui, "DejaVu Sans", sans-serif' }, legend: { data: legend, top: 0 }, grid: { left: 64, right: 24, top: 36, bottom: 48 }, tooltip: { trigger: 'item' } });

export function campaignCharts(s: StressSummary): ChartOrAbsent[] {
  const charts: ChartOrAbsent[] = [];
  const log = s.runs;
  if (log.length === 0) {
    const why = 'the campaign finished no run';
    charts.push({ id: 'chart-runs', title: 'runs over time', why }, { id: 'chart-wall', title: 'run wall time', why });
  } else {
    const sorted = [...log].sort((a, b) => a.endMs - b.endMs);
    const cumulative = [[0, 0] as [number, number], ...sorted.map((r, i) => [sig(r.endMs / 1000), i + 1] as [number, number])];
    const failedPts = sorted.flatMap((r, i) => (r.oracle !== undefined ? [[sig(r.endMs / 1000), i + 1, r.index, r.seed] as [number, number, number, number]] : []));
    const series = [
      { name: 'runs finished', type: 'line', step: 'end', showSymbol: false, data: cumulative, areaStyle: { opacity: 0.12 } },
      { name: 'failed runs', type: 'scatter', symbolSize: 12, data: failedPts },
    ];
    charts.push({
      id: 'chart-runs',
      title: 'runs over time',
      option: { ...base(series.map((x) => x.name)), tooltip: { trigger: 'axis' }, xAxis: { type: 'value', name: 'campaign time (s)', nameLocation: 'middle', nameGap: 26, min: 0 }, yAxis: { type: 'value', name: 'runs', minInterval: 1 }, series },
      series: series.map((x) => x.name),
      caption: `${s.runsDone} runs in ${(s.elapsedMs / 1000).toFixed(1)} s (${s.runsPerMinute} runs/min); a failure stops the campaign.`,
    });
    const pt = (r: (typeof sorted)[number]) => [sig(r.endMs / 1000), sig(r.wallMs / 1000), r.index, r.seed];
    // A failure carries its oracle; interrupted and vacuous runs neither passed nor failed.
    const ok = sorted.filter((r) => r.exitCode === 0).map(pt);
    const bad = sorted.filter((r) => r.oracle !== undefined).map(pt);
    const other = sorted.filter((r) => r.exitCode !== 0 && r.oracle === undefined).map(pt);
    const wall = [
      { name: 'passed', type: 'scatter', symbolSize: 6, data: ok },
      { name: 'failed', type: 'scatter', symbolSize: 12, data: bad },
      ...(other.length ? [{ name: 'interrupted or vacuous', type: 'scatter', symbolSize: 8, data: other }] : []),
    ];
    charts.push({
      id: 'chart-wall',
      title: 'run wall time',
      option: { ...base(wall.map((x) => x.name)), color: ['#2ca02c', '#d62728', '#7f7f7f'], xAxis: { type: 'value', name: 'campaign time at the run\'s end (s)', nameLocation: 'middle', nameGap: 26, min: 0 }, yAxis: { type: 'value', name: 'wall time (s)' }, series: wall },
      series: wall.map((x) => x.name),
      caption: 'each run is a child process: set-up, workload, settling and the final checks.',
    });
  }
  const ex = s.oracles;
  if (ex.length === 0) charts.push({ id: 'chart-oracles', title: 'oracles exercised', why: 'the summary lists no oracle' });
  else {
    const names = ex.map((o) => o.oracle);
    const series = [
      { name: 'runs that exercised it', type: 'bar', data: ex.map((o) => o.exercisedInRuns) },
      { name: 'failures', type: 'bar', data: ex.map((o) => o.failures) },
    ];
    charts.push({
      id: 'chart-oracles',
      title: 'oracles exercised',
      option: { ...base(series.map((x) => x.name)), tooltip: { trigger: 'axis', axisPointer: { type: 'shadow' } }, grid: { left: 170, right: 24, top: 36, bottom: 40 }, xAxis: { type: 'value', name: 'runs', nameLocation: 'middle', nameGap: 24, minInterval: 1 }, yAxis: { type: 'category', data: names, inverse: true }, series },
      series: series.map((x) => x.name),
      caption: `an oracle that never ran (0 runs) was not exercised by this campaign: ${ex.filter((o) => o.runs === 0).map((o) => o.oracle).join(', ') || 'none'}.`,
    });
  }
  return charts;
}

export function summaryTable(s: StressSummary): DataTable {
  const c = (v: number, key: string, fmt: (x: number) => string = String): Cell => ({ text: fmt(v), value: v, key });
  return {
    id: 'summary',
    title: 'campaign',
    head: ['campaign seed', 'shard', 'swarm', 'runs planned', 'runs done', 'failures', 'elapsed (s)', 'runs/min'],
    rows: [[c(s.campaignSeed, 'campaignSeed'), { text: s.shard }, { text: s.swarm ? 'yes' : 'no' }, s.runsPlanned === null ? { text: 'unbounded' } : c(s.runsPlanned, 'runsPlanned'), c(s.runsDone, 'runsDone'), c(s.failures, 'failures'), c(s.elapsedMs, 'elapsedMs', (x) => (x / 1000).toFixed(1)), c(s.runsPerMinute, 'runsPerMinute')]],
  };
}

export function oraclesTable(s: StressSummary): DataTable {
  return {
    id: 'oracles',
    title: 'oracles',
    head: ['oracle', 'checks', 'runs exercised', 'failures'],
    rows: s.oracles.map((o, i) => [{ text: o.oracle }, { text: num(o.runs), value: o.runs, key: `oracles.${i}.runs` }, { text: String(o.exercisedInRuns), value: o.exercisedInRuns, key: `oracles.${i}.exercisedInRuns` }, { text: String(o.failures), value: o.failures, key: `oracles.${i}.failures` }]),
  };
}

export function failuresTable(s: StressSummary): DataTable | null {
  const failed = s.runs.filter((r) => r.oracle !== undefined);
  const f = s.firstFailure;
  if (failed.length === 0 && !f) return null;
  const rows: Cell[][] = (failed.length > 0 ? failed : [{ index: f!.index, seed: f!.seed, exitCode: f!.exitCode, oracle: f!.violations[0]?.oracle ?? 'error', rerun: f!.rerun }]).map((r) => [
    { text: String(r.index) },
    { text: String(r.seed) },
    { text: String(r.exitCode) },
    { text: r.oracle ?? '' },
    { text: r.rerun ?? '', wrap: true },
  ]);
  return { id: 'failures', title: 'failures', head: ['run', 'seed', 'exit', 'oracle', 'rerun'], rows };
}

export interface CampaignPageOptions {
  /** Settings lines to show at the top (the stress line and, without --swarm, the run configuration). */
  settings?: string[];
}

export function campaignHtml(s: StressSummary, o: CampaignPageOptions = {}): string {
  const verdict = s.ok ? '<span class="verdict ok">OK</span>' : `<span class="verdict fail">${s.failures} FAILED</span>`;
  const header = [
    `<h1>balloon-sim stress campaign: seed ${s.campaignSeed}, ${s.runsDone} runs${s.runsPlanned !== null ? ` of ${s.runsPlanned}` : ''}${verdict}</h1>`,
    linesHtml(o.settings ?? [], 'config'),
  ].join('\n');
  const body: string[] = [];
  const f = s.firstFailure;
  if (f) {
    body.push('<h2>first failure</h2>');
    body.push(`<div class="violation">${linesHtml([`run ${f.index}, seed ${f.seed}, exit ${f.exitCode}`, ...f.violations.slice(0, 4).map((v) => `${v.oracle}: ${v.message}`), ...f.errors.slice(0, 4).map((e) => `error: ${e}`)])}</div>`);
    body.push(linesHtml([...configLines(f.config), `rerun: ${f.rerun}`, ...(f.schedule ? [`replay: ${f.rerun} --replay ${f.scheduleFile ?? f.schedule}`] : []), ...(f.traceFile ? [`trace: ${f.traceFile} (open it in https://ui.perfetto.dev or chrome://tracing)`] : [])]));
  }
  body.push('<h2>campaign</h2>', tableHtml(summaryTable(s)));
  body.push('<h2>oracles</h2>', tableHtml(oraclesTable(s)));
  const ft = failuresTable(s);
  if (ft) body.push('<h2>failures</h2>', tableHtml(ft));
  body.push('<h2>as printed</h2>', linesHtml(stressText(s)));
  return htmlPage({ title: `balloon-sim stress campaign ${s.campaignSeed}`, header, charts: campaignCharts(s), body: body.join('\n'), kind: 'campaign' });
}

// The HTML report of one run (`sim run --html FILE`): seed, configuration and
// rerun command at the top; memory, ops/s per CPU, refaults, lock wait and
// hold histograms and the report round trip as charts (only those whose data
// the run has; the page says why a chart is missing); the end tables from
// src/cli/report-data.ts, the same numbers as the terminal report.

import type { RunResult, SeriesPoint } from '../../sim/run.js';
import { cpuTable, deviceLine, deviceTable, freeBlocksTable, freeMemoryLine, hostLine, oracleTable } from '../report-data.js';
import { configLines, cpuTimeLines, hintingLines, runLine, verdictLines } from '../report.js';
import { lockstatDataTable, sortLockStats } from '../lockstat-report.js';
import { type ChartOrAbsent, esc, htmlPage, linesHtml, tableHtml } from './page.js';
import { type XY, histogramOption, sig, timeSeriesOption } from './charts.js';

const MiB = 2 ** 20;

/**
 * The series in time order. main samples during the workload and while
 * settling, then appends the end state (taken after settling) stamped with
 * the workload's duration: it is moved to the last sample's time.
 */
export function orderedSeries(series: SeriesPoint[]): SeriesPoint[] {
  const out: SeriesPoint[] = [];
  for (const p of series) {
    const last = out.at(-1);
    out.push(last && p.tMs < last.tMs ? { ...p, tMs: last.tMs } : p);
  }
  return out;
}

/**
 * Rates of a cumulative counter over a moving window of `windowMs` (at least
 * one sample interval): [time of the window's end (s), count per second].
 * Counters move in steps (page_fault1 counts a whole block when it is
 * touched), so rates over single 100 ms intervals would be mostly spikes.
 */
export function rates(series: SeriesPoint[], value: (p: SeriesPoint) => number, windowMs = 0): [number, number][] {
  const out: [number, number][] = [];
  let j = 0;
  for (let i = 1; i < series.length; i++) {
    while (j + 1 < i && series[i].tMs - series[j + 1].tMs >= windowMs) j++;
    const dt = (series[i].tMs - series[j].tMs) / 1000;
    if (dt <= 0) continue;
    out.push([series[i].tMs / 1000, sig((value(series[i]) - value(series[j])) / dt)]);
  }
  return out;
}

/** The moving window for rates: 300 ms, or a 30th of the run for long runs. */
export const rateWindowMs = (r: RunResult) => Math.max(300, Math.round(r.durationMs / 30 / 100) * 100);

export function runCharts(r: RunResult): ChartOrAbsent[] {
  const charts: ChartOrAbsent[] = [];
  const s = orderedSeries(r.series);
  const hasSeries = s.length >= 2;
  const noSeries = `the run has ${s.length} sample${s.length === 1 ? '' : 's'} (main samples every 100 ms): run it longer`;
  if (hasSeries) {
    const t = (p: SeriesPoint) => p.tMs / 1000;
    const win = rateWindowMs(r);
    const mem: XY[] = [
      { name: 'host RSS', data: s.map((p) => [t(p), sig(p.hostRssBytes / MiB)]), area: true },
      { name: 'guest used', data: s.map((p) => [t(p), sig(p.guestUsedBytes / MiB)]) },
      { name: 'reported free', data: s.map((p) => [t(p), sig(p.reportedFreeBytes / MiB)]) },
    ];
    charts.push({ id: 'chart-memory', title: 'memory: host RSS vs guest used vs reported', option: timeSeriesOption(mem, 'MiB'), series: mem.map((x) => x.name), caption: 'host RSS: pages the host backs; guest used: allocated in the guest; reported free: free pages flagged Reported (handed to the host). Sampled by main every 100 ms, workload and settling; the last point is the state after the run.' });
    if (s.every((p) => Array.isArray(p.cpuOps) && p.cpuOps.length === r.cpus.length)) {
      const ops: XY[] = r.cpus.map((c, i) => ({ name: `cpu${c.cpu}`, data: rates(s, (p) => p.cpuOps[i], win) }));
      charts.push({ id: 'chart-ops', title: 'ops/s per CPU', option: timeSeriesOption(ops, 'ops/s'), series: ops.map((x) => x.name), caption: `ops as the workload counts them (${r.config.workload}), over a ${win} ms moving window.` });
    } else charts.push({ id: 'chart-ops', title: 'ops/s per CPU', why: 'the series has no per-CPU ops (a result from before they were sampled)' });
    if (s.every((p) => typeof p.refaults === 'number')) {
      const rf: XY[] = [{ name: 'refaults/s', data: rates(s, (p) => p.refaults, win), area: true }];
      charts.push({ id: 'chart-refaults', title: 'refaults over time', option: timeSeriesOption(rf, 'refaults/s'), series: ['refaults/s'], caption: `faults on pages the host had discarded, all CPUs, over a ${win} ms moving window (${r.host.refaults} in all).` });
    } else charts.push({ id: 'chart-refaults', title: 'refaults over time', why: 'the series has no refault counts' });
  } else {
    charts.push({ id: 'chart-memory', title: 'memory: host RSS vs guest used vs reported', why: noSeries });
    charts.push({ id: 'chart-ops', title: 'ops/s per CPU', why: noSeries });
    charts.push({ id: 'chart-refaults', title: 'refaults over time', why: noSeries });
  }
  const locks = r.locks?.filter((l) => l.acquisitions > 0);
  if (!locks) {
    const why = 'lock statistics were off: run with --lockstat';
    charts.push({ id: 'chart-lock-wait', title: 'lock wait histogram per class', why }, { id: 'chart-lock-hold', title: 'lock hold histogram per class', why });
  } else {
    const waited = locks.filter((l) => l.waitHistNs.length > 0);
    if (waited.length === 0) charts.push({ id: 'chart-lock-wait', title: 'lock wait histogram per class', why: 'no lock acquisition had to wait in this run (no contention)' });
    else charts.push({ id: 'chart-lock-wait', title: 'lock wait histogram per class', option: histogramOption(waited.map((l) => ({ name: l.class, buckets: l.waitHistNs })), 'waits'), series: waited.map((l) => l.class), caption: 'contended acquisitions by wait time (log2 buckets with 4 sub-buckets, labelled by their upper bound).' });
    const held = locks.filter((l) => l.holdHistNs.length > 0);
    if (held.length === 0) charts.push({ id: 'chart-lock-hold', title: 'lock hold histogram per class', why: 'no lock was released in this run' });
    else charts.push({ id: 'chart-lock-hold', title: 'lock hold histogram per class', option: histogramOption(held.map((l) => ({ name: l.class, buckets: l.holdHistNs })), 'holds'), series: held.map((l) => l.class), caption: 'acquisitions by hold time.' });
  }
  const h = r.hinting;
  const rtName = h?.mode === 'hint' ? 'hint run' : h?.mode === 'naive' ? 'naive round trip' : 'report round trip';
  if (!h) charts.push({ id: 'chart-round-trip', title: 'report round trip histogram', why: 'hinting was off (--hinting off): nothing was reported' });
  else if (!h.enabled) charts.push({ id: 'chart-round-trip', title: 'report round trip histogram', why: `hinting (${h.mode}) was disabled in this run: ${h.notes.join('; ') || 'see the notes'}` });
  else if (!h.roundTripHistNs || h.roundTripHistNs.length === 0) charts.push({ id: 'chart-round-trip', title: `${rtName} histogram`, why: `no ${rtName} completed in this run` });
  else charts.push({ id: 'chart-round-trip', title: `${rtName} histogram`, option: histogramOption([{ name: rtName, buckets: h.roundTripHistNs }], 'count'), series: [rtName], caption: h.mode === 'hint' ? 'hint runs from the new cmd id to the STOP being used (driver side).' : 'from handing a report to the device to its acknowledgement (the reporter\'s side).' });
  return charts;
}

export interface RunPageOptions {
  /** --trace file written beside it, to mention. */
  traceFile?: string;
}

export function runHtml(r: RunResult, o: RunPageOptions = {}): string {
  const verdict = r.ok ? '<span class="verdict ok">OK</span>' : `<span class="verdict fail">FAILED, exit ${r.exitCode}</span>`;
  const header = [
    `<h1>balloon-sim run: ${esc(r.config.workload)}, hinting ${esc(r.config.hinting)}, ${r.config.cpus} CPUs, seed ${r.seed}${verdict}</h1>`,
    linesHtml(configLines(r.config), 'config'),
    `<pre class="rerun">rerun: <code>${esc(r.rerun)}</code></pre>`,
    o.traceFile ? `<pre>trace: ${esc(o.traceFile)} (open it in https://ui.perfetto.dev or chrome://tracing)</pre>` : '',
  ].join('\n');
  const body: string[] = [];
  if (!r.ok) body.push(`<div class="violation">${linesHtml(verdictLines(r))}</div>`);
  body.push('<h2>workload</h2>', linesHtml([runLine(r)]), tableHtml(cpuTable(r)));
  body.push('<h2>memory</h2>', linesHtml([freeMemoryLine(r)]), tableHtml(freeBlocksTable(r)), linesHtml([hostLine(r)]));
  if (r.device) body.push('<h2>device</h2>', linesHtml([deviceLine(r.device)]), tableHtml(deviceTable(r.device)));
  if (r.hinting) body.push('<h2>hinting</h2>', linesHtml(hintingLines(r)));
  if (r.cpuTime) body.push('<h2>cpu time</h2>', linesHtml(cpuTimeLines(r.cpuTime)));
  if (r.locks) body.push('<h2>lock statistics</h2>', tableHtml(lockstatDataTable(sortLockStats(r.locks, 'wait-total'), r.locks), 'sorted by wait-total, as sim --lockstat prints it'));
  if (r.notes.length) body.push(linesHtml(r.notes.map((n) => `note: ${n}`)));
  body.push('<h2>oracles</h2>', tableHtml(oracleTable(r)), linesHtml(verdictLines(r)));
  return htmlPage({ title: `balloon-sim run seed ${r.seed}`, header, charts: runCharts(r), body: body.join('\n'), kind: 'run' });
}

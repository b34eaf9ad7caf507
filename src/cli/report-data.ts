// The numbers of a run's end report, computed once: the terminal report
// (src/cli/report.ts) prints them as text tables and lines, the HTML report
// (src/cli/html/) as HTML tables. A cell carries its text and, where it shows
// one JSON number, the number and its path in the --json object (`key`,
// scaled by `scale` when the cell shows a multiple of it), so the HTML can
// say which field each cell is and a test can hold it to the JSON.

import type { RunResult } from '../sim/run.js';
import type { DeviceCounters } from '../host/balloon-device.js';
import { fmtBytes } from '../base/units.js';

export interface Cell {
  text: string;
  /** The number the text shows. */
  value?: number;
  /** Its path in the run's --json object (dots; array indices as numbers), and the factor: value = json[key] * scale. */
  key?: string;
  scale?: number;
  /** Long text (a command line): the HTML lets it wrap. */
  wrap?: boolean;
}

export interface DataTable {
  id: string;
  title: string;
  head: string[];
  rows: Cell[][];
}

export const num = (x: number) => (x >= 1e6 ? `${(x / 1e6).toFixed(2)}M` : x >= 1e4 ? `${(x / 1e3).toFixed(1)}k` : `${Math.round(x)}`);
export const ns = (x: number) => (x >= 1e6 ? `${(x / 1e6).toFixed(2)}ms` : x >= 1e3 ? `${(x / 1e3).toFixed(1)}us` : `${Math.round(x)}ns`);

/** A cell showing the JSON number at `key` (times `scale`) through `fmt`. */
export function cell(value: number, fmt: (x: number) => string, key?: string, scale?: number): Cell {
  return { text: fmt(value), value, ...(key !== undefined ? { key } : {}), ...(scale !== undefined ? { scale } : {}) };
}
const text = (t: string): Cell => ({ text: t });

/** Rows as strings, the header first: what the terminal's table() lays out. */
export const textRows = (t: DataTable): string[][] => [t.head, ...t.rows.map((r) => r.map((c) => c.text))];

/** Per CPU and total: ops, ops/s, allocations, frees, failures, allocation latency. */
export function cpuTable(r: RunResult): DataTable {
  const rows: Cell[][] = [];
  const row = (label: string, k: string, c: RunResult['totals'] | RunResult['cpus'][number]) => [
    text(label),
    cell(c.ops, num, `${k}.ops`),
    cell(c.opsPerSec, num, `${k}.opsPerSec`),
    cell(c.allocs, num, `${k}.allocs`),
    cell(c.frees, num, `${k}.frees`),
    cell(c.allocFailures, num, `${k}.allocFailures`),
    cell(c.allocLatencyNs.p50, ns, `${k}.allocLatencyNs.p50`),
    cell(c.allocLatencyNs.p99, ns, `${k}.allocLatencyNs.p99`),
  ];
  r.cpus.forEach((c, i) => rows.push(row(String(c.cpu), `cpus.${i}`, c)));
  rows.push(row('total', 'totals', r.totals));
  return { id: 'cpus', title: 'CPUs', head: ['cpu', 'ops', 'ops/s', 'allocs', 'frees', 'alloc-fail', 'alloc p50', 'alloc p99'], rows };
}

export function freeMemoryLine(r: RunResult): string {
  return `free memory: ${fmtBytes(r.memory.freeBytes)} of ${fmtBytes(r.memory.totalBytes)} (watermarks min/low/high ${fmtBytes(r.memory.wmarkMinBytes)}/${fmtBytes(r.memory.wmarkLowBytes)}/${fmtBytes(r.memory.wmarkHighBytes)})`;
}

/** Free blocks per order at the end (a two-row table: orders, counts). */
export function freeBlocksTable(r: RunResult): DataTable {
  const orders = r.memory.freeBlocksByOrder;
  return { id: 'free-blocks', title: 'free blocks by order', head: ['order', ...orders.map((_, i) => String(i))], rows: [[text('free blocks'), ...orders.map((n, i) => cell(n, String, `memory.freeBlocksByOrder.${i}`))]] };
}

export function hostLine(r: RunResult): string {
  return `host: rss ${fmtBytes(r.host.rssBytes)} at end, peak ${fmtBytes(r.host.peakRssBytes)}, discarded ${fmtBytes(r.host.discardedBytes)}, refaults ${r.host.refaults}, first-touch faults ${r.host.firstTouchFaults}`;
}

export function deviceLine(d: DeviceCounters): string {
  return `device: ${d.queueKind} queue index ${d.queueIndex} (numbering ${d.vqNumbering}), event-idx ${d.eventIdx ? 'on' : 'off'}, features 0x${d.featuresNegotiated.toString(16)}${d.bytesKept > 0 ? `; --no-discard: ${fmtBytes(d.bytesKept)} reported and kept resident` : ''}`;
}

/** The device's counters: chains, descriptors, what it discarded, its time, notifications, bad input. */
export function deviceTable(d: DeviceCounters): DataTable {
  const badKinds = Object.entries(d.bad).filter(([, n]) => n > 0).map(([k, n]) => `${k}=${n}`);
  return {
    id: 'device',
    title: 'device',
    head: ['chains', 'descriptors', 'discarded', 'rss dropped', 'discard time', 'madvise', 'tlb flushes', 'hints', 'kicks', 'interrupts', 'bad input'],
    rows: [
      [
        cell(d.chains, num, 'device.chains'),
        cell(d.descriptors, num, 'device.descriptors'),
        cell(d.bytesDiscarded, fmtBytes, 'device.bytesDiscarded'),
        cell(d.pagesDropped * 4096, fmtBytes, 'device.pagesDropped', 4096),
        cell(d.discardNsTotal, ns, 'device.discardNsTotal'),
        cell(d.madviseCalls ?? 0, num, 'device.madviseCalls'),
        cell(d.tlbFlushes ?? 0, num, 'device.tlbFlushes'),
        cell(d.hints, num, 'device.hints'),
        cell(d.kicks, num, 'device.kicks'),
        cell(d.interrupts, num, 'device.interrupts'),
        d.badTotal ? text(badKinds.join(' ')) : cell(0, String, 'device.badTotal'),
      ],
    ],
  };
}

/** Every oracle: how often it ran, how often it failed. */
export function oracleTable(r: RunResult): DataTable {
  return { id: 'oracles', title: 'oracles', head: ['oracle', 'runs', 'failures'], rows: r.checks.map((c, i) => [text(c.oracle), cell(c.runs, num, `checks.${i}.runs`), cell(c.failures, String, `checks.${i}.failures`)]) };
}

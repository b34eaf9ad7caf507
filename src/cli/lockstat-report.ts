// Output of lock statistics: the human table and the Linux /proc/lock_stat
// text format (kernel/locking/lockdep_proc.c, "lock_stat version 0.4").

import { choiceFlag } from '../sim/config.js';
import type { LockClassStats } from '../locking/lockstat.js';
import { UsageError } from '../base/errors.js';
import { SITE_NAMES } from '../locking/sites.js';
import { type Cell, type DataTable, cell, textRows } from './report-data.js';

export const LOCKSTAT_SORTS = ['contentions', 'wait-total', 'wait-max', 'hold-total'] as const;
export type LockstatSort = (typeof LOCKSTAT_SORTS)[number];
export const LOCKSTAT_FORMATS = ['table', 'proc'] as const;
export type LockstatFormat = (typeof LOCKSTAT_FORMATS)[number];

export interface LockstatOutput {
  format: LockstatFormat;
  /** Explicit sort; when absent the table sorts by wait-total and proc by contentions (the kernel's order). */
  sort?: LockstatSort;
}

/** --lockstat-format / --lockstat-sort; giving either one implies --lockstat. */
export function parseLockstatFlags(a: Record<string, unknown>): { enabled: boolean; output: LockstatOutput } {
  const fmt = a['lockstat-format'];
  const sort = a['lockstat-sort'];
  if (Array.isArray(fmt) || Array.isArray(sort)) throw new UsageError('--lockstat-format/--lockstat-sort: give each at most once');
  const output: LockstatOutput = { format: fmt === undefined ? 'table' : choiceFlag('lockstat-format', fmt, LOCKSTAT_FORMATS) };
  if (sort !== undefined) output.sort = choiceFlag('lockstat-sort', sort, LOCKSTAT_SORTS);
  return { enabled: Boolean(a.lockstat) || fmt !== undefined || sort !== undefined, output };
}

const sortKey: Record<LockstatSort, (s: LockClassStats) => number> = {
  contentions: (s) => s.contentions,
  'wait-total': (s) => s.waitNs.total,
  'wait-max': (s) => s.waitNs.max,
  'hold-total': (s) => s.holdNs.total,
};

/** Descending by the key; ties keep the LOCK_CLASSES order (stable sort). */
export function sortLockStats(stats: LockClassStats[], sort: LockstatSort): LockClassStats[] {
  const k = sortKey[sort];
  return [...stats].sort((a, b) => k(b) - k(a));
}

export function formatLockstat(stats: LockClassStats[], out: LockstatOutput): string {
  return out.format === 'proc' ? procLockStat(sortLockStats(stats, out.sort ?? 'contentions')) : lockstatTable(sortLockStats(stats, out.sort ?? 'wait-total'), out.sort ?? 'wait-total');
}

// ---------- human table ----------

const cnt = (x: number) => (x >= 1e6 ? `${(x / 1e6).toFixed(2)}M` : x >= 1e4 ? `${(x / 1e3).toFixed(1)}k` : `${Math.round(x)}`);
const dur = (ns: number) => (ns >= 1e9 ? `${(ns / 1e9).toFixed(2)}s` : ns >= 1e6 ? `${(ns / 1e6).toFixed(2)}ms` : ns >= 1e3 ? `${(ns / 1e3).toFixed(1)}us` : `${Math.round(ns)}ns`);

function grid(rows: string[][]): string[] {
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
  return rows.map((r) => r.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('  ').trimEnd());
}

export function lockstatTable(stats: LockClassStats[], sortedBy: LockstatSort = 'wait-total'): string {
  const out: string[] = [`lock statistics (sorted by ${sortedBy}; times are per acquisition unless total; histogram percentiles are bucket upper bounds)`];
  out.push(...grid(textRows(lockstatDataTable(stats))));
  for (const s of stats) {
    if (s.contentions === 0) continue;
    const waited = s.contentionPoints.map((p) => `${p.site} ${cnt(p.count)}`).join(', ');
    const held = s.contendingPoints.map((p) => `${p.site} ${cnt(p.count)}`).join(', ');
    out.push(`  ${s.class}: waited in: ${waited}; held by: ${held}`);
  }
  return out.join('\n');
}

/**
 * The lock table's cells (src/cli/report-data.ts), in the order of `stats`;
 * `all` is the run's `locks` array the keys index (default: `stats` itself).
 */
export function lockstatDataTable(stats: LockClassStats[], all: LockClassStats[] = stats): DataTable {
  const rows: Cell[][] = stats.map((s) => {
    const k = `locks.${all.indexOf(s)}`;
    const w = s.waitNs;
    const h = s.holdNs;
    return [
      { text: s.class },
      cell(s.acquisitions, cnt, `${k}.acquisitions`),
      cell(s.contentions, cnt, `${k}.contentions`),
      cell(s.conBounces, cnt, `${k}.conBounces`),
      cell(s.acqBounces, cnt, `${k}.acqBounces`),
      ...(['total', 'avg', 'max', 'p50', 'p99', 'p999'] as const).map((f) => cell(w[f], dur, `${k}.waitNs.${f}`)),
      ...(['total', 'avg', 'max', 'p50', 'p99', 'p999'] as const).map((f) => cell(h[f], dur, `${k}.holdNs.${f}`)),
    ];
  });
  return { id: 'locks', title: 'lock statistics', head: ['class', 'acquisitions', 'contentions', 'con-bounces', 'acq-bounces', 'wait-total', 'wait-avg', 'wait-max', 'wait-p50', 'wait-p99', 'wait-p999', 'hold-total', 'hold-avg', 'hold-max', 'hold-p50', 'hold-p99', 'hold-p999'], rows };
}

// ---------- /proc/lock_stat ----------
// Layout of lockdep_proc.c (seq_header/seq_stats): class name right-aligned
// in 40 columns, 12 numeric columns of width 14, times in microseconds with
// two decimals. Row per class that was acquired at least once; classes with
// contentions get their contention points (the waiters' sites) and contending
// points (the holders' sites), each group led by dashes under the name, then
// a blank line, a dotted line and a blank line. The kernel prints a code
// address and symbol per point; the simulator prints the site id in the
// address field and the site name as the symbol.

/** Width of the dashed/dotted rules: 40 + 1 + 12 * (14 + 1). */
export const PROC_RULE_WIDTH = 40 + 1 + 12 * (14 + 1);

export const PROC_COLUMNS = ['class name', 'con-bounces', 'contentions', 'waittime-min', 'waittime-max', 'waittime-total', 'waittime-avg', 'acq-bounces', 'acquisitions', 'holdtime-min', 'holdtime-max', 'holdtime-total', 'holdtime-avg'] as const;

/** Nanoseconds -> "us.hh" as snprint_time() does: add 5 ns, then integer microseconds and hundredths. */
export function procTime(ns: number): string {
  const n = Math.max(0, Math.round(ns)) + 5;
  const us = Math.floor(n / 1000);
  const hundredths = Math.floor((n % 1000) / 10);
  return `${us}.${String(hundredths).padStart(2, '0')}`;
}

const r14 = (s: string | number) => String(s).padStart(14);
const rule = (c: string, offset: number, length: number) => ' '.repeat(Math.max(0, offset)) + c.repeat(Math.max(0, length));

/** The kernel's lock_time columns: count, then min, max, total and avg (integer ns division). */
function lockTime(count: number, t: { min: number; max: number; total: number }): string {
  const totalNs = Math.round(t.total);
  const avgNs = count > 0 ? Math.floor(totalNs / count) : 0;
  return r14(count) + [t.min, t.max, totalNs, avgNs].map((x) => ' ' + r14(procTime(x))).join('');
}

function pointLines(name: string, points: { site: string; count: number }[], siteIds: Map<string, number>): string[] {
  const out: string[] = [];
  for (const p of points) {
    if (out.length === 0) out.push(rule('-', 40 - name.length, name.length));
    const id = siteIds.get(p.site) ?? 0;
    const ip = `[<${id.toString(16).padStart(16, '0')}>]`;
    out.push(`${name.padStart(40)} ${r14(p.count)} ${ip.padStart(29)} ${p.site}`);
  }
  return out;
}

export function procLockStat(stats: LockClassStats[], siteIds: Map<string, number> = defaultSiteIds()): string {
  const out: string[] = ['lock_stat version 0.4', rule('-', 0, PROC_RULE_WIDTH)];
  out.push(PROC_COLUMNS.map((c, i) => (i === 0 ? c.padStart(40) : r14(c))).join(' '));
  out.push(rule('-', 0, PROC_RULE_WIDTH), '');
  for (const s of stats) {
    // A class that was never acquired has no hold samples: the kernel prints nothing for it.
    if (s.acquisitions === 0) continue;
    const name = s.class.slice(0, 37);
    out.push(`${name.padStart(40)}:${r14(s.conBounces)} ${lockTime(s.contentions, s.waitNs)} ${r14(s.acqBounces)} ${lockTime(s.acquisitions, s.holdNs)}`);
    if (s.contentions === 0) continue;
    out.push(...pointLines(name, s.contentionPoints, siteIds));
    const contending = pointLines(name, s.contendingPoints, siteIds);
    out.push(...contending);
    // As in the kernel, the trailer follows only when contending points were printed.
    if (contending.length > 0) out.push('', rule('.', 0, PROC_RULE_WIDTH), '');
  }
  return out.join('\n');
}

function defaultSiteIds(): Map<string, number> {
  return new Map(SITE_NAMES.map((n, i) => [n, i]));
}

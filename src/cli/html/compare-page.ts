// The HTML report of `sim compare --html FILE`, rendered from the
// CompareResult generically: one row per mode; the terminal's side-by-side
// table (compareTableRows, the same text); every numeric field of the rows
// with its exact value; and charts of each per-mode quantity. A field that
// carries an interval (an object with lo/hi beside a central value, or a
// number `x` beside `xInterval`/`xCi` as [lo, hi] or {lo, hi}) is drawn with
// error bars; without one, bars of the point values, and the page says that
// the comparison carries no interval.

import type { CompareResult } from '../compare.js';
import { compareTableRows } from '../compare.js';
import { configLines } from '../report.js';
import type { Cell, DataTable } from '../report-data.js';
import { type ChartOrAbsent, esc, htmlPage, linesHtml, tableHtml } from './page.js';
import { type IntervalBar, barsOption, sig } from './charts.js';

type Json = unknown;

/** A quantity found in every mode row: its path, and per mode its value and interval if any. */
export interface ModeMetric {
  path: string;
  values: IntervalBar[];
  hasInterval: boolean;
}

const CENTRAL = ['median', 'ratio', 'value', 'estimate', 'mid', 'point'];
const LO = ['lo', 'low', 'lower'];
const HI = ['hi', 'high', 'upper'];
const pickName = (o: Record<string, Json>, names: string[]): string | undefined => names.find((n) => typeof o[n] === 'number' && Number.isFinite(o[n]));
const pickNum = (o: Record<string, Json>, names: string[]): number | undefined => {
  const n = pickName(o, names);
  return n === undefined ? undefined : (o[n] as number);
};

/** [lo, hi] of an interval-shaped value ([lo, hi] or {lo, hi}), or null. */
function intervalOf(x: Json): [number, number] | null {
  if (Array.isArray(x) && x.length === 2 && x.every((v) => typeof v === 'number' && Number.isFinite(v))) return [x[0] as number, x[1] as number];
  if (x !== null && typeof x === 'object' && !Array.isArray(x)) {
    const lo = pickNum(x as Record<string, Json>, LO);
    const hi = pickNum(x as Record<string, Json>, HI);
    if (lo !== undefined && hi !== undefined) return [lo, hi];
  }
  return null;
}

/** Numeric leaves of one mode row (objects up to 3 deep, arrays skipped), intervals recognised; path -> value. */
export function rowMetrics(row: Json): Map<string, { value: number; lo?: number; hi?: number; key: string }> {
  const out = new Map<string, { value: number; lo?: number; hi?: number; key: string }>();
  const walk = (o: Record<string, Json>, prefix: string, depth: number) => {
    for (const [k, v] of Object.entries(o)) {
      const p = prefix ? `${prefix}.${k}` : k;
      if (typeof v === 'number' && Number.isFinite(v)) {
        // x beside xInterval / xCi / xCI / xCi95
        const sib = ['Interval', 'Ci', 'CI', 'Ci95', 'Ci95Pct'].map((s) => o[`${k}${s}`]).find((s) => intervalOf(s) !== null);
        const iv = sib !== undefined ? intervalOf(sib) : null;
        out.set(p, iv ? { value: v, lo: iv[0], hi: iv[1], key: p } : { value: v, key: p });
      } else if (v !== null && typeof v === 'object' && !Array.isArray(v) && depth < 3) {
        const r = v as Record<string, Json>;
        const central = pickName(r, CENTRAL);
        const iv = intervalOf(r);
        if (central !== undefined && iv !== null) out.set(p, { value: r[central] as number, lo: iv[0], hi: iv[1], key: `${p}.${central}` });
        else walk(r, p, depth + 1);
      }
    }
  };
  if (row !== null && typeof row === 'object') walk(row as Record<string, Json>, '', 0);
  return out;
}

/** Quantities present in every row, in first-row order; interval ones first. */
export function modeMetrics(c: CompareResult): ModeMetric[] {
  const rows = c.modes.map((m) => rowMetrics(m));
  if (rows.length === 0) return [];
  const paths = [...rows[0].keys()].filter((p) => rows.every((r) => r.has(p)));
  const out = paths.map((path) => {
    const values = c.modes.map((m, i) => {
      const { value, lo, hi } = rows[i].get(path)!;
      return { label: String(m.mode), value, ...(lo !== undefined ? { lo, hi } : {}) };
    });
    return { path, values, hasInterval: values.some((v) => v.lo !== undefined) };
  });
  return [...out.filter((m) => m.hasInterval), ...out.filter((m) => !m.hasInterval)];
}

const FEATURED = ['opsPerSec', 'hostRssBytes', 'zoneLock.waitNsPerAcquisition', 'cpu.guestRunNsPerOp'];

export function compareCharts(c: CompareResult): ChartOrAbsent[] {
  const metrics = modeMetrics(c);
  const charts: ChartOrAbsent[] = [];
  const withCi = metrics.filter((m) => m.hasInterval);
  for (const m of withCi) {
    const ratio = /ratio/i.test(m.path);
    charts.push({ id: `chart-${m.path.replace(/\W+/g, '-')}`, title: `${m.path} per mode, with its 95% interval`, option: barsOption(m.path, m.values.map((v) => ({ ...v, value: sig(v.value), lo: v.lo !== undefined ? sig(v.lo) : undefined, hi: v.hi !== undefined ? sig(v.hi) : undefined })), m.path, ratio ? 1 : undefined), series: [m.path, '95% interval'], caption: 'bars: the value; whiskers: the interval the comparison reports.' });
  }
  if (withCi.length === 0) {
    const ops = metrics.find((m) => m.path === 'opsPerSec');
    const off = ops?.values.find((v) => v.label === 'off');
    if (ops && off && off.value > 0) {
      charts.push({ id: 'chart-ops-ratio', title: 'ops/s relative to hinting off', option: barsOption('ops/s vs off', ops.values.map((v) => ({ label: v.label, value: sig(v.value / off.value) })), 'ratio to off', 1), series: ['ops/s vs off'], caption: 'point ratios, no interval (the comparison reports none for every mode: a bracket was set aside, or one run per mode); repeat it (--repeat) before reading much into a few percent.' });
    }
    charts.push({ id: 'chart-intervals', title: 'per-mode ratios with 95% intervals', why: 'this comparison carries no interval for every mode (a bracket set aside, or one run per mode)' });
  }
  for (const path of FEATURED) {
    const m = metrics.find((x) => x.path === path && !x.hasInterval);
    if (!m) continue;
    const mib = path === 'hostRssBytes';
    charts.push({ id: `chart-${path.replace(/\W+/g, '-')}`, title: `${path} per mode`, option: barsOption(path, m.values.map((v) => ({ label: v.label, value: sig(mib ? v.value / 2 ** 20 : v.value) })), mib ? 'MiB' : path), series: [path] });
  }
  return charts;
}

const fmtNum = (x: number) => (Number.isInteger(x) ? String(x) : String(Number(x.toPrecision(6))));

/** Every quantity of any mode, exact (the JSON's values; keys are paths into the --json object; blank where a mode has none). */
export function allNumbersTable(c: CompareResult): DataTable {
  const rows = c.modes.map((m) => rowMetrics(m));
  const paths: string[] = [];
  for (const r of rows) for (const p of r.keys()) if (!paths.includes(p)) paths.push(p);
  const table: Cell[][] = paths.map((path) => [
    { text: path },
    ...rows.map((r, i): Cell => {
      const v = r.get(path);
      if (!v) return { text: '' };
      return { text: fmtNum(v.value) + (v.lo !== undefined ? ` [${fmtNum(v.lo)}, ${fmtNum(v.hi!)}]` : ''), value: v.value, key: `modes.${i}.${v.key}` };
    }),
  ]);
  return { id: 'numbers', title: 'every number per mode', head: ['field', ...c.modes.map((m) => String(m.mode))], rows: table };
}

export function compareHtml(c: CompareResult): string {
  const verdict = c.ok ? '<span class="verdict ok">OK</span>' : `<span class="verdict fail">FAILED, exit ${c.exitCode}</span>`;
  const header = [
    `<h1>balloon-sim compare: ${esc(c.config.workload)}, ${c.config.cpus} CPUs, seed ${c.seed}${verdict}</h1>`,
    linesHtml(configLines(c.config), 'config'),
    `<pre>modes: ${esc(c.modes.map((m) => m.mode).join(', '))}</pre>`,
    ...(c.verdicts?.length ? [linesHtml(c.verdicts, 'verdicts')] : []),
  ].join('\n');
  const rows = compareTableRows(c);
  const side: DataTable = { id: 'compare', title: 'side by side', head: rows[0], rows: rows.slice(1).map((r) => r.map((t) => ({ text: t }))) };
  const body: string[] = ['<h2>side by side</h2>', tableHtml(side, 'as sim compare prints it')];
  const failed = c.modes.filter((m) => !m.ok);
  for (const m of failed) body.push(`<div class="violation">${linesHtml([`hinting=${m.mode}: exit ${m.exitCode}`, ...m.errors.map((e) => `FAILED (simulator): ${e}`), ...m.violations.slice(0, 5).map((v) => `VIOLATION ${v.oracle}: ${v.message}`), `rerun: ${m.rerun}`])}</div>`);
  body.push('<h2>every number</h2>', tableHtml(allNumbersTable(c), 'exact values from the --json object (intervals in brackets)'));
  return htmlPage({ title: `balloon-sim compare seed ${c.seed}`, header, charts: compareCharts(c), body: body.join('\n'), kind: 'compare' });
}

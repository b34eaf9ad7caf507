// A small terminal chart of a run's series: host RSS and guest used memory
// over time, one character column per time slot, drawn with two glyphs
// ('#' host RSS, '+' guest used, '*' both). Plain text, so it also reads in
// a log or a README.

import type { SeriesPoint } from '../sim/run.js';
import { fmtBytes } from '../base/units.js';

export function renderChart(series: SeriesPoint[], opts: { width?: number; height?: number } = {}): string[] {
  const width = opts.width ?? 64;
  const height = opts.height ?? 12;
  if (series.length < 2) return [];
  const tEnd = series[series.length - 1].tMs || 1;
  const maxBytes = Math.max(1, ...series.map((p) => Math.max(p.hostRssBytes, p.guestUsedBytes)));
  // Column c shows the last sample at or before its time.
  const cols: { rss: number; used: number }[] = [];
  let k = 0;
  for (let c = 0; c < width; c++) {
    const t = (c / (width - 1)) * tEnd;
    while (k + 1 < series.length && series[k + 1].tMs <= t) k++;
    cols.push({ rss: series[k].hostRssBytes, used: series[k].guestUsedBytes });
  }
  const level = (b: number) => Math.round((b / maxBytes) * (height - 1));
  const label = (b: number) => fmtBytes(b).padStart(9);
  const lines: string[] = [];
  for (let row = height - 1; row >= 0; row--) {
    let line = '';
    for (const col of cols) {
      const r = level(col.rss) === row;
      const u = level(col.used) === row;
      line += r && u ? '*' : r ? '#' : u ? '+' : ' ';
    }
    const y = row === height - 1 ? label(maxBytes) : row === 0 ? label(0) : ' '.repeat(9);
    lines.push(`${y} |${line}`);
  }
  lines.push(`${' '.repeat(9)} +${'-'.repeat(width)}`);
  lines.push(`${' '.repeat(11)}0${`${(tEnd / 1000).toFixed(1)}s`.padStart(width - 1)}`);
  lines.push(`${' '.repeat(11)}# host RSS   + guest used   * both`);
  return lines;
}

// ECharts options (plain JSON: built in Node, drawn in the page) for the
// report's charts: time series, log2 histograms, bars with 95% intervals.

import type { HistBucket } from '../../base/hist.js';
import { ns } from '../report-data.js';

const PALETTE = ['#1f77b4', '#d62728', '#2ca02c', '#ff7f0e', '#9467bd', '#8c564b', '#e377c2', '#17becf', '#bcbd22', '#7f7f7f'];

const base = (legend: string[]) => ({
  animation: false,
  color: PALETTE,
  textStyle: { fontFamily: 'system-ui, "DejaVu Sans", sans-serif' },
  legend: { data: legend, top: 0, type: 'scroll' },
  grid: { left: 64, right: 24, top: 36, bottom: 48 },
  tooltip: { trigger: 'axis' },
});

export interface XY {
  name: string;
  /** [x, y] points, x ascending. */
  data: [number, number][];
  area?: boolean;
}

/** Lines over time: x in seconds. */
export function timeSeriesOption(series: XY[], yName: string, xName = 'time (s)'): Record<string, unknown> {
  return {
    ...base(series.map((s) => s.name)),
    xAxis: { type: 'value', name: xName, nameLocation: 'middle', nameGap: 26, min: 0 },
    yAxis: { type: 'value', name: yName, nameTextStyle: { align: 'left' } },
    dataZoom: [{ type: 'inside' }],
    series: series.map((s) => ({ name: s.name, type: 'line', showSymbol: false, data: s.data, ...(s.area ? { areaStyle: { opacity: 0.12 } } : {}) })),
  };
}

/**
 * Histograms of log2 buckets (src/base/hist.ts) on one category axis: the
 * non-empty buckets of any series, labelled by their upper bound; counts on
 * a log axis when they span more than two decades.
 */
export function histogramOption(series: { name: string; buckets: HistBucket[] }[], yName = 'count'): Record<string, unknown> {
  const highs = [...new Set(series.flatMap((s) => s.buckets.map((b) => b.highNs)))].sort((a, b) => a - b);
  const labels = highs.map((h) => `≤${ns(h)}`);
  const counts = series.flatMap((s) => s.buckets.map((b) => b.count)).filter((c) => c > 0);
  const spread = counts.length ? Math.max(...counts) / Math.min(...counts) : 1;
  return {
    ...base(series.map((s) => s.name)),
    tooltip: { trigger: 'axis', axisPointer: { type: 'shadow' } },
    xAxis: { type: 'category', data: labels, name: 'bucket (upper bound)', nameLocation: 'middle', nameGap: 30, axisLabel: { hideOverlap: true } },
    // A log axis when counts span more than two decades (a bar of count 1 sits on its floor, so never below that).
    yAxis: spread > 100 ? { type: 'log', name: yName, min: 0.5, logBase: 10 } : { type: 'value', name: yName, min: 0, minInterval: 1 },
    series: series.map((s) => {
      const by = new Map(s.buckets.map((b) => [b.highNs, b.count]));
      return { name: s.name, type: 'bar', barGap: '0%', data: highs.map((h) => by.get(h) ?? null) };
    }),
  };
}

export interface IntervalBar {
  label: string;
  value: number;
  lo?: number;
  hi?: number;
}

/** Bars per label; where an interval exists, an error bar over it (drawn by the page's 'errorbar' renderItem). */
export function barsOption(name: string, bars: IntervalBar[], yName: string, refLine?: number): Record<string, unknown> {
  const withCi = bars.filter((b) => b.lo !== undefined && b.hi !== undefined);
  const series: Record<string, unknown>[] = [
    {
      name,
      type: 'bar',
      data: bars.map((b) => b.value),
      label: { show: true, position: 'insideTop', formatter: '{c}' },
      ...(refLine !== undefined ? { markLine: { silent: true, symbol: 'none', data: [{ yAxis: refLine }], lineStyle: { type: 'dashed', color: '#5b6670' }, label: { formatter: String(refLine) } } } : {}),
    },
  ];
  if (withCi.length > 0) {
    series.push({
      name: '95% interval',
      type: 'custom',
      renderItem: 'errorbar',
      encode: { x: 0, y: [1, 2] },
      data: bars.map((b, i) => (b.lo !== undefined && b.hi !== undefined ? [i, b.lo, b.hi] : null)).filter((x) => x !== null),
      z: 10,
    });
  }
  return {
    ...base(series.map((s) => String(s.name))),
    tooltip: { trigger: 'axis', axisPointer: { type: 'shadow' } },
    xAxis: { type: 'category', data: bars.map((b) => b.label) },
    // With intervals (ratios near 1) the axis fits the data; point values start at 0.
    yAxis: withCi.length > 0 ? { type: 'value', name: yName, scale: true } : { type: 'value', name: yName, min: 0 },
    series,
  };
}

/** y values to 4 significant digits (smaller pages, same picture). */
export const sig = (x: number) => (Number.isFinite(x) ? Number(x.toPrecision(4)) : 0);

// The shell every HTML report shares: one self-contained file (every script
// and style inlined: it opens offline, from disk, with no network), charts
// drawn in the browser by Apache ECharts (its minified build read from
// node_modules when the report is written and inlined, rendered as SVG), the
// chart options as JSON built here in Node, and tables whose cells carry the
// number they show and its JSON path (src/cli/report-data.ts).

import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import type { DataTable } from '../report-data.js';

/** A chart to draw: its ECharts option (plain JSON) and the series names it must show. */
export interface ChartSpec {
  id: string;
  title: string;
  option: Record<string, unknown>;
  series: string[];
  /** One line under the chart: what it shows and how it was measured. */
  caption?: string;
}

/** A chart the report cannot draw, and why (the data does not exist in this run). */
export interface AbsentChart {
  id: string;
  title: string;
  why: string;
}

export type ChartOrAbsent = ChartSpec | AbsentChart;
export const isAbsent = (c: ChartOrAbsent): c is AbsentChart => 'why' in c;

export function esc(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

/** JSON inside a <script> element: nothing in it can close the element. */
export function scriptJson(x: unknown): string {
  return JSON.stringify(x).replace(/</g, '\\u003c').replace(/>/g, '\\u003e').replace(/\u2028/g, '\\u2028').replace(/\u2029/g, '\\u2029');
}

let echartsSource: string | null = null;
/** The minified ECharts build, from node_modules (a runtime dependency), read once. */
export function echartsScript(): string {
  if (echartsSource === null) {
    const file = createRequire(import.meta.url).resolve('echarts/dist/echarts.min.js');
    echartsSource = readFileSync(file, 'utf8').replace(/<\/script/gi, '<\\/script').replace(/<!--/g, '<\\!--');
  }
  return echartsSource;
}

export function tableHtml(t: DataTable, caption?: string): string {
  const head = t.head.map((h, i) => `<th${i === 0 ? ' class="l"' : ''}>${esc(h)}</th>`).join('');
  const rows = t.rows
    .map((r) => '<tr>' + r.map((c, i) => `<td${c.wrap ? ' class="wrap"' : i === 0 && c.value === undefined ? ' class="l"' : ''}${c.value !== undefined ? ` data-value="${c.value}"` : ''}${c.key !== undefined ? ` data-key="${esc(c.key)}"` : ''}${c.scale !== undefined ? ` data-scale="${c.scale}"` : ''}>${esc(c.text)}</td>`).join('') + '</tr>')
    .join('\n');
  return `<div class="tw"><table class="data" id="table-${esc(t.id)}" data-table="${esc(t.id)}">${caption ? `<caption>${esc(caption)}</caption>` : ''}<thead><tr>${head}</tr></thead><tbody>\n${rows}\n</tbody></table></div>`;
}

/** Terminal lines as they print (a <pre>: same text, same numbers). */
export function linesHtml(lines: string[], cls = 'lines'): string {
  return lines.length ? `<pre class="${cls}">${esc(lines.join('\n'))}</pre>` : '';
}

function chartHtml(c: ChartOrAbsent): string {
  if (isAbsent(c)) return `<figure class="chart absent" id="${esc(c.id)}" data-absent="true"><figcaption>${esc(c.title)}</figcaption><p class="why">Not drawn: ${esc(c.why)}</p></figure>`;
  return `<figure class="chart" data-chart="${esc(c.id)}"><figcaption>${esc(c.title)}</figcaption><div class="plot" id="${esc(c.id)}" data-series="${esc(JSON.stringify(c.series))}"></div>${c.caption ? `<p class="caption">${esc(c.caption)}</p>` : ''}</figure>`;
}

const CSS = `
:root { color-scheme: light; }
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", "DejaVu Sans", sans-serif; margin: 0; color: #1d2329; background: #f6f7f9; }
header { background: #1d2b3a; color: #eef2f6; padding: 14px 24px 12px; }
header h1 { font-size: 20px; margin: 0 0 6px; font-weight: 600; }
header .verdict { display: inline-block; padding: 1px 8px; border-radius: 3px; font-weight: 600; margin-left: 8px; font-size: 14px; vertical-align: 2px; }
.ok { background: #2e7d32; color: #fff; } .fail { background: #c62828; color: #fff; }
header pre, header code { color: #cfe3f7; }
main { padding: 12px 24px 32px; }
pre { font: 12px/1.4 "DejaVu Sans Mono", Menlo, Consolas, monospace; white-space: pre-wrap; word-break: break-all; margin: 6px 0; }
.charts { display: grid; grid-template-columns: repeat(auto-fill, minmax(560px, 1fr)); gap: 14px; margin: 12px 0 20px; }
figure.chart { background: #fff; border: 1px solid #dde1e6; border-radius: 6px; margin: 0; padding: 8px 10px; }
figure.chart figcaption { font-weight: 600; font-size: 14px; }
.plot { width: 100%; height: 300px; }
.caption, .why { color: #5b6670; font-size: 12px; margin: 4px 0 0; }
.absent .why { padding: 20px 4px; font-size: 13px; }
h2 { font-size: 16px; margin: 22px 0 6px; border-bottom: 1px solid #dde1e6; padding-bottom: 3px; }
div.tw { overflow-x: auto; max-width: 100%; }
table.data { border-collapse: collapse; background: #fff; margin: 6px 0 10px; font: 12px/1.35 "DejaVu Sans Mono", Menlo, Consolas, monospace; }
table.data caption { text-align: left; font: 600 13px system-ui, sans-serif; padding: 2px 0 4px; }
table.data th, table.data td { border: 1px solid #dde1e6; padding: 2px 8px; text-align: right; white-space: nowrap; }
table.data th { background: #eef1f4; }
table.data .l { text-align: left; }
table.data td.wrap { white-space: normal; word-break: break-all; text-align: left; }
.violation { background: #fdecea; border: 1px solid #f5c2c0; border-radius: 4px; padding: 6px 10px; margin: 10px 0; }
details > summary { cursor: pointer; font-weight: 600; margin: 10px 0 4px; }
footer { color: #5b6670; font-size: 12px; padding: 0 24px 24px; }
`;

/**
 * The page's script: draw every chart with ECharts (SVG renderer), flag each
 * drawn container (data-rendered), and say loudly (console.error, and in the
 * page) when one fails. Error bars (`renderItem: 'errorbar'` in a custom
 * series) are drawn by a function here, since the options are JSON.
 */
const CLIENT = `
(function () {
  var specs = JSON.parse(document.getElementById('chart-specs').textContent);
  function errorBar(params, api) {
    var x = api.value(0), lo = api.value(1), hi = api.value(2);
    var a = api.coord([x, lo]), b = api.coord([x, hi]);
    var w = Math.max(6, api.size([1, 0])[0] * 0.25);
    var style = { stroke: '#1d2329', lineWidth: 1.5 };
    return { type: 'group', children: [
      { type: 'line', shape: { x1: a[0], y1: a[1], x2: b[0], y2: b[1] }, style: style },
      { type: 'line', shape: { x1: a[0] - w / 2, y1: a[1], x2: a[0] + w / 2, y2: a[1] }, style: style },
      { type: 'line', shape: { x1: b[0] - w / 2, y1: b[1], x2: b[0] + w / 2, y2: b[1] }, style: style }
    ] };
  }
  var charts = [];
  specs.forEach(function (s) {
    var el = document.getElementById(s.id);
    try {
      (s.option.series || []).forEach(function (x) { if (x.renderItem === 'errorbar') x.renderItem = errorBar; });
      var c = echarts.init(el, null, { renderer: 'svg' });
      c.setOption(s.option);
      charts.push(c);
      el.setAttribute('data-rendered', 'true');
    } catch (e) {
      el.textContent = 'chart failed: ' + e;
      console.error('chart ' + s.id + ' failed: ' + e);
    }
  });
  window.addEventListener('resize', function () { charts.forEach(function (c) { c.resize(); }); });
  document.body.setAttribute('data-charts-done', String(charts.length));
})();
`;

export interface PageParts {
  title: string;
  /** Inner HTML of the header (title line, seed, configuration, rerun command). */
  header: string;
  charts: ChartOrAbsent[];
  /** Inner HTML after the charts (tables, lines). */
  body: string;
  /** What the page is (data-report on <body>): run, compare, campaign. */
  kind: string;
}

export function htmlPage(p: PageParts): string {
  const drawn = p.charts.filter((c): c is ChartSpec => !isAbsent(c));
  return `<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="generator" content="balloon-sim">
<title>${esc(p.title)}</title>
<style>${CSS}</style>
</head>
<body data-report="${esc(p.kind)}">
<header>${p.header}</header>
<main>
<section class="charts">
${p.charts.map(chartHtml).join('\n')}
</section>
${p.body}
</main>
<footer>Written by balloon-sim. Charts: Apache ECharts ${esc(echartsVersion())} (Apache-2.0), inlined; the page needs no network.</footer>
<script type="application/json" id="chart-specs">${scriptJson(drawn.map((c) => ({ id: c.id, option: c.option })))}</script>
<script>${echartsScript()}</script>
<script>${CLIENT}</script>
</body></html>
`;
}

function echartsVersion(): string {
  try {
    const req = createRequire(import.meta.url);
    return String((JSON.parse(readFileSync(req.resolve('echarts/package.json'), 'utf8')) as { version?: string }).version ?? '?');
  } catch {
    return '?';
  }
}

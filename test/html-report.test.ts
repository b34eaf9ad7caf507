// --html FILE, opened in a real browser: Debian's chromium, headless, driven
// by playwright-core (src/testing/browser.ts), one browser for every page.
// For each report (a run, a comparison, a campaign, and a comparison that
// carries 95% intervals): the page loads from file:// with no network request
// and no console error, every chart it draws is an SVG holding its series,
// every chart it leaves out says why, every table cell that shows a JSON
// number shows exactly that number (data-key / data-value against the
// command's --json), and the tables are the terminal's (laid out with the
// terminal's table(), they appear verbatim in what the command printed).
// A screenshot of each page is taken; BALLOON_SIM_UPDATE_SCREENSHOT=1 writes
// the run page's to docs/img/report.png (the README's picture).
//
// chromium missing: the tests fail (.ci/run installs it), unless
// BALLOON_SIM_SKIP_BROWSER=1 asks to skip them, which they say out loud.
import { spawn } from 'node:child_process';
import { mkdtempSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import type { BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { table } from '../src/cli/report.js';
import { compareHtml } from '../src/cli/html/compare-page.js';
import type { CompareResult } from '../src/cli/compare.js';
import { browserMissing, launchBrowser } from '../src/testing/browser.js';

const CLI = path.resolve(__dirname, '../dist/src/cli/main.js');
const tmp = mkdtempSync(path.join(tmpdir(), 'html-report-'));
const missing = browserMissing();
const skip = missing !== null && process.env.BALLOON_SIM_SKIP_BROWSER === '1';
if (skip) console.warn(`\n*** SKIPPING the browser tests (BALLOON_SIM_SKIP_BROWSER=1): ${missing} ***\n`);

/** A CLI run, asynchronously (the three reports are made at the same time). */
function sim(args: string[]): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const c = spawn(process.execPath, [CLI, ...args], { cwd: tmp });
    let stdout = '';
    let stderr = '';
    c.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    c.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const timer = setTimeout(() => c.kill('SIGKILL'), 120_000);
    c.on('close', (status) => {
      clearTimeout(timer);
      resolve({ status, stdout, stderr });
    });
  });
}

const get = (o: unknown, key: string): unknown => key.split('.').reduce<unknown>((x, k) => (x === null || x === undefined ? undefined : (x as Record<string, unknown>)[k]), o);

interface Loaded {
  page: Page;
  problems: string[];
}

let browser: BrowserContext | null = null;
const out: Record<string, { status: number | null; stdout: string; stderr: string; file: string }> = {};

async function open(file: string): Promise<Loaded> {
  const page = await browser!.newPage();
  const problems: string[] = [];
  page.on('console', (m) => {
    if (m.type() === 'error') problems.push(`console error: ${m.text()}`);
  });
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  page.on('request', (r) => {
    if (!r.url().startsWith('file:') && !r.url().startsWith('data:')) problems.push(`network request: ${r.url()}`);
  });
  await page.goto(pathToFileURL(file).href);
  await page.waitForSelector('body[data-charts-done]', { timeout: 30_000 });
  return { page, problems };
}

/** Every chart drawn (an SVG with its series' names in it) or left out with a reason; returns the drawn ids. */
async function checkCharts(page: Page): Promise<{ drawn: string[]; absent: string[] }> {
  const charts = await page.$$eval('.plot', (els) =>
    els.map((e) => ({
      id: e.id,
      rendered: e.getAttribute('data-rendered'),
      series: JSON.parse(e.getAttribute('data-series') ?? '[]') as string[],
      svgText: [...e.querySelectorAll('svg text')].map((t) => t.textContent ?? '').join('\n'),
      shapes: e.querySelectorAll('svg path, svg rect, svg polyline').length,
    })),
  );
  for (const c of charts) {
    expect(c.rendered, c.id).toBe('true');
    expect(c.shapes, `${c.id}: shapes in its SVG`).toBeGreaterThan(5);
    expect(c.series.length, c.id).toBeGreaterThan(0);
    for (const s of c.series) expect(c.svgText, `${c.id} shows series '${s}'`).toContain(s);
  }
  const absent = await page.$$eval('figure.absent', (els) => els.map((e) => ({ id: e.id, why: e.querySelector('.why')?.textContent ?? '' })));
  for (const a of absent) expect(a.why, a.id).toMatch(/^Not drawn: \S.{10,}/);
  const done = Number(await page.getAttribute('body', 'data-charts-done'));
  expect(done).toBe(charts.length);
  return { drawn: charts.map((c) => c.id), absent: absent.map((a) => a.id) };
}

/** Every cell tied to a JSON field shows exactly that field's number; returns how many were checked. */
async function checkNumbers(page: Page, json: unknown): Promise<number> {
  const cells = await page.$$eval('td[data-key]', (els) => els.map((e) => ({ key: e.getAttribute('data-key')!, value: Number(e.getAttribute('data-value')), scale: Number(e.getAttribute('data-scale') ?? '1') })));
  for (const c of cells) {
    const v = get(json, c.key);
    expect(typeof v, c.key).toBe('number');
    expect((v as number) * c.scale, c.key).toBe(c.value);
  }
  return cells.length;
}

/** A table's text laid out as the terminal lays it out. */
async function tableText(page: Page, id: string): Promise<string> {
  const rows = await page.$$eval(`table#table-${id} tr`, (trs) => trs.map((tr) => [...tr.querySelectorAll('th, td')].map((c) => c.textContent ?? '')));
  expect(rows.length, id).toBeGreaterThan(1);
  return table(rows);
}

describe.skipIf(skip)('HTML reports in a headless browser', () => {
  beforeAll(async () => {
    if (missing) throw new Error(`${missing}; set BALLOON_SIM_SKIP_BROWSER=1 to skip the browser tests locally`);
    const runs: [string, string[]][] = [
      ['run', ['--cpus', '4', '--workload', 'memhog', '--memory', '256M', '--duration', '1500ms', '--hold', '300ms', '--seed', '42', '--lockstat', '--report-delay', '100ms', '--json']],
      ['compare', ['compare', '--hint-shrink-acked-only', '--workload', 'churn', '--cpus', '2', '--memory', '64M', '--duration', '200ms', '--seed', '3', '--report-delay', '10ms', '--capacity', '4', '--report-order', '5', '--repeat', '1', '--json']],
      ['campaign', ['stress', '--runs', '4', '--jobs', '1', '--seed', '3', '--cpus', '2', '--memory', '64M', '--capacity', '4', '--report-order', '7', '--inject', 'device-double-used', '--run-duration', '200ms', '--json']],
    ];
    const done = await Promise.all([...runs.map(([name, args]) => sim([...args, '--html', path.join(tmp, `${name}.html`)])), launchBrowser()]);
    runs.forEach(([name], i) => (out[name] = { ...(done[i] as { status: number | null; stdout: string; stderr: string }), file: path.join(tmp, `${name}.html`) }));
    browser = done[runs.length] as BrowserContext;
  }, 180_000);
  afterAll(async () => {
    await browser?.close();
  });

  it('run: the charts, no network and no console error, the tables equal the JSON and the terminal report', async () => {
    const r = out.run;
    expect(r.status, r.stderr.slice(-500)).toBe(0);
    expect(r.stderr).toMatch(/^html report written to .*run\.html \(1\.\d MiB, self-contained\)$/m);
    expect(statSync(r.file).size).toBeLessThan(3 * 2 ** 20);
    const json = JSON.parse(r.stdout);
    const { page, problems } = await open(r.file);
    const { drawn, absent } = await checkCharts(page);
    for (const id of ['chart-memory', 'chart-ops', 'chart-refaults', 'chart-lock-hold', 'chart-round-trip']) expect(drawn, id).toContain(id);
    // Lock waits exist only where a lock was contended: drawn if so, explained if not.
    const contended = json.locks.some((l: { contentions: number }) => l.contentions > 0);
    expect(contended ? drawn : absent).toContain('chart-lock-wait');
    // The series names of the per-CPU chart are the run's CPUs.
    expect(JSON.parse((await page.getAttribute('#chart-ops', 'data-series'))!)).toEqual(['cpu0', 'cpu1', 'cpu2', 'cpu3']);
    expect(await checkNumbers(page, json)).toBeGreaterThan(80);
    for (const id of ['cpus', 'free-blocks', 'device', 'oracles', 'locks']) {
      const text = await tableText(page, id);
      const terminal = id === 'locks' ? text.split('\n').map((l) => l.trimEnd()).join('\n') : text;
      expect(r.stderr, `table ${id} as the terminal printed it`).toContain(terminal);
    }
    // Seed, configuration and the rerun command at the top.
    const header = await page.textContent('header');
    expect(header).toContain(`balloon-sim: seed 42`);
    expect(header).toContain(`rerun: ${json.rerun}`);
    expect(header).toMatch(/config: cpus=4 workload=memhog/);
    const shot = await page.screenshot({ clip: { x: 0, y: 0, width: 1280, height: 1000 } });
    writeFileSync(path.join(tmp, 'run.png'), shot);
    if (process.env.BALLOON_SIM_UPDATE_SCREENSHOT === '1') writeFileSync(path.resolve(__dirname, '../docs/img/report.png'), shot);
    expect(shot.length).toBeLessThan(200 * 1024);
    expect(problems).toEqual([]);
  });

  it('compare: the bracketed ratio per mode, per-mode charts, the terminal table and every number of the JSON', async () => {
    const r = out.compare;
    expect(r.status, r.stderr.slice(-500)).toBe(0);
    const json = JSON.parse(r.stdout);
    const { page, problems } = await open(r.file);
    const { drawn, absent } = await checkCharts(page);
    expect(drawn).toEqual(expect.arrayContaining(['chart-opsPerSec', 'chart-hostRssBytes']));
    // One round: each mode's ratio to off from one bracket (an interval of one point), unless
    // the machine changed speed inside a bracket and it was set aside (no ratio: the page says so).
    const every = json.modes.every((m: { opsRatio?: { median: number | null } }) => typeof m.opsRatio?.median === 'number');
    if (every) {
      expect(drawn).toContain('chart-opsRatio');
      const labels = await page.$eval('#chart-opsRatio', (e) => [...e.querySelectorAll('svg text')].map((t) => t.textContent));
      for (const m of json.modes) expect(labels).toContain(m.mode);
    } else expect(absent).toContain('chart-intervals');
    expect(await checkNumbers(page, json)).toBeGreaterThan(5 * 10);
    expect(r.stderr).toContain(await tableText(page, 'compare'));
    await page.screenshot({ path: path.join(tmp, 'compare.png'), fullPage: true });
    expect(problems).toEqual([]);
  });

  it('compare with 95% intervals (the bracketed form): bars with error bars', async () => {
    // The comparison's rows as the repeated, bracketed form reports them: a ratio to off with its interval.
    const base = JSON.parse(out.compare.stdout) as CompareResult;
    const c: CompareResult = { ...base, modes: base.modes.map((m, i) => ({ ...m, opsRatio: { median: 1 - i * 0.01, lo: 0.97 - i * 0.01, hi: 1.02 - i * 0.01, coverage: 0.96 } })) as CompareResult['modes'] };
    const file = path.join(tmp, 'compare-intervals.html');
    writeFileSync(file, compareHtml(c));
    const { page, problems } = await open(file);
    const { drawn } = await checkCharts(page);
    expect(drawn[0]).toBe('chart-opsRatio');
    // One error bar (a group of three lines) per mode inside the chart.
    const lines = await page.$eval('#chart-opsRatio', (e) => e.querySelectorAll('svg path').length);
    expect(lines).toBeGreaterThanOrEqual(3 * c.modes.length);
    expect(await page.textContent('#table-numbers')).toContain('[0.97, 1.02]');
    expect(await checkNumbers(page, c)).toBeGreaterThan(5);
    expect(problems).toEqual([]);
  });

  it('the checks can fail: a console error and a network request are seen', async () => {
    const file = path.join(tmp, 'broken.html');
    writeFileSync(file, '<!DOCTYPE html><html><body><img src="http://127.0.0.1:9/x.png"><script>console.error("boom"); document.body.setAttribute("data-charts-done", "0");</script></body></html>');
    const { problems } = await open(file);
    expect(problems).toEqual(expect.arrayContaining(['console error: boom', 'network request: http://127.0.0.1:9/x.png']));
  });

  it('campaign: runs over time, oracles exercised, the failure with its rerun command', async () => {
    const r = out.campaign;
    expect(r.status, r.stdout.slice(-500)).toBe(1);
    const json = JSON.parse(r.stdout);
    const { page, problems } = await open(r.file);
    const { drawn } = await checkCharts(page);
    expect(drawn).toEqual(['chart-runs', 'chart-wall', 'chart-oracles']);
    const oracleLabels = await page.$eval('#chart-oracles', (e) => [...e.querySelectorAll('svg text')].map((t) => t.textContent));
    for (const o of json.oracles) expect(oracleLabels).toContain(o.oracle);
    expect(await checkNumbers(page, json)).toBeGreaterThan(json.oracles.length * 3);
    const failures = await page.$$eval('table#table-failures tbody tr', (trs) => trs.map((tr) => [...tr.querySelectorAll('td')].map((td) => td.textContent)));
    expect(failures.length).toBe(json.failures);
    expect(failures[0][4]).toBe(json.firstFailure.rerun);
    expect(failures[0][3]).toBe('ring');
    expect(r.stderr).toContain(`rerun: ${json.firstFailure.rerun}`);
    await page.screenshot({ path: path.join(tmp, 'campaign.png'), fullPage: true });
    expect(problems).toEqual([]);
  });
});

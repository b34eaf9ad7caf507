// Soak benchmark: the README's soak command, run as a user runs it (a `sim`
// child process), watched from outside.
//
//   sim --cpus 8 --workload churn --memory 1G --duration 10m --report-delay 2s --prefault --json
//   (--quick: --duration 40s, windows of 10 s instead of a minute)
//
// - the simulator process's own RSS (/proc/<pid>/status VmRSS, every second)
//   must stay flat: median RSS in the last window vs the first window of
//   the workload (--prefault makes the guest buffer resident at set-up, so
//   what can still grow is the simulator's own heap: histograms, the series,
//   logs);
// - ops/s in the last window vs the first (from the JSON series' cumulative
//   ops): the simulator does not slow down as it runs;
// - zero violations (exit 0), and the series stays bounded (SERIES_MAX_POINTS).
//
// Then the interrupt: the same command with --duration 60s gets SIGTERM 5 s
// into its workload (8 CPU threads busy); measured: the signal to main's
// notice on stderr, main's reaction inside the run (the JSON's
// interrupt.reactionMs: from the abort to the end of the workload phase),
// and the signal to the process's exit (settle, checks, report). Target:
// main reacts within 200 ms.

import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { SERIES_MAX_POINTS } from '../src/sim/run.js';
import { type BenchReport, median, round } from './types.js';

const CLI = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../src/cli/main.js');
const MiB = 2 ** 20;

/** VmRSS of `pid` in bytes, or null once it is gone. */
function rssOf(pid: number): number | null {
  try {
    const m = /^VmRSS:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) * 1024 : null;
  } catch {
    return null;
  }
}

interface SoakRun {
  code: number | null;
  j: any;
  rss: { t: number; bytes: number }[];
  exitT: number;
  stderr: string;
}

/** Run `sim args --json`, sampling its RSS every `everyMs`; times are ms since spawn. */
function soakRun(args: string[], everyMs: number, killAtMs?: number): Promise<SoakRun & { killT?: number; noticeT?: number }> {
  const t0 = performance.now();
  return new Promise((resolve) => {
    const c = spawn(process.execPath, [CLI, ...args, '--json'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let stderr = '';
    const rss: { t: number; bytes: number }[] = [];
    let killT: number | undefined;
    let noticeT: number | undefined;
    c.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
    c.stderr.setEncoding('utf8').on('data', (d: string) => {
      stderr += d;
      if (noticeT === undefined && /SIGTERM: ending the workload/.test(stderr)) noticeT = performance.now() - t0;
    });
    const sampler = setInterval(() => {
      const b = rssOf(c.pid!);
      if (b !== null) rss.push({ t: performance.now() - t0, bytes: b });
    }, everyMs);
    const limit = setTimeout(() => c.kill('SIGKILL'), 30 * 60_000);
    c.on('close', (code) => {
      clearInterval(sampler);
      clearTimeout(limit);
      let j = null;
      try {
        j = JSON.parse(out);
      } catch {
        /* reported below */
      }
      resolve({ code, j, rss, exitT: performance.now() - t0, stderr, killT, noticeT });
    });
    if (killAtMs !== undefined) {
      // About `killAtMs` into the workload: --prefault makes the whole 1 GiB
      // guest buffer resident at the end of set-up, so the workload starts
      // when the process's RSS first passes 1 GiB.
      const poll = setInterval(() => {
        const last = rss[rss.length - 1];
        if (last && last.bytes > 1024 * MiB && killT === undefined) {
          clearInterval(poll);
          setTimeout(() => {
            killT = performance.now() - t0;
            c.kill('SIGTERM');
          }, killAtMs);
        }
      }, 20);
      c.on('close', () => clearInterval(poll));
    }
  });
}

/** Cumulative ops at workload time t (ms), linear between series points. */
function opsAt(series: { tMs: number; ops: number }[], t: number): number {
  if (series.length === 0) return NaN;
  if (t <= series[0].tMs) return series[0].ops;
  for (let i = 1; i < series.length; i++) {
    const a = series[i - 1];
    const b = series[i];
    if (t <= b.tMs) return b.tMs === a.tMs ? b.ops : a.ops + ((b.ops - a.ops) * (t - a.tMs)) / (b.tMs - a.tMs);
  }
  return series[series.length - 1].ops;
}

export async function bench(opts: { quick?: boolean } = {}): Promise<BenchReport> {
  const quick = opts.quick ?? false;
  const durationMs = quick ? 40_000 : 600_000;
  const windowMs = quick ? 10_000 : 60_000;
  const args = ['--cpus', '8', '--workload', 'churn', '--memory', '1G', '--duration', quick ? '40s' : '10m', '--report-delay', '2s', '--prefault', '--seed', '1808'];
  const results: Record<string, number> = {};
  const ratios: Record<string, number> = {};
  const notes: string[] = [];

  const r = await soakRun(args, quick ? 500 : 1000);
  if (r.j === null) throw new Error(`soak run gave no JSON (exit ${r.code}): ${r.stderr.slice(-400)}`);
  const j = r.j;
  // The workload window in the parent's clock: it ended settle + stop before the exit.
  const tailMs = (j.hinting?.settleMs ?? 0) + 200;
  const wEnd = r.exitT - tailMs;
  const wStart = wEnd - j.durationMs;
  const inWin = (a: number, b: number) => r.rss.filter((x) => x.t >= a && x.t <= b).map((x) => x.bytes);
  const rssFirst = median(inWin(wStart, wStart + windowMs));
  const rssLast = median(inWin(wEnd - windowMs, wEnd));
  const series = j.series as { tMs: number; ops: number }[];
  const opsFirst = (opsAt(series, windowMs) - opsAt(series, 0)) / (windowMs / 1000);
  const opsLast = (opsAt(series, j.durationMs) - opsAt(series, j.durationMs - windowMs)) / (windowMs / 1000);
  results.durationMs = j.durationMs;
  results.exitCode = r.code ?? -1;
  results.violations = j.violations.length;
  results.rssFirstWindowMiB = round(rssFirst / MiB, 4);
  results.rssLastWindowMiB = round(rssLast / MiB, 4);
  results.rssGrowthMiB = round((rssLast - rssFirst) / MiB);
  results.rssMaxMiB = round(Math.max(...r.rss.map((x) => x.bytes)) / MiB, 4);
  results.rssSamples = r.rss.length;
  results.opsPerSecFirstWindow = round(opsFirst);
  results.opsPerSecLastWindow = round(opsLast);
  results.seriesPoints = series.length;
  results.reports = j.hinting?.reports ?? 0;
  ratios['rssLast/rssFirst'] = round(rssLast / rssFirst, 4);
  ratios['opsLast/opsFirst'] = round(opsLast / opsFirst);
  notes.push(`soak: sim ${args.join(' ')}: exit ${r.code}, ${j.violations.length} violations, ${results.reports} reports; RSS ${round(rssFirst / MiB, 4)} MiB in the first ${windowMs / 1000} s of the workload, ${round(rssLast / MiB, 4)} MiB in the last (median of samples every ${quick ? 0.5 : 1} s); ops/s ${round(opsFirst)} first, ${round(opsLast)} last; series ${series.length} points (bound ${SERIES_MAX_POINTS})`);
  notes.push('targets: exit 0 with 0 violations; rssLast/rssFirst <= 1.02 (the simulator process does not grow with the run); opsLast/opsFirst >= 0.9 (it does not slow down); seriesPoints <= the bound');

  // The interrupt, while 8 CPU threads are busy.
  const reps = quick ? 1 : 5;
  const notice: number[] = [];
  const reaction: number[] = [];
  const toExit: number[] = [];
  const iargs = ['--cpus', '8', '--workload', 'churn', '--memory', '1G', '--duration', '60s', '--report-delay', '2s', '--prefault'];
  for (let i = 0; i < reps; i++) {
    const q = await soakRun([...iargs, '--seed', String(1900 + i)], 50, 5000);
    if (q.j === null || q.killT === undefined) throw new Error(`interrupt run gave no JSON or was not signalled (exit ${q.code}): ${q.stderr.slice(-400)}`);
    if (q.code !== 143 || q.j.interrupted !== true) throw new Error(`interrupt run: exit ${q.code}, interrupted ${q.j.interrupted}; expected 143 and true: ${q.j.rerun}`);
    if (q.noticeT !== undefined) notice.push(q.noticeT - q.killT);
    reaction.push(q.j.interrupt?.reactionMs ?? NaN);
    toExit.push(q.exitT - q.killT);
  }
  results.interruptNoticeMsMedian = round(median(notice));
  results.interruptNoticeMsMax = round(Math.max(...notice));
  results.interruptReactionMsMax = round(Math.max(...reaction));
  results.interruptToExitMsMedian = round(median(toExit));
  ratios['interruptNoticeMsMax/200ms'] = round(Math.max(...notice) / 200);
  notes.push(`interrupt: sim ${iargs.join(' ')} --seed S, SIGTERM 5 s into the workload, ${reps} runs: the signal to main's notice on stderr median ${round(median(notice))} ms (max ${round(Math.max(...notice))}), main's reaction inside the run (abort to the end of the workload phase) max ${round(Math.max(...reaction))} ms, the signal to the exit (settle, checks, report) median ${round(median(toExit))} ms; exit 143 with interrupted: true each time`);
  notes.push('target: main reacts within 200 ms, i.e. interruptNoticeMsMax/200ms <= 1 (notice includes the pipe to this process)');
  return { name: 'soak', results, ratios, notes };
}

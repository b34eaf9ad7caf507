// The free page hint race (issue 16) as a benchmark: how often and how fast
// the simulator finds the race Firecracker documents, and what each
// mitigation costs.
//
// 1. `sim stress` (free-running, 2 jobs) on the race configuration of
//    test/hint-race.test.ts (--hint-device firecracker, the default): K
//    campaigns with different campaign seeds, each stopped at its first
//    failure: runs per hit (runs of the campaign up to and including the
//    failing one) and time to detect (campaign wall time from its start to
//    the end of the failing run).
// 2. The same under `--sched pct` (`sim stress --sched pct`, one CPU): runs
//    per hit and time to detect; every run is deterministic, so the hits are
//    the same on any machine (only the times are not).
// 3. Mitigation (a) as Firecracker describes it (--hint-uffd-wp split): the
//    window between the write-tracking check and the discard, under
//    --sched pct: runs per hit.
// 4. The cost of each mitigation on one pressure configuration (memhog: 4
//    CPUs take 80% of 256 MiB, hold it 300 ms, free it; 3 s; a hint run every
//    100 ms): memory handed back to the host (peak host RSS - host RSS at the
//    end, and what the device dropped), shrinker latency (mean, max per call), CPU allocation
//    failures while the balloon held pages it could not return, vCPU
//    write-protect faults. The upstream row retries the next seed when the
//    race ends a run (counted), since a run stopped by a violation measures
//    nothing.

import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { DEFAULT_CONFIG, type Config } from '../src/sim/config.js';
import { configFromArgs } from '../src/cli/flags.js';
import { runStress, type StressSummary } from '../src/cli/stress.js';
import { runSimulation, type RunResult } from '../src/sim/run.js';
import { type BenchReport, median, round } from './types.js';

const RACE = ['--hinting', 'hint', '--cpus', '4', '--workload', 'memfill', '--memory', '64M', '--hint-interval', '20ms'];
const RACE_RUN_MS = 1000;
const SCHED = ['--hinting', 'hint', '--cpus', '1', '--workload', 'memfill', '--memory', '64M', '--hint-interval', '30ms', '--sched', 'pct', '--pct-depth', '16'];
const SPLIT = ['--hinting', 'hint', '--cpus', '1', '--workload', 'memfill', '--memory', '32M', '--hint-interval', '30ms', '--sched', 'pct', '--pct-depth', '16', '--hint-uffd-wp', 'split'];
const SCHED_RUN_MS = 300;
const DATA_LOSS = ['device-allocated-range', 'stamp'];

interface Campaigns {
  hits: number;
  campaigns: number;
  runsPerHit: number[];
  detectMs: number[];
  oracles: string[];
}

/** K campaigns of `args`, each stopped at its first failure (at most maxRuns runs). */
async function campaigns(args: string[], runMs: number, k: number, maxRuns: number): Promise<Campaigns> {
  const base: Config = configFromArgs([...args, '--seed', '1']);
  const out: Campaigns = { hits: 0, campaigns: k, runsPerHit: [], detectMs: [], oracles: [] };
  // A failing scheduled run writes its schedule file into the working directory: a scratch one.
  const cwd = process.cwd();
  process.chdir(mkdtempSync(path.join(tmpdir(), 'bench-hintrace-')));
  try {
    for (let c = 1; c <= k; c++) await campaign(c);
  } finally {
    process.chdir(cwd);
  }
  return out;

  async function campaign(c: number): Promise<void> {
    const s: StressSummary = await runStress(base, { campaignSeed: 1000 + c, runs: maxRuns, durationMs: Infinity, runDurationMs: runMs, swarm: false, jobs: 2, shardK: 0, shardN: 1 }, () => undefined);
    const f = s.firstFailure;
    if (f === null || f.violations.length === 0) return;
    out.hits++;
    out.oracles.push(f.violations[0].oracle);
    out.runsPerHit.push(f.index + 1);
    const e = s.runs.find((r) => r.index === f.index);
    out.detectMs.push(e ? e.endMs : s.elapsedMs);
  }
}

/** One measured run: the upstream row's runs the race ended are retried with the next seed (counted). */
async function measured(cfg: Config, raceHits: { n: number }): Promise<RunResult> {
  for (let k = 0; k < 6; k++) {
    const r = await runSimulation({ ...cfg, seed: cfg.seed + 1000 * k });
    if (r.ok) return r;
    if (r.violations.some((v) => DATA_LOSS.includes(v.oracle))) {
      raceHits.n++;
      continue;
    }
    throw new Error(`bench run failed: ${r.violations[0]?.message ?? r.errors[0]}; rerun: ${r.rerun}`);
  }
  throw new Error(`bench: the race ended 6 runs in a row: ${cfg.hintDevice}`);
}

export async function bench(opts: { quick?: boolean } = {}): Promise<BenchReport> {
  const quick = opts.quick ?? false;
  const results: Record<string, number> = {};
  const ratios: Record<string, number> = {};
  const notes: string[] = [];
  const summary = (name: string, c: Campaigns, what: string) => {
    results[`${name}.hits`] = c.hits;
    results[`${name}.campaigns`] = c.campaigns;
    results[`${name}.runsPerHitMedian`] = c.hits ? round(median(c.runsPerHit)) : NaN;
    results[`${name}.detectMsMedian`] = c.hits ? round(median(c.detectMs)) : NaN;
    results[`${name}.detectMsMax`] = c.hits ? round(Math.max(...c.detectMs)) : NaN;
    notes.push(`${name}: ${what}: found in ${c.hits} of ${c.campaigns} campaigns; runs per hit ${c.runsPerHit.join(', ') || '-'} (median ${results[`${name}.runsPerHitMedian`]}); time to detect ${c.detectMs.map((x) => Math.round(x)).join(', ') || '-'} ms wall (campaign start to the failing run's end, 2 jobs); oracles ${[...new Set(c.oracles)].join(', ') || '-'}`);
  };

  // 1-3: the race, free-running and scheduled; the split window.
  const k = quick ? 2 : 8;
  summary('stress', await campaigns(RACE, RACE_RUN_MS, k, quick ? 6 : 20), `sim stress --runs ${quick ? 6 : 20} --run-duration ${RACE_RUN_MS}ms --jobs 2 ${RACE.join(' ')}`);
  summary('schedPct', await campaigns(SCHED, SCHED_RUN_MS, k, quick ? 6 : 20), `sim stress --runs ${quick ? 6 : 20} --run-duration ${SCHED_RUN_MS}ms --jobs 2 ${SCHED.join(' ')}`);
  summary('uffdSplitSchedPct', await campaigns(SPLIT, SCHED_RUN_MS, k, quick ? 6 : 20), `sim stress --runs ${quick ? 6 : 20} --run-duration ${SCHED_RUN_MS}ms --jobs 2 ${SPLIT.join(' ')}`);

  // 4: what each mitigation costs.
  const base: Config = { ...DEFAULT_CONFIG, seed: 31, cpus: 4, workload: 'memhog', holdMs: 300, memoryBytes: 256 * 2 ** 20, durationMs: 3000, hinting: 'hint', hintIntervalMs: 100, checkIntervalMs: 0 };
  const rows: [string, Partial<Config>][] = [
    ['upstream', {}],
    ['ackedOnly', { hintShrinkAckedOnly: true }],
    ['uffdSerialized', { hintUffdWp: 'serialized' }],
    ['qemu', { hintDevice: 'qemu' }],
  ];
  const raceHits = { n: 0 };
  const MiB = 2 ** 20;
  for (const [name, over] of rows) {
    const xs: RunResult[] = [];
    for (let i = 0; i < (quick ? 1 : 3); i++) xs.push(await measured({ ...base, ...over, seed: base.seed + i }, name === 'upstream' ? raceHits : { n: 0 }));
    const h = xs.map((r) => r.hinting!.hint!);
    const med = (f: (i: number) => number) => round(median(xs.map((_, i) => f(i))));
    results[`${name}.rssDroppedMiB`] = med((i) => (xs[i].device!.pagesDropped * 4096) / MiB);
    results[`${name}.rssReturnedMiB`] = med((i) => (xs[i].host.peakRssBytes - xs[i].host.rssBytes) / MiB);
    results[`${name}.endRssMiB`] = med((i) => xs[i].host.rssBytes / MiB);
    results[`${name}.hintedMiB`] = med((i) => h[i].bytesHinted / MiB);
    results[`${name}.shrinkerNsMean`] = med((i) => h[i].shrinker.nsMean);
    results[`${name}.shrinkerNsMax`] = med((i) => h[i].shrinker.nsMax);
    results[`${name}.shrinkerBlocks`] = med((i) => h[i].shrinker.blocksReturned + h[i].shrinker.reclaimBlocks);
    results[`${name}.allocFailuresBalloonHeld`] = med((i) => h[i].shrinker.emptyWhileBalloonHeld);
    if (name === 'uffdSerialized') {
      results[`${name}.skippedMiB`] = med((i) => ((h[i].device!.uffd?.skippedPages ?? 0) * 4096) / MiB);
      results[`${name}.wpFaults`] = med((i) => h[i].uffdFaults?.faults ?? 0);
      results[`${name}.wpFaultMs`] = med((i) => (h[i].uffdFaults?.nsTotal ?? 0) / 1e6);
    }
    if (name === 'qemu') {
      results[`${name}.pagesSkipped`] = med((i) => h[i].device!.migration!.pagesSkipped);
      results[`${name}.pagesResent`] = med((i) => h[i].device!.migration!.pagesResent);
    }
  }
  results['upstream.raceHitsRetried'] = raceHits.n;
  // Memory returned per mitigation against upstream's, measured in this run.
  for (const [name] of rows.slice(1)) ratios[`${name}.rssReturned/upstream`] = round(results[`${name}.rssReturnedMiB`] / results['upstream.rssReturnedMiB']);
  notes.push(
    `cost: memhog (80% of 256 MiB on 4 CPUs, held 300 ms, then freed), ${base.durationMs} ms, --hint-interval 100ms, ${quick ? 1 : 3} runs per row (medians): rssReturnedMiB = peak host RSS - host RSS at the end (after settling), endRssMiB, rssDroppedMiB = host RSS the device dropped (QEMU discards nothing); shrinker latency per call (both paths); allocFailuresBalloonHeld = CPU allocations that failed while the balloon held pages it could not return; upstream runs the race ended and were retried: ${raceHits.n}`,
  );
  notes.push('no target: these say how often and how fast the race is found, and what closing it costs; the ratios compare rows of this one run (noisy on a shared machine)');
  return { name: 'hintrace', results, ratios, notes };
}

// `sim stress`: a campaign of many short runs across the cores, each with its
// own seed, stopping at the first failure with the seed, the whole
// configuration and the exact `sim` command that reruns it.
//
// Each run is a child process (`sim run ... --json`): a run already uses a
// piscina pool of one thread per role, so processes keep runs independent
// (a crash or hang kills one child, not the campaign) and --jobs of them at a
// time (default: min(2, cores)) is enough to fill the machine.
//
// Determinism: run i of a campaign has seed runSeed(campaignSeed, i), and with
// --swarm its configuration is drawn from that seed alone, so `--shard K/N`
// (runs i = K, K+N, K+2N, ...) runs exactly the runs the full campaign would,
// and a batch scheduler (Kubernetes Indexed Job, Slurm job array) can split
// one campaign over machines.
//
// --swarm is swarm testing (Groce et al., ISSTA 2012): instead of one
// configuration with every feature on, each run draws its own (cpus, memory,
// workload, hinting mode, capacity, report order, delay, pcp, poison, ...),
// so features that mask each other's bugs are often off.

import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { availableParallelism } from 'node:os';
import { fileURLToPath } from 'node:url';
import { type Config, HINTING_MODES, RANGES, WORKLOADS, durationFlag, intFlag, rerunCommand } from '../sim/config.js';
import { configLines } from './report.js';
import { Rng, splitmix32 } from '../base/rng.js';
import { ORACLES, type Violation, UsageError } from '../base/errors.js';
import { fmtDuration } from '../base/units.js';
import { validateConfig } from '../sim/validate.js';

type RawFlags = Record<string, unknown>;

export const STRESS_OPTIONS = {
  runs: { type: 'string', describe: 'runs in the campaign (1..1000000); default 20 unless --duration is given (then unbounded)' },
  duration: { type: 'string', describe: 'stress: wall-time bound of the campaign, ms/s/m/h (1s..24h); each run\'s workload time is --run-duration' },
  'run-duration': { type: 'string', default: '500ms', describe: 'stress: how long each run\'s workload runs (10ms..10m)' },
  swarm: { type: 'boolean', default: false, describe: 'stress: draw a random configuration per run (cpus, memory, workload, hinting, capacity, report order, delay, pcp, poison, ...) from its seed' },
  jobs: { type: 'string', describe: 'stress: runs at a time (1..64; default min(2, cores))' },
  shard: { type: 'string', describe: 'stress: K/N: run only runs K, K+N, K+2N, ... of the campaign (0 <= K < N <= 100000), for batch schedulers' },
  'trace-dir': { type: 'string', describe: 'stress: every run records a --trace; the trace of a failing run is kept in DIR (run-<index>-seed-<seed>.trace.json; created if missing)' },
} as const;

export interface StressOptions {
  campaignSeed: number;
  runs: number; // Infinity with --duration only
  durationMs: number; // Infinity without --duration
  runDurationMs: number;
  swarm: boolean;
  jobs: number;
  shardK: number;
  shardN: number;
  /** --trace-dir: where a failing run's trace is kept (null: runs are not traced). */
  traceDir?: string | null;
}

/** Seed of run i of a campaign: a fixed function of (campaign seed, i). */
export function runSeed(campaignSeed: number, i: number): number {
  return splitmix32((splitmix32(campaignSeed >>> 0) + Math.imul(i + 1, 0x9e3779b1)) >>> 0);
}

const pick = <T>(rng: Rng, xs: readonly T[]): T => xs[rng.below(xs.length)];

/**
 * The configuration of run i: the base configuration with the run's seed,
 * or with --swarm one drawn from the run's seed. Injections stay as given;
 * a drawn configuration an injection cannot act on is adjusted so it can
 * (e.g. no-ack-wait forces aeration).
 */
export function runConfig(base: Config, o: Pick<StressOptions, 'campaignSeed' | 'swarm' | 'runDurationMs'>, i: number): Config {
  const seed = runSeed(o.campaignSeed, i);
  const plain: Config = { ...base, seed, durationMs: o.runDurationMs };
  if (!o.swarm) return plain;
  // A stream of its own, so the drawn configuration and the run's role seeds are unrelated.
  const rng = new Rng(seed ^ 0x5a5a5a5a);
  for (let attempt = 0; attempt < 20; attempt++) {
    const capacity = 1 << rng.below(6); // 1..32
    const pcpBatch = pick(rng, [8, 32]);
    const poison = rng.below(4) === 0;
    const cfg: Config = {
      ...plain,
      cpus: 1 + rng.below(8),
      memoryBytes: pick(rng, [32, 64, 128, 256]) * 2 ** 20,
      workload: pick(rng, WORKLOADS),
      hinting: pick(rng, HINTING_MODES),
      capacity,
      reportOrder: 3 + rng.below(7), // 3..9
      reportDelayMs: pick(rng, [0, 10, 50, 100]),
      pcp: rng.below(2) === 0,
      pcpBatch,
      pcpHigh: pcpBatch * 6,
      poison,
      poisonByte: poison && rng.below(3) === 0 ? 0 : 0xaa,
      poisonPolicy: pick(rng, ['skip', 'fill'] as const),
      eventIdx: rng.below(2) === 0,
      holdMs: 100 + rng.below(200),
      checkIntervalMs: 100,
    };
    if (cfg.inject.includes('no-ack-wait')) cfg.hinting = 'aeration';
    else if (cfg.inject.length > 0 && !['reporting', 'aeration'].includes(cfg.hinting)) cfg.hinting = 'reporting';
    if (cfg.inject.includes('poison-unaware')) cfg.poison = true;
    // A device that keeps reported memory (--no-discard) in a quarter of the
    // clean reporter runs: drawn last, so the draws above stay as they were.
    if (cfg.inject.length === 0 && (cfg.hinting === 'reporting' || cfg.hinting === 'aeration')) cfg.discard = rng.below(4) !== 0;
    try {
      return validateConfig(cfg);
    } catch (e) {
      if (!(e instanceof UsageError)) throw e;
    }
  }
  return plain;
}

export function parseStressFlags(a: RawFlags, parseRunFlags: (a: RawFlags) => Config): { base: Config; opts: StressOptions } {
  // The run flags, with the run's own duration in place of the campaign's.
  const base = parseRunFlags({ ...a, duration: a['run-duration'] ?? '500ms' });
  const runDurationMs = durationFlag('run-duration', a['run-duration'] ?? '500ms', { min: 10, max: 600_000 });
  const durationMs = a.duration === undefined ? Infinity : durationFlag('duration', a.duration, { min: 1000, max: 24 * 3600 * 1000 });
  const runs = a.runs === undefined ? (durationMs === Infinity ? 20 : Infinity) : intFlag('runs', a.runs, { min: 1, max: 1_000_000 });
  const jobs = a.jobs === undefined ? Math.max(1, Math.min(2, availableParallelism())) : intFlag('jobs', a.jobs, { min: 1, max: 64 });
  let shardK = 0;
  let shardN = 1;
  if (a.shard !== undefined) {
    const m = /^(\d+)\/(\d+)$/.exec(String(a.shard).trim());
    if (!m || Number(m[2]) < 1 || Number(m[2]) > 100_000 || Number(m[1]) >= Number(m[2])) throw new UsageError(`--shard: '${a.shard}' is not accepted; accepted: K/N with 0 <= K < N <= 100000`);
    shardK = Number(m[1]);
    shardN = Number(m[2]);
  }
  // The campaign seed: --seed, or random (printed first so the campaign can be repeated).
  const campaignSeed = a.seed === undefined ? base.seed : intFlag('seed', a.seed, RANGES.seed);
  let traceDir: string | null = null;
  if (a['trace-dir'] !== undefined) {
    traceDir = String(a['trace-dir']);
    if (traceDir.trim() === '') throw new UsageError(`--trace-dir: needs a directory path`);
    if (existsSync(traceDir) && !statSync(traceDir).isDirectory()) throw new UsageError(`--trace-dir: '${traceDir}' exists and is not a directory`);
    if (!existsSync(path.dirname(path.resolve(traceDir)))) throw new UsageError(`--trace-dir: parent directory of '${traceDir}' does not exist`);
  }
  return { base, opts: { campaignSeed, runs, durationMs, runDurationMs, swarm: Boolean(a.swarm), jobs, shardK, shardN, traceDir } };
}

export interface RunOutcome {
  index: number;
  seed: number;
  config: Config;
  rerun: string;
  exitCode: number;
  violations: Violation[];
  errors: string[];
  checks: { oracle: string; runs: number; failures: number }[];
  wallMs: number;
  /** A failing scheduled run (--sched random|pct): its schedule string and the file the run wrote. */
  schedule?: string;
  scheduleFile?: string;
  /** --trace-dir: the trace file a failing run wrote. */
  traceFile?: string;
}

/** One finished run of a campaign, as the campaign page (src/cli/html/) charts it. */
export interface StressRunRecord {
  index: number;
  seed: number;
  /** ms from the campaign's start to the run's end, and the run's own wall time. */
  endMs: number;
  wallMs: number;
  exitCode: number;
  hinting: string;
  workload: string;
  cpus: number;
  /** A failing run: the first violation's oracle (or 'error') and the command that reruns it. */
  oracle?: string;
  rerun?: string;
}

/** Runs kept in StressSummary.runLog; a longer campaign counts the rest in runLogDropped. */
export const RUN_LOG_MAX = 10_000;

export interface StressSummary {
  campaignSeed: number;
  swarm: boolean;
  shard: string;
  runsPlanned: number | null;
  runsDone: number;
  failures: number;
  ok: boolean;
  elapsedMs: number;
  runsPerMinute: number;
  oracles: { oracle: string; runs: number; failures: number; exercisedInRuns: number }[];
  firstFailure: RunOutcome | null;
  /** Every finished run in the order they ended (the first RUN_LOG_MAX), for the campaign page's charts. */
  runLog?: StressRunRecord[];
  runLogDropped?: number;
}

/** Argument vector of `sim run` for this configuration: exactly the printed rerun command. */
export function rerunArgs(cfg: Config): string[] {
  return rerunCommand(cfg).split(' ').slice(1);
}

function cliPath(): string {
  return fileURLToPath(new URL('./main.js', import.meta.url));
}

/** One run in a child process; resolves with its outcome (never rejects). */
function runChild(index: number, cfg: Config, track: Set<ChildProcess>, traceDir: string | null = null): Promise<RunOutcome> {
  const t0 = performance.now();
  const rerun = rerunCommand(cfg);
  // --trace-dir: the child writes its trace only if it fails.
  const traceFile = traceDir === null ? null : path.join(traceDir, `run-${index}-seed-${cfg.seed}.trace.json`);
  // Bound: the workload, the settle phase and two wait bounds, plus start-up.
  const limitMs = cfg.durationMs + cfg.settleTimeoutMs + 2 * cfg.waitTimeoutMs + 30_000;
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [cliPath(), 'run', ...rerunArgs(cfg), '--json', ...(traceFile ? ['--trace', traceFile, '--trace-when', 'failure'] : [])], { stdio: ['ignore', 'pipe', 'pipe'] });
    track.add(child);
    let out = '';
    let err = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (err += d.length > 1e6 ? '' : d));
    const timer = setTimeout(() => child.kill('SIGKILL'), limitMs);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      track.delete(child);
      const base = { index, seed: cfg.seed, config: cfg, rerun, wallMs: performance.now() - t0, ...(traceFile !== null && existsSync(traceFile) ? { traceFile } : {}) };
      try {
        const j = JSON.parse(out);
        // The result's own exit code: a run that printed its result and was
        // then killed by the stop below (code null) still counts as it ended.
        const exitCode = typeof j.exitCode === 'number' ? j.exitCode : (code ?? 3);
        const file = /^schedule written to (.+)$/m.exec(err)?.[1];
        const sched = exitCode !== 0 && typeof j.sched?.schedule === 'string' ? { schedule: j.sched.schedule as string, ...(file ? { scheduleFile: file } : {}) } : {};
        resolve({ ...base, exitCode, violations: j.violations ?? [], errors: j.errors ?? [], checks: j.checks ?? [], ...sched });
      } catch {
        const why = signal === 'SIGKILL' ? `killed after ${limitMs} ms (hang)` : `exit ${code}${signal ? ` (${signal})` : ''}, no JSON result`;
        resolve({ ...base, exitCode: code === 0 || code === null ? 3 : code, violations: [], errors: [`${why}: ${err.trim().split('\n').slice(-3).join(' | ')}`], checks: [] });
      }
    });
  });
}

export async function runStress(base: Config, o: StressOptions, log: (line: string) => void): Promise<StressSummary> {
  const t0 = performance.now();
  const totals = new Map<string, { runs: number; failures: number; exercisedInRuns: number }>(ORACLES.map((n) => [n, { runs: 0, failures: 0, exercisedInRuns: 0 }]));
  const track = new Set<ChildProcess>();
  let next = o.shardK; // campaign index of the next run to start
  let done = 0;
  let firstFailure: RunOutcome | null = null;
  let failures = 0;
  const runLog: StressRunRecord[] = [];
  let runLogDropped = 0;
  if (o.traceDir) mkdirSync(o.traceDir, { recursive: true });
  const timeLeft = () => performance.now() - t0 < o.durationMs;
  const claim = (): number | null => {
    if (firstFailure !== null || next >= o.runs || !timeLeft()) return null;
    const i = next;
    next += o.shardN;
    return i;
  };
  const worker = async () => {
    for (let i = claim(); i !== null; i = claim()) {
      const cfg = runConfig(base, o, i);
      const r = await runChild(i, cfg, track, o.traceDir ?? null);
      if (firstFailure !== null && r.exitCode !== 0 && r.violations.length === 0) break; // killed by the stop below
      done++;
      for (const c of r.checks) {
        const t = totals.get(c.oracle) ?? { runs: 0, failures: 0, exercisedInRuns: 0 };
        t.runs += c.runs;
        t.failures += c.failures;
        if (c.runs > 0) t.exercisedInRuns++;
        totals.set(c.oracle, t);
      }
      if (runLog.length < RUN_LOG_MAX) {
        const failed = r.exitCode !== 0 ? { oracle: r.violations[0]?.oracle ?? 'error', rerun: r.rerun } : {};
        runLog.push({ index: i, seed: r.seed, endMs: Math.round(performance.now() - t0), wallMs: Math.round(r.wallMs), exitCode: r.exitCode, hinting: cfg.hinting, workload: cfg.workload, cpus: cfg.cpus, ...failed });
      } else runLogDropped++;
      const what = r.exitCode === 0 ? 'ok' : r.violations.length ? `FAIL ${r.violations[0].oracle}` : `ERROR exit ${r.exitCode}`;
      log(`run ${i} seed ${r.seed} ${what} (${(r.wallMs / 1000).toFixed(1)}s) cpus=${cfg.cpus} workload=${cfg.workload} hinting=${cfg.hinting} memory=${cfg.memoryBytes / 2 ** 20}M`);
      if (r.exitCode !== 0) {
        failures++;
        if (firstFailure === null || r.index < firstFailure.index) firstFailure = r;
        // Stop at the first failure: end the runs still going (our own children, by pid).
        for (const c of track) c.kill('SIGKILL');
      }
    }
  };
  await Promise.all(Array.from({ length: o.jobs }, worker));
  const elapsedMs = performance.now() - t0;
  const planned = o.runs === Infinity ? null : Math.max(0, Math.ceil((o.runs - o.shardK) / o.shardN));
  return {
    campaignSeed: o.campaignSeed,
    swarm: o.swarm,
    shard: `${o.shardK}/${o.shardN}`,
    runsPlanned: planned,
    runsDone: done,
    failures,
    ok: failures === 0,
    elapsedMs: Math.round(elapsedMs),
    runsPerMinute: Math.round((done / Math.max(elapsedMs, 1)) * 60_000 * 10) / 10,
    oracles: [...totals.entries()].map(([oracle, t]) => ({ oracle, ...t })),
    firstFailure,
    runLog,
    runLogDropped,
  };
}

export function stressText(s: StressSummary): string[] {
  const out: string[] = [];
  out.push(`stress: ${s.runsDone} runs${s.runsPlanned !== null ? ` of ${s.runsPlanned}` : ''} in ${(s.elapsedMs / 1000).toFixed(1)}s (${s.runsPerMinute} runs/min), ${s.failures} failed; campaign seed ${s.campaignSeed}, shard ${s.shard}${s.swarm ? ', swarm' : ''}`);
  const exercised = s.oracles.filter((x) => x.runs > 0);
  out.push(`oracles exercised: ${exercised.map((x) => `${x.oracle} (${x.runs} checks in ${x.exercisedInRuns} runs)`).join(', ') || 'none'}`);
  const never = s.oracles.filter((x) => x.runs === 0).map((x) => x.oracle);
  if (never.length) out.push(`oracles never exercised: ${never.join(', ')}`);
  const f = s.firstFailure;
  if (f) {
    out.push('');
    out.push(`FAILED: run ${f.index}, seed ${f.seed}, exit ${f.exitCode}`);
    for (const v of f.violations.slice(0, 4)) out.push(`  ${v.oracle}: ${v.message}`);
    for (const e of f.errors.slice(0, 4)) out.push(`  error: ${e}`);
    out.push(...configLines(f.config));
    out.push(`rerun: ${f.rerun}`);
    if (f.schedule) {
      out.push(`schedule: ${f.schedule}`);
      if (f.scheduleFile) out.push(`schedule file: ${f.scheduleFile}`);
      out.push(`replay: ${f.rerun} --replay ${f.scheduleFile ?? f.schedule}`);
    }
    if (f.traceFile) out.push(`trace: ${f.traceFile} (open it in https://ui.perfetto.dev or chrome://tracing)`);
  } else out.push(`OK: no failures (campaign seed ${s.campaignSeed})`);
  return out;
}

export async function runStressCommand(a: RawFlags, parseRunFlags: (a: RawFlags) => Config, after?: (s: StressSummary) => void): Promise<void> {
  let parsed;
  try {
    parsed = parseStressFlags(a, parseRunFlags);
  } catch (e) {
    if (e instanceof UsageError) {
      process.stderr.write(`sim: ${e.message}\n`);
      process.exit(2);
    }
    throw e;
  }
  const { base, opts } = parsed;
  const json = Boolean(a.json);
  const human = json ? process.stderr : process.stdout;
  human.write(`sim stress: campaign seed ${opts.campaignSeed}\n`);
  human.write(`stress: runs=${opts.runs === Infinity ? 'unbounded' : opts.runs} duration=${opts.durationMs === Infinity ? 'unbounded' : fmtDuration(opts.durationMs)} run-duration=${fmtDuration(opts.runDurationMs)} swarm=${opts.swarm ? 'on' : 'off'} jobs=${opts.jobs} shard=${opts.shardK}/${opts.shardN}${base.inject.length ? ` inject=${base.inject.join(',')}` : ''}\n`);
  if (!opts.swarm) human.write(configLines({ ...base, seed: opts.campaignSeed, durationMs: opts.runDurationMs }).slice(1).join('\n') + ' (seed: per run)\n');
  const s = await runStress(base, opts, (l) => human.write(l + '\n'));
  human.write(stressText(s).join('\n') + '\n');
  after?.(s); // --html (src/cli/commands.ts)
  if (json) process.stdout.write(JSON.stringify(s) + '\n');
  process.exitCode = s.firstFailure === null ? 0 : s.firstFailure.violations.length > 0 ? 1 : 3;
}


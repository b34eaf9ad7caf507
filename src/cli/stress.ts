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
import { FAULTS, formatDeviceFaults } from '../virtio/device-faults.js';
import { installInterrupt } from './signals.js';
import { simVersion } from './version.js';
import { settleTimeoutMs } from '../sim/modes/index.js';

type RawFlags = Record<string, unknown>;

export const STRESS_OPTIONS = {
  runs: { type: 'string', describe: 'runs in the campaign (1..1000000); default 20 unless --duration is given (then unbounded)' },
  duration: { type: 'string', describe: 'stress: wall-time bound of the campaign, ms/s/m/h (1s..24h); each run\'s workload time is --run-duration' },
  'run-duration': { type: 'string', default: '500ms', describe: 'stress: how long each run\'s workload runs (10ms..10m)' },
  swarm: { type: 'boolean', default: false, describe: 'stress: draw a random configuration per run (cpus, memory, workload, hinting, capacity, report order, delay, pcp, poison, device faults, a hostile guest, M:N CPU threads, ...) from its seed' },
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

/** A swarm hint run lasts at least this many --hint-interval periods (several hint runs, the id changing between them). */
export const SWARM_HINT_RUNS = 3;

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
    // Free page hint without the known upstream race (Firecracker's
    // documented one has its own campaign, docs/GUIDE.md): QEMU, or Firecracker with
    // one of the two mitigations. Drawn last too.
    if (cfg.hinting === 'hint') {
      const k = rng.below(3);
      if (k === 0) cfg.hintDevice = 'qemu';
      else if (k === 1) cfg.hintShrinkAckedOnly = true;
      else cfg.hintUffdWp = 'serialized';
    }
    // Device faults in a third and a hostile guest in a quarter of the clean
    // runs with the reporting driver (docs/DESIGN.md §17, §6): drawn after
    // everything above, so those draws stay as they were. irq-lost is never
    // drawn: Linux does not survive it, so such a run fails by design.
    if (cfg.inject.length === 0 && (cfg.hinting === 'reporting' || cfg.hinting === 'aeration' || cfg.hinting === 'naive')) {
      if (rng.below(3) === 0) {
        const kinds = (['report-error', 'ack-delay', 'irq-spurious', 'reset'] as const).filter((k) => FAULTS[k].modes.includes(cfg.hinting) && rng.below(2) === 0);
        cfg.deviceFaults = kinds.map((kind) => ({ kind, rate: pick(rng, [0.05, 0.1, 0.25]), maxMs: kind === 'ack-delay' ? pick(rng, [5, 20, 50]) : 0 }));
      }
      if (rng.below(4) === 0) cfg.hostile = pick(rng, [0.1, 0.5, 1]);
    }
    try {
      validateConfig(cfg);
    } catch (e) {
      if (!(e instanceof UsageError)) throw e;
      continue;
    }
    // Drawn only once the configuration above is valid, so a seed whose
    // first attempt was refused draws its next attempt as it always did.
    drawRingDimensions(rng, cfg);
    // The CPUs M:N (--cpu-threads, 1 to cpus - 1 threads) in a quarter of the
    // runs with 2 or more CPUs: drawn after everything else, so those draws
    // stay as they were for every seed.
    if (cfg.cpus >= 2 && cfg.sched === 'off' && cfg.cpuSlots === 0 && rng.below(4) === 0) cfg.cpuThreads = 1 + rng.below(cfg.cpus - 1);
    try {
      return validateConfig(cfg);
    } catch (e) {
      if (!(e instanceof UsageError)) throw e;
    }
  }
  return plain;
}

/**
 * Ring concurrency (docs/DESIGN.md §12), in clean runs of a mode with a
 * queue: a rotating descriptor policy in half, and reporting or aeration
 * with more than one chain in flight per report in half, so stale avail
 * and used entries differ from fresh ones. Free page hint: its interval
 * from 10 ms to 1 s, and the run at least SWARM_HINT_RUNS intervals long,
 * so the command id changes while the driver sends. Drawn after every
 * other draw, so those stay as they were for every seed.
 */
function drawRingDimensions(rng: Rng, cfg: Config): void {
  if (cfg.inject.length > 0 || cfg.hinting === 'off') return;
  cfg.descPolicy = rng.below(2) === 0 ? 'fifo' : 'lifo';
  if ((cfg.hinting === 'reporting' || cfg.hinting === 'aeration') && rng.below(2) === 0) cfg.reportInflight = pick(rng, [2, 4, 8]);
  if (cfg.hinting === 'hint') {
    cfg.hintIntervalMs = pick(rng, [10, 20, 50, 100, 200, 500, 1000]);
    cfg.durationMs = Math.max(cfg.durationMs, SWARM_HINT_RUNS * cfg.hintIntervalMs);
  }
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
  /** The run's workload was ended early by an interrupt forwarded to it. */
  interrupted: boolean;
  /** Per --inject: whether it acted in this run (src/check/inject.ts). */
  injections: { name: string; acted: boolean; reason?: string }[];
  /** A failing scheduled run (--sched random|pct): its schedule string and the file the run wrote. */
  schedule?: string;
  scheduleFile?: string;
  /** --trace-dir: the trace file a failing run wrote. */
  traceFile?: string;
}

/** One run of the campaign in the summary (and in a shard's JSON, for `sim stress merge`). */
export interface RunEntry {
  index: number;
  seed: number;
  exitCode: number;
  wallMs: number;
  /** Ended early by the interrupt. */
  interrupted?: boolean;
  /** Its injection never acted (exit 1 with nothing found): it tested nothing. */
  vacuous?: boolean;
  /** ms from the (shard's) campaign start to the run's end: the campaign page's time axis (`sim stress merge` shifts each shard's by its start). */
  endMs: number;
  /** What the run was (with --swarm each run draws its own). */
  hinting: string;
  workload: string;
  cpus: number;
  /** A failure's first violation's oracle (or 'error'), and its rerun command. */
  oracle?: string;
  rerun?: string;
}

/** What identifies a campaign: shards agree on all of it or are not one campaign (src/cli/stress-merge.ts). */
export interface CampaignId {
  seed: number;
  /** --runs (the whole campaign's), null when bounded only by --duration. */
  runs: number | null;
  swarm: boolean;
  runDurationMs: number;
  /** The run flags: the rerun command of the base configuration with the campaign seed. */
  config: string;
  /** package.json version of the sim that ran it. */
  version: string;
}

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
  /** The exit status of the campaign (0, 1, 3, or 130/143 interrupted with nothing failing). */
  exitCode: number;
  campaign: CampaignId;
  /** Wall-clock start and end (ISO 8601): a merge of shards spans the earliest start to the latest end. */
  startedAt: string;
  endedAt: string;
  /** Interrupted by a signal: no run was started after it; runs in flight ended early. */
  interrupted: boolean;
  signal?: string;
  /** Runs ended early by the interrupt (their checks are in `oracles`; not in runsDone). */
  runsInterrupted: number;
  /** Per --inject: in how many of the runs that reported it acted. */
  injections: { name: string; runs: number; actedInRuns: number; reason?: string }[];
  /** Oracles that never ran, injections that acted in only some runs. */
  warnings: string[];
  /** Every run that ended (completed, interrupted, vacuous or failed), by index. */
  runs: RunEntry[];
}

/** Argument vector of `sim run` for this configuration: exactly the printed rerun command. */
export function rerunArgs(cfg: Config): string[] {
  return rerunCommand(cfg).split(' ').slice(1);
}

function cliPath(): string {
  return fileURLToPath(new URL('./main.js', import.meta.url));
}

/** The bound on a run after an interrupt was forwarded to it: settle, stop, collect, start-up slack. */
const afterInterruptMs = (cfg: Config) => settleTimeoutMs(cfg) + cfg.waitTimeoutMs + 15_000;

/**
 * One run in a child process; resolves with its outcome (never rejects).
 * The child gets a session of its own (detached): a Ctrl-C on the terminal
 * reaches the campaign only, which forwards it once, instead of every
 * child at the same time as the forwarded one (two signals: an abort).
 */
function runChild(index: number, cfg: Config, track: Map<ChildProcess, Config>, interrupt?: AbortSignal, traceDir: string | null = null): Promise<RunOutcome> {
  const t0 = performance.now();
  const rerun = rerunCommand(cfg);
  // --trace-dir: the child writes its trace only if it fails.
  const traceFile = traceDir === null ? null : path.join(traceDir, `run-${index}-seed-${cfg.seed}.trace.json`);
  // Bound: the workload, the settle phase and two wait bounds, plus start-up.
  const limitMs = cfg.durationMs + settleTimeoutMs(cfg) + 2 * cfg.waitTimeoutMs + 30_000;
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [cliPath(), 'run', ...rerunArgs(cfg), '--json', ...(traceFile ? ['--trace', traceFile, '--trace-when', 'failure'] : [])], { stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    track.set(child, cfg);
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
        resolve({ ...base, exitCode, violations: j.violations ?? [], errors: j.errors ?? [], checks: j.checks ?? [], interrupted: j.interrupted === true, injections: j.injections ?? [], ...sched });
      } catch {
        if (interrupt?.aborted && signal === interrupt.reason) {
          // The forwarded signal came before the run had its handlers (node
          // still starting): it ended as interrupted, with nothing run.
          resolve({ ...base, exitCode: signal === 'SIGTERM' ? 143 : 130, violations: [], errors: [], checks: [], interrupted: true, injections: [] });
          return;
        }
        const why = signal === 'SIGKILL' ? `killed after ${Math.round(performance.now() - t0)} ms (hang)` : `exit ${code}${signal ? ` (${signal})` : ''}, no JSON result`;
        resolve({ ...base, exitCode: code === 0 || code === null ? 3 : code, violations: [], errors: [`${why}: ${err.trim().split('\n').slice(-3).join(' | ')}`], checks: [], interrupted: false, injections: [] });
      }
    });
  });
}

/** Exit 1 with nothing found because an injection never acted: the run tested nothing (not a failure found). */
export const isVacuous = (r: Pick<RunOutcome, 'exitCode' | 'violations' | 'errors' | 'injections'>): boolean => r.exitCode === 1 && r.violations.length === 0 && r.errors.length === 0 && r.injections.some((x) => !x.acted);
/** The run found something (a violation) or failed as a simulator: the campaign stops. */
export const isFailure = (r: RunOutcome): boolean => r.violations.length > 0 || r.errors.length > 0 || (r.exitCode !== 0 && !r.interrupted && !isVacuous(r));

export interface StressHooks {
  /** First signal: start no more runs, forward the signal (its `reason`) to the runs in flight, summarise what ran. */
  interrupt?: AbortSignal;
}

/** Identity of the campaign `o` runs over `base` (shards of one campaign share it). */
export function campaignId(base: Config, o: StressOptions): CampaignId {
  return { seed: o.campaignSeed, runs: o.runs === Infinity ? null : o.runs, swarm: o.swarm, runDurationMs: o.runDurationMs, config: rerunCommand({ ...base, seed: o.campaignSeed, durationMs: o.runDurationMs }), version: simVersion() };
}

/**
 * Forcibly end every run still going (a second signal, the stop at a
 * failure): SIGKILL, by pid, our own children only. Resolves once each is
 * reaped (its 'close'), so none outlives the campaign, not even as a zombie.
 */
export function killRuns(track: Map<ChildProcess, Config>): Promise<void> {
  const gone = [...track.keys()].map((c) => (c.exitCode !== null || c.signalCode !== null ? Promise.resolve() : new Promise<void>((res) => c.once('close', () => res()))));
  for (const c of track.keys()) c.kill('SIGKILL');
  return Promise.all(gone).then(() => undefined);
}

export async function runStress(base: Config, o: StressOptions, log: (line: string) => void, hooks: StressHooks = {}, track: Map<ChildProcess, Config> = new Map()): Promise<StressSummary> {
  const t0 = performance.now();
  const startedAt = new Date().toISOString();
  const totals = new Map<string, { runs: number; failures: number; exercisedInRuns: number }>(ORACLES.map((n) => [n, { runs: 0, failures: 0, exercisedInRuns: 0 }]));
  const acted = new Map<string, { runs: number; actedInRuns: number; reason?: string }>(base.inject.map((n) => [n, { runs: 0, actedInRuns: 0 }]));
  const entries: RunEntry[] = [];
  let next = o.shardK; // campaign index of the next run to start
  let done = 0;
  let interruptedRuns = 0;
  let firstFailure: RunOutcome | null = null;
  let failures = 0;
  const intr = hooks.interrupt;
  if (o.traceDir) mkdirSync(o.traceDir, { recursive: true });
  const timeLeft = () => performance.now() - t0 < o.durationMs;
  const claim = (): number | null => {
    if (firstFailure !== null || next >= o.runs || !timeLeft() || intr?.aborted) return null;
    const i = next;
    next += o.shardN;
    return i;
  };
  // The interrupt, forwarded once to every run in flight (each ends its
  // workload, settles and reports), each then bounded by its settle and stop.
  const forward = () => {
    const sig = (typeof intr?.reason === 'string' ? intr.reason : 'SIGINT') as NodeJS.Signals;
    for (const [c, cfg] of track) {
      c.kill(sig);
      setTimeout(() => c.exitCode === null && c.signalCode === null && c.kill('SIGKILL'), afterInterruptMs(cfg)).unref();
    }
  };
  intr?.addEventListener('abort', forward, { once: true });
  const worker = async () => {
    for (let i = claim(); i !== null; i = claim()) {
      const cfg = runConfig(base, o, i);
      const r = await runChild(i, cfg, track, intr, o.traceDir ?? null);
      if (firstFailure !== null && r.exitCode !== 0 && r.violations.length === 0) break; // killed by the stop below
      const vacuous = isVacuous(r);
      const failed = isFailure(r);
      if (r.interrupted) interruptedRuns++;
      else done++;
      for (const c of r.checks) {
        const t = totals.get(c.oracle) ?? { runs: 0, failures: 0, exercisedInRuns: 0 };
        t.runs += c.runs;
        t.failures += c.failures;
        if (c.runs > 0) t.exercisedInRuns++;
        totals.set(c.oracle, t);
      }
      for (const x of r.injections) {
        const t = acted.get(x.name) ?? { runs: 0, actedInRuns: 0 };
        t.runs++;
        if (x.acted) t.actedInRuns++;
        else t.reason ??= x.reason;
        acted.set(x.name, t);
      }
      const what = failed ? (r.violations.length ? `FAIL ${r.violations[0].oracle}` : `ERROR exit ${r.exitCode}`) : r.interrupted ? 'INTERRUPTED' : vacuous ? `VACUOUS (${r.injections.filter((x) => !x.acted).map((x) => x.name).join(', ')} never acted)` : 'ok';
      log(`run ${i} seed ${r.seed} ${what} (${(r.wallMs / 1000).toFixed(1)}s) cpus=${cfg.cpus} workload=${cfg.workload} hinting=${cfg.hinting} memory=${cfg.memoryBytes / 2 ** 20}M${cfg.deviceFaults?.length ? ` faults=${formatDeviceFaults(cfg.deviceFaults)}` : ''}${cfg.hostile ? ` hostile=${cfg.hostile * 100}%` : ''}${cfg.descPolicy !== 'lifo' ? ` desc=${cfg.descPolicy}` : ''}${cfg.reportInflight > 1 ? ` inflight=${cfg.reportInflight}` : ''}${cfg.hinting === 'hint' ? ` hint-interval=${fmtDuration(cfg.hintIntervalMs)}` : ''}${cfg.cpuThreads > 0 ? ` cpu-threads=${cfg.cpuThreads}` : ''}`);
      entries.push({
        index: i,
        seed: r.seed,
        exitCode: r.exitCode,
        wallMs: Math.round(r.wallMs),
        endMs: Math.round(performance.now() - t0),
        hinting: cfg.hinting,
        workload: cfg.workload,
        cpus: cfg.cpus,
        ...(r.interrupted ? { interrupted: true } : {}),
        ...(vacuous ? { vacuous: true } : {}),
        ...(failed ? { oracle: r.violations[0]?.oracle ?? 'error', rerun: r.rerun } : {}),
      });
      if (failed) {
        failures++;
        if (firstFailure === null || r.index < firstFailure.index) firstFailure = r;
        // Stop at the first failure: end the runs still going (our own children, by pid).
        void killRuns(track);
      }
    }
  };
  await Promise.all(Array.from({ length: o.jobs }, worker));
  intr?.removeEventListener('abort', forward);
  const elapsedMs = performance.now() - t0;
  const planned = o.runs === Infinity ? null : Math.max(0, Math.ceil((o.runs - o.shardK) / o.shardN));
  const signal = intr?.aborted ? String(intr.reason) : undefined;
  const s: StressSummary = {
    campaignSeed: o.campaignSeed,
    swarm: o.swarm,
    shard: `${o.shardK}/${o.shardN}`,
    runsPlanned: planned,
    runsDone: done,
    failures,
    ok: false,
    elapsedMs: Math.round(elapsedMs),
    runsPerMinute: Math.round((done / Math.max(elapsedMs, 1)) * 60_000 * 10) / 10,
    oracles: [...totals.entries()].map(([oracle, t]) => ({ oracle, ...t })),
    firstFailure,
    exitCode: 0,
    campaign: campaignId(base, o),
    startedAt,
    endedAt: new Date().toISOString(),
    interrupted: signal !== undefined,
    ...(signal !== undefined ? { signal } : {}),
    runsInterrupted: interruptedRuns,
    injections: [...acted.entries()].map(([name, t]) => ({ name, ...t })),
    warnings: [],
    runs: entries.sort((a, b) => a.index - b.index),
  };
  return finishSummary(s);
}

/** The campaign's warnings, exit status and ok, from its counts (a shard's or a merge's). */
export function finishSummary(s: StressSummary): StressSummary {
  const warnings: string[] = [];
  const ran = s.runsDone + s.runsInterrupted;
  const never = s.oracles.filter((x) => x.runs === 0).map((x) => x.oracle);
  if (ran > 0 && never.length) warnings.push(`oracles that ran 0 times in the whole campaign: ${never.join(', ')} (nothing was checked by them)`);
  for (const x of s.injections) if (x.actedInRuns > 0 && x.actedInRuns < x.runs) warnings.push(`inject ${x.name} acted in ${x.actedInRuns} of ${x.runs} runs; the other ${x.runs - x.actedInRuns} tested nothing`);
  const vacuous = s.injections.filter((x) => x.runs > 0 && x.actedInRuns === 0);
  const f = s.firstFailure;
  // Exit: a failure found, then an injection that never acted in any run
  // (a vacuous campaign), then the interrupt, then 0.
  s.exitCode = f ? (f.violations.length > 0 ? 1 : 3) : vacuous.length > 0 && !s.interrupted ? 1 : s.interrupted ? (s.signal === 'SIGTERM' ? 143 : 130) : 0;
  s.ok = s.exitCode === 0;
  s.warnings = warnings;
  return s;
}

export function stressText(s: StressSummary): string[] {
  const out: string[] = [];
  out.push(`stress: ${s.runsDone} runs${s.runsPlanned !== null ? ` of ${s.runsPlanned}` : ''}${s.runsInterrupted ? ` (+${s.runsInterrupted} ended early by the interrupt)` : ''} in ${(s.elapsedMs / 1000).toFixed(1)}s (${s.runsPerMinute} runs/min), ${s.failures} failed; campaign seed ${s.campaignSeed}, shard ${s.shard}${s.swarm ? ', swarm' : ''}`);
  const exercised = s.oracles.filter((x) => x.runs > 0);
  out.push(`oracles exercised: ${exercised.map((x) => `${x.oracle} (${x.runs} checks in ${x.exercisedInRuns} runs)`).join(', ') || 'none'}`);
  for (const x of s.injections) if (x.actedInRuns > 0) out.push(`inject ${x.name}: acted in ${x.actedInRuns} of ${x.runs} runs`);
  for (const w of s.warnings) out.push(`warning: ${w}`);
  for (const x of s.injections) if (x.runs > 0 && x.actedInRuns === 0) out.push(`VACUOUS: inject ${x.name} never acted in any of ${x.runs} runs: the campaign tested nothing; e.g. ${x.reason ?? ''}`);
  const others = s.runs.filter((r) => r.rerun !== undefined && r.index !== s.firstFailure?.index);
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
  }
  for (const r of others) out.push(`also FAILED: run ${r.index}, seed ${r.seed}, exit ${r.exitCode} (${r.oracle}); rerun: ${r.rerun}`);
  if (s.interrupted) {
    const notStarted = s.runsPlanned !== null ? Math.max(0, s.runsPlanned - s.runsDone - s.runsInterrupted) : null;
    out.push(`INTERRUPTED by ${s.signal}: ${s.runsDone} runs completed, ${s.runsInterrupted} ended early${notStarted !== null ? `, ${notStarted} not run` : ''}; exit ${s.exitCode} (campaign seed ${s.campaignSeed})`);
  } else if (!f && s.exitCode === 0) out.push(`OK: no failures (campaign seed ${s.campaignSeed})`);
  else if (!f) out.push(`FAILED with exit ${s.exitCode}: no run found anything, but the campaign tested nothing (campaign seed ${s.campaignSeed})`);
  return out;
}

function usageExit(e: unknown): never {
  if (e instanceof UsageError) {
    process.stderr.write(`sim: ${e.message}\n`);
    process.exit(2);
  }
  throw e;
}

export async function runStressCommand(a: RawFlags, parseRunFlags: (a: RawFlags) => Config, after?: (s: StressSummary) => void): Promise<void> {
  let parsed;
  try {
    parsed = parseStressFlags(a, parseRunFlags);
  } catch (e) {
    usageExit(e);
  }
  const { base, opts } = parsed;
  const json = Boolean(a.json);
  const human = json ? process.stderr : process.stdout;
  human.write(`sim stress: campaign seed ${opts.campaignSeed}\n`);
  human.write(`stress: runs=${opts.runs === Infinity ? 'unbounded' : opts.runs} duration=${opts.durationMs === Infinity ? 'unbounded' : fmtDuration(opts.durationMs)} run-duration=${fmtDuration(opts.runDurationMs)} swarm=${opts.swarm ? 'on' : 'off'} jobs=${opts.jobs} shard=${opts.shardK}/${opts.shardN}${base.inject.length ? ` inject=${base.inject.join(',')}` : ''}\n`);
  if (!opts.swarm) human.write(configLines({ ...base, seed: opts.campaignSeed, durationMs: opts.runDurationMs }).slice(1).join('\n') + ' (seed: per run)\n');
  // First signal: no new runs, the runs in flight end early (the signal is
  // forwarded), the summary so far; a second: every run killed, exit 3.
  const track = new Map<ChildProcess, Config>();
  const intr = installInterrupt({
    onAbort: (sig) => {
      process.stderr.write(`sim: ${sig} again: stress aborted, runs in flight killed, no summary (exit 3); campaign seed ${opts.campaignSeed}\n`);
      return killRuns(track);
    },
  });
  const s = await runStress(base, opts, (l) => human.write(l + '\n'), { interrupt: intr.signal }, track);
  human.write(stressText(s).join('\n') + '\n');
  after?.(s); // --html (src/cli/commands.ts)
  if (json) process.stdout.write(JSON.stringify(s) + '\n');
  process.exitCode = s.exitCode;
  intr.dispose();
}

// The scheduled run, seen from main: set the region up before any role
// starts, hand out the first token, watch for progress, halt, and read the
// outcome (trace hash, counters, the schedule record, a deadlock named).

import { UsageError, type Violation } from '../base/errors.js';
import { CACHE_LINE, LOCK_LINE_WORDS, LOCK_OWNER, lockName, threadIds, waitWordName, type Views } from '../shm/layout.js';
import { subSeed, splitmix32 } from '../base/rng.js';
import {
  CHECKPOINT_STEPS,
  C_ABORT_STEP,
  C_BLOCKS,
  C_CHECKS,
  C_CPUS,
  C_CP_EVERY,
  C_DEPTH,
  C_DONE,
  C_EXP_CP_N,
  C_FIRST,
  C_HALT,
  C_HALT_REASON,
  C_HALT_THREAD,
  C_HALT_STEP,
  C_HASH1,
  C_HASH2,
  C_HINTING,
  C_INTERRUPT,
  C_REPLAY,
  C_REPLAY_STEPS,
  C_REPORTER,
  C_RNG,
  C_SETTLED,
  C_SKIPS,
  C_STEP,
  C_STRATEGY,
  C_SWITCHES,
  C_THREADS,
  C_TIMEOUTS,
  C_TOKEN,
  F_BUDGET,
  F_CHECK_TICKS,
  F_CLOCK,
  F_NEXT_CHECK,
  F_SETTLE_TICKS,
  F_WAIT_TICKS,
  HALT_DEADLOCK,
  HALT_DIVERGED,
  HALT_HARNESS,
  HALT_NAMES,
  HALT_NOT_STOPPED,
  REPLAY_FILE,
  REPLAY_STRING,
  SETTLED_IDLE,
  SETTLED_TIMEOUT,
  ST_EXITED,
  ST_RUNNABLE,
  TICKS_PER_MS,
  T_DOOMED,
  T_GO,
  T_STATUS,
  T_WAIT_ABS,
  T_WORDS,
  hex8,
  rngNext,
  schedViews,
} from './region.js';
import { haltSchedViews } from './scheduler.js';
import { STRATEGIES } from './strategies/index.js';
import { STRING_CHECKPOINTS, STRING_PREFIX, ScheduleParseError, parseSchedule, scheduleKey, scheduleString, type ScheduleRecord } from './schedule.js';

/** What the scheduler needs of a run's configuration (a subset of the simulation's Config). */
export interface SchedParams {
  seed: number;
  cpus: number;
  /** A reporter and a device take part (any hinting mode but off): the run settles after the workload. */
  hinting: boolean;
  strategy: 'random' | 'pct';
  pctDepth: number;
  durationMs: number;
  settleTimeoutMs: number;
  checkIntervalMs: number;
  waitTimeoutMs: number;
  /** The command line that reruns the configuration: its hash is the schedule's configuration key. */
  rerun: string;
}

/** The roles that take part in a scheduled run, by thread id. */
export function participants(cfg: Pick<SchedParams, 'cpus' | 'hinting'>): number[] {
  const ids = threadIds(cfg.cpus);
  const out: number[] = [];
  for (let i = 0; i < cfg.cpus; i++) out.push(i);
  if (cfg.hinting) out.push(ids.reporter, ids.device);
  return out;
}

/** Set up the sched region before any role starts. */
export function initSched(views: Views, cfg: SchedParams, replay: ScheduleRecord | null): void {
  const s = schedViews(views);
  const { ctl, f, th, dl } = s;
  ctl.fill(0);
  f.fill(0);
  th.fill(0);
  dl.fill(Infinity);
  const ids = threadIds(cfg.cpus);
  const parts = participants(cfg);
  const strategy = STRATEGIES[cfg.strategy];
  ctl[C_STRATEGY] = strategy.id;
  ctl[C_TOKEN] = -1;
  ctl[C_DEPTH] = cfg.pctDepth;
  ctl[C_CPUS] = cfg.cpus;
  ctl[C_REPORTER] = cfg.hinting ? ids.reporter : -1;
  ctl[C_HINTING] = cfg.hinting ? 1 : 0;
  ctl[C_THREADS] = s.threads;
  ctl[C_HASH1] = 0x5ced0001;
  ctl[C_HASH2] = 0x5ced0002;
  // The scheduler's stream: its own sub-seed of the master seed.
  const seed = subSeed(cfg.seed, 0x5ced);
  ctl[C_RNG] = splitmix32(seed) | 0;
  ctl[C_RNG + 1] = splitmix32(ctl[C_RNG] ^ 0x6a09e667) | 0;
  ctl[C_RNG + 2] = splitmix32(ctl[C_RNG + 1] ^ 0xbb67ae85) | 0;
  ctl[C_RNG + 3] = 1;
  for (let i = 0; i < 12; i++) rngNext(ctl);
  f[F_BUDGET] = Math.max(1, Math.round(cfg.durationMs * TICKS_PER_MS));
  f[F_SETTLE_TICKS] = cfg.settleTimeoutMs * TICKS_PER_MS;
  f[F_CHECK_TICKS] = cfg.checkIntervalMs * TICKS_PER_MS;
  f[F_NEXT_CHECK] = cfg.checkIntervalMs * TICKS_PER_MS;
  f[F_WAIT_TICKS] = cfg.waitTimeoutMs * TICKS_PER_MS;
  for (const t of parts) th[t * T_WORDS + T_STATUS] = ST_RUNNABLE;
  // The strategy's set-up (priorities, change points) and the first decision.
  let first = strategy.init(s, parts, { pctDepth: cfg.pctDepth, budgetTicks: f[F_BUDGET] });
  if (replay) {
    ctl[C_REPLAY_STEPS] = replay.steps;
    if (replay.decisions && replay.digests) {
      ctl[C_REPLAY] = REPLAY_FILE;
      const d = Buffer.from(replay.decisions, 'base64');
      const g = Buffer.from(replay.digests, 'base64');
      s.decisions.set(d.subarray(0, s.logSteps));
      s.digests.set(g.subarray(0, s.logSteps));
      first = replay.first;
    } else {
      ctl[C_REPLAY] = REPLAY_STRING;
      ctl[C_CP_EVERY] = replay.checkpointEvery;
      ctl[C_EXP_CP_N] = Math.min(replay.checkpoints.length, s.expCp.length);
      replay.checkpoints.slice(0, s.expCp.length).forEach((c, i) => (s.expCp[i] = c));
    }
  }
  ctl[C_FIRST] = first;
}

/** Hand the first token (main, after RUNNING is published). */
export function startSched(views: Views): void {
  const s = schedViews(views);
  const first = s.ctl[C_FIRST];
  // PUBLISH + WAKE the first thread (see Scheduler.handoff).
  Atomics.store(s.ctl, C_TOKEN, first);
  Atomics.add(s.th, first * T_WORDS + T_GO, 1);
  Atomics.notify(s.th, first * T_WORDS + T_GO, 1);
}

/** Main gives up on the scheduled run (no progress, a role never started): everyone runs free to its exit. */
export function haltSched(views: Views, reason = HALT_HARNESS): void {
  const s = schedViews(views);
  haltSchedViews(s, reason, s.ctl[C_STEP], -1);
}

/**
 * Main: end RUNNING at the scheduler's next step (an interrupt). The token
 * holder sees the word in its housekeeping and switches the phase itself,
 * so the run settles and stops under the scheduler like any other; the
 * trace from there on is not the seed's (an interrupted run is not replayable).
 */
export function interruptSched(views: Views): void {
  Atomics.store(schedViews(views).ctl, C_INTERRUPT, 1);
}

export interface SchedOutcome {
  strategy: 'random' | 'pct';
  pctDepth: number;
  steps: number;
  logicalMs: number;
  traceHash: string;
  switches: number;
  blocks: number;
  timeouts: number;
  clockJumps: number;
  checks: number;
  abortStep: number;
  settled: 'idle' | 'timeout' | null;
  halt: { reason: string; step: number; thread: number } | null;
  /** Liveness violations the scheduler found (deadlock, roles that never stopped). */
  violations: Violation[];
  /** Simulator failures (exit 3): a replay that diverged. */
  errors: string[];
  record: ScheduleRecord;
  schedule: string;
}

function threadName(cfg: Pick<SchedParams, 'cpus'>, t: number): string {
  const ids = threadIds(cfg.cpus);
  return t < cfg.cpus ? `cpu[${t}]` : t === ids.reporter ? 'reporter' : t === ids.device ? 'device' : t === ids.main ? 'main' : `thread ${t}`;
}

/** What a blocked thread waits on, in words. */
function describeWait(views: Views, cfg: Pick<SchedParams, 'cpus'>, abs: number): string {
  const l = views.layout;
  const byte = abs * 4;
  if (byte >= l.locksRegion.offset && byte < l.locksRegion.offset + l.locksRegion.bytes) {
    const lock = Math.floor((byte - l.locksRegion.offset) / CACHE_LINE);
    const owner = views.locks[lock * LOCK_LINE_WORDS + LOCK_OWNER] - 1;
    return `lock ${lockName(lock)} (held by ${owner >= 0 ? threadName(cfg, owner) : 'nobody'})`;
  }
  // A strict wait (no semantic timeout) only a wake-up ends: name the event, and say none came.
  const name = waitWordName(l, abs);
  return name !== null ? `${name}, with no wake-up` : `word at byte ${byte}`;
}

/** After every role stopped: read the scheduler's results and build the schedule record. */
export function schedOutcome(views: Views, cfg: SchedParams, replay: ScheduleRecord | null): SchedOutcome {
  const s = schedViews(views);
  const { ctl, f, th } = s;
  const steps = ctl[C_STEP];
  const traceHash = hex8(ctl[C_HASH1]) + hex8(ctl[C_HASH2]);
  const logged = Math.min(steps, s.logSteps);
  // Sparse checkpoints for the string: at most STRING_CHECKPOINTS, on a power-of-2 multiple of CHECKPOINT_STEPS.
  let every = CHECKPOINT_STEPS;
  while (Math.floor(steps / every) > STRING_CHECKPOINTS) every *= 2;
  const checkpoints: number[] = [];
  for (let k = every; k <= steps && k / CHECKPOINT_STEPS - 1 < s.cps.length; k += every) checkpoints.push(s.cps[k / CHECKPOINT_STEPS - 1] & 0xffff);
  const record: ScheduleRecord = {
    format: 'balloon-sim-schedule',
    version: 1,
    strategy: cfg.strategy,
    pctDepth: cfg.pctDepth,
    seed: cfg.seed,
    configKey: scheduleKey(cfg.rerun),
    rerun: cfg.rerun,
    steps,
    traceHash,
    first: ctl[C_FIRST],
    checkpointEvery: every,
    checkpoints,
  };
  const haltReason = ctl[C_HALT_REASON];
  const halt = Atomics.load(ctl, C_HALT) !== 0 ? { reason: HALT_NAMES[haltReason] ?? String(haltReason), step: ctl[C_HALT_STEP], thread: ctl[C_HALT_THREAD] } : null;
  const violations: Violation[] = [];
  const errors: string[] = [];
  const schedule = scheduleString(record);
  if (halt && haltReason === HALT_DEADLOCK) {
    const waits: string[] = [];
    for (let t = 0; t < s.threads; t++) if (th[t * T_WORDS + T_DOOMED] !== 0) waits.push(`${threadName(cfg, t)} waits on ${describeWait(views, cfg, th[t * T_WORDS + T_WAIT_ABS])}`);
    violations.push({ oracle: 'liveness', message: `deadlock at step ${halt.step} (logical ${(f[F_CLOCK] / TICKS_PER_MS).toFixed(1)} ms): no thread is runnable and none waits with a deadline: ${waits.join('; ')}; seed ${cfg.seed}, schedule ${schedule}` });
  } else if (halt && haltReason === HALT_NOT_STOPPED) {
    const left: string[] = [];
    for (const t of participants(cfg)) if (th[t * T_WORDS + T_STATUS] !== ST_EXITED) left.push(threadName(cfg, t));
    violations.push({ oracle: 'liveness', message: `roles did not stop within --wait-timeout (${cfg.waitTimeoutMs} logical ms) after the run ended: ${left.join(', ')}; seed ${cfg.seed}, schedule ${schedule}` });
  } else if (halt && haltReason === HALT_DIVERGED) {
    errors.push(`schedule diverged at step ${halt.step}: the run did not follow the replayed schedule (${replay ? (replay.decisions ? 'file' : 'string') : '?'}, ${replay?.steps ?? '?'} steps recorded)`);
  }
  if (replay && errors.length === 0 && !(halt && haltReason === HALT_HARNESS)) {
    // The run ended: it must have ended where the recording did, with the same trace.
    if (steps !== replay.steps) errors.push(`schedule diverged at step ${Math.min(steps, replay.steps) + 1}: the replay took ${steps} steps, the schedule ${replay.steps}`);
    else if (traceHash !== replay.traceHash) errors.push(`schedule diverged at step ${steps}: trace hash ${traceHash} != recorded ${replay.traceHash}`);
  }
  if (steps > 0) {
    record.decisions = Buffer.from(s.decisions.subarray(0, logged)).toString('base64');
    record.digests = Buffer.from(s.digests.subarray(0, logged)).toString('base64');
    if (steps > s.logSteps) record.truncated = true;
  }
  const settledCode = ctl[C_SETTLED];
  return {
    strategy: record.strategy,
    pctDepth: cfg.pctDepth,
    steps,
    logicalMs: f[F_CLOCK] / TICKS_PER_MS,
    traceHash,
    switches: ctl[C_SWITCHES],
    blocks: ctl[C_BLOCKS],
    timeouts: ctl[C_TIMEOUTS],
    clockJumps: ctl[C_SKIPS],
    checks: ctl[C_CHECKS],
    abortStep: ctl[C_ABORT_STEP],
    settled: settledCode === SETTLED_IDLE ? 'idle' : settledCode === SETTLED_TIMEOUT ? 'timeout' : null,
    halt,
    violations,
    errors,
    record,
    schedule,
  };
}

/**
 * Main thread, scheduled mode: the roles drive themselves (phases and checks
 * happen inside the scheduler at logical times), so main only watches for
 * progress until every role returned. A scheduled run that takes no step
 * for --wait-timeout + 5 s of wall time has a role stuck outside any
 * scheduling point: main halts the scheduler and returns the error (exit 3).
 */
export async function driveScheduled(views: Views, cfg: Pick<SchedParams, 'seed' | 'waitTimeoutMs'>, allReturned: () => boolean, onTick: () => void): Promise<string | null> {
  const s = schedViews(views);
  let last = -1;
  let lastChange = performance.now();
  const bound = cfg.waitTimeoutMs + 5000;
  for (;;) {
    if (allReturned()) return null;
    const st = Atomics.load(s.ctl, C_STEP);
    const now = performance.now();
    if (st !== last) {
      last = st;
      lastChange = now;
    } else if (now - lastChange > bound && Atomics.load(s.ctl, C_HALT) === 0 && Atomics.load(s.ctl, C_DONE) === 0) {
      haltSched(views, HALT_HARNESS);
      return `scheduled run made no progress for ${bound} ms at step ${st} (token held by thread ${Atomics.load(s.ctl, C_TOKEN)}): a role is stuck outside any scheduling point; seed ${cfg.seed}`;
    }
    onTick();
    await new Promise<void>((r) => setTimeout(r, 10));
  }
}

/** --replay FILE|STRING -> the schedule record, checked against this configuration. Throws UsageError (exit 2). */
export function loadReplay(arg: string, cfg: Pick<SchedParams, 'rerun'> & { strategy: 'off' | 'random' | 'pct' }, readFile: (p: string) => string): ScheduleRecord {
  let rec: ScheduleRecord;
  try {
    rec = parseSchedule(arg.trim().startsWith(STRING_PREFIX + '.') ? arg : readFile(arg));
  } catch (e) {
    const why = e instanceof ScheduleParseError ? e.message : e instanceof Error ? e.message : String(e);
    throw new UsageError(`--replay: '${arg.length > 60 ? arg.slice(0, 57) + '...' : arg}' is not accepted (${why}); accepted: a schedule file or a bsched1.… string printed by a failing --sched run`);
  }
  if (cfg.strategy === 'off') throw new UsageError(`--replay: needs --sched ${rec.strategy} (and the configuration the schedule was recorded with${rec.rerun ? `: ${rec.rerun}` : ''})`);
  const key = scheduleKey(cfg.rerun);
  if (rec.configKey !== key) throw new UsageError(`--replay: the schedule was recorded with another configuration (key ${rec.configKey}, this run ${key})${rec.rerun ? `; recorded with: ${rec.rerun}` : ''}`);
  return rec;
}

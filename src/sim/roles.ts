// What each thread runs, given the shared buffer and the configuration.
// workers/role.ts is the thin thread entry point around runRole().

import { Zone } from '../mm/buddy.js';
import { type Config, cpuThreadsInForce, hostedCpus, layoutParams } from './config.js';
import { CM_HOST_IDLE_SLEEPS, CM_HOST_SWITCHES, type HostedCpu, hostCpus, hosted } from './cpu-host.js';
import { ownTid } from './cputime.js';
import { subSeed } from '../base/rng.js';
import { LockStat } from '../locking/lockstat.js';
import { LivenessError, Sync, setScheduler, setWakeChecks, waitWhileEquals, publishRunState } from '../locking/sync.js';
import { SchedHalted, Scheduler } from '../sched/scheduler.js';
import { Cpu } from './workload.js';
import { injected } from '../check/inject.js';
import { checkConservation, checkFreeLists } from '../check/structure.js';
import { type RoleContext } from './modes/mode.js';
import { modeOf } from './modes/index.js';
import { HDR_READY, HDR_RUN_STATE, HDR_STATE_GEN, METRIC_OS_TID, METRIC_WAKE_CHECKS, RUN_ABORT, RUN_INIT, RUN_RUNNING, RUN_SETTLING, type Views, metricBase, openShared, threadIds } from '../shm/layout.js';
import { ORACLES, OracleViolation, type Violation } from '../base/errors.js';
import { TK_VIOLATION, TraceLockObserver, TraceWriter, setTracer } from '../locking/trace.js';
import { hostCostModel, setHostCosts } from '../mm/host-costs.js';

export type RoleName = 'cpu' | 'reporter' | 'device';

export interface RoleTask {
  sab: SharedArrayBuffer;
  config: Config;
  role: RoleName;
  index: number;
}

export interface RoleResult {
  role: RoleName;
  index: number;
  violations: Violation[];
  /** Set when the role itself failed (a bug or a harness problem): exit 3. */
  error?: string;
  /** Things the role wants the user to know (e.g. why reporting stayed off). */
  notes?: string[];
}

/** A role's thread id (its metric slot): a CPU thread's is its first CPU's (src/sim/cpu-host.ts: thread t runs CPUs t, t + N, ...). */
export function roleThreadId(task: Pick<RoleTask, 'role' | 'index' | 'config'>): number {
  const ids = threadIds(task.config.cpus);
  return task.role === 'cpu' ? task.index : task.role === 'reporter' ? ids.reporter : ids.device;
}

/** What one simulated CPU (or the reporter, or the device) syncs through: its lock owner id, lock statistics, trace ring and zone handle. */
interface Parts {
  sync: Sync;
  lockStat: LockStat | null;
  trace: TraceWriter | null;
  zone: Zone;
}

/** Build a thread id's parts over the shared views (a CPU thread builds one set per CPU it runs). */
function buildParts(views: Views, config: Config, thread: number): Parts {
  const sync = new Sync(views, thread, { spin: config.spin, waitTimeoutMs: config.waitTimeoutMs, selfTestNoNotifyUnlock: process.env.BALLOON_SIM_SELFTEST === 'no-notify-unlock' });
  const lockStat = config.lockstat ? new LockStat(views, thread) : null;
  sync.observer = lockStat;
  let trace: TraceWriter | null = null;
  if (config.traceEvents > 0) {
    // --trace: this thread id's ring; lock events through the lock observer (after lock statistics, when on).
    trace = new TraceWriter(views, thread);
    sync.observer = new TraceLockObserver(trace, views.layout.locks, lockStat);
  }
  const zone = new Zone(views, sync, { pcp: config.pcp, pcpBatch: config.pcpBatch, pcpHigh: config.pcpHigh });
  zone.keepReportedOnMerge = injected(config, 'keep-reported-on-merge');
  return { sync, lockStat, trace, zone };
}

/** Stop everyone at once: a violation or failure was found. */
export function abortRun(views: Views): void {
  publishRunState(views, RUN_ABORT);
}

/** Turn a thrown error into the role's result, stopping the run. */
export function failureResult(views: Views | null, role: RoleName, index: number, e: unknown): RoleResult {
  if (views) abortRun(views);
  if (e instanceof OracleViolation) return { role, index, violations: [e.violation] };
  if (e instanceof LivenessError) return { role, index, violations: [{ oracle: 'liveness', message: e.message, cpu: role === 'cpu' ? index : undefined }] };
  const msg = e instanceof Error ? `${e.name}: ${e.message}` : String(e);
  return { role, index, violations: [], error: `${role}[${index}] failed: ${msg}` };
}

export function runRole(task: RoleTask): RoleResult {
  const { config, role, index } = task;
  let views: Views | null = null;
  let sched: Scheduler | null = null;
  let trace: TraceWriter | null = null;
  // Every trace ring this thread writes (one per CPU it runs), published at the end.
  const traces: TraceWriter[] = [];
  try {
    views = openShared(task.sab, layoutParams(config));
    // This thread's host costs (src/mm/host-costs.ts), before anything that
    // pays them is built: busy-work iterations at this thread's own rate.
    setHostCosts(hostCostModel(config.hostCosts?.costs ?? null, config.hostThp ?? false));
    const thread = roleThreadId(task);
    // Strict wake-ups (docs/DESIGN.md §4): this thread's strict waits check
    // that a wake-up ended them, counted as the lost-wakeup oracle's runs.
    setWakeChecks(views.metrics, metricBase(thread) + METRIC_WAKE_CHECKS);
    const { sync, lockStat, trace: ownTrace, zone } = buildParts(views, config, thread);
    trace = ownTrace;
    if (trace !== null) {
      traces.push(trace);
      setTracer(trace);
    }
    const mode = modeOf(config.hinting);
    if (config.sched !== 'off') {
      // The scheduler's mid-run checks and its settle probe come from the
      // checkers and the hinting mode; the scheduler itself knows neither.
      const v = views;
      sched = new Scheduler(views, thread, {
        check: () => [...checkFreeLists(zone), ...checkConservation(zone).violations],
        hintingQuiet: () => mode.hintingQuiet(v),
      });
    }
    // Main snapshots this thread's schedstat around the workload window; the
    // id is published before HDR_READY, whose Atomics.add orders it for main.
    views.metrics[metricBase(thread) + METRIC_OS_TID] = ownTid();
    // Start barrier: say we are ready, then wait for main to flip the run
    // state out of INIT (it bumps HDR_STATE_GEN and notifies).
    Atomics.add(views.header, HDR_READY, 1);
    if (sched !== null) {
      // --sched: wait for the run token (main hands the first one out after
      // publishing RUNNING), then every sync primitive in this thread is a
      // scheduling point until the role returns.
      sched.enter();
      setScheduler(sched);
    }
    const h = views.header;
    const deadline = performance.now() + config.waitTimeoutMs;
    while (Atomics.load(h, HDR_RUN_STATE) === RUN_INIT) {
      if (performance.now() > deadline) throw new LivenessError(`${role}[${index}] was never started by main within ${config.waitTimeoutMs} ms`);
      waitWhileEquals(h, HDR_STATE_GEN, Atomics.load(h, HDR_STATE_GEN), 50, () => Atomics.load(h, HDR_RUN_STATE) !== RUN_INIT);
    }
    selfTestFault(role, index);
    // The host and the reporter keep serving while the workload settles;
    // they stop once the run state leaves RUNNING/SETTLING (STOPPING or ABORT).
    const serving = () => {
      const st = Atomics.load(h, HDR_RUN_STATE);
      return st === RUN_RUNNING || st === RUN_SETTLING;
    };
    const notes: string[] = [];
    const ctx: RoleContext = { views, zone, sync, config, thread, serving };
    if (role === 'cpu' && cpuThreadsInForce(config) > 0) {
      return runHostedCpus(views, config, index, { zone, sync, lockStat, trace }, serving, traces);
    } else if (role === 'cpu') {
      mode.installCpuHooks(ctx);
      new Cpu(views, zone, index, config, subSeed(config.seed, thread)).run();
    } else if (role === 'reporter') {
      notes.push(...mode.runReporter(ctx));
    } else if (role === 'device') {
      const v = mode.makeDevice(ctx).run(() => !serving());
      if (v !== null) throw new OracleViolation(v);
    } else {
      throw new Error(`role ${role} is not available in this build`);
    }
    lockStat?.publish();
    return { role, index, violations: [], notes };
  } catch (e) {
    // A thread the scheduler found deadlocked: main reports the deadlock once, with the schedule.
    if (e instanceof SchedHalted) return { role, index, violations: [] };
    const res = failureResult(views, role, index, e);
    if (trace !== null) for (const v of res.violations) traceViolation(trace, v);
    return res;
  } finally {
    for (const t of traces) t.publish();
    if (trace !== null) setTracer(null);
    if (sched !== null) {
      sched.exit();
      setScheduler(null);
    }
    setWakeChecks(null);
  }
}

/**
 * --cpu-threads (src/sim/cpu-host.ts): this thread runs CPUs t, t + N, ...,
 * each with parts of its own, as a thread per CPU would have them (its lock
 * owner id, lock statistics, trace ring, zone hooks, metric slot); the first
 * reuses the thread's. One result for the thread: every CPU's violations,
 * and the failures of those that failed.
 */
function runHostedCpus(views: Views, config: Config, t: number, first: Parts, serving: () => boolean, traces: TraceWriter[]): RoleResult {
  const mode = modeOf(config.hinting);
  const violations: Violation[] = [];
  const errors: string[] = [];
  const entries: (HostedCpu & { parts: Parts })[] = [];
  for (const cpu of hostedCpus(config, t)) {
    const parts = cpu === t ? first : buildParts(views, config, cpu);
    if (parts.trace !== null && cpu !== t) traces.push(parts.trace);
    mode.installCpuHooks({ views, zone: parts.zone, sync: parts.sync, config, thread: cpu, serving });
    entries.push({ ...hosted(new Cpu(views, parts.zone, cpu, config, subSeed(config.seed, cpu))), parts });
  }
  const stats = hostCpus(entries, views.header, {
    // The thread's tracer follows the CPU it runs: trace events go to that CPU's ring.
    switchTo: (h) => {
      if (h.parts.trace !== null) setTracer(h.parts.trace);
    },
    failed: (h, e) => {
      const res = failureResult(views, 'cpu', h.cpu.cpu, e);
      if (h.parts.trace !== null) for (const v of res.violations) traceViolation(h.parts.trace, v);
      violations.push(...res.violations);
      if (res.error !== undefined) errors.push(res.error);
    },
  });
  for (const e of entries) e.parts.lockStat?.publish();
  views.metrics[metricBase(t) + CM_HOST_SWITCHES] = stats.switches;
  views.metrics[metricBase(t) + CM_HOST_IDLE_SLEEPS] = stats.idleSleeps;
  return { role: 'cpu', index: t, violations, ...(errors.length > 0 ? { error: errors.join('; ') } : {}) };
}

/**
 * Harness self-test (not a simulation feature): BALLOON_SIM_SELFTEST=crash or
 * =hang makes cpu[0] die or ignore the stop request, so the tests can prove a
 * dead or hung thread ends the run with exit 3 and the seed, never a hang.
 * (=late-gen-read puts the reporter's request-generation read back in the
 * order that lost requests: see src/sim/modes/page-reporting.ts
 * reportingOptions and PageReporting.process. =no-notify-request and
 * =no-notify-unlock plant a missing Atomics.notify, on the free path's
 * request and on a contended lock release, for the strict wake-up checks
 * to find: docs/DESIGN.md §4.)
 */
function selfTestFault(role: RoleName, index: number): void {
  const mode = process.env.BALLOON_SIM_SELFTEST;
  if (!mode || role !== 'cpu' || index !== 0) return;
  if (mode === 'crash') throw new Error('self-test: simulated worker crash');
  if (mode === 'hang') {
    const until = performance.now() + 60_000; // bounded even here
    while (performance.now() < until) {
      /* spin, ignoring the run state */
    }
  }
}

/** A violation on the finder's track (--trace): which oracle, the page and the CPU it names. */
export function traceViolation(w: TraceWriter, v: Violation): void {
  w.instant(TK_VIOLATION, ORACLES.indexOf(v.oracle), v.pfn ?? -1, v.cpu ?? -1);
}

// What each thread runs, given the shared buffer and the configuration.
// workers/role.ts is the thin thread entry point around runRole().

import { Zone } from '../mm/buddy.js';
import { type Config, layoutParams } from './config.js';
import { BalloonDevice, type DeviceOptions } from '../host/balloon-device.js';
import { VirtioBalloonDriver, reportingAllowed } from '../guest/balloon-driver.js';
import { PAGE_REPORTING_IDLE, PageReporting, type ReportingOptions, makeFreeNotifier, requestReporting } from '../mm/page-reporting.js';
import { ownTid } from './cputime.js';
import { METRIC_OS_TID, metricBase, NIL, HDR_READY, HDR_RUN_STATE, HDR_STATE_GEN, RUN_ABORT, RUN_INIT, RUN_RUNNING, RUN_SETTLING, REP_STATE, ZONE_ISOLATED_PAGES, openShared, threadIds, type Views } from '../shm/layout.js';
import { GuestMemory } from '../mm/memory.js';
import { subSeed } from '../base/rng.js';
import { LockStat } from '../locking/lockstat.js';
import { LivenessError, Sync, bump, setScheduler, waitWhileEquals } from '../locking/sync.js';
import { SchedHalted, Scheduler } from '../sched/scheduler.js';
import { Cpu } from './workload.js';
import { FreePageHintDriver, NaiveHinter, makeShrinker } from '../guest/free-page-hint.js';
import { FreePageHintDevice } from '../host/free-page-hint-device.js';
import { driverDeclaresPoison, injected, reporterInjections } from '../check/inject.js';
import { OracleViolation, type Violation } from '../base/errors.js';
import { checkConservation, checkFreeLists } from '../check/structure.js';
import { deviceRangeCheck } from '../check/device-range.js';

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

export function reportingOptions(config: Config): ReportingOptions {
  return { mode: config.hinting === 'aeration' ? 'aeration' : 'reporting', capacity: config.capacity, reportOrder: config.reportOrder, delayMs: config.reportDelayMs, inject: reporterInjections(config), lateGenRead: process.env.BALLOON_SIM_SELFTEST === 'late-gen-read' };
}

/**
 * The reporter thread: page_reporting_register() (initial flush request),
 * then the worker loop until the run ends. Returns notes for the user.
 */
function runReporter(views: Views, zone: Zone, sync: Sync, config: Config, thread: number, serving: () => boolean): string[] {
  const allowed = reportingAllowed(views, driverDeclaresPoison(config));
  if (!allowed.allowed) return [allowed.why];
  const opts = reportingOptions(config);
  let hintPfn = NIL;
  if (opts.mode === 'aeration') {
    // vb->hints[] lives in guest memory: one page the driver owns for the run.
    hintPfn = zone.alloc(0, thread);
    if (hintPfn === NIL) throw new Error('reporter: no page for the aeration hint buffer');
    // The driver writes it, so the host backs it: a first-touch fault like
    // any other guest write (host RSS counts it while it is allocated).
    new GuestMemory(views).touch(hintPfn);
  }
  try {
    const driver = new VirtioBalloonDriver(views, sync, { mode: opts.mode, ackTimeoutMs: config.waitTimeoutMs, spin: config.spin, serving, hintBufferPfn: hintPfn, noAckWait: injected(config, 'no-ack-wait') });
    const pr = new PageReporting(views, zone, driver, opts, thread);
    requestReporting(views);
    pr.run();
  } finally {
    if (hintPfn !== NIL) zone.free(hintPfn, 0, thread);
  }
  return [];
}

export function roleThreadId(task: Pick<RoleTask, 'role' | 'index' | 'config'>): number {
  const ids = threadIds(task.config.cpus);
  return task.role === 'cpu' ? task.index : task.role === 'reporter' ? ids.reporter : ids.device;
}

/** Stop everyone at once: a violation or failure was found. */
export function abortRun(views: Views): void {
  Atomics.store(views.header, HDR_RUN_STATE, RUN_ABORT);
  bump(views.header, HDR_STATE_GEN);
}

/** Turn a thrown error into the role's result, stopping the run. */
export function failureResult(views: Views | null, role: RoleName, index: number, e: unknown): RoleResult {
  if (views) abortRun(views);
  if (e instanceof OracleViolation) return { role, index, violations: [e.violation] };
  if (e instanceof LivenessError) return { role, index, violations: [{ oracle: 'liveness', message: e.message, cpu: role === 'cpu' ? index : undefined }] };
  const msg = e instanceof Error ? `${e.name}: ${e.message}` : String(e);
  return { role, index, violations: [], error: `${role}[${index}] failed: ${msg}` };
}

/** The device's options for a run: the queue kind follows the hinting mode. */
export function deviceOptions(views: Views, config: Config): DeviceOptions {
  return { queueKind: config.hinting === 'aeration' ? 'aeration' : config.hinting === 'hint' ? 'free_page' : 'reporting', poisonPolicy: config.poisonPolicy, spin: config.spin, sliceMs: 50, doubleUsed: injected(config, 'device-double-used'), discard: config.discard, rangeCheck: deviceRangeCheck(views.pages) };
}

export function runRole(task: RoleTask): RoleResult {
  const { config, role, index } = task;
  let views: Views | null = null;
  let sched: Scheduler | null = null;
  try {
    views = openShared(task.sab, layoutParams(config));
    const thread = roleThreadId(task);
    const sync = new Sync(views, thread, { spin: config.spin, waitTimeoutMs: config.waitTimeoutMs });
    const lockStat = config.lockstat ? new LockStat(views, thread) : null;
    sync.observer = lockStat;
    const zone = new Zone(views, sync, { pcp: config.pcp, pcpBatch: config.pcpBatch, pcpHigh: config.pcpHigh });
    zone.keepReportedOnMerge = injected(config, 'keep-reported-on-merge');
    if (config.sched !== 'off') {
      // The scheduler's mid-run checks and its settle probe come from the
      // checkers and the hinting side; the scheduler itself knows neither.
      const z = zone;
      sched = new Scheduler(views, thread, {
        check: () => [...checkFreeLists(z), ...checkConservation(z).violations],
        hintingQuiet: () => Atomics.load(views!.reporting, REP_STATE) === PAGE_REPORTING_IDLE && views!.zone[ZONE_ISOLATED_PAGES] === 0,
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
    if (role === 'cpu') {
      if (config.hinting === 'hint') {
        // The balloon's shrinker on this CPU's allocation slow path (src/hint.ts).
        zone.shrinker = makeShrinker(views, zone, { poisonByte: config.poison ? config.poisonByte : null, blocksPerCall: config.hintShrinkBlocks, waitTimeoutMs: config.waitTimeoutMs }, thread);
      } else if ((config.hinting === 'reporting' || config.hinting === 'aeration') && reportingAllowed(views, driverDeclaresPoison(config)).allowed) {
        // page_reporting_notify_free() on this CPU's free path.
        zone.onHighOrderFree = makeFreeNotifier(views, reportingOptions(config), thread);
        zone.reportOrder = config.reportOrder;
      }
      new Cpu(views, zone, index, config, subSeed(config.seed, thread)).run();
    } else if (role === 'reporter' && (config.hinting === 'hint' || config.hinting === 'naive')) {
      const hopts = { ackTimeoutMs: config.waitTimeoutMs, spin: config.spin, serving, poisonByte: config.poison ? config.poisonByte : null };
      if (config.hinting === 'hint') new FreePageHintDriver(views, zone, thread, hopts).run();
      else new NaiveHinter(views, zone, sync, thread, hopts).run();
    } else if (role === 'reporter') {
      notes.push(...runReporter(views, zone, sync, config, thread, serving));
    } else if (role === 'device') {
      const dev =
        config.hinting === 'hint'
          ? new FreePageHintDevice(views, deviceOptions(views, config), { intervalMs: config.hintIntervalMs, action: config.hintAction, doneAfterMs: config.hintDoneAfterMs })
          : new BalloonDevice(views, deviceOptions(views, config));
      const v = dev.run(() => !serving());
      if (v !== null) throw new OracleViolation(v);
    } else {
      throw new Error(`role ${role} is not available in this build`);
    }
    lockStat?.publish();
    return { role, index, violations: [], notes };
  } catch (e) {
    // A thread the scheduler found deadlocked: main reports the deadlock once, with the schedule.
    if (e instanceof SchedHalted) return { role, index, violations: [] };
    return failureResult(views, role, index, e);
  } finally {
    if (sched !== null) {
      sched.exit();
      setScheduler(null);
    }
  }
}

/**
 * Harness self-test (not a simulation feature): BALLOON_SIM_SELFTEST=crash or
 * =hang makes cpu[0] die or ignore the stop request, so the tests can prove a
 * dead or hung thread ends the run with exit 3 and the seed, never a hang.
 * (=late-gen-read puts the reporter's request-generation read back in the
 * order that lost requests: see reportingOptions and PageReporting.process.)
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

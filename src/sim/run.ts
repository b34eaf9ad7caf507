// Orchestration on the main thread (DESIGN §2 "main"): build the shared
// buffer, start the roles on a piscina pool, sample, stop, check, report.

import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Piscina } from 'piscina';
import { Zone } from '../mm/buddy.js';
import { type Config, layoutParams, rerunCommand, schedParams } from './config.js';
import { HIST_BUCKETS, accumulate, percentile, slotPercentiles } from '../base/hist.js';
import {
  HDR_READY,
  HDR_RUN_STATE,
  DEV_POISON_VAL,
  HDR_STATE_GEN,
  LOCK_ZONE,
  MAX_ORDER,
  METRIC_ALLOCS,
  METRIC_ALLOC_FAILS,
  METRIC_ALLOC_NS_MAX,
  METRIC_ALLOC_SAMPLES,
  METRIC_FREES,
  METRIC_HIST_BASE,
  METRIC_HOST_FAULTS,
  METRIC_OPS,
  METRIC_OS_TID,
  METRIC_OWNERSHIP_CHECKS,
  METRIC_PAGES_TOUCHED,
  METRIC_REFAULTS,
  METRIC_STAMP_CHECKS,
  METRIC_POISON_CHECKS,
  PAGE_SIZE,
  RUN_ABORT,
  RUN_RUNNING,
  RUN_STOPPING,
  computeLayout,
  createShared,
  DEV_FEATURES_OFFERED,
  REP_STATE,
  RUN_SETTLING,
  ZONE_ISOLATED_PAGES,
  ZONE_REPORTED_PAGES,
  metricBase,
  threadIds,
  type Views,
} from '../shm/layout.js';
import { type DeviceCounters, deviceInit, keepReason, readDeviceCounters } from '../host/balloon-device.js';
import { reportingAllowed } from '../guest/balloon-driver.js';
import { PAGE_REPORTING_IDLE, PAGE_REPORTING_REQUESTED, RM_BLOCKS, RM_ISOLATE_WMARK, RM_PASSES, RM_RING_CHECKS } from '../mm/page-reporting.js';
import { checkReportedAccounting, type SettleReport } from '../check/settle.js';
import { readHintingStats, type HintingStats } from './hinting-stats.js';
import { hintOffer, hintQueue, hintSettleViolation, hintSettled, isHintMode, readHintStats } from './hint-stats.js';
import { GuestMemory } from '../mm/memory.js';
import { checkConservation, checkFreeLists, type PageCensus } from '../check/structure.js';
import { type RoleName, type RoleResult, type RoleTask, roleThreadId } from './roles.js';
import { LockStat, collectLockStats, type LockClassStats } from '../locking/lockstat.js';
import { Sync, bump } from '../locking/sync.js';
import { type SchedOutcome, driveScheduled, haltSched, initSched, loadReplay, schedOutcome, startSched } from '../sched/control.js';
import type { ScheduleRecord } from '../sched/schedule.js';
import { driverDeclaresPoison } from '../check/inject.js';
import { checkReporterQuiet } from '../check/settle.js';
import { type CpuTimeStats, type Schedstat, cpuTimeStats, ownTid, snapshot, threadDelta } from './cputime.js';
import { ORACLES, type OracleName, type Violation } from '../base/errors.js';
import { VIRTIO_BALLOON_F_PAGE_POISON, bit, negotiateFeatures } from '../virtio/balloon-abi.js';
import { SITE_CHECK } from '../locking/sites.js';

export interface Percentiles {
  p50: number;
  p99: number;
  max: number;
}

export interface CpuResult {
  cpu: number;
  ops: number;
  opsPerSec: number;
  allocs: number;
  frees: number;
  allocFailures: number;
  allocLatencyNs: Percentiles;
}

export interface CheckResult {
  oracle: OracleName;
  runs: number;
  failures: number;
}

export interface RunResult {
  seed: number;
  config: Config;
  ok: boolean;
  /** 0 ok, 1 violation, 3 simulator failure (DESIGN §10). */
  exitCode: 0 | 1 | 3;
  violations: Violation[];
  errors: string[];
  rerun: string;
  durationMs: number;
  totals: { ops: number; opsPerSec: number; allocs: number; frees: number; allocFailures: number; pagesTouched: number; allocLatencyNs: Percentiles };
  cpus: CpuResult[];
  memory: { totalBytes: number; freeBytes: number; freeBlocksByOrder: number[]; wmarkMinBytes: number; wmarkLowBytes: number; wmarkHighBytes: number };
  checks: CheckResult[];
  /** refaults: faults on pages the host had discarded; firstTouchFaults: faults on pages the host never backed. */
  host: { rssBytes: number; peakRssBytes: number; refaults: number; firstTouchFaults: number; discardedBytes: number };
  /** Device counters; present when the device role ran (hinting != off). */
  device?: DeviceCounters;
  /** Reporter counters (hinting != off). */
  hinting?: HintingStats;
  /** What roles want the user to know (e.g. why reporting stayed off). */
  notes: string[];
  series: SeriesPoint[];
  setupMs: number;
  /** Per lock class, with --lockstat (src/lockstat.ts). */
  locks?: LockClassStats[];
  /** With --sched: the scheduler's trace hash, counters and the schedule (src/sched.ts). */
  sched?: SchedOutcome;
  /** Per-role CPU time in the workload window (src/cputime.ts); absent where schedstat is not readable. */
  cpuTime?: CpuTimeStats;
}

export interface SeriesPoint {
  tMs: number;
  hostRssBytes: number;
  guestUsedBytes: number;
  guestFreeBytes: number;
  reportedFreeBytes: number;
  ops: number;
}

export interface RunHooks {
  /** Called about every 100 ms with the latest sample (progress line). */
  onSample?: (p: SeriesPoint, elapsedMs: number) => void;
  /** Series sampling interval (default 100 ms). */
  sampleIntervalMs?: number;
  /** Seconds to wait for roles to stop after the run ends before declaring a hang (default: the wait timeout + 5 s). */
  stopGraceMs?: number;
  /**
   * Run on this buffer (zeroed first) instead of a new one; it must have this
   * configuration's layout size (sharedBufferFor()). Benchmarks use it so that
   * runs they compare share the same memory: which host pages back a fresh
   * 1 GiB buffer changes a memory-bound run's speed by more than what they
   * compare.
   */
  buffer?: SharedArrayBuffer;
}

/** The compiled worker entry: dist/workers/role.js next to dist/src/sim/run.js (or from the TS sources under vitest). */
export function workerFile(): string {
  const here = fileURLToPath(import.meta.url);
  const dir = path.dirname(here);
  const candidates = here.endsWith('.ts') ? [path.resolve(dir, '../../dist/workers/role.js')] : [path.resolve(dir, '../../workers/role.js')];
  for (const c of candidates) if (existsSync(c)) return c;
  throw new Error(`worker entry not found (looked for ${candidates.join(', ')}); run 'npm run build' first`);
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

function roleList(cfg: Config): { role: RoleName; index: number }[] {
  const out: { role: RoleName; index: number }[] = [];
  for (let i = 0; i < cfg.cpus; i++) out.push({ role: 'cpu', index: i });
  if (cfg.hinting !== 'off') {
    out.push({ role: 'reporter', index: 0 });
    out.push({ role: 'device', index: 0 });
  }
  return out;
}

/** A buffer the size of `cfg`'s layout, to reuse across runs of the same shape (RunHooks.buffer). */
export function sharedBufferFor(cfg: Config): SharedArrayBuffer {
  return new SharedArrayBuffer(computeLayout(layoutParams(cfg)).totalBytes);
}

export async function runSimulation(cfg: Config, hooks: RunHooks = {}): Promise<RunResult> {
  const tSetup = performance.now();
  const views = createShared(layoutParams(cfg), hooks.buffer);
  const ids = threadIds(cfg.cpus);
  const sync = new Sync(views, ids.main, { spin: cfg.spin, waitTimeoutMs: cfg.waitTimeoutMs });
  if (cfg.lockstat) sync.observer = new LockStat(views, ids.main);
  const zone = new Zone(views, sync);
  zone.init();
  const mem = new GuestMemory(views);
  const withDevice = cfg.hinting !== 'off';
  if (cfg.prefault && !cfg.poison && hooks.buffer === undefined) {
    // Our process's page faults on the shared buffer are Linux's, not the
    // modelled host's: take them all now, outside the measured run. The
    // host model's resident bitmap is untouched. (A reused buffer was just
    // zeroed whole by createShared, which took those faults already.)
    views.guestF64.fill(0);
  }
  if (cfg.poison) {
    // Boot with page poisoning: every free page is written with the pattern,
    // which faults all of guest memory in on the host.
    mem.fillPoison(0, views.layout.pages, cfg.poisonByte);
    mem.markAllResident();
  }
  if (withDevice) {
    // Device reset and feature negotiation before any role runs (DRIVER_OK).
    deviceInit(views, { eventIdx: cfg.eventIdx, vqNumbering: cfg.vqNumbering });
    if (!cfg.pagePoisonFeature) views.device[DEV_FEATURES_OFFERED] &= ~bit(VIRTIO_BALLOON_F_PAGE_POISON);
    // virtballoon_validate(): the driver only keeps PAGE_POISON when it
    // poisons freed pages; poison_val is the pattern in every byte.
    const driverFeatures = driverDeclaresPoison(cfg) ? 0xffffffff : 0xffffffff & ~bit(VIRTIO_BALLOON_F_PAGE_POISON);
    hintOffer(views, cfg);
    negotiateFeatures(views, driverFeatures, cfg.vqNumbering, driverDeclaresPoison(cfg) ? Math.imul(cfg.poisonByte, 0x01010101) : 0);
    hintQueue(views, cfg);
  }
  // --sched: the scheduler's region is set up before any role starts.
  const scheduled = cfg.sched !== 'off';
  let replay: ScheduleRecord | null = null;
  if (scheduled) {
    replay = cfg.replay ? loadReplay(cfg.replay, { rerun: rerunCommand(cfg), strategy: cfg.sched }, (p) => readFileSync(p, 'utf8')) : null;
    initSched(views, schedParams(cfg), replay);
  }
  const checks = new Map<OracleName, CheckResult>(ORACLES.map((o) => [o, { oracle: o, runs: 0, failures: 0 }]));
  const violations: Violation[] = [];
  const errors: string[] = [];
  const notes: string[] = [];
  const noteCheck = (oracle: OracleName, found: Violation[], runs = 1) => {
    const c = checks.get(oracle)!;
    c.runs += runs;
    c.failures += found.length > 0 ? 1 : 0;
    violations.push(...found);
  };

  const roles = roleList(cfg);
  const pool = new Piscina({
    filename: workerFile(),
    // Every role is a long-running task that rendezvous with the others, so
    // the pool must hold exactly one thread per role (piscina's default of
    // 1.5 x cores would queue some roles behind others and deadlock).
    minThreads: roles.length,
    maxThreads: roles.length,
    concurrentTasksPerWorker: 1,
    idleTimeout: 60_000,
  });
  const results: (RoleResult | null)[] = roles.map(() => null);
  const tasks = roles.map((r, i) => {
    const task: RoleTask = { sab: views.sab, config: cfg, role: r.role, index: r.index };
    return pool.run(task).then(
      (res: RoleResult) => {
        results[i] = res;
      },
      (e: unknown) => {
        // The worker thread itself died (uncaught error, exit): a simulator failure.
        results[i] = { role: r.role, index: r.index, violations: [], error: `${r.role}[${r.index}] worker died: ${e instanceof Error ? e.message : String(e)}` };
        Atomics.store(views.header, HDR_RUN_STATE, RUN_ABORT);
        bump(views.header, HDR_STATE_GEN);
      },
    );
  });
  const allDone = Promise.all(tasks);
  let settled = false;
  void allDone.then(() => (settled = true));

  // Start barrier: wait (without blocking the event loop, which piscina needs
  // to hand out the tasks) for every role to open the buffer.
  const readyDeadline = performance.now() + Math.max(30_000, cfg.waitTimeoutMs);
  while (Atomics.load(views.header, HDR_READY) < roles.length && !settled) {
    if (performance.now() > readyDeadline) {
      errors.push(`only ${Atomics.load(views.header, HDR_READY)} of ${roles.length} roles started within ${Math.round(readyDeadline - tSetup)} ms`);
      break;
    }
    await sleep(2);
  }
  const setupMs = performance.now() - tSetup;

  const series: SeriesPoint[] = [];
  const sampleMs = Math.max(1, hooks.sampleIntervalMs ?? 100);
  let peakRss = 0;
  const sample = (tMs: number): SeriesPoint => {
    const rss = mem.residentPages();
    peakRss = Math.max(peakRss, rss);
    const free = views.zone.length ? zone.freePages : 0;
    let ops = 0;
    for (let c = 0; c < cfg.cpus; c++) ops += views.metrics[metricBase(c) + METRIC_OPS];
    const p: SeriesPoint = {
      tMs: Math.round(tMs),
      hostRssBytes: rss * PAGE_SIZE,
      guestUsedBytes: (views.layout.pages - free) * PAGE_SIZE,
      guestFreeBytes: free * PAGE_SIZE,
      reportedFreeBytes: views.zone[ZONE_REPORTED_PAGES] * PAGE_SIZE,
      ops,
    };
    return p;
  };

  // Mid-run structural check under the zone lock (the lock statistics show it as 'oracle_check').
  const structuralCheck = (final: boolean): PageCensus => {
    sync.lock(LOCK_ZONE, SITE_CHECK);
    try {
      noteCheck('free-list', checkFreeLists(zone));
      const { census, violations: v } = checkConservation(zone);
      noteCheck('conservation', v);
      void final;
      return census;
    } finally {
      sync.unlock(LOCK_ZONE);
    }
  };

  // Liveness of reporting: a request must lead to a pass within the delay
  // plus the wait bound; a request nobody serves is a lost wake-up.
  let lastPasses = -1;
  let requestedSince = -1;
  const reporterSlot = metricBase(ids.reporter);
  const watchReporter = () => {
    if (!withDevice) return;
    // Each evaluation is one run of the reporting liveness check.
    checks.get('liveness')!.runs++;
    const passes = views.metrics[reporterSlot + RM_PASSES];
    const st = Atomics.load(views.reporting, REP_STATE);
    const now = performance.now();
    if (st !== PAGE_REPORTING_REQUESTED || passes !== lastPasses) {
      requestedSince = st === PAGE_REPORTING_REQUESTED ? now : -1;
      lastPasses = passes;
      return;
    }
    if (requestedSince < 0) requestedSince = now;
    const bound = cfg.reportDelayMs + cfg.waitTimeoutMs;
    const reporterIdxNow = roles.findIndex((r) => r.role === 'reporter');
    const reporterRunning = reporterIdxNow >= 0 && results[reporterIdxNow] === null;
    if (reporterRunning && reportingAllowed(views, driverDeclaresPoison(cfg)).allowed && now - requestedSince > bound) {
      noteCheck('liveness', [{ oracle: 'liveness', message: `reporting was requested but no pass ran for ${Math.round(now - requestedSince)} ms (bound: --report-delay + --wait-timeout = ${bound} ms): a lost wake-up` }], 0);
      abortLoop = true;
    }
  };
  let abortLoop = false;

  let t0 = performance.now();
  let elapsed = 0;
  // Per-thread schedstat around the workload window (src/cputime.ts): each
  // role published its OS thread id before it reported ready.
  const tids = [...roles.map((r) => views.metrics[metricBase(roleThreadId({ ...r, config: cfg })) + METRIC_OS_TID]), ownTid()];
  let cpuStart: (Schedstat | null)[] = [];
  if (errors.length > 0 && scheduled) haltSched(views);
  if (errors.length === 0 && scheduled) {
    // Scheduled (src/sched.ts): publish RUNNING, hand out the first run
    // token; phases and mid-run checks then happen inside the scheduler at
    // logical times, and main only samples and watches for progress.
    Atomics.store(views.header, HDR_RUN_STATE, RUN_RUNNING);
    bump(views.header, HDR_STATE_GEN);
    t0 = performance.now();
    cpuStart = snapshot(tids);
    startSched(views);
    let nextSample = 0;
    const err = await driveScheduled(views, cfg, () => settled, () => {
      const el = performance.now() - t0;
      if (el >= nextSample) {
        const p = sample(el);
        series.push(p);
        hooks.onSample?.(p, el);
        nextSample += 100;
      }
    });
    if (err) errors.push(err);
    elapsed = performance.now() - t0;
  } else if (errors.length === 0) {
    // Go: publish RUNNING and wake every role parked on the state word.
    Atomics.store(views.header, HDR_RUN_STATE, RUN_RUNNING);
    bump(views.header, HDR_STATE_GEN);
    t0 = performance.now();
    cpuStart = snapshot(tids);
    let nextSample = 0;
    let nextCheck = cfg.checkIntervalMs > 0 ? cfg.checkIntervalMs : Infinity;
    for (;;) {
      elapsed = performance.now() - t0;
      if (Atomics.load(views.header, HDR_RUN_STATE) !== RUN_RUNNING || settled) break;
      if (elapsed >= cfg.durationMs) break;
      if (elapsed >= nextSample) {
        const p = sample(elapsed);
        series.push(p);
        hooks.onSample?.(p, elapsed);
        nextSample += sampleMs;
      }
      watchReporter();
      if (abortLoop) {
        Atomics.store(views.header, HDR_RUN_STATE, RUN_ABORT);
        bump(views.header, HDR_STATE_GEN);
        break;
      }
      if (elapsed >= nextCheck) {
        const before = violations.length;
        structuralCheck(false);
        if (violations.length > before) {
          Atomics.store(views.header, HDR_RUN_STATE, RUN_ABORT);
          bump(views.header, HDR_STATE_GEN);
          break;
        }
        nextCheck += cfg.checkIntervalMs;
      }
      await sleep(Math.max(1, Math.min(nextSample, nextCheck, cfg.durationMs, elapsed + 50) - elapsed));
    }
  }
  const durationMs = Math.min(performance.now() - t0, Math.max(elapsed, 0));
  const cpuEnd = cpuStart.length > 0 ? snapshot(tids) : [];
  const abortNow = () => {
    Atomics.store(views.header, HDR_RUN_STATE, RUN_ABORT);
    bump(views.header, HDR_STATE_GEN);
  };
  const grace = hooks.stopGraceMs ?? cfg.waitTimeoutMs + 5000;
  const within = async (p: Promise<unknown>, ms: number): Promise<boolean> => {
    let timer: NodeJS.Timeout | undefined;
    const ok = await Promise.race([p.then(() => true), new Promise<boolean>((res) => (timer = setTimeout(() => res(false), ms)))]);
    clearTimeout(timer);
    return ok;
  };

  // Settling (hinting on): the workload stops, every CPU frees what it holds,
  // and the reporter gets a bounded time to hand the free memory back before
  // the quiescent property is checked (reported-accounting).
  let settle: SettleReport | null = null;
  let hintOk = false;
  let hintSettleRss = -1;
  let settleMs = 0;
  const reporterIdx = roles.findIndex((r) => r.role === 'reporter');
  const reportingOn = reportingAllowed(views, driverDeclaresPoison(cfg)).allowed;
  const settleOpts = {
      mode: cfg.hinting === 'aeration' ? ('aeration' as const) : ('reporting' as const),
      reportOrder: cfg.reportOrder,
      capacity: cfg.capacity,
      reportingDisabled: !reportingOn,
      // The device's own rule, on the poison_val it negotiated (0 without PAGE_POISON).
      deviceKeepsPages: reportingOn ? keepReason(views.device[DEV_POISON_VAL], cfg) : null,
      isolationsRefused: () => views.metrics[metricBase(ids.reporter) + RM_ISOLATE_WMARK],
  };
  const quiet = () => {
    sync.lock(LOCK_ZONE, SITE_CHECK);
    try {
      return checkReportedAccounting(zone, mem, settleOpts);
    } finally {
      sync.unlock(LOCK_ZONE);
    }
  };
  if (withDevice && Atomics.load(views.header, HDR_RUN_STATE) === RUN_RUNNING && errors.length === 0) {
    Atomics.store(views.header, HDR_RUN_STATE, RUN_SETTLING);
    bump(views.header, HDR_STATE_GEN);
    const cpuTasks = Promise.all(tasks.filter((_, i) => roles[i].role === 'cpu'));
    if (!(await within(cpuTasks, grace))) {
      const stuck = roles.filter((r, i) => r.role === 'cpu' && results[i] === null).map((r) => `${r.role}[${r.index}]`);
      errors.push(`CPUs did not stop within ${grace} ms after the workload ended: ${stuck.join(', ')} (hang)`);
    }
    const tSettle = performance.now();
    let nextSample = performance.now() - t0;
    while (errors.length === 0 && Atomics.load(views.header, HDR_RUN_STATE) === RUN_SETTLING) {
      const now = performance.now();
      if (now - t0 >= nextSample) {
        const p = sample(now - t0);
        series.push(p);
        hooks.onSample?.(p, now - t0);
        nextSample += sampleMs;
      }
      watchReporter();
      if (abortLoop) {
        abortNow();
        break;
      }
      const reporterGone = reporterIdx >= 0 && results[reporterIdx] !== null;
      if (isHintMode(cfg)) {
        // hint / naive settle: DONE handled and the balloon empty (src/hint-stats.ts).
        hintOk = hintSettled(views);
        if (hintOk || reporterGone) break;
      } else if ((Atomics.load(views.reporting, REP_STATE) === PAGE_REPORTING_IDLE && views.zone[ZONE_ISOLATED_PAGES] === 0) || reporterGone) {
        settle = quiet();
        if (settle.ok || reporterGone) break;
      }
      if (now - tSettle >= cfg.settleTimeoutMs) break;
      await sleep(Math.min(20, sampleMs));
    }
    settleMs = performance.now() - tSettle;
    if (isHintMode(cfg)) {
      if (Atomics.load(views.header, HDR_RUN_STATE) === RUN_SETTLING) {
        hintOk = hintSettled(views);
        const v = hintOk ? [] : [hintSettleViolation(views, settleMs, cfg.settleTimeoutMs)];
        noteCheck('reported-accounting', v);
        if (v.length > 0) abortNow();
        hintSettleRss = mem.residentPages() * PAGE_SIZE;
      }
    } else if (Atomics.load(views.header, HDR_RUN_STATE) === RUN_SETTLING) {
      settle = quiet();
      const v = settle.violations.map((x) => ({ ...x, message: `${x.message} (checked ${Math.round(settleMs)} ms after the workload stopped; --settle-timeout ${cfg.settleTimeoutMs} ms)` }));
      // Everything is reported but the reporter is still busy: it must not
      // send anything more (a reporter that re-sends Reported memory never idles).
      const reporterRunning = reporterIdx >= 0 && results[reporterIdx] === null;
      if (v.length === 0 && reporterRunning && !settleOpts.reportingDisabled) {
        const busy = await checkReporterQuiet(views, reporterSlot, cfg.reportDelayMs, () => Atomics.load(views.header, HDR_RUN_STATE) === RUN_SETTLING);
        if (busy !== null) v.push(busy);
      }
      noteCheck('reported-accounting', v);
      if (v.length > 0) abortNow();
    }
  }

  // Stop: everyone leaves its loop, frees what it holds and returns.
  if (Atomics.load(views.header, HDR_RUN_STATE) !== RUN_ABORT) Atomics.store(views.header, HDR_RUN_STATE, RUN_STOPPING);
  bump(views.header, HDR_STATE_GEN);
  // A CPU already found hung while settling will not stop now: do not wait the full grace twice.
  const finalGrace = errors.some((e) => e.endsWith('(hang)')) ? Math.min(grace, 1000) : grace;
  const stopped = await within(allDone, finalGrace);
  if (!stopped) {
    const stuck = roles.filter((_, i) => results[i] === null).map((r) => `${r.role}[${r.index}]`);
    errors.push(`roles did not stop within ${finalGrace} ms after the run ended: ${stuck.join(', ')} (hang)`);
  }
  for (const r of results) {
    if (!r) continue;
    violations.push(...r.violations);
    for (const v of r.violations) {
      const c = checks.get(v.oracle)!;
      c.failures++;
    }
    if (r.error) errors.push(r.error);
    if (r.notes) notes.push(...r.notes.map((n) => `${r.role}: ${n}`));
  }
  const aborted = Atomics.load(views.header, HDR_RUN_STATE) === RUN_ABORT;
  let schedResult: SchedOutcome | undefined;
  if (scheduled) {
    // The scheduler's own findings (deadlock, roles that never stopped,
    // replay divergence) and, once it ended SETTLING, the quiescent check on
    // the zone exactly as the scheduled run left it.
    schedResult = schedOutcome(views, schedParams(cfg), replay);
    noteCheck('liveness', schedResult.violations, 0);
    errors.push(...schedResult.errors);
    checks.get('free-list')!.runs += schedResult.checks;
    checks.get('conservation')!.runs += schedResult.checks;
    if (stopped && schedResult.settled !== null && !aborted && withDevice && errors.length === 0) {
      settle = quiet();
      settleMs = 0;
      const v = settle.violations.map((x) => ({ ...x, message: `${x.message} (checked when the scheduled run settled at step ${schedResult!.steps}: ${schedResult!.settled}; seed ${cfg.seed}, schedule ${schedResult!.schedule})` }));
      // The scheduled form of the reporter-quiet check: every free block is
      // Reported and every CPU has exited, yet the reporter never went idle
      // in the whole logical --settle-timeout: it keeps sending Reported memory.
      if (v.length === 0 && schedResult.settled === 'timeout' && !settleOpts.reportingDisabled && Atomics.load(views.reporting, REP_STATE) !== PAGE_REPORTING_IDLE) {
        v.push({ oracle: 'reported-accounting', message: `every free block was Reported and every CPU had exited, yet the reporter did not go idle within the logical --settle-timeout (${cfg.settleTimeoutMs} ms; ${views.metrics[metricBase(ids.reporter) + RM_BLOCKS]} blocks sent in all): Reported memory is being reported again (seed ${cfg.seed}, schedule ${schedResult.schedule})` });
      }
      noteCheck('reported-accounting', v);
    }
  }

  // Final checks on the quiescent zone (only if every role has stopped).
  let census: PageCensus | null = null;
  if (stopped) {
    census = structuralCheck(true);
    if (!aborted && violations.length === 0 && census.allocated + census.pcp !== 0) {
      noteCheck('conservation', [{ oracle: 'conservation', message: `${census.allocated} pages still allocated and ${census.pcp} on pcp lists after every CPU freed all it held: pages leaked` }], 0);
    }
  }
  const end = sample(durationMs);
  series.push(end);

  // Per-thread metrics -> results.
  const m = views.metrics;
  const cpuResults: CpuResult[] = [];
  const allHist = new Float64Array(HIST_BUCKETS);
  let allMax = 0;
  let stampChecks = 0;
  let poisonChecks = 0;
  let ownershipChecks = 0;
  let refaults = 0;
  let firstTouchFaults = 0;
  const sum = { ops: 0, allocs: 0, frees: 0, allocFailures: 0, pagesTouched: 0 };
  const secs = Math.max(durationMs, 1) / 1000;
  for (let c = 0; c < cfg.cpus; c++) {
    const b = metricBase(c);
    accumulate(allHist, m, b + METRIC_HIST_BASE);
    const max = m[b + METRIC_ALLOC_NS_MAX];
    allMax = Math.max(allMax, max);
    cpuResults.push({
      cpu: c,
      ops: m[b + METRIC_OPS],
      opsPerSec: m[b + METRIC_OPS] / secs,
      allocs: m[b + METRIC_ALLOCS],
      frees: m[b + METRIC_FREES],
      allocFailures: m[b + METRIC_ALLOC_FAILS],
      allocLatencyNs: slotPercentiles(m, b + METRIC_HIST_BASE, max),
    });
    sum.ops += m[b + METRIC_OPS];
    sum.allocs += m[b + METRIC_ALLOCS];
    sum.frees += m[b + METRIC_FREES];
    sum.allocFailures += m[b + METRIC_ALLOC_FAILS];
    sum.pagesTouched += m[b + METRIC_PAGES_TOUCHED];
    stampChecks += m[b + METRIC_STAMP_CHECKS];
    poisonChecks += m[b + METRIC_POISON_CHECKS];
    ownershipChecks += m[b + METRIC_OWNERSHIP_CHECKS];
    refaults += m[b + METRIC_REFAULTS];
    firstTouchFaults += m[b + METRIC_HOST_FAULTS];
    void m[b + METRIC_ALLOC_SAMPLES];
  }
  checks.get('stamp')!.runs += stampChecks;
  checks.get('poison')!.runs += poisonChecks;
  checks.get('ownership')!.runs += ownershipChecks;
  // The driver validates every used element it collects (virtqueue_get_buf).
  if (withDevice) checks.get('ring')!.runs += m[reporterSlot + RM_RING_CHECKS];

  let cpuTime: CpuTimeStats | undefined;
  if (cpuEnd.length === tids.length && cpuStart.every((x) => x !== null) && cpuEnd.every((x) => x !== null)) {
    const windowNs = durationMs * 1e6;
    const d = (i: number) => threadDelta(cpuStart[i]!, cpuEnd[i]!, windowNs);
    const of = (role: string) => roles.flatMap((r, i) => (r.role === role ? [d(i)] : []));
    cpuTime = cpuTimeStats(windowNs, { cpus: of('cpu'), reporter: of('reporter')[0], device: of('device')[0], main: d(tids.length - 1) }, sum.ops);
  }
  const exitCode: 0 | 1 | 3 = errors.length > 0 ? 3 : violations.length > 0 ? 1 : 0;
  await pool.destroy().catch(() => undefined);
  const blocks = census?.blocksByOrder ?? new Array(MAX_ORDER).fill(0);
  let hinting: HintingStats | undefined;
  if (withDevice) {
    const enabled = isHintMode(cfg) || reportingAllowed(views, driverDeclaresPoison(cfg)).allowed;
    hinting = readHintingStats(views, cfg.hinting, enabled, notes);
    hinting.settleMs = Math.round(settleMs);
    const st = settle as SettleReport | null;
    if (st) hinting.settle = { ok: st.ok, rssBytes: st.rssPages * PAGE_SIZE, excuses: st.excuses, unreportedBlocks: st.unreportedBlocks };
    if (isHintMode(cfg)) {
      const hs = readHintStats(views, cfg);
      hinting.hint = hs;
      // The generic fields, so consumers of `hinting` compare modes: a hint run
      // (naive: a round trip) counts as one report.
      hinting.reports = hs.runs;
      hinting.reportedBlocks = hs.blocksHinted;
      hinting.reportedBytes = hs.bytesHinted;
      hinting.roundTripNs = { p50: hs.runMs.p50 * 1e6, p99: hs.runMs.p99 * 1e6, max: hs.runMs.max * 1e6, total: hinting.roundTripNs.total };
      if (hintSettleRss >= 0) hinting.settle = { ok: hintOk, rssBytes: hintSettleRss, excuses: [], unreportedBlocks: 0 };
    }
  }
  const device = withDevice ? readDeviceCounters(views, cfg.hinting === 'aeration' ? 'aeration' : cfg.hinting === 'hint' ? 'free_page' : 'reporting', cfg.vqNumbering) : undefined;
  // The device checks every range it is told to discard against the struct pages.
  if (device) checks.get('device-allocated-range')!.runs += device.rangeChecks;
  return {
    seed: cfg.seed,
    config: cfg,
    ok: exitCode === 0,
    exitCode,
    violations,
    errors,
    rerun: rerunCommand(cfg),
    durationMs: Math.round(durationMs),
    totals: {
      ...sum,
      opsPerSec: sum.ops / secs,
      allocLatencyNs: { p50: percentile(allHist, 0.5, allMax), p99: percentile(allHist, 0.99, allMax), max: allMax },
    },
    cpus: cpuResults,
    memory: {
      totalBytes: cfg.memoryBytes,
      freeBytes: zone.freePages * PAGE_SIZE,
      freeBlocksByOrder: blocks,
      wmarkMinBytes: zone.wmarkMin * PAGE_SIZE,
      wmarkLowBytes: zone.wmarkLow * PAGE_SIZE,
      wmarkHighBytes: zone.wmarkHigh * PAGE_SIZE,
    },
    checks: [...checks.values()],
    host: { rssBytes: end.hostRssBytes, peakRssBytes: peakRss * PAGE_SIZE, refaults, firstTouchFaults, discardedBytes: device?.bytesDiscarded ?? 0 },
    device,
    hinting,
    notes,
    series,
    setupMs: Math.round(setupMs),
    ...(cfg.lockstat ? { locks: collectLockStats(views) } : {}),
    ...(schedResult ? { sched: schedResult } : {}),
    ...(cpuTime ? { cpuTime } : {}),
  };
}

export type { Views };

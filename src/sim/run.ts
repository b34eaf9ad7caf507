// Orchestration on the main thread (the `main` role): a run is six phases,
// each a method of Run below.
//
//   setUp    the shared buffer, the zone, the device handshake (the hinting
//            mode's), the scheduler's region, one pool thread per role
//   start    the start barrier: every role opened the buffer
//   run      the workload: free-running (sampling, mid-run checks, the
//            mode's liveness watch) or scheduled (src/sched/control.ts)
//   settle   the workload stops; the reporter and the device go on until the
//            mode's settled property holds or --settle-timeout passes
//   stop     STOPPING, every role returns, their findings are merged
//   collect  the final checks on the quiescent zone and the result
//
// Main talks to the roles only through the shared buffer (the run state
// word and its generation) and the pool's task results.

import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Piscina } from 'piscina';
import { ORACLES, type OracleName, type Violation } from '../base/errors.js';
import { checkConservation, checkFreeLists, type PageCensus } from '../check/structure.js';
import { readDeviceCounters } from '../host/balloon-device.js';
import { SITE_CHECK } from '../locking/sites.js';
import { LockStat, collectLockStats } from '../locking/lockstat.js';
import { Sync, publishRunState } from '../locking/sync.js';
import { Zone } from '../mm/buddy.js';
import { GuestMemory } from '../mm/memory.js';
import { type SchedOutcome, driveScheduled, haltSched, initSched, interruptSched, loadReplay, schedOutcome, startSched } from '../sched/control.js';
import type { ScheduleRecord } from '../sched/schedule.js';
import { FA_NR_FREE, FA_NR_REPORTED, FA_WORDS, HDR_READY, HDR_RUN_STATE, LOCK_ZONE, MAX_ORDER, METRIC_FAULTS, METRIC_INJECTED, METRIC_OPS, METRIC_OS_TID, METRIC_REFAULTS, METRIC_WAKE_CHECKS, PAGE_SIZE, RUN_ABORT, RUN_RUNNING, RUN_SETTLING, RUN_STOPPING, ZONE_FREE_AREA, ZONE_REPORTED_PAGES, computeLayout, createShared, metricBase, threadIds, type Views } from '../shm/layout.js';
import { type Config, cpuThreadCount, cpuThreadsInForce, hostedCpus, layoutParams, rerunCommand, schedParams } from './config.js';
import { type CpuTimeStats, type Schedstat, cpuTimeStats, ownTid, snapshot, threadDelta } from './cputime.js';
import { modeOf, settleTimeoutMs } from './modes/index.js';
import type { HintingMode, LivenessWatch, MainContext, SettleResult } from './modes/mode.js';
import type { HintingStats } from './modes/stats.js';
import { type CheckResult, type ExitCode, type FaultOutcome, type HostileOutcome, type RunResult, type SeriesPoint, interruptExitCode, readCpuMetrics } from './results.js';
import { type InjectionOutcome, injectionOutcomes } from '../check/inject.js';
import { type RoleName, type RoleResult, type RoleTask, roleThreadId, traceViolation } from './roles.js';
import { RM_RESETS, RM_RING_CHECKS, RM_SPURIOUS_IRQS } from '../mm/reporter-common.js';
import { DEVICE_FAULT_KINDS } from '../virtio/device-faults.js';
import { METRIC_HOSTILE_CHAINS, METRIC_HOSTILE_CHECKS, METRIC_HOSTILE_SKIPPED } from '../check/hostile.js';
import { METRIC_HINT_ID_CHECKS } from '../check/hint-cmd-id.js';
import { TK_CHECK, TK_COUNTER_MEM, TK_COUNTER_NR_FREE, TK_PHASE, TraceLockObserver, TraceWriter, initTraceOrigin, readTrace, setTracer } from '../locking/trace.js';
import { type ChromeTrace, chromeTrace } from './trace-export.js';

export type { CheckResult, CpuResult, Percentiles, RunResult, SeriesPoint } from './results.js';

export interface RunHooks {
  /** Called about every 100 ms with the latest sample (progress line). */
  onSample?: (p: SeriesPoint, elapsedMs: number) => void;
  /** Series sampling interval (default 100 ms). */
  sampleIntervalMs?: number;
  /** Milliseconds to wait for roles to stop after the run ends before declaring a hang (default: the wait timeout + 5 s). */
  stopGraceMs?: number;
  /**
   * Run on this buffer (zeroed first) instead of a new one; it must have this
   * configuration's layout size (sharedBufferFor()). Benchmarks use it so that
   * runs they compare share the same memory: which host pages back a fresh
   * 1 GiB buffer changes a memory-bound run's speed by more than what they
   * compare.
   */
  buffer?: SharedArrayBuffer;
  /**
   * Ends the workload phase early when aborted (its `reason`: the signal's
   * name, e.g. 'SIGINT'): settling, stopping and every end-of-run check then
   * run as usual and the result says `interrupted`. The CLI aborts it on the
   * first SIGINT/SIGTERM (src/cli/signals.ts); a loop of runs (compare,
   * stress) starts no new run once it fired.
   */
  interrupt?: AbortSignal;
}

/**
 * Series points a run keeps at most: past it every other point is dropped
 * and later samples are kept at twice the stride, so a 24 h soak's series
 * (and its JSON) is as large as a 7-minute run's instead of growing with
 * the duration. Sampling itself (progress, liveness) keeps its interval.
 */
export const SERIES_MAX_POINTS = 4096;

/** The compiled worker entry: dist/workers/role.js next to dist/src/sim/run.js (or from the TS sources under vitest). */
export function workerFile(): string {
  const here = fileURLToPath(import.meta.url);
  const dir = path.dirname(here);
  const candidates = here.endsWith('.ts') ? [path.resolve(dir, '../../dist/workers/role.js')] : [path.resolve(dir, '../../workers/role.js')];
  for (const c of candidates) if (existsSync(c)) return c;
  throw new Error(`worker entry not found (looked for ${candidates.join(', ')}); run 'npm run build' first`);
}

/** A buffer the size of `cfg`'s layout, to reuse across runs of the same shape (RunHooks.buffer). */
export function sharedBufferFor(cfg: Config): SharedArrayBuffer {
  return new SharedArrayBuffer(computeLayout(layoutParams(cfg)).totalBytes);
}

export async function runSimulation(cfg: Config, hooks: RunHooks = {}): Promise<RunResult> {
  const run = new Run(cfg, hooks);
  try {
    await run.start();
    await run.run();
    await run.settle();
    await run.stop();
    const result = run.collect();
    if (run.trace !== null) result.trace = run.chromeTrace(result);
    return result;
  } finally {
    run.dispose();
    if (run.trace !== null) setTracer(null);
    await run.pool.destroy().catch(() => undefined);
  }
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Resolves true if `p` settled within `ms`, false otherwise (the timer is cleared either way). */
async function within(p: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const ok = await Promise.race([p.then(() => true), new Promise<boolean>((res) => (timer = setTimeout(() => res(false), ms)))]);
  clearTimeout(timer);
  return ok;
}

class Run {
  readonly tSetup = performance.now();
  readonly views: Views;
  readonly sync: Sync;
  readonly zone: Zone;
  readonly mem: GuestMemory;
  readonly mode: HintingMode;
  readonly ctx: MainContext;
  readonly roles: { role: RoleName; index: number }[];
  readonly pool: Piscina;
  readonly results: (RoleResult | null)[];
  readonly tasks: Promise<void>[];
  readonly allDone: Promise<unknown>;
  /** Every role's task has returned (or its thread died). */
  allReturned = false;
  readonly replay: ScheduleRecord | null = null;
  readonly checks = new Map<OracleName, CheckResult>(ORACLES.map((o) => [o, { oracle: o, runs: 0, failures: 0 }]));
  readonly violations: Violation[] = [];
  readonly errors: string[] = [];
  readonly notes: string[] = [];
  readonly series: SeriesPoint[] = [];
  readonly sampleMs: number;
  readonly liveness: LivenessWatch | null;
  readonly grace: number;
  peakRssPages = 0;
  setupMs = 0;
  t0 = 0;
  durationMs = 0;
  settleMs = 0;
  settleResult: SettleResult | null = null;
  stopped = false;
  sched: SchedOutcome | undefined;
  cpuStart: (Schedstat | null)[] = [];
  cpuEnd: (Schedstat | null)[] = [];
  tids: number[] = [];
  /** Series sampling: every seriesStride-th sample is kept (SERIES_MAX_POINTS). */
  seriesStride = 1;
  samplesTaken = 0;
  /** When the interrupt fired (performance.now()), and when the workload phase ended because of it. */
  tInterrupt = -1;
  tInterruptSeen = -1;
  /** --trace: main's own ring (phases, checks, counters, main's lock holds); null with tracing off. */
  readonly trace: TraceWriter | null = null;

  /** Set-up: the buffer, the zone, the device handshake, the scheduler's region, the pool with every role's task. */
  constructor(
    readonly cfg: Config,
    readonly hooks: RunHooks,
  ) {
    const views = (this.views = createShared(layoutParams(cfg), hooks.buffer));
    const ids = threadIds(cfg.cpus);
    this.sync = new Sync(views, ids.main, { spin: cfg.spin, waitTimeoutMs: cfg.waitTimeoutMs });
    if (cfg.lockstat) this.sync.observer = new LockStat(views, ids.main);
    if (cfg.traceEvents > 0) {
      // The common time origin first: every role reads it when it builds its writer.
      initTraceOrigin(views);
      this.trace = new TraceWriter(views, ids.main);
      setTracer(this.trace);
      this.sync.observer = new TraceLockObserver(this.trace, views.layout.locks, this.sync.observer);
    }
    this.zone = new Zone(views, this.sync, { pcp: cfg.pcp, pcpBatch: cfg.pcpBatch, pcpHigh: cfg.pcpHigh });
    this.zone.init();
    this.mem = new GuestMemory(views);
    this.mode = modeOf(cfg.hinting);
    this.ctx = { views, zone: this.zone, sync: this.sync, mem: this.mem, config: cfg, settleTimeoutMs: settleTimeoutMs(cfg) };
    this.prepareMemory();
    // Device reset and feature negotiation before any role runs (DRIVER_OK).
    this.mode.setUpDevice(views, cfg);
    // --sched: the scheduler's region is set up before any role starts.
    if (cfg.sched !== 'off') {
      this.replay = cfg.replay ? loadReplay(cfg.replay, { rerun: rerunCommand(cfg), strategy: cfg.sched }, (p) => readFileSync(p, 'utf8')) : null;
      initSched(views, schedParams(cfg, this.ctx.settleTimeoutMs), this.replay);
    }
    this.liveness = this.mode.liveness(views, cfg);
    this.sampleMs = Math.max(1, hooks.sampleIntervalMs ?? 100);
    this.grace = hooks.stopGraceMs ?? cfg.waitTimeoutMs + 5000;
    // A thread per CPU, or --cpu-threads N of them, thread t running CPUs t, t + N, ... (src/sim/cpu-host.ts).
    this.roles = [...Array.from({ length: cpuThreadCount(cfg) }, (_, i) => ({ role: 'cpu' as const, index: i })), ...(this.mode.hasDevice ? [{ role: 'reporter' as const, index: 0 }, { role: 'device' as const, index: 0 }] : [])];
    this.pool = new Piscina({
      filename: workerFile(),
      // Every role is a long-running task that rendezvous with the others, so
      // the pool must hold exactly one thread per role (piscina's default of
      // 1.5 x cores would queue some roles behind others and deadlock).
      minThreads: this.roles.length,
      maxThreads: this.roles.length,
      concurrentTasksPerWorker: 1,
      idleTimeout: 60_000,
    });
    this.results = this.roles.map(() => null);
    this.tasks = this.roles.map((r, i) => {
      const task: RoleTask = { sab: views.sab, config: cfg, role: r.role, index: r.index };
      return this.pool.run(task).then(
        (res: RoleResult) => {
          this.results[i] = res;
        },
        (e: unknown) => {
          // The worker thread itself died (uncaught error, exit): a simulator failure.
          this.results[i] = { role: r.role, index: r.index, violations: [], error: `${r.role}[${r.index}] worker died: ${e instanceof Error ? e.message : String(e)}` };
          this.abort();
        },
      );
    });
    this.allDone = Promise.all(this.tasks);
    void this.allDone.then(() => (this.allReturned = true));
    // The moment the interrupt fired, for the reaction time in the result.
    const intr = hooks.interrupt;
    if (intr?.aborted) this.tInterrupt = performance.now();
    else intr?.addEventListener('abort', this.onInterrupt, { once: true });
  }

  private readonly onInterrupt = () => {
    this.tInterrupt = performance.now();
  };

  /** Let go of the caller's interrupt signal (a loop of runs shares one). */
  dispose(): void {
    this.hooks.interrupt?.removeEventListener('abort', this.onInterrupt);
  }

  /** Prefault, warm or poison guest memory before the roles start. */
  private prepareMemory(): void {
    const { cfg, views } = this;
    if ((cfg.prefault || cfg.warm) && !cfg.poison && this.hooks.buffer === undefined) {
      // Our process's page faults on the shared buffer are Linux's, not the
      // modelled host's: take them all now, outside the measured run. The
      // host model's resident bitmap is untouched. (A reused buffer was just
      // zeroed whole by createShared, which took those faults already.)
      views.guestF64.fill(0);
    }
    if (cfg.poison) {
      // Boot with page poisoning: every free page is written with the pattern,
      // which faults all of guest memory in on the host.
      this.mem.fillPoison(0, views.layout.pages, cfg.poisonByte);
      this.mem.markAllResident();
    } else if (cfg.warm) {
      // A guest that has run a while: it touched every page once (their
      // bytes are zero, as the host's fresh pages were), so the host backs
      // all of guest memory and no touch faults until something is discarded.
      this.mem.markAllResident();
    }
  }

  // ---------- helpers ----------

  private runState(): number {
    return Atomics.load(this.views.header, HDR_RUN_STATE);
  }

  /** Publish a run state and wake every role parked on the state generation. */
  private publish(state: number): void {
    if (this.trace !== null) this.trace.instant(TK_PHASE, state);
    publishRunState(this.views, state);
  }

  /** Stop everyone at once: a violation or failure was found. */
  private abort(): void {
    this.publish(RUN_ABORT);
  }

  private noteCheck(oracle: OracleName, found: Violation[], runs = 1): void {
    const c = this.checks.get(oracle)!;
    c.runs += runs;
    c.failures += found.length > 0 ? 1 : 0;
    this.violations.push(...found);
    if (this.trace !== null) for (const v of found) traceViolation(this.trace, v);
  }

  /** A role as messages name it: cpu[3], or with --cpu-threads the thread and its CPUs: cpu-thread[1](cpu 1,3,5,7). */
  private roleName(r: { role: RoleName; index: number }): string {
    return r.role === 'cpu' && cpuThreadsInForce(this.cfg) > 0 ? `cpu-thread[${r.index}](cpu ${hostedCpus(this.cfg, r.index).join(',')})` : `${r.role}[${r.index}]`;
  }

  private roleRunning(role: RoleName): boolean {
    const i = this.roles.findIndex((r) => r.role === role);
    return i >= 0 && this.results[i] === null;
  }

  private sample(tMs: number): SeriesPoint {
    const { views, cfg } = this;
    const rss = this.mem.residentPages();
    this.peakRssPages = Math.max(this.peakRssPages, rss);
    const free = this.zone.freePages;
    let ops = 0;
    let refaults = 0;
    const cpuOps: number[] = [];
    for (let c = 0; c < cfg.cpus; c++) {
      const o = views.metrics[metricBase(c) + METRIC_OPS];
      cpuOps.push(o);
      ops += o;
      refaults += views.metrics[metricBase(c) + METRIC_REFAULTS];
    }
    if (this.trace !== null) this.traceCounters(rss * PAGE_SIZE, free * PAGE_SIZE, views.zone[ZONE_REPORTED_PAGES] * PAGE_SIZE);
    return {
      tMs: Math.round(tMs),
      hostRssBytes: rss * PAGE_SIZE,
      guestUsedBytes: (views.layout.pages - free) * PAGE_SIZE,
      guestFreeBytes: free * PAGE_SIZE,
      reportedFreeBytes: views.zone[ZONE_REPORTED_PAGES] * PAGE_SIZE,
      ops,
      cpuOps,
      refaults,
    };
  }

  /** --trace: memory counters and nr_free per order, one timestamp (racy reads of the zone words: a sample, not a check). */
  private traceCounters(rssBytes: number, freeBytes: number, reportedBytes: number): void {
    const w = this.trace!;
    const t = w.nowUs();
    w.emit(TK_COUNTER_MEM, t, -1, rssBytes, freeBytes, reportedBytes);
    const z = this.views.zone;
    for (let o = 0; o < MAX_ORDER; o++) w.emit(TK_COUNTER_NR_FREE, t, -1, o, z[ZONE_FREE_AREA + o * FA_WORDS + FA_NR_FREE], z[ZONE_FREE_AREA + o * FA_WORDS + FA_NR_REPORTED]);
  }

  /** --trace: every ring read back (the roles have returned) as a Chrome trace. */
  chromeTrace(r: RunResult): ChromeTrace {
    this.trace!.publish();
    return chromeTrace(readTrace(this.views), { cpus: this.cfg.cpus, seed: r.seed, rerun: r.rerun, hinting: this.cfg.hinting, violations: r.violations, errors: r.errors, roles: this.roles.flatMap((x) => (x.role === 'cpu' ? hostedCpus(this.cfg, x.index) : [roleThreadId({ ...x, config: this.cfg })])) });
  }

  /** Sample into the series (bounded: SERIES_MAX_POINTS) and the progress hook. */
  private record(elapsedMs: number): void {
    const p = this.sample(elapsedMs);
    if (this.samplesTaken++ % this.seriesStride === 0) {
      this.series.push(p);
      if (this.series.length >= SERIES_MAX_POINTS) {
        // Keep samples 0, 2s, 4s, ... (s the old stride): even positions.
        let k = 0;
        for (let i = 0; i < this.series.length; i += 2) this.series[k++] = this.series[i];
        this.series.length = k;
        this.seriesStride *= 2;
      }
    }
    this.hooks.onSample?.(p, elapsedMs);
  }

  /** The interrupt fired: the workload phase must end now. Notes when main first acted on it. */
  private interrupted(): boolean {
    if (!this.hooks.interrupt?.aborted) return false;
    if (this.tInterruptSeen < 0) this.tInterruptSeen = performance.now();
    return true;
  }

  /** Sleep up to `ms`, cut short by the interrupt so main reacts to it at once. */
  private pause(ms: number): Promise<void> {
    const intr = this.hooks.interrupt;
    if (intr === undefined) return sleep(ms);
    if (intr.aborted) return Promise.resolve();
    return new Promise<void>((resolve) => {
      const done = () => {
        clearTimeout(timer);
        intr.removeEventListener('abort', done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      intr.addEventListener('abort', done, { once: true });
    });
  }

  /** The free-list and conservation checks under the zone lock (lock statistics show it as 'oracle_check'). */
  private structuralCheck(): PageCensus {
    const t0 = this.trace !== null ? this.trace.nowUs() : 0;
    this.sync.lock(LOCK_ZONE, SITE_CHECK);
    try {
      this.noteCheck('free-list', checkFreeLists(this.zone));
      const { census, violations } = checkConservation(this.zone);
      this.noteCheck('conservation', violations);
      return census;
    } finally {
      this.sync.unlock(LOCK_ZONE);
      if (this.trace !== null) this.trace.since(TK_CHECK, t0);
    }
  }

  /** One evaluation of the mode's liveness watch; true if it found a violation (the run is aborted). */
  private watchLiveness(): boolean {
    if (this.liveness === null) return false;
    const v = this.liveness.check(performance.now(), this.roleRunning('reporter'));
    this.noteCheck('liveness', v === null ? [] : [v]);
    if (v === null) return false;
    this.abort();
    return true;
  }

  // ---------- phases ----------

  /** Start barrier: wait (without blocking the event loop, which piscina needs) for every role to open the buffer. */
  async start(): Promise<void> {
    const { views, cfg } = this;
    const readyDeadline = performance.now() + Math.max(30_000, cfg.waitTimeoutMs);
    while (Atomics.load(views.header, HDR_READY) < this.roles.length && !this.allReturned) {
      if (performance.now() > readyDeadline) {
        this.errors.push(`only ${Atomics.load(views.header, HDR_READY)} of ${this.roles.length} roles started within ${Math.round(readyDeadline - this.tSetup)} ms`);
        break;
      }
      await sleep(2);
    }
    this.setupMs = performance.now() - this.tSetup;
    // Per-thread schedstat around the workload window (src/sim/cputime.ts):
    // each role published its OS thread id before it reported ready.
    this.tids = [...this.roles.map((r) => views.metrics[metricBase(roleThreadId({ ...r, config: cfg })) + METRIC_OS_TID]), ownTid()];
    if (this.errors.length > 0 && cfg.sched !== 'off') haltSched(views);
  }

  /** The workload phase: publish RUNNING, then watch it free-running or scheduled until it ends. */
  async run(): Promise<void> {
    if (this.errors.length > 0) return;
    // Go: publish RUNNING and wake every role parked on the state word.
    this.publish(RUN_RUNNING);
    this.t0 = performance.now();
    this.cpuStart = snapshot(this.tids);
    const elapsed = this.cfg.sched !== 'off' ? await this.runScheduled() : await this.runFree();
    this.durationMs = Math.min(performance.now() - this.t0, Math.max(elapsed, 0));
    this.cpuEnd = snapshot(this.tids);
  }

  /** Free-running: sample, run the mid-run checks and the liveness watch, until --duration or an abort. */
  private async runFree(): Promise<number> {
    const { cfg } = this;
    let elapsed = 0;
    let nextSample = 0;
    let nextCheck = cfg.checkIntervalMs > 0 ? cfg.checkIntervalMs : Infinity;
    for (;;) {
      elapsed = performance.now() - this.t0;
      if (this.runState() !== RUN_RUNNING || this.allReturned || elapsed >= cfg.durationMs || this.interrupted()) break;
      if (elapsed >= nextSample) {
        this.record(elapsed);
        nextSample += this.sampleMs;
      }
      if (this.watchLiveness()) break;
      if (elapsed >= nextCheck) {
        const before = this.violations.length;
        this.structuralCheck();
        if (this.violations.length > before) {
          this.abort();
          break;
        }
        nextCheck += cfg.checkIntervalMs;
      }
      // At most 50 ms: main notices an abort, the end of --duration or an interrupt within that.
      await this.pause(Math.max(1, Math.min(nextSample, nextCheck, cfg.durationMs, elapsed + 50) - elapsed));
    }
    return elapsed;
  }

  /**
   * Scheduled (src/sched/): hand out the first run token; phases and mid-run
   * checks then happen inside the scheduler at logical times, and main only
   * samples and watches for progress until every role returned.
   */
  private async runScheduled(): Promise<number> {
    startSched(this.views);
    let nextSample = 0;
    let asked = false;
    const err = await driveScheduled(this.views, this.cfg, () => this.allReturned, () => {
      // Interrupted: the scheduler ends RUNNING at its next step (logical
      // time); the run then settles and stops under it as usual.
      if (!asked && this.interrupted()) {
        interruptSched(this.views);
        asked = true;
      }
      const el = performance.now() - this.t0;
      if (el >= nextSample) {
        this.record(el);
        nextSample += 100;
      }
    });
    if (err) this.errors.push(err);
    return performance.now() - this.t0;
  }

  /**
   * Settling (modes with a device): the workload stops, every CPU frees what
   * it holds, and the reporter and the device get a bounded time to reach
   * the mode's settled property before it is checked (reported-accounting).
   */
  async settle(): Promise<void> {
    const rule = this.mode.settle;
    if (rule === null || this.runState() !== RUN_RUNNING || this.errors.length > 0) return;
    this.publish(RUN_SETTLING);
    if (!(await within(Promise.all(this.tasks.filter((_, i) => this.roles[i].role === 'cpu')), this.grace))) {
      const stuck = this.roles.filter((r, i) => r.role === 'cpu' && this.results[i] === null).map((r) => this.roleName(r));
      this.errors.push(`CPUs did not stop within ${this.grace} ms after the workload ended: ${stuck.join(', ')} (hang)`);
    }
    const tSettle = performance.now();
    let nextSample = tSettle - this.t0;
    while (this.errors.length === 0 && this.runState() === RUN_SETTLING) {
      const now = performance.now();
      if (now - this.t0 >= nextSample) {
        this.record(now - this.t0);
        nextSample += this.sampleMs;
      }
      if (this.watchLiveness()) break;
      const reporterGone = !this.roleRunning('reporter');
      if (rule.ready(this.views) || reporterGone) {
        this.settleResult = rule.check(this.ctx, false, now - tSettle);
        // Passed, or failed in a state nothing can change any more: done
        // now; --settle-timeout bounds only states that may still move.
        if (this.settleResult.ok || reporterGone || (rule.stable?.(this.views) ?? false)) break;
      }
      if (now - tSettle >= this.ctx.settleTimeoutMs) break;
      await sleep(Math.min(20, this.sampleMs));
    }
    this.settleMs = performance.now() - tSettle;
    if (this.runState() !== RUN_SETTLING) return;
    this.settleResult = rule.check(this.ctx, true, this.settleMs);
    const v = [...this.settleResult.violations];
    if (v.length === 0 && rule.confirm && this.roleRunning('reporter')) {
      const busy = await rule.confirm(this.ctx, () => this.runState() === RUN_SETTLING);
      if (busy !== null) v.push(busy);
    }
    this.noteCheck('reported-accounting', v);
    if (v.length > 0) this.abort();
  }

  /** Stop: everyone leaves its loop, frees what it holds and returns; merge what the roles found. */
  async stop(): Promise<void> {
    const { views, cfg } = this;
    // An aborted run stays ABORT (the roles treat both as stop); wake everyone either way.
    this.publish(this.runState() === RUN_ABORT ? RUN_ABORT : RUN_STOPPING);
    // A CPU already found hung while settling will not stop now: do not wait the full grace twice.
    const finalGrace = this.errors.some((e) => e.endsWith('(hang)')) ? Math.min(this.grace, 1000) : this.grace;
    this.stopped = await within(this.allDone, finalGrace);
    if (!this.stopped) {
      const stuck = this.roles.filter((_, i) => this.results[i] === null).map((r) => this.roleName(r));
      this.errors.push(`roles did not stop within ${finalGrace} ms after the run ended: ${stuck.join(', ')} (hang)`);
    }
    for (const r of this.results) {
      if (!r) continue;
      this.violations.push(...r.violations);
      for (const v of r.violations) this.checks.get(v.oracle)!.failures++;
      if (r.error) this.errors.push(r.error);
      if (r.notes) this.notes.push(...r.notes.map((n) => `${r.role}: ${n}`));
    }
    if (cfg.sched !== 'off') this.scheduledOutcome();
  }

  /**
   * The scheduler's own findings (deadlock, roles that never stopped, replay
   * divergence) and, once it ended SETTLING, the mode's settled property on
   * the zone exactly as the scheduled run left it.
   */
  private scheduledOutcome(): void {
    const { views, cfg } = this;
    const aborted = this.runState() === RUN_ABORT;
    const s = (this.sched = schedOutcome(views, schedParams(cfg, this.ctx.settleTimeoutMs), this.replay));
    this.noteCheck('liveness', s.violations, 0);
    this.errors.push(...s.errors);
    this.checks.get('free-list')!.runs += s.checks;
    this.checks.get('conservation')!.runs += s.checks;
    const rule = this.mode.settle;
    if (!this.stopped || s.settled === null || aborted || rule === null || !rule.scheduledCheck || this.errors.length > 0) return;
    const where = `checked when the scheduled run settled at step ${s.steps}: ${s.settled}; seed ${cfg.seed}, schedule ${s.schedule}`;
    this.settleResult = rule.scheduledCheck(this.ctx, s.settled, where);
    this.settleMs = 0;
    this.noteCheck('reported-accounting', this.settleResult.violations);
  }

  /** Final checks on the quiescent zone (only if every role has stopped) and the result. */
  collect(): RunResult {
    const { views, cfg, zone } = this;
    const aborted = this.runState() === RUN_ABORT;
    let census: PageCensus | null = null;
    if (this.stopped) {
      census = this.structuralCheck();
      if (!aborted && this.violations.length === 0 && census.allocated + census.pcp !== 0) {
        this.noteCheck('conservation', [{ oracle: 'conservation', message: `${census.allocated} pages still allocated and ${census.pcp} on pcp lists after every CPU freed all it held: pages leaked` }], 0);
      }
    }
    const end = this.sample(this.durationMs);
    this.series.push(end);
    const cpu = readCpuMetrics(views, cfg.cpus, this.durationMs);
    for (const [oracle, runs] of Object.entries(cpu.runs)) this.checks.get(oracle as OracleName)!.runs += runs;
    // Strict waits every role ended by a wake-up it verified (docs/DESIGN.md §4).
    for (let t = 0; t < views.layout.threads; t++) this.checks.get('lost-wakeup')!.runs += views.metrics[metricBase(t) + METRIC_WAKE_CHECKS];
    // --hostile: bursts the hostile-guest oracle checked (src/check/hostile.ts).
    const hostile = cfg.hostile > 0 ? this.hostileOutcome() : undefined;
    if (hostile) this.checks.get('hostile-guest')!.runs += hostile.checks;
    const device = this.mode.hasDevice && this.mode.queueKind !== null ? readDeviceCounters(views, this.mode.queueKind, cfg.vqNumbering) : undefined;
    if (device) {
      // The driver validates every used element it collects (virtqueue_get_buf);
      // the device checks every range it acts on (device-allocated-range).
      this.checks.get('ring')!.runs += views.metrics[metricBase(threadIds(cfg.cpus).reporter) + RM_RING_CHECKS];
      this.checks.get('device-allocated-range')!.runs += device.rangeChecks;
    }
    const hinting = this.mode.hasDevice ? this.mode.stats(views, cfg, this.notes) : undefined;
    if (hinting) {
      // Free page hint with --hint-device qemu: the hinted pages the migration oracle checked.
      this.checks.get('migration')!.runs += hinting.hint?.device?.migration?.checks ?? 0;
      // Free page hint: the ranges the hint-cmd-id oracle checked (src/check/hint-cmd-id.ts).
      this.checks.get('hint-cmd-id')!.runs += views.metrics[metricBase(threadIds(cfg.cpus).reporter) + METRIC_HINT_ID_CHECKS];
      hinting.settleMs = Math.round(this.settleMs);
      hinting.settleTimeoutMs = this.ctx.settleTimeoutMs;
      if (this.settleResult) hinting.settle = this.settleResult.summary;
    }
    const faults = this.faultOutcome(hinting);
    const interrupted = this.tInterruptSeen >= 0 || this.tInterrupt >= 0;
    const injections = this.injectionOutcomes(hinting, device?.chains ?? 0);
    // A run whose injection never acted tested nothing: exit 1, not a pass.
    // An interrupted run is not a pass either (its own exit status), so
    // there it is reported but does not decide the status.
    const vacuous = injections.some((x) => !x.acted) && !interrupted;
    const exitCode: ExitCode = this.errors.length > 0 ? 3 : this.violations.length > 0 || vacuous ? 1 : interrupted ? interruptExitCode(this.hooks.interrupt?.reason) : 0;
    return {
      seed: cfg.seed,
      config: cfg,
      ok: exitCode === 0,
      exitCode,
      interrupted,
      ...(interrupted ? { interrupt: this.interruptInfo() } : {}),
      injections,
      violations: this.violations,
      errors: this.errors,
      rerun: rerunCommand(cfg),
      durationMs: Math.round(this.durationMs),
      totals: cpu.totals,
      cpus: cpu.rows,
      memory: {
        totalBytes: cfg.memoryBytes,
        freeBytes: zone.freePages * PAGE_SIZE,
        freeBlocksByOrder: census?.blocksByOrder ?? new Array(MAX_ORDER).fill(0),
        wmarkMinBytes: zone.wmarkMin * PAGE_SIZE,
        wmarkLowBytes: zone.wmarkLow * PAGE_SIZE,
        wmarkHighBytes: zone.wmarkHigh * PAGE_SIZE,
      },
      checks: [...this.checks.values()],
      host: { rssBytes: end.hostRssBytes, peakRssBytes: this.peakRssPages * PAGE_SIZE, refaults: cpu.refaults, firstTouchFaults: cpu.firstTouchFaults, discardedBytes: device?.bytesDiscarded ?? 0 },
      device,
      hinting,
      notes: this.notes,
      series: this.series,
      setupMs: Math.round(this.setupMs),
      ...(cfg.lockstat ? { locks: collectLockStats(views) } : {}),
      ...(this.sched ? { sched: this.sched } : {}),
      ...(faults ? { faults } : {}),
      ...(hostile ? { hostile } : {}),
      ...this.cpuTime(cpu.totals.ops),
    };
  }

  /** --hostile: what the hostile guest published and the oracle checked, from the driver thread's slot. */
  private hostileOutcome(): HostileOutcome {
    const m = this.views.metrics;
    const b = metricBase(threadIds(this.cfg.cpus).reporter);
    return { rate: this.cfg.hostile, checks: m[b + METRIC_HOSTILE_CHECKS], chains: m[b + METRIC_HOSTILE_CHAINS], skipped: m[b + METRIC_HOSTILE_SKIPPED] };
  }

  /** --device-faults: how often each kind acted (summed over the slots of the sides that rolled it). */
  private faultOutcome(hinting: HintingStats | undefined): FaultOutcome | undefined {
    const { cfg, views } = this;
    if (!cfg.deviceFaults?.length) return undefined;
    const m = views.metrics;
    const acted = (k: number) => {
      let n = 0;
      for (let t = 0; t < views.layout.threads; t++) n += m[metricBase(t) + METRIC_FAULTS + k];
      return n;
    };
    const rep = metricBase(threadIds(cfg.cpus).reporter);
    return {
      kinds: cfg.deviceFaults.map((f) => ({ kind: f.kind, rate: f.rate, ...(f.kind === 'ack-delay' ? { maxMs: f.maxMs } : {}), acted: acted(DEVICE_FAULT_KINDS.indexOf(f.kind)) })),
      spuriousInterrupts: m[rep + RM_SPURIOUS_IRQS],
      resets: m[rep + RM_RESETS],
      failedReports: hinting?.failedReports ?? 0,
    };
  }

  /** Whether each --inject acted: its counter summed over every thread's metric slot. */
  private injectionOutcomes(hinting: HintingStats | undefined, deviceChains: number): InjectionOutcome[] {
    const { cfg, views } = this;
    if (cfg.inject.length === 0) return [];
    const count = (counter: number) => {
      let n = 0;
      for (let t = 0; t < views.layout.threads; t++) n += views.metrics[metricBase(t) + METRIC_INJECTED + counter];
      return n;
    };
    // What the run did instead, for the reason line of an injection that never acted.
    const facts: string[] = [];
    if (hinting === undefined) facts.push(`hinting ${cfg.hinting} runs no reporter`);
    else if (!hinting.enabled) facts.push(`hinting stayed disabled: ${this.mode.enabled(views, cfg).why}`);
    else if (hinting.hint) facts.push(`the balloon made ${hinting.hint.runs} hint runs`);
    else facts.push(`the reporter made ${hinting.reports} reports in ${hinting.passes} passes${hinting.passesSkippedBelowWatermark > 0 ? `, ${hinting.passesSkippedBelowWatermark} skipped with zone free below low watermark + capacity << order` : ''}`);
    if (hinting !== undefined) facts.push(`the device completed ${deviceChains} requests`);
    if (this.durationMs < cfg.durationMs - 1) facts.push(`the workload ran ${Math.round(this.durationMs)} of ${cfg.durationMs} ms`);
    return injectionOutcomes(cfg.inject, count, facts.join('; '));
  }

  /** How the interrupt went: its signal, the workload time when it fired and how long main took to end the workload. */
  private interruptInfo(): { signal: string; atMs: number; reactionMs: number | null } {
    const reason = this.hooks.interrupt?.reason;
    const signal = typeof reason === 'string' ? reason : 'interrupt';
    const at = this.tInterrupt >= 0 ? this.tInterrupt : this.tInterruptSeen;
    // Fired before the workload began: it ends at once (reaction from the start of the phase).
    const seen = this.tInterruptSeen;
    return { signal, atMs: Math.round(Math.max(0, at - this.t0)), reactionMs: seen >= 0 && at >= 0 ? Math.round((seen - Math.max(at, this.t0)) * 10) / 10 : null };
  }

  /** Per-role CPU time in the workload window, where schedstat could be read for every thread. */
  private cpuTime(ops: number): { cpuTime?: CpuTimeStats } {
    const { cpuStart, cpuEnd, tids, roles } = this;
    if (cpuStart.length === 0 || cpuEnd.length !== tids.length || !cpuStart.every((x) => x !== null) || !cpuEnd.every((x) => x !== null)) return {};
    const windowNs = this.durationMs * 1e6;
    const d = (i: number) => threadDelta(cpuStart[i]!, cpuEnd[i]!, windowNs);
    const of = (role: string) => roles.flatMap((r, i) => (r.role === role ? [d(i)] : []));
    return { cpuTime: cpuTimeStats(windowNs, { cpus: of('cpu'), reporter: of('reporter')[0], device: of('device')[0], main: d(tids.length - 1) }, ops) };
  }
}

export type { Views };

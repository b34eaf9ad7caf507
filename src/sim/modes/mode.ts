// One object per --hinting mode, behind one interface, as Linux's
// page_reporting_dev_info is one ops struct: what the mode offers the
// device, which reporter and device it starts, what it hooks into a CPU's
// allocator, whether it is enabled once negotiated, how the run settles and
// what it checks then, and its statistics. src/sim/run.ts and
// src/sim/roles.ts ask the mode; they have no branch on its name.

import type { Violation } from '../../base/errors.js';
import type { Zone } from '../../mm/buddy.js';
import type { GuestMemory } from '../../mm/memory.js';
import type { Sync } from '../../locking/sync.js';
import type { QueueKind } from '../../host/balloon-device.js';
import type { Views } from '../../shm/layout.js';
import type { Config, HintingModeName } from '../config.js';
import type { HintingStats, SettleSummary } from './stats.js';

/** What a role thread hands the mode (src/sim/roles.ts). */
export interface RoleContext {
  views: Views;
  zone: Zone;
  sync: Sync;
  config: Config;
  /** This thread's id. */
  thread: number;
  /** True while the run is RUNNING or SETTLING: the reporter and the device serve. */
  serving: () => boolean;
}

/** What main hands the mode (src/sim/run.ts). */
export interface MainContext {
  views: Views;
  zone: Zone;
  sync: Sync;
  mem: GuestMemory;
  config: Config;
  /** The run's --settle-timeout, resolved (auto: src/sim/modes/index.ts settleTimeoutMs). */
  settleTimeoutMs: number;
}

/** A device role: serves until `stop()`; a violation it found is returned. */
export interface DeviceRole {
  run(stop: () => boolean): Violation | null;
}

export interface SettleResult {
  ok: boolean;
  violations: Violation[];
  summary: SettleSummary;
}

/** How a mode's run settles after the workload (the reported-accounting oracle). */
export interface SettleRule {
  /** --settle-timeout auto: the longest this mode may take to settle a correct run of `c` (ms), where that exceeds the 10 s floor. */
  autoTimeoutMs?(c: Config): number;
  /** Cheap, racy: is it worth checking now? (reporting: the reporter is idle with nothing isolated) */
  ready(views: Views): boolean;
  /** The quiescent property, checked now; takes the locks it needs. `final`: the last check, at the settle timeout. */
  check(ctx: MainContext, final: boolean, settleMs: number): SettleResult;
  /**
   * Cheap, racy, asked after a check that failed while `ready`: nothing can
   * change the property any more (reporting: every CPU has exited and the
   * reporter is idle with no request pending and nothing isolated, so no
   * pass will run). Then the failure is final at once instead of at
   * --settle-timeout, which stays the bound for states that may still move.
   */
  stable?(views: Views): boolean;
  /**
   * After the final check passed: what must still hold for a while (reporting:
   * a settled reporter sends nothing more). Free-running runs only.
   */
  confirm?(ctx: MainContext, settling: () => boolean): Promise<Violation | null>;
  /**
   * Scheduled runs (--sched): the check once the scheduler ended settling,
   * 'idle' (the mode's hintingQuiet held) or 'timeout' (the logical
   * --settle-timeout passed).
   */
  scheduledCheck?(ctx: MainContext, settled: 'idle' | 'timeout', where: string): SettleResult;
}

/** Reporting liveness, watched by main while the run goes on. */
export interface LivenessWatch {
  /** One evaluation (counted as one run of the `liveness` oracle); a violation ends the run. */
  check(nowMs: number, reporterRunning: boolean): Violation | null;
}

export interface HintingMode {
  readonly name: HintingModeName;
  /** One line for --help (the README and docs/GUIDE.md tables are written by hand from the same words). */
  readonly summary: string;
  /** The reporter and the device roles run (every mode but off); the run settles after the workload. */
  readonly hasDevice: boolean;
  /** The request-to-pass delay when --report-delay is not given: the kernel's for this mode (ms), or null where there is none. */
  readonly defaultReportDelayMs: number | null;
  /** The queue the device serves (JSON device.queueKind). */
  readonly queueKind: QueueKind | null;
  /** This mode's rules across flags: a one-line usage error, or null. */
  configError(c: Config): string | null;
  /** Main, before any role starts: device reset, the offer, the driver's acceptance, the queue index. */
  setUpDevice(views: Views, c: Config): void;
  /** Once negotiated: is hinting on, and if not, why (upstream keeps reporting off when poisoning without PAGE_POISON). */
  enabled(views: Views, c: Config): { allowed: boolean; why: string };
  /** A CPU thread: hooks into its allocator (the free notifier, the shrinker). */
  installCpuHooks(ctx: RoleContext): void;
  /** The reporter thread's work until the run stops; returns notes for the user. */
  runReporter(ctx: RoleContext): string[];
  /** The device thread's device. */
  makeDevice(ctx: RoleContext): DeviceRole;
  /** Scheduled runs: the hinting side has nothing left to do (read by the scheduler while settling). */
  hintingQuiet(views: Views): boolean;
  /** Main: a liveness watch for the run, or null. */
  liveness(views: Views, c: Config): LivenessWatch | null;
  readonly settle: SettleRule | null;
  /** Main, after every role stopped: the `hinting` section of the result. */
  stats(views: Views, c: Config, notes: string[]): HintingStats;
}

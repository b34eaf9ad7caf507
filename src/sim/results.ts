// What a run returns (the result contract in docs/DESIGN.md; src/cli/report.ts
// prints it, toJson() shapes it), and the per-thread metric slots read into
// it once every role has stopped.

import { CM_SLOT_WAIT_NS_TOTAL, CM_SLOT_YIELDS } from '../locking/cpu-slots.js';
import { CM_HOST_IDLE_SLEEPS, CM_HOST_SWITCHES } from './cpu-host.js';
import { HIST_BUCKETS, accumulate, percentile, slotPercentiles } from '../base/hist.js';
import type { OracleName, Violation } from '../base/errors.js';
import type { DeviceCounters } from '../host/balloon-device.js';
import type { LockClassStats } from '../locking/lockstat.js';
import type { SchedOutcome } from '../sched/control.js';
import { METRIC_ALLOCS, METRIC_ALLOC_FAILS, METRIC_ALLOC_NS_MAX, METRIC_FREES, METRIC_HIST_BASE, METRIC_HOST_FAULTS, METRIC_OPS, METRIC_OWNERSHIP_CHECKS, METRIC_PAGES_TOUCHED, METRIC_POISON_CHECKS, METRIC_REFAULTS, METRIC_STAMP_CHECKS, metricBase, type Views, METRIC_THP_FALLBACKS } from '../shm/layout.js';
import type { Config } from './config.js';
import type { InjectionOutcome } from '../check/inject.js';
import type { CpuTimeStats } from './cputime.js';
import type { ChromeTrace } from './trace-export.js';
import type { HintingStats } from './modes/stats.js';

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

export interface Totals {
  ops: number;
  opsPerSec: number;
  allocs: number;
  frees: number;
  allocFailures: number;
  pagesTouched: number;
  /** --thp always: 2 MiB faults that fell back to order-0 pages (no order-9 block free). */
  thpFallbacks: number;
  /** --cpu-slots: slots the CPUs gave up to a waiting CPU, and their time waiting for one (0 with slots off). */
  cpuSlotYields: number;
  cpuSlotWaitNs: number;
  /** --cpu-threads: CPUs resumed by their thread (a slice or a wake-up each), and sleeps of a thread whose CPUs all slept (0 with a thread per CPU). */
  cpuHostSwitches: number;
  cpuHostIdleSleeps: number;
  allocLatencyNs: Percentiles;
}

/**
 * The exit status contract: 0 ok, 1 a violation (or an injection that never
 * acted), 3 a simulator failure, 130 / 143 interrupted by SIGINT / SIGTERM
 * with every oracle that ran passing (128 + the signal number, as a shell
 * reports a process the signal ended).
 */
export type ExitCode = 0 | 1 | 3 | 130 | 143;

/** The exit status of an interrupted run that found nothing: 143 for SIGTERM, 130 otherwise (SIGINT, or an interrupt without a signal). */
export const interruptExitCode = (reason: unknown): 130 | 143 => (reason === 'SIGTERM' ? 143 : 130);

export interface RunResult {
  seed: number;
  config: Config;
  ok: boolean;
  /** The exit status contract (ExitCode). */
  exitCode: ExitCode;
  /** The workload phase was ended early by an interrupt (RunHooks.interrupt): durationMs is the workload time actually run. */
  interrupted: boolean;
  /** With `interrupted`: the signal, the workload time when it came and how long main took to end the workload (ms). */
  interrupt?: { signal: string; atMs: number; reactionMs: number | null };
  /** Per --inject: whether its injected code path ran (src/check/inject.ts); empty without --inject. */
  injections: InjectionOutcome[];
  violations: Violation[];
  errors: string[];
  rerun: string;
  durationMs: number;
  totals: Totals;
  cpus: CpuResult[];
  memory: { totalBytes: number; freeBytes: number; freeBlocksByOrder: number[]; wmarkMinBytes: number; wmarkLowBytes: number; wmarkHighBytes: number };
  checks: CheckResult[];
  /** refaults: faults on pages the host had discarded; firstTouchFaults: faults on pages the host never backed. */
  host: { rssBytes: number; peakRssBytes: number; refaults: number; firstTouchFaults: number; discardedBytes: number };
  /** Device counters; present when the device role ran (hinting != off). */
  device?: DeviceCounters;
  /** The hinting mode's statistics (hinting != off). */
  hinting?: HintingStats;
  /** What roles want the user to know (e.g. why reporting stayed off). */
  notes: string[];
  series: SeriesPoint[];
  setupMs: number;
  /** Per lock class, with --lockstat (src/locking/lockstat.ts). */
  locks?: LockClassStats[];
  /** With --sched: the scheduler's trace hash, counters and the schedule (src/sched/control.ts). */
  sched?: SchedOutcome;
  /** Per-role CPU time in the workload window (src/sim/cputime.ts); absent where schedstat is not readable. */
  cpuTime?: CpuTimeStats;
  /** --trace: the run's event trace (src/sim/trace-export.ts); written to its own file, never part of --json. */
  trace?: ChromeTrace;
  /** --device-faults: each kind's rate and how often it acted, and what the driver went through (docs/DESIGN.md §17). */
  faults?: FaultOutcome;
  /** --hostile: the hostile guest's bursts (docs/DESIGN.md §6, hostile-guest). */
  hostile?: HostileOutcome;
}

export interface HostileOutcome {
  rate: number;
  /** Checks the hostile-guest oracle made: bursts (and bogus avail idx episodes) checked. */
  checks: number;
  /** Avail entries the hostile published. */
  chains: number;
  /** Bursts skipped: no block for the arena. */
  skipped: number;
}

export interface FaultOutcome {
  kinds: { kind: string; rate: number; maxMs?: number; acted: number }[];
  /** Interrupts that woke the driver with no used element (irq-spurious). */
  spuriousInterrupts: number;
  /** Device resets the driver went through (reset). */
  resets: number;
  /** Reports the queue refused (report-error), as the reporter counted failed reports. */
  failedReports: number;
}

export interface SeriesPoint {
  tMs: number;
  hostRssBytes: number;
  guestUsedBytes: number;
  guestFreeBytes: number;
  reportedFreeBytes: number;
  ops: number;
  /** Ops of each CPU so far (cumulative): ops/s per CPU over time is the difference of two samples. */
  cpuOps: number[];
  /** Host refaults so far, all CPUs (cumulative): faults on pages the host had discarded. */
  refaults: number;
}

/** Every CPU's counters: per-CPU rows, totals, and the per-page oracles' run counts. */
export function readCpuMetrics(views: Views, cpus: number, durationMs: number): { rows: CpuResult[]; totals: Totals; runs: Partial<Record<OracleName, number>>; refaults: number; firstTouchFaults: number } {
  const m = views.metrics;
  const rows: CpuResult[] = [];
  const allHist = new Float64Array(HIST_BUCKETS);
  let allMax = 0;
  const runs = { stamp: 0, poison: 0, ownership: 0 };
  let refaults = 0;
  let firstTouchFaults = 0;
  const sum = { ops: 0, allocs: 0, frees: 0, allocFailures: 0, pagesTouched: 0, thpFallbacks: 0, cpuSlotYields: 0, cpuSlotWaitNs: 0, cpuHostSwitches: 0, cpuHostIdleSleeps: 0 };
  const secs = Math.max(durationMs, 1) / 1000;
  for (let c = 0; c < cpus; c++) {
    const b = metricBase(c);
    accumulate(allHist, m, b + METRIC_HIST_BASE);
    const max = m[b + METRIC_ALLOC_NS_MAX];
    allMax = Math.max(allMax, max);
    rows.push({
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
    sum.thpFallbacks += m[b + METRIC_THP_FALLBACKS];
    sum.cpuSlotYields += m[b + CM_SLOT_YIELDS];
    sum.cpuSlotWaitNs += m[b + CM_SLOT_WAIT_NS_TOTAL];
    sum.cpuHostSwitches += m[b + CM_HOST_SWITCHES];
    sum.cpuHostIdleSleeps += m[b + CM_HOST_IDLE_SLEEPS];
    runs.stamp += m[b + METRIC_STAMP_CHECKS];
    runs.poison += m[b + METRIC_POISON_CHECKS];
    runs.ownership += m[b + METRIC_OWNERSHIP_CHECKS];
    refaults += m[b + METRIC_REFAULTS];
    firstTouchFaults += m[b + METRIC_HOST_FAULTS];
  }
  const totals: Totals = { ...sum, opsPerSec: sum.ops / secs, allocLatencyNs: { p50: percentile(allHist, 0.5, allMax), p99: percentile(allHist, 0.99, allMax), max: allMax } };
  return { rows, totals, runs, refaults, firstTouchFaults };
}

// What the two page reporting modes (reporting, aeration) share: reporting
// stays off when poisoning without PAGE_POISON, the device, the settled
// property (reported-accounting) with its reporter-quiet confirmation, and
// the reporter's statistics. Each mode's own worker, notifier, liveness
// watch and quiet condition are in src/sim/modes/reporting.ts and aeration.ts.

import type { Violation } from '../../base/errors.js';
import { driverDeclaresPoison } from '../../check/inject.js';
import { checkReportedAccounting, checkReporterQuiet, type SettleOptions } from '../../check/settle.js';
import { reportingAllowed } from '../../guest/balloon-driver.js';
import { BalloonDevice, keepReason } from '../../host/balloon-device.js';
import { SITE_CHECK } from '../../locking/sites.js';
import { passesToReportGuest } from '../../mm/page-reporting.js';
import { RM_BLOCKS, RM_ISOLATE_WMARK, RM_PASSES, RM_REPORTS } from '../../mm/reporter-common.js';
import { DEV_POISON_VAL, LOCK_ZONE, MAX_ORDER, PAGE_SIZE, REP_AER_HINT_PFN1, REP_HOSTILE_ARENA_PFN1, REP_LAST_PASS_FAILED, metricBase, threadIds, type Views } from '../../shm/layout.js';
import type { Config } from '../config.js';
import { deviceOptions } from './common.js';
import type { DeviceRole, LivenessWatch, MainContext, RoleContext, SettleResult, SettleRule } from './mode.js';
import { type HintingStats, readReporterStats } from './stats.js';

export type ReporterMode = 'reporting' | 'aeration';

/** The kernel's request-to-pass delay: PAGE_REPORTING_DELAY (2 * HZ), and aeration v1's HZ / 10 (__aerator_notify). */
export const KERNEL_DELAY_MS: Record<ReporterMode, number> = { reporting: 2000, aeration: 100 };
/** --report-delay, or the kernel's for the mode. */
export const delayOf = (mode: ReporterMode, c: Config): number => c.reportDelayMs ?? KERNEL_DELAY_MS[mode];

/** Reporting is off when the guest poisons freed pages and PAGE_POISON was not negotiated (as upstream). */
export const reporterEnabled = (views: Views, c: Config) => reportingAllowed(views, driverDeclaresPoison(c));

export function makeReportingDevice(mode: ReporterMode, ctx: RoleContext): DeviceRole {
  return new BalloonDevice(ctx.views, deviceOptions(ctx, mode));
}

/**
 * Liveness of a reporter: while `pending(views)` (a request waits), some
 * progress (a pass or a report) must happen within the delay plus the wait
 * bound; a request nobody serves is a lost wake-up. None while reporting is
 * disabled (nothing could serve a request).
 */
export function requestLiveness(mode: ReporterMode, views: Views, c: Config, pending: (views: Views) => boolean): LivenessWatch | null {
  if (!reporterEnabled(views, c).allowed) return null;
  const slot = metricBase(threadIds(c.cpus).reporter);
  const bound = delayOf(mode, c) + c.waitTimeoutMs;
  let lastProgress = -1;
  let pendingSince = -1;
  return {
    check(now: number, reporterRunning: boolean): Violation | null {
      const progress = views.metrics[slot + RM_PASSES] + views.metrics[slot + RM_REPORTS];
      const waiting = pending(views);
      if (!waiting || progress !== lastProgress) {
        pendingSince = waiting ? now : -1;
        lastProgress = progress;
        return null;
      }
      if (pendingSince < 0) pendingSince = now;
      if (!reporterRunning || now - pendingSince <= bound) return null;
      return { oracle: 'liveness', message: `reporting was requested but no pass ran for ${Math.round(now - pendingSince)} ms (bound: --report-delay + --wait-timeout = ${bound} ms): a lost wake-up` };
    },
  };
}

function settleOptions(mode: ReporterMode, views: Views, c: Config, teardownPfns: readonly number[]): SettleOptions {
  const on = reporterEnabled(views, c).allowed;
  return {
    mode,
    reportOrder: c.reportOrder,
    capacity: c.capacity,
    reportingDisabled: !on,
    // The device's own rule, on the poison_val it negotiated (0 without PAGE_POISON).
    deviceKeepsPages: on ? keepReason(views.device[DEV_POISON_VAL], c) : null,
    isolationsRefused: () => views.metrics[metricBase(threadIds(c.cpus).reporter) + RM_ISOLATE_WMARK],
    teardownPfns,
    // Only when reports can fail by fault: without it a failed pass is a bug the check must see.
    ...(c.deviceFaults?.some((f) => f.kind === 'report-error') ? { lastPassFailed: () => Atomics.load(views.reporting, REP_LAST_PASS_FAILED) === 1 } : {}),
  };
}

/** reported-accounting (src/check/settle.ts) under the zone lock, as the structural checks are. */
function checkAccounting(mode: ReporterMode, ctx: MainContext, teardownPfns: readonly number[]): SettleResult {
  ctx.sync.lock(LOCK_ZONE, SITE_CHECK);
  try {
    const r = checkReportedAccounting(ctx.zone, ctx.mem, settleOptions(mode, ctx.views, ctx.config, teardownPfns));
    return { ok: r.ok, violations: r.violations, summary: { ok: r.ok, rssBytes: r.rssPages * PAGE_SIZE, excuses: r.excuses, unreportedBlocks: r.unreportedBlocks } };
  } finally {
    ctx.sync.unlock(LOCK_ZONE);
  }
}

/**
 * Pages the driver frees when it stops, after the settle point: aeration's
 * hint buffer page and the hostile guest's arena (--hostile).
 */
export function teardownPfns(views: Views): number[] {
  const out: number[] = [];
  for (const w of [REP_AER_HINT_PFN1, REP_HOSTILE_ARENA_PFN1]) {
    const p1 = Atomics.load(views.reporting, w);
    if (p1 > 0) out.push(p1 - 1);
  }
  return out;
}

/**
 * The settle rule of a reporter mode; `quiet(views)`: its worker is idle with
 * nothing isolated; `teardown(views)`: pages the driver frees when it stops.
 */
export function reportingSettle(mode: ReporterMode, quiet: (views: Views) => boolean, teardown: (views: Views) => readonly number[] = () => []): SettleRule {
  return {
    // Upstream reporting waits PAGE_REPORTING_DELAY between passes and
    // reports about a sixteenth of each list per pass (passesToReportGuest):
    // a large guest needs more passes than the floor allows at the 2 s
    // delay (8 GiB: 15 at most, 30 s). Two delays more: the first request's,
    // and one for the reporter's own time. Aeration v1 repeats its cycles
    // without delay while work remains: the floor.
    autoTimeoutMs: mode === 'reporting' ? (c) => (passesToReportGuest(c.memoryBytes / PAGE_SIZE, c.reportOrder, c.capacity, MAX_ORDER) + 2) * delayOf(mode, c) : undefined,
    ready: quiet,
    // Settling runs after every CPU exited: no free path raises a request
    // any more, so an idle reporter (IDLE / refcnt 0, nothing isolated)
    // stays idle and the property cannot change (docs/DESIGN.md §2, settle).
    stable: quiet,
    check(ctx, final, settleMs) {
      const r = checkAccounting(mode, ctx, teardown(ctx.views));
      if (final) r.violations = r.violations.map((x) => ({ ...x, message: `${x.message} (checked ${Math.round(settleMs)} ms after the workload stopped; --settle-timeout ${ctx.settleTimeoutMs} ms)` }));
      return r;
    },
    // Everything is reported but the reporter is still busy: it must not
    // send anything more (a reporter that re-sends Reported memory never idles).
    async confirm(ctx, settling) {
      if (!reporterEnabled(ctx.views, ctx.config).allowed) return null;
      return checkReporterQuiet(ctx.views, metricBase(threadIds(ctx.config.cpus).reporter), delayOf(mode, ctx.config), () => quiet(ctx.views), settling);
    },
    scheduledCheck(ctx, settled, where) {
      const r = checkAccounting(mode, ctx, teardown(ctx.views));
      const v = (r.violations = r.violations.map((x) => ({ ...x, message: `${x.message} (${where})` })));
      // The scheduled form of the reporter-quiet check: every free block is
      // Reported and every CPU has exited, yet the reporter never went idle
      // in the whole logical --settle-timeout: it keeps sending Reported memory.
      const c = ctx.config;
      if (v.length === 0 && settled === 'timeout' && reporterEnabled(ctx.views, c).allowed && !quiet(ctx.views)) {
        v.push({ oracle: 'reported-accounting', message: `every free block was Reported and every CPU had exited, yet the reporter did not go idle within the logical --settle-timeout (${ctx.settleTimeoutMs} ms; ${ctx.views.metrics[metricBase(threadIds(c.cpus).reporter) + RM_BLOCKS]} blocks sent in all): Reported memory is being reported again (${where})` });
      }
      return r;
    },
  };
}

export function reportingStats(mode: ReporterMode, views: Views, c: Config, notes: string[]): HintingStats {
  return readReporterStats(views, mode, reporterEnabled(views, c).allowed, notes);
}

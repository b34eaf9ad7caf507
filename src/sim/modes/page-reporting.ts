// What the two page reporting modes (reporting, aeration) share: the
// reporter thread (mm/page-reporting.ts behind the balloon driver's one
// report() contract), the free notifier on each CPU, the liveness watch of
// requests, the settled property (reported-accounting), and the reporter's
// statistics. src/sim/modes/reporting.ts and aeration.ts are the modes.

import type { Violation } from '../../base/errors.js';
import { driverDeclaresPoison, injected, reporterInjections } from '../../check/inject.js';
import { checkReportedAccounting, checkReporterQuiet, type SettleOptions } from '../../check/settle.js';
import { VirtioBalloonDriver, reportingAllowed } from '../../guest/balloon-driver.js';
import { BalloonDevice, keepReason } from '../../host/balloon-device.js';
import { SITE_CHECK } from '../../locking/sites.js';
import { GuestMemory } from '../../mm/memory.js';
import { PAGE_REPORTING_IDLE, PAGE_REPORTING_REQUESTED, PageReporting, RM_BLOCKS, RM_ISOLATE_WMARK, RM_PASSES, type ReportingOptions, makeFreeNotifier, requestReporting } from '../../mm/page-reporting.js';
import { DEV_POISON_VAL, LOCK_ZONE, NIL, PAGE_SIZE, REP_STATE, ZONE_ISOLATED_PAGES, metricBase, threadIds, type Views } from '../../shm/layout.js';
import type { Config } from '../config.js';
import { deviceOptions } from './common.js';
import type { DeviceRole, LivenessWatch, MainContext, RoleContext, SettleResult, SettleRule } from './mode.js';
import { type HintingStats, readReporterStats } from './stats.js';

export type ReporterMode = 'reporting' | 'aeration';

/** The reporter's options for a run of `mode`. */
export function reportingOptions(mode: ReporterMode, c: Config): ReportingOptions {
  return { mode, capacity: c.capacity, reportOrder: c.reportOrder, delayMs: c.reportDelayMs, inject: reporterInjections(c), lateGenRead: process.env.BALLOON_SIM_SELFTEST === 'late-gen-read' };
}

/** Reporting is off when the guest poisons freed pages and PAGE_POISON was not negotiated (as upstream). */
export const reporterEnabled = (views: Views, c: Config) => reportingAllowed(views, driverDeclaresPoison(c));

/** page_reporting_notify_free() on this CPU's free path, when reporting is on. */
export function installFreeNotifier(mode: ReporterMode, ctx: RoleContext): void {
  if (!reporterEnabled(ctx.views, ctx.config).allowed) return;
  ctx.zone.onHighOrderFree = makeFreeNotifier(ctx.views, reportingOptions(mode, ctx.config), ctx.thread);
  ctx.zone.reportOrder = ctx.config.reportOrder;
}

/**
 * The reporter thread: page_reporting_register() (initial flush request),
 * then the worker loop until the run ends. Returns notes for the user.
 */
export function runPageReporter(mode: ReporterMode, ctx: RoleContext): string[] {
  const { views, zone, sync, config, thread, serving } = ctx;
  const allowed = reporterEnabled(views, config);
  if (!allowed.allowed) return [allowed.why];
  const opts = reportingOptions(mode, config);
  let hintPfn = NIL;
  if (mode === 'aeration') {
    // vb->hints[] lives in guest memory: one page the driver owns for the run.
    hintPfn = zone.alloc(0, thread);
    if (hintPfn === NIL) throw new Error('reporter: no page for the aeration hint buffer');
    // The driver writes it, so the host backs it: a first-touch fault like
    // any other guest write (host RSS counts it while it is allocated).
    new GuestMemory(views).touch(hintPfn);
  }
  try {
    const driver = new VirtioBalloonDriver(views, sync, { mode, ackTimeoutMs: config.waitTimeoutMs, spin: config.spin, serving, hintBufferPfn: hintPfn, noAckWait: injected(config, 'no-ack-wait') });
    const pr = new PageReporting(views, zone, driver, opts, thread);
    requestReporting(views);
    pr.run();
  } finally {
    if (hintPfn !== NIL) zone.free(hintPfn, 0, thread);
  }
  return [];
}

export function makeReportingDevice(mode: ReporterMode, ctx: RoleContext): DeviceRole {
  return new BalloonDevice(ctx.views, deviceOptions(ctx, mode));
}

/** Settling: the reporter is idle with nothing isolated. */
export const reporterQuiet = (views: Views): boolean => Atomics.load(views.reporting, REP_STATE) === PAGE_REPORTING_IDLE && views.zone[ZONE_ISOLATED_PAGES] === 0;

/**
 * Liveness of reporting: a request must lead to a pass within the delay plus
 * the wait bound; a request nobody serves is a lost wake-up. Off while
 * reporting is disabled (nothing could serve a request).
 */
export function requestLiveness(views: Views, c: Config): LivenessWatch | null {
  if (!reporterEnabled(views, c).allowed) return null;
  const slot = metricBase(threadIds(c.cpus).reporter);
  const bound = c.reportDelayMs + c.waitTimeoutMs;
  let lastPasses = -1;
  let requestedSince = -1;
  return {
    check(now: number, reporterRunning: boolean): Violation | null {
      const passes = views.metrics[slot + RM_PASSES];
      const st = Atomics.load(views.reporting, REP_STATE);
      if (st !== PAGE_REPORTING_REQUESTED || passes !== lastPasses) {
        requestedSince = st === PAGE_REPORTING_REQUESTED ? now : -1;
        lastPasses = passes;
        return null;
      }
      if (requestedSince < 0) requestedSince = now;
      if (!reporterRunning || now - requestedSince <= bound) return null;
      return { oracle: 'liveness', message: `reporting was requested but no pass ran for ${Math.round(now - requestedSince)} ms (bound: --report-delay + --wait-timeout = ${bound} ms): a lost wake-up` };
    },
  };
}

function settleOptions(mode: ReporterMode, views: Views, c: Config): SettleOptions {
  const on = reporterEnabled(views, c).allowed;
  return {
    mode,
    reportOrder: c.reportOrder,
    capacity: c.capacity,
    reportingDisabled: !on,
    // The device's own rule, on the poison_val it negotiated (0 without PAGE_POISON).
    deviceKeepsPages: on ? keepReason(views.device[DEV_POISON_VAL], c) : null,
    isolationsRefused: () => views.metrics[metricBase(threadIds(c.cpus).reporter) + RM_ISOLATE_WMARK],
  };
}

/** reported-accounting (src/check/settle.ts) under the zone lock, as the structural checks are. */
function checkAccounting(mode: ReporterMode, ctx: MainContext): SettleResult {
  ctx.sync.lock(LOCK_ZONE, SITE_CHECK);
  try {
    const r = checkReportedAccounting(ctx.zone, ctx.mem, settleOptions(mode, ctx.views, ctx.config));
    return { ok: r.ok, violations: r.violations, summary: { ok: r.ok, rssBytes: r.rssPages * PAGE_SIZE, excuses: r.excuses, unreportedBlocks: r.unreportedBlocks } };
  } finally {
    ctx.sync.unlock(LOCK_ZONE);
  }
}

export function reportingSettle(mode: ReporterMode): SettleRule {
  return {
    ready: reporterQuiet,
    check(ctx, final, settleMs) {
      const r = checkAccounting(mode, ctx);
      if (final) r.violations = r.violations.map((x) => ({ ...x, message: `${x.message} (checked ${Math.round(settleMs)} ms after the workload stopped; --settle-timeout ${ctx.config.settleTimeoutMs} ms)` }));
      return r;
    },
    // Everything is reported but the reporter is still busy: it must not
    // send anything more (a reporter that re-sends Reported memory never idles).
    async confirm(ctx, settling) {
      if (!reporterEnabled(ctx.views, ctx.config).allowed) return null;
      return checkReporterQuiet(ctx.views, metricBase(threadIds(ctx.config.cpus).reporter), ctx.config.reportDelayMs, settling);
    },
    scheduledCheck(ctx, settled, where) {
      const r = checkAccounting(mode, ctx);
      const v = (r.violations = r.violations.map((x) => ({ ...x, message: `${x.message} (${where})` })));
      // The scheduled form of the reporter-quiet check: every free block is
      // Reported and every CPU has exited, yet the reporter never went idle
      // in the whole logical --settle-timeout: it keeps sending Reported memory.
      const c = ctx.config;
      if (v.length === 0 && settled === 'timeout' && reporterEnabled(ctx.views, c).allowed && Atomics.load(ctx.views.reporting, REP_STATE) !== PAGE_REPORTING_IDLE) {
        v.push({ oracle: 'reported-accounting', message: `every free block was Reported and every CPU had exited, yet the reporter did not go idle within the logical --settle-timeout (${c.settleTimeoutMs} ms; ${ctx.views.metrics[metricBase(threadIds(c.cpus).reporter) + RM_BLOCKS]} blocks sent in all): Reported memory is being reported again (${where})` });
      }
      return r;
    },
  };
}

export function reportingStats(mode: ReporterMode, views: Views, c: Config, notes: string[]): HintingStats {
  return readReporterStats(views, mode, reporterEnabled(views, c).allowed, notes);
}

// --hinting reporting: upstream free page reporting (mm/page_reporting.c,
// Linux 5.7+; virtio_balloon's REPORTING queue): a chain of device-writable
// descriptors, one per isolated free block.

import { injected, reporterInjections } from '../../check/inject.js';
import { VirtioBalloonDriver } from '../../guest/balloon-driver.js';
import { PAGE_REPORTING_IDLE, PAGE_REPORTING_REQUESTED, PageReporting, type ReportingOptions, makeFreeNotifier, requestReporting } from '../../mm/page-reporting.js';
import { NIL, REP_STATE, ZONE_ISOLATED_PAGES, type Views } from '../../shm/layout.js';
import type { Config } from '../config.js';
import { driverExtras, setUpBalloonDevice } from './common.js';
import type { HintingMode } from './mode.js';
import { KERNEL_DELAY_MS, delayOf, makeReportingDevice, reporterEnabled, reportingSettle, reportingStats, requestLiveness, teardownPfns } from './page-reporting.js';

/** The reporter's options for a run. */
export function reportingOptions(c: Config): ReportingOptions {
  return { capacity: c.capacity, reportOrder: c.reportOrder, delayMs: delayOf('reporting', c), inject: reporterInjections(c), lateGenRead: process.env.BALLOON_SIM_SELFTEST === 'late-gen-read', noNotifyRequest: process.env.BALLOON_SIM_SELFTEST === 'no-notify-request', flagFailed: process.env.BALLOON_SIM_SELFTEST === 'fault-flag-failed' };
}

/** Idle with nothing isolated: the state machine is IDLE. */
const quiet = (views: Views): boolean => Atomics.load(views.reporting, REP_STATE) === PAGE_REPORTING_IDLE && views.zone[ZONE_ISOLATED_PAGES] === 0;

export const reporting: HintingMode = {
  name: 'reporting',
  summary: 'upstream free page reporting (mm/page_reporting.c, Linux 5.7+): isolated free blocks go to the device as one chain of device-writable descriptors',
  hasDevice: true,
  // PAGE_REPORTING_DELAY (2 * HZ), mm/page_reporting.c.
  defaultReportDelayMs: KERNEL_DELAY_MS.reporting,
  queueKind: 'reporting',
  configError: () => null,
  setUpDevice: (views, c) => setUpBalloonDevice(views, c),
  enabled: reporterEnabled,
  installCpuHooks(ctx) {
    // page_reporting_notify_free() on this CPU's free path, when reporting is on.
    if (!reporterEnabled(ctx.views, ctx.config).allowed) return;
    ctx.zone.onHighOrderFree = makeFreeNotifier(ctx.views, reportingOptions(ctx.config), ctx.thread);
    ctx.zone.reportOrder = ctx.config.reportOrder;
  },
  runReporter(ctx) {
    const { views, zone, sync, config, thread, serving } = ctx;
    const allowed = reporterEnabled(views, config);
    if (!allowed.allowed) return [allowed.why];
    const extras = driverExtras(ctx);
    try {
      const driver = new VirtioBalloonDriver(views, sync, { mode: 'reporting', ackTimeoutMs: config.waitTimeoutMs, spin: config.spin, serving, hintBufferPfn: NIL, noAckWait: injected(config, 'no-ack-wait'), ...extras.opts });
      const pr = new PageReporting(views, zone, driver, reportingOptions(config), thread);
      // page_reporting_register(): the initial flush request.
      requestReporting(views);
      pr.run();
    } finally {
      extras.release();
    }
    return [];
  },
  makeDevice: (ctx) => makeReportingDevice('reporting', ctx),
  hintingQuiet: quiet,
  liveness: (views, c) => requestLiveness('reporting', views, c, (v) => Atomics.load(v.reporting, REP_STATE) === PAGE_REPORTING_REQUESTED),
  settle: reportingSettle('reporting', quiet, teardownPfns),
  stats: (views, c, notes) => reportingStats('reporting', views, c, notes),
};

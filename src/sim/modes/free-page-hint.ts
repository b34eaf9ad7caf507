// What --hinting hint and --hinting naive share: the balloon's settled
// property. Settled: the workload has stopped, the device starts no new run,
// and the run in progress has ended with DONE (the driver is idle, the
// device is not REQUESTED/START/STOP), and the balloon holds no page
// (ZONE_BALLOON_PAGES 0): everything hinted went back to the buddy
// allocator. For naive the loop stops when the workload does, so the balloon
// must be empty. Not settling within --settle-timeout is a
// `reported-accounting` violation (DONE lost or hinted pages stranded).

import type { Violation } from '../../base/errors.js';
import { HINT_DRV_IDLE } from '../../guest/balloon-pages.js';
import { FREE_PAGE_HINT_S_REQUESTED, FREE_PAGE_HINT_S_START, FREE_PAGE_HINT_S_STOP } from '../../host/free-page-hint-device.js';
import { DEV_HINT_STATUS, PAGE_SIZE, REP_HINT_DRIVER_STATE, ZONE_BALLOON_PAGES, type Views } from '../../shm/layout.js';
import type { SettleRule } from './mode.js';

export function balloonSettled(views: Views): boolean {
  const st = Atomics.load(views.device, DEV_HINT_STATUS);
  return (
    Atomics.load(views.zone, ZONE_BALLOON_PAGES) === 0 &&
    Atomics.load(views.reporting, REP_HINT_DRIVER_STATE) === HINT_DRV_IDLE &&
    st !== FREE_PAGE_HINT_S_REQUESTED &&
    st !== FREE_PAGE_HINT_S_START &&
    st !== FREE_PAGE_HINT_S_STOP
  );
}

function balloonSettleViolation(views: Views, settleMs: number, timeoutMs: number): Violation {
  const pages = Atomics.load(views.zone, ZONE_BALLOON_PAGES);
  const st = Atomics.load(views.device, DEV_HINT_STATUS);
  return {
    oracle: 'reported-accounting',
    message: `the balloon still holds ${pages} pages (device hint status ${st}, driver state ${Atomics.load(views.reporting, REP_HINT_DRIVER_STATE)}) ${Math.round(settleMs)} ms after the workload stopped (--settle-timeout ${timeoutMs} ms): DONE lost or hinted pages never returned`,
  };
}

export const balloonSettle: SettleRule = {
  ready: () => true,
  check(ctx, final, settleMs) {
    const ok = balloonSettled(ctx.views);
    const violations = final && !ok ? [balloonSettleViolation(ctx.views, settleMs, ctx.settleTimeoutMs)] : [];
    return { ok, violations, summary: { ok, rssBytes: ctx.mem.residentPages() * PAGE_SIZE, excuses: [], unreportedBlocks: 0 } };
  },
};

// --hinting aeration: aeration v1 as posted (Alexander Duyck, June 2019,
// patches 4/6 to 6/6: src/mm/aeration.ts), up to 32 hints
// `guest_phys_addr | order` in one device-readable buffer, balloon_lock
// held around fill, kick and wait-for-ack; triggered by a free area's count
// of raw (unaerated) blocks; no watermark checks.

import { injected, reporterInjections } from '../../check/inject.js';
import { VirtioBalloonDriver } from '../../guest/balloon-driver.js';
import { Aerator, makeAeratorNotifier, aeratorStartup } from '../../mm/aeration.js';
import { GuestMemory } from '../../mm/memory.js';
import { NIL, REP_AER_REFCNT, ZONE_AERATION_REQUESTED, ZONE_ISOLATED_PAGES, type Views, REP_AER_HINT_PFN1 } from '../../shm/layout.js';
import { HINTS_MAX } from '../../virtio/balloon-abi.js';
import { driverExtras, setUpBalloonDevice } from './common.js';
import type { HintingMode } from './mode.js';
import { KERNEL_DELAY_MS, delayOf, makeReportingDevice, reporterEnabled, reportingSettle, reportingStats, requestLiveness, teardownPfns } from './page-reporting.js';

/** Idle: no reference held (no zone requested, the worker not cycling) and nothing isolated. */
const quiet = (views: Views): boolean => Atomics.load(views.reporting, REP_AER_REFCNT) === 0 && views.zone[ZONE_ISOLATED_PAGES] === 0;

export const aeration: HintingMode = {
  name: 'aeration',
  summary: 'aeration v1 as posted (Duyck, 2019): a free area with 32 raw blocks requests the zone; the aerator takes raw blocks above the boundary, highest order first, with no watermark check, and sends up to 32 hints in one device-readable buffer under balloon_lock',
  hasDevice: true,
  // __aerator_notify(): schedule_delayed_work(&aerator_work, HZ / 10).
  defaultReportDelayMs: KERNEL_DELAY_MS.aeration,
  queueKind: 'aeration',
  configError: (c) => (c.capacity > HINTS_MAX ? `--capacity: aeration sends at most ${HINTS_MAX} hints per buffer (VIRTIO_BALLOON_ARRAY_HINTS_MAX); accepted: a power of 2 from 1 to ${HINTS_MAX}` : null),
  setUpDevice: (views, c) => setUpBalloonDevice(views, c),
  enabled: reporterEnabled,
  installCpuHooks(ctx) {
    // aerator_notify_free() on this CPU's free path (__free_one_page), when aeration is on.
    if (!reporterEnabled(ctx.views, ctx.config).allowed) return;
    ctx.zone.onHighOrderFree = makeAeratorNotifier(ctx.views, ctx.config.reportOrder, ctx.thread);
    ctx.zone.reportOrder = ctx.config.reportOrder;
  },
  runReporter(ctx) {
    const { views, zone, sync, config, thread, serving } = ctx;
    const allowed = reporterEnabled(views, config);
    if (!allowed.allowed) return [allowed.why];
    // vb->hints[] lives in guest memory: one page the driver owns for the run.
    const hintPfn = zone.alloc(0, thread);
    if (hintPfn === NIL) throw new Error('reporter: no page for the aeration hint buffer');
    // The driver writes it, so the host backs it: a first-touch fault like
    // any other guest write (host RSS counts it while it is allocated).
    new GuestMemory(views).touch(hintPfn);
    Atomics.store(views.reporting, REP_AER_HINT_PFN1, hintPfn + 1);
    const extras = driverExtras(ctx);
    try {
      const driver = new VirtioBalloonDriver(views, sync, { mode: 'aeration', ackTimeoutMs: config.waitTimeoutMs, spin: config.spin, serving, hintBufferPfn: hintPfn, noAckWait: injected(config, 'no-ack-wait'), ...extras.opts });
      // The aerator's own put-backs notify through it; its zone raises no
      // request of its own (the hint page it frees when it stops is teardown).
      zone.aerationMinOrder = config.reportOrder;
      const aerator = new Aerator(views, zone, driver, { capacity: config.capacity, minOrder: config.reportOrder, delayMs: delayOf('aeration', config), inject: reporterInjections(config) }, thread);
      // aerator_startup(): aerate every zone once the device is up.
      aeratorStartup(views, zone);
      aerator.run();
    } finally {
      extras.release();
      zone.free(hintPfn, 0, thread);
    }
    return [];
  },
  makeDevice: (ctx) => makeReportingDevice('aeration', ctx),
  hintingQuiet: quiet,
  liveness: (views, c) => requestLiveness('aeration', views, c, (v) => v.zone[ZONE_AERATION_REQUESTED] !== 0),
  settle: reportingSettle('aeration', quiet, teardownPfns),
  stats: (views, c, notes) => reportingStats('aeration', views, c, notes),
};

// --hinting hint: VIRTIO_BALLOON_F_FREE_PAGE_HINT (Wei Wang; QEMU live
// migration, Firecracker): the device starts a hint run with a new
// free_page_hint_cmd_id; the driver allocates max-order blocks into the
// balloon and sends each until allocation fails, then holds them until DONE;
// a shrinker gives them back under memory pressure.

import { FreePageHintDriver, makeShrinker } from '../../guest/free-page-hint.js';
import { FreePageHintDevice, hintOfferedFeatures } from '../../host/free-page-hint-device.js';
import { VIRTIO_BALLOON_F_FREE_PAGE_HINT, freePageQueueIndex, hasFeature } from '../../virtio/balloon-abi.js';
import { deviceOptions, noDiscardRefused, notScheduled, setUpBalloonDevice } from './common.js';
import { balloonSettle, balloonSettled } from './free-page-hint.js';
import type { HintingMode } from './mode.js';
import { DEV_VQ_INDEX } from '../../shm/layout.js';
import { readHintStats, readReporterStats, type HintingStats } from './stats.js';

export const hint: HintingMode = {
  name: 'hint',
  summary: 'VIRTIO_BALLOON_F_FREE_PAGE_HINT (host-initiated, QEMU live migration / Firecracker): the driver hands max-order blocks to the device until allocation fails and holds them until DONE',
  hasDevice: true,
  defaultReportDelayMs: null,
  queueKind: 'free_page',
  configError: (c) => notScheduled(c) ?? noDiscardRefused(c),
  // Hint mode offers FREE_PAGE_HINT instead of REPORTING (one hinting
  // queue), and its queue is the free_page_vq.
  setUpDevice: (views, c) =>
    setUpBalloonDevice(views, c, {
      offer: hintOfferedFeatures,
      queueIndex: (v, negotiated) => (hasFeature(negotiated, VIRTIO_BALLOON_F_FREE_PAGE_HINT) ? freePageQueueIndex(c.vqNumbering, negotiated) : v.device[DEV_VQ_INDEX]),
    }),
  enabled: () => ({ allowed: true, why: '' }),
  installCpuHooks(ctx) {
    // The balloon's shrinker on this CPU's allocation slow path (src/guest/free-page-hint.ts).
    const c = ctx.config;
    ctx.zone.shrinker = makeShrinker(ctx.views, ctx.zone, { poisonByte: c.poison ? c.poisonByte : null, blocksPerCall: c.hintShrinkBlocks, waitTimeoutMs: c.waitTimeoutMs }, ctx.thread);
  },
  runReporter(ctx) {
    const c = ctx.config;
    new FreePageHintDriver(ctx.views, ctx.zone, ctx.thread, { ackTimeoutMs: c.waitTimeoutMs, spin: c.spin, serving: ctx.serving, poisonByte: c.poison ? c.poisonByte : null }).run();
    return [];
  },
  makeDevice: (ctx) => new FreePageHintDevice(ctx.views, deviceOptions(ctx, 'free_page'), { intervalMs: ctx.config.hintIntervalMs, action: ctx.config.hintAction, doneAfterMs: ctx.config.hintDoneAfterMs }),
  hintingQuiet: balloonSettled,
  liveness: () => null,
  settle: balloonSettle,
  stats: (views, c, notes) => hintStats(views, c, notes, false),
};

/** hint and naive: the generic fields filled from the hint section, so consumers of `hinting` compare modes (a hint run, or a naive round trip, counts as one report). */
export function hintStats(views: Parameters<HintingMode['stats']>[0], c: Parameters<HintingMode['stats']>[1], notes: string[], naive: boolean): HintingStats {
  const h = readReporterStats(views, c.hinting, true, notes);
  const hs = readHintStats(views, naive, c.hintAction);
  return { ...h, hint: hs, reports: hs.runs, reportedBlocks: hs.blocksHinted, reportedBytes: hs.bytesHinted, roundTripNs: { p50: hs.runMs.p50 * 1e6, p99: hs.runMs.p99 * 1e6, max: hs.runMs.max * 1e6, total: h.roundTripNs.total } };
}

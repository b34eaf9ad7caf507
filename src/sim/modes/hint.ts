// --hinting hint: VIRTIO_BALLOON_F_FREE_PAGE_HINT (Wei Wang; QEMU live
// migration, Firecracker): the device starts a hint run with a new
// free_page_hint_cmd_id; the driver allocates max-order blocks into the
// balloon and sends each until allocation fails, then holds them until DONE;
// a shrinker gives them back under memory pressure. The VMM behind the queue
// is --hint-device (firecracker or qemu); the mitigations of the race
// Firecracker documents are --hint-uffd-wp (host side) and
// --hint-shrink-acked-only (guest side).

import { FreePageHintDriver, makeShrinker } from '../../guest/free-page-hint.js';
import { FreePageHintDevice, hintOfferedFeatures } from '../../host/free-page-hint-device.js';
import { makeVcpuWriteTracking } from '../../host/hint-tracking.js';
import { hintBlockState, uffdDiscardCheck } from '../../check/device-range.js';
import { migrationCheck } from '../../check/migration.js';
import { HintCmdIdCheck } from '../../check/hint-cmd-id.js';
import { liveData } from '../../check/live-data.js';
import { VIRTIO_BALLOON_F_FREE_PAGE_HINT, freePageQueueIndex, hasFeature } from '../../virtio/balloon-abi.js';
import { deviceOptions, noDiscardRefused, setUpBalloonDevice } from './common.js';
import { balloonSettle, balloonSettled } from './free-page-hint.js';
import type { HintingMode } from './mode.js';
import { DEV_VQ_INDEX } from '../../shm/layout.js';
import { readHintStats, readReporterStats, type HintingStats } from './stats.js';
import { type Config, hintTracks } from '../config.js';

/** The cross-flag rules of the hint flags. */
function hintConfigError(c: Config): string | null {
  if (c.hintUffdWp !== 'off' && c.hintDevice !== 'firecracker') return `--hint-uffd-wp: models Firecracker's userfaultfd write tracking; it needs --hint-device firecracker, not ${c.hintDevice}`;
  if (!c.hintAckOnStop && c.hintDevice !== 'firecracker') return `--no-hint-ack-on-stop: Firecracker's acknowledge_on_stop; --hint-device ${c.hintDevice} writes DONE when the migration ends`;
  return null;
}

export const hint: HintingMode = {
  name: 'hint',
  summary: 'VIRTIO_BALLOON_F_FREE_PAGE_HINT (host-initiated, --hint-device firecracker or qemu live migration): the driver hands max-order blocks to the device until allocation fails and holds them until DONE',
  hasDevice: true,
  defaultReportDelayMs: null,
  queueKind: 'free_page',
  configError: (c) => noDiscardRefused(c) ?? hintConfigError(c),
  // Hint mode offers FREE_PAGE_HINT instead of REPORTING (one hinting
  // queue), and its queue is the free_page_vq.
  setUpDevice: (views, c) =>
    setUpBalloonDevice(views, c, {
      offer: hintOfferedFeatures,
      queueIndex: (v, negotiated) => (hasFeature(negotiated, VIRTIO_BALLOON_F_FREE_PAGE_HINT) ? freePageQueueIndex(c.vqNumbering, negotiated) : v.device[DEV_VQ_INDEX]),
    }),
  enabled: () => ({ allowed: true, why: '' }),
  installCpuHooks(ctx) {
    const c = ctx.config;
    const { views, zone } = ctx;
    // The balloon's shrinker (src/guest/free-page-hint.ts), called from reclaim
    // below the low watermark and again after a failed allocation.
    const shrink = makeShrinker(views, zone, { poisonByte: c.poison ? c.poisonByte : null, blocksPerCall: c.hintShrinkBlocks, waitTimeoutMs: c.waitTimeoutMs, ackedOnly: c.hintShrinkAckedOnly }, ctx.thread);
    zone.reclaim = (order) => void shrink('reclaim', order);
    zone.shrinker = (order) => shrink('direct', order);
    // The host's write tracking on this vCPU (before it writes a block), and
    // the oracles' live-data record (after), both when the hinttrack region exists.
    if (hintTracks(c)) {
      zone.pagesWritten = makeVcpuWriteTracking(views, { uffdWp: c.hintDevice === 'firecracker' ? c.hintUffdWp : 'off', dirtyLog: c.hintDevice === 'qemu', sync: ctx.sync, thread: ctx.thread });
      const live = liveData(views);
      zone.pagesStamped = live.written;
      zone.dataFreed = live.freed;
    }
  },
  runReporter(ctx) {
    const c = ctx.config;
    new FreePageHintDriver(ctx.views, ctx.zone, ctx.thread, {
      ackTimeoutMs: c.waitTimeoutMs,
      spin: c.spin,
      serving: ctx.serving,
      poisonByte: c.poison ? c.poisonByte : null,
      ackedOnly: c.hintShrinkAckedOnly,
      descPolicy: c.descPolicy ?? 'lifo',
      selfTestIdxBeforeEntry: process.env.BALLOON_SIM_SELFTEST === 'ring-idx-before-entry',
      // The hint-cmd-id oracle (src/check/hint-cmd-id.ts): no range after a newer id was seen.
      cmdIdCheck: new HintCmdIdCheck(ctx.views, ctx.thread),
      selfTestLateIdCheck: process.env.BALLOON_SIM_SELFTEST === 'hint-late-id-check',
    }).run();
    return [];
  },
  makeDevice(ctx) {
    const c = ctx.config;
    const v = ctx.views;
    const uffd = c.hintDevice === 'firecracker' && c.hintUffdWp !== 'off';
    return new FreePageHintDevice(v, deviceOptions(ctx, 'free_page'), {
      kind: c.hintDevice,
      intervalMs: c.hintIntervalMs,
      ackOnStop: c.hintAckOnStop,
      doneAfterMs: c.hintDoneAfterMs,
      uffdWp: c.hintDevice === 'firecracker' ? c.hintUffdWp : 'off',
      sync: ctx.sync,
      uffdDiscardCheck: uffd ? uffdDiscardCheck(v.pages, liveData(v).map) : undefined,
      migrationCheck: c.hintDevice === 'qemu' ? migrationCheck(v) : undefined,
      blockState: hintBlockState(v.pages),
    });
  },
  hintingQuiet: balloonSettled,
  liveness: () => null,
  settle: balloonSettle,
  stats: (views, c, notes) => hintStats(views, c, notes, false),
};

/** hint and naive: the generic fields filled from the hint section, so consumers of `hinting` compare modes (a hint run, or a naive round trip, counts as one report). */
export function hintStats(views: Parameters<HintingMode['stats']>[0], c: Parameters<HintingMode['stats']>[1], notes: string[], naive: boolean): HintingStats {
  const h = readReporterStats(views, c.hinting, true, notes);
  const hs = readHintStats(views, naive, c);
  return { ...h, hint: hs, reports: hs.runs, reportedBlocks: hs.blocksHinted, reportedBytes: hs.bytesHinted, roundTripNs: { p50: hs.runMs.p50 * 1e6, p99: hs.runMs.p99 * 1e6, max: hs.runMs.max * 1e6, total: h.roundTripNs.total } };
}

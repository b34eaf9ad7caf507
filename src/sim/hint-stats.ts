// Main-thread side of --hinting hint / naive: device set-up before the roles
// start, the settle condition, and the `hinting.hint` / `hinting.naive`
// sections of the result (src/hint.ts, src/hint-device.ts).
//
// "Settled" for hint: the workload has stopped, the device starts no new run,
// and the run in progress has ended with DONE: the driver is idle, the device
// is not REQUESTED/START/STOP, and the balloon holds no page
// (ZONE_BALLOON_PAGES 0): everything hinted went back to the buddy allocator.
// For naive: the loop stops when the workload does, so the balloon must be
// empty. Not settling within --settle-timeout is a `reported-accounting`
// violation (the quiescent property of hinting: DONE lost or pages stranded).

import type { Config } from './config.js';
import { FREE_PAGE_HINT_S_REQUESTED, FREE_PAGE_HINT_S_START, FREE_PAGE_HINT_S_STOP, hintOfferedFeatures, readHintDeviceCounters, type HintDeviceCounters } from '../host/free-page-hint-device.js';
import { CM_SHRINK_BLOCKS, CM_SHRINK_CALLS, CM_SHRINK_EMPTY_HELD, HINT_BLOCK_ORDER, HINT_DRV_IDLE, HM_BLOCKS, HM_BLOCKS_FREED_DONE, HM_DISTINCT_BLOCKS, HM_DONES, HM_DUP_BLOCKS, HM_END_ALLOC_FAIL, HM_END_NEW_ID, HM_END_OTHER, HM_HELD_PAGES_MAX, HM_NAIVE_ALLOC_FAILS, HM_RING_FULL_WAITS, HM_ROUND_TRIPS, HM_RUNS, HM_RUN_NS_MAX, HM_RUN_NS_TOTAL } from '../guest/free-page-hint.js';
import { slotPercentiles } from '../base/hist.js';
import { DEV_FEATURES_NEGOTIATED, DEV_FEATURES_OFFERED, DEV_HINT_STATUS, DEV_VQ_INDEX, METRIC_ALLOC_FAILS, METRIC_HIST_BASE, PAGE_SIZE, REP_HINT_DRIVER_STATE, ZONE_BALLOON_PAGES, metricBase, threadIds, type Views } from '../shm/layout.js';
import { type Violation } from '../base/errors.js';
import { hasFeature, VIRTIO_BALLOON_F_FREE_PAGE_HINT, freePageQueueIndex } from '../virtio/balloon-abi.js';

export const isHintMode = (c: Config): boolean => c.hinting === 'hint' || c.hinting === 'naive';

/** Before negotiation: hint mode offers FREE_PAGE_HINT instead of REPORTING. */
export function hintOffer(views: Views, cfg: Config): void {
  if (cfg.hinting === 'hint') views.device[DEV_FEATURES_OFFERED] = hintOfferedFeatures(views.device[DEV_FEATURES_OFFERED] >>> 0) | 0;
}

/** After negotiation: the queue the device serves is the free_page_vq. */
export function hintQueue(views: Views, cfg: Config): void {
  const negotiated = views.device[DEV_FEATURES_NEGOTIATED] >>> 0;
  if (cfg.hinting === 'hint' && hasFeature(negotiated, VIRTIO_BALLOON_F_FREE_PAGE_HINT)) views.device[DEV_VQ_INDEX] = freePageQueueIndex(cfg.vqNumbering, negotiated);
}

export function hintSettled(views: Views): boolean {
  const st = Atomics.load(views.device, DEV_HINT_STATUS);
  return (
    Atomics.load(views.zone, ZONE_BALLOON_PAGES) === 0 &&
    Atomics.load(views.reporting, REP_HINT_DRIVER_STATE) === HINT_DRV_IDLE &&
    st !== FREE_PAGE_HINT_S_REQUESTED &&
    st !== FREE_PAGE_HINT_S_START &&
    st !== FREE_PAGE_HINT_S_STOP
  );
}

export function hintSettleViolation(views: Views, settleMs: number, timeoutMs: number): Violation {
  const pages = Atomics.load(views.zone, ZONE_BALLOON_PAGES);
  const st = Atomics.load(views.device, DEV_HINT_STATUS);
  return {
    oracle: 'reported-accounting',
    message: `the balloon still holds ${pages} pages (device hint status ${st}, driver state ${Atomics.load(views.reporting, REP_HINT_DRIVER_STATE)}) ${Math.round(settleMs)} ms after the workload stopped (--settle-timeout ${timeoutMs} ms): DONE lost or hinted pages never returned`,
  };
}

export interface HintStats {
  /** hint: runs the driver started; naive: report round trips. */
  runs: number;
  blocksHinted: number;
  bytesHinted: number;
  blocksPerRun: number;
  bytesPerRun: number;
  /** hint: from the new cmd id to the STOP's acknowledgement (driver side); naive: one round trip. */
  runMs: { p50: number; p99: number; max: number; mean: number };
  distinctBlocks: number;
  duplicateBlocks: number;
  /** duplicates / blocks sent. */
  duplicateRatio: number;
  distinctBytes: number;
  /** distinct bytes / guest memory. */
  distinctShareOfMemory: number;
  heldBytesMax: number;
  donesHandled: number;
  blocksFreedOnDone: number;
  ringFullWaits: number;
  runEnds: { allocationFailed: number; newCmdId: number; other: number };
  shrinker: { calls: number; blocksReturned: number; bytesReturned: number; emptyWhileBalloonHeld: number };
  cpuAllocFailures: number;
  naiveAllocFailures: number;
  device?: HintDeviceCounters;
  /** migrate: pages a pre-copy pass would skip (cleared from the dirty bitmap). */
  migrateSkippedPages?: number;
}

export function readHintStats(views: Views, cfg: Config): HintStats {
  const cpus = views.layout.params.cpus;
  const m = views.metrics;
  const b = metricBase(threadIds(cpus).reporter);
  const run = slotPercentiles(m, b + METRIC_HIST_BASE, m[b + HM_RUN_NS_MAX]);
  const naive = cfg.hinting === 'naive';
  const runs = naive ? m[b + HM_ROUND_TRIPS] : m[b + HM_RUNS];
  const blocks = m[b + HM_BLOCKS];
  const blockBytes = PAGE_SIZE << HINT_BLOCK_ORDER;
  const shrink = { calls: 0, blocksReturned: 0, bytesReturned: 0, emptyWhileBalloonHeld: 0 };
  let cpuFails = 0;
  for (let c = 0; c < cpus; c++) {
    const cb = metricBase(c);
    shrink.calls += m[cb + CM_SHRINK_CALLS];
    shrink.blocksReturned += m[cb + CM_SHRINK_BLOCKS];
    shrink.emptyWhileBalloonHeld += m[cb + CM_SHRINK_EMPTY_HELD];
    cpuFails += m[cb + METRIC_ALLOC_FAILS];
  }
  shrink.bytesReturned = shrink.blocksReturned * blockBytes;
  const out: HintStats = {
    runs,
    blocksHinted: blocks,
    bytesHinted: blocks * blockBytes,
    blocksPerRun: runs > 0 ? blocks / runs : 0,
    bytesPerRun: runs > 0 ? (blocks * blockBytes) / runs : 0,
    runMs: { p50: run.p50 / 1e6, p99: run.p99 / 1e6, max: run.max / 1e6, mean: runs > 0 ? m[b + HM_RUN_NS_TOTAL] / runs / 1e6 : 0 },
    distinctBlocks: m[b + HM_DISTINCT_BLOCKS],
    duplicateBlocks: m[b + HM_DUP_BLOCKS],
    duplicateRatio: blocks > 0 ? m[b + HM_DUP_BLOCKS] / blocks : 0,
    distinctBytes: m[b + HM_DISTINCT_BLOCKS] * blockBytes,
    distinctShareOfMemory: (m[b + HM_DISTINCT_BLOCKS] * blockBytes) / views.layout.guest.bytes,
    heldBytesMax: m[b + HM_HELD_PAGES_MAX] * PAGE_SIZE,
    donesHandled: m[b + HM_DONES],
    blocksFreedOnDone: m[b + HM_BLOCKS_FREED_DONE],
    ringFullWaits: m[b + HM_RING_FULL_WAITS],
    runEnds: { allocationFailed: m[b + HM_END_ALLOC_FAIL], newCmdId: m[b + HM_END_NEW_ID], other: m[b + HM_END_OTHER] },
    shrinker: shrink,
    cpuAllocFailures: cpuFails,
    naiveAllocFailures: m[b + HM_NAIVE_ALLOC_FAILS],
  };
  if (!naive) {
    out.device = readHintDeviceCounters(views, cfg.hintAction);
    if (cfg.hintAction === 'migrate') out.migrateSkippedPages = out.device.migrateSkippedPages;
  }
  return out;
}

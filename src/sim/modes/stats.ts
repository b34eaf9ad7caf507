// The `hinting` section of a run's results (docs/DESIGN.md, the result
// contract): the fields every mode fills (a report, its blocks and bytes,
// the round trip), read from the reporter thread's metric slot after it has
// stopped, and the free page hint section (src/sim/modes/hint.ts, naive.ts).

import { type HistBucket, nonEmptyBuckets, slotPercentiles } from '../../base/hist.js';
import { readHintDeviceCounters, type HintDeviceCounters } from '../../host/free-page-hint-device.js';
import { METRIC_ALLOC_FAILS, METRIC_HIST_BASE, PAGE_SIZE, metricBase, threadIds, type Views } from '../../shm/layout.js';
import { CM_RECLAIM_BLOCKS, CM_RECLAIM_CALLS, CM_SHRINK_BLOCKS, CM_SHRINK_CALLS, CM_SHRINK_EMPTY_HELD, CM_SHRINK_NS_MAX, CM_SHRINK_NS_TOTAL, HINT_BLOCK_ORDER, HM_BLOCKS, HM_BLOCKS_FREED_DONE, HM_DISTINCT_BLOCKS, HM_DONES, HM_DUP_BLOCKS, HM_END_ALLOC_FAIL, HM_END_NEW_ID, HM_END_OTHER, HM_HELD_PAGES_MAX, HM_ID_DROPPED, HM_LISTED_AT_KICK, HM_NAIVE_ALLOC_FAILS, HM_RING_FULL_FREES, HM_RING_FULL_WAITS, HM_ROUND_TRIPS, HM_RUNS, HM_RUN_NS_MAX, HM_RUN_NS_TOTAL } from '../../guest/balloon-pages.js';
import { CM_UFFD_WP_FAULTS, CM_UFFD_WP_NS } from '../../host/hint-tracking.js';
import type { Config } from '../config.js';
import { CM_REPORT_REQUESTS, RM_BLOCKS, RM_FAILS, RM_ISOLATE_WMARK, RM_LOCK_HOLD_NS, RM_PAGES, RM_PASSES, RM_REPORTS, RM_REQUESTS_AT_PASS_END, RM_REREPORTED, RM_RT_NS_MAX, RM_RT_NS_TOTAL, RM_SET_REPORTED, RM_SKIPPED_WMARK, CM_ALLOC_FAIL_ISOLATED, RM_ISOLATED_BELOW_MIN, RM_ISOLATED_PAGES_MAX, RM_INFLIGHT_MAX } from '../../mm/reporter-common.js';

/** The settled property, as the end table and JSON show it (`hinting.settle`). */
export interface SettleSummary {
  ok: boolean;
  rssBytes: number;
  excuses: string[];
  unreportedBlocks: number;
}

export interface HintingStats {
  mode: string;
  enabled: boolean;
  notes: string[];
  reports: number;
  reportedBlocks: number;
  reportedBytes: number;
  reReportedBlocks: number;
  flaggedReported: number;
  failedReports: number;
  passes: number;
  /** Requests the CPUs' free paths raised (IDLE -> REQUESTED; aeration: refcnt 0 -> 1); the registration's initial request is not counted. */
  requests: number;
  /** Requests raised right after a pass ended (between its final compareExchange and the next wait). */
  requestsAtPassEnd: number;
  passesSkippedBelowWatermark: number;
  isolationsRefusedByMinWatermark: number;
  roundTripNs: { p50: number; p99: number; max: number; total: number };
  /** Most pages the reporter held isolated at once. */
  isolatedPagesMax: number;
  /** Pages isolated with the zone below its min watermark (aeration v1 checks no watermark). */
  isolatedBelowMinPages: number;
  /** CPU allocations that failed while the reporter held blocks isolated. */
  allocFailuresWhileIsolated: number;
  /** The reporter's histogram behind roundTripNs, non-empty buckets (reporting, aeration: report round trips; hint: hint runs; naive: round trips). */
  roundTripHistNs: HistBucket[];
  reporterZoneLockHoldNs: number;
  /** Most chains the driver had in flight on its ring at once (1 with upstream reporting and aeration; --report-inflight; hint: blocks and ids). */
  ringInFlightMax: number;
  settleMs?: number;
  /** The bound settleMs ran against: --settle-timeout, resolved where auto. */
  settleTimeoutMs?: number;
  settle?: SettleSummary;
  /** --hinting hint / naive (src/sim/modes/stats.ts). */
  hint?: HintStats;
}

/** The reporter's counters (page reporting, aeration): the generic fields. */
export function readReporterStats(views: Views, mode: string, enabled: boolean, notes: string[]): HintingStats {
  const cpus = views.layout.params.cpus;
  const m = views.metrics;
  const b = metricBase(threadIds(cpus).reporter);
  const rt = slotPercentiles(m, b + METRIC_HIST_BASE, m[b + RM_RT_NS_MAX]);
  let requests = 0;
  let failsIsolated = 0;
  for (let c = 0; c < cpus; c++) {
    requests += m[metricBase(c) + CM_REPORT_REQUESTS];
    failsIsolated += m[metricBase(c) + CM_ALLOC_FAIL_ISOLATED];
  }
  return {
    mode,
    enabled,
    notes,
    reports: m[b + RM_REPORTS],
    reportedBlocks: m[b + RM_BLOCKS],
    reportedBytes: m[b + RM_PAGES] * PAGE_SIZE,
    reReportedBlocks: m[b + RM_REREPORTED],
    flaggedReported: m[b + RM_SET_REPORTED],
    failedReports: m[b + RM_FAILS],
    passes: m[b + RM_PASSES],
    requests,
    requestsAtPassEnd: m[b + RM_REQUESTS_AT_PASS_END],
    passesSkippedBelowWatermark: m[b + RM_SKIPPED_WMARK],
    isolationsRefusedByMinWatermark: m[b + RM_ISOLATE_WMARK],
    roundTripNs: { ...rt, total: m[b + RM_RT_NS_TOTAL] },
    isolatedPagesMax: m[b + RM_ISOLATED_PAGES_MAX],
    isolatedBelowMinPages: m[b + RM_ISOLATED_BELOW_MIN],
    allocFailuresWhileIsolated: failsIsolated,
    roundTripHistNs: nonEmptyBuckets(m, b + METRIC_HIST_BASE),
    reporterZoneLockHoldNs: m[b + RM_LOCK_HOLD_NS],
    ringInFlightMax: m[b + RM_INFLIGHT_MAX],
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
  /** get_free_page_and_send() found the ring full (num_free <= 1): the block was freed at once and the loop went on. */
  ringFullFrees: number;
  /** Blocks put on free_page_list right after their kick (upstream; 0 with --hint-shrink-acked-only). */
  listedAtKick: number;
  /** Command ids virtqueue_add_outbuf could not queue (-ENOSPC: upstream logs and goes on). */
  idsDropped: number;
  runEnds: { allocationFailed: number; newCmdId: number; other: number };
  /**
   * The balloon's shrinker on the CPUs. calls/blocksReturned: after a failed
   * allocation (direct reclaim); reclaimCalls/reclaimBlocks: from
   * allocations below the low watermark (where kswapd / direct reclaim run
   * shrink_slab; calls that found the balloon empty are not counted);
   * latency over both.
   */
  shrinker: { calls: number; blocksReturned: number; bytesReturned: number; emptyWhileBalloonHeld: number; reclaimCalls: number; reclaimBlocks: number; nsMean: number; nsMax: number };
  cpuAllocFailures: number;
  naiveAllocFailures: number;
  /** --hint-uffd-wp: write-protect faults the vCPUs took (one per page's first write in a run) and their time. */
  uffdFaults?: { faults: number; nsTotal: number };
  device?: HintDeviceCounters;
}

/** The free page hint driver's counters (hint, naive), its device's (hint), and the shrinker's on every CPU. */
export function readHintStats(views: Views, naive: boolean, c: Pick<Config, 'hintDevice' | 'hintAckOnStop' | 'hintUffdWp'>): HintStats {
  const cpus = views.layout.params.cpus;
  const m = views.metrics;
  const b = metricBase(threadIds(cpus).reporter);
  const run = slotPercentiles(m, b + METRIC_HIST_BASE, m[b + HM_RUN_NS_MAX]);
  const runs = naive ? m[b + HM_ROUND_TRIPS] : m[b + HM_RUNS];
  const blocks = m[b + HM_BLOCKS];
  const blockBytes = PAGE_SIZE << HINT_BLOCK_ORDER;
  const shrink = { calls: 0, blocksReturned: 0, bytesReturned: 0, emptyWhileBalloonHeld: 0, reclaimCalls: 0, reclaimBlocks: 0, nsMean: 0, nsMax: 0 };
  let cpuFails = 0;
  let shrinkNs = 0;
  const uffd = { faults: 0, nsTotal: 0 };
  for (let i = 0; i < cpus; i++) {
    const cb = metricBase(i);
    shrink.calls += m[cb + CM_SHRINK_CALLS];
    shrink.blocksReturned += m[cb + CM_SHRINK_BLOCKS];
    shrink.emptyWhileBalloonHeld += m[cb + CM_SHRINK_EMPTY_HELD];
    shrink.reclaimCalls += m[cb + CM_RECLAIM_CALLS];
    shrink.reclaimBlocks += m[cb + CM_RECLAIM_BLOCKS];
    shrinkNs += m[cb + CM_SHRINK_NS_TOTAL];
    shrink.nsMax = Math.max(shrink.nsMax, m[cb + CM_SHRINK_NS_MAX]);
    cpuFails += m[cb + METRIC_ALLOC_FAILS];
    uffd.faults += m[cb + CM_UFFD_WP_FAULTS];
    uffd.nsTotal += m[cb + CM_UFFD_WP_NS];
  }
  shrink.bytesReturned = shrink.blocksReturned * blockBytes;
  const shrinkCalls = shrink.calls + shrink.reclaimCalls;
  shrink.nsMean = shrinkCalls > 0 ? shrinkNs / shrinkCalls : 0;
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
    ringFullFrees: m[b + HM_RING_FULL_FREES],
    listedAtKick: m[b + HM_LISTED_AT_KICK],
    idsDropped: m[b + HM_ID_DROPPED],
    runEnds: { allocationFailed: m[b + HM_END_ALLOC_FAIL], newCmdId: m[b + HM_END_NEW_ID], other: m[b + HM_END_OTHER] },
    shrinker: shrink,
    cpuAllocFailures: cpuFails,
    naiveAllocFailures: m[b + HM_NAIVE_ALLOC_FAILS],
  };
  if (!naive) {
    const uffdWp = c.hintDevice === 'firecracker' ? c.hintUffdWp : 'off';
    out.device = readHintDeviceCounters(views, { kind: c.hintDevice, ackOnStop: c.hintAckOnStop, uffdWp });
    if (uffdWp !== 'off') out.uffdFaults = uffd;
  }
  return out;
}

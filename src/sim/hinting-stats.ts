// The `hinting` section of a run's results (DESIGN §10), read from the
// reporter thread's metric slot after it has stopped.

import type { HintStats } from './hint-stats.js';
import { slotPercentiles } from '../base/hist.js';
import { METRIC_HIST_BASE, PAGE_SIZE, metricBase, threadIds, type Views } from '../shm/layout.js';
import { CM_REPORT_REQUESTS, RM_BLOCKS, RM_FAILS, RM_ISOLATE_WMARK, RM_LOCK_HOLD_NS, RM_PAGES, RM_PASSES, RM_REPORTS, RM_REQUESTS_AT_PASS_END, RM_REREPORTED, RM_RT_NS_MAX, RM_RT_NS_TOTAL, RM_SET_REPORTED, RM_SKIPPED_WMARK } from '../mm/page-reporting.js';

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
  requests: number;
  /** Requests raised right after a pass ended (between its final compareExchange and the next wait). */
  requestsAtPassEnd: number;
  passesSkippedBelowWatermark: number;
  isolationsRefusedByMinWatermark: number;
  roundTripNs: { p50: number; p99: number; max: number; total: number };
  reporterZoneLockHoldNs: number;
  settleMs?: number;
  settle?: { ok: boolean; rssBytes: number; excuses: string[]; unreportedBlocks: number };
  /** --hinting hint / naive (src/hint-stats.ts). */
  hint?: HintStats;
}

export function readHintingStats(views: Views, mode: string, enabled: boolean, notes: string[]): HintingStats {
  const cpus = views.layout.params.cpus;
  const m = views.metrics;
  const b = metricBase(threadIds(cpus).reporter);
  const rt = slotPercentiles(m, b + METRIC_HIST_BASE, m[b + RM_RT_NS_MAX]);
  let requests = 0;
  for (let c = 0; c < cpus; c++) requests += m[metricBase(c) + CM_REPORT_REQUESTS];
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
    reporterZoneLockHoldNs: m[b + RM_LOCK_HOLD_NS],
  };
}

// The quiescent property of free page hinting (the `reported-accounting`
// oracle). Once the workload has stopped and the reporter has had its time:
//   - every free block of order >= the report order is Reported and none of
//     its pages is host-resident, unless a stated reason excuses it;
//   - so host RSS is at most the pages that are allocated, free below the
//     report order, or excused.
// This is what catches lost requests and stranded memory.

import { type Zone } from '../mm/buddy.js';
import { FA_HEAD, FA_NR_FREE, FA_NR_REPORTED, FA_WORDS, MAX_ORDER, NIL, PAGE_WORDS, PG_FLAGS, PG_NEXT, ZONE_FREE_AREA, ZONE_FREE_PAGES, ZONE_WMARK_LOW, ZONE_WMARK_MIN, REP_STATE } from '../shm/layout.js';
import type { GuestMemory } from '../mm/memory.js';
import { PG_REPORTED } from '../mm/page.js';
import { type Views } from '../shm/layout.js';
import { type Violation } from '../base/errors.js';
import { RM_BLOCKS } from '../mm/reporter-common.js';
import { AERATOR_HWM } from '../mm/aeration.js';
import { PAGE_REPORTING_REQUESTED } from '../mm/page-reporting.js';

const STILL_REPORTING = 'reporting still had another pass requested when --settle-timeout ran out (upstream reports about a sixteenth of a free list per pass, one pass per --report-delay: a large guest at the 2 s delay needs tens of seconds; raise --settle-timeout), or a lost request';

export interface SettleOptions {
  mode: 'reporting' | 'aeration';
  reportOrder: number;
  capacity: number;
  /** Reporting was never started (e.g. --poison without PAGE_POISON): everything is excused. */
  reportingDisabled: boolean;
  /** Isolations the reporter had refused by the min watermark so far (read when checking). */
  isolationsRefused: () => number;
  /**
   * Why the device keeps reported pages resident, or null when it discards
   * them: PAGE_POISON with poison_val != 0 (QEMU's skip), or --no-discard.
   */
  deviceKeepsPages: string | null;
  /**
   * Pages the hinting driver freed when it stopped, after the settle point
   * (aeration's hint buffer page, checked after every role returned under
   * --sched): the free block holding one is raw because of the teardown,
   * not a lost request.
   */
  teardownPfns?: readonly number[];
  /**
   * --device-faults report-error: the reporter's last pass stopped at a
   * failed report (REP_LAST_PASS_FAILED). Upstream's page_reporting_process()
   * then leaves what it did not reach for the next request, and with the
   * workload gone none comes: those blocks stay unreported by design.
   */
  lastPassFailed?: () => boolean;
}

export interface SettleReport {
  ok: boolean;
  violations: Violation[];
  rssPages: number;
  /** Pages allowed to stay resident, by reason. */
  allowedPages: { allocatedOrBelowOrder: number; excused: number };
  excuses: string[];
  unreportedBlocks: number;
  residentReportedPages: number;
}

/** Zone lock held by the caller. */
export function checkReportedAccounting(zone: Zone, mem: GuestMemory, o: SettleOptions): SettleReport {
  const z = zone.zone;
  const p = zone.pages;
  const violations: Violation[] = [];
  const excuses: string[] = [];
  let unreportedBlocks = 0;
  let residentReportedPages = 0;
  let highFreePages = 0;
  let excusedPages = 0;
  // Reasons that legitimately leave a free area unreported.
  // Upstream reporting runs a pass only strictly above low + capacity << order
  // and isolates only above min + 2^order; aeration v1 checks no watermark.
  const gated = o.mode === 'reporting';
  // Upstream reporting was still asked for another pass when the bound ran
  // out: the memory may be on its way back rather than lost. Said so, since a
  // large guest at the kernel's 2 s delay needs many passes (each reports up to
  // budget + 1 batches per list, budget = nr_free / (capacity * 16)).
  const stillRequested = gated && Atomics.load(zone.views.reporting, REP_STATE) === PAGE_REPORTING_REQUESTED;
  const belowWatermark = gated && z[ZONE_FREE_PAGES] <= z[ZONE_WMARK_LOW] + (o.capacity << o.reportOrder);
  const teardown = o.teardownPfns ?? [];
  const holdsTeardownPage = (pfn: number, order: number) => teardown.some((t) => t >= pfn && t < pfn + (1 << order));
  for (let order = o.reportOrder; order < MAX_ORDER; order++) {
    const fa = ZONE_FREE_AREA + order * FA_WORDS;
    let unhinted = z[fa + FA_NR_FREE] - z[fa + FA_NR_REPORTED];
    // A raw block that is raw only because the driver freed a page into it at teardown.
    let teardownBlock = NIL;
    for (let q = z[fa + FA_HEAD], k = 0; q !== NIL && k <= z[fa + FA_NR_FREE] && teardown.length > 0; q = p[q * PAGE_WORDS + PG_NEXT], k++) {
      if ((p[q * PAGE_WORDS + PG_FLAGS] & PG_REPORTED) === 0 && holdsTeardownPage(q, order)) teardownBlock = q;
    }
    if (teardownBlock !== NIL) unhinted--;
    let reason: string | null = null;
    if (o.reportingDisabled) reason = 'reporting disabled';
    else if (belowWatermark) reason = `zone free ${z[ZONE_FREE_PAGES]} pages is below low watermark + capacity << order`;
    else if (gated && o.lastPassFailed?.()) reason = 'the last pass stopped at a failed report (--device-faults report-error) and nothing has requested another: page_reporting_process() leaves the rest for the next request';
    else if (gated && o.isolationsRefused() > 0 && z[ZONE_FREE_PAGES] - z[ZONE_WMARK_MIN] < o.capacity << (MAX_ORDER - 1)) {
      // __isolate_free_page() refuses a block that would take the zone below
      // its min watermark; with a whole batch isolated at once, the last
      // blocks of a nearly all-free small zone cannot be reported (upstream
      // behaves the same: nothing requests another pass).
      reason = `isolation refused by the min watermark (${o.isolationsRefused()} times): zone free ${z[ZONE_FREE_PAGES]} - min ${z[ZONE_WMARK_MIN]} pages is less than one batch of ${o.capacity} max-order blocks`;
    } else if (o.mode === 'aeration' && unhinted < AERATOR_HWM) reason = `aeration: ${unhinted} raw blocks, under the high-water mark of ${AERATOR_HWM}`;
    let pfn = z[fa + FA_HEAD];
    let walked = 0;
    let excusedHere = 0;
    while (pfn !== NIL && walked++ <= z[fa + FA_NR_FREE]) {
      const size = 1 << order;
      highFreePages += size;
      const reported = (p[pfn * PAGE_WORDS + PG_FLAGS] & PG_REPORTED) !== 0;
      let resident = 0;
      for (let q = pfn; q < pfn + size; q++) if (mem.isResident(q)) resident++;
      if (!reported && pfn === teardownBlock) {
        excusedPages += resident;
        excuses.push(`order ${order}: 1 block raw since the driver freed its buffer page into it when it stopped`);
      } else if (!reported) {
        if (reason !== null) {
          excusedPages += resident;
          excusedHere++;
        } else {
          unreportedBlocks++;
          if (violations.length < 8) violations.push({ oracle: 'reported-accounting', message: `free block pfn ${pfn} order ${order} was never reported after the run settled (${resident} of its pages still host-resident): ${stillRequested ? STILL_REPORTING : 'a lost request or stranded memory'}`, pfn });
        }
      } else if (resident > 0) {
        if (o.deviceKeepsPages !== null) excusedPages += resident;
        else {
          residentReportedPages += resident;
          if (violations.length < 8) violations.push({ oracle: 'reported-accounting', message: `free block pfn ${pfn} order ${order} is Reported but ${resident} of its pages are host-resident: the guest wrote it after reporting, or the host never discarded it`, pfn });
        }
      }
      pfn = p[pfn * PAGE_WORDS + PG_NEXT];
    }
    if (excusedHere > 0 && reason) excuses.push(`order ${order}: ${excusedHere} blocks not reported (${reason})`);
  }
  if (o.deviceKeepsPages !== null) excuses.push(`device keeps reported pages resident (${o.deviceKeepsPages})`);
  const rssPages = mem.residentPages();
  // Everything outside free blocks of order >= report order may be resident.
  const allowedOther = zone.nrPages - highFreePages;
  if (violations.length === 0 && rssPages > allowedOther + excusedPages) {
    violations.push({ oracle: 'reported-accounting', message: `host RSS is ${rssPages} pages but allocated/low-order memory is ${allowedOther} pages and excused ${excusedPages}: ${rssPages - allowedOther - excusedPages} pages stranded` });
  }
  return { ok: violations.length === 0, violations, rssPages, allowedPages: { allocatedOrBelowOrder: allowedOther, excused: excusedPages }, excuses, unreportedBlocks, residentReportedPages };
}

/**
 * The settled reporter goes quiet (part of `reported-accounting`): once the
 * workload has stopped and every free block of the report order is Reported,
 * a reporter that is still not IDLE may finish its pass, but must not hand
 * the device any more blocks. One that keeps sending is re-reporting memory
 * the host already dropped (upstream skips PageReported blocks for exactly
 * this). Watches the reporter's sent-blocks counter for a bounded grace of
 * two report delays + 250 ms; returns the violation or null.
 */
export async function checkReporterQuiet(views: Views, reporterSlot: number, reportDelayMs: number, idle: () => boolean, settling: () => boolean): Promise<Violation | null> {
  const m = views.metrics;
  const graceMs = 2 * reportDelayMs + 250;
  const blocks0 = m[reporterSlot + RM_BLOCKS];
  const t0 = performance.now();
  while (performance.now() - t0 < graceMs && settling()) {
    if (idle()) return null;
    await new Promise<void>((r) => setTimeout(r, 10));
  }
  const sent = m[reporterSlot + RM_BLOCKS] - blocks0;
  if (sent <= 0) return null;
  return { oracle: 'reported-accounting', message: `every free block was already Reported and nothing was freed, yet the reporter sent ${sent} more blocks in ${Math.round(performance.now() - t0)} ms and never went idle: Reported memory is being reported again` };
}

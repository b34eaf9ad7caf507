// The guest's free page reporting worker (mm/page_reporting.c, Linux 5.7+),
// as pure logic over the shared zone. The reporter reaches the device only
// through the narrow ReportSink contract (src/mm/reporter-common.ts); it
// never touches ring code. Aeration v1 is src/mm/aeration.ts.
//
// State machine (docs/DESIGN.md §5), one Int32 word REP_STATE:
//   IDLE --(free path frees a block of order >= report order)--> REQUESTED
//        only the IDLE->REQUESTED transition schedules the delayed work
//        (bumps REP_REQUEST_GEN, which the reporter waits on);
//   REQUESTED --(work runs)--> ACTIVE;
//   ACTIVE --(pass done, cmpxchg)--> IDLE, or, if a request arrived during
//        the pass (state went back to REQUESTED), the work is rescheduled.

import { type Zone } from './buddy.js';
import { FA_HEAD, FA_NR_FREE, FA_WORDS, MAX_ORDER, NIL, PAGE_WORDS, PG_FLAGS, PG_NEXT, REP_LAST_PASS_FAILED, REP_REQUEST_GEN, REP_STATE, ZONE_FREE_AREA, ZONE_FREE_PAGES, ZONE_WMARK_LOW, ZONE_WMARK_MIN, metricBase, type Views, INJECTED_EARLY_PUTBACK, INJECTED_LOST_WAKEUP, INJECTED_NO_REPORTED_SKIP, INJECTED_NO_ZONE_LOCK, METRIC_INJECTED } from '../shm/layout.js';
import { ORDER_SHIFT, describeFlags, PG_BUDDY, PG_REPORTED, PG_STATE_MASK } from './page.js';
import { SP_STATE, bump, schedPoint, waitWhileEquals } from '../locking/sync.js';
import { OracleViolation } from '../base/errors.js';
import { SITE_REPORT_DRAIN, SITE_REPORT_ISOLATE } from '../locking/sites.js';
import { CM_REPORT_REQUESTS, RM_ISOLATE_WMARK, RM_PASSES, RM_REQUESTS_AT_PASS_END, RM_REQUESTS_SEEN, RM_SET_REPORTED, RM_SKIPPED_WMARK, type ReportSink, type ReportStatus, ReporterBase, type ReporterInjections, REQUEST_WAIT, injectedWindow } from './reporter-common.js';
import { TK_ISOLATE, TK_PASS, TK_PUTBACK, tracer } from '../locking/trace.js';

export const PAGE_REPORTING_IDLE = 0;
export const PAGE_REPORTING_REQUESTED = 1;
export const PAGE_REPORTING_ACTIVE = 2;
/** PAGE_REPORTING_CAPACITY upstream; aeration v1's VIRTIO_BALLOON_ARRAY_HINTS_MAX. */
export const PAGE_REPORTING_CAPACITY = 32;
/** Aeration v1's trigger: unhinted blocks in a free area past this. */
export const AERATION_HIGH_WATER = 32;

/**
 * The most passes page_reporting_process() can take to report every block
 * of one free list of `blocks` blocks. page_reporting_cycle() gives each pass
 * a budget of DIV_ROUND_UP(nr_free, PAGE_REPORTING_CAPACITY * 16) and checks
 * it before each block, after the report that spent it: a pass sends at most
 * budget + 1 full reports of `capacity` blocks from the list, and nr_free
 * still counts the blocks already Reported, so the budget does not grow as
 * the list is worked through. Pure (the default --settle-timeout uses it).
 */
export function passesToReportList(blocks: number, capacity: number): number {
  if (blocks <= 0) return 0;
  const budget = Math.ceil(blocks / (capacity * 16));
  return Math.ceil(blocks / ((budget + 1) * capacity));
}

/**
 * The most passes reporting can take to report a guest of `nrPages` pages:
 * the slowest of the lists of `reportOrder` and up (page_reporting_process_zone()
 * walks every such list in each pass), each taken at its largest possible
 * length (every page of the guest in blocks of that order).
 */
export function passesToReportGuest(nrPages: number, reportOrder: number, capacity: number, maxOrder: number): number {
  let passes = 0;
  for (let order = reportOrder; order < maxOrder; order++) passes = Math.max(passes, passesToReportList(Math.floor(nrPages / 2 ** order), capacity));
  return passes;
}

export interface ReportingOptions {
  capacity: number;
  reportOrder: number;
  delayMs: number;
  /** Fault injection (src/check/inject.ts); absent = every protection on. */
  inject?: Partial<ReporterInjections>;
  /**
   * Harness self-test (BALLOON_SIM_SELFTEST=late-gen-read, not a simulation
   * feature): read the request generation after the pass's final
   * compareExchange, the order that lost requests, so a test can show the
   * simulator finds its own lost wake-up.
   */
  lateGenRead?: boolean;
  /**
   * Harness self-test (BALLOON_SIM_SELFTEST=no-notify-request): the free
   * path bumps the request generation with a bare Atomics.add and no
   * Atomics.notify (the slip the strict wake-up checks exist for), so a
   * test can show they find it.
   */
  noNotifyRequest?: boolean;
  /**
   * Harness self-test (BALLOON_SIM_SELFTEST=fault-flag-failed): the drain
   * flags a batch Reported even when its report failed, a slip only a
   * failing report reaches (--device-faults report-error), so a test can
   * show the oracles find it under the fault and nothing finds it without.
   */
  flagFailed?: boolean;
}

/**
 * page_reporting_notify_free(): called from the free path (zone lock held)
 * after a block of order >= report order landed on a free list.
 */
export function makeFreeNotifier(views: Views, opts: ReportingOptions, thread: number): (order: number) => void {
  const rep = views.reporting;
  const m = views.metrics;
  const mb = metricBase(thread);
  const z = views.zone;
  return (order: number) => {
    // Cheap check first: if a request is already pending, nothing to do.
    if (Atomics.load(rep, REP_STATE) === PAGE_REPORTING_REQUESTED) return;
    if (opts.inject?.lostWakeup) {
      // INJECTED (lost-wakeup): the exchange split into a load and a store.
      // A worker that finishes its pass in between (ACTIVE -> IDLE) is not
      // woken: we read ACTIVE, so we do not schedule, then store REQUESTED
      // over its IDLE, and every later free path sees REQUESTED and returns.
      const prev = Atomics.load(rep, REP_STATE);
      m[mb + METRIC_INJECTED + INJECTED_LOST_WAKEUP]++; // the split read-modify-write ran
      injectedWindow(REP_STATE); // interrupted here
      Atomics.store(rep, REP_STATE, PAGE_REPORTING_REQUESTED);
      if (prev !== PAGE_REPORTING_IDLE) return;
      m[mb + CM_REPORT_REQUESTS]++;
      bump(rep, REP_REQUEST_GEN);
      return;
    }
    // Exchange, not store: exactly one of the racing free paths sees IDLE and
    // schedules the work; a request that lands while the worker is ACTIVE is
    // seen by the worker's final cmpxchg and makes it run again.
    const prev = Atomics.exchange(rep, REP_STATE, PAGE_REPORTING_REQUESTED);
    if (prev !== PAGE_REPORTING_IDLE) return;
    m[mb + CM_REPORT_REQUESTS]++;
    // schedule_delayed_work(): publish by bumping the generation word the
    // reporter sleeps on (seq-cst add, then notify).
    if (opts.noNotifyRequest) Atomics.add(rep, REP_REQUEST_GEN, 1); // self-test: the notify is missing
    else bump(rep, REP_REQUEST_GEN);
  };
}

/** __page_reporting_request() as page_reporting_register() does for the initial flush. */
export function requestReporting(views: Views): void {
  const prev = Atomics.exchange(views.reporting, REP_STATE, PAGE_REPORTING_REQUESTED);
  if (prev === PAGE_REPORTING_IDLE) bump(views.reporting, REP_REQUEST_GEN);
}

export class PageReporting extends ReporterBase {
  constructor(
    views: Views,
    zone: Zone,
    sink: ReportSink,
    readonly opts: ReportingOptions,
    thread: number,
  ) {
    super(views, zone, sink, opts.capacity, thread, opts.inject);
  }

  /**
   * The worker loop: wait to be scheduled, sleep the delay, run a pass,
   * reschedule if requested meanwhile. Every wait is bounded (slices) and
   * ends when the run stops.
   */
  run(): void {
    let lastGen = Atomics.load(this.rep, REP_REQUEST_GEN);
    let scheduled = Atomics.load(this.rep, REP_STATE) === PAGE_REPORTING_REQUESTED;
    const stop = () => !this.serving();
    while (this.serving()) {
      if (!scheduled) {
        const r = waitWhileEquals(this.rep, REP_REQUEST_GEN, lastGen, 100, stop, 0, REQUEST_WAIT);
        if (r !== 'changed') continue;
        lastGen = Atomics.load(this.rep, REP_REQUEST_GEN);
        scheduled = true;
      }
      // schedule_delayed_work(..., delay): a timed sleep that a stop cuts short.
      if (this.opts.delayMs > 0) this.sleep(this.opts.delayMs);
      if (!this.serving()) break;
      this.m[this.mb + RM_REQUESTS_SEEN]++;
      scheduled = this.process();
      // The generation process() read before its final compareExchange: a
      // request raised after that exchange has bumped past it, so the wait
      // above returns at once instead of sleeping through it.
      lastGen = this.genAtPassEnd;
    }
  }

  /** REP_REQUEST_GEN as process() read it just before its final compareExchange. */
  private genAtPassEnd = 0;

  /** page_reporting_process(): one pass. Returns true if it must run again. */
  process(): boolean {
    // Between passes the driver may reset its device; re-registering then
    // raises page_reporting_register()'s request (the pass below serves it).
    if (this.sink.betweenPasses?.()) requestReporting(this.views);
    // ACTIVE lets us see requests that arrive during the pass.
    Atomics.store(this.rep, REP_STATE, PAGE_REPORTING_ACTIVE);
    this.m[this.mb + RM_PASSES]++;
    const tr = tracer;
    const t0 = tr !== null ? tr.nowUs() : 0;
    const err = this.processZone();
    // A pass that stopped at a failed report leaves the rest for the next
    // request (page_reporting_process() breaks out on err): the settle
    // check's excuse while nothing has requested another pass.
    Atomics.store(this.rep, REP_LAST_PASS_FAILED, err === 'ok' ? 0 : 1);
    if (tr !== null) tr.since(TK_PASS, t0);
    // Read the request generation BEFORE the exchange that ends the pass. A
    // free path that sees IDLE after the exchange moves it to REQUESTED and
    // bumps the generation; run() then waits for a change from this value
    // and returns at once. Read after the exchange, that bump could land
    // first and be taken for one already served: the request would be lost,
    // and every later free stops at the cheap REQUESTED check (the kernel's
    // delayed work cannot lose it; a 10-minute churn run here once did).
    this.genAtPassEnd = Atomics.load(this.rep, REP_REQUEST_GEN);
    let prev: number;
    if (this.opts.inject?.lostWakeup) {
      // INJECTED (lost-wakeup): the compareExchange split into a load and a
      // store; a request stored in between is overwritten with IDLE.
      prev = Atomics.load(this.rep, REP_STATE);
      if (prev === PAGE_REPORTING_ACTIVE) {
        this.m[this.mb + METRIC_INJECTED + INJECTED_LOST_WAKEUP]++; // the split compare-and-exchange ran
        injectedWindow(REP_STATE); // preempted here
        Atomics.store(this.rep, REP_STATE, PAGE_REPORTING_IDLE);
      }
    } else prev = Atomics.compareExchange(this.rep, REP_STATE, PAGE_REPORTING_ACTIVE, PAGE_REPORTING_IDLE);
    // The window between the exchange and the reporter's next wait: under
    // --sched another thread may run here (a free that raises a request).
    schedPoint(SP_STATE, REP_REQUEST_GEN);
    const genNow = Atomics.load(this.rep, REP_REQUEST_GEN);
    // A request raised in the window: seen only thanks to the early read.
    if (genNow !== this.genAtPassEnd) this.m[this.mb + RM_REQUESTS_AT_PASS_END]++;
    if (this.opts.lateGenRead) this.genAtPassEnd = genNow; // self-test: the old, losing order
    return prev === PAGE_REPORTING_REQUESTED;
  }

  /** page_reporting_process_zone(). */
  processZone(): ReportStatus {
    const { capacity, reportOrder } = this.opts;
    // Generate minimum watermark to be able to guarantee progress: the low
    // watermark plus a full batch of the report order, and the zone must be
    // strictly above it (zone_watermark_ok(): free <= mark fails).
    const watermark = this.z[ZONE_WMARK_LOW] + (capacity << reportOrder);
    if (this.z[ZONE_FREE_PAGES] <= watermark) {
      this.m[this.mb + RM_SKIPPED_WMARK]++;
      return 'ok';
    }
    const off = { offset: capacity };
    let err: ReportStatus = 'ok';
    for (let order = reportOrder; order < MAX_ORDER && err === 'ok'; order++) err = this.cycle(order, off);
    // Report the partly filled list before going idle.
    const leftover = capacity - off.offset;
    if (leftover > 0 && this.serving()) {
      if (this.inj.earlyPutback) {
        this.lockZone(SITE_REPORT_DRAIN);
        try {
          this.beforeReport(off.offset, leftover);
        } finally {
          this.unlockZone();
        }
      }
      const st = this.reportBatch(off.offset, leftover);
      this.lockZone(SITE_REPORT_DRAIN);
      try {
        this.afterReport(off.offset, leftover, st === 'ok');
      } finally {
        this.unlockZone();
      }
      if (err === 'ok') err = st;
    } else if (leftover > 0) {
      // Stopping: give the isolated blocks back unreported.
      this.lockZone(SITE_REPORT_DRAIN);
      try {
        if (!this.inj.noIsolate) this.drain(off.offset, leftover, false);
      } finally {
        this.unlockZone();
      }
    }
    return err;
  }

  /** page_reporting_cycle(): isolate, rotate, report, drain one free list. */
  cycle(order: number, off: { offset: number }): ReportStatus {
    const z = this.z;
    const p = this.pages;
    const fa = ZONE_FREE_AREA + order * FA_WORDS;
    const { capacity } = this.opts;
    if (z[fa + FA_HEAD] === NIL) return 'ok';
    let err: ReportStatus = 'ok';
    // INJECTED (no-zone-lock): walk and isolate without the zone lock; only
    // the drain after each report still takes it.
    const noLock = this.inj.noZoneLock;
    if (!noLock) this.lockZone(SITE_REPORT_ISOLATE);
    try {
      // Per-list budget of report calls in this pass (PAGE_REPORTING_CAPACITY * 16 blocks per call).
      let budget = Math.ceil(z[fa + FA_NR_FREE] / (capacity * 16));
      let pfn = z[fa + FA_HEAD];
      let next = NIL;
      // Bound the walk. Between two restarts the zone lock is held, so the
      // list cannot change: more steps than it has entries means it loops.
      // Restarts (one per report) are bounded separately: while the lock is
      // dropped CPUs may free more blocks onto this list, so the list may
      // legitimately grow; past the bound the rest is left to a later pass.
      let steps = z[fa + FA_NR_FREE] + 1;
      let restarts = 0;
      const restartsMax = 4 * (this.zone.nrPages >> order) + 16;
      while (pfn !== NIL) {
        if (--steps < 0) throw new OracleViolation({ oracle: 'free-list', message: `reporter walk of free_area[${order}] did not end: more steps than the ${z[fa + FA_NR_FREE]} listed blocks under the zone lock (the list loops)`, pfn });
        // Bounds and state of every entry are checked: with the lock held
        // this never fires; without it (no-zone-lock) the walk can follow a
        // link that a CPU is rewriting.
        if (pfn < 0 || pfn >= this.zone.nrPages) throw new OracleViolation({ oracle: 'free-list', message: `reporter walk of free_area[${order}] reached pfn ${pfn}, outside the zone`, pfn });
        const f = p[pfn * PAGE_WORDS + PG_FLAGS];
        const after = p[pfn * PAGE_WORDS + PG_NEXT];
        if ((f & PG_STATE_MASK) !== PG_BUDDY || f >>> ORDER_SHIFT !== order) throw new OracleViolation({ oracle: 'free-list', message: `reporter walk of free_area[${order}] met pfn ${pfn} which is ${describeFlags(f & 0xffffff)} order ${f >>> ORDER_SHIFT}, not a free block of that order`, pfn });
        // INJECTED (no-reported-skip): Reported blocks are not skipped.
        if ((f & PG_REPORTED) !== 0) {
          if (!this.inj.noReportedSkip) {
            pfn = after;
            continue;
          }
          this.m[this.mb + METRIC_INJECTED + INJECTED_NO_REPORTED_SKIP]++;
        }
        if (budget < 0) {
          // Out of budget: leave the rest for a later pass.
          Atomics.store(this.rep, REP_STATE, PAGE_REPORTING_REQUESTED);
          next = pfn;
          break;
        }
        if (off.offset > 0) {
          if (!this.isolate(pfn, order)) {
            next = pfn;
            break;
          }
          off.offset--;
          if (noLock) this.m[this.mb + METRIC_INJECTED + INJECTED_NO_ZONE_LOCK]++; // isolated without the zone lock
          this.sgPfn[off.offset] = pfn;
          this.sgOrder[off.offset] = order;
          pfn = after;
          continue;
        }
        // The list is full: make this first unprocessed block the head so
        // the next walk resumes here, drop the lock, report, retake, drain.
        this.zone.rotateToFront(pfn, order);
        if (noLock) this.lockZone(SITE_REPORT_DRAIN);
        this.beforeReport(0, capacity);
        this.unlockZone();
        err = this.reportBatch(0, capacity);
        off.offset = capacity;
        budget--;
        this.lockZone(SITE_REPORT_DRAIN);
        this.afterReport(0, capacity, err === 'ok');
        if (noLock) this.unlockZone();
        // The old next is stale: we dropped the lock.
        pfn = z[fa + FA_HEAD];
        steps = z[fa + FA_NR_FREE] + 1;
        if (err !== 'ok' || !this.serving() || ++restarts > restartsMax) {
          next = NIL;
          break;
        }
      }
      // Rotate any leftover pages to the head of the free list.
      if (next !== NIL && next !== z[fa + FA_HEAD] && (p[next * PAGE_WORDS + PG_FLAGS] & PG_STATE_MASK) === PG_BUDDY) this.zone.rotateToFront(next, order);
    } finally {
      this.unlockZone();
    }
    return err;
  }

  /** Zone lock held, just before a batch goes to the device. */
  private beforeReport(start: number, count: number): void {
    // INJECTED (early-putback): the blocks go back on the free list (and can
    // be allocated) before the device has acknowledged, i.e. discarded them.
    if (this.inj.earlyPutback) {
      this.drain(start, count, false);
      this.m[this.mb + METRIC_INJECTED + INJECTED_EARLY_PUTBACK] += count;
    }
  }

  /** Zone lock held, once the device acknowledged (or the report failed). */
  private afterReport(start: number, count: number, ok: boolean): void {
    if (this.inj.noIsolate || this.inj.earlyPutback) {
      // The blocks are already on the free list: only flag the ones that are
      // still free blocks of the same order, as drain would.
      if (ok) this.markReported(start, count);
    } else this.drain(start, count, ok || this.opts.flagFailed === true);
  }

  private markReported(start: number, count: number): void {
    for (let i = start; i < start + count; i++) {
      const pfn = this.sgPfn[i];
      const order = this.sgOrder[i];
      const g = this.pages[pfn * PAGE_WORDS + PG_FLAGS];
      if ((g & PG_STATE_MASK) === PG_BUDDY && g >>> ORDER_SHIFT === order && (g & PG_REPORTED) === 0) {
        this.zone.setReported(pfn, order);
        this.m[this.mb + RM_SET_REPORTED]++;
      }
    }
  }

  /** __isolate_free_page(): take a free block off its list for reporting. Zone lock held. */
  isolate(pfn: number, order: number): boolean {
    // Obey watermarks as if the block were being allocated: the zone must
    // stay strictly above min + 2^order (zone_watermark_ok() on a raised
    // order-0 watermark).
    if (!this.zone.watermarkOk(0, this.z[ZONE_WMARK_MIN] + (1 << order))) {
      this.m[this.mb + RM_ISOLATE_WMARK]++;
      return false;
    }
    // INJECTED (no-isolate): the block is sent but stays on the free list.
    if (tracer !== null) tracer.instant(TK_ISOLATE, pfn, order);
    if (this.inj.noIsolate) return true;
    this.isolateBlock(pfn, order);
    return true;
  }

  /** page_reporting_drain(): put isolated blocks back; flag Reported only if still a free block of the same order. Zone lock held. */
  drain(start: number, count: number, reported: boolean): void {
    for (let i = start; i < start + count; i++) {
      const pfn = this.sgPfn[i];
      const order = this.sgOrder[i];
      this.releaseIsolated(i);
      // __putback_isolated_page(): back through the free path without
      // raising a new report request (FPI_SKIP_REPORT_NOTIFY), to the tail.
      this.zone.freeOneLocked(pfn, order, true, false);
      if (!reported) {
        if (tracer !== null) tracer.instant(TK_PUTBACK, pfn, order, 0);
        continue;
      }
      const g = this.pages[pfn * PAGE_WORDS + PG_FLAGS];
      // If it merged with a buddy, the larger block is reported later at its own order.
      const flag = (g & PG_STATE_MASK) === PG_BUDDY && g >>> ORDER_SHIFT === order && (g & PG_REPORTED) === 0;
      if (flag) {
        this.zone.setReported(pfn, order);
        this.m[this.mb + RM_SET_REPORTED]++;
      }
      if (tracer !== null) tracer.instant(TK_PUTBACK, pfn, order, flag ? 1 : 0);
    }
  }
}

// The guest's free page reporting worker (mm/page_reporting.c) and the
// aeration v1 variant (Duyck, 2019), as pure logic over the shared zone. The reporter reaches
// the device only through the narrow ReportSink contract; it never touches
// ring code.
//
// State machine (docs/DESIGN.md §5), one Int32 word REP_STATE:
//   IDLE --(free path frees a block of order >= report order)--> REQUESTED
//        only the IDLE->REQUESTED transition schedules the delayed work
//        (bumps REP_REQUEST_GEN, which the reporter waits on);
//   REQUESTED --(work runs)--> ACTIVE;
//   ACTIVE --(pass done, cmpxchg)--> IDLE, or, if a request arrived during
//        the pass (state went back to REQUESTED), the work is rescheduled.

import { type Zone } from './buddy.js';
import {
  FA_HEAD,
  FA_NR_FREE,
  FA_NR_REPORTED,
  FA_WORDS,
  HDR_RUN_STATE,
  HDR_STATE_GEN,
  LOCK_ZONE,
  MAX_ORDER,
  METRIC_EXTRA,
  METRIC_HIST_BASE,
  NIL,
  PAGE_WORDS,
  PG_FLAGS,
  PG_NEXT,
  REP_REQUEST_GEN,
  REP_STATE,
  RUN_RUNNING,
  RUN_SETTLING,
  ZONE_FREE_AREA,
  ZONE_FREE_PAGES,
  ZONE_ISOLATED_PAGES,
  ZONE_WMARK_LOW,
  ZONE_WMARK_MIN,
  metricBase,
  type Views,
} from '../shm/layout.js';
import { record } from '../base/hist.js';
import { ORDER_SHIFT, describeFlags, PG_BUDDY, PG_ISOLATED, PG_REPORTED, PG_STATE_MASK } from './page.js';
import { SP_STATE, bump, clockMs, schedActive, schedPoint, waitWhileEquals } from '../locking/sync.js';
import { OracleViolation } from '../base/errors.js';
import { SITE_REPORT_DRAIN, SITE_REPORT_ISOLATE } from '../locking/sites.js';
import { TK_ISOLATE, TK_PASS, TK_PUTBACK, TK_REPORT, tracer } from '../locking/trace.js';

export const PAGE_REPORTING_IDLE = 0;
export const PAGE_REPORTING_REQUESTED = 1;
export const PAGE_REPORTING_ACTIVE = 2;
/** PAGE_REPORTING_CAPACITY upstream; aeration v1's VIRTIO_BALLOON_ARRAY_HINTS_MAX. */
export const PAGE_REPORTING_CAPACITY = 32;
/** Aeration v1's trigger: unhinted blocks in a free area past this. */
export const AERATION_HIGH_WATER = 32;

export type ReportStatus = 'ok' | 'error';

/** The one contract between the reporter and the device (driver side). */
export interface ReportSink {
  /** Hand blocks [start, start+count) of (pfns, orders) to the host and wait for the acknowledgement. */
  report(pfns: Int32Array, orders: Uint8Array, start: number, count: number): ReportStatus;
}

// Reporter metric fields (Float64, in the reporter thread's metric slot).
export const RM_REPORTS = METRIC_EXTRA + 0; // report() calls
export const RM_BLOCKS = METRIC_EXTRA + 1; // blocks handed to the device
export const RM_PAGES = METRIC_EXTRA + 2; // pages handed to the device
export const RM_REREPORTED = METRIC_EXTRA + 3; // blocks holding pages reported before (merged, reported again at a higher order)
export const RM_FAILS = METRIC_EXTRA + 4; // report() calls that failed
export const RM_PASSES = METRIC_EXTRA + 5; // page_reporting_process runs
export const RM_LOCK_HOLD_NS = METRIC_EXTRA + 6; // reporter time holding the zone lock
export const RM_RT_NS_TOTAL = METRIC_EXTRA + 7; // report round trips, total
export const RM_SKIPPED_WMARK = METRIC_EXTRA + 8; // passes skipped: zone below low + capacity << order
export const RM_ISOLATE_WMARK = METRIC_EXTRA + 9; // isolations refused by the min watermark
export const RM_SET_REPORTED = METRIC_EXTRA + 10; // blocks flagged Reported by drain
export const RM_RT_NS_MAX = METRIC_EXTRA + 11;
export const RM_REQUESTS_SEEN = METRIC_EXTRA + 12; // times the work was scheduled
/** Requests raised between a pass's final compareExchange (ACTIVE -> IDLE) and the reporter's next wait: seen only because the generation was read before the exchange. */
export const RM_REQUESTS_AT_PASS_END = METRIC_EXTRA + 13;
// Used elements the driver collected and validated (the `ring` oracle's runs);
// far from the fields above so other reporter counters can be added freely.
export const RM_RING_CHECKS = METRIC_EXTRA + 40;
// CPU metric field: requests this CPU raised from its free path.
export const CM_REPORT_REQUESTS = METRIC_EXTRA + 0;

/** Reporter-side switches, carried in ReportingOptions. */
export interface ReporterInjections {
  noIsolate: boolean;
  earlyPutback: boolean;
  noReportedSkip: boolean;
  noZoneLock: boolean;
  lostWakeup: boolean;
}

export interface ReportingOptions {
  mode: 'reporting' | 'aeration';
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
}

/**
 * Injection `lost-wakeup`: how long each side is held up between its plain
 * load of the state and its plain store: the worker at the end of a pass
 * (ACTIVE -> IDLE; a kworker can be preempted there), the free path between
 * reading the state and writing REQUESTED (an interrupt on that CPU). Without
 * it the window is a few nanoseconds and the race would need hours; 1 ms on
 * both sides makes it show within a run at --report-delay 0.
 */
export const LOST_WAKEUP_WINDOW_MS = 1;
const windowWord = new Int32Array(new SharedArrayBuffer(4));
/** Under --sched, make the split read-modify-write a scheduling point (true); running free, false. */
function inSchedPoint(obj: number): boolean {
  if (!schedActive()) return false;
  schedPoint(SP_STATE, obj);
  return true;
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
    if (opts.mode === 'aeration') {
      // The seed triggers on a free area's count of not-yet-hinted blocks.
      const fa = ZONE_FREE_AREA + order * FA_WORDS;
      if (z[fa + FA_NR_FREE] - z[fa + FA_NR_REPORTED] < AERATION_HIGH_WATER) return;
    }
    // Cheap check first: if a request is already pending, nothing to do.
    if (Atomics.load(rep, REP_STATE) === PAGE_REPORTING_REQUESTED) return;
    if (opts.inject?.lostWakeup) {
      // INJECTED (lost-wakeup): the exchange split into a load and a store.
      // A worker that finishes its pass in between (ACTIVE -> IDLE) is not
      // woken: we read ACTIVE, so we do not schedule, then store REQUESTED
      // over its IDLE, and every later free path sees REQUESTED and returns.
      const prev = Atomics.load(rep, REP_STATE);
      // Interrupted here: a real pause when running free, a scheduling point under --sched.
      if (!inSchedPoint(REP_STATE)) Atomics.wait(windowWord, 0, 0, LOST_WAKEUP_WINDOW_MS);
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
    bump(rep, REP_REQUEST_GEN);
  };
}

/** __page_reporting_request() as page_reporting_register() does for the initial flush. */
export function requestReporting(views: Views): void {
  const prev = Atomics.exchange(views.reporting, REP_STATE, PAGE_REPORTING_REQUESTED);
  if (prev === PAGE_REPORTING_IDLE) bump(views.reporting, REP_REQUEST_GEN);
}

export class PageReporting {
  readonly sgPfn: Int32Array;
  readonly sgOrder: Uint8Array;
  readonly m: Float64Array;
  readonly mb: number;
  private readonly rep: Int32Array;
  private readonly pages: Int32Array;
  private readonly z: Int32Array;

  constructor(
    readonly views: Views,
    readonly zone: Zone,
    readonly sink: ReportSink,
    readonly opts: ReportingOptions,
    readonly thread: number,
  ) {
    this.sgPfn = new Int32Array(opts.capacity);
    this.sgOrder = new Uint8Array(opts.capacity);
    this.m = views.metrics;
    this.mb = metricBase(thread);
    this.rep = views.reporting;
    this.pages = views.pages;
    this.z = views.zone;
    this.inj = { noIsolate: false, earlyPutback: false, noReportedSkip: false, noZoneLock: false, lostWakeup: false, ...opts.inject };
  }

  /** Fault injection switches (all false in a normal run). */
  private readonly inj: ReporterInjections;

  /** True while the reporter should serve: the run is RUNNING or SETTLING. */
  serving(): boolean {
    const s = Atomics.load(this.views.header, HDR_RUN_STATE);
    return s === RUN_RUNNING || s === RUN_SETTLING;
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
        const r = waitWhileEquals(this.rep, REP_REQUEST_GEN, lastGen, 100, stop);
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

  private sleep(ms: number): void {
    const h = this.views.header;
    // clockMs(): logical time when scheduled (--sched), wall time otherwise.
    const deadline = clockMs() + ms;
    for (;;) {
      const left = deadline - clockMs();
      if (left <= 0 || !this.serving()) return;
      waitWhileEquals(h, HDR_STATE_GEN, Atomics.load(h, HDR_STATE_GEN), Math.min(left, 50), () => !this.serving());
    }
  }

  /** page_reporting_process(): one pass. Returns true if it must run again. */
  process(): boolean {
    // ACTIVE lets us see requests that arrive during the pass.
    Atomics.store(this.rep, REP_STATE, PAGE_REPORTING_ACTIVE);
    this.m[this.mb + RM_PASSES]++;
    const tr = tracer;
    const t0 = tr !== null ? tr.nowUs() : 0;
    this.processZone();
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
        // Preempted here: a real pause when running free, a scheduling point under --sched.
        if (!inSchedPoint(REP_STATE)) Atomics.wait(windowWord, 0, 0, LOST_WAKEUP_WINDOW_MS);
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
    // Only run if the zone has headroom: low watermark + a full batch of the report order.
    const watermark = this.z[ZONE_WMARK_LOW] + (capacity << reportOrder);
    if (this.z[ZONE_FREE_PAGES] < watermark) {
      this.m[this.mb + RM_SKIPPED_WMARK]++;
      return 'ok';
    }
    const off = { offset: capacity };
    let err: ReportStatus = 'ok';
    if (this.opts.mode === 'reporting') {
      for (let order = reportOrder; order < MAX_ORDER && err === 'ok'; order++) err = this.cycle(order, off);
    } else {
      // aeration: fill from the highest order down, batch after batch
      for (let order = MAX_ORDER - 1; order >= reportOrder && err === 'ok'; order--) err = this.cycle(order, off);
    }
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

  private lockT0 = 0;
  private locked = false;
  private lockZone(site: number): void {
    this.zone.sync.lock(LOCK_ZONE, site);
    this.locked = true;
    this.lockT0 = performance.now();
  }
  private unlockZone(): void {
    if (!this.locked) return; // an exception escaped while the lock was dropped
    this.locked = false;
    this.m[this.mb + RM_LOCK_HOLD_NS] += (performance.now() - this.lockT0) * 1e6;
    this.zone.sync.unlock(LOCK_ZONE);
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
      // Per-list budget of report calls in this pass.
      // (Aeration v1 had no budget: it drains a free area in one go.)
      let budget = this.opts.mode === 'reporting' ? Math.ceil(z[fa + FA_NR_FREE] / (capacity * 16)) : Infinity;
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
        if ((f & PG_REPORTED) !== 0 && !this.inj.noReportedSkip) {
          pfn = after;
          continue;
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
    if (this.inj.earlyPutback) this.drain(start, count, false);
  }

  /** Zone lock held, once the device acknowledged (or the report failed). */
  private afterReport(start: number, count: number, ok: boolean): void {
    if (this.inj.noIsolate || this.inj.earlyPutback) {
      // The blocks are already on the free list: only flag the ones that are
      // still free blocks of the same order, as drain would.
      if (ok) this.markReported(start, count);
    } else this.drain(start, count, ok);
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
    const z = this.z;
    if (z[ZONE_FREE_PAGES] - (1 << order) < z[ZONE_WMARK_MIN]) {
      this.m[this.mb + RM_ISOLATE_WMARK]++;
      return false;
    }
    // INJECTED (no-isolate): the block is sent but stays on the free list.
    if (tracer !== null) tracer.instant(TK_ISOLATE, pfn, order);
    if (this.inj.noIsolate) return true;
    this.zone.delFromFreeList(pfn, order);
    this.zone.setHead(pfn, PG_ISOLATED, order);
    this.zone.setOwner(pfn, this.thread);
    z[ZONE_FREE_PAGES] -= 1 << order;
    z[ZONE_ISOLATED_PAGES] += 1 << order;
    return true;
  }

  /** page_reporting_drain(): put isolated blocks back; flag Reported only if still a free block of the same order. Zone lock held. */
  drain(start: number, count: number, reported: boolean): void {
    const z = this.z;
    for (let i = start; i < start + count; i++) {
      const pfn = this.sgPfn[i];
      const order = this.sgOrder[i];
      const f = this.pages[pfn * PAGE_WORDS + PG_FLAGS];
      if ((f & PG_STATE_MASK) !== PG_ISOLATED || f >>> ORDER_SHIFT !== order || this.zone.owner(pfn) !== this.thread) {
        throw new OracleViolation({ oracle: 'ownership', message: `reporter drain: isolated block pfn ${pfn} order ${order} is now ${describeFlags(f & 0xffffff)} order ${f >>> ORDER_SHIFT} owner ${this.zone.owner(pfn)}: someone took a block while it was in flight`, pfn });
      }
      z[ZONE_ISOLATED_PAGES] -= 1 << order;
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

  /** One report() call with metrics around it. */
  reportBatch(start: number, count: number): ReportStatus {
    const m = this.m;
    const mb = this.mb;
    let pages = 0;
    let again = 0;
    const host = this.views.hostResident;
    const dOff = this.views.layout.hostWords;
    for (let i = start; i < start + count; i++) {
      const order = this.sgOrder[i];
      pages += 1 << order;
      // Re-reported: some page of this block was discarded before and not touched since.
      const pfn = this.sgPfn[i];
      for (let w = pfn >>> 5; w < (pfn + (1 << order)) >>> 5; w++) {
        if (host[dOff + w] !== 0) {
          again++;
          break;
        }
      }
    }
    const t0 = performance.now();
    const st = this.sink.report(this.sgPfn, this.sgOrder, start, count);
    const t1 = performance.now();
    if (tracer !== null) tracer.emit(TK_REPORT, tracer.usOf(t0), (t1 - t0) * 1000, count, pages, st === 'ok' ? 1 : 0);
    const ns = (t1 - t0) * 1e6;
    m[mb + RM_REPORTS]++;
    m[mb + RM_RT_NS_TOTAL] += ns;
    if (ns > m[mb + RM_RT_NS_MAX]) m[mb + RM_RT_NS_MAX] = ns;
    record(m, mb + METRIC_HIST_BASE, ns);
    if (st === 'ok') {
      m[mb + RM_BLOCKS] += count;
      m[mb + RM_PAGES] += pages;
      m[mb + RM_REREPORTED] += again;
    } else m[mb + RM_FAILS]++;
    return st;
  }
}


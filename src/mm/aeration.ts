// Aeration v1 as posted (Alexander Duyck, "[PATCH v1 4/6] mm: Introduce
// "aerated" pages" and "[PATCH v1 5/6] mm: Add logic for separating
// "aerated" pages from "raw" pages", June 2019: mm/aeration.c), as pure logic
// over the shared zone. The device side of 6/6 (virtballoon_aerator_react)
// is the ReportSink (src/guest/balloon-driver.ts, aeration transport).
//
// How v1 differs from upstream free page reporting (src/mm/page-reporting.ts):
// - Trigger: a free (__free_one_page, not a pcp free) leaving a free area
//   of order >= AERATOR_MIN_ORDER with 32 or more raw (not aerated) blocks
//   sets the zone's ZONE_AERATION_REQUESTED bit (aerator_notify_free); only
//   the first request (refcnt 0 -> 1) schedules the work, after HZ / 10.
// - The worker (aerator_cycle) takes a reference, scrubs the zone while it
//   is requested, and repeats with no delay until its own reference is the
//   only one left (atomic_try_cmpxchg(refcnt, 1 -> 0)).
// - Boundaries: while ZONE_AERATION_ACTIVE, each free list keeps its
//   aerated blocks as one run at its end; FA_BOUNDARY is the first of them,
//   raw blocks freed "to the tail" go in front of it (src/mm/buddy.ts).
// - Fill (aerator_fill): from the highest order down, get_aeration_page()
//   takes the raw block just above the boundary (the coldest raw block, O(1),
//   no list walk and no rotation); if that block is aerated (no boundary
//   yet), the list's head, if raw. NO watermark check anywhere: a fill can
//   take 32 x 4 MiB out of the free lists with the zone below its min
//   watermark, for a whole device round trip. A fill that cannot fill a
//   whole batch clears the request and drops its reference.
// - Drain (put_aeration_page): __free_one_page(aerated) to the tail; a block
//   that merged is raw again and may raise a new request.
//
// Shared state: zone words ZONE_AERATION_REQUESTED / ZONE_AERATION_ACTIVE
// and FA_BOUNDARY (zone lock held for every access, as the zone flags are
// set and tested under it upstream), and REP_AER_REFCNT (atomic_t refcnt)
// with REP_REQUEST_GEN, the delayed work's wake word.

import { SITE_REPORT_DRAIN, SITE_REPORT_ISOLATE } from '../locking/sites.js';
import { bump, waitWhileEquals } from '../locking/sync.js';
import { FA_BOUNDARY, FA_HEAD, FA_NR_FREE, FA_NR_REPORTED, FA_TAIL, FA_WORDS, LOCK_ZONE, MAX_ORDER, NIL, PAGE_WORDS, PG_FLAGS, PG_PREV, REP_AER_REFCNT, REP_REQUEST_GEN, ZONE_AERATION_ACTIVE, ZONE_AERATION_REQUESTED, ZONE_FREE_AREA, ZONE_FREE_PAGES, ZONE_ISOLATED_PAGES, ZONE_WMARK_MIN, metricBase, type Views, INJECTED_EARLY_PUTBACK, INJECTED_LOST_WAKEUP, INJECTED_NO_REPORTED_SKIP, INJECTED_NO_ZONE_LOCK, METRIC_INJECTED } from '../shm/layout.js';
import type { Zone } from './buddy.js';
import { TK_ISOLATE, TK_PASS, TK_PUTBACK, tracer } from '../locking/trace.js';
import { ORDER_SHIFT, PG_BUDDY, PG_REPORTED, PG_STATE_MASK } from './page.js';
import { CM_REPORT_REQUESTS, RM_ISOLATED_BELOW_MIN, RM_PASSES, RM_REQUESTS_SEEN, RM_SET_REPORTED, ReporterBase, type ReportSink, type ReportStatus, type ReporterInjections, REQUEST_WAIT, injectedWindow } from './reporter-common.js';

/** AERATOR_HWM: raw blocks in a free area that make a free request aeration. */
export const AERATOR_HWM = 32;

export interface AerationOptions {
  /** Blocks per batch (aerator_dev_info->capacity: the driver's 32 hints). */
  capacity: number;
  /** AERATOR_MIN_ORDER (pageblock order upstream; --report-order). */
  minOrder: number;
  /** The delayed work's delay on the first request (HZ / 10). */
  delayMs: number;
  inject?: Partial<ReporterInjections>;
}

const isAerated = (pages: Int32Array, pfn: number): boolean => (pages[pfn * PAGE_WORDS + PG_FLAGS] & PG_REPORTED) !== 0;

/** Raw (not aerated) blocks on free_area[order] (aerator_raw_pages()). */
export const rawBlocks = (z: Int32Array, order: number): number => z[ZONE_FREE_AREA + order * FA_WORDS + FA_NR_FREE] - z[ZONE_FREE_AREA + order * FA_WORDS + FA_NR_REPORTED];

/**
 * __aerator_notify(): request aeration of the zone; the first reference
 * schedules the work. Zone lock held (the REQUESTED bit is set under it).
 */
function aeratorNotify(views: Views): boolean {
  views.zone[ZONE_AERATION_REQUESTED] = 1;
  // atomic_fetch_inc(): only the 0 -> 1 transition schedules the work.
  if (Atomics.add(views.reporting, REP_AER_REFCNT, 1) !== 0) return false;
  // schedule_delayed_work(&aerator_work, HZ / 10): publish by bumping the
  // generation word the worker sleeps on (seq-cst add, then notify).
  bump(views.reporting, REP_REQUEST_GEN);
  return true;
}

/**
 * aerator_notify_free(): called from __free_one_page (zone lock held) when
 * a block of order >= AERATOR_MIN_ORDER landed on a free list raw.
 */
export function makeAeratorNotifier(views: Views, minOrder: number, thread: number): (order: number) => void {
  const z = views.zone;
  const m = views.metrics;
  const mb = metricBase(thread);
  return (order: number) => {
    if (order < minOrder) return;
    if (z[ZONE_AERATION_REQUESTED] !== 0) return;
    if (rawBlocks(z, order) < AERATOR_HWM) return;
    if (aeratorNotify(views)) m[mb + CM_REPORT_REQUESTS]++;
  };
}

/** aerator_startup() -> aerator_schedule_initial_aeration(): request every zone once the device is up. */
export function aeratorStartup(views: Views, zone: Zone): void {
  zone.sync.lock(LOCK_ZONE, SITE_REPORT_ISOLATE);
  try {
    aeratorNotify(views);
  } finally {
    zone.sync.unlock(LOCK_ZONE);
  }
}

/**
 * After a device reset (--device-faults reset): the driver's registration
 * asks for the zone again, as aerator_startup() does, unless it is
 * requested already (a second reference would never be dropped).
 */
export function aeratorRegisterAgain(views: Views, zone: Zone): void {
  zone.sync.lock(LOCK_ZONE, SITE_REPORT_ISOLATE);
  try {
    if (views.zone[ZONE_AERATION_REQUESTED] === 0) aeratorNotify(views);
  } finally {
    zone.sync.unlock(LOCK_ZONE);
  }
}

export class Aerator extends ReporterBase {
  private readonly notify: (order: number) => void;
  /** Blocks in the current batch. */
  private n = 0;

  constructor(
    views: Views,
    zone: Zone,
    sink: ReportSink,
    readonly opts: AerationOptions,
    thread: number,
  ) {
    super(views, zone, sink, opts.capacity, thread, opts.inject);
    this.notify = makeAeratorNotifier(views, opts.minOrder, thread);
  }

  /**
   * The work item: wait until scheduled (a 0 -> 1 request), sleep HZ / 10,
   * run aerator_cycle(). Every wait is bounded and ends when the run stops.
   */
  run(): void {
    const rep = this.rep;
    let lastGen = Atomics.load(rep, REP_REQUEST_GEN);
    let scheduled = Atomics.load(rep, REP_AER_REFCNT) > 0;
    const stop = () => !this.serving();
    while (this.serving()) {
      if (!scheduled) {
        // Read before the wait: a request after this read bumps past it.
        if (waitWhileEquals(rep, REP_REQUEST_GEN, lastGen, 100, stop, 0, REQUEST_WAIT) !== 'changed') continue;
        lastGen = Atomics.load(rep, REP_REQUEST_GEN);
      }
      scheduled = false;
      if (this.opts.delayMs > 0) this.sleep(this.opts.delayMs);
      if (!this.serving()) break;
      this.m[this.mb + RM_REQUESTS_SEEN]++;
      // The generation before the cycle ends: a request that schedules the
      // work after the final exchange bumps past it.
      lastGen = Atomics.load(rep, REP_REQUEST_GEN);
      this.cycle();
    }
  }

  /**
   * aerator_cycle(): hold one extra reference, scrub while requests remain
   * (no delay between rounds), and go idle only from refcnt 1 -> 0.
   */
  cycle(): void {
    const rep = this.rep;
    // Between passes the driver may reset its device, then register again.
    if (this.sink.betweenPasses?.()) aeratorRegisterAgain(this.views, this.zone);
    Atomics.add(rep, REP_AER_REFCNT, 1);
    // Bounded: each round either finds the zone requested and reports, or
    // sees only its own reference and leaves; stopping leaves too.
    for (let round = 0; round < 1_000_000; round++) {
      this.scrubZone();
      if (!this.serving()) {
        // Stopping: the work is cancelled with the references it holds.
        Atomics.store(rep, REP_AER_REFCNT, 0);
        return;
      }
      const refcnt = Atomics.load(rep, REP_AER_REFCNT);
      if (refcnt !== 1) continue;
      if (this.inj.lostWakeup) {
        // INJECTED (lost-wakeup): atomic_try_cmpxchg split into a load and a
        // store: a request's fetch_inc in between (1 -> 2, schedules nothing)
        // is overwritten with 0, and with the REQUESTED bit left set every
        // later free returns early: the zone is never aerated again.
        this.m[this.mb + METRIC_INJECTED + INJECTED_LOST_WAKEUP]++; // the split try_cmpxchg ran
        injectedWindow(REP_AER_REFCNT);
        Atomics.store(rep, REP_AER_REFCNT, 0);
        return;
      }
      if (Atomics.compareExchange(rep, REP_AER_REFCNT, 1, 0) === 1) return;
    }
    throw new Error('aeration: aerator_cycle did not go idle within 1e6 rounds');
  }

  /** aerator_scrub_zone(): fill, react, drain while the zone is requested; the zone lock is held but for the round trip. */
  scrubZone(): void {
    const z = this.z;
    // A racy test, as test_bit() is; the fill works under the lock.
    if (z[ZONE_AERATION_REQUESTED] === 0) return;
    this.m[this.mb + RM_PASSES]++;
    const tr = tracer;
    const t0 = tr !== null ? tr.nowUs() : 0;
    try {
      this.scrubLocked();
    } finally {
      if (tr !== null) tr.since(TK_PASS, t0);
    }
  }

  private scrubLocked(): void {
    const z = this.z;
    // INJECTED (no-zone-lock): the fill runs without the zone lock; the drain still takes it.
    const noLock = this.inj.noZoneLock;
    if (!noLock) this.lockZone(SITE_REPORT_ISOLATE);
    try {
      for (let rounds = 0; ; rounds++) {
        this.fill();
        if (this.n === 0) break;
        // INJECTED (early-putback): the blocks go back before the device acknowledged.
        if (this.inj.earlyPutback) {
          if (noLock) this.lockZone(SITE_REPORT_DRAIN);
          this.putBack(false);
          this.m[this.mb + METRIC_INJECTED + INJECTED_EARLY_PUTBACK] += this.n;
          if (noLock) this.unlockZone();
        }
        if (!noLock) this.unlockZone();
        // virtballoon_aerator_react(): the batch goes to the device; back after the ack.
        const st: ReportStatus = this.serving() ? this.reportBatch(0, this.n) : 'error';
        this.lockZone(SITE_REPORT_DRAIN);
        // aerator_populate_boundaries(): set before aerated blocks go back,
        // kept until the zone is done.
        if (z[ZONE_AERATION_ACTIVE] === 0) {
          this.resetBoundaries();
          z[ZONE_AERATION_ACTIVE] = 1;
        }
        if (this.inj.earlyPutback) this.markAerated(st === 'ok');
        else this.putBack(st === 'ok');
        this.n = 0;
        if (noLock) this.unlockZone();
        // Keep pulling blocks till there are none to pull (bounded: the rest is a later round's).
        if (st !== 'ok' || z[ZONE_AERATION_REQUESTED] === 0 || !this.serving() || rounds > 4 * (this.zone.nrPages >> this.opts.minOrder) + 16) break;
      }
      if (noLock) this.lockZone(SITE_REPORT_DRAIN);
      z[ZONE_AERATION_ACTIVE] = 0;
      this.resetBoundaries();
    } finally {
      this.unlockZone();
    }
  }

  private resetBoundaries(): void {
    for (let o = this.opts.minOrder; o < MAX_ORDER; o++) this.z[ZONE_FREE_AREA + o * FA_WORDS + FA_BOUNDARY] = NIL;
  }

  /** aerator_fill(): up to a batch of raw blocks, highest order first; a fill that falls short ends the request. Zone lock held. */
  fill(): void {
    this.n = 0;
    let budget = this.opts.capacity;
    for (let order = MAX_ORDER - 1; order >= this.opts.minOrder; order--) {
      let cursor = NIL; // no-isolate: the walk goes on from here, the blocks stay listed
      for (;;) {
        const pfn = this.getAerationPage(order, cursor);
        if (pfn === NIL) break;
        this.sgPfn[this.n] = pfn;
        this.sgOrder[this.n] = order;
        this.n++;
        if (this.inj.noZoneLock) this.m[this.mb + METRIC_INJECTED + INJECTED_NO_ZONE_LOCK]++; // taken without the zone lock
        if (this.inj.noIsolate) cursor = pfn;
        if (--budget === 0) return;
      }
    }
    // Not enough free blocks to fill a batch: stop aerating this zone.
    this.z[ZONE_AERATION_REQUESTED] = 0;
    Atomics.sub(this.rep, REP_AER_REFCNT, 1);
  }

  /**
   * get_aeration_page(): the raw block just above the boundary (the list's
   * last entry when no boundary is set); if that one is aerated, the list's
   * first entry if it is raw. Taken off the free list with no watermark
   * check. Zone lock held. `cursor` (no-isolate only): continue backwards
   * from there, since nothing leaves the list.
   */
  getAerationPage(order: number, cursor: number): number {
    const z = this.z;
    const p = this.pages;
    const fa = ZONE_FREE_AREA + order * FA_WORDS;
    let cand: number;
    if (cursor !== NIL) {
      cand = p[cursor * PAGE_WORDS + PG_PREV];
      while (cand !== NIL && isAerated(p, cand)) cand = p[cand * PAGE_WORDS + PG_PREV];
      return cand;
    }
    const boundary = z[fa + FA_BOUNDARY];
    cand = boundary === NIL ? z[fa + FA_TAIL] : p[boundary * PAGE_WORDS + PG_PREV];
    if (cand === NIL) return NIL;
    // INJECTED (no-reported-skip): an aerated block is taken like a raw one.
    if (isAerated(p, cand)) {
      if (this.inj.noReportedSkip) this.m[this.mb + METRIC_INJECTED + INJECTED_NO_REPORTED_SKIP]++;
      else {
        cand = z[fa + FA_HEAD];
        if (isAerated(p, cand)) return NIL;
      }
    }
    if (tracer !== null) tracer.instant(TK_ISOLATE, cand, order);
    // INJECTED (no-isolate): the block is sent but stays on the free list.
    if (this.inj.noIsolate) return cand;
    this.isolateBlock(cand, order);
    // The hazard v1 carries: nothing kept the zone above its min watermark.
    if (z[ZONE_FREE_PAGES] < z[ZONE_WMARK_MIN]) this.m[this.mb + RM_ISOLATED_BELOW_MIN] += 1 << order;
    return cand;
  }

  /**
   * aerator_drain() / put_aeration_page(): every block back through
   * __free_one_page to the tail; aerated if it did not merge (the boundary
   * moves to it), otherwise raw, and the merge may request aeration again.
   * Zone lock held.
   */
  putBack(aerated: boolean): void {
    if (this.inj.noIsolate) {
      this.markAerated(aerated);
      return;
    }
    for (let i = 0; i < this.n; i++) {
      const pfn = this.sgPfn[i];
      const order = this.sgOrder[i];
      this.releaseIsolated(i);
      const merged = this.zone.freeOneLocked(pfn, order, true, false);
      const flag = merged === order && aerated;
      if (flag) {
        this.zone.setReported(pfn, order);
        this.m[this.mb + RM_SET_REPORTED]++;
      } else if (merged !== order) this.notify(merged);
      if (tracer !== null) tracer.instant(TK_PUTBACK, pfn, order, flag ? 1 : 0);
    }
  }

  /** The injections whose blocks are already on the free lists: flag the ones still free blocks of their order. Zone lock held. */
  private markAerated(aerated: boolean): void {
    if (!aerated) return;
    for (let i = 0; i < this.n; i++) {
      const pfn = this.sgPfn[i];
      const order = this.sgOrder[i];
      const f = this.pages[pfn * PAGE_WORDS + PG_FLAGS];
      if ((f & PG_STATE_MASK) === PG_BUDDY && f >>> ORDER_SHIFT === order && (f & PG_REPORTED) === 0) {
        this.zone.setReported(pfn, order);
        this.m[this.mb + RM_SET_REPORTED]++;
      }
    }
  }
}

/** Pages isolated right now (for the end table). */
export const isolatedPages = (views: Views): number => views.zone[ZONE_ISOLATED_PAGES];

// The buddy allocator over the shared struct-page array and zone words
// (mm/page_alloc.c in miniature): one zone, one migratetype (movable), orders
// 0..MAX_ORDER-1, and per-CPU page lists as Linux 6.1 has them.
//
// struct page word PG_FLAGS holds PG_* bits and, in bits 24..27, the order of
// the block whose head this page is. Only head pages carry state; tail pages
// of a block are 0, so the page array partitions exactly into blocks, which
// is what the conservation check walks.
//
// Per-CPU lists (struct per_cpu_pages, on by default; --no-pcp turns them
// off): one list per order 0..PAGE_ALLOC_COSTLY_ORDER and one for pageblock
// order (THP), pcp_allowed_order(). An allocation of such an order by a CPU
// takes the list's first block, refilling an empty list with a batch from the
// buddy lists under one zone lock hold (rmqueue_bulk); a free puts the block
// at the list's head, and once pcp->count reaches pcp->high a batch goes back
// to the buddy lists under one zone lock hold (free_pcppages_bulk), oldest
// first, round robin over the lists, each block through __free_one_page.
// Only then does it merge, and only a merge there (or a free that bypasses
// the pcp) calls page_reporting_notify_free(): a free into a pcp list raises
// no report request. Batch, high and the drain count follow Linux 6.1:
// zone_batchsize(), zone_highsize(), nr_pcp_free() with pcp->free_factor, and
// free_high for orders 1..3. Not modelled: per-migratetype lists, the
// ZONE_RECLAIM_ACTIVE limit on high, vmstat's periodic drain.
//
// Locking: every free-list and struct-page change happens under the zone lock
// (LOCK_ZONE), except a CPU's own pcp lists, which only that CPU touches.

import { SITE_ALLOC, SITE_FREE, SITE_PCP_DRAIN, SITE_PCP_REFILL } from '../locking/sites.js';
import {
  FA_BOUNDARY,
  FA_HEAD,
  FA_NR_FREE,
  FA_NR_REPORTED,
  FA_TAIL,
  FA_WORDS,
  INJECTED_KEEP_REPORTED_ON_MERGE,
  LOCK_ZONE,
  METRIC_INJECTED,
  MAX_ORDER,
  NIL,
  NR_PCP_LISTS,
  PAGEBLOCK_ORDER,
  PAGE_ALLOC_COSTLY_ORDER,
  PAGE_WORDS,
  PCP_COUNT,
  PCP_FREE_FACTOR,
  PCP_LISTS,
  PG_FLAGS,
  PG_NEXT,
  PG_OWNER,
  PG_PREV,
  ZONE_AERATION_ACTIVE,
  ZONE_AERATION_REQUESTED,
  ZONE_BALLOON_LIST_BLOCKS,
  ZONE_BALLOON_LIST_HEAD,
  ZONE_BALLOON_PAGES,
  ZONE_FREE_AREA,
  ZONE_FREE_PAGES,
  ZONE_ISOLATED_PAGES,
  ZONE_MANAGED,
  ZONE_PCP_BATCH,
  ZONE_PCP_HIGH,
  ZONE_REPORTED_PAGES,
  ZONE_WMARK_HIGH,
  ZONE_WMARK_LOW,
  ZONE_WMARK_MIN,
  metricBase,
  pcpBase,
  type Views,
} from '../shm/layout.js';
import { SP_PAGE, schedPoint, type Sync } from '../locking/sync.js';
import { FLAGS_MASK, ORDER_SHIFT, PG_ALLOCATED, PG_BUDDY, PG_PCP, PG_REPORTED, PG_REPORTED_SHIFT, PG_STATE_MASK, describeFlags } from './page.js';
import { OracleViolation } from '../base/errors.js';
import { TK_ALLOC, TK_FREE, tracer } from '../locking/trace.js';

export interface ZoneOptions {
  /** Per-CPU page lists (struct per_cpu_pages). */
  pcp: boolean;
  /** pcp->batch; 0: zone_batchsize() from the zone's size. */
  pcpBatch: number;
  /** pcp->high; 0: zone_highsize() from the low watermark and the CPUs. */
  pcpHigh: number;
}

export const DEFAULT_ZONE_OPTIONS: ZoneOptions = { pcp: true, pcpBatch: 0, pcpHigh: 0 };

/** watermark_scale_factor's default (10 = 0.1% of the zone between watermarks). */
const WATERMARK_SCALE_FACTOR = 10;

/**
 * The zone's watermarks as Linux 6.1 sets them (calculate_min_free_kbytes,
 * __setup_per_zone_wmarks), in pages: min_free_kbytes = sqrt(16 * kbytes)
 * clamped to 128..262144; low = min + tmp, high = low + tmp with
 * tmp = max(min / 4, managed * watermark_scale_factor / 10000).
 */
export function watermarks(pages: number): { min: number; low: number; high: number } {
  const kbytes = pages * 4;
  let minKb = Math.floor(Math.sqrt(kbytes * 16));
  minKb = Math.max(128, Math.min(262144, minKb));
  const min = Math.max(1, Math.floor(minKb / 4));
  const tmp = Math.max(min >> 2, Math.floor((pages * WATERMARK_SCALE_FACTOR) / 10000));
  return { min, low: min + tmp, high: min + 2 * tmp };
}

const roundDownPow2 = (n: number): number => (n < 1 ? 0 : 2 ** Math.floor(Math.log2(n)));

/**
 * zone_batchsize() (Linux 6.1, CONFIG_MMU): about 0.1% of the zone or 1 MiB,
 * a quarter of it, then 2^n - 1; at least 1, as zone_set_pageset_high_and_batch()
 * takes max(1, zone_batchsize()).
 */
export function zoneBatchsize(managedPages: number): number {
  let batch = Math.min(managedPages >> 10, (1024 * 1024) / 4096);
  batch = Math.floor(batch / 4);
  if (batch < 1) batch = 1;
  return Math.max(1, roundDownPow2(batch + (batch >> 1)) - 1);
}

/** zone_highsize() (Linux 6.1, percpu_pagelist_high_fraction 0): the low watermark split over the zone's CPUs, at least 4 batches. */
export function zoneHighsize(lowWmarkPages: number, cpus: number, batch: number): number {
  return Math.max(Math.floor(lowWmarkPages / Math.max(1, cpus)), batch << 2);
}

/** pcp_allowed_order(): orders the per-CPU lists hold (0..3 and pageblock order, with THP). */
export const pcpAllowedOrder = (order: number): boolean => order <= PAGE_ALLOC_COSTLY_ORDER || order === PAGEBLOCK_ORDER;
/** order_to_pindex(): the pcp list of an allowed order. */
export const pcpListOf = (order: number): number => (order <= PAGE_ALLOC_COSTLY_ORDER ? order : NR_PCP_LISTS - 1);
/** pindex_to_order(). */
export const PCP_LIST_ORDERS: readonly number[] = [0, 1, 2, 3, PAGEBLOCK_ORDER];

export class Zone {
  readonly pages: Int32Array;
  readonly zone: Int32Array;
  readonly nrPages: number;
  readonly cpus: number;
  /** Set by the reporter integration: page_reporting_notify_free(order). */
  onHighOrderFree: ((order: number) => void) | null = null;
  /** Orders >= this raise onHighOrderFree (page_reporting_order). */
  reportOrder = MAX_ORDER;
  /**
   * Free page hint: the balloon's shrinker (src/guest/free-page-hint.ts makeShrinker), called by a
   * CPU whose allocation failed; returns how many blocks it gave back.
   */
  shrinker: ((order: number, thread: number) => number) | null = null;
  /**
   * The allocation slow path's reclaim (kswapd, direct reclaim), called when
   * an allocation finds the zone at or below its low watermark, before the
   * retry against the min watermark. Nothing in the guest is reclaimable
   * unless a mode installs it.
   */
  reclaim: ((order: number, thread: number) => void) | null = null;
  /**
   * Free page hint: the host's write tracking, taken on the vCPU before it
   * writes the pages [pfn, pfn + count) of a block (KVM dirty logging, a
   * userfaultfd write-protect fault; src/host/hint-tracking.ts). Called by
   * the CPU's workload.
   */
  pagesWritten: ((pfn: number, count: number) => void) | null = null;
  /** Free page hint's oracles (src/check/live-data.ts): the CPU has written [pfn, pfn + count); its data is live. */
  pagesStamped: ((pfn: number, count: number) => void) | null = null;
  /** Free page hint's oracles: the CPU frees [pfn, pfn + count); its data is dead. */
  dataFreed: ((pfn: number, count: number) => void) | null = null;
  /** Injection `keep-reported-on-merge`: a merge does not clear PageReported. */
  keepReportedOnMerge = false;
  /** Aeration v1: lowest order with a boundary (AERATOR_MIN_ORDER). */
  aerationMinOrder = MAX_ORDER;

  constructor(
    readonly views: Views,
    readonly sync: Sync,
    readonly opts: ZoneOptions = DEFAULT_ZONE_OPTIONS,
  ) {
    this.pages = views.pages;
    this.zone = views.zone;
    this.nrPages = views.layout.pages;
    this.cpus = views.layout.params.cpus;
  }

  // ---------- set-up (main thread, before any role starts) ----------

  /** Lay the whole of guest memory out as free blocks, largest aligned first. */
  init(): void {
    const z = this.zone;
    for (let o = 0; o < MAX_ORDER; o++) {
      z[ZONE_FREE_AREA + o * FA_WORDS + FA_HEAD] = NIL;
      z[ZONE_FREE_AREA + o * FA_WORDS + FA_TAIL] = NIL;
      z[ZONE_FREE_AREA + o * FA_WORDS + FA_NR_FREE] = 0;
      z[ZONE_FREE_AREA + o * FA_WORDS + FA_NR_REPORTED] = 0;
      z[ZONE_FREE_AREA + o * FA_WORDS + FA_BOUNDARY] = NIL;
    }
    this.pages.fill(0);
    z[ZONE_FREE_PAGES] = 0;
    z[ZONE_ISOLATED_PAGES] = 0;
    z[ZONE_REPORTED_PAGES] = 0;
    z[ZONE_BALLOON_PAGES] = 0;
    z[ZONE_BALLOON_LIST_HEAD] = NIL;
    z[ZONE_BALLOON_LIST_BLOCKS] = 0;
    z[ZONE_AERATION_REQUESTED] = 0;
    z[ZONE_AERATION_ACTIVE] = 0;
    z[ZONE_MANAGED] = this.nrPages;
    const w = watermarks(this.nrPages);
    z[ZONE_WMARK_MIN] = w.min;
    z[ZONE_WMARK_LOW] = w.low;
    z[ZONE_WMARK_HIGH] = w.high;
    const batch = this.opts.pcpBatch > 0 ? this.opts.pcpBatch : zoneBatchsize(this.nrPages);
    z[ZONE_PCP_BATCH] = batch;
    z[ZONE_PCP_HIGH] = this.opts.pcpHigh > 0 ? this.opts.pcpHigh : zoneHighsize(w.low, this.cpus, batch);
    for (let pfn = 0; pfn < this.nrPages; ) {
      let o = MAX_ORDER - 1;
      while (o > 0 && ((pfn & ((1 << o) - 1)) !== 0 || pfn + (1 << o) > this.nrPages)) o--;
      this.setHead(pfn, PG_BUDDY, o);
      this.addToFreeList(pfn, o, true);
      z[ZONE_FREE_PAGES] += 1 << o;
      pfn += 1 << o;
    }
    for (let cpu = 0; cpu < this.cpus; cpu++) {
      const b = pcpBase(cpu);
      z[b + PCP_COUNT] = 0;
      z[b + PCP_FREE_FACTOR] = 0;
      for (let i = 0; i < NR_PCP_LISTS; i++) {
        z[b + PCP_LISTS + 2 * i] = NIL;
        z[b + PCP_LISTS + 2 * i + 1] = NIL;
      }
    }
  }

  // ---------- struct page helpers ----------

  flags(pfn: number): number {
    return this.pages[pfn * PAGE_WORDS + PG_FLAGS] & FLAGS_MASK;
  }
  order(pfn: number): number {
    return (this.pages[pfn * PAGE_WORDS + PG_FLAGS] >>> ORDER_SHIFT) & 0xf;
  }
  owner(pfn: number): number {
    return this.pages[pfn * PAGE_WORDS + PG_OWNER] - 1;
  }
  setHead(pfn: number, flags: number, order: number): void {
    this.pages[pfn * PAGE_WORDS + PG_FLAGS] = flags | (order << ORDER_SHIFT);
    schedPoint(SP_PAGE, pfn); // page state change: a scheduling point under --sched (no-op running free)
  }
  setFlags(pfn: number, flags: number): void {
    const i = pfn * PAGE_WORDS + PG_FLAGS;
    this.pages[i] = (this.pages[i] & ~FLAGS_MASK) | flags;
  }
  setOwner(pfn: number, thread: number): void {
    this.pages[pfn * PAGE_WORDS + PG_OWNER] = thread + 1;
  }
  clearHead(pfn: number): void {
    const b = pfn * PAGE_WORDS;
    this.pages[b + PG_FLAGS] = 0;
    this.pages[b + PG_NEXT] = 0;
    this.pages[b + PG_PREV] = 0;
    this.pages[b + PG_OWNER] = 0;
  }

  freeArea(order: number, field: number): number {
    return this.zone[ZONE_FREE_AREA + order * FA_WORDS + field];
  }
  get freePages(): number {
    return this.zone[ZONE_FREE_PAGES];
  }
  get wmarkMin(): number {
    return this.zone[ZONE_WMARK_MIN];
  }
  get wmarkLow(): number {
    return this.zone[ZONE_WMARK_LOW];
  }
  get wmarkHigh(): number {
    return this.zone[ZONE_WMARK_HIGH];
  }
  get pcpBatch(): number {
    return this.zone[ZONE_PCP_BATCH];
  }
  get pcpHigh(): number {
    return this.zone[ZONE_PCP_HIGH];
  }

  /**
   * __zone_watermark_ok() for ALLOC_WMARK_* without reserves: free pages,
   * less the block's own pages but one, must stay strictly above `mark`.
   * A racy read, as zone_watermark_fast() is.
   */
  watermarkOk(order: number, mark: number): boolean {
    return this.zone[ZONE_FREE_PAGES] - ((1 << order) - 1) > mark;
  }

  // ---------- free lists (zone lock held) ----------

  addToFreeList(pfn: number, order: number, toTail: boolean): void {
    const p = this.pages;
    const z = this.zone;
    const fa = ZONE_FREE_AREA + order * FA_WORDS;
    const head = z[fa + FA_HEAD];
    // Aeration v1: while a boundary is set, "the tail" for raw blocks is just
    // in front of the aerated run (aerator_get_tail()); NIL otherwise.
    const boundary = z[fa + FA_BOUNDARY];
    if (head === NIL) {
      p[pfn * PAGE_WORDS + PG_NEXT] = NIL;
      p[pfn * PAGE_WORDS + PG_PREV] = NIL;
      z[fa + FA_HEAD] = pfn;
      z[fa + FA_TAIL] = pfn;
    } else if (toTail && boundary !== NIL) {
      const prev = p[boundary * PAGE_WORDS + PG_PREV];
      p[pfn * PAGE_WORDS + PG_NEXT] = boundary;
      p[pfn * PAGE_WORDS + PG_PREV] = prev;
      p[boundary * PAGE_WORDS + PG_PREV] = pfn;
      if (prev === NIL) z[fa + FA_HEAD] = pfn;
      else p[prev * PAGE_WORDS + PG_NEXT] = pfn;
    } else if (toTail) {
      const tail = z[fa + FA_TAIL];
      p[tail * PAGE_WORDS + PG_NEXT] = pfn;
      p[pfn * PAGE_WORDS + PG_PREV] = tail;
      p[pfn * PAGE_WORDS + PG_NEXT] = NIL;
      z[fa + FA_TAIL] = pfn;
    } else {
      p[head * PAGE_WORDS + PG_PREV] = pfn;
      p[pfn * PAGE_WORDS + PG_NEXT] = head;
      p[pfn * PAGE_WORDS + PG_PREV] = NIL;
      z[fa + FA_HEAD] = pfn;
    }
    z[fa + FA_NR_FREE]++;
  }

  delFromFreeList(pfn: number, order: number): void {
    const p = this.pages;
    const z = this.zone;
    const fa = ZONE_FREE_AREA + order * FA_WORDS;
    const next = p[pfn * PAGE_WORDS + PG_NEXT];
    const prev = p[pfn * PAGE_WORDS + PG_PREV];
    if (prev === NIL) z[fa + FA_HEAD] = next;
    else p[prev * PAGE_WORDS + PG_NEXT] = next;
    if (next === NIL) z[fa + FA_TAIL] = prev;
    else p[next * PAGE_WORDS + PG_PREV] = prev;
    p[pfn * PAGE_WORDS + PG_NEXT] = NIL;
    p[pfn * PAGE_WORDS + PG_PREV] = NIL;
    z[fa + FA_NR_FREE]--;
    // A block leaving a free list is no longer reported (upstream clears
    // PageReported in del_page_from_free_list). No branch on purpose: see
    // GuestMemory.touch on paths that first run once hinting starts.
    const fi = pfn * PAGE_WORDS + PG_FLAGS;
    const reported = (p[fi] & PG_REPORTED) >>> PG_REPORTED_SHIFT; // 0 or 1
    p[fi] &= ~PG_REPORTED;
    z[fa + FA_NR_REPORTED] -= reported;
    z[ZONE_REPORTED_PAGES] -= reported << order;
    // Aeration v1 (__aerator_del_from_boundary): the boundary block leaving
    // moves the boundary to the next one. A select, not a branch, for the
    // same reason (the comparison runs, and is always false, from the start).
    const boundary = z[fa + FA_BOUNDARY];
    z[fa + FA_BOUNDARY] = boundary === pfn ? next : boundary;
  }

  /** Flag a free block hinted (PageReported; aeration v1: PageAerated, which also becomes the boundary while active). */
  setReported(pfn: number, order: number): void {
    const i = pfn * PAGE_WORDS + PG_FLAGS;
    this.pages[i] |= PG_REPORTED;
    schedPoint(SP_PAGE, pfn);
    const fa = ZONE_FREE_AREA + order * FA_WORDS;
    this.zone[fa + FA_NR_REPORTED]++;
    this.zone[ZONE_REPORTED_PAGES] += 1 << order;
    // aerator_add_to_boundary(): the aerated run now starts at this block.
    if (this.zone[ZONE_AERATION_ACTIVE] !== 0 && order >= this.aerationMinOrder) this.zone[fa + FA_BOUNDARY] = pfn;
  }

  /** Make `pfn` the head of free_area[order] (list_rotate_to_front). */
  rotateToFront(pfn: number, order: number): void {
    const p = this.pages;
    const z = this.zone;
    const fa = ZONE_FREE_AREA + order * FA_WORDS;
    const head = z[fa + FA_HEAD];
    if (head === pfn || head === NIL) return;
    const tail = z[fa + FA_TAIL];
    const prev = p[pfn * PAGE_WORDS + PG_PREV];
    // splice [head..prev] after tail
    p[tail * PAGE_WORDS + PG_NEXT] = head;
    p[head * PAGE_WORDS + PG_PREV] = tail;
    p[prev * PAGE_WORDS + PG_NEXT] = NIL;
    p[pfn * PAGE_WORDS + PG_PREV] = NIL;
    z[fa + FA_HEAD] = pfn;
    z[fa + FA_TAIL] = prev;
  }

  /** __rmqueue_smallest: take a block of `order`, splitting a larger one. Zone lock held; no watermark check. */
  rmqueueSmallest(order: number, thread: number): number {
    const z = this.zone;
    for (let o = order; o < MAX_ORDER; o++) {
      const pfn = z[ZONE_FREE_AREA + o * FA_WORDS + FA_HEAD];
      if (pfn === NIL) continue;
      const f = this.pages[pfn * PAGE_WORDS + PG_FLAGS];
      if ((f & PG_STATE_MASK) !== PG_BUDDY || f >>> ORDER_SHIFT !== o) {
        throw new OracleViolation({ oracle: 'free-list', message: `free_area[${o}] head pfn ${pfn} is not a free block of order ${o} (flags 0x${(f & FLAGS_MASK).toString(16)}, order ${f >>> ORDER_SHIFT}): allocation of a non-free block`, pfn, cpu: thread });
      }
      this.delFromFreeList(pfn, o);
      // expand(): hand the upper halves back to the lower free lists.
      let hi = o;
      while (hi > order) {
        hi--;
        const buddy = pfn + (1 << hi);
        this.setHead(buddy, PG_BUDDY, hi);
        this.setOwner(buddy, -1);
        this.addToFreeList(buddy, hi, false);
      }
      z[ZONE_FREE_PAGES] -= 1 << order;
      return pfn;
    }
    return NIL;
  }

  /**
   * buddy_merge_likely(): after merging stopped at `order` (buddy `buddyPfn`
   * not free), is the buddy of the next order's block free? Then this block
   * is likely to merge soon, and __free_one_page puts it at the tail so it is
   * not allocated first.
   */
  private buddyMergeLikely(pfn: number, buddyPfn: number, order: number): boolean {
    if (order >= MAX_ORDER - 2) return false;
    const higher = buddyPfn & pfn;
    const hb = higher ^ (1 << (order + 1));
    if (hb + (1 << (order + 1)) > this.nrPages) return false;
    const f = this.pages[hb * PAGE_WORDS + PG_FLAGS];
    return (f & PG_STATE_MASK) === PG_BUDDY && f >>> ORDER_SHIFT === order + 1;
  }

  /**
   * __free_one_page: put a block back, merging with free buddies. Zone lock held.
   * Returns the order of the resulting block. `toTail`: FPI_TO_TAIL (the
   * reporter's put-back); otherwise the tail only when buddy_merge_likely().
   * `notify` false: FPI_SKIP_REPORT_NOTIFY (the reporter's put-back).
   */
  freeOneLocked(pfn: number, order: number, toTail: boolean, notify: boolean): number {
    const p = this.pages;
    this.zone[ZONE_FREE_PAGES] += 1 << order;
    let inheritReported = false;
    let buddyPfn = -1;
    while (order < MAX_ORDER - 1) {
      const buddy = pfn ^ (1 << order);
      buddyPfn = buddy;
      if (buddy + (1 << order) > this.nrPages) break;
      const bf = p[buddy * PAGE_WORDS + PG_FLAGS];
      if ((bf & PG_STATE_MASK) !== PG_BUDDY || bf >>> ORDER_SHIFT !== order) break;
      if ((bf & PG_REPORTED) !== 0 && this.keepReportedOnMerge) inheritReported = true;
      // Merging takes the buddy off its list, which clears its PageReported:
      // the merged block is unreported and will be reported at the new order.
      this.delFromFreeList(buddy, order);
      this.clearHead(pfn | buddy);
      pfn &= buddy;
      order++;
    }
    this.setHead(pfn, PG_BUDDY, order);
    this.setOwner(pfn, -1);
    this.addToFreeList(pfn, order, toTail || (buddyPfn >= 0 && this.buddyMergeLikely(pfn, buddyPfn, order)));
    if (inheritReported) {
      this.setReported(pfn, order);
      // Count the injection acting (src/check/inject.ts): a run where no
      // merge ever met a Reported buddy tested nothing.
      this.views.metrics[metricBase(this.sync.threadId) + METRIC_INJECTED + INJECTED_KEEP_REPORTED_ON_MERGE]++;
    }
    if (notify && order >= this.reportOrder && this.onHighOrderFree !== null) this.onHighOrderFree(order);
    return order;
  }

  // ---------- the CPU-facing API ----------

  /**
   * Allocate a block of 2^order pages for `thread` (get_page_from_freelist).
   * The watermark is checked first, locklessly (zone_watermark_fast): at or
   * below the low watermark the slow path runs the reclaim hook (kswapd, if
   * a mode installed one) and retries against the min watermark
   * (ALLOC_WMARK_MIN, no reserves). Then a CPU takes an order the pcp lists
   * hold from its own lists (rmqueue_pcplist), anything else comes from the
   * buddy lists under the zone lock (__rmqueue_smallest). NIL on failure.
   */
  alloc(order: number, thread: number, site = SITE_ALLOC): number {
    if (!this.watermarkOk(order, this.zone[ZONE_WMARK_LOW])) {
      if (this.reclaim !== null) this.reclaim(order, thread);
      if (!this.watermarkOk(order, this.zone[ZONE_WMARK_MIN])) return NIL;
    }
    if (this.opts.pcp && thread < this.cpus && pcpAllowedOrder(order)) return this.rmqueuePcplist(order, thread);
    const sync = this.sync;
    sync.lock(LOCK_ZONE, site);
    let pfn = NIL;
    try {
      pfn = this.rmqueueSmallest(order, thread);
      if (pfn !== NIL) this.prepNewPage(pfn, order, thread);
    } finally {
      sync.unlock(LOCK_ZONE);
    }
    return pfn;
  }

  /** Mark a just-taken block as allocated to `thread` (head flags, owner). */
  private prepNewPage(pfn: number, order: number, thread: number): void {
    this.setHead(pfn, PG_ALLOCATED, order);
    this.setOwner(pfn, thread);
    if (tracer !== null) tracer.instant(TK_ALLOC, pfn, order);
  }

  /** Check that `thread` owns the allocated block (pfn, order); throws the ownership violation. */
  checkOwned(pfn: number, order: number, thread: number, what: string): void {
    if (pfn < 0 || pfn >= this.nrPages || (pfn & ((1 << order) - 1)) !== 0) {
      throw new OracleViolation({ oracle: 'ownership', message: `${what}: pfn ${pfn} is not a valid order-${order} block`, pfn, cpu: thread });
    }
    const f = this.pages[pfn * PAGE_WORDS + PG_FLAGS];
    const owner = this.pages[pfn * PAGE_WORDS + PG_OWNER] - 1;
    if ((f & PG_STATE_MASK) !== PG_ALLOCATED || f >>> ORDER_SHIFT !== order || owner !== thread) {
      const state = describeFlags(f & FLAGS_MASK);
      const kind = (f & PG_STATE_MASK) === PG_BUDDY || (f & PG_STATE_MASK) === PG_PCP ? 'double free' : 'not owned';
      throw new OracleViolation({ oracle: 'ownership', message: `${what}: ${kind}: pfn ${pfn} order ${order} is ${state} order ${f >>> ORDER_SHIFT} owner ${owner}, expected allocated to thread ${thread}`, pfn, cpu: thread });
    }
  }

  /** Free a block `thread` allocated. Verifies ownership first (double free, foreign free). */
  free(pfn: number, order: number, thread: number): void {
    // The trace's free event marks when the block stops being allocated
    // (after the ownership check; on the buddy path under the zone lock, so
    // a wait for the lock is not shown as the block already free).
    if (this.opts.pcp && thread < this.cpus && pcpAllowedOrder(order)) {
      this.checkOwned(pfn, order, thread, 'free');
      if (tracer !== null) tracer.instant(TK_FREE, pfn, order);
      this.freeUnrefPage(pfn, order, thread);
      return;
    }
    const sync = this.sync;
    sync.lock(LOCK_ZONE, SITE_FREE);
    try {
      // Checked under the lock: the struct page cannot change under us.
      this.checkOwned(pfn, order, thread, 'free');
      if (tracer !== null) tracer.instant(TK_FREE, pfn, order);
      this.freeOneLocked(pfn, order, false, true);
    } finally {
      sync.unlock(LOCK_ZONE);
    }
  }

  // ---------- per-CPU lists (only the owning CPU touches them) ----------

  /** rmqueue_pcplist(): the first block of this CPU's list for `order`, refilled with a batch when empty. */
  private rmqueuePcplist(order: number, cpu: number): number {
    const z = this.zone;
    const p = this.pages;
    const base = pcpBase(cpu);
    const hi = base + PCP_LISTS + 2 * pcpListOf(order);
    // On allocation, halve the drain scaling that consecutive frees built up (nr_pcp_free()).
    z[base + PCP_FREE_FACTOR] >>= 1;
    if (z[hi] === NIL) {
      // __rmqueue_pcplist(): refill with batch >> order blocks, at least 2.
      let batch = z[ZONE_PCP_BATCH];
      if (batch > 1) batch = Math.max(batch >> order, 2);
      if (this.rmqueueBulk(order, batch, cpu, hi) === 0) return NIL;
    }
    const pfn = z[hi];
    const f = p[pfn * PAGE_WORDS + PG_FLAGS];
    if ((f & PG_STATE_MASK) !== PG_PCP || f >>> ORDER_SHIFT !== order) {
      throw new OracleViolation({ oracle: 'free-list', message: `pcp list of cpu ${cpu} for order ${order} holds pfn ${pfn} that is ${describeFlags(f & FLAGS_MASK)} order ${f >>> ORDER_SHIFT}`, pfn, cpu });
    }
    this.pcpUnlink(hi, pfn);
    z[base + PCP_COUNT] -= 1 << order;
    this.prepNewPage(pfn, order, cpu);
    return pfn;
  }

  /** rmqueue_bulk(): up to `count` blocks of `order` onto the list at `hi` (its tail), under one zone lock hold. Returns how many. */
  private rmqueueBulk(order: number, count: number, cpu: number, hi: number): number {
    const z = this.zone;
    const p = this.pages;
    const base = pcpBase(cpu);
    let i = 0;
    this.sync.lock(LOCK_ZONE, SITE_PCP_REFILL);
    try {
      for (; i < count; i++) {
        const pfn = this.rmqueueSmallest(order, cpu);
        if (pfn === NIL) break;
        this.setHead(pfn, PG_PCP, order);
        this.setOwner(pfn, cpu);
        // list_add_tail(): blocks taken in address order stay in that order.
        const tail = z[hi + 1];
        p[pfn * PAGE_WORDS + PG_NEXT] = NIL;
        p[pfn * PAGE_WORDS + PG_PREV] = tail;
        if (tail === NIL) z[hi] = pfn;
        else p[tail * PAGE_WORDS + PG_NEXT] = pfn;
        z[hi + 1] = pfn;
      }
    } finally {
      this.sync.unlock(LOCK_ZONE);
    }
    z[base + PCP_COUNT] += i << order;
    return i;
  }

  /** Unlink `pfn` from the pcp list whose head word is at `hi` (its tail at hi + 1). */
  private pcpUnlink(hi: number, pfn: number): void {
    const z = this.zone;
    const p = this.pages;
    const next = p[pfn * PAGE_WORDS + PG_NEXT];
    const prev = p[pfn * PAGE_WORDS + PG_PREV];
    if (prev === NIL) z[hi] = next;
    else p[prev * PAGE_WORDS + PG_NEXT] = next;
    if (next === NIL) z[hi + 1] = prev;
    else p[next * PAGE_WORDS + PG_PREV] = prev;
    p[pfn * PAGE_WORDS + PG_NEXT] = NIL;
    p[pfn * PAGE_WORDS + PG_PREV] = NIL;
  }

  /** free_unref_page_commit(): the block goes to the head of its pcp list; past pcp->high a batch goes back to the buddy lists. */
  private freeUnrefPage(pfn: number, order: number, cpu: number): void {
    const z = this.zone;
    const p = this.pages;
    const base = pcpBase(cpu);
    const li = pcpListOf(order);
    const hi = base + PCP_LISTS + 2 * li;
    this.setHead(pfn, PG_PCP, order);
    const head = z[hi];
    p[pfn * PAGE_WORDS + PG_PREV] = NIL;
    p[pfn * PAGE_WORDS + PG_NEXT] = head;
    if (head === NIL) z[hi + 1] = pfn;
    else p[head * PAGE_WORDS + PG_PREV] = pfn;
    z[hi] = pfn;
    z[base + PCP_COUNT] += 1 << order;
    // Frees of orders 1..3 with no allocation since the last drain empty the
    // lists whole (free_high: high-order pages stored on the pcp fragment memory).
    const freeHigh = z[base + PCP_FREE_FACTOR] !== 0 && order !== 0 && order <= PAGE_ALLOC_COSTLY_ORDER;
    const high = freeHigh ? 0 : z[ZONE_PCP_HIGH];
    if (z[base + PCP_COUNT] >= high) this.freePcppagesBulk(cpu, this.nrPcpFree(base, high, freeHigh), li);
  }

  /** nr_pcp_free(): how many pages a drain returns; doubles on consecutive drains without allocations (free_factor). */
  private nrPcpFree(base: number, high: number, freeHigh: boolean): number {
    const z = this.zone;
    if (freeHigh) return z[base + PCP_COUNT];
    const batch = z[ZONE_PCP_BATCH];
    if (high < batch) return 1;
    const minNrFree = batch;
    const maxNrFree = high - batch;
    let n = batch << z[base + PCP_FREE_FACTOR];
    if (n < maxNrFree) z[base + PCP_FREE_FACTOR]++;
    n = Math.min(Math.max(n, minNrFree), maxNrFree);
    return n;
  }

  /**
   * free_pcppages_bulk(): return `count` pages of `cpu`'s lists to the buddy
   * lists under one zone lock hold, starting with list `pindex`, round robin,
   * the oldest block (the tail) of each list first, each through
   * __free_one_page (which may merge and raise a report request).
   */
  private freePcppagesBulk(cpu: number, count: number, pindex: number): void {
    const z = this.zone;
    const base = pcpBase(cpu);
    count = Math.min(count, z[base + PCP_COUNT]);
    if (count <= 0) return;
    let li = pindex - 1;
    this.sync.lock(LOCK_ZONE, SITE_PCP_DRAIN);
    try {
      while (count > 0) {
        let hi = 0;
        // Bounded: count > 0 means some list holds a block.
        for (let k = 0; k < NR_PCP_LISTS; k++) {
          if (++li > NR_PCP_LISTS - 1) li = 0;
          hi = base + PCP_LISTS + 2 * li;
          if (z[hi] !== NIL) break;
        }
        if (z[hi] === NIL) throw new OracleViolation({ oracle: 'free-list', message: `pcp lists of cpu ${cpu} are empty but pcp->count is ${z[base + PCP_COUNT]}`, cpu });
        const order = PCP_LIST_ORDERS[li];
        do {
          const pfn = z[hi + 1];
          this.pcpUnlink(hi, pfn);
          count -= 1 << order;
          z[base + PCP_COUNT] -= 1 << order;
          this.freeOneLocked(pfn, order, false, true);
        } while (count > 0 && z[hi] !== NIL);
      }
    } finally {
      this.sync.unlock(LOCK_ZONE);
    }
  }

  /** Return `count` pages (default: all) of cpu's pcp lists to the buddy lists (drain_pages_zone). */
  drainPcp(cpu: number, count = Infinity): void {
    this.freePcppagesBulk(cpu, Math.min(count, this.zone[pcpBase(cpu) + PCP_COUNT]), 0);
  }

  /** Pages on cpu's pcp lists (pcp->count). */
  pcpCount(cpu: number): number {
    return this.zone[pcpBase(cpu) + PCP_COUNT];
  }
}

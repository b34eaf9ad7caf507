// The buddy allocator over the shared struct-page array and zone words
// (mm/page_alloc.c in miniature). One zone, orders 0..MAX_ORDER-1.
//
// struct page word PG_FLAGS holds PG_* bits and, in bits 24..27, the order of
// the block whose head this page is. Only head pages carry state; tail pages
// of a block are 0, so the page array partitions exactly into blocks, which
// is what the conservation check walks.
//
// Locking: every free-list and struct-page change happens under the zone lock
// (LOCK_ZONE), except a CPU's own pcp list, which only that CPU touches.

import { SITE_ALLOC, SITE_FREE, SITE_PCP_DRAIN, SITE_PCP_REFILL } from '../locking/sites.js';
import {
  FA_HEAD,
  FA_NR_FREE,
  FA_NR_REPORTED,
  FA_TAIL,
  FA_WORDS,
  LOCK_ZONE,
  MAX_ORDER,
  NIL,
  PAGE_WORDS,
  PCP_COUNT,
  PCP_HEAD,
  PG_FLAGS,
  PG_NEXT,
  PG_OWNER,
  PG_PREV,
  ZONE_BALLOON_LIST_BLOCKS,
  ZONE_BALLOON_LIST_HEAD,
  ZONE_BALLOON_PAGES,
  ZONE_FREE_AREA,
  ZONE_FREE_PAGES,
  ZONE_ISOLATED_PAGES,
  ZONE_MANAGED,
  ZONE_REPORTED_PAGES,
  ZONE_WMARK_HIGH,
  ZONE_WMARK_LOW,
  ZONE_WMARK_MIN,
  pcpBase,
  type Views,
} from '../shm/layout.js';
import { SP_PAGE, schedPoint, type Sync } from '../locking/sync.js';
import { FLAGS_MASK, ORDER_SHIFT, PG_ALLOCATED, PG_BUDDY, PG_PCP, PG_REPORTED, PG_REPORTED_SHIFT, PG_STATE_MASK, describeFlags } from './page.js';
import { OracleViolation } from '../base/errors.js';
import { TK_ALLOC, TK_FREE, tracer } from '../locking/trace.js';

export interface ZoneOptions {
  pcp: boolean;
  pcpBatch: number;
  pcpHigh: number;
}

export const DEFAULT_ZONE_OPTIONS: ZoneOptions = { pcp: false, pcpBatch: 32, pcpHigh: 192 };

/** min_free_kbytes = sqrt(16 * lowmem_kbytes) as Linux computes it, in pages; low/high = min * 5/4, 3/2. */
export function watermarks(pages: number): { min: number; low: number; high: number } {
  const kbytes = pages * 4;
  let minKb = Math.floor(Math.sqrt(kbytes * 16));
  minKb = Math.max(128, Math.min(262144, minKb));
  const min = Math.max(1, Math.floor(minKb / 4));
  return { min, low: min + (min >> 2), high: min + (min >> 1) };
}

export class Zone {
  readonly pages: Int32Array;
  readonly zone: Int32Array;
  readonly nrPages: number;
  /** Set by the reporter integration: page_reporting_notify_free(order). */
  onHighOrderFree: ((order: number) => void) | null = null;
  /** Orders >= this raise onHighOrderFree (page_reporting_order). */
  reportOrder = MAX_ORDER;
  /**
   * Free page hint: the balloon's shrinker (src/guest/free-page-hint.ts makeShrinker), called by a
   * CPU whose allocation failed; returns how many blocks it gave back.
   */
  shrinker: ((order: number, thread: number) => number) | null = null;
  /** Injection `keep-reported-on-merge`: a merge does not clear PageReported. */
  keepReportedOnMerge = false;

  constructor(
    readonly views: Views,
    readonly sync: Sync,
    readonly opts: ZoneOptions = DEFAULT_ZONE_OPTIONS,
  ) {
    this.pages = views.pages;
    this.zone = views.zone;
    this.nrPages = views.layout.pages;
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
    }
    this.pages.fill(0);
    z[ZONE_FREE_PAGES] = 0;
    z[ZONE_ISOLATED_PAGES] = 0;
    z[ZONE_REPORTED_PAGES] = 0;
    z[ZONE_BALLOON_PAGES] = 0;
    z[ZONE_BALLOON_LIST_HEAD] = NIL;
    z[ZONE_BALLOON_LIST_BLOCKS] = 0;
    z[ZONE_MANAGED] = this.nrPages;
    const w = watermarks(this.nrPages);
    z[ZONE_WMARK_MIN] = w.min;
    z[ZONE_WMARK_LOW] = w.low;
    z[ZONE_WMARK_HIGH] = w.high;
    for (let pfn = 0; pfn < this.nrPages; ) {
      let o = MAX_ORDER - 1;
      while (o > 0 && ((pfn & ((1 << o) - 1)) !== 0 || pfn + (1 << o) > this.nrPages)) o--;
      this.setHead(pfn, PG_BUDDY, o);
      this.addToFreeList(pfn, o, true);
      z[ZONE_FREE_PAGES] += 1 << o;
      pfn += 1 << o;
    }
    for (let cpu = 0; cpu < this.views.layout.params.cpus; cpu++) {
      z[pcpBase(cpu) + PCP_HEAD] = NIL;
      z[pcpBase(cpu) + PCP_COUNT] = 0;
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

  // ---------- free lists (zone lock held) ----------

  addToFreeList(pfn: number, order: number, toTail: boolean): void {
    const p = this.pages;
    const z = this.zone;
    const fa = ZONE_FREE_AREA + order * FA_WORDS;
    const head = z[fa + FA_HEAD];
    if (head === NIL) {
      p[pfn * PAGE_WORDS + PG_NEXT] = NIL;
      p[pfn * PAGE_WORDS + PG_PREV] = NIL;
      z[fa + FA_HEAD] = pfn;
      z[fa + FA_TAIL] = pfn;
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
  }

  setReported(pfn: number, order: number): void {
    const i = pfn * PAGE_WORDS + PG_FLAGS;
    this.pages[i] |= PG_REPORTED;
    schedPoint(SP_PAGE, pfn);
    this.zone[ZONE_FREE_AREA + order * FA_WORDS + FA_NR_REPORTED]++;
    this.zone[ZONE_REPORTED_PAGES] += 1 << order;
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

  /** __rmqueue_smallest: take a block of `order`, splitting a larger one. Zone lock held. */
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
   * __free_one_page: put a block back, merging with free buddies. Zone lock held.
   * Returns the order of the resulting block. `notify` false for the
   * reporter's put-back (FPI_SKIP_REPORT_NOTIFY).
   */
  freeOneLocked(pfn: number, order: number, toTail: boolean, notify: boolean): number {
    const p = this.pages;
    this.zone[ZONE_FREE_PAGES] += 1 << order;
    let inheritReported = false;
    while (order < MAX_ORDER - 1) {
      const buddy = pfn ^ (1 << order);
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
    this.addToFreeList(pfn, order, toTail);
    if (inheritReported) this.setReported(pfn, order);
    if (notify && order >= this.reportOrder && this.onHighOrderFree !== null) this.onHighOrderFree(order);
    return order;
  }

  // ---------- the CPU-facing API ----------

  /**
   * Allocate a block of 2^order pages for `thread`. Returns the head pfn or
   * NIL when no block is free or the allocation would take the zone below
   * its min watermark (ALLOC_WMARK_MIN, no reserves).
   */
  alloc(order: number, thread: number, site = SITE_ALLOC): number {
    if (order === 0 && this.opts.pcp && thread < this.views.layout.params.cpus) return this.allocPcp(thread);
    const sync = this.sync;
    sync.lock(LOCK_ZONE, site);
    let pfn = NIL;
    try {
      if (this.zone[ZONE_FREE_PAGES] - (1 << order) >= this.zone[ZONE_WMARK_MIN]) pfn = this.rmqueueSmallest(order, thread);
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
    if (tracer !== null) tracer.instant(TK_FREE, pfn, order);
    if (order === 0 && this.opts.pcp && thread < this.views.layout.params.cpus) {
      this.checkOwned(pfn, 0, thread, 'free');
      this.freePcp(pfn, thread);
      return;
    }
    const sync = this.sync;
    sync.lock(LOCK_ZONE, SITE_FREE);
    try {
      // Checked under the lock: the struct page cannot change under us.
      this.checkOwned(pfn, order, thread, 'free');
      this.freeOneLocked(pfn, order, false, true);
    } finally {
      sync.unlock(LOCK_ZONE);
    }
  }

  // ---------- per-CPU order-0 lists ----------

  private allocPcp(cpu: number): number {
    const z = this.zone;
    const base = pcpBase(cpu);
    if (z[base + PCP_COUNT] === 0) {
      // rmqueue_bulk: refill a batch under one zone lock hold.
      this.sync.lock(LOCK_ZONE, SITE_PCP_REFILL);
      try {
        for (let i = 0; i < this.opts.pcpBatch; i++) {
          if (z[ZONE_FREE_PAGES] - 1 < z[ZONE_WMARK_MIN]) break;
          const pfn = this.rmqueueSmallest(0, cpu);
          if (pfn === NIL) break;
          this.setHead(pfn, PG_PCP, 0);
          this.setOwner(pfn, cpu);
          this.pages[pfn * PAGE_WORDS + PG_NEXT] = z[base + PCP_HEAD];
          z[base + PCP_HEAD] = pfn;
          z[base + PCP_COUNT]++;
        }
      } finally {
        this.sync.unlock(LOCK_ZONE);
      }
      if (z[base + PCP_COUNT] === 0) return NIL;
    }
    const pfn = z[base + PCP_HEAD];
    const f = this.pages[pfn * PAGE_WORDS + PG_FLAGS];
    if ((f & PG_STATE_MASK) !== PG_PCP) {
      throw new OracleViolation({ oracle: 'free-list', message: `pcp list of cpu ${cpu} holds pfn ${pfn} that is ${describeFlags(f & FLAGS_MASK)}`, pfn, cpu });
    }
    z[base + PCP_HEAD] = this.pages[pfn * PAGE_WORDS + PG_NEXT];
    z[base + PCP_COUNT]--;
    this.pages[pfn * PAGE_WORDS + PG_NEXT] = NIL;
    this.prepNewPage(pfn, 0, cpu);
    return pfn;
  }

  private freePcp(pfn: number, cpu: number): void {
    const z = this.zone;
    const base = pcpBase(cpu);
    this.setHead(pfn, PG_PCP, 0);
    this.pages[pfn * PAGE_WORDS + PG_NEXT] = z[base + PCP_HEAD];
    z[base + PCP_HEAD] = pfn;
    z[base + PCP_COUNT]++;
    if (z[base + PCP_COUNT] >= this.opts.pcpHigh) this.drainPcp(cpu, this.opts.pcpBatch);
  }

  /** free_pcppages_bulk: return up to `count` pages of cpu's pcp list to the buddy lists. */
  drainPcp(cpu: number, count = Infinity): void {
    const z = this.zone;
    const base = pcpBase(cpu);
    if (z[base + PCP_COUNT] === 0) return;
    this.sync.lock(LOCK_ZONE, SITE_PCP_DRAIN);
    try {
      while (count-- > 0 && z[base + PCP_COUNT] > 0) {
        const pfn = z[base + PCP_HEAD];
        z[base + PCP_HEAD] = this.pages[pfn * PAGE_WORDS + PG_NEXT];
        z[base + PCP_COUNT]--;
        this.freeOneLocked(pfn, 0, false, true);
      }
    } finally {
      this.sync.unlock(LOCK_ZONE);
    }
  }

  pcpCount(cpu: number): number {
    return this.zone[pcpBase(cpu) + PCP_COUNT];
  }
}


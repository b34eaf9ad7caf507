// Balloon pages, shared by the free page hint driver (src/guest/free-page-hint.ts)
// and the naive loop (src/guest/naive.ts): a hinted block is allocated by the
// balloon: its head page is PG_BALLOON (owner: the reporter thread), counted
// in ZONE_BALLOON_PAGES. It goes on the balloon's free_page_list
// (ZONE_BALLOON_LIST_HEAD, linked through PG_NEXT) right after its kick, as
// Linux's get_free_page_and_send() does (balloon_page_push), or, with the
// guest-side mitigation --hint-shrink-acked-only, once the device has used
// its buffer. State change and list change happen under the zone lock, so
// the structural oracles (also under the zone lock) see them agree. Linux
// keeps the list under its own free_page_list_lock; one lock here is a
// simplification. Also the driver's metric fields (HM_*, CM_*).

import { type Zone } from '../mm/buddy.js';
import { LOCK_ZONE, MAX_ORDER, METRIC_EXTRA, NIL, PAGE_WORDS, PG_FLAGS, PG_NEXT, REP_HINT_LIST_GEN, ZONE_BALLOON_LIST_BLOCKS, ZONE_BALLOON_LIST_HEAD, ZONE_BALLOON_PAGES, ZONE_FREE_PAGES, ZONE_WMARK_MIN, type Views } from '../shm/layout.js';
import { bump } from '../locking/sync.js';
import { GuestMemory } from '../mm/memory.js';
import { ORDER_SHIFT, describeFlags, PG_BALLOON, PG_STATE_MASK } from '../mm/page.js';
import { SITE_HINT_ALLOC, SITE_HINT_FREE } from '../locking/sites.js';
import { OracleViolation } from '../base/errors.js';

/** VIRTIO_BALLOON_HINT_BLOCK_ORDER: the largest order (4 MiB blocks). */
export const HINT_BLOCK_ORDER = MAX_ORDER - 1;
/** Longest a shrinker call waits for in-flight blocks to be acknowledged. */
export const SHRINK_WAIT_MS = 200;

// Driver state (REP_HINT_DRIVER_STATE), read by main to decide the run settled.
export const HINT_DRV_IDLE = 0; // no run, nothing held (or waiting for a first cmd id)
export const HINT_DRV_RUNNING = 1; // allocating and sending blocks
export const HINT_DRV_HOLDING = 2; // STOP sent; blocks held until the device writes DONE

// Reporter-thread metric fields (Float64), disjoint from reporting's RM_*.
const HM = METRIC_EXTRA + 16;
export const HM_RUNS = HM + 0; // hint runs started (new cmd id seen); naive: unused
export const HM_BLOCKS = HM + 1; // blocks sent to the device (hint: per run; naive: per round trip)
export const HM_DISTINCT_BLOCKS = HM + 2; // distinct blocks ever sent
export const HM_DUP_BLOCKS = HM + 3; // blocks sent again
export const HM_RUN_NS_TOTAL = HM + 4; // hint: cmd id seen -> STOP acknowledged; naive: round trips
export const HM_RUN_NS_MAX = HM + 5;
export const HM_DONES = HM + 6; // DONE handled
export const HM_BLOCKS_FREED_DONE = HM + 7; // blocks freed on DONE
export const HM_RING_FULL_WAITS = HM + 8; // one descriptor left (kept for the id): waited for the device
export const HM_END_ALLOC_FAIL = HM + 9; // runs ended because allocation failed (all free memory taken)
export const HM_END_NEW_ID = HM + 10; // runs ended because the cmd id changed
export const HM_END_OTHER = HM + 11; // runs ended by a stop of the simulation or the iteration bound
export const HM_HELD_PAGES_MAX = HM + 12; // most pages the balloon held at once
export const HM_NAIVE_ALLOC_FAILS = HM + 13; // naive: no block to take (pressure)
export const HM_ROUND_TRIPS = HM + 14; // naive: report round trips
export const HM_RING_FULL_FREES = HM + 15; // get_free_page_and_send(): num_free <= 1, the block was freed at once and the loop went on
export const HM_ID_DROPPED = HM + 16; // send_cmd_id_start/stop: virtqueue_add_outbuf failed (-ENOSPC), the id was not sent (upstream logs it and goes on)
export const HM_LISTED_AT_KICK = HM + 17; // blocks put on free_page_list right after their kick (upstream), before the device used them
// CPU metric fields (Float64), in each CPU's slot.
export const CM_SHRINK_CALLS = METRIC_EXTRA + 8;
export const CM_SHRINK_BLOCKS = METRIC_EXTRA + 9;
/** The shrinker had nothing to return although the balloon held pages (in flight past SHRINK_WAIT_MS). */
export const CM_SHRINK_EMPTY_HELD = METRIC_EXTRA + 10;
/** Shrinker calls from reclaim below the low watermark (kswapd / direct reclaim's shrink_slab), and the blocks they freed. */
export const CM_RECLAIM_CALLS = METRIC_EXTRA + 11;
export const CM_RECLAIM_BLOCKS = METRIC_EXTRA + 12;
/** Time in the shrinker (both paths), ns: total and the longest call. */
export const CM_SHRINK_NS_TOTAL = METRIC_EXTRA + 13;
export const CM_SHRINK_NS_MAX = METRIC_EXTRA + 14;

/** Take a block of `order` for the balloon: no retry, no warn, no reserves (fail rather than go below min). */
export function allocBalloonBlock(zone: Zone, order: number, thread: number): number {
  const z = zone.zone;
  zone.sync.lock(LOCK_ZONE, SITE_HINT_ALLOC);
  try {
    if (z[ZONE_FREE_PAGES] - (1 << order) < z[ZONE_WMARK_MIN]) return NIL;
    const pfn = zone.rmqueueSmallest(order, thread);
    if (pfn === NIL) return NIL;
    // balloon_page_enqueue(): the pages now belong to the balloon.
    zone.setHead(pfn, PG_BALLOON, order);
    zone.setOwner(pfn, thread);
    z[ZONE_BALLOON_PAGES] += 1 << order;
    return pfn;
  } finally {
    zone.sync.unlock(LOCK_ZONE);
  }
}

export function checkBalloon(zone: Zone, pfn: number, thread: number, what: string): number {
  const f = zone.pages[pfn * PAGE_WORDS + PG_FLAGS];
  if ((f & PG_STATE_MASK) !== PG_BALLOON) {
    throw new OracleViolation({ oracle: 'ownership', message: `${what}: pfn ${pfn} should be a balloon block but is ${describeFlags(f & 0xffffff)} order ${f >>> ORDER_SHIFT}`, pfn, cpu: thread });
  }
  return f >>> ORDER_SHIFT;
}

/**
 * Free balloon blocks back to the buddy allocator (the __free_pages() of
 * return_free_pages_to_mm / the naive loop). With --poison the free path
 * poisons them first (kernel_poison_pages), faulting them in on the host.
 */
export function freeBalloonBlocks(zone: Zone, mem: GuestMemory | null, poisonByte: number | null, pfns: ArrayLike<number>, count: number, thread: number): void {
  if (count === 0) return;
  if (poisonByte !== null && mem !== null) {
    for (let i = 0; i < count; i++) {
      const pfn = pfns[i];
      const n = 1 << (zone.pages[pfn * PAGE_WORDS + PG_FLAGS] >>> ORDER_SHIFT);
      for (let p = pfn; p < pfn + n; p++) mem.touch(p);
      mem.fillPoison(pfn, n, poisonByte);
    }
  }
  const z = zone.zone;
  zone.sync.lock(LOCK_ZONE, SITE_HINT_FREE);
  try {
    for (let i = 0; i < count; i++) {
      const pfn = pfns[i];
      const order = checkBalloon(zone, pfn, thread, 'balloon free');
      z[ZONE_BALLOON_PAGES] -= 1 << order;
      // No report request from this free path: hint mode runs no page reporting.
      zone.freeOneLocked(pfn, order, false, false);
    }
  } finally {
    zone.sync.unlock(LOCK_ZONE);
  }
}

/**
 * balloon_page_push(&vb->free_page_list, page): put a balloon block on the
 * free_page_list, where the shrinker and DONE find it. Wakes shrinkers
 * waiting for blocks (REP_HINT_LIST_GEN).
 */
export function listBalloonBlocks(zone: Zone, views: Views, pfns: ArrayLike<number>, n: number, thread: number): void {
  if (n === 0) return;
  const z = zone.zone;
  const p = zone.pages;
  zone.sync.lock(LOCK_ZONE, SITE_HINT_ALLOC);
  try {
    for (let i = 0; i < n; i++) {
      const pfn = pfns[i];
      checkBalloon(zone, pfn, thread, 'balloon_page_push');
      p[pfn * PAGE_WORDS + PG_NEXT] = z[ZONE_BALLOON_LIST_HEAD];
      z[ZONE_BALLOON_LIST_HEAD] = pfn;
      z[ZONE_BALLOON_LIST_BLOCKS]++;
    }
  } finally {
    zone.sync.unlock(LOCK_ZONE);
  }
  // WAKE: the zone unlock published the list; tell shrinkers waiting for blocks.
  bump(views.reporting, REP_HINT_LIST_GEN);
}

/** Pop up to `max` blocks off the balloon's free_page_list into `out` (newest first, as balloon_page_pop). Returns how many. */
export function popBalloonList(zone: Zone, out: Int32Array, max: number, thread: number): number {
  const z = zone.zone;
  const p = zone.pages;
  let n = 0;
  zone.sync.lock(LOCK_ZONE, SITE_HINT_FREE);
  try {
    while (n < max && z[ZONE_BALLOON_LIST_HEAD] !== NIL) {
      const pfn = z[ZONE_BALLOON_LIST_HEAD];
      checkBalloon(zone, pfn, thread, 'balloon list pop');
      z[ZONE_BALLOON_LIST_HEAD] = p[pfn * PAGE_WORDS + PG_NEXT];
      p[pfn * PAGE_WORDS + PG_NEXT] = NIL;
      z[ZONE_BALLOON_LIST_BLOCKS]--;
      out[n++] = pfn;
    }
  } finally {
    zone.sync.unlock(LOCK_ZONE);
  }
  return n;
}

export interface HintDriverOptions {
  ackTimeoutMs: number;
  spin: number;
  serving: () => boolean;
  poisonByte: number | null;
  /** Mitigation (b), --hint-shrink-acked-only: list a block only once the device used it (hint driver only). */
  ackedOnly?: boolean;
}

/** Distinct/duplicate accounting over max-order blocks (a statistic of the driver, not simulation state). */
export class SentBlocks {
  private readonly seen: Uint8Array;
  constructor(pages: number) {
    this.seen = new Uint8Array((pages >> HINT_BLOCK_ORDER) + 1);
  }
  note(m: Float64Array, mb: number, pfn: number): void {
    const i = pfn >> HINT_BLOCK_ORDER;
    if (this.seen[i]) m[mb + HM_DUP_BLOCKS]++;
    else {
      this.seen[i] = 1;
      m[mb + HM_DISTINCT_BLOCKS]++;
    }
  }
}


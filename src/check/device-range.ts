// The device-allocated-range oracle: at discard time the host device checks,
// in the struct page array (the oracle's shared state, not the driver's
// word), that no page of a range it is told to discard is allocated. A block
// head inside the range, or a head before it whose order reaches into it, is
// a violation. The device runs it through its `rangeCheck` hook
// (src/host/balloon-device.ts DeviceOptions), installed by the simulation;
// the host itself reads no guest struct page.

import type { Violation } from '../base/errors.js';
import { MAX_ORDER, PAGE_WORDS, PG_FLAGS } from '../shm/layout.js';
import { allocatedBlockOf } from './live-data.js';
import { ORDER_SHIFT, PG_ALLOCATED, PG_BALLOON, PG_STATE_MASK } from '../mm/page.js';
import type { RangeCheck } from '../host/balloon-device.js';
import { BLOCK_ALLOCATED, BLOCK_BALLOON, BLOCK_FREE } from '../host/free-page-hint-device.js';


export function deviceRangeCheck(pages: Int32Array): RangeCheck {
  return (pfn, count) => {
    for (let p = pfn; p < pfn + count; p++) {
      if ((pages[p * PAGE_WORDS + PG_FLAGS] & PG_ALLOCATED) !== 0) return allocatedViolation(p, pages[p * PAGE_WORDS + PG_FLAGS] >>> ORDER_SHIFT, pfn, count);
    }
    for (let o = 1; o < MAX_ORDER; o++) {
      const h = pfn & ~((1 << o) - 1);
      if (h === pfn) continue;
      const f = pages[h * PAGE_WORDS + PG_FLAGS];
      if ((f & PG_ALLOCATED) !== 0 && h + (1 << (f >>> ORDER_SHIFT)) > pfn) return allocatedViolation(h, f >>> ORDER_SHIFT, pfn, count);
    }
    return null;
  };
}

function allocatedViolation(head: number, order: number, pfn: number, count: number): Violation {
  return {
    oracle: 'device-allocated-range',
    message: `device was asked to discard pfn ${pfn}..${pfn + count - 1}, but the allocated order-${order} block at pfn ${head} overlaps it`,
    pfn: Math.max(head, pfn),
  };
}

/**
 * The device-allocated-range oracle with --hint-uffd-wp: the device discards
 * only pages its write-tracking check found unwritten, and a page a CPU
 * allocated but has not written yet is safe to discard (the write lands on a
 * fresh zero page after it). So the violation is a page about to be
 * discarded that holds live data (src/check/live-data.ts: written by the CPU
 * that holds it, before this check): the write came between the device's
 * write-tracking check and its discard, and the discard loses it.
 */
export function uffdDiscardCheck(pages: Int32Array, live: Uint8Array): (pfn: number, count: number) => Violation | null {
  return (pfn, count) => {
    for (let p = pfn; p < pfn + count; p++) {
      if (Atomics.load(live, p) === 0) continue;
      const b = allocatedBlockOf(pages, p);
      return {
        oracle: 'device-allocated-range',
        message: `device is discarding pfn ${pfn}..${pfn + count - 1}, which its write-tracking check found unwritten, but pfn ${p} holds data ${b ? `cpu ${b.owner} wrote into its order-${b.order} block at pfn ${b.head}` : 'a CPU wrote'} since (the write came between the check and the discard): its contents are lost`,
        pfn: p,
        ...(b ? { cpu: b.owner } : {}),
      };
    }
    return null;
  };
}

/**
 * Statistics for the hint device (not an oracle): what the guest holds at a
 * hinted range's first page now: BLOCK_BALLOON (still the balloon's), or the
 * balloon freed it (the shrinker, or DONE) and it is free (BLOCK_FREE) or
 * (partly) allocated to a CPU (BLOCK_ALLOCATED).
 */
export function hintBlockState(pages: Int32Array): (pfn: number) => number {
  return (pfn) => {
    const f = pages[pfn * PAGE_WORDS + PG_FLAGS];
    if ((f & PG_STATE_MASK) === PG_BALLOON) return BLOCK_BALLOON;
    // A hinted range is one max-order block: only heads inside it can be allocated.
    const end = Math.min(pfn + (1 << (MAX_ORDER - 1)), pages.length / PAGE_WORDS);
    for (let p = pfn; p < end; p++) if ((pages[p * PAGE_WORDS + PG_FLAGS] & PG_ALLOCATED) !== 0) return BLOCK_ALLOCATED;
    return BLOCK_FREE;
  };
}

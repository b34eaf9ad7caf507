// The oracles' record of live data for free page hint (the HTM_LIVE map of
// the hinttrack region): 1 = the page holds data the CPU that holds it wrote
// (set after Cpu.touchBlock wrote the block, cleared when Cpu.freeBlock
// frees it). The simulator's own knowledge, kept on the vCPUs, never read by
// the modelled host: the migration oracle (src/check/migration.ts) and the
// discard check with userfaultfd tracking (src/check/device-range.ts
// uffdDiscardCheck) read it.

import { hintTrackMap } from '../host/hint-tracking.js';
import { HTM_LIVE, MAX_ORDER, PAGE_WORDS, PG_FLAGS, PG_OWNER, type Views } from '../shm/layout.js';
import { ORDER_SHIFT, PG_ALLOCATED } from '../mm/page.js';

export interface LiveData {
  map: Uint8Array;
  /** A CPU wrote [pfn, pfn + count) (after the host's write tracking and the writes themselves). */
  written(pfn: number, count: number): void;
  /** A CPU frees [pfn, pfn + count): its data is dead. */
  freed(pfn: number, count: number): void;
}

export function liveData(views: Views): LiveData {
  const map = hintTrackMap(views, HTM_LIVE);
  return {
    map,
    // Seq-cst stores, after the data and after the host's marks: an oracle
    // that reads 1 sees the data written and the host's mark made.
    written(pfn, count) {
      for (let p = pfn; p < pfn + count; p++) Atomics.store(map, p, 1);
    },
    freed(pfn, count) {
      for (let p = pfn; p < pfn + count; p++) Atomics.store(map, p, 0);
    },
  };
}

/** The allocated block holding page `p` (its head pfn and owning thread), or null. */
export function allocatedBlockOf(pages: Int32Array, p: number): { head: number; order: number; owner: number } | null {
  for (let o = 0; o < MAX_ORDER; o++) {
    const h = p & ~((1 << o) - 1);
    const f = pages[h * PAGE_WORDS + PG_FLAGS];
    if ((f & PG_ALLOCATED) !== 0 && h + (1 << (f >>> ORDER_SHIFT)) > p) return { head: h, order: f >>> ORDER_SHIFT, owner: pages[h * PAGE_WORDS + PG_OWNER] - 1 };
  }
  return null;
}

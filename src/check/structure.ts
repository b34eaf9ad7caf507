// Oracles (docs/DESIGN.md §6): how a race shows up. Per-transition checks (ownership,
// stamps, poison) live next to the transition; the structural checks here walk
// the shared zone with the zone lock held.

import type { Violation } from '../base/errors.js';
import { FA_HEAD, FA_NR_FREE, FA_NR_REPORTED, FA_WORDS, MAX_ORDER, NIL, PAGE_WORDS, PG_FLAGS, PG_NEXT, PG_PREV, ZONE_FREE_AREA, ZONE_FREE_PAGES, ZONE_ISOLATED_PAGES, ZONE_REPORTED_PAGES, ZONE_BALLOON_PAGES } from '../shm/layout.js';

import { PG_ALLOCATED, PG_BALLOON, PG_BUDDY, PG_ISOLATED, PG_PCP, PG_REPORTED, PG_STATE_MASK, ORDER_SHIFT, FLAGS_MASK, describeFlags } from '../mm/page.js';

export interface ZoneLike {
  pages: Int32Array;
  zone: Int32Array;
  nrPages: number;
}

/**
 * Free-list integrity: every list is well linked (prev/next agree, bounded
 * walk), every entry is a Buddy head of that order aligned to it, no page is
 * on two lists, nr_free and the reported counters match, and the pages on the
 * lists add up to the zone's free-page count. Zone lock held.
 */
export function checkFreeLists(z: ZoneLike): Violation[] {
  const out: Violation[] = [];
  const { pages, zone, nrPages } = z;
  const seen = new Uint8Array(nrPages);
  let freePages = 0;
  let reportedPages = 0;
  for (let o = 0; o < MAX_ORDER && out.length < 8; o++) {
    const fa = ZONE_FREE_AREA + o * FA_WORDS;
    const nrFree = zone[fa + FA_NR_FREE];
    let count = 0;
    let reported = 0;
    let prev = NIL;
    let pfn = zone[fa + FA_HEAD];
    // Bounded walk: a loop in the list shows up as more entries than pages.
    while (pfn !== NIL) {
      if (pfn < 0 || pfn >= nrPages) {
        out.push({ oracle: 'free-list', message: `free_area[${o}] links to pfn ${pfn}, outside the zone`, pfn });
        break;
      }
      if (count > nrPages >> o) {
        out.push({ oracle: 'free-list', message: `free_area[${o}] has a loop (walked more than ${nrPages >> o} entries)`, pfn });
        break;
      }
      const f = pages[pfn * PAGE_WORDS + PG_FLAGS];
      if ((f & PG_STATE_MASK) !== PG_BUDDY || f >>> ORDER_SHIFT !== o) {
        out.push({ oracle: 'free-list', message: `free_area[${o}] holds pfn ${pfn} which is ${describeFlags(f & FLAGS_MASK)} order ${f >>> ORDER_SHIFT}`, pfn });
      }
      if ((pfn & ((1 << o) - 1)) !== 0) out.push({ oracle: 'free-list', message: `free_area[${o}] holds pfn ${pfn}, not aligned to its order`, pfn });
      if (pages[pfn * PAGE_WORDS + PG_PREV] !== prev) out.push({ oracle: 'free-list', message: `free_area[${o}] pfn ${pfn} prev link ${pages[pfn * PAGE_WORDS + PG_PREV]} != ${prev}`, pfn });
      if (seen[pfn]) {
        out.push({ oracle: 'free-list', message: `pfn ${pfn} is on a free list twice`, pfn });
        break;
      }
      seen[pfn] = 1;
      if (f & PG_REPORTED) reported++;
      count++;
      prev = pfn;
      pfn = pages[pfn * PAGE_WORDS + PG_NEXT];
      if (out.length >= 8) break;
    }
    if (count !== nrFree) out.push({ oracle: 'free-list', message: `free_area[${o}].nr_free is ${nrFree} but the list holds ${count} blocks` });
    if (reported !== zone[fa + FA_NR_REPORTED]) out.push({ oracle: 'free-list', message: `free_area[${o}] reported count is ${zone[fa + FA_NR_REPORTED]} but ${reported} listed blocks are Reported` });
    freePages += count << o;
    reportedPages += reported << o;
  }
  if (out.length === 0 && freePages !== zone[ZONE_FREE_PAGES]) out.push({ oracle: 'free-list', message: `free lists hold ${freePages} pages but the zone counts ${zone[ZONE_FREE_PAGES]} free` });
  if (out.length === 0 && reportedPages !== zone[ZONE_REPORTED_PAGES]) out.push({ oracle: 'free-list', message: `free lists hold ${reportedPages} Reported pages but the zone counts ${zone[ZONE_REPORTED_PAGES]}` });
  return out;
}

export interface PageCensus {
  buddy: number;
  pcp: number;
  allocated: number;
  isolated: number;
  balloon: number;
  blocksByOrder: number[]; // free (buddy) blocks per order
}

/**
 * Conservation: the struct-page array partitions exactly into blocks, each
 * in exactly one state, and free + pcp + allocated + isolated + balloon =
 * total. Returns the census and any violations. Zone lock held (pcp and
 * allocated may still move between each other while CPUs run; their sum not).
 */
export function checkConservation(z: ZoneLike): { census: PageCensus; violations: Violation[] } {
  const { pages, zone, nrPages } = z;
  const census: PageCensus = { buddy: 0, pcp: 0, allocated: 0, isolated: 0, balloon: 0, blocksByOrder: new Array(MAX_ORDER).fill(0) };
  const out: Violation[] = [];
  let pfn = 0;
  while (pfn < nrPages) {
    const f = pages[pfn * PAGE_WORDS + PG_FLAGS];
    const order = f >>> ORDER_SHIFT;
    const state = f & PG_STATE_MASK;
    const size = 1 << order;
    if (order >= MAX_ORDER || (pfn & (size - 1)) !== 0 || pfn + size > nrPages) {
      out.push({ oracle: 'conservation', message: `pfn ${pfn} heads a block of order ${order} that is misaligned or runs past the zone`, pfn });
      break;
    }
    switch (state) {
      case PG_BUDDY:
        census.buddy += size;
        census.blocksByOrder[order]++;
        break;
      case PG_PCP:
        census.pcp += size;
        break;
      case PG_ALLOCATED:
        census.allocated += size;
        break;
      case PG_ISOLATED:
        census.isolated += size;
        break;
      case PG_BALLOON:
        census.balloon += size;
        break;
      default:
        out.push({ oracle: 'conservation', message: `pfn ${pfn} belongs to no block (state ${describeFlags(f & FLAGS_MASK)}): pages lost or a block header overwritten`, pfn });
        pfn = nrPages;
        continue;
    }
    // Tail pages of a block carry no state; state inside a block means two
    // owners of the same pages.
    for (let t = pfn + 1; t < pfn + size; t++) {
      if ((pages[t * PAGE_WORDS + PG_FLAGS] & PG_STATE_MASK) !== 0) {
        out.push({ oracle: 'conservation', message: `pfn ${t} inside the order-${order} block at ${pfn} (${describeFlags(state)}) is itself ${describeFlags(pages[t * PAGE_WORDS + PG_FLAGS] & FLAGS_MASK)}: pages counted twice`, pfn: t });
        break;
      }
    }
    if (out.length >= 8) break;
    pfn += size;
  }
  if (out.length === 0) {
    const sum = census.buddy + census.pcp + census.allocated + census.isolated + census.balloon;
    if (sum !== nrPages) out.push({ oracle: 'conservation', message: `free ${census.buddy} + pcp ${census.pcp} + allocated ${census.allocated} + isolated ${census.isolated} + balloon ${census.balloon} = ${sum} != total ${nrPages}` });
    if (census.buddy !== zone[ZONE_FREE_PAGES]) out.push({ oracle: 'conservation', message: `free blocks hold ${census.buddy} pages but the zone counts ${zone[ZONE_FREE_PAGES]} free` });
    if (census.isolated !== zone[ZONE_ISOLATED_PAGES]) out.push({ oracle: 'conservation', message: `isolated blocks hold ${census.isolated} pages but the zone counts ${zone[ZONE_ISOLATED_PAGES]} isolated` });
    if (census.balloon !== zone[ZONE_BALLOON_PAGES]) out.push({ oracle: 'conservation', message: `balloon blocks hold ${census.balloon} pages but the zone counts ${zone[ZONE_BALLOON_PAGES]}` });
  }
  return { census, violations: out };
}

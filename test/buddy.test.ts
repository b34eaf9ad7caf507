import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { watermarks, zoneBatchsize, zoneHighsize } from '../src/mm/buddy.js';
import { SITE_ALLOC, SITE_PCP_DRAIN, SITE_PCP_REFILL } from '../src/locking/sites.js';
import { FA_HEAD, FA_WORDS, MAX_ORDER, NIL, PAGEBLOCK_ORDER, ZONE_FREE_AREA } from '../src/shm/layout.js';
import { checkConservation, checkFreeLists } from '../src/check/structure.js';
import { Rng } from '../src/base/rng.js';
import { makeWorld, zoneAs } from './helpers.js';
import { OracleViolation } from '../src/base/errors.js';
import { PG_ALLOCATED, PG_BUDDY } from '../src/mm/page.js';

const MiB = 2 ** 20;

function assertHealthy(zone: Parameters<typeof checkFreeLists>[0]) {
  expect(checkFreeLists(zone)).toEqual([]);
  const { violations } = checkConservation(zone);
  expect(violations).toEqual([]);
}

describe('buddy allocator', () => {
  it('starts as max-order blocks covering all of memory', () => {
    const { zone } = makeWorld({ memoryBytes: 16 * MiB });
    expect(zone.freePages).toBe(4096);
    expect(zone.freeArea(MAX_ORDER - 1, 2)).toBe(4);
    assertHealthy(zone);
  });

  it('lays an odd-sized zone out as aligned blocks of decreasing order', () => {
    const { zone } = makeWorld({ memoryBytes: 16 * MiB + 12 * 4096 });
    expect(zone.freePages).toBe(4096 + 12);
    expect(zone.freeArea(3, 2)).toBe(1); // 8 pages
    expect(zone.freeArea(2, 2)).toBe(1); // 4 pages
    assertHealthy(zone);
  });

  it('splits on allocation and merges buddies back on free', () => {
    const { zone } = makeWorld({ memoryBytes: 8 * MiB });
    const a = zone.alloc(0, 0);
    expect(a).not.toBe(NIL);
    expect(zone.flags(a) & PG_ALLOCATED).toBeTruthy();
    // one order-10 block was split into 1+1+2+...+512 free pages
    for (let o = 0; o < MAX_ORDER - 1; o++) expect(zone.freeArea(o, 2)).toBe(1);
    assertHealthy(zone);
    zone.free(a, 0, 0);
    expect(zone.freeArea(MAX_ORDER - 1, 2)).toBe(2);
    for (let o = 0; o < MAX_ORDER - 1; o++) expect(zone.freeArea(o, 2)).toBe(0);
    assertHealthy(zone);
  });

  // npm run mutation runs this once per mutant of the allocator: 20k ops there.
  const RANDOM_OPS = process.env.BALLOON_SIM_MUTATION ? 20_000 : 100_000;
  it('keeps conservation and list integrity over 100k random ops, every block aligned, and merges back fully', () => {
    const { zone } = makeWorld({ memoryBytes: 32 * MiB });
    const rng = new Rng(12345);
    const held: [number, number][] = [];
    for (let i = 0; i < RANDOM_OPS; i++) {
      if (held.length > 0 && (rng.below(2) === 0 || held.length > 2000)) {
        const k = rng.below(held.length);
        const [pfn, order] = held[k];
        held[k] = held[held.length - 1];
        held.pop();
        zone.free(pfn, order, 0);
      } else {
        const order = Math.min(MAX_ORDER - 1, Math.clz32(rng.next() | 1));
        const pfn = zone.alloc(order, 0);
        if (pfn !== NIL) {
          expect(pfn % (1 << order)).toBe(0);
          held.push([pfn, order]);
        }
      }
      if (i % 10_000 === 0) assertHealthy(zone);
    }
    assertHealthy(zone);
    for (const [pfn, order] of held) zone.free(pfn, order, 0);
    assertHealthy(zone);
    expect(zone.freeArea(MAX_ORDER - 1, 2)).toBe(8);
    expect(zone.freePages).toBe(8192);
  });

  it('model-based: any alloc/free sequence matches a set model and frees back to max order', () => {
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.boolean(), fc.integer({ min: 0, max: MAX_ORDER - 1 }), fc.nat()), { maxLength: 300 }), (ops) => {
        const { zone } = makeWorld({ memoryBytes: 8 * MiB });
        const held = new Map<number, number>();
        for (const [isAlloc, order, pick] of ops) {
          if (isAlloc || held.size === 0) {
            const pfn = zone.alloc(order, 0);
            if (pfn === NIL) continue;
            for (const [p, o] of held) expect(pfn + (1 << order) <= p || p + (1 << o) <= pfn).toBe(true); // no overlap
            held.set(pfn, order);
          } else {
            const keys = [...held.keys()];
            const pfn = keys[pick % keys.length];
            zone.free(pfn, held.get(pfn)!, 0);
            held.delete(pfn);
          }
        }
        let used = 0;
        for (const o of held.values()) used += 1 << o;
        expect(zone.freePages).toBe(2048 - used);
        expect(checkFreeLists(zone)).toEqual([]);
        for (const [p, o] of held) zone.free(p, o, 0);
        expect(zone.freeArea(MAX_ORDER - 1, 2)).toBe(2);
      }),
      { numRuns: 60, seed: 7 },
    );
  });

  it('refuses allocations that would dip below the min watermark', () => {
    const { zone } = makeWorld({ memoryBytes: 8 * MiB });
    const w = watermarks(2048);
    expect(zone.wmarkMin).toBe(w.min);
    let got = 0;
    while (zone.alloc(0, 0) !== NIL) got++;
    expect(got).toBe(2048 - w.min);
    expect(zone.freePages).toBe(w.min);
    expect(w.low).toBeGreaterThan(w.min);
    expect(w.high).toBeGreaterThan(w.low);
  });

  it('reports a double free as an ownership violation', () => {
    const { zone } = makeWorld();
    const pfn = zone.alloc(2, 0);
    zone.free(pfn, 2, 0);
    expect(() => zone.free(pfn, 2, 0)).toThrow(OracleViolation);
    try {
      zone.free(pfn, 2, 0);
    } catch (e) {
      expect((e as OracleViolation).violation.oracle).toBe('ownership');
      expect((e as OracleViolation).violation.message).toMatch(/double free/);
    }
  });

  it('reports freeing another CPU\'s block as an ownership violation', () => {
    const { zone } = makeWorld();
    const pfn = zone.alloc(1, 0);
    expect(() => zone.free(pfn, 1, 1)).toThrow(/not owned/);
    expect(() => zone.free(pfn, 0, 0)).toThrow(/ownership/);
  });

  it('reports allocation of a non-free block when a free list is corrupted', () => {
    const { zone, views } = makeWorld();
    const pfn = zone.alloc(0, 0);
    // Corrupt: point free_area[10]'s head at an allocated page.
    views.zone[ZONE_FREE_AREA + (MAX_ORDER - 1) * FA_WORDS + FA_HEAD] = pfn;
    expect(() => zone.alloc(MAX_ORDER - 1, 1)).toThrow(/allocation of a non-free block/);
  });

  it('finds a page on two lists, a broken nr_free and lost pages', () => {
    const { zone, views } = makeWorld();
    const a = zone.alloc(0, 0);
    // Re-list an allocated block without freeing it: free-list and conservation both notice.
    zone.setHead(a, PG_BUDDY, 0);
    zone.addToFreeList(a, 0, false);
    expect(checkFreeLists(zone).length).toBeGreaterThan(0);
    const b = makeWorld();
    b.zone.setHead(0, 0, 0); // wipe the head of the first max-order block
    expect(checkConservation(b.zone).violations[0].message).toMatch(/belongs to no block/);
    void views;
  });
});

describe('per-CPU lists (struct per_cpu_pages, Linux 6.1)', () => {
  /** Counts zone lock acquisitions by call site (a LockObserver). */
  const lockCounter = () => {
    const sites = new Map<number, number>();
    return { sites, observer: { acquired: (_l: number, site: number) => void sites.set(site, (sites.get(site) ?? 0) + 1), acquiredContended: (_l: number, site: number) => void sites.set(site, (sites.get(site) ?? 0) + 1), released: () => undefined } };
  };

  it('sizes batch and high by the kernel rules: zone_batchsize() and zone_highsize()', () => {
    expect(zoneBatchsize(262144)).toBe(63); // 1 GiB: min(256, 256) / 4 = 64 -> 2^6 - 1
    expect(zoneBatchsize(16384)).toBe(3); // 64 MiB: 16 / 4 = 4 -> 4 + 2 -> 4 - 1
    expect(zoneBatchsize(4096)).toBe(1); // 16 MiB: at least 1
    const w = watermarks(262144);
    expect(w.low).toBe(1024 + 262); // min 1024 + max(min/4, 0.1% of the zone)
    expect(zoneHighsize(w.low, 8, 63)).toBe(252); // low/8 = 160 < 4 batches
    expect(zoneHighsize(w.low, 2, 63)).toBe(643);
    const { zone } = makeWorld({ memoryBytes: 1024 * MiB, cpus: 8, zone: { pcp: true } });
    expect([zone.pcpBatch, zone.pcpHigh]).toEqual([63, 252]);
  });

  it('refills an empty list with a batch (batch >> order blocks, at least 2) under one zone lock hold', () => {
    const w = makeWorld({ memoryBytes: 64 * MiB, zone: { pcp: true, pcpBatch: 16, pcpHigh: 64 } });
    const cpu = zoneAs(w, 0);
    const count = lockCounter();
    cpu.sync.observer = count.observer;
    const first = cpu.alloc(0, 0);
    expect(first).not.toBe(NIL);
    expect(cpu.pcpCount(0)).toBe(15); // a batch of 16, one handed out
    for (let i = 0; i < 15; i++) cpu.alloc(0, 0);
    expect(count.sites.get(SITE_PCP_REFILL)).toBe(1); // 16 allocations, one zone lock
    cpu.alloc(2, 0); // order 2: 16 >> 2 = 4 blocks
    expect(cpu.pcpCount(0)).toBe(3 * 4);
    cpu.alloc(PAGEBLOCK_ORDER, 0); // THP list: max(16 >> 9, 2) = 2 blocks
    expect(cpu.pcpCount(0)).toBe(3 * 4 + 512);
    expect(count.sites.get(SITE_PCP_REFILL)).toBe(3);
    expect(count.sites.get(SITE_ALLOC)).toBeUndefined(); // nothing took the plain zone path
    const c = checkConservation(cpu).census;
    expect(c.pcp).toBe(cpu.pcpCount(0));
  });

  it('drains a batch to the buddy lists at pcp->high, doubling the batch on frees with no allocation between (nr_pcp_free)', () => {
    const w = makeWorld({ memoryBytes: 64 * MiB, zone: { pcp: true, pcpBatch: 8, pcpHigh: 40 } });
    const cpu = zoneAs(w, 0);
    const count = lockCounter();
    cpu.sync.observer = count.observer;
    const held: number[] = [];
    for (let i = 0; i < 100; i++) held.push(cpu.alloc(0, 0));
    const drainsBefore = count.sites.get(SITE_PCP_DRAIN) ?? 0;
    const counts: number[] = [];
    for (const p of held) {
      cpu.free(p, 0, 0);
      counts.push(cpu.pcpCount(0));
    }
    // The first drain at 40 pages returns one batch (8), the next 16, then 32 (capped at high - batch = 32).
    const drops = counts.flatMap((c, i) => (i > 0 && c < counts[i - 1] ? [counts[i - 1] + 1 - c] : []));
    expect(drops.slice(0, 3)).toEqual([8, 16, 32]);
    expect((count.sites.get(SITE_PCP_DRAIN) ?? 0) - drainsBefore).toBe(drops.length); // one zone lock per drain
    cpu.drainPcp(0);
    expect(cpu.pcpCount(0)).toBe(0);
    assertHealthy(cpu);
    expect(cpu.freePages).toBe(16384);
  });

  it('a free into a pcp list raises no report request; the drain that merges the pages through __free_one_page does', () => {
    const w = makeWorld({ memoryBytes: 16 * MiB, zone: { pcp: true, pcpBatch: 8, pcpHigh: 64 } });
    const cpu = zoneAs(w, 0);
    const requests: number[] = [];
    cpu.reportOrder = 3;
    cpu.onHighOrderFree = (order: number) => requests.push(order);
    const pages: number[] = [];
    for (let i = 0; i < 8; i++) pages.push(cpu.alloc(0, 0)); // one refill: pfns 0..7, an aligned order-3 block
    expect([...pages].sort((a, b) => a - b)).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
    for (const p of pages) cpu.free(p, 0, 0);
    expect(cpu.pcpCount(0)).toBe(8);
    expect(requests).toEqual([]); // on the pcp list: not free in the buddy lists, no request
    cpu.drainPcp(0);
    expect(requests.length).toBeGreaterThan(0); // the drain merged them: a request from the merge
    expect(Math.max(...requests)).toBeGreaterThanOrEqual(3);
    assertHealthy(cpu);
  });

  it('frees of orders 1..3 right after a drain, with no allocation between, empty the lists whole (free_high)', () => {
    const run = (allocBetween: boolean) => {
      const w = makeWorld({ memoryBytes: 64 * MiB, zone: { pcp: true, pcpBatch: 8, pcpHigh: 40 } });
      const cpu = zoneAs(w, 0);
      const held = Array.from({ length: 60 }, () => cpu.alloc(0, 0));
      const pair = cpu.alloc(1, 0);
      for (let i = 0; i < 41; i++) cpu.free(held[i], 0, 0); // reaches high: drains, each raising free_factor (to 2)
      if (allocBetween) {
        // each allocation halves free_factor: two bring it back to 0
        const a = [cpu.alloc(0, 0), cpu.alloc(0, 0)];
        for (const p of a) cpu.free(p, 0, 0);
      }
      cpu.free(pair, 1, 0);
      const left = cpu.pcpCount(0);
      for (let i = 41; i < 60; i++) cpu.free(held[i], 0, 0);
      cpu.drainPcp(0);
      assertHealthy(cpu);
      return left;
    };
    expect(run(false)).toBe(0); // the order-1 free emptied every list
    expect(run(true)).toBeGreaterThan(20); // after allocations it just joins the list
  });

  it('catches a double free through the pcp path', () => {
    const { zone } = makeWorld({ zone: { pcp: true } });
    const z1 = zone;
    const p = z1.alloc(0, 1);
    z1.free(p, 0, 1);
    expect(() => z1.free(p, 0, 1)).toThrow(/double free/);
  });
});

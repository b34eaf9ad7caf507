import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { watermarks } from '../src/mm/buddy.js';
import { FA_HEAD, FA_WORDS, MAX_ORDER, NIL, ZONE_FREE_AREA } from '../src/shm/layout.js';
import { checkConservation, checkFreeLists } from '../src/check/structure.js';
import { Rng } from '../src/base/rng.js';
import { makeWorld } from './helpers.js';
import { OracleViolation } from '../src/base/errors.js';
import { PG_ALLOCATED, PG_BUDDY, PG_PCP } from '../src/mm/page.js';

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

  it('keeps conservation and list integrity over 100k random ops, every block aligned, and merges back fully', () => {
    const { zone } = makeWorld({ memoryBytes: 32 * MiB });
    const rng = new Rng(12345);
    const held: [number, number][] = [];
    for (let i = 0; i < 100_000; i++) {
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

describe('per-CPU lists (--pcp)', () => {
  it('refills a batch under one zone-lock hold and drains past high', () => {
    const { zone } = makeWorld({ zone: { pcp: true, pcpBatch: 8, pcpHigh: 16 } });
    const first = zone.alloc(0, 0);
    expect(first).not.toBe(NIL);
    expect(zone.pcpCount(0)).toBe(7); // batch of 8, one handed out
    const held = [first];
    for (let i = 0; i < 30; i++) held.push(zone.alloc(0, 0));
    for (const p of held) zone.free(p, 0, 0);
    // frees pushed the list to high (16) and each time drained a batch (8)
    expect(zone.pcpCount(0)).toBeLessThan(16);
    const c = checkConservation(zone).census;
    expect(c.pcp).toBe(zone.pcpCount(0));
    expect(c.buddy + c.pcp).toBe(4096);
    zone.drainPcp(0);
    expect(zone.pcpCount(0)).toBe(0);
    expect(zone.flags(first) & (PG_PCP | PG_ALLOCATED)).toBe(0);
    assertHealthy(zone);
    expect(zone.freeArea(MAX_ORDER - 1, 2)).toBe(4);
  });

  it('catches a double free through the pcp path', () => {
    const { zone } = makeWorld({ zone: { pcp: true } });
    const p = zone.alloc(0, 1);
    zone.free(p, 0, 1);
    expect(() => zone.free(p, 0, 1)).toThrow(/double free/);
  });
});

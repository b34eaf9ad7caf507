import { describe, expect, it } from 'vitest';
import { CACHE_LINE, PAGE_SIZE, PAGE_WORDS, assertLayout, computeLayout, createShared, openShared, vringSize, waitWordOffsets, zeroBuffer } from '../src/shm/layout.js';

const params = { cpus: 8, memoryBytes: 64 * 2 ** 20, queueSize: 128, ringAlign: 4 };

describe('layout', () => {
  it('places regions in order, aligned and without overlap', () => {
    const l = computeLayout(params);
    const regions = [l.header, l.locksRegion, l.lockstat, l.structPages, l.zone, l.vq, l.device, l.reporting, l.hostResident, l.metrics, l.violations, l.guest];
    for (let i = 1; i < regions.length; i++) expect(regions[i].offset).toBeGreaterThanOrEqual(regions[i - 1].offset + regions[i - 1].bytes);
    expect(l.guest.offset % PAGE_SIZE).toBe(0);
    expect(l.guest.bytes).toBe(params.memoryBytes);
    expect(l.locksRegion.bytes).toBe(l.locks * CACHE_LINE);
    expect(l.totalBytes).toBeGreaterThanOrEqual(l.guest.offset + l.guest.bytes);
  });

  it('keeps every Atomics.wait word a 4-byte aligned Int32', () => {
    const l = computeLayout(params);
    const offs = waitWordOffsets(l);
    expect(offs.length).toBeGreaterThan(5);
    for (const o of offs) expect(o % 4).toBe(0);
  });

  it('rejects a layout whose regions overlap', () => {
    const l = computeLayout(params);
    expect(() => assertLayout({ ...l, zone: { offset: l.structPages.offset + 64, bytes: l.zone.bytes } })).toThrow(/overlaps/);
    expect(() => assertLayout({ ...l, zone: { offset: l.zone.offset + 8, bytes: l.zone.bytes } })).toThrow(/aligned/);
    expect(() => assertLayout({ ...l, metrics: { offset: l.metrics.offset + 4, bytes: l.metrics.bytes } })).toThrow(/aligned|overlaps/);
  });

  it('spends at most 32 bytes of struct page per 4 KiB page', () => {
    expect(PAGE_WORDS * 4).toBeLessThanOrEqual(32);
    const l = computeLayout(params);
    expect(l.structPages.bytes / l.pages).toBeLessThanOrEqual(32);
  });

  it('plans an 8 GiB guest within the 2^32-element typed-array limit', () => {
    const l = computeLayout({ ...params, memoryBytes: 8 * 2 ** 30 });
    expect(l.guest.bytes / 4).toBeLessThan(2 ** 32); // guestI32 elements
    expect(l.guest.bytes / 8).toBeLessThan(2 ** 32); // guestF64 elements
    expect(l.pages).toBe(2 * 2 ** 20);
  });

  it('zeroes a reused buffer piece by piece, the last piece short (views stop at 2^32 elements)', () => {
    const sab = new SharedArrayBuffer(10_000);
    new Uint8Array(sab).fill(0xa5);
    zeroBuffer(sab, 4096);
    expect(new Uint8Array(sab).every((b) => b === 0)).toBe(true);
    expect(() => zeroBuffer(sab, 0)).toThrow(/chunk/);
  });

  it('matches vring_size() for the split ring', () => {
    // vring_size(num, align) = ALIGN(16*num + 2*(3+num), align) + 2*3 + 8*num
    expect(vringSize(256, 4096)).toBe(8192 + 6 + 8 * 256);
    expect(vringSize(128, 4)).toBe(2312 + 6 + 8 * 128); // 2048 + 262 = 2310, aligned up to 4
    const l = computeLayout({ ...params, queueSize: 256, ringAlign: 4096 });
    expect(l.vqUsedOffset - l.vqDescOffset).toBe(8192);
  });

  it('refuses to open a buffer built for another configuration', () => {
    const v = createShared(params);
    expect(() => openShared(v.sab, params)).not.toThrow();
    expect(() => openShared(v.sab, { ...params, cpus: 4 })).toThrow(/echo|buffer/);
  });
});

// Split ring and balloon device, driver and device in one thread.

import { describe, expect, it } from 'vitest';
import { BAD_KINDS, type BadKind, readDeviceCounters } from '../src/host/balloon-device.js';
import { DEV_BAD_BASE, DEV_INTERRUPT, DEV_KICK, DEV_VQ_INDEX, PAGE_SIZE } from '../src/shm/layout.js';
import { Chain, ENOSPC, VIRTIO_RING_F_EVENT_IDX, VRING_DESC_F_INDIRECT, VRING_DESC_F_NEXT, VRING_DESC_F_WRITE, VringMem, VringVirtqueue, vringNeedEvent, vringOffsets } from '../src/virtio/ring.js';
import { type Fixture, ringFixture } from './ring-fixture.js';
import { OracleViolation } from '../src/base/errors.js';
import { VIRTIO_BALLOON_F_FREE_PAGE_HINT, VIRTIO_BALLOON_F_PAGE_POISON, VIRTIO_BALLOON_F_REPORTING, VIRTIO_BALLOON_F_STATS_VQ, bit, reportingQueueIndex } from '../src/virtio/balloon-abi.js';

const MiB = 2 ** 20;
const badCount = (f: Fixture, kind: BadKind) => f.views.device[DEV_BAD_BASE + BAD_KINDS.indexOf(kind)];
const badTotal = (f: Fixture) => BAD_KINDS.reduce((s, _k, i) => s + f.views.device[DEV_BAD_BASE + i], 0);
const counters = (f: Fixture) => readDeviceCounters(f.views, 'reporting', 'linux');

/** Collect every used element as [token, len]. */
function drain(d: VringVirtqueue): [number, number][] {
  const out: [number, number][] = [];
  for (let t = d.getBuf(); t >= 0; t = d.getBuf()) out.push([t, d.lastLen]);
  return out;
}

describe('split ring geometry', () => {
  // The constructor's refusals (a ring of another size or alignment would
  // put avail and used where the other side does not look).
  it('refuses a size that is not a power of 2 in 1..32768, an alignment other than 4 or 4096, and a table not 16-byte aligned', () => {
    const buf = new SharedArrayBuffer(1 << 20);
    for (const num of [0, 3, 1.5, 65536, -8]) expect(() => new VringMem(buf, 0, num, 4), `num ${num}`).toThrow(/is not a power of 2 in 1\.\.32768/);
    for (const align of [8, 2, 0]) expect(() => new VringMem(buf, 0, 8, align), `align ${align}`).toThrow(/neither 4 nor 4096/);
    expect(() => new VringMem(buf, 8, 8, 4)).toThrow(/not 16-byte aligned/);
    for (const num of [1, 2, 256, 32768]) expect(() => new VringMem(new SharedArrayBuffer(1 << 20), 16, num, 4096)).not.toThrow();
  });

  it('places avail, used and the event words where the virtio 1.2 split layout puts them', () => {
    for (const [num, align] of [[8, 4], [256, 4096], [1, 4]] as const) {
      const r = new VringMem(new SharedArrayBuffer(1 << 20), 0, num, align);
      const o = vringOffsets(num, align);
      expect(r.availFlagsI * 2).toBe(o.avail);
      expect(r.availIdxI * 2).toBe(o.avail + 2);
      expect(r.availRingI * 2).toBe(o.avail + 4);
      expect(r.usedEventI * 2).toBe(o.avail + 4 + 2 * num); // used_event after avail.ring[num]
      expect(r.usedFlagsI * 2).toBe(o.used);
      expect(r.usedIdxI * 2).toBe(o.used + 2);
      expect(r.availEventI * 2).toBe(o.used + 4 + 8 * num); // avail_event after used.ring[num]
    }
  });
});

describe('split ring, one thread', () => {
  it('returns every chain to the driver in order with its token and used len 0, freeing its descriptors', () => {
    const f = ringFixture({ queueSize: 8 });
    const d = f.driver;
    expect(d.addInbuf([0], [PAGE_SIZE], 1, 10)).toBeGreaterThanOrEqual(0);
    expect(d.addInbuf([2 * PAGE_SIZE, 3 * PAGE_SIZE, 4 * PAGE_SIZE], [PAGE_SIZE, PAGE_SIZE, 2 * PAGE_SIZE], 3, 11)).toBeGreaterThanOrEqual(0);
    expect(d.numFree).toBe(4);
    expect(d.kick()).toBe(true);
    expect(f.device.serve()).toBeNull();
    expect(drain(d)).toEqual([[10, 0], [11, 0]]);
    expect(d.numFree).toBe(8);
    const c = counters(f);
    expect(c.chains).toBe(2);
    expect(c.descriptors).toBe(4);
    expect(c.bytesDiscarded).toBe(5 * PAGE_SIZE);
    expect(badTotal(f)).toBe(0);
  });

  it('refuses a chain with ENOSPC when too few descriptors are free, without touching the ring', () => {
    const f = ringFixture({ queueSize: 4 });
    const d = f.driver;
    expect(d.addInbuf([0, PAGE_SIZE, 2 * PAGE_SIZE], [PAGE_SIZE, PAGE_SIZE, PAGE_SIZE], 3, 1)).toBeGreaterThanOrEqual(0);
    const before = d.availIdx;
    expect(d.addInbuf([0, PAGE_SIZE], [PAGE_SIZE, PAGE_SIZE], 2, 2)).toBe(ENOSPC);
    expect(d.availIdx).toBe(before);
    expect(d.addInbuf([0], [PAGE_SIZE], 1, 3)).toBeGreaterThanOrEqual(0);
  });

  it('wraps the 16-bit avail and used indices past 65535 without losing, duplicating or reordering chains', () => {
    const f = ringFixture({ queueSize: 8 });
    const d = f.driver;
    const total = 70_000;
    let next = 0;
    let expectTok = 0;
    let wrapsSeen = 0;
    let prevAvail = 0;
    for (let round = 0; round < 200_000 && expectTok < total; round++) {
      // Fill as much as fits, 1..3 descriptors per chain, one page each.
      while (next < total) {
        const n = 1 + (next % 3);
        const addrs = [0, 1, 2].map((k) => ((next * 3 + k) % 4000) * PAGE_SIZE);
        if (d.addInbuf(addrs, [PAGE_SIZE, PAGE_SIZE, PAGE_SIZE], n, next) === ENOSPC) break;
        next++;
      }
      if (d.availIdx < prevAvail) wrapsSeen++;
      prevAvail = d.availIdx;
      d.kick();
      expect(f.device.serve()).toBeNull();
      for (const [tok] of drain(d)) expect(tok).toBe(expectTok++);
    }
    expect(expectTok).toBe(total);
    expect(wrapsSeen).toBe(1);
    expect(d.availIdx).toBe(total & 0xffff);
    expect(d.usedIdxSeen).toBe(total & 0xffff);
    expect(counters(f).chains).toBe(total);
    expect(d.numFree).toBe(8);
  });

  it('vring_need_event is true exactly when the event index lies in [old, new) mod 2^16', () => {
    // Brute force against the definition, around the wrap point and elsewhere.
    for (const old of [0, 1, 100, 65_000, 65_530, 65_535]) {
      for (let delta = 0; delta <= 12; delta++) {
        const newIdx = (old + delta) & 0xffff;
        for (let e = -3; e <= 15; e++) {
          const event = (old + e) & 0xffff;
          const inWindow = e >= 0 && e < delta;
          expect(vringNeedEvent(event, newIdx, old), `event ${event} new ${newIdx} old ${old}`).toBe(inWindow);
        }
      }
    }
    // Kernel examples: the wrap from 65535 to 1 crosses events 65535 and 0.
    expect(vringNeedEvent(65_535, 1, 65_535)).toBe(true);
    expect(vringNeedEvent(0, 1, 65_535)).toBe(true);
    expect(vringNeedEvent(1, 1, 65_535)).toBe(false);
  });

  it('with EVENT_IDX the driver skips a kick the device did not ask for, and the device one interrupt per used_event', () => {
    const f = ringFixture({ queueSize: 16, eventIdx: true });
    expect(f.negotiated & bit(VIRTIO_RING_F_EVENT_IDX)).not.toBe(0);
    const d = f.driver;
    const dev = f.views.device;
    for (let i = 0; i < 3; i++) d.addInbuf([i * PAGE_SIZE], [PAGE_SIZE], 1, i);
    expect(d.kick()).toBe(true); // avail_event 0 is in [0, 3)
    d.addInbuf([3 * PAGE_SIZE], [PAGE_SIZE], 1, 3);
    expect(d.kick()).toBe(false); // the device has not moved avail_event: no new kick needed
    expect(Atomics.load(dev, DEV_KICK)).toBe(1);
    // The device serves all 4 (one notify decision per chain); the driver has
    // not collected anything, so used_event stays 0: only the 0->1 step interrupts.
    expect(f.device.serve()).toBeNull();
    expect(Atomics.load(dev, DEV_INTERRUPT)).toBe(1);
    expect(drain(d).map(([t]) => t)).toEqual([0, 1, 2, 3]);
    // After serving, avail_event = 4: the next add needs a kick again.
    d.addInbuf([4 * PAGE_SIZE], [PAGE_SIZE], 1, 4);
    expect(d.kick()).toBe(true);
    expect(f.device.serve()).toBeNull();
    expect(Atomics.load(dev, DEV_INTERRUPT)).toBe(2); // used_event was 4 after the drain
  });

  it('without EVENT_IDX the driver does not kick while the device has set VRING_USED_F_NO_NOTIFY', () => {
    const f = ringFixture({ queueSize: 8, eventIdx: false });
    const d = f.driver;
    f.device.vq.setNotification(false);
    d.addInbuf([0], [PAGE_SIZE], 1, 0);
    expect(d.kick()).toBe(false);
    f.device.vq.setNotification(true);
    d.addInbuf([PAGE_SIZE], [PAGE_SIZE], 1, 1);
    expect(d.kick()).toBe(true);
  });

  it('the driver treats a used element naming a descriptor it never made available as a ring violation', () => {
    const f = ringFixture({ queueSize: 8 });
    f.driver.addInbuf([0], [PAGE_SIZE], 1, 0);
    f.device.vq.pop(new Chain(8));
    f.device.vq.push(5, 0); // descriptor 5 is free, not a chain head
    expect(() => f.driver.getBuf()).toThrow(OracleViolation);
  });
});

describe('balloon device: discard, oracle, poison, numbering', () => {
  it('drops reported pages from host RSS, counts them, and a later guest touch is a refault of a zero page', () => {
    const f = ringFixture({ queueSize: 8 });
    for (let p = 0; p < 512; p++) {
      f.mem.touch(p);
      f.mem.writeStamp(p, 0, p);
    }
    expect(f.mem.residentPages()).toBe(512);
    f.driver.addInbuf([0], [2 * MiB], 1, 0);
    f.driver.kick();
    expect(f.device.serve()).toBeNull();
    expect(f.mem.residentPages()).toBe(0);
    const c = counters(f);
    expect(c.pagesDropped).toBe(512);
    expect(c.bytesDiscarded).toBe(2 * MiB);
    // the host's time dropping them is accounted (zero-filling 2 MiB takes well over 1 ns)
    expect(c.discardNsTotal).toBeGreaterThan(0);
    expect(f.mem.touch(7)).toBe(2);
    expect(f.mem.checkStamp(7, 0, 7)).toMatch(/zeros/);
  });

  it('GuestMemory.discard drops exactly the resident pages of a range straddling bitmap words, and marks them discarded', () => {
    const f = ringFixture({ queueSize: 8 });
    for (let p = 0; p < 128; p += 2) f.mem.touch(p); // every even page resident
    const dropped = f.mem.discard(5, 70); // pages 5..74: words 0, 1 and 2, partially
    expect(dropped).toBe(35); // even pages in 6..74
    for (let p = 0; p < 128; p++) expect(f.mem.isResident(p), `pfn ${p}`).toBe(p % 2 === 0 && (p < 5 || p >= 75));
    expect(f.mem.touch(6)).toBe(2); // refault
    expect(f.mem.touch(75)).toBe(1); // never discarded: first touch
    expect(f.mem.touch(4)).toBe(0); // still resident
  });

  it('discards adjacent ranges of one chain as one run and separate ranges separately, counting each byte once', () => {
    const f = ringFixture({ queueSize: 8 });
    for (let p = 0; p < 64; p++) f.mem.touch(p);
    // 0..3 and 4..7 are adjacent; 10..11 is separate.
    f.driver.addInbuf([0, 4 * PAGE_SIZE, 10 * PAGE_SIZE], [4 * PAGE_SIZE, 4 * PAGE_SIZE, 2 * PAGE_SIZE], 3, 0);
    f.driver.kick();
    expect(f.device.serve()).toBeNull();
    const c = counters(f);
    expect(c.bytesDiscarded).toBe(10 * PAGE_SIZE);
    expect(c.pagesDropped).toBe(10);
    expect(f.mem.residentPages()).toBe(54);
    for (const p of [8, 9, 12]) expect(f.mem.isResident(p)).toBe(true);
  });

  it('reports device-allocated-range when a reported range overlaps an allocated block, and does not discard it', () => {
    const f = ringFixture({ queueSize: 8 });
    const pfn = f.zone.alloc(3, 0); // an order-3 block: 8 pages
    expect(pfn).toBeGreaterThanOrEqual(0);
    f.mem.touch(pfn + 5);
    // A range starting inside the block (at its tail page 5): the head lies before the range.
    f.driver.addInbuf([(pfn + 5) * PAGE_SIZE], [PAGE_SIZE], 1, 0);
    f.driver.kick();
    const v = f.device.serve();
    expect(v?.oracle).toBe('device-allocated-range');
    expect(v?.message).toContain(`block at pfn ${pfn}`);
    expect(f.mem.isResident(pfn + 5)).toBe(true);
    // The same range once freed is fine.
    f.zone.free(pfn, 3, 0);
    f.driver.getBuf();
    f.driver.addInbuf([(pfn + 5) * PAGE_SIZE], [PAGE_SIZE], 1, 1);
    f.driver.kick();
    expect(f.device.serve()).toBeNull();
    expect(f.mem.isResident(pfn + 5)).toBe(false);
  });

  it("with PAGE_POISON and poison_val != 0, policy 'skip' keeps the pages (QEMU) and 'fill' discards, the host's fresh pages then holding poison_val", () => {
    for (const policy of ['skip', 'fill'] as const) {
      const f = ringFixture({ queueSize: 8, poisonVal: 0xaaaaaaaa, device: { poisonPolicy: policy } });
      expect(f.negotiated & bit(VIRTIO_BALLOON_F_PAGE_POISON)).not.toBe(0);
      for (let p = 0; p < 4; p++) {
        f.mem.touch(p);
        f.mem.fillPoison(p, 1, 0xaa);
      }
      f.driver.addInbuf([0], [4 * PAGE_SIZE], 1, 0);
      f.driver.kick();
      expect(f.device.serve()).toBeNull();
      const c = counters(f);
      expect(f.mem.checkPoison(0, 4, 0xaa)).toBe(-1); // never zeros
      if (policy === 'skip') {
        expect(f.mem.residentPages()).toBe(4);
        expect(c.bytesPoisonSkipped).toBe(4 * PAGE_SIZE);
        expect(c.bytesDiscarded).toBe(0);
      } else {
        expect(f.mem.residentPages()).toBe(0);
        expect(c.bytesDiscarded).toBe(4 * PAGE_SIZE);
      }
    }
  });

  it('numbers the reporting queue 4 under spec numbering and after the existing queues under linux numbering', () => {
    const rep = bit(VIRTIO_BALLOON_F_REPORTING);
    expect(reportingQueueIndex('spec', rep)).toBe(4);
    expect(reportingQueueIndex('linux', rep)).toBe(2);
    expect(reportingQueueIndex('linux', rep | bit(VIRTIO_BALLOON_F_STATS_VQ))).toBe(3);
    expect(reportingQueueIndex('linux', rep | bit(VIRTIO_BALLOON_F_STATS_VQ) | bit(VIRTIO_BALLOON_F_FREE_PAGE_HINT))).toBe(4);
    expect(ringFixture({ vqNumbering: 'spec' }).views.device[DEV_VQ_INDEX]).toBe(4);
    expect(ringFixture({ vqNumbering: 'linux' }).views.device[DEV_VQ_INDEX]).toBe(2);
  });

  it('decodes an aeration buffer of u64 hints (addr | order) and discards each hinted block', () => {
    const f = ringFixture({ queueSize: 8, device: { queueKind: 'aeration' } });
    // Hints live in guest memory page 4000; hinted blocks: order 9 at 2 MiB, order 0 at pfn 3, order 2 at pfn 8.
    const hints = [[2 * MiB, 9], [3 * PAGE_SIZE, 0], [8 * PAGE_SIZE, 2]];
    const buf = 4000 * PAGE_SIZE;
    f.mem.touch(4000); // fault the hint page in first (a first touch zero-fills it)
    hints.forEach(([a, o], i) => {
      f.mem.i32[buf / 4 + 2 * i] = a + o;
      f.mem.i32[buf / 4 + 2 * i + 1] = 0;
    });
    for (const p of [512, 1023, 3, 8, 11]) f.mem.touch(p);
    f.driver.addOutbuf([buf], [8 * hints.length], 1, 0);
    f.driver.kick();
    expect(f.device.serve()).toBeNull();
    const c = readDeviceCounters(f.views, 'aeration', 'linux');
    expect(c.hints).toBe(3);
    expect(c.bytesDiscarded).toBe(2 * MiB + PAGE_SIZE + 4 * PAGE_SIZE);
    expect(f.mem.residentPages()).toBe(1); // only the hint buffer's page
    expect(badTotal(f)).toBe(0);
  });
});

// ---- hostile guest input ----

interface RawDesc {
  addr: number;
  len: number;
  flags: number;
  next: number;
}

/** A hostile driver: write descriptors and one avail entry by hand, publish avail idx. */
function hostileChain(f: Fixture, descs: [number, RawDesc][], head: number): void {
  for (const [i, d] of descs) f.ring.writeDesc(i, d.addr, d.len, d.flags, d.next);
  const r = f.ring;
  const idx = Atomics.load(r.u16, r.availIdxI);
  r.u16[r.availRingI + (idx & r.mask)] = head;
  Atomics.store(r.u16, r.availIdxI, (idx + 1) & 0xffff);
}

/** Used elements as [id, len] from the device's point of view (the hostile driver reads them raw). */
function usedSince(f: Fixture, from: number): [number, number][] {
  const r = f.ring;
  const to = Atomics.load(r.u16, r.usedIdxI);
  const out: [number, number][] = [];
  for (let i = from; i !== to; i = (i + 1) & 0xffff) out.push([r.u32[r.usedRingI + 2 * (i & r.mask)], r.u32[r.usedRingI + 2 * (i & r.mask) + 1]]);
  return out;
}

const W = VRING_DESC_F_WRITE;
const N = VRING_DESC_F_NEXT;
const PATTERN = 1.2345e-300; // a Float64 lane pattern no discard produces

describe('balloon device under hostile guest input', () => {
  const memoryBytes = 16 * MiB;
  const cases: { name: string; kind: BadKind; descs: (q: number) => [number, RawDesc][]; head: (q: number) => number; used: 'len0' | 'dropped' | 'len0-skip'; queueKind?: 'reporting' | 'aeration' }[] = [
    { name: 'descriptor index >= queue size in avail.ring', kind: 'head-index', descs: () => [], head: (q) => q + 3, used: 'dropped' },
    { name: 'next index >= queue size', kind: 'desc-index', descs: (q) => [[0, { addr: 0, len: PAGE_SIZE, flags: W | N, next: q + 1 }]], head: () => 0, used: 'len0' },
    // The first index out of range, each (found by npm run mutation: > in place of >= passed).
    { name: 'descriptor index == queue size in avail.ring', kind: 'head-index', descs: () => [], head: (q) => q, used: 'dropped' },
    { name: 'next index == queue size', kind: 'desc-index', descs: (q) => [[0, { addr: 0, len: PAGE_SIZE, flags: W | N, next: q }]], head: () => 0, used: 'len0' },
    { name: 'a chain that loops (longer than the queue)', kind: 'chain-loop', descs: () => [[0, { addr: 0, len: PAGE_SIZE, flags: W | N, next: 1 }], [1, { addr: PAGE_SIZE, len: PAGE_SIZE, flags: W | N, next: 0 }]], head: () => 0, used: 'len0' },
    { name: 'unknown flag bits', kind: 'desc-flags', descs: () => [[0, { addr: 0, len: PAGE_SIZE, flags: W | 0x10, next: 0 }]], head: () => 0, used: 'len0' },
    { name: 'INDIRECT without VIRTIO_RING_F_INDIRECT_DESC', kind: 'indirect', descs: () => [[0, { addr: 0, len: 16, flags: VRING_DESC_F_INDIRECT, next: 0 }]], head: () => 0, used: 'len0' },
    { name: 'address past the end of guest memory', kind: 'addr-range', descs: () => [[0, { addr: memoryBytes, len: PAGE_SIZE, flags: W, next: 0 }]], head: () => 0, used: 'len0-skip' },
    { name: 'address + len overrunning guest memory', kind: 'addr-range', descs: () => [[0, { addr: memoryBytes - PAGE_SIZE, len: 2 * PAGE_SIZE, flags: W, next: 0 }]], head: () => 0, used: 'len0-skip' },
    { name: 'a 64-bit address far outside guest memory', kind: 'addr-range', descs: () => [[0, { addr: 2 ** 63, len: PAGE_SIZE, flags: W, next: 0 }]], head: () => 0, used: 'len0-skip' },
    { name: 'zero length', kind: 'len', descs: () => [[0, { addr: 0, len: 0, flags: W, next: 0 }]], head: () => 0, used: 'len0-skip' },
    { name: 'length not a multiple of 4 KiB', kind: 'len', descs: () => [[0, { addr: 0, len: PAGE_SIZE + 1, flags: W, next: 0 }]], head: () => 0, used: 'len0-skip' },
    { name: 'unaligned address', kind: 'unaligned', descs: () => [[0, { addr: 100, len: PAGE_SIZE, flags: W, next: 0 }]], head: () => 0, used: 'len0-skip' },
    { name: 'device-readable buffer on the reporting queue', kind: 'direction', descs: () => [[0, { addr: 0, len: PAGE_SIZE, flags: 0, next: 0 }]], head: () => 0, used: 'len0-skip' },
    { name: 'hint buffer length not a multiple of 8', kind: 'hint-len', queueKind: 'aeration', descs: () => [[0, { addr: 0, len: 12, flags: 0, next: 0 }]], head: () => 0, used: 'len0-skip' },
    { name: 'more than 32 hints', kind: 'hint-len', queueKind: 'aeration', descs: () => [[0, { addr: 0, len: 33 * 8, flags: 0, next: 0 }]], head: () => 0, used: 'len0-skip' },
    { name: 'hint buffer outside guest memory', kind: 'addr-range', queueKind: 'aeration', descs: () => [[0, { addr: memoryBytes - 8, len: 16, flags: 0, next: 0 }]], head: () => 0, used: 'len0-skip' },
  ];

  for (const c of cases) {
    it(`counts '${c.kind}' for ${c.name}, touches no guest byte, and keeps serving`, () => {
      const q = 8;
      const f = ringFixture({ queueSize: q, memoryBytes, device: { queueKind: c.queueKind ?? 'reporting' } });
      f.mem.f64.fill(PATTERN);
      hostileChain(f, c.descs(q), c.head(q));
      expect(f.device.serve()).toBeNull();
      expect(badCount(f, c.kind)).toBe(1);
      expect(badTotal(f)).toBe(1);
      const used = usedSince(f, 0);
      if (c.used === 'dropped') expect(used).toEqual([]);
      else expect(used).toEqual([[c.head(q), 0]]);
      expect(counters(f).bytesDiscarded).toBe(0);
      // No guest byte changed (the pattern survives everywhere).
      const g = f.mem.f64;
      let changed = -1;
      for (let i = 0; i < g.length; i++) if (g[i] !== PATTERN) {
        changed = i * 8;
        break;
      }
      expect(changed).toBe(-1);
      // The device keeps serving: a good chain right after is discarded.
      const good = c.queueKind === 'aeration' ? 4096 * 2 : 0;
      if (c.queueKind === 'aeration') {
        f.mem.i32[good / 4] = 6 * PAGE_SIZE; // hint: pfn 6, order 0
        f.mem.i32[good / 4 + 1] = 0;
        hostileChain(f, [[2, { addr: good, len: 8, flags: 0, next: 0 }]], 2);
      } else hostileChain(f, [[2, { addr: 6 * PAGE_SIZE, len: PAGE_SIZE, flags: W, next: 0 }]], 2);
      expect(f.device.serve()).toBeNull();
      expect(usedSince(f, used.length)).toEqual([[2, 0]]);
      expect(counters(f).bytesDiscarded).toBe(PAGE_SIZE);
      expect(badTotal(f)).toBe(1);
    });
  }

  // Boundaries the one-thread tests did not pin (npm run mutation): the
  // longest legal chain is the whole table, and a driver may publish a
  // whole queue's worth of chains at once.
  it('serves a chain of exactly queue-size descriptors (not a loop) and one more is a chain-loop', () => {
    const q = 8;
    const f = ringFixture({ queueSize: q, memoryBytes });
    const all: [number, RawDesc][] = [];
    for (let i = 0; i < q; i++) all.push([i, { addr: (10 + i) * PAGE_SIZE, len: PAGE_SIZE, flags: i < q - 1 ? W | N : W, next: i + 1 }]);
    hostileChain(f, all, 0);
    expect(f.device.serve()).toBeNull();
    expect(badTotal(f)).toBe(0);
    expect(usedSince(f, 0)).toEqual([[0, 0]]);
    expect(counters(f).bytesDiscarded).toBe(q * PAGE_SIZE);
    // The same table with the last descriptor chained back to the first: q + 1 descriptors.
    f.ring.writeDesc(q - 1, (10 + q - 1) * PAGE_SIZE, PAGE_SIZE, W | N, 0);
    hostileChain(f, [], 0);
    expect(f.device.serve()).toBeNull();
    expect(badCount(f, 'chain-loop')).toBe(1);
  });

  it('serves a whole queue of chains published at once (avail idx exactly queue size ahead is not avail-ahead)', () => {
    const q = 8;
    const f = ringFixture({ queueSize: q, memoryBytes });
    for (let i = 0; i < q; i++) hostileChain(f, [[i, { addr: (20 + i) * PAGE_SIZE, len: PAGE_SIZE, flags: W, next: 0 }]], i);
    expect(f.device.serve()).toBeNull();
    expect(badTotal(f)).toBe(0);
    expect(usedSince(f, 0).map(([id]) => id)).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
    expect(counters(f).bytesDiscarded).toBe(q * PAGE_SIZE);
  });

  it("counts 'hint-order' for a hint whose order is >= MAX_ORDER and still discards the good hints of the buffer", () => {
    const f = ringFixture({ queueSize: 8, device: { queueKind: 'aeration' } });
    const buf = 100 * PAGE_SIZE;
    f.mem.i32[buf / 4] = 0x200000 + 11; // order 11: too big
    f.mem.i32[buf / 4 + 2] = 5 * PAGE_SIZE; // order 0, fine
    hostileChain(f, [[0, { addr: buf, len: 16, flags: 0, next: 0 }]], 0);
    expect(f.device.serve()).toBeNull();
    expect(badCount(f, 'hint-order')).toBe(1);
    expect(readDeviceCounters(f.views, 'aeration', 'linux').bytesDiscarded).toBe(PAGE_SIZE);
  });

  it("counts 'avail-ahead' once when avail idx runs more than the queue size ahead, pops nothing, and resumes when it is sane", () => {
    const f = ringFixture({ queueSize: 8 });
    const r = f.ring;
    Atomics.store(r.u16, r.availIdxI, 9);
    expect(f.device.serve()).toBeNull();
    expect(f.device.serve()).toBeNull();
    expect(badCount(f, 'avail-ahead')).toBe(1);
    expect(Atomics.load(r.u16, r.usedIdxI)).toBe(0);
    Atomics.store(r.u16, r.availIdxI, 0);
    hostileChain(f, [[0, { addr: 0, len: PAGE_SIZE, flags: W, next: 0 }]], 0);
    expect(f.device.serve()).toBeNull();
    expect(usedSince(f, 0)).toEqual([[0, 0]]);
  });

  it("counts 'notify-queue' when the driver notifies a queue index the device does not serve", () => {
    const f = ringFixture({ queueSize: 8, vqNumbering: 'spec' });
    const wrong = new VringVirtqueue(f.ring, f.views.device, { eventIdx: false, queueIndex: 2 }); // linux numbering against a spec device
    let calls = 0;
    const v = f.device.run(() => {
      calls++;
      if (calls === 1) {
        wrong.addInbuf([0], [PAGE_SIZE], 1, 0);
        wrong.kick();
      }
      return calls > 2;
    });
    expect(v).toBeNull();
    expect(badCount(f, 'notify-queue')).toBe(1);
    expect(counters(f).kicks).toBe(1);
  });

  it('survives a storm of random descriptors: never throws or hangs, and answers every chain that has a valid head', () => {
    const q = 16;
    const f = ringFixture({ queueSize: q, memoryBytes });
    let seed = 12345;
    const rnd = (n: number) => {
      seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
      return seed % n;
    };
    for (let round = 0; round < 300; round++) {
      for (let i = 0; i < q; i++) {
        const addr = rnd(4) === 0 ? rnd(2 ** 31) * 8 : rnd(memoryBytes / PAGE_SIZE) * PAGE_SIZE;
        const len = rnd(4) === 0 ? rnd(3 * PAGE_SIZE) : PAGE_SIZE * (1 + rnd(4));
        f.ring.writeDesc(i, addr, len, rnd(32), rnd(q + 4));
      }
      const n = 1 + rnd(q);
      for (let k = 0; k < n; k++) hostileChain(f, [], rnd(q + 2));
      expect(f.device.serve()).toBeNull();
    }
    const c = counters(f);
    expect(c.chains).toBeGreaterThan(0);
    expect(c.usedPushed).toBe(c.chains);
    expect(Atomics.load(f.ring.u16, f.ring.usedIdxI)).toBe(c.chains & 0xffff);
    expect(c.bad['head-index']).toBeGreaterThan(0);
    expect(c.bad['chain-loop'] + c.bad['desc-index'] + c.bad['desc-flags'] + c.bad['indirect']).toBeGreaterThan(0);
    expect(c.bad['avail-ahead']).toBe(0);
  });
});

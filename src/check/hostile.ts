// The hostile guest (--hostile, docs/DESIGN.md §6 "hostile-guest", §12) and
// its oracle. Before a real report, with probability --hostile, the
// reporting driver (the ring's one producer, so nothing else is in flight)
// publishes a burst of malformed chains: every bad kind the device counts,
// the input it tolerates, random descriptor tables, a bogus avail idx and
// odd avail.flags. An independent model of the device's rules (not the
// device's code) predicts, per burst, the bad and tolerated counts by kind,
// the used elements and the pages the chains validly name. After the device
// has answered, the oracle checks that it counted exactly that, answered
// exactly those chains in order, and touched no guest byte and no host
// bit outside the named pages: the bytes of the hostile's own pages, the
// discarded bitmap of all guest memory and the bytes just before guest
// memory are compared before and after.
//
// Every range a hostile chain validly names lies in the hostile's arena: a
// small block the driver allocates for the run and marks isolated while a
// burst is in flight (so device-allocated-range stays quiet and no CPU
// owns it); random addresses that would be valid elsewhere are moved into
// it, so the device never discards memory a CPU owns because a hostile
// chain said so. The arena is freed when the driver stops.

import { OracleViolation } from '../base/errors.js';
import { Rng, subSeed } from '../base/rng.js';
import { BAD_KINDS, TOLERATED_KINDS, type BadKind, type ToleratedKind } from '../host/balloon-device.js';
import { SITE_REPORT_ISOLATE } from '../locking/sites.js';
import { LivenessError, clockMs, waitWhileEquals } from '../locking/sync.js';
import { TK_HOSTILE, tracer } from '../locking/trace.js';
import type { Zone } from '../mm/buddy.js';
import { GuestMemory } from '../mm/memory.js';
import { PG_ALLOCATED, PG_ISOLATED } from '../mm/page.js';
import { DEV_BAD_BASE, DEV_TOLERATED_BASE, HDR_STATE_GEN, LOCK_ZONE, MAX_ORDER, METRIC_FAULTS, FAULT_SLOTS, NIL, PAGE_SIZE, REP_HOSTILE_ARENA_PFN1, ZONE_ISOLATED_PAGES, metricBase, type Views, DEV_HINT_RUN_ID } from '../shm/layout.js';
import { HINTS_MAX, HINT_ORDER_MASK, VIRTIO_BALLOON_CMD_ID_DONE, VIRTIO_BALLOON_CMD_ID_STOP } from '../virtio/balloon-abi.js';
import { VRING_DESC_F_INDIRECT, VRING_DESC_F_KNOWN, VRING_DESC_F_NEXT, VRING_DESC_F_WRITE, type VringVirtqueue } from '../virtio/ring.js';

/** The arena: 2^ARENA_ORDER pages the hostile owns for the run. */
export const ARENA_ORDER = 3;
const ARENA_PAGES = 1 << ARENA_ORDER;
/** Descriptors a burst writes and names: the first WINDOW (all of a small queue). */
const WINDOW = 64;
/** Hostile metric fields in the driver thread's slot, after the fault counters. */
export const METRIC_HOSTILE_CHECKS = METRIC_FAULTS + FAULT_SLOTS;
export const METRIC_HOSTILE_CHAINS = METRIC_HOSTILE_CHECKS + 1;
/** Bursts skipped: no block for the arena, or the zone too low to isolate it. */
export const METRIC_HOSTILE_SKIPPED = METRIC_HOSTILE_CHECKS + 2;

export interface HostileOptions {
  /** Probability per report of a burst first. */
  rate: number;
  /** The queue's rules: reporting (device-writable ranges), aeration (device-readable hint buffers), free_page (id buffers and ranges of a STARTed hint run). */
  queueKind: 'reporting' | 'aeration' | 'free_page';
  seed: number;
  /** The driver thread (owns the arena, counts in its metric slot). */
  thread: number;
  waitTimeoutMs: number;
  spin: number;
  serving: () => boolean;
  /** One-thread harnesses: run the device after each kick (a thread runs it otherwise). */
  afterKick?: () => void;
  /** The device drops what it is validly named (no keep rule applies, no migrate action): every named page must then be gone from the host. */
  discards: boolean;
  /** free_page: the hint device's VMM (default firecracker), whose rule for an id read in a started run the model follows. */
  hintDevice?: 'firecracker' | 'qemu';
}

interface Desc {
  addr: number;
  len: number;
  flags: number;
  next: number;
}

/** What one burst must do, by the model. */
interface Expectation {
  bad: number[];
  tol: number[];
  used: number[];
  named: Uint8Array;
}

const bi = (k: BadKind) => BAD_KINDS.indexOf(k);
const ti = (k: ToleratedKind) => TOLERATED_KINDS.indexOf(k);
const W = VRING_DESC_F_WRITE;
const N_ = VRING_DESC_F_NEXT;

/** The burst's ingredients, each a bad or tolerated kind the device must count (or a good chain). */
const REPORT_SHAPES = ['head-index', 'desc-index', 'chain-loop', 'desc-flags', 'indirect', 'addr-range', 'len', 'unaligned', 'direction', 'good', 'desc-reuse', 'random'] as const;
const FREE_PAGE_SHAPES = ['head-index', 'desc-index', 'chain-loop', 'desc-flags', 'indirect', 'addr-range', 'len', 'unaligned', 'hint-len', 'id', 'good', 'desc-reuse', 'random'] as const;
const AERATION_SHAPES = ['head-index', 'desc-index', 'chain-loop', 'desc-flags', 'indirect', 'addr-range', 'hint-len', 'unaligned', 'direction', 'hint-order', 'hint-unaligned', 'good', 'desc-reuse', 'random'] as const;

export class HostileGuest {
  private readonly rng: Rng;
  private readonly mem: GuestMemory;
  private readonly num: number;
  private readonly win: number;
  private readonly guestBytes: number;
  private readonly m: Float64Array;
  private readonly mb: number;
  private arena = NIL;
  private lastOddFlags = 0;
  /** Avail entries of the last burst (for the trace). */
  private lastEntries = 0;
  private readonly table: Desc[];
  /** aeration: the hint slots of arena page 0, as written (the model reads these). */
  private readonly hintLo = new Int32Array(PAGE_SIZE / 8);
  private readonly hintHi = new Int32Array(PAGE_SIZE / 8);
  private readonly before: Int32Array;
  private readonly snapshot: Float64Array;
  private readonly discardedBefore: Int32Array;

  constructor(
    readonly views: Views,
    readonly zone: Zone,
    readonly opts: HostileOptions,
  ) {
    this.rng = new Rng(subSeed(opts.seed, 0x4057));
    this.mem = new GuestMemory(views);
    this.num = views.layout.params.queueSize;
    this.win = Math.min(this.num, WINDOW);
    this.guestBytes = views.layout.guest.bytes;
    this.m = views.metrics;
    this.mb = metricBase(opts.thread);
    this.table = Array.from({ length: this.win }, () => ({ addr: 0, len: 0, flags: 0, next: 0 }));
    this.before = new Int32Array(BAD_KINDS.length + TOLERATED_KINDS.length);
    this.snapshot = new Float64Array((ARENA_PAGES * PAGE_SIZE) / 8);
    this.discardedBefore = new Int32Array(views.layout.hostWords);
  }

  /** The driver's hook at the start of a report (nothing in flight). */
  readonly beforeReport = (vq: VringVirtqueue): void => {
    if (this.opts.rate <= 0 || this.rng.float() >= this.opts.rate || !this.opts.serving()) return;
    if (!this.takeArena()) {
      this.m[this.mb + METRIC_HOSTILE_SKIPPED]++;
      return;
    }
    const tr = tracer;
    const t0 = tr !== null ? tr.nowUs() : 0;
    try {
      this.burst(vq);
    } finally {
      this.putArena();
      if (tr !== null) tr.since(TK_HOSTILE, t0, this.lastEntries);
    }
  };

  /** Free the arena (the driver stops). */
  release(): void {
    if (this.arena === NIL) return;
    this.zone.free(this.arena, ARENA_ORDER, this.opts.thread);
    this.arena = NIL;
  }

  /** The arena, allocated once; isolated (under the zone lock, counted) for the burst. */
  private takeArena(): boolean {
    if (this.arena === NIL) {
      const pfn = this.zone.alloc(ARENA_ORDER, this.opts.thread);
      if (pfn === NIL) return false;
      this.arena = pfn;
      Atomics.store(this.views.reporting, REP_HOSTILE_ARENA_PFN1, pfn + 1);
    }
    this.zone.sync.lock(LOCK_ZONE, SITE_REPORT_ISOLATE);
    try {
      this.zone.setHead(this.arena, PG_ISOLATED, ARENA_ORDER);
      this.views.zone[ZONE_ISOLATED_PAGES] += ARENA_PAGES;
    } finally {
      this.zone.sync.unlock(LOCK_ZONE);
    }
    return true;
  }

  private putArena(): void {
    this.zone.sync.lock(LOCK_ZONE, SITE_REPORT_ISOLATE);
    try {
      this.views.zone[ZONE_ISOLATED_PAGES] -= ARENA_PAGES;
      this.zone.setHead(this.arena, PG_ALLOCATED, ARENA_ORDER);
    } finally {
      this.zone.sync.unlock(LOCK_ZONE);
    }
  }

  private fail(message: string): never {
    throw new OracleViolation({ oracle: 'hostile-guest', message: `${message} (hostile burst in the arena at pfn ${this.arena}..${this.arena + ARENA_PAGES - 1})` });
  }

  // ---------------------------------------------------------------- the burst

  private burst(vq: VringVirtqueue): void {
    const rng = this.rng;
    const aer = this.opts.queueKind === 'aeration';
    const d = this.views.device;
    // A bogus avail idx first, on its own: the device must count it once and pop nothing.
    if (rng.below(4) === 0 && !this.availAhead(vq)) return;
    // The arena's contents, then the snapshot every comparison uses.
    for (let p = 0; p < ARENA_PAGES; p++) this.mem.touch(this.arena + p);
    const g = this.mem.i32;
    const base = (this.arena * PAGE_SIZE) / 4;
    // (Bit 30 set: an id buffer read from here is never STOP, DONE or a run's id.)
    for (let w = 0; w < (ARENA_PAGES * PAGE_SIZE) / 4; w++) g[base + w] = (0x484f5354 ^ Math.imul(w + 1, 0x9e3779b1)) | 0x40000000;
    // Harmless defaults: a descriptor no chain sets is device-writable, out of guest memory.
    for (const t of this.table) {
      t.addr = this.guestBytes + PAGE_SIZE;
      t.len = PAGE_SIZE;
      t.flags = aer ? 0 : W;
      t.next = 0;
    }
    if (aer) this.writeHintSlots();
    const heads: number[] = [];
    const shapes = aer ? AERATION_SHAPES : this.opts.queueKind === 'free_page' ? FREE_PAGE_SHAPES : REPORT_SHAPES;
    const entries = Math.max(1, Math.min(this.num, 2 + rng.below(7)));
    // Descriptors win-1 is kept for the self-naming buffer: no other entry
    // takes it and no random next points at it, so no earlier chain can
    // reach it and drop page 0 (the hint buffers) in the middle of a burst.
    const usable = this.win - 1;
    let nextDesc = 0;
    const take = (n: number) => {
      if ((nextDesc % usable) + n > usable) nextDesc += usable - (nextDesc % usable); // a chain's descriptors stay contiguous
      const first = nextDesc % usable;
      nextDesc += n;
      return first;
    };
    for (let e = 0; e < entries - 1; e++) {
      const sh = shapes[rng.below(shapes.length)];
      // A queue too small for two-descriptor chains besides the kept one: a good chain instead.
      this.shape(usable < 2 && (sh === 'chain-loop' || sh === 'desc-reuse') ? 'good' : sh, heads, take);
    }
    // At most N avail entries in one publication (two-entry shapes may overshoot): the rest is not published.
    if (heads.length > this.num - 1) heads.length = this.num - 1;
    this.sanitize();
    // The last entry has a valid head, so its used element ends the burst;
    // with aeration, now and then the self-naming hint buffer (after
    // sanitize(), which would move it: it names page 0 on purpose).
    if (aer && this.win > 2 && rng.below(3) === 0) this.selfNaming(heads);
    else this.shape('good', heads, take);
    // Odd avail.flags for this burst now and then (never NO_INTERRUPT: the
    // driver wants every interrupt), never the last burst's value (the device
    // counts each episode once; a refused report leaves none in between).
    let oddFlags = rng.below(4) === 0 ? (1 + rng.below(0x7fff)) << 1 : 0;
    if (oddFlags !== 0 && oddFlags === this.lastOddFlags) oddFlags ^= 0x8000;
    if (oddFlags !== 0) this.lastOddFlags = oddFlags;
    const exp = this.model(heads, oddFlags);
    // Snapshots: counters, arena bytes, discarded bitmap, the bytes before guest memory.
    for (let k = 0; k < BAD_KINDS.length; k++) this.before[k] = Atomics.load(d, DEV_BAD_BASE + k);
    for (let k = 0; k < TOLERATED_KINDS.length; k++) this.before[BAD_KINDS.length + k] = Atomics.load(d, DEV_TOLERATED_BASE + k);
    const f64 = this.mem.f64;
    const fb = (this.arena * PAGE_SIZE) / 8;
    this.snapshot.set(f64.subarray(fb, fb + this.snapshot.length));
    const host = this.views.hostResident;
    const hw = this.views.layout.hostWords;
    for (let w = 0; w < hw; w++) this.discardedBefore[w] = Atomics.load(host, hw + w);
    // Publish: descriptors, then the avail entries with one idx store, then the kick.
    const ring = vq.ring;
    for (let i = 0; i < this.win; i++) ring.writeDesc(i, this.table[i].addr, this.table[i].len, this.table[i].flags, this.table[i].next);
    if (oddFlags !== 0) Atomics.store(ring.u16, ring.availFlagsI, oddFlags);
    this.lastEntries = heads.length;
    vq.publishRaw(heads, heads.length);
    vq.kick();
    this.opts.afterKick?.();
    const got = this.collect(vq, exp.used.length);
    if (oddFlags !== 0) Atomics.store(ring.u16, ring.availFlagsI, 0);
    if (got === null) return; // the run is ending: nothing to check
    this.m[this.mb + METRIC_HOSTILE_CHAINS] += heads.length;
    this.check(exp, got);
    this.m[this.mb + METRIC_HOSTILE_CHECKS]++;
  }

  /**
   * avail idx more than N ahead: counted once per episode, nothing popped;
   * then the true idx back. Drawn from a few fixed values, so episodes
   * repeat one (a device that remembers the last bogus value for good, the
   * bug this found, counts a repeat zero times).
   */
  private availAhead(vq: VringVirtqueue): boolean {
    const d = this.views.device;
    const k = DEV_BAD_BASE + bi('avail-ahead');
    const before = Atomics.load(d, k);
    const bogus = BOGUS_AVAIL[this.rng.below(BOGUS_AVAIL.length)];
    if (((bogus - vq.availIdx) & 0xffff) <= this.num) return true; // not ahead from here: no episode this time
    vq.storeAvailIdxRaw(bogus);
    vq.notify();
    this.opts.afterKick?.();
    const h = this.views.header;
    // The device looks at the ring on every kick; it may be held up by an
    // ack-delay fault (1 s at most), never for seconds. Polled in 1 ms
    // sleeps (a semantic timeout; logical under --sched).
    const bound = Math.min(this.opts.waitTimeoutMs, AVAIL_AHEAD_BOUND_MS);
    const deadline = clockMs() + bound;
    while (Atomics.load(d, k) === before) {
      if (!this.opts.serving()) {
        vq.storeAvailIdxRaw(null);
        return false;
      }
      if (clockMs() > deadline) {
        vq.storeAvailIdxRaw(null);
        this.fail(`the device did not count a bogus avail idx (${bogus}, ${(bogus - vq.availIdx) & 0xffff} ahead of the queue's ${this.num}) within ${bound} ms of its kick`);
      }
      waitWhileEquals(h, HDR_STATE_GEN, Atomics.load(h, HDR_STATE_GEN), 1, () => !this.opts.serving());
    }
    vq.storeAvailIdxRaw(null);
    const n = Atomics.load(d, k) - before;
    if (n !== 1) this.fail(`the device counted a bogus avail idx ${n} times, not once`);
    this.m[this.mb + METRIC_HOSTILE_CHECKS]++;
    return true;
  }

  /** One entry of the burst, of one shape (a bad kind, a tolerated kind, a good chain or random). */
  private shape(kind: string, heads: number[], take: (n: number) => number): void {
    const rng = this.rng;
    const t = this.table;
    const num = this.num;
    const aer = this.opts.queueKind === 'aeration';
    const dir = aer ? 0 : W; // the queue's direction (free_page: its ranges are device-writable)
    const page = (p: number) => (this.arena + p) * PAGE_SIZE;
    const target = () => page(1 + rng.below(ARENA_PAGES - 1));
    const goodBuf = () => ({ addr: page(0) + 8 * rng.below(256), len: 8 * (1 + rng.below(8)) });
    const one = (addr: number, len: number, flags: number) => {
      const i = take(1);
      t[i] = { addr, len, flags, next: 0 };
      heads.push(i);
      return i;
    };
    const good = () => (aer ? (() => {
      const b = goodBuf();
      return one(b.addr, b.len, 0);
    })() : one(target(), PAGE_SIZE, W));
    switch (kind) {
      case 'head-index':
        heads.push(num + rng.below(0x10000 - num));
        return;
      case 'desc-index': {
        const i = good();
        t[i].flags |= N_;
        t[i].next = num + rng.below(0x10000 - num);
        return;
      }
      case 'chain-loop': {
        const a = take(2);
        const b = a + 1;
        const ga = aer ? goodBuf() : { addr: target(), len: PAGE_SIZE };
        t[a] = { addr: ga.addr, len: ga.len, flags: dir | N_, next: b };
        t[b] = { addr: ga.addr, len: ga.len, flags: dir | N_, next: a };
        heads.push(a);
        return;
      }
      case 'desc-flags': {
        const i = good();
        t[i].flags |= 8 << rng.below(12);
        return;
      }
      case 'indirect': {
        const i = good();
        t[i].flags = VRING_DESC_F_INDIRECT;
        t[i].len = 16;
        return;
      }
      case 'addr-range': {
        const far = rng.below(2) === 0 ? this.guestBytes + PAGE_SIZE * rng.below(1 << 20) : 2 ** 40 + PAGE_SIZE * rng.below(1024);
        if (aer) one(rng.below(2) === 0 ? far : this.guestBytes - 8, 16, 0);
        else if (this.opts.queueKind === 'free_page' && rng.below(2) === 0) one(rng.below(2) === 0 ? far : this.guestBytes - 2, 4, 0);
        else one(rng.below(2) === 0 ? far : this.guestBytes - PAGE_SIZE, 2 * PAGE_SIZE, W);
        return;
      }
      case 'len':
        one(target(), rng.below(2) === 0 ? 0 : PAGE_SIZE + 1 + rng.below(PAGE_SIZE - 1), W);
        return;
      case 'hint-len':
        if (this.opts.queueKind === 'free_page') one(page(0) + 4 * rng.below(64), rng.below(4), 0); // an id buffer under 4 bytes
        else one(page(0), rng.below(2) === 0 ? 12 : 8 * (HINTS_MAX + 1 + rng.below(8)), 0);
        return;
      case 'id':
        one(page(0) + 4 * rng.below(1000), 4 + 4 * rng.below(4), 0); // a stale id: counted by the hint device, not bad input
        return;
      case 'unaligned':
        if (aer) one(page(0) + 1 + rng.below(7), 8, 0);
        else if (this.opts.queueKind === 'free_page' && rng.below(2) === 0) one(page(0) + 1 + 4 * rng.below(64), 4, 0);
        else one(target() + 1 + rng.below(PAGE_SIZE - 1), PAGE_SIZE, W);
        return;
      case 'direction':
        if (aer) one(page(0), 8, W);
        else one(target(), PAGE_SIZE, 0);
        return;
      case 'hint-order':
      case 'hint-unaligned': {
        // A buffer of one hint, in a slot rewritten for it.
        const slot = this.freeSlot();
        // pfn 1, 3 or 5 of the arena (8-page aligned): odd, so an order-1 block there is not aligned to its order.
        const pfn = this.arena + 1 + 2 * rng.below(3);
        if (kind === 'hint-order') this.setHint(slot, pfn * PAGE_SIZE, MAX_ORDER + rng.below(HINT_ORDER_MASK - MAX_ORDER));
        else this.setHint(slot, pfn * PAGE_SIZE, 1);
        one(page(0) + 8 * slot, 8, 0);
        return;
      }
      case 'good':
        good();
        return;
      case 'desc-reuse': {
        // Chain A: x -> y; then y alone as chain B (the tail of A).
        const x = take(2);
        const y = x + 1;
        const gx = aer ? goodBuf() : { addr: target(), len: PAGE_SIZE };
        const gy = aer ? goodBuf() : { addr: target(), len: PAGE_SIZE };
        t[x] = { addr: gx.addr, len: gx.len, flags: dir | N_, next: y };
        t[y] = { addr: gy.addr, len: gy.len, flags: dir, next: 0 };
        heads.push(x, y);
        return;
      }
      case 'random': {
        // A random descriptor table: every field drawn; ranges that would be
        // valid elsewhere are moved into the arena by sanitize().
        const n = 1 + rng.below(Math.min(4, this.win - 1));
        const first = take(n);
        for (let k = 0; k < n; k++) {
          const i = first + k;
          const flags = rng.below(8) === 0 ? rng.below(0x10000) : [0, W, N_, W | N_][rng.below(4)];
          const next = rng.below(6) === 0 ? num + rng.below(4) : rng.below(this.win - 1);
          const addrs = [target(), page(0) + 8 * rng.below(512), rng.below(this.guestBytes), this.guestBytes + rng.below(PAGE_SIZE * 16), rng.below(2 ** 20) * 2 ** 32];
          const lens = [PAGE_SIZE, PAGE_SIZE * (1 + rng.below(4)), 0, rng.below(3 * PAGE_SIZE), 8 * (1 + rng.below(40))];
          t[i] = { addr: addrs[rng.below(addrs.length)], len: lens[rng.below(lens.length)], flags, next };
        }
        heads.push(rng.below(8) === 0 ? num + rng.below(4) : first + rng.below(n));
        return;
      }
      default:
        throw new Error(`hostile: unknown shape ${kind}`);
    }
  }

  // ---- aeration hint slots (arena page 0) ----

  /** Fill page 0 with random hints; a valid one outside arena pages 1.. is moved in (sanitizeHint). Slots from SELF_SLOT on are kept for the self-naming buffer. */
  private writeHintSlots(): void {
    const rng = this.rng;
    for (let s = 0; s < PAGE_SIZE / 8; s++) {
      const order = rng.below(8) === 0 ? rng.below(HINT_ORDER_MASK + 1) : rng.below(3);
      const pfnChoices = [this.arena + 1 + rng.below(ARENA_PAGES - 1), rng.below(this.views.layout.pages), this.views.layout.pages + rng.below(4096)];
      this.setHint(s, pfnChoices[rng.below(3)] * PAGE_SIZE, order);
    }
    this.slotCursor = 0;
  }

  private slotCursor = 0;
  /** A slot for a one-hint buffer of its own: from the end of the random part, before the self-naming slots. */
  private freeSlot(): number {
    this.slotCursor++;
    return SELF_SLOT - this.slotCursor;
  }

  /** Write hint `slot` of arena page 0 (the driver's encoding: gpa | order, little-endian u64), moved into the arena if it would be valid outside. */
  private setHint(slot: number, gpa: number, order: number): void {
    let lo = (gpa % 4294967296) + order;
    let hi = Math.floor(gpa / 4294967296);
    if (order < MAX_ORDER && this.validRange(gpa, PAGE_SIZE << order) && !this.insideTargets(gpa, PAGE_SIZE << order)) {
      lo = (this.arena + 1 + this.rng.below(ARENA_PAGES - 1)) * PAGE_SIZE; // order 0, in the arena
      hi = 0;
    }
    this.hintLo[slot] = lo | 0;
    this.hintHi[slot] = hi | 0;
    const w = (this.arena * PAGE_SIZE) / 4 + 2 * slot;
    this.mem.i32[w] = lo | 0;
    this.mem.i32[w + 1] = hi | 0;
  }

  /**
   * The minimal case, in the arena: a buffer in page 0 whose first
   * hint names page 0 itself, then two non-adjacent pages. Last in the
   * burst: after it, page 0 may read back as zeros.
   */
  private selfNaming(heads: number[]): void {
    const i = this.win - 1;
    const p0 = this.arena * PAGE_SIZE;
    const pages = [0, 3, 5];
    pages.forEach((p, k) => {
      this.hintLo[SELF_SLOT + k] = ((this.arena + p) * PAGE_SIZE) | 0;
      this.hintHi[SELF_SLOT + k] = 0;
      const w = p0 / 4 + 2 * (SELF_SLOT + k);
      this.mem.i32[w] = ((this.arena + p) * PAGE_SIZE) | 0;
      this.mem.i32[w + 1] = 0;
    });
    this.table[i] = { addr: p0 + 8 * SELF_SLOT, len: 24, flags: 0, next: 0 };
    heads.push(i);
  }

  // ---- the rules (the model): validation as docs/DESIGN.md §12 states it ----

  private validRange(addr: number, len: number): boolean {
    return len !== 0 && len % PAGE_SIZE === 0 && addr % PAGE_SIZE === 0 && addr < this.guestBytes && addr + len <= this.guestBytes;
  }

  /** Inside the arena's target pages (1.. for aeration, whose page 0 holds the hints; 0.. for the reporting queue). */
  private insideTargets(addr: number, len: number): boolean {
    const lo = (this.arena + (this.opts.queueKind === 'aeration' ? 1 : 0)) * PAGE_SIZE;
    return addr >= lo && addr + len <= (this.arena + ARENA_PAGES) * PAGE_SIZE;
  }

  private validBuffer(addr: number, len: number): boolean {
    return len !== 0 && len % 8 === 0 && len <= HINTS_MAX * 8 && addr % 8 === 0 && addr < this.guestBytes && addr + len <= this.guestBytes;
  }

  /** Move anything the device would act on outside the arena into it (hostile chains never name a CPU's memory). */
  private sanitize(): void {
    const aer = this.opts.queueKind === 'aeration';
    const p0 = this.arena * PAGE_SIZE;
    for (const t of this.table) {
      if (this.opts.queueKind === 'reporting' && (t.flags & W) !== 0 && this.validRange(t.addr, t.len) && !this.insideTargets(t.addr, t.len)) {
        t.addr = (this.arena + this.rng.below(ARENA_PAGES)) * PAGE_SIZE;
        t.len = PAGE_SIZE;
      }
      if (aer && (t.flags & W) === 0 && this.validBuffer(t.addr, t.len) && !(t.addr >= p0 && t.addr + t.len <= p0 + 8 * SELF_SLOT)) {
        t.addr = p0 + 8 * this.rng.below(SELF_SLOT - t.len / 8);
      }
      if (this.opts.queueKind === 'free_page') {
        if ((t.flags & W) !== 0 && this.validRange(t.addr, t.len) && !this.insideTargets(t.addr, t.len)) {
          t.addr = (this.arena + this.rng.below(ARENA_PAGES)) * PAGE_SIZE;
          t.len = PAGE_SIZE;
        }
        // An id buffer the device will read: in page 0, whose words are never a live id.
        if ((t.flags & W) === 0 && t.len >= 4 && t.addr % 4 === 0 && t.addr < this.guestBytes && t.addr + 4 <= this.guestBytes && !(t.addr >= p0 && t.addr + 4 <= p0 + PAGE_SIZE)) t.addr = p0 + 4 * this.rng.below(1024);
      }
    }
  }

  /** Predict the burst: bad and tolerated counts, used ids in order, named pages. */
  private model(heads: number[], oddFlags: number): Expectation {
    const aer = this.opts.queueKind === 'aeration';
    const num = this.num;
    const e: Expectation = { bad: new Array(BAD_KINDS.length).fill(0), tol: new Array(TOLERATED_KINDS.length).fill(0), used: [], named: new Uint8Array(ARENA_PAGES) };
    if (oddFlags !== 0) e.tol[ti('avail-flags')]++;
    const seenBy = new Int32Array(this.win).fill(-1);
    // free_page: ranges count only while the run is current (the device's
    // rangeIsCurrent()); the burst starts in a current, STARTed run, and a
    // readable id buffer ends it unless it is the run's own id (Firecracker:
    // guest_cmd takes the id; QEMU: any id while START stops the run).
    let current = true;
    const runId = Atomics.load(this.views.device, DEV_HINT_RUN_ID) >>> 0;
    const name = (addr: number, len: number) => {
      for (let p = addr / PAGE_SIZE; p < (addr + len) / PAGE_SIZE; p++) e.named[p - this.arena] = 1;
    };
    heads.forEach((head, chain) => {
      if (head >= num) {
        e.bad[bi('head-index')]++;
        return;
      }
      e.used.push(head);
      // The walk (virtqueue_pop): at most N descriptors.
      const descs: Desc[] = [];
      let i = head;
      let reused = false;
      let ok = true;
      for (;;) {
        if (descs.length >= num) {
          e.bad[bi('chain-loop')]++;
          ok = false;
          break;
        }
        if (seenBy[i] >= 0 && seenBy[i] !== chain) reused = true;
        seenBy[i] = chain;
        const t = this.table[i];
        if ((t.flags & ~VRING_DESC_F_KNOWN) !== 0) {
          e.bad[bi('desc-flags')]++;
          ok = false;
          break;
        }
        if ((t.flags & VRING_DESC_F_INDIRECT) !== 0) {
          e.bad[bi('indirect')]++;
          ok = false;
          break;
        }
        descs.push(t);
        if ((t.flags & N_) === 0) break;
        if (t.next >= num) {
          e.bad[bi('desc-index')]++;
          ok = false;
          break;
        }
        i = t.next;
      }
      if (reused) e.tol[ti('desc-reuse')]++;
      if (!ok) return;
      for (const t of descs) {
        if (this.opts.queueKind === 'free_page') {
          // get_free_page_hints(): an id buffer (read: a stale id here), or a range of the STARTed run.
          if ((t.flags & W) === 0) {
            if (t.len < 4) e.bad[bi('hint-len')]++;
            else if (t.addr % 4 !== 0) e.bad[bi('unaligned')]++;
            else if (t.addr >= this.guestBytes || t.addr + 4 > this.guestBytes) e.bad[bi('addr-range')]++;
            else {
              const id = this.views.guestI32[t.addr / 4] >>> 0;
              if ((this.opts.hintDevice ?? 'firecracker') === 'qemu' || id !== runId || id === VIRTIO_BALLOON_CMD_ID_STOP || id === VIRTIO_BALLOON_CMD_ID_DONE) current = false;
            }
          } else if (!current) {
            // An older run's range: ignored, neither validated nor acted on.
          } else if (t.len === 0 || t.len % PAGE_SIZE !== 0) e.bad[bi('len')]++;
          else if (t.addr % PAGE_SIZE !== 0) e.bad[bi('unaligned')]++;
          else if (t.addr >= this.guestBytes || t.addr + t.len > this.guestBytes) e.bad[bi('addr-range')]++;
          else name(t.addr, t.len);
          continue;
        }
        if (!aer) {
          if ((t.flags & W) === 0) e.bad[bi('direction')]++;
          else if (t.len === 0 || t.len % PAGE_SIZE !== 0) e.bad[bi('len')]++;
          else if (t.addr % PAGE_SIZE !== 0) e.bad[bi('unaligned')]++;
          else if (t.addr >= this.guestBytes || t.addr + t.len > this.guestBytes) e.bad[bi('addr-range')]++;
          else name(t.addr, t.len);
          continue;
        }
        if ((t.flags & W) !== 0) e.bad[bi('direction')]++;
        else if (t.len === 0 || t.len % 8 !== 0 || t.len > HINTS_MAX * 8) e.bad[bi('hint-len')]++;
        else if (t.addr % 8 !== 0) e.bad[bi('unaligned')]++;
        else if (t.addr >= this.guestBytes || t.addr + t.len > this.guestBytes) e.bad[bi('addr-range')]++;
        else {
          const first = (t.addr - this.arena * PAGE_SIZE) / 8;
          for (let h = 0; h < t.len / 8; h++) {
            const lo = this.hintLo[first + h] >>> 0;
            const hi = this.hintHi[first + h] >>> 0;
            const order = lo & HINT_ORDER_MASK;
            if (order >= MAX_ORDER) {
              e.bad[bi('hint-order')]++;
              continue;
            }
            const gpa = hi * 4294967296 + (lo - order);
            if (gpa % (PAGE_SIZE << order) !== 0) e.tol[ti('hint-unaligned')]++;
            const len = PAGE_SIZE << order;
            if (gpa >= this.guestBytes || gpa + len > this.guestBytes) e.bad[bi('addr-range')]++;
            else name(gpa, len);
          }
        }
      }
    });
    return e;
  }

  /** Wait for the burst's used elements (strictly, as waitUsed does); null if the run stopped first. */
  private collect(vq: VringVirtqueue, n: number): number[] | null {
    const got: number[] = [];
    while (got.length < n) {
      for (let id = vq.takeUsedRaw(); id >= 0; id = got.length < n ? vq.takeUsedRaw() : -1) got.push(id);
      if (got.length >= n) break;
      const w = vq.waitUsed(this.opts.waitTimeoutMs, () => !this.opts.serving(), this.opts.spin);
      if (w === 'timed-out') throw new LivenessError(`hostile guest: the device answered ${got.length} of the burst's ${n} chains within ${this.opts.waitTimeoutMs} ms`);
      if (w === 'stopped' && !vq.moreUsed()) return null;
    }
    // A used element beyond the burst: the device answered a chain it should have dropped.
    if (vq.moreUsed()) {
      const extra = vq.takeUsedRaw();
      this.fail(`the device returned a used element (id ${extra}) beyond the ${n} the burst's chains with a valid head called for`);
    }
    return got;
  }

  private check(e: Expectation, used: number[]): void {
    const d = this.views.device;
    const diffs: string[] = [];
    BAD_KINDS.forEach((k, i) => {
      const n = Atomics.load(d, DEV_BAD_BASE + i) - this.before[i];
      if (n !== e.bad[i]) diffs.push(`${k} ${n} (expected ${e.bad[i]})`);
    });
    TOLERATED_KINDS.forEach((k, i) => {
      const n = Atomics.load(d, DEV_TOLERATED_BASE + i) - this.before[BAD_KINDS.length + i];
      if (n !== e.tol[i]) diffs.push(`tolerated ${k} ${n} (expected ${e.tol[i]})`);
    });
    if (diffs.length > 0) this.fail(`the device counted the burst's input wrong: ${diffs.join(', ')}`);
    if (used.length !== e.used.length || used.some((id, k) => id !== e.used[k])) this.fail(`the device answered chains [${used.join(', ')}], expected [${e.used.join(', ')}] (every chain with a valid head, in order)`);
    // The arena: every page no chain validly named is byte for byte as before, and still resident.
    const f64 = this.mem.f64;
    const lanes = PAGE_SIZE / 8;
    for (let p = 0; p < ARENA_PAGES; p++) {
      const pfn = this.arena + p;
      if (e.named[p]) {
        // Named (and resident before the burst): a discarding device dropped it.
        if (this.opts.discards && this.mem.isResident(pfn)) this.fail(`page pfn ${pfn} was validly named by a hostile chain, yet the device kept it`);
        continue;
      }
      if (!this.mem.isResident(pfn)) this.fail(`page pfn ${pfn} was named by no hostile chain, yet the host dropped it`);
      const b = pfn * lanes;
      for (let k = 0; k < lanes; k++) {
        if (!Object.is(f64[b + k], this.snapshot[p * lanes + k])) this.fail(`page pfn ${pfn} was named by no hostile chain, yet its byte ${k * 8} changed`);
      }
    }
    // All guest memory: no page outside the named ones newly discarded
    // (CPUs may clear discarded bits meanwhile, by refaulting; only the
    // device sets them).
    const host = this.views.hostResident;
    const hw = this.views.layout.hostWords;
    for (let w = 0; w < hw; w++) {
      let fresh = Atomics.load(host, hw + w) & ~this.discardedBefore[w];
      if (fresh === 0) continue;
      for (let b = 0; b < 32; b++) {
        if ((fresh & (1 << b)) === 0) continue;
        const pfn = w * 32 + b;
        const inArena = pfn >= this.arena && pfn < this.arena + ARENA_PAGES && e.named[pfn - this.arena] !== 0;
        if (!inArena) this.fail(`page pfn ${pfn}, which no hostile chain validly named, was discarded by the host during the burst`);
        fresh &= ~(1 << b);
      }
    }
    // The bytes just before guest memory (the reserved violations region and
    // the padding): nothing ever writes them.
    const l = this.views.layout;
    const guard = new Uint8Array(this.views.sab, l.violations.offset, l.guest.offset - l.violations.offset);
    const lastEnd = Math.max(l.violations.offset + l.violations.bytes, l.sched.offset + l.sched.bytes, l.trace.offset + l.trace.bytes);
    for (let k = 0; k < guard.length; k++) {
      const at = l.violations.offset + k;
      if ((at < l.violations.offset + l.violations.bytes || at >= lastEnd) && guard[k] !== 0) this.fail(`byte ${at - l.guest.offset} before guest memory is ${guard[k]}, not 0: the device wrote outside guest memory`);
    }
  }
}

/** Hint slots from here to the end of page 0 hold the self-naming buffer's three hints. */
const SELF_SLOT = PAGE_SIZE / 8 - 4;
/** How long the device may take to count a kicked bogus avail idx. */
const AVAIL_AHEAD_BOUND_MS = 3000;
/** The bogus avail idx values a burst draws from (few, so they repeat). */
const BOGUS_AVAIL = [0x7777, 0xbad0, 0xf00d];

// Guest memory bytes and the host's view of them.
//
// Host model (docs/DESIGN.md §1, §3.7, §16): one resident bit per 4 KiB page.
// A guest write to a page the host does not back faults on the host (an EPT
// violation: handle_ept_violation -> kvm_mmu_page_fault -> the host's
// do_anonymous_page), which maps a fresh zeroed page: the faulting thread
// zero-fills the real bytes (the host's clear_page) and burns the profile's
// fixed fault cost (src/mm/host-costs.ts), then sets the bit. If the host had
// discarded the page (free page reporting), the fault is a *refault*.
// The host's discard (MADV_DONTNEED: zap_page_range_single) only drops
// residency: no bytes are written on the device's thread. A read of a page
// the host does not back reads the fresh page's contents (zeros: the host
// maps its zero page), so a discard of a page in use still shows as zeros to
// the stamp and poison oracles.
//
// Content stamps (docs/DESIGN.md §6): each page a CPU allocates gets (cpu, seq)
// written into its first and last 8 bytes and checked before it is freed.
// Zeros mean the host discarded a page in use; a foreign stamp means two
// owners. With poisoning, free pages hold a poison pattern checked on alloc.

import { DEV_HOST_FILL, DEV_TLB_FLUSH_GEN, PAGEBLOCK_ORDER, PAGE_SIZE, type Views } from '../shm/layout.js';
import { burn } from '../base/burn.js';
import { LivenessError } from '../locking/sync.js';
import { type HostCostModel, hostCosts } from './host-costs.js';

const F64_PER_PAGE = PAGE_SIZE / 8;
const I32_PER_PAGE = PAGE_SIZE / 4;
export const STAMP_TAG = 0x53540000; // 'ST' << 16 | cpu
/** Pages of a host THP (2 MiB). */
const HUGE_PAGES = 1 << PAGEBLOCK_ORDER;
/** Bound on waiting for another CPU's THP fault of the same 2 MiB (the host's page-table lock). */
const HUGE_LOCK_TIMEOUT_MS = 10_000;

export type Fault = 0 | 1 | 2; // 0 resident, 1 first touch, 2 refault after discard

export class GuestMemory {
  readonly f64: Float64Array;
  readonly i32: Int32Array;
  readonly host: Int32Array;
  readonly hostWords: number;
  readonly pages: number;
  /** The host costs this thread pays (the thread's model when this object was built). */
  readonly costs: HostCostModel;
  private readonly faultIters: number;
  private readonly hostThp: boolean;
  /** The byte a fresh host page holds (DEV_HOST_FILL), its Float64 lane (null if that lane is a NaN) and Int32 word. */
  readonly freshByte: number;
  private readonly freshLane: number | null;
  private readonly freshWord: number;
  private readonly dev: Int32Array;
  private readonly hugeLockBase: number;
  constructor(
    readonly views: Views,
    costs: HostCostModel = hostCosts,
  ) {
    this.f64 = views.guestF64;
    this.i32 = views.guestI32;
    this.host = views.hostResident;
    this.hostWords = views.layout.hostWords;
    this.pages = views.layout.pages;
    this.costs = costs;
    this.faultIters = costs.faultIters;
    this.hostThp = costs.hostThp;
    this.dev = views.device;
    this.freshByte = views.device[DEV_HOST_FILL] & 0xff;
    this.freshLane = poisonLane(this.freshByte);
    this.freshWord = (this.freshByte * 0x01010101) | 0;
    this.hugeLockBase = views.layout.hostHugeLockBase;
  }

  /** The guest is about to write page `pfn`: fault it in on the host if needed. */
  touch(pfn: number): Fault {
    const w = pfn >>> 5;
    const bit = 1 << (pfn & 31);
    // Plain read first: resident is the common case and needs no RMW.
    if ((this.host[w] & bit) !== 0) return 0;
    // A host THP: the fault may map the whole 2 MiB (a branch on the
    // configuration, the same from the first fault of the run).
    if (this.hostThp) return this.faultHuge(pfn, w, bit);
    // Atomics.or: the device clears other bits of this word concurrently.
    const before = Atomics.or(this.host, w, bit);
    if ((before & bit) !== 0) return 0;
    // The EPT violation on this vCPU: the host's fault path (fixed cost,
    // busy on this thread) and a fresh page, zero-filled for real here.
    this.fillFresh(pfn, 1);
    burn(this.faultIters);
    // Discarded before? Then this fault is a refault; clear the mark. No
    // branch on purpose: refaults first happen once hinting runs, seconds in,
    // and a path with no JIT type feedback by then makes every CPU thread
    // deoptimize and recompile its hottest code, a simulator cost the
    // benchmarks would charge to hinting. The extra RMW is on the fault path
    // only, never on a resident touch.
    const discarded = Atomics.and(this.host, this.hostWords + w, ~bit) & bit;
    return discarded !== 0 ? 2 : 1;
  }

  /**
   * A host fault with transparent huge pages (--host-thp): where the whole
   * 2 MiB around `pfn` is unbacked the host maps one huge page
   * (do_huge_pmd_anonymous_page: clear_huge_page of 2 MiB, one fault for 512
   * pages), otherwise one 4 KiB page (do_anonymous_page, under a page table
   * that exists). Serialised per 2 MiB by a lock word, as the host's
   * page-table lock serialises two vCPUs faulting the same range: the fresh
   * bytes are written before the resident bits publish them, and never over
   * a page another CPU already uses. The choice between 2 MiB and 4 KiB is
   * arithmetic (no branch that first runs once hinting starts).
   */
  private faultHuge(pfn: number, w: number, bit: number): Fault {
    const r = pfn >>> PAGEBLOCK_ORDER;
    this.lockHuge(r);
    try {
      // Re-check under the lock: a fault of a neighbour may have mapped it.
      if ((Atomics.load(this.host, w) & bit) !== 0) return 0;
      const base = r << PAGEBLOCK_ORDER;
      // Huge only if the 2 MiB lies inside guest memory and nothing of it is backed.
      const inside = +(base + HUGE_PAGES <= this.pages);
      const w0 = base >>> 5;
      let any = 0;
      for (let k = 0, n = inside * (HUGE_PAGES >>> 5); k < n; k++) any |= this.host[w0 + k];
      const huge = inside & (((any | -any) >>> 31) ^ 1);
      const start = pfn - huge * (pfn - base);
      const count = 1 + huge * (HUGE_PAGES - 1);
      this.fillFresh(start, count);
      burn(huge * this.costs.hugeFaultIters + (1 - huge) * this.faultIters);
      const discarded = Atomics.load(this.host, this.hostWords + w) & bit;
      // Publish after the bytes: huge, every bit of 16 words; else the one bit.
      const mask = bit | -huge;
      for (let k = start >>> 5, last = (start + count - 1) >>> 5; k <= last; k++) {
        Atomics.or(this.host, k, mask);
        Atomics.and(this.host, this.hostWords + k, ~mask);
      }
      return discarded !== 0 ? 2 : 1;
    } finally {
      this.unlockHuge(r);
    }
  }

  /** The 2 MiB range's fault lock: 0 free, 1 held, 2 held with waiters (a futex mutex, bounded). */
  private lockHuge(r: number): void {
    const h = this.host;
    const i = this.hugeLockBase + r;
    if (Atomics.compareExchange(h, i, 0, 1) === 0) return;
    const deadline = performance.now() + HUGE_LOCK_TIMEOUT_MS;
    for (let spin = 0; spin < 100; spin++) if (Atomics.compareExchange(h, i, 0, 1) === 0) return;
    while (Atomics.exchange(h, i, 2) !== 0) {
      if (performance.now() > deadline) throw new LivenessError(`host THP fault: the 2 MiB at pfn ${r << PAGEBLOCK_ORDER} stayed locked for ${HUGE_LOCK_TIMEOUT_MS} ms`);
      Atomics.wait(h, i, 2, 10);
    }
  }

  private unlockHuge(r: number): void {
    const i = this.hugeLockBase + r;
    // WAKE: a waiter set 2; wake one, which takes it as 2 (it may have company).
    if (Atomics.exchange(this.host, i, 0) === 2) Atomics.notify(this.host, i, 1);
  }

  /** Fresh host pages: zeros, or poison_val with --poison-policy fill (DEV_HOST_FILL). */
  private fillFresh(pfn: number, count: number): void {
    const lane = this.freshLane;
    if (lane !== null) this.f64.fill(lane, pfn * F64_PER_PAGE, (pfn + count) * F64_PER_PAGE);
    else this.i32.fill(this.freshWord, pfn * I32_PER_PAGE, (pfn + count) * I32_PER_PAGE);
  }

  /** Boot-time poisoning writes every page: the host backs all of guest memory. */
  markAllResident(): void {
    const pages = this.views.layout.pages;
    this.host.fill(-1, 0, pages >>> 5);
    if (pages & 31) this.host[pages >>> 5] = (1 << (pages & 31)) - 1;
  }

  isResident(pfn: number): boolean {
    return (this.host[pfn >>> 5] & (1 << (pfn & 31))) !== 0;
  }

  /**
   * Host side: drop the backing of [pfn, pfn+count) (one MADV_DONTNEED:
   * zap_page_range_single). Returns the pages that were resident. Only
   * residency changes: a page the host no longer backs reads as a fresh page
   * (its bytes are rewritten when it is faulted in again), so the device
   * writes no guest byte. The call's cost (fixed + per page zapped) is busy
   * time on the calling (device) thread; if anything was unmapped, the MMU
   * notifier flushes every vCPU's TLB (kvm_mmu_notifier_invalidate_range_start
   * -> kvm_flush_remote_tlbs): DEV_TLB_FLUSH_GEN tells the CPUs.
   */
  discard(pfn: number, count: number): number {
    // One Atomics.and / Atomics.or per bitmap word (32 pages), not per page:
    // CPUs fault pages of the same words in concurrently.
    let dropped = 0;
    const end = pfn + count;
    for (let p = pfn; p < end; ) {
      const w = p >>> 5;
      const lo = p & 31;
      const hi = Math.min(32, lo + (end - p));
      const mask = hi - lo === 32 ? -1 : (((1 << (hi - lo)) - 1) << lo) | 0;
      const before = Atomics.and(this.host, w, ~mask);
      const resident = before & mask;
      dropped += popcount(resident);
      // Only pages the host backed count as discarded: MADV_DONTNEED on a
      // never-populated page is a no-op, and its first touch is no refault.
      if (resident !== 0) Atomics.or(this.host, this.hostWords + w, resident);
      p += hi - lo;
    }
    burn(this.costs.discardIters(dropped));
    // WAKE-free publish: CPUs read the generation at their next allocation
    // and pay one TLB-flush interrupt per bump (src/sim/workload.ts).
    if (dropped > 0) Atomics.add(this.dev, DEV_TLB_FLUSH_GEN, 1);
    return dropped;
  }

  /** Host RSS in pages (popcount of the resident bitmap). */
  residentPages(): number {
    let n = 0;
    const h = this.host;
    for (let i = 0; i < this.hostWords; i++) {
      let x = h[i];
      if (x === 0) continue;
      x = x - ((x >>> 1) & 0x55555555);
      x = (x & 0x33333333) + ((x >>> 2) & 0x33333333);
      n += (Math.imul((x + (x >>> 4)) & 0x0f0f0f0f, 0x01010101) >>> 24);
    }
    return n;
  }

  /** Clear one page, as the kernel's anonymous fault does. */
  clearPage(pfn: number): void {
    this.f64.fill(0, pfn * F64_PER_PAGE, (pfn + 1) * F64_PER_PAGE);
  }

  writeStamp(pfn: number, cpu: number, seq: number): void {
    const b = pfn * I32_PER_PAGE;
    const tag = STAMP_TAG | cpu;
    this.i32[b] = tag;
    this.i32[b + 1] = seq;
    this.i32[b + I32_PER_PAGE - 2] = seq;
    this.i32[b + I32_PER_PAGE - 1] = tag;
  }

  /** null if the stamp is intact, else what was found. */
  checkStamp(pfn: number, cpu: number, seq: number): string | null {
    // A page the host no longer backs reads as a fresh page (zeros): its
    // stale bytes are not the guest's any more. Never true in a correct run.
    if ((this.host[pfn >>> 5] & (1 << (pfn & 31))) === 0) return this.freshByte === 0 ? 'page reads as zeros: its contents were lost (discarded by the host while in use?)' : `page reads as the host's fresh-page byte 0x${this.freshByte.toString(16)}: its contents were lost (discarded by the host while in use?)`;
    const b = pfn * I32_PER_PAGE;
    const tag = STAMP_TAG | cpu;
    const i = this.i32;
    const a0 = i[b];
    const a1 = i[b + 1];
    const z1 = i[b + I32_PER_PAGE - 2];
    const z0 = i[b + I32_PER_PAGE - 1];
    if (a0 === tag && a1 === seq && z1 === seq && z0 === tag) return null;
    if (a0 === 0 && a1 === 0 && z0 === 0 && z1 === 0) return 'page reads as zeros: its contents were lost (discarded by the host while in use?)';
    if ((a0 & 0xffff0000) === STAMP_TAG && (a0 & 0xffff) !== cpu) return `page holds cpu ${a0 & 0xffff}'s stamp (seq ${a1}): the page was handed to two owners`;
    return `stamp mismatch: found [${hex(a0)} ${a1} .. ${z1} ${hex(z0)}], expected cpu ${cpu} seq ${seq}`;
  }

  /** Fill pages with a repeated poison byte (page poisoning). */
  fillPoison(pfn: number, count: number, poisonByte: number): void {
    const lane = poisonLane(poisonByte);
    // 64-bit lanes fill shared memory several times faster than 32-bit ones;
    // a NaN lane could be canonicalised on store, so those use Int32 words.
    if (lane !== null) this.f64.fill(lane, pfn * F64_PER_PAGE, (pfn + count) * F64_PER_PAGE);
    else this.i32.fill(((poisonByte & 0xff) * 0x01010101) | 0, pfn * I32_PER_PAGE, (pfn + count) * I32_PER_PAGE);
  }

  /**
   * Check every word of the pages holds the poison pattern; returns the first
   * bad pfn or -1. A page the host does not back reads as a fresh host page.
   */
  checkPoison(pfn: number, count: number, poisonByte: number): number {
    const word = ((poisonByte & 0xff) * 0x01010101) | 0;
    const i = this.i32;
    for (let p = pfn; p < pfn + count; p++) {
      if (!this.isResident(p)) {
        if (this.freshWord !== word) return p;
        continue;
      }
      const end = (p + 1) * I32_PER_PAGE;
      for (let k = p * I32_PER_PAGE; k < end; k++) if (i[k] !== word) return p;
    }
    return -1;
  }

  /** The Int32 word a guest read of `index` (an Int32 index into guest memory) returns: a fresh page's for an unbacked page. */
  readWord(index: number): number {
    return this.isResident(Math.floor(index / I32_PER_PAGE)) ? this.i32[index] : this.freshWord;
  }
}

const lanes = new Map<number, number | null>();
/** The Float64 whose bytes are all `b`, or null if that bit pattern is a NaN. */
function poisonLane(b: number): number | null {
  let v = lanes.get(b);
  if (v === undefined) {
    const dv = new DataView(new ArrayBuffer(8));
    for (let i = 0; i < 8; i++) dv.setUint8(i, b & 0xff);
    const x = dv.getFloat64(0, true);
    v = Number.isNaN(x) ? null : x;
    lanes.set(b, v);
  }
  return v;
}

function popcount(x: number): number {
  x = x - ((x >>> 1) & 0x55555555);
  x = (x & 0x33333333) + ((x >>> 2) & 0x33333333);
  return Math.imul((x + (x >>> 4)) & 0x0f0f0f0f, 0x01010101) >>> 24;
}

const hex = (x: number) => '0x' + (x >>> 0).toString(16);

// Guest memory bytes and the host's view of them.
//
// Host model (docs/DESIGN.md §1, §3.7): one resident bit per 4 KiB page. A guest write
// to a page the host does not back faults on the host, which maps a fresh
// zero page (we zero-fill, paying the real cost) and sets the bit. If the host
// had discarded the page (free page reporting), the fault is a *refault*.
// The device clears resident bits and sets discarded bits when it discards.
//
// Content stamps (docs/DESIGN.md §6): each page a CPU allocates gets (cpu, seq)
// written into its first and last 8 bytes and checked before it is freed.
// Zeros mean the host discarded a page in use; a foreign stamp means two
// owners. With poisoning, free pages hold a poison pattern checked on alloc.

import { PAGE_SIZE, type Views } from '../shm/layout.js';

const F64_PER_PAGE = PAGE_SIZE / 8;
const I32_PER_PAGE = PAGE_SIZE / 4;
export const STAMP_TAG = 0x53540000; // 'ST' << 16 | cpu

export type Fault = 0 | 1 | 2; // 0 resident, 1 first touch, 2 refault after discard

export class GuestMemory {
  readonly f64: Float64Array;
  readonly i32: Int32Array;
  /** Guest memory as 64-bit lanes for the fastest zero fill. */
  readonly u64: BigUint64Array;
  readonly host: Int32Array;
  readonly hostWords: number;
  constructor(readonly views: Views) {
    this.f64 = views.guestF64;
    this.i32 = views.guestI32;
    this.u64 = new BigUint64Array(views.sab, views.layout.guest.offset, views.layout.guest.bytes / 8);
    this.host = views.hostResident;
    this.hostWords = views.layout.hostWords;
  }

  /** The guest is about to write page `pfn`: fault it in on the host if needed. */
  touch(pfn: number): Fault {
    const w = pfn >>> 5;
    const bit = 1 << (pfn & 31);
    // Plain read first: resident is the common case and needs no RMW.
    if ((this.host[w] & bit) !== 0) return 0;
    // Atomics.or: the device clears other bits of this word concurrently.
    const before = Atomics.or(this.host, w, bit);
    if ((before & bit) !== 0) return 0;
    // A fresh host page is zero-filled before the guest sees it.
    this.f64.fill(0, pfn * F64_PER_PAGE, (pfn + 1) * F64_PER_PAGE);
    // Discarded before? Then this fault is a refault; clear the mark. No
    // branch on purpose: refaults first happen once hinting runs, seconds in,
    // and a path with no JIT type feedback by then makes every CPU thread
    // deoptimize and recompile its hottest code, a simulator cost the
    // benchmarks would charge to hinting. The extra RMW is on the fault path
    // only, never on a resident touch.
    const discarded = Atomics.and(this.host, this.hostWords + w, ~bit) & bit;
    return discarded !== 0 ? 2 : 1;
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
   * Host side: drop the backing of [pfn, pfn+count) (MADV_DONTNEED). Returns
   * the pages that were resident. A non-resident page's bytes are already
   * zero (never touched, or zeroed when discarded), so only resident pages are
   * zero-filled: reporting untouched memory costs no real memory here either.
   */
  discard(pfn: number, count: number, poisonVal: number | null): number {
    // One Atomics.and / Atomics.or per bitmap word (32 pages), not per page:
    // CPUs fault pages of the same words in concurrently.
    let dropped = 0;
    const end = pfn + count;
    const zero = poisonVal === null || poisonVal === 0;
    // A zero discard only has to clear pages that were resident: the bytes
    // of a non-resident page are already zero (never touched, or zeroed when
    // it was discarded), so reporting untouched memory costs no real memory.
    let runStart = -1;
    const zeroRun = (a: number, b: number) => this.u64.fill(0n, a * F64_PER_PAGE, b * F64_PER_PAGE);
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
      if (zero) {
        if (resident === mask) {
          if (runStart < 0) runStart = p;
        } else {
          if (runStart >= 0) zeroRun(runStart, p);
          runStart = -1;
          for (let b = lo; b < hi && resident !== 0; b++) if ((resident & (1 << b)) !== 0) zeroRun(w * 32 + b, w * 32 + b + 1);
        }
      }
      p += hi - lo;
    }
    if (runStart >= 0) zeroRun(runStart, end);
    // With PAGE_POISON the device must only ever write poison_val into
    // reported pages ('fill' policy): the whole range reads back as poison.
    if (!zero) this.fillPoison(pfn, count, poisonVal);
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

  /** Check every word of the pages holds the poison pattern; returns the first bad pfn or -1. */
  checkPoison(pfn: number, count: number, poisonByte: number): number {
    const word = ((poisonByte & 0xff) * 0x01010101) | 0;
    const i = this.i32;
    const end = (pfn + count) * I32_PER_PAGE;
    for (let k = pfn * I32_PER_PAGE; k < end; k++) if (i[k] !== word) return Math.floor(k / I32_PER_PAGE);
    return -1;
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

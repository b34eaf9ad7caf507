// The split virtqueue (virtio 1.2 §2.7, include/uapi/linux/virtio_ring.h) in
// the shared buffer, with the driver side (Linux drivers/virtio/virtio_ring.c,
// `struct vring_virtqueue`) and the device side (QEMU hw/virtio/virtio.c,
// `VirtQueue`).
//
// Byte layout (all little-endian; src/shm/layout.ts places the region):
//   desc[N]   at 0:            {le64 addr, le32 len, le16 flags, le16 next}, 16 B each
//   avail     at 16*N:         {le16 flags, le16 idx, le16 ring[N], le16 used_event}
//   used      at align(avail end, ringAlign):
//                              {le16 flags, le16 idx, {le32 id, le32 len}[N], le16 avail_event}
// Addresses in descriptors are guest-physical: byte offsets into the guest
// memory region.
//
// Memory ordering. Both sides keep their private state (free list, shadow
// indices) in the thread; only the ring itself is shared. The rule is the
// kernel's: write the entries with plain stores, then publish the index with
// one Atomics.store (seq-cst, so it is also a release); the other side reads
// the index with Atomics.load (seq-cst, so also an acquire) before it reads
// any entry. The flags / event words that suppress notifications are also
// accessed with Atomics, because the suppression protocol needs a full fence
// between "publish my index" and "read the other side's event word" (the
// virtio_mb() in virtqueue_kick_prepare and in QEMU's virtio_should_notify):
// JS seq-cst operations give that total order.
//
// Guest-controlled input is never trusted by the device side: every index read
// from the ring is range-checked, every chain walk is bounded by N, and
// everything bad is counted by kind (RING_BAD_*) and answered as the spec
// allows (used len 0, or the chain dropped when its head is not a descriptor).

import { DEV_INTERRUPT, DEV_KICK, DEV_NOTIFY_QUEUE, type Views } from '../shm/layout.js';
import { SP_RING_AVAIL, SP_RING_USED, type StrictWait, bump, clockMs, schedPoint, waitWhileEquals } from '../locking/sync.js';
import { OracleViolation } from '../base/errors.js';
import { burn } from '../base/burn.js';
import { hostCosts } from '../mm/host-costs.js';

// ---- include/uapi/linux/virtio_ring.h ----
export const VRING_DESC_F_NEXT = 1;
export const VRING_DESC_F_WRITE = 2;
export const VRING_DESC_F_INDIRECT = 4;
/** Every flag bit a split-ring descriptor may carry. */
export const VRING_DESC_F_KNOWN = VRING_DESC_F_NEXT | VRING_DESC_F_WRITE | VRING_DESC_F_INDIRECT;
export const VRING_USED_F_NO_NOTIFY = 1;
export const VRING_AVAIL_F_NO_INTERRUPT = 1;
export const VIRTIO_RING_F_INDIRECT_DESC = 28;
export const VIRTIO_RING_F_EVENT_IDX = 29;
export const VRING_DESC_BYTES = 16;
export const VRING_USED_ELEM_BYTES = 8;
/** Largest split-ring size (virtio 1.2 §2.7: Queue Size <= 32768). */
export const VRING_NUM_MAX = 32768;

/** -ENOSPC: the ring has too few free descriptors for the chain (an operating error, a return value). */
export const ENOSPC = -28;

/**
 * vring_need_event() from virtio_ring.h: should the side that moved its index
 * from `old` to `newIdx` notify the other side, which asked to be told once
 * the index passes `eventIdx`? All arithmetic is mod 2^16.
 */
export function vringNeedEvent(eventIdx: number, newIdx: number, old: number): boolean {
  return ((newIdx - eventIdx - 1) & 0xffff) < ((newIdx - old) & 0xffff);
}

/** Byte offsets of the three parts, as vring_init() computes them (relative to the ring start). */
export function vringOffsets(num: number, align: number): { desc: number; avail: number; used: number; size: number } {
  const avail = VRING_DESC_BYTES * num;
  const availEnd = avail + 2 * (3 + num);
  const used = Math.ceil(availEnd / align) * align;
  return { desc: 0, avail, used, size: used + 2 * 3 + VRING_USED_ELEM_BYTES * num };
}

/** Typed views of one split ring. Indices into u16/u32 are precomputed per field. */
export class VringMem {
  readonly u16: Uint16Array;
  readonly u32: Uint32Array;
  readonly mask: number;
  /** u16 indices */
  readonly availFlagsI: number;
  readonly availIdxI: number;
  readonly availRingI: number;
  readonly usedEventI: number;
  readonly usedFlagsI: number;
  readonly usedIdxI: number;
  readonly availEventI: number;
  /** u32 index of used.ring[0].id */
  readonly usedRingI: number;
  constructor(
    buffer: SharedArrayBuffer | ArrayBuffer,
    readonly byteOffset: number,
    readonly num: number,
    readonly align: number,
  ) {
    if (!Number.isInteger(num) || num < 1 || num > VRING_NUM_MAX || (num & (num - 1)) !== 0) throw new Error(`vring: size ${num} is not a power of 2 in 1..${VRING_NUM_MAX}`);
    if (align !== 4 && align !== 4096) throw new Error(`vring: alignment ${align} is neither 4 nor 4096`);
    if (byteOffset % 16 !== 0) throw new Error(`vring: descriptor table at ${byteOffset} is not 16-byte aligned`);
    const o = vringOffsets(num, align);
    this.mask = num - 1;
    // Round the views up to whole words; the region is padded to a cache line.
    this.u16 = new Uint16Array(buffer, byteOffset, Math.ceil(o.size / 2));
    this.u32 = new Uint32Array(buffer, byteOffset, Math.floor(o.size / 4));
    this.availFlagsI = o.avail >> 1;
    this.availIdxI = this.availFlagsI + 1;
    this.availRingI = this.availFlagsI + 2;
    this.usedEventI = this.availRingI + num;
    this.usedFlagsI = o.used >> 1;
    this.usedIdxI = this.usedFlagsI + 1;
    this.usedRingI = (o.used + 4) >> 2;
    this.availEventI = (o.used + 4 + VRING_USED_ELEM_BYTES * num) >> 1;
  }

  static fromViews(views: Views): VringMem {
    const l = views.layout;
    const m = new VringMem(views.sab, l.vq.offset, l.params.queueSize, l.params.ringAlign);
    if (l.vqAvailOffset - l.vq.offset !== m.availFlagsI * 2 || l.vqUsedOffset - l.vq.offset !== m.usedFlagsI * 2) throw new Error('vring: layout.ts and vring.ts disagree on the ring offsets');
    return m;
  }

  /** Zero the whole ring (device reset). Only while neither side runs. */
  reset(): void {
    this.u16.fill(0);
  }

  // descriptor accessors (plain loads/stores: ordered by the index publish)
  descAddr(i: number): number {
    return this.u32[i * 4] + this.u32[i * 4 + 1] * 4294967296;
  }
  descLen(i: number): number {
    return this.u32[i * 4 + 2];
  }
  descFlags(i: number): number {
    return this.u16[i * 8 + 6];
  }
  descNext(i: number): number {
    return this.u16[i * 8 + 7];
  }
  writeDesc(i: number, addr: number, len: number, flags: number, next: number): void {
    const u32 = this.u32;
    u32[i * 4] = addr % 4294967296;
    u32[i * 4 + 1] = Math.floor(addr / 4294967296);
    u32[i * 4 + 2] = len;
    this.u16[i * 8 + 6] = flags;
    this.u16[i * 8 + 7] = next;
  }
}

// ---------------------------------------------------------------------------
// Driver side
// ---------------------------------------------------------------------------

export interface DriverOptions {
  /** VIRTIO_RING_F_EVENT_IDX negotiated: use used_event / avail_event. */
  eventIdx: boolean;
  /** The queue index the driver writes with each notification (VIRTIO_PCI_QUEUE_NOTIFY). */
  queueIndex: number;
  /** Which free descriptor a new chain starts at (--desc-policy; default 'lifo', Linux's free_head). */
  descPolicy?: DescPolicy;
  /**
   * Harness self-test (BALLOON_SIM_SELFTEST=ring-idx-before-entry, not a
   * simulation feature): add() publishes avail idx before it writes the
   * avail.ring entry, a publish-order slip. A device that reads the entry in
   * between (under --sched: at the publish's scheduling point) takes the
   * stale entry, which equals the fresh one only while every chain starts
   * at descriptor 0 (LIFO, one chain in flight).
   */
  selfTestIdxBeforeEntry?: boolean;
}

/**
 * The driver's descriptor allocation policy (--desc-policy):
 *  'lifo': Linux's split ring (virtqueue_add_split takes vq->free_head,
 *          detach_buf_split pushes a used chain back at the head), so with one
 *          chain in flight every chain starts at descriptor 0 and a stale
 *          avail or used entry is identical to a fresh one;
 *  'fifo': a used chain goes to the TAIL of the free list, so consecutive
 *          chains start at different descriptors and rotate through the
 *          table (the order a ring whose descriptors are used in order moves
 *          through it). A simulator option to make stale ring entries
 *          visible, not a Linux behaviour.
 */
export const DESC_POLICIES = ['lifo', 'fifo'] as const;
export type DescPolicy = (typeof DESC_POLICIES)[number];

/**
 * The driver's half of a split virtqueue, after Linux's `struct
 * vring_virtqueue`: private free-descriptor list (vring_desc_extra.next),
 * per-head token and chain length, avail_idx_shadow, last_used_idx.
 */
export class VringVirtqueue {
  readonly num: number;
  private readonly extraNext: Uint16Array;
  private readonly chainLen: Uint16Array;
  private readonly tokens: Float64Array;
  private readonly inUse: Uint8Array;
  private freeHead = 0;
  /** 'fifo': the last descriptor of the free list, where a used chain is appended (meaningful while numFree > 0). */
  private freeTail: number;
  private readonly fifo: boolean;
  numFree: number;
  /** Chains handed to the device and not yet returned. */
  inFlight = 0;
  /** Most chains in flight at once since this queue was built (a reset builds a new one). */
  inFlightMax = 0;
  private availIdxShadow = 0;
  private numAdded = 0;
  private lastUsedIdx = 0;
  /** `len` of the last used element returned by getBuf(). */
  lastLen = 0;
  /** Interrupts that ended a waitUsed() wait with no used element (vring_interrupt()'s "no work", IRQ_NONE). */
  spuriousWakes = 0;
  readonly dev: Int32Array;
  /** Host cost model (src/mm/host-costs.ts): a kick is a VM exit on this (the driver's) thread; so is each interrupt it takes. */
  private readonly kickIters = hostCosts.kickIters;
  private readonly interruptIters = hostCosts.interruptIters;
  /** Interrupts (DEV_INTERRUPT) this driver has taken. */
  private irqSeen = 0;
  /** Interrupts suppressed (VRING_AVAIL_F_NO_INTERRUPT in avail_flags_shadow): see disableCb(). */
  private cbDisabled = false;

  constructor(
    readonly ring: VringMem,
    doorbells: Int32Array,
    readonly opts: DriverOptions,
  ) {
    this.num = ring.num;
    this.dev = doorbells;
    this.irqSeen = Atomics.load(doorbells, DEV_INTERRUPT);
    this.extraNext = new Uint16Array(this.num);
    this.chainLen = new Uint16Array(this.num);
    this.tokens = new Float64Array(this.num);
    this.inUse = new Uint8Array(this.num);
    for (let i = 0; i < this.num - 1; i++) this.extraNext[i] = i + 1;
    this.numFree = this.num;
    // The policy's state lives here: a device reset rebuilds the queue with
    // this constructor (init_vqs()), so it starts again from descriptor 0.
    this.fifo = opts.descPolicy === 'fifo';
    this.freeTail = this.num - 1;
    // The driver owns the ring's start state: indices 0, asking for every
    // interrupt (avail.flags 0, used_event 0 = "after the first used entry").
    const r = ring;
    Atomics.store(r.u16, r.availFlagsI, 0);
    Atomics.store(r.u16, r.usedEventI, 0);
    Atomics.store(r.u16, r.availIdxI, 0);
  }

  /**
   * A queue with no callback (Linux vring_create_virtqueue_split with
   * callback NULL, as virtio_balloon's free_page_vq): the driver never wants
   * an interrupt. avail.flags gets VRING_AVAIL_F_NO_INTERRUPT; with
   * EVENT_IDX Linux writes used_event 0 (virtqueue_disable_cb_split's "hack"
   * value) and never moves it again, since getBuf() only publishes
   * used_event while callbacks are on.
   */
  disableCb(): void {
    this.cbDisabled = true;
    const r = this.ring;
    // Seq-cst stores: a device that reads the flags (or used_event) after
    // this sees them; one that read them before may still interrupt once.
    if (this.opts.eventIdx) Atomics.store(r.u16, r.usedEventI, 0);
    else Atomics.store(r.u16, r.availFlagsI, VRING_AVAIL_F_NO_INTERRUPT);
  }

  /** virtqueue_add_outbuf: one chain of `count` device-readable buffers. Returns the head or ENOSPC. */
  addOutbuf(addrs: ArrayLike<number>, lens: ArrayLike<number>, count: number, token: number): number {
    return this.add(addrs, lens, count, 0, token);
  }

  /** virtqueue_add_inbuf: one chain of `count` device-writable buffers. Returns the head or ENOSPC. */
  addInbuf(addrs: ArrayLike<number>, lens: ArrayLike<number>, count: number, token: number): number {
    return this.add(addrs, lens, count, VRING_DESC_F_WRITE, token);
  }

  private add(addrs: ArrayLike<number>, lens: ArrayLike<number>, count: number, dirFlag: number, token: number): number {
    if (count < 1 || count > this.num) throw new Error(`vring: chain of ${count} buffers on a queue of ${this.num}`);
    if (!(token >= 0)) throw new Error('vring: token must be a number >= 0');
    if (this.numFree < count) return ENOSPC;
    const r = this.ring;
    const head = this.freeHead;
    let i = head;
    let last = head;
    for (let k = 0; k < count; k++) {
      const more = k + 1 < count;
      // Plain stores: nothing reads them before the avail idx store below.
      r.writeDesc(i, addrs[k], lens[k], dirFlag | (more ? VRING_DESC_F_NEXT : 0), more ? this.extraNext[i] : 0);
      last = i;
      i = this.extraNext[i];
    }
    this.freeHead = this.extraNext[last];
    this.numFree -= count;
    this.chainLen[head] = count;
    this.tokens[head] = token;
    this.inUse[head] = 1;
    if (++this.inFlight > this.inFlightMax) this.inFlightMax = this.inFlight;
    const slot = r.availRingI + (this.availIdxShadow & r.mask);
    this.availIdxShadow = (this.availIdxShadow + 1) & 0xffff;
    this.numAdded++;
    if (this.opts.selfTestIdxBeforeEntry) {
      // Self-test: the publish-order slip (idx first, entry after).
      Atomics.store(r.u16, r.availIdxI, this.availIdxShadow);
      schedPoint(SP_RING_AVAIL, this.availIdxShadow);
      r.u16[slot] = head;
    } else {
      r.u16[slot] = head;
      // PUBLISH (virtio_wmb + avail->idx = shadow): a seq-cst store, so every
      // descriptor and avail.ring write above is visible to a device that
      // Atomics.loads this idx value.
      Atomics.store(r.u16, r.availIdxI, this.availIdxShadow);
      schedPoint(SP_RING_AVAIL, this.availIdxShadow); // scheduled runs: the device may run right after the publish
    }
    // As Linux: 65535 additions without a kick would make the 16-bit
    // vring_need_event window ambiguous, so kick now.
    if (this.numAdded === 0xffff) this.kick();
    return head;
  }

  /** virtqueue_kick_prepare: does the device want a notification for what was added since the last kick? */
  kickPrepare(): boolean {
    const r = this.ring;
    const newIdx = this.availIdxShadow;
    const old = (newIdx - this.numAdded) & 0xffff;
    this.numAdded = 0;
    // The avail idx store (seq-cst) precedes these seq-cst loads: this is the
    // virtio_mb() that pairs with the device re-enabling notifications and
    // then re-reading avail idx (no lost kick).
    if (this.opts.eventIdx) return vringNeedEvent(Atomics.load(r.u16, r.availEventI), newIdx, old);
    return (Atomics.load(r.u16, r.usedFlagsI) & VRING_USED_F_NO_NOTIFY) === 0;
  }

  /** virtqueue_notify: write the queue index and ring the doorbell. */
  notify(): void {
    Atomics.store(this.dev, DEV_NOTIFY_QUEUE, this.opts.queueIndex);
    // WAKE: the kick counter is the device's wait word (Atomics.add + notify).
    bump(this.dev, DEV_KICK);
    // The notify write traps: a VM exit (handled by KVM's ioeventfd), paid
    // by the kicking vCPU.
    burn(this.kickIters);
  }

  /** virtqueue_kick: notify if the device asked for it. Returns whether it notified. */
  kick(): boolean {
    if (!this.kickPrepare()) return false;
    this.notify();
    return true;
  }

  /** virtqueue_poll: is there a used element not yet collected? */
  moreUsed(): boolean {
    return Atomics.load(this.ring.u16, this.ring.usedIdxI) !== this.lastUsedIdx;
  }

  /**
   * virtqueue_get_buf: collect one used element. Returns its token (>= 0) and
   * sets lastLen, or -1 if there is none. A device that returns a descriptor
   * the driver never made available is a broken invariant ('ring' violation).
   */
  getBuf(): number {
    // The used-buffer interrupts raised since the last collection were taken
    // by the guest (an exit and an injection on entry each), on this thread.
    const irq = Atomics.load(this.dev, DEV_INTERRUPT);
    burn((irq - this.irqSeen) * this.interruptIters);
    this.irqSeen = irq;
    const r = this.ring;
    // ACQUIRE: the device stored used.ring[] before publishing used idx.
    const usedIdx = Atomics.load(r.u16, r.usedIdxI);
    if (usedIdx === this.lastUsedIdx) return -1;
    const pending = (usedIdx - this.lastUsedIdx) & 0xffff;
    if (pending > this.inFlight) throw new OracleViolation({ oracle: 'ring', message: `device moved used idx to ${usedIdx} (from ${this.lastUsedIdx}) with only ${this.inFlight} chains in flight` });
    const e = r.usedRingI + 2 * (this.lastUsedIdx & r.mask);
    const id = r.u32[e];
    const len = r.u32[e + 1];
    if (id >= this.num || this.inUse[id] === 0) throw new OracleViolation({ oracle: 'ring', message: `device returned descriptor ${id}, which is not the head of a chain in flight` });
    // detach_buf_split: return the chain's descriptors to the private free list.
    const n = this.chainLen[id];
    let last = id;
    for (let k = 1; k < n; k++) last = this.extraNext[last];
    if (!this.fifo) {
      // Linux: pushed back at the head, so the next chain starts here again.
      this.extraNext[last] = this.freeHead;
      this.freeHead = id;
    } else {
      // --desc-policy fifo: appended at the tail; the next chain starts at
      // the oldest free descriptor.
      if (this.numFree === 0) this.freeHead = id;
      else this.extraNext[this.freeTail] = id;
      this.freeTail = last;
    }
    this.numFree += n;
    this.inUse[id] = 0;
    this.inFlight--;
    this.lastUsedIdx = (this.lastUsedIdx + 1) & 0xffff;
    // With EVENT_IDX, ask for an interrupt when the next entry is used
    // (virtqueue_enable_cb_prepare: virtio_store_mb(used_event)). Seq-cst
    // store, ordered before our next read of used idx in waitUsed().
    if (this.opts.eventIdx && !this.cbDisabled) Atomics.store(r.u16, r.usedEventI, this.lastUsedIdx);
    this.lastLen = len;
    return this.tokens[id];
  }

  /**
   * wait_event(vq->acked, virtqueue_get_buf()): bounded wait for a used
   * element. Reads the interrupt counter BEFORE checking the used ring, so a
   * push+interrupt that lands after the check moves the counter past `seen`
   * and the wait returns at once (no lost wake-up).
   */
  waitUsed(timeoutMs: number, stop: () => boolean, spin = 0): 'ready' | 'stopped' | 'timed-out' {
    // clockMs(): logical time when scheduled (--sched), wall time otherwise.
    const deadline = clockMs() + timeoutMs;
    for (let round = 0; ; round++) {
      const seen = Atomics.load(this.dev, DEV_INTERRUPT);
      if (this.moreUsed()) return 'ready';
      const left = deadline - clockMs();
      if (left <= 0) return 'timed-out';
      // Strict (docs/DESIGN.md §4): wait_event() sleeps until the interrupt;
      // Linux has no timeout here. A used element with no interrupt is a
      // lost wake-up (running free) or a deadlock (--sched), not latency.
      const w = waitWhileEquals(this.dev, DEV_INTERRUPT, seen, left, stop, spin, this.usedWait);
      if (w === 'stopped') return this.moreUsed() ? 'ready' : 'stopped';
      // Woken with nothing used: a spurious interrupt; recheck and sleep again.
      if (w === 'changed' && !this.moreUsed()) this.spuriousWakes++;
    }
  }

  /** The strict wait of waitUsed(): the interrupt is due once a used element is in the ring. */
  private readonly usedWait: StrictWait = { event: 'device interrupt (DEV_INTERRUPT)', due: () => this.moreUsed(), dueWhat: 'a used element is in the ring' };

  // ---- raw access for a hostile guest (src/check/hostile.ts) ----
  // A hostile guest writes descriptors by hand and names heads no chain
  // bookkeeping knows; these keep the driver's indices in step with what it
  // published and collected, so real chains continue after it. Only with
  // nothing in flight (the free list and tokens are left alone).

  /** Append avail entries naming `heads[0..count)` and publish them with one avail idx store. */
  publishRaw(heads: ArrayLike<number>, count: number): void {
    if (this.inFlight !== 0) throw new Error('vring: publishRaw with chains in flight');
    const r = this.ring;
    for (let k = 0; k < count; k++) {
      r.u16[r.availRingI + (this.availIdxShadow & r.mask)] = heads[k];
      this.availIdxShadow = (this.availIdxShadow + 1) & 0xffff;
      this.numAdded++;
    }
    // PUBLISH: as add(): the entries and descriptors before the idx store.
    Atomics.store(r.u16, r.availIdxI, this.availIdxShadow);
    schedPoint(SP_RING_AVAIL, this.availIdxShadow);
  }

  /** Store a bogus avail idx (hostile: more than N ahead), or put the true one back (`value` null). */
  storeAvailIdxRaw(value: number | null): void {
    Atomics.store(this.ring.u16, this.ring.availIdxI, value === null ? this.availIdxShadow : value & 0xffff);
  }

  /** Take the next used element whatever its id (none: -1), keeping last_used_idx and used_event in step. */
  takeUsedRaw(): number {
    const r = this.ring;
    // ACQUIRE: the device stored used.ring[] before publishing used idx.
    if (Atomics.load(r.u16, r.usedIdxI) === this.lastUsedIdx) return -1;
    const id = r.u32[r.usedRingI + 2 * (this.lastUsedIdx & r.mask)];
    this.lastUsedIdx = (this.lastUsedIdx + 1) & 0xffff;
    if (this.opts.eventIdx) Atomics.store(r.u16, r.usedEventI, this.lastUsedIdx);
    return id;
  }

  get availIdx(): number {
    return this.availIdxShadow;
  }
  get usedIdxSeen(): number {
    return this.lastUsedIdx;
  }
}

// ---------------------------------------------------------------------------
// Device side
// ---------------------------------------------------------------------------

/** Bad guest input on the ring itself, by kind (the device adds its own kinds after these). */
export const RING_BAD_KINDS = [
  'head-index', // avail.ring[] names a descriptor >= N: chain dropped
  'desc-index', // a descriptor's next is >= N: chain returned with len 0
  'chain-loop', // a chain longer than the queue (a loop): chain returned with len 0
  'desc-flags', // unknown flag bits set: chain returned with len 0
  'indirect', // VRING_DESC_F_INDIRECT without VIRTIO_RING_F_INDIRECT_DESC: chain returned with len 0
  'avail-ahead', // avail idx ahead of the device's last_avail_idx by more than N: nothing popped
] as const;
export type RingBadKind = (typeof RING_BAD_KINDS)[number];
export const RING_BAD_HEAD_INDEX = 0;
export const RING_BAD_DESC_INDEX = 1;
export const RING_BAD_CHAIN_LOOP = 2;
export const RING_BAD_DESC_FLAGS = 3;
export const RING_BAD_INDIRECT = 4;
export const RING_BAD_AVAIL_AHEAD = 5;

/**
 * Guest input that breaks a driver rule of the spec but that QEMU and
 * Firecracker accept and act on, so the device acts on it too: counted as
 * `tolerated` (not bad input; docs/DESIGN.md §12). The ring's kinds first;
 * the device adds its own after these.
 */
export const RING_TOLERATED_KINDS = [
  'desc-reuse', // a descriptor in two chains popped from one avail idx read (QEMU virtqueue_split_pop and Firecracker Queue::pop track no descriptor in flight)
  'avail-flags', // avail.flags bits other than VRING_AVAIL_F_NO_INTERRUPT (virtio 1.2 §2.7.6: the driver MUST set 0 or 1; neither VMM reads more than that bit)
] as const;
export const RING_TOL_DESC_REUSE = 0;
export const RING_TOL_AVAIL_FLAGS = 1;

/** A popped chain (VirtQueueElement), reused between pops: no allocation per chain. */
export class Chain {
  head = 0;
  count = 0;
  readonly addr: Float64Array;
  readonly len: Uint32Array;
  readonly flags: Uint16Array;
  constructor(num: number) {
    this.addr = new Float64Array(num);
    this.len = new Uint32Array(num);
    this.flags = new Uint16Array(num);
  }
}

export const POP_EMPTY = 0;
/** A well-formed chain is in `chain`. */
export const POP_CHAIN = 1;
/** A malformed chain with a valid head: push it back with len 0. */
export const POP_BAD = 2;
/** A malformed entry with no valid head: consumed, nothing to push. */
export const POP_DROPPED = 3;
export type PopStatus = typeof POP_EMPTY | typeof POP_CHAIN | typeof POP_BAD | typeof POP_DROPPED;

export interface DeviceQueueOptions {
  eventIdx: boolean;
  /** VIRTIO_RING_F_INDIRECT_DESC negotiated. The device never offers it, so INDIRECT is always counted as bad. */
  indirect: false;
  /**
   * Harness self-test (BALLOON_SIM_SELFTEST=ring-peek-head, not a
   * simulation feature): the read of avail.ring[last_avail_idx] is hoisted
   * above the avail idx load that covers it. QEMU's virtqueue_num_heads()
   * has an smp_rmb() so that "descriptor read does not bypass avail index
   * read"; here the device reads the entry when it finds the ring empty and
   * pops that value once the index moves. Stale, it equals the fresh entry
   * only while every chain starts at descriptor 0 (LIFO, one chain in flight).
   */
  selfTestPeekHead?: boolean;
}

/** The device's half, after QEMU's VirtQueue: last_avail_idx, used_idx, signalled_used. */
export class VirtQueue {
  readonly num: number;
  private lastAvailIdx = 0;
  private usedIdxShadow = 0;
  private signalledUsed = 0;
  /** The bogus avail idx last counted as avail-ahead (-1: the index was sane when last read). */
  private lastBadAvail = -1;
  /** The avail.flags value last counted as tolerated (-1: the flags were 0 or 1 when last read). */
  private lastOddFlags = -1;
  /** desc-reuse: the avail read (epoch) and the chain (pop sequence) that last used each descriptor. */
  private readonly seenEpoch: Uint32Array;
  private readonly seenPop: Uint32Array;
  private epoch = 0;
  private popSeq = 0;
  /** selfTestPeekHead: the avail.ring entry read before its index was seen (-1: none). */
  private peeked = -1;
  /**
   * Bad-input counters, RING_BAD_* kinds at `badBase + kind`, and tolerated
   * input, RING_TOL_* kinds at `tolBase + kind` (-1: not counted), all
   * Atomics.add: main reads them mid-run.
   */
  constructor(
    readonly ring: VringMem,
    readonly dev: Int32Array,
    readonly badCounters: Int32Array,
    readonly badBase: number,
    readonly opts: DeviceQueueOptions,
    readonly tolBase = -1,
  ) {
    this.num = ring.num;
    this.seenEpoch = new Uint32Array(ring.num);
    this.seenPop = new Uint32Array(ring.num);
  }

  private bad(kind: number): void {
    Atomics.add(this.badCounters, this.badBase + kind, 1);
  }

  private tolerated(kind: number): void {
    if (this.tolBase >= 0) Atomics.add(this.badCounters, this.tolBase + kind, 1);
  }

  /**
   * Device reset (QEMU virtio_reset(): last_avail_idx, used_idx,
   * signalled_used and inuse back to 0 for every queue): the queue forgets
   * everything, including the bogus avail idx it counted last.
   */
  resetState(): void {
    this.lastAvailIdx = 0;
    this.usedIdxShadow = 0;
    this.signalledUsed = 0;
    this.lastBadAvail = -1;
    this.lastOddFlags = -1;
    this.seenEpoch.fill(0);
    this.epoch = 0;
    this.peeked = -1;
  }

  /**
   * Number of chains the driver has made available and we have not popped
   * (virtqueue_num_heads). An index more than N ahead is hostile input: it is
   * counted once per bogus episode (QEMU virtio_error()s "Guest moved used
   * index", Firecracker's Queue::pop returns InvalidAvailIdx) and nothing is
   * popped until it is sane.
   */
  availCount(): number {
    // ACQUIRE: pairs with the driver's Atomics.store of avail idx.
    const availIdx = Atomics.load(this.ring.u16, this.ring.availIdxI);
    const n = (availIdx - this.lastAvailIdx) & 0xffff;
    // Self-test: the entry is read although the index does not cover it yet.
    if (n === 0 && this.opts.selfTestPeekHead) this.peeked = this.ring.u16[this.ring.availRingI + (this.lastAvailIdx & this.ring.mask)];
    if (n > this.num) {
      if (availIdx !== this.lastBadAvail) {
        this.lastBadAvail = availIdx;
        this.bad(RING_BAD_AVAIL_AHEAD);
      }
      return 0;
    }
    // Sane again: forget the bogus value, so a later episode with the same
    // value is counted again (without this, a guest that repeats one bogus
    // index after good chains in between was counted only the first time).
    this.lastBadAvail = -1;
    if (n > 0) {
      // The chains of this read form one publication for desc-reuse.
      this.epoch = (this.epoch + 1) >>> 0 || 1;
      const flags = Atomics.load(this.ring.u16, this.ring.availFlagsI);
      if ((flags & ~VRING_AVAIL_F_NO_INTERRUPT) !== 0) {
        if (flags !== this.lastOddFlags) {
          this.lastOddFlags = flags;
          this.tolerated(RING_TOL_AVAIL_FLAGS);
        }
      } else this.lastOddFlags = -1;
    }
    return n;
  }

  /** Chains available and sane, without counting anything (the lost-kick check of a sleeping device). */
  availPending(): number {
    const n = (Atomics.load(this.ring.u16, this.ring.availIdxI) - this.lastAvailIdx) & 0xffff;
    return n > this.num ? 0 : n;
  }

  /**
   * virtqueue_pop: take the next available chain into `c`, walking at most N
   * descriptors. Call only when availCount() > 0.
   */
  pop(c: Chain): PopStatus {
    const r = this.ring;
    const num = this.num;
    // Plain load, ordered after the avail idx load of availCount() (the
    // smp_rmb() of QEMU's virtqueue_num_heads()).
    let head = r.u16[r.availRingI + (this.lastAvailIdx & r.mask)];
    if (this.peeked >= 0) {
      head = this.peeked; // self-test (selfTestPeekHead): the value read too early
      this.peeked = -1;
    }
    this.lastAvailIdx = (this.lastAvailIdx + 1) & 0xffff;
    c.head = head;
    c.count = 0;
    if (head >= num) {
      this.bad(RING_BAD_HEAD_INDEX);
      return POP_DROPPED;
    }
    const pop = (this.popSeq = (this.popSeq + 1) >>> 0);
    let reused = false;
    let i = head;
    for (;;) {
      if (c.count >= num) {
        this.bad(RING_BAD_CHAIN_LOOP);
        return POP_BAD;
      }
      // A descriptor an earlier chain of this publication used (not a loop
      // inside this chain: that is chain-loop): tolerated, once per chain.
      if (this.seenEpoch[i] === this.epoch && this.seenPop[i] !== pop) {
        if (!reused) this.tolerated(RING_TOL_DESC_REUSE);
        reused = true;
      }
      this.seenEpoch[i] = this.epoch;
      this.seenPop[i] = pop;
      const flags = r.descFlags(i);
      if ((flags & ~VRING_DESC_F_KNOWN) !== 0) {
        this.bad(RING_BAD_DESC_FLAGS);
        return POP_BAD;
      }
      if ((flags & VRING_DESC_F_INDIRECT) !== 0) {
        // Indirect tables are never offered, so the flag is always a protocol
        // violation here (virtio 1.2 §2.7.5.3.1: the driver MUST NOT set it).
        this.bad(RING_BAD_INDIRECT);
        return POP_BAD;
      }
      const k = c.count++;
      c.addr[k] = r.descAddr(i);
      c.len[k] = r.descLen(i);
      c.flags[k] = flags;
      if ((flags & VRING_DESC_F_NEXT) === 0) return POP_CHAIN;
      const next = r.descNext(i);
      if (next >= num) {
        this.bad(RING_BAD_DESC_INDEX);
        return POP_BAD;
      }
      i = next;
    }
  }

  /** virtqueue_fill + virtqueue_flush for one element: write it, then publish used idx. */
  push(head: number, len: number): void {
    const r = this.ring;
    const e = r.usedRingI + 2 * (this.usedIdxShadow & r.mask);
    r.u32[e] = head;
    r.u32[e + 1] = len;
    this.usedIdxShadow = (this.usedIdxShadow + 1) & 0xffff;
    // PUBLISH: seq-cst store after the plain element writes; a driver that
    // Atomics.loads this used idx sees the element.
    Atomics.store(r.u16, r.usedIdxI, this.usedIdxShadow);
    schedPoint(SP_RING_USED, this.usedIdxShadow); // scheduled runs: the driver may run right after the publish
  }

  /** virtio_should_notify: does the driver want an interrupt for what was pushed since the last one? */
  shouldNotify(): boolean {
    const r = this.ring;
    const newIdx = this.usedIdxShadow;
    const old = this.signalledUsed;
    this.signalledUsed = newIdx;
    if (newIdx === old) return false;
    // The used idx store precedes these seq-cst loads (QEMU's smp_mb()):
    // pairs with the driver writing used_event and then re-reading used idx.
    if (this.opts.eventIdx) return vringNeedEvent(Atomics.load(r.u16, r.usedEventI), newIdx, old);
    return (Atomics.load(r.u16, r.availFlagsI) & VRING_AVAIL_F_NO_INTERRUPT) === 0;
  }

  /** virtio_notify: raise the interrupt if the driver wants it. Returns whether it did. */
  notify(): boolean {
    if (!this.shouldNotify()) return false;
    // WAKE: the interrupt counter is the driver's wait word.
    bump(this.dev, DEV_INTERRUPT);
    return true;
  }

  /**
   * virtio_queue_set_notification: while serving, tell the driver not to kick
   * (used.flags NO_NOTIFY); when done, ask for a kick on the next avail entry
   * (avail_event = last_avail_idx with EVENT_IDX). After enabling, the caller
   * MUST re-check availCount(): a driver that read the old setting did not kick.
   */
  setNotification(enable: boolean): void {
    const r = this.ring;
    if (this.opts.eventIdx) {
      if (enable) Atomics.store(r.u16, r.availEventI, this.lastAvailIdx);
    } else {
      Atomics.store(r.u16, r.usedFlagsI, enable ? 0 : VRING_USED_F_NO_NOTIFY);
    }
  }

  get lastAvail(): number {
    return this.lastAvailIdx;
  }
  get usedIdx(): number {
    return this.usedIdxShadow;
  }
}

// The host's virtio-balloon device (docs/DESIGN.md §2 "device", §5 "Device side"):
// config space, feature bits, and the handler of the free page reporting
// queue (QEMU virtio_balloon_handle_report, Firecracker
// process_free_page_reporting_queue) or of aeration v1's hinting queue (Duyck, 2019).
//
// Per chain: pop it, for each descriptor validate the guest range, check in
// the oracle's shared state (the struct page array, not the driver's word)
// that no page of it is allocated, discard it, then push the used element
// with len 0 and raise the interrupt. Everything the guest controls is
// validated; bad input is counted by kind (BAD_KINDS, shared Int32 counters
// at DEV_BAD_BASE) and the device keeps serving.
//
// PAGE_POISON policy (explicit): with VIRTIO_BALLOON_F_PAGE_POISON negotiated
// and poison_val != 0 the device must never hand the guest zeros for a
// reported page. 'skip' does what QEMU does: it does not discard at all (the
// page stays resident with its poison). 'fill' discards, and the host's fresh
// pages hold poison_val instead of zeros (DEV_HOST_FILL, set at the
// handshake: hostFillByte). With poison_val == 0 (or no PAGE_POISON) a
// discarded page reads back as zeros either way.
//
// The discard itself is one MADV_DONTNEED per reported range, as QEMU calls
// ram_block_discard_range() per in_sg entry: it drops residency only (no byte
// is written on this thread) and costs what the host cost profile says
// (GuestMemory.discard, src/mm/host-costs.ts).

// Queue numbering and the feature handshake: src/virtio/balloon-abi.ts.

import { HINTS_MAX, HINT_ORDER_MASK, VIRTIO_BALLOON_F_PAGE_POISON, VIRTIO_BALLOON_F_REPORTING, bit, hasFeature, type VqNumbering } from '../virtio/balloon-abi.js';
import { DEV_ACTUAL, DEV_BAD_BASE, DEV_INTERRUPT, DEV_RESET_ACK, DEV_RESET_REQ, DEV_TOLERATED_BASE, DEV_TOLERATED_WORDS, HDR_RUN_STATE, HDR_STATE_GEN, RUN_RUNNING, RUN_SETTLING, DEV_CHAINS, DEV_FEATURES_NEGOTIATED, DEV_FEATURES_OFFERED, DEV_FREE_PAGE_HINT_CMD_ID, DEV_KICK, DEV_NOTIFY_QUEUE, DEV_NUM_PAGES, DEV_POISON_VAL, DEV_STATUS, DEV_VQ_INDEX, DEV_WORDS, DEV_TLB_FLUSH_GEN, DEV_HOST_FILL, INJECTED_DEVICE_DOUBLE_USED, MAX_ORDER, METRIC_EXTRA, METRIC_INJECTED, PAGE_SHIFT, PAGE_SIZE, metricBase, threadIds, type Views } from '../shm/layout.js';
import { GuestMemory } from '../mm/memory.js';
import { type StrictWait, bump, waitWhileEquals } from '../locking/sync.js';
import { FAULT_ACK_DELAY, FAULT_IRQ_LOST, FAULT_IRQ_SPURIOUS, type FaultDice } from '../virtio/device-faults.js';
import { TK_BAD_INPUT, TK_CHAIN, TK_DISCARD, TK_PUSH, TK_RANGE, tracer } from '../locking/trace.js';
import { Chain, POP_BAD, POP_CHAIN, POP_DROPPED, RING_BAD_KINDS, RING_TOLERATED_KINDS, VIRTIO_RING_F_EVENT_IDX, VRING_DESC_F_WRITE, VirtQueue, VringMem } from '../virtio/ring.js';
import { type Violation } from '../base/errors.js';

/** Bad guest input by kind: the ring's kinds, then the balloon handler's. Counted at DEV_BAD_BASE + index. */
export const BAD_KINDS = [
  ...RING_BAD_KINDS,
  'addr-range', // address or address+len outside guest memory
  'len', // length zero or not a multiple of 4 KiB
  'unaligned', // address not 4 KiB aligned (hint buffer: not 8-byte aligned)
  'direction', // device-readable descriptor on the reporting queue, or device-writable on the hinting queue
  'hint-len', // hint buffer length not a non-zero multiple of 8 or more than HINTS_MAX hints
  'hint-order', // hint order >= MAX_ORDER
  'notify-queue', // a notification named a queue index this device does not serve
] as const;
export type BadKind = (typeof BAD_KINDS)[number];
const badIndex = (k: BadKind): number => BAD_KINDS.indexOf(k);
export const BAD_ADDR_RANGE = badIndex('addr-range');
export const BAD_LEN = badIndex('len');
export const BAD_UNALIGNED = badIndex('unaligned');
export const BAD_DIRECTION = badIndex('direction');
export const BAD_HINT_LEN = badIndex('hint-len');
export const BAD_HINT_ORDER = badIndex('hint-order');
export const BAD_NOTIFY_QUEUE = badIndex('notify-queue');
if (DEV_BAD_BASE + BAD_KINDS.length > DEV_TOLERATED_BASE) throw new Error('device: bad-input counters overrun the tolerated-input counters');

/**
 * Tolerated guest input by kind (docs/DESIGN.md §12): breaks a driver rule,
 * but QEMU and Firecracker act on it, so the device does too and only
 * counts it. The ring's kinds, then the balloon handler's. Counted at
 * DEV_TOLERATED_BASE + index.
 */
export const TOLERATED_KINDS = [
  ...RING_TOLERATED_KINDS,
  'hint-unaligned', // aeration: a hint whose address is not aligned to 4 KiB << order (a buddy block always is; QEMU checks host-page alignment only)
] as const;
export type ToleratedKind = (typeof TOLERATED_KINDS)[number];
export const TOL_HINT_UNALIGNED = TOLERATED_KINDS.indexOf('hint-unaligned');
if (TOLERATED_KINDS.length > DEV_TOLERATED_WORDS || DEV_TOLERATED_BASE + DEV_TOLERATED_WORDS > DEV_RESET_REQ) throw new Error('device: tolerated-input counters overrun the device region');
if (DEV_TLB_FLUSH_GEN <= DEV_RESET_ACK + 8 || DEV_HOST_FILL >= DEV_WORDS) throw new Error('device: the host cost words overlap the reset words or overrun the device region');

// Device counters in the device thread's metric slot (Float64: bytes overflow Int32).
export const DEVM_DESCRIPTORS = 0;
export const DEVM_BYTES_DISCARDED = 1;
export const DEVM_PAGES_DROPPED = 2;
export const DEVM_HINTS = 3;
export const DEVM_INTERRUPTS = 4;
export const DEVM_KICKS = 5;
export const DEVM_BYTES_POISON_SKIPPED = 6;
export const DEVM_USED = 7;
/** Host time spent dropping pages (GuestMemory.discard: the modelled madvise cost), ns: the device's own share of a report round trip. */
export const DEVM_DISCARD_NS = 8;
/** Bytes validated and acknowledged but kept resident because discarding is off (--no-discard). */
export const DEVM_BYTES_KEPT = 9;
/** Ranges the device-allocated-range oracle checked (DeviceOptions.rangeCheck). */
export const DEVM_RANGE_CHECKS = 10;
/** MADV_DONTNEED calls (one per discarded range, as QEMU's ram_block_discard_range per in_sg entry). */
export const DEVM_MADVISE_CALLS = 11;

export const POISON_POLICIES = ['skip', 'fill'] as const;
export type PoisonPolicy = (typeof POISON_POLICIES)[number];
/** 'free_page': the free_page_vq of VIRTIO_BALLOON_F_FREE_PAGE_HINT (src/host/free-page-hint-device.ts). */
export type QueueKind = 'reporting' | 'aeration' | 'free_page';

export interface DeviceSetup {
  eventIdx: boolean;
  vqNumbering: VqNumbering;
}

/** Features the device offers: reporting, page poison, and EVENT_IDX when --event-idx. */
export function offeredFeatures(s: Pick<DeviceSetup, 'eventIdx'>): number {
  return (bit(VIRTIO_BALLOON_F_REPORTING) | bit(VIRTIO_BALLOON_F_PAGE_POISON) | (s.eventIdx ? bit(VIRTIO_RING_F_EVENT_IDX) : 0)) >>> 0;
}

/** Device reset: config space, offered features, counters and the ring zeroed. Before any role runs. */
export function deviceInit(views: Views, s: DeviceSetup): void {
  const d = views.device;
  d.fill(0);
  VringMem.fromViews(views).reset();
  d[DEV_NUM_PAGES] = 0;
  d[DEV_ACTUAL] = 0;
  d[DEV_FREE_PAGE_HINT_CMD_ID] = 0;
  d[DEV_POISON_VAL] = 0;
  d[DEV_FEATURES_OFFERED] = offeredFeatures(s) | 0;
  d[DEV_VQ_INDEX] = -1;
}

export interface DeviceOptions {
  queueKind: QueueKind;
  poisonPolicy: PoisonPolicy;
  /** Loads of the kick word before sleeping in Atomics.wait. */
  spin: number;
  /** Bound on one idle wait slice; the loop re-checks the run state between slices. */
  sliceMs: number;
  /** Injection `device-double-used`: push every used element twice. */
  doubleUsed?: boolean;
  /** false (--no-discard): validate, check and acknowledge, but keep the memory. Default true. */
  discard?: boolean;
  /** The device-allocated-range oracle (src/check/device-range.ts), run on every range before it is acted on; none: unchecked. */
  rangeCheck?: RangeCheck;
  /** --device-faults: the device side's dice (ack-delay, irq-lost, irq-spurious; src/virtio/device-faults.ts). */
  faults?: FaultDice;
  /**
   * Harness self-test (BALLOON_SIM_SELFTEST=fault-reset-keep-queue): a
   * reset is acknowledged but the queue keeps its indices, a slip only a
   * device reset reaches (--device-faults reset).
   */
  selfTestResetKeepsQueue?: boolean;
  /**
   * Harness self-test (BALLOON_SIM_SELFTEST=device-zero-len): range
   * validation lets a zero length through, a slip the in-tree driver never
   * reaches and the hostile guest (--hostile) must find.
   */
  selfTestZeroLen?: boolean;
  /**
   * Harness self-test (BALLOON_SIM_SELFTEST=ring-peek-head): the queue reads
   * an avail.ring entry before the avail idx that covers it (a ring
   * publish-order slip on the device side; src/virtio/ring.ts).
   */
  selfTestPeekHead?: boolean;
}

/** A check of the guest range [pfn, pfn+count) before the device acts on it: a violation, or null. */
export type RangeCheck = (pfn: number, count: number) => Violation | null;

/** Why the device keeps a reported range: QEMU skips the discard when poison_val != 0 (`if (!dev->poison_val) ram_block_discard_range(...)`). */
export const KEEP_POISON = 'PAGE_POISON, poison_val != 0';
export const KEEP_NO_DISCARD = '--no-discard';

/**
 * Why the device keeps reported ranges resident instead of discarding them,
 * or null: the one rule the device follows and the settle check excuses by.
 * `poisonVal` is the negotiated poison_val (0 without PAGE_POISON).
 */
export function keepReason(poisonVal: number, o: Pick<DeviceOptions, 'poisonPolicy' | 'discard'>): string | null {
  if (poisonVal !== 0 && o.poisonPolicy === 'skip') return KEEP_POISON;
  return o.discard === false ? KEEP_NO_DISCARD : null;
}

/**
 * The byte the host's fresh pages hold once the handshake is done (written
 * to DEV_HOST_FILL before any role runs): poison_val with --poison-policy
 * fill and PAGE_POISON negotiated with a non-zero poison_val, else 0 (the
 * host maps zero pages).
 */
export function hostFillByte(views: Views, poisonPolicy: PoisonPolicy): number {
  const negotiated = views.device[DEV_FEATURES_NEGOTIATED] >>> 0;
  const poisonVal = hasFeature(negotiated, VIRTIO_BALLOON_F_PAGE_POISON) ? views.device[DEV_POISON_VAL] : 0;
  return poisonVal !== 0 && poisonPolicy === 'fill' ? poisonVal & 0xff : 0;
}

export interface DeviceCounters {
  queueKind: QueueKind;
  vqNumbering: VqNumbering;
  queueIndex: number;
  featuresOffered: number;
  featuresNegotiated: number;
  eventIdx: boolean;
  chains: number;
  descriptors: number;
  usedPushed: number;
  bytesDiscarded: number;
  pagesDropped: number;
  bytesPoisonSkipped: number;
  /** Reported bytes kept resident by --no-discard. */
  bytesKept: number;
  discardNsTotal: number;
  /** Ranges the device-allocated-range oracle checked. */
  rangeChecks: number;
  /** MADV_DONTNEED calls (one per discarded range). */
  madviseCalls: number;
  /** Remote TLB flushes the discards caused (kvm_flush_remote_tlbs: every vCPU took one each). */
  tlbFlushes: number;
  hints: number;
  kicks: number;
  interrupts: number;
  badTotal: number;
  bad: Record<BadKind, number>;
  /** Guest input that breaks a driver rule but is acted on, as QEMU and Firecracker do (TOLERATED_KINDS). */
  tolerated: Record<ToleratedKind, number>;
}

export function readDeviceCounters(views: Views, queueKind: QueueKind, vqNumbering: VqNumbering): DeviceCounters {
  const d = views.device;
  const m = views.metrics;
  const b = metricBase(threadIds(views.layout.params.cpus).device) + METRIC_EXTRA;
  const bad = {} as Record<BadKind, number>;
  let badTotal = 0;
  BAD_KINDS.forEach((k, i) => {
    bad[k] = Atomics.load(d, DEV_BAD_BASE + i);
    badTotal += bad[k];
  });
  const tolerated = {} as Record<ToleratedKind, number>;
  TOLERATED_KINDS.forEach((k, i) => (tolerated[k] = Atomics.load(d, DEV_TOLERATED_BASE + i)));
  const negotiated = d[DEV_FEATURES_NEGOTIATED] >>> 0;
  return {
    queueKind,
    vqNumbering,
    queueIndex: d[DEV_VQ_INDEX],
    featuresOffered: d[DEV_FEATURES_OFFERED] >>> 0,
    featuresNegotiated: negotiated,
    eventIdx: hasFeature(negotiated, VIRTIO_RING_F_EVENT_IDX),
    chains: Atomics.load(d, DEV_CHAINS),
    descriptors: m[b + DEVM_DESCRIPTORS],
    usedPushed: m[b + DEVM_USED],
    bytesDiscarded: m[b + DEVM_BYTES_DISCARDED],
    pagesDropped: m[b + DEVM_PAGES_DROPPED],
    bytesPoisonSkipped: m[b + DEVM_BYTES_POISON_SKIPPED],
    bytesKept: m[b + DEVM_BYTES_KEPT],
    discardNsTotal: m[b + DEVM_DISCARD_NS],
    rangeChecks: m[b + DEVM_RANGE_CHECKS],
    madviseCalls: m[b + DEVM_MADVISE_CALLS],
    tlbFlushes: Atomics.load(d, DEV_TLB_FLUSH_GEN),
    hints: m[b + DEVM_HINTS],
    kicks: m[b + DEVM_KICKS],
    interrupts: m[b + DEVM_INTERRUPTS],
    badTotal,
    bad,
    tolerated,
  };
}

const HOST_STATE_SERVING = 1;

/** The virtio-balloon device's reporting / hinting queue handler. */
export class BalloonDevice {
  readonly vq: VirtQueue;
  readonly mem: GuestMemory;
  readonly dev: Int32Array;
  readonly pages: Int32Array;
  readonly nrPages: number;
  readonly guestBytes: number;
  readonly negotiated: number;
  readonly queueIndex: number;
  private readonly chain: Chain;
  /** The device's own copy of an aeration hint buffer (QEMU: iov_to_buf into a local array). */
  private readonly hintCopy = new Int32Array(2 * HINTS_MAX);
  protected readonly m: Float64Array;
  protected readonly mb: number;
  /** True when serve() stopped at its budget with chains still available. */
  pending = false;
  /** --device-faults: the device side's dice, or null. */
  private readonly dice: FaultDice | null;

  constructor(
    readonly views: Views,
    readonly opts: DeviceOptions,
  ) {
    this.dev = views.device;
    this.negotiated = this.dev[DEV_FEATURES_NEGOTIATED] >>> 0;
    this.queueIndex = this.dev[DEV_VQ_INDEX];
    const ring = VringMem.fromViews(views);
    this.vq = new VirtQueue(
      ring,
      this.dev,
      this.dev,
      DEV_BAD_BASE,
      {
        eventIdx: hasFeature(this.negotiated, VIRTIO_RING_F_EVENT_IDX),
        indirect: false, // VIRTIO_RING_F_INDIRECT_DESC is never offered
        selfTestPeekHead: opts.selfTestPeekHead === true,
      },
      DEV_TOLERATED_BASE,
    );
    this.mem = new GuestMemory(views);
    this.pages = views.pages;
    this.nrPages = views.layout.pages;
    this.guestBytes = views.layout.guest.bytes;
    this.chain = new Chain(ring.num);
    this.m = views.metrics;
    this.mb = metricBase(threadIds(views.layout.params.cpus).device) + METRIC_EXTRA;
    this.dice = opts.faults !== undefined && opts.faults.any ? opts.faults : null;
  }

  protected bad(kind: number): void {
    if (tracer !== null) tracer.instant(TK_BAD_INPUT, kind);
    Atomics.add(this.dev, DEV_BAD_BASE + kind, 1);
  }

  protected tolerated(kind: number): void {
    Atomics.add(this.dev, DEV_TOLERATED_BASE + kind, 1);
  }

  /**
   * Serve every available chain (at most 4 x queue size per call, so a flood
   * cannot starve the stop check; `pending` says more is waiting). Returns a
   * 'device-allocated-range' violation as a value; the role throws it.
   */
  serve(): Violation | null {
    const vq = this.vq;
    const c = this.chain;
    let budget = 4 * vq.num;
    for (;;) {
      vq.setNotification(false);
      let n: number;
      while ((n = vq.availCount()) > 0) {
        if (budget <= 0) {
          vq.setNotification(true);
          this.pending = true;
          return null;
        }
        budget -= n;
        for (; n > 0; n--) {
          const tr = tracer;
          const t0 = tr !== null ? tr.nowUs() : 0;
          const st = vq.pop(c);
          if (st === POP_DROPPED) continue;
          Atomics.add(this.dev, DEV_CHAINS, 1);
          const dice = this.dice;
          // FAULT irq-spurious: an interrupt with nothing used yet; the
          // driver must find no used element and wait again.
          if (dice !== null && dice.roll(FAULT_IRQ_SPURIOUS)) bump(this.dev, DEV_INTERRUPT);
          // FAULT ack-delay: the device gets to the chain 1..max ms late (its
          // handler busy elsewhere), so its used element comes that late too;
          // bounded, a logical-clock wait under --sched, cut short by a stop.
          if (dice !== null && dice.roll(FAULT_ACK_DELAY)) this.delayAck(dice.delayMs());
          let v: Violation | null = null;
          if (st === POP_CHAIN) v = this.handleChain(c);
          else if (st !== POP_BAD) throw new Error(`device: unexpected pop status ${st}`);
          // Used len 0: the device wrote nothing into the buffers.
          vq.push(c.head, 0);
          this.m[this.mb + DEVM_USED]++;
          // INJECTED (device-double-used): the same id is returned twice.
          if (this.opts.doubleUsed) {
            vq.push(c.head, 0);
            this.m[this.mb - METRIC_EXTRA + METRIC_INJECTED + INJECTED_DEVICE_DOUBLE_USED]++; // the injection acted (src/check/inject.ts)
          }
          const irq = dice !== null ? this.notifyFaulty(dice) : vq.notify();
          if (irq) this.m[this.mb + DEVM_INTERRUPTS]++;
          if (tr !== null) {
            tr.since(TK_CHAIN, t0, c.head, st === POP_CHAIN ? c.count : 0);
            tr.instant(TK_PUSH, c.head, irq ? 1 : 0);
          }
          if (v !== null) return v;
        }
      }
      vq.setNotification(true);
      // Re-check after re-enabling notifications: a driver that published
      // while NO_NOTIFY was set did not kick (pairs with kickPrepare()).
      if (vq.availCount() === 0) {
        this.pending = false;
        return null;
      }
    }
  }

  /** virtio_notify() with the irq-lost fault: the used element is there, the interrupt may not be raised. */
  private notifyFaulty(dice: FaultDice): boolean {
    if (!this.vq.shouldNotify()) return false;
    if (dice.roll(FAULT_IRQ_LOST)) return false;
    // WAKE: the interrupt counter is the driver's wait word.
    bump(this.dev, DEV_INTERRUPT);
    return true;
  }

  /** ack-delay: sleep `ms` on the run-state word (woken early by a stop). */
  private delayAck(ms: number): void {
    const h = this.views.header;
    const serving = () => {
      const st = Atomics.load(h, HDR_RUN_STATE);
      return st === RUN_RUNNING || st === RUN_SETTLING;
    };
    waitWhileEquals(h, HDR_STATE_GEN, Atomics.load(h, HDR_STATE_GEN), ms, () => !serving());
  }

  /**
   * The driver's status writes (DEV_RESET_REQ, --device-faults reset): odd,
   * reset the queue (QEMU virtio_reset(): every index and the last bad avail
   * idx forgotten) and acknowledge, then keep off the ring; even, DRIVER_OK
   * on a new ring. Returns true while held in reset.
   */
  private resetSeen = 0;
  private checkReset(): boolean {
    const req = Atomics.load(this.dev, DEV_RESET_REQ);
    if (req !== this.resetSeen) {
      this.resetSeen = req;
      if ((req & 1) !== 0) {
        if (!this.opts.selfTestResetKeepsQueue) this.vq.resetState();
        this.pending = false;
        // WAKE: the driver waits for this before it rebuilds the ring.
        bump(this.dev, DEV_RESET_ACK);
      }
    }
    return (this.resetSeen & 1) !== 0;
  }

  /**
   * The device loop: serve, then sleep on the kick word in bounded slices
   * until `stop()` (the run left RUNNING/SETTLING). An idle device is not a
   * liveness failure, so a slice that times out just loops.
   */
  run(stop: () => boolean): Violation | null {
    const d = this.dev;
    Atomics.store(d, DEV_STATUS, HOST_STATE_SERVING);
    try {
      for (;;) {
        // Read the kick counter BEFORE looking at the ring: a kick for a chain
        // published after our last availCount() moves it past `seen`.
        const seen = Atomics.load(d, DEV_KICK);
        // A reset in progress keeps the device off the ring (the driver is
        // rebuilding it) until DRIVER_OK; the driver kicks after each write.
        const v = this.checkReset() ? null : this.serve();
        if (v !== null) return v;
        if (stop()) return null;
        const untilNext = this.timers();
        if (this.pending) continue;
        const slice = Math.max(0, Math.min(this.opts.sliceMs, untilNext));
        if (slice === 0) continue;
        // Idle with no timer of its own, the device waits for a kick only
        // (strict, docs/DESIGN.md §4): a chain published with no kick is a
        // lost wake-up, not 50 ms of latency. A timer's wait is semantic.
        if (waitWhileEquals(d, DEV_KICK, seen, slice, stop, this.opts.spin, untilNext === Infinity ? this.kickWait : null) === 'changed') {
          this.m[this.mb + DEVM_KICKS]++;
          const q = Atomics.load(d, DEV_NOTIFY_QUEUE);
          if (q !== this.queueIndex) this.bad(BAD_NOTIFY_QUEUE);
        }
      }
    } finally {
      Atomics.store(d, DEV_STATUS, 0);
    }
  }

  /** The strict wait for a kick: one is due once a sane chain is available (the driver published after we re-enabled notifications). */
  private readonly kickWait: StrictWait = { event: 'kick (DEV_KICK)', due: () => (this.resetSeen & 1) === 0 && this.vq.availPending() > 0, dueWhat: 'a chain is available with notifications enabled' };

  /** Fire the device's timed actions; ms until the next one (none here: src/host/free-page-hint-device.ts has a clock). */
  protected timers(): number {
    return Infinity;
  }

  /** One well-formed chain of this device's queue (src/host/free-page-hint-device.ts overrides it for the free_page_vq). */
  protected handleChain(c: Chain): Violation | null {
    return this.opts.queueKind === 'reporting' ? this.handleReport(c) : this.handleHints(c);
  }

  /** Reporting queue: every descriptor is one device-writable free block. */
  handleReport(c: Chain): Violation | null {
    for (let k = 0; k < c.count; k++) {
      this.m[this.mb + DEVM_DESCRIPTORS]++;
      if ((c.flags[k] & VRING_DESC_F_WRITE) === 0) {
        this.bad(BAD_DIRECTION);
        continue;
      }
      const v = this.reportRange(c.addr[k], c.len[k]);
      if (v !== null) return v;
    }
    return null;
  }

  /**
   * Aeration queue (aeration v1, Duyck 2019): each descriptor is a device-readable
   * buffer of up to 32 little-endian u64 hints, hint = guest_phys_addr | order.
   */
  handleHints(c: Chain): Violation | null {
    const i32 = this.mem.i32;
    for (let k = 0; k < c.count; k++) {
      this.m[this.mb + DEVM_DESCRIPTORS]++;
      const addr = c.addr[k];
      const len = c.len[k];
      if ((c.flags[k] & VRING_DESC_F_WRITE) !== 0) {
        this.bad(BAD_DIRECTION);
        continue;
      }
      if (len === 0 || len % 8 !== 0 || len > HINTS_MAX * 8) {
        this.bad(BAD_HINT_LEN);
        continue;
      }
      if (addr % 8 !== 0) {
        this.bad(BAD_UNALIGNED);
        continue;
      }
      if (addr >= this.guestBytes || addr + len > this.guestBytes) {
        this.bad(BAD_ADDR_RANGE);
        continue;
      }
      // Reading the hint buffer is the only guest read the device makes, and
      // only after the checks above put it inside guest memory. Copy it
      // first, as QEMU reads a buffer out with iov_to_buf() before acting
      // on it: the discards below may drop the very page the buffer is in
      // (a hint naming its own buffer page), and read in place the hints
      // after that flush would come back as zeros, "pfn 0, order 0": a
      // discard the guest never asked for.
      const w = addr / 4;
      const nh = len / 8;
      const hb = this.hintCopy;
      for (let k2 = 0; k2 < 2 * nh; k2++) hb[k2] = i32[w + k2];
      for (let h = 0; h < nh; h++) {
        const lo = hb[2 * h] >>> 0;
        const hi = hb[2 * h + 1] >>> 0;
        const order = lo & HINT_ORDER_MASK;
        this.m[this.mb + DEVM_HINTS]++;
        if (order >= MAX_ORDER) {
          this.bad(BAD_HINT_ORDER);
          continue;
        }
        const gpa = hi * 4294967296 + (lo - order);
        // A block not aligned to its order is no buddy block, but QEMU and
        // Firecracker would act on the page-aligned range all the same:
        // tolerated, counted, acted on (the range check still applies).
        if (gpa % (PAGE_SIZE << order) !== 0) this.tolerated(TOL_HINT_UNALIGNED);
        const v = this.reportRange(gpa, PAGE_SIZE << order);
        if (v !== null) return v;
      }
    }
    return null;
  }

  /** A guest range the device may act on: page-aligned, a non-zero multiple of 4 KiB, inside guest memory. Bad ones are counted by kind. */
  protected validRange(addr: number, len: number): boolean {
    if ((len === 0 && !this.opts.selfTestZeroLen) || len % PAGE_SIZE !== 0) {
      this.bad(BAD_LEN);
      return false;
    }
    if (addr % PAGE_SIZE !== 0) {
      this.bad(BAD_UNALIGNED);
      return false;
    }
    // addr and len are exact doubles below 2^53 here or far out of range;
    // both comparisons are needed (addr alone may be inside, the end not).
    if (addr >= this.guestBytes || addr + len > this.guestBytes) {
      this.bad(BAD_ADDR_RANGE);
      return false;
    }
    return true;
  }

  /** Validate, oracle-check and discard one guest range. Bad ranges are counted and skipped. */
  reportRange(addr: number, len: number): Violation | null {
    if (!this.validRange(addr, len)) return null;
    const pfn = addr / PAGE_SIZE;
    const count = len >>> PAGE_SHIFT;
    const v = this.checkRange(pfn, count);
    // The range is not discarded: the run stops on the violation, and a
    // discard would only add a second, derived stamp failure.
    if (v !== null) return v;
    this.actOnRange(pfn, count);
    return null;
  }

  /**
   * Act on a validated, checked range: keep it (PAGE_POISON skip policy,
   * --no-discard) or discard it at once (one madvise per range).
   */
  protected actOnRange(pfn: number, count: number): void {
    const len = count * PAGE_SIZE;
    const poisonVal = hasFeature(this.negotiated, VIRTIO_BALLOON_F_PAGE_POISON) ? Atomics.load(this.dev, DEV_POISON_VAL) : 0;
    // Kept: validated and oracle-checked like any other range and
    // acknowledged with the chain; only the madvise is left out.
    const keep = keepReason(poisonVal, this.opts);
    if (keep !== null) {
      this.m[this.mb + (keep === KEEP_POISON ? DEVM_BYTES_POISON_SKIPPED : DEVM_BYTES_KEPT)] += len;
      return;
    }
    // One madvise per range, before the chain's used element is pushed, so
    // the driver never sees an ack before the discard.
    this.m[this.mb + DEVM_BYTES_DISCARDED] += len;
    this.discard(pfn, count);
  }

  /** MADV_DONTNEED of one validated, oracle-checked range (ram_block_discard_range), timed and traced. */
  protected discard(pfn: number, count: number): void {
    const t0 = performance.now();
    const dropped = this.mem.discard(pfn, count);
    const t1 = performance.now();
    if (tracer !== null) tracer.emit(TK_DISCARD, tracer.usOf(t0), (t1 - t0) * 1000, pfn, count, dropped);
    this.m[this.mb + DEVM_PAGES_DROPPED] += dropped;
    this.m[this.mb + DEVM_DISCARD_NS] += (t1 - t0) * 1e6;
    this.m[this.mb + DEVM_MADVISE_CALLS]++;
  }

  /**
   * The device-allocated-range oracle, if one is installed (DeviceOptions.
   * rangeCheck): the range must not be allocated in the guest. Counted, so
   * a run that checked nothing says so.
   */
  checkRange(pfn: number, count: number): Violation | null {
    if (tracer !== null) tracer.instant(TK_RANGE, pfn, count);
    const check = this.opts.rangeCheck;
    if (check === undefined) return null;
    this.m[this.mb + DEVM_RANGE_CHECKS]++;
    return check(pfn, count);
  }
}

// The guest's virtio_balloon driver side of hinting: the one ReportSink the
// reporter talks to. It turns a batch of isolated blocks into ring traffic:
//   reporting (virtballoon_free_page_report, Linux 5.7+): one chain of
//     device-writable descriptors, one per block, then kick and wait for the
//     used element (wait_event(vb->acked, virtqueue_get_buf(vq))).
//   aeration (aeration v1's virtballoon_aerator_react, Duyck 2019): under balloon_lock, write
//     up to 32 u64 hints `guest_phys_addr | order` into a buffer in guest
//     memory, add it as ONE device-readable descriptor, kick, wait for the ack,
//     unlock.

import { SITE_BALLOON_REACT } from '../locking/sites.js';
import { LOCK_BALLOON, PAGE_SHIFT, PAGE_SIZE, DEV_FEATURES_NEGOTIATED, DEV_INTERRUPT, DEV_RESET_ACK, DEV_RESET_REQ, DEV_VQ_INDEX, INJECTED_NO_ACK_WAIT, METRIC_INJECTED, metricBase, threadIds, type Views } from '../shm/layout.js';
import { LivenessError, type StrictWait, type Sync, waitWhileEquals } from '../locking/sync.js';
import { type DescPolicy, ENOSPC, VIRTIO_RING_F_EVENT_IDX, VringMem, VringVirtqueue } from '../virtio/ring.js';
import { hasFeature, HINTS_MAX, VIRTIO_BALLOON_F_PAGE_POISON } from '../virtio/balloon-abi.js';
import { RM_INFLIGHT_MAX, RM_RESETS, RM_RING_CHECKS, RM_SPURIOUS_IRQS, type ReportSink, type ReportStatus } from '../mm/reporter-common.js';
import { FAULT_REPORT_ERROR, FAULT_RESET, type FaultDice } from '../virtio/device-faults.js';

/** The driver's wait for the device to acknowledge its reset: strict (docs/DESIGN.md §4). */
const RESET_WAIT: StrictWait = { event: 'device reset acknowledgement (DEV_RESET_ACK)' };

export interface BalloonDriverOptions {
  mode: 'reporting' | 'aeration';
  /** Bound on waiting for the device's acknowledgement. */
  ackTimeoutMs: number;
  /** Loads of the interrupt word before sleeping. */
  spin: number;
  /** True while the device serves; a stopped run ends the wait. */
  serving: () => boolean;
  /** aeration: pfn of the guest page that holds the hint array. */
  hintBufferPfn: number;
  /** Injection `no-ack-wait` (aeration): unlock and return without waiting for the device. */
  noAckWait?: boolean;
  /** --device-faults: the driver side's dice (report-error, reset; src/virtio/device-faults.ts). */
  faults?: FaultDice;
  /**
   * Harness self-test (BALLOON_SIM_SELFTEST=fault-trust-irq): take any
   * interrupt for the acknowledgement, without looking for the used
   * element, a slip only a spurious interrupt exposes (irq-spurious).
   */
  selfTestTrustIrq?: boolean;
  /**
   * Run at the start of every report, with nothing in flight: the hostile
   * guest (--hostile, src/check/hostile.ts) publishes its bursts here, on
   * the driver's own queue (the ring has one producer).
   */
  beforeReport?: (vq: VringVirtqueue) => void;
  /** --desc-policy: the queue's descriptor allocation (default lifo, Linux's). */
  descPolicy?: DescPolicy;
  /**
   * --report-inflight: split each report into up to this many chains, each
   * published (and kicked) on its own, all in flight before the driver
   * waits for them. Default 1: upstream (virtballoon_free_page_report adds
   * one chain and waits; aeration v1 one buffer). More is a simulator
   * extension that stresses the ring's publish order.
   */
  inflight?: number;
  /**
   * Harness self-test (BALLOON_SIM_SELFTEST=ring-idx-before-entry): the
   * queue publishes avail idx before the avail.ring entry (src/virtio/ring.ts).
   */
  selfTestIdxBeforeEntry?: boolean;
}

export class VirtioBalloonDriver implements ReportSink {
  /** The queue; rebuilt from zero after a device reset (init_vqs()). */
  vq: VringVirtqueue;
  private readonly addrs: Float64Array;
  private readonly lens: Float64Array;
  private readonly one = new Float64Array(1);
  private readonly oneLen = new Float64Array(1);
  private token = 1;
  /** Reports that could not be queued (ring full) or were cut short by a stop. */
  failures = 0;
  /** Used elements collected, each validated by getBuf() (the `ring` oracle's runs). */
  usedChecked = 0;
  /** Chains one report is split into at most (--report-inflight). */
  private readonly inflight: number;

  constructor(
    readonly views: Views,
    readonly sync: Sync,
    readonly opts: BalloonDriverOptions,
  ) {
    this.inflight = Math.max(1, opts.inflight ?? 1);
    this.vq = this.initVq();
    const n = views.layout.params.queueSize;
    this.addrs = new Float64Array(n);
    this.lens = new Float64Array(n);
    this.dice = opts.faults !== undefined && opts.faults.any ? opts.faults : null;
    this.rm = metricBase(threadIds(views.layout.params.cpus).reporter);
  }

  private readonly dice: FaultDice | null;
  /** The reporter thread's metric slot. */
  private readonly rm: number;

  /**
   * init_vqs(): the queue over the ring, with the negotiated ring features
   * and the descriptor policy (a reset builds it again from here, so the
   * policy's state starts over with the new queue).
   */
  private initVq(): VringVirtqueue {
    const negotiated = this.views.device[DEV_FEATURES_NEGOTIATED] >>> 0;
    return new VringVirtqueue(VringMem.fromViews(this.views), this.views.device, {
      eventIdx: hasFeature(negotiated, VIRTIO_RING_F_EVENT_IDX),
      queueIndex: this.views.device[DEV_VQ_INDEX],
      descPolicy: this.opts.descPolicy ?? 'lifo',
      selfTestIdxBeforeEntry: this.opts.selfTestIdxBeforeEntry === true,
    });
  }

  /** The ring's most chains in flight at once, kept across queue rebuilds in the reporter's slot. */
  private noteInFlight(): void {
    const m = this.views.metrics;
    if (this.vq.inFlight > m[this.rm + RM_INFLIGHT_MAX]) m[this.rm + RM_INFLIGHT_MAX] = this.vq.inFlight;
  }

  /** FAULT report-error: virtqueue_add_inbuf() fails as on a broken queue (-EIO); WARN_ON_ONCE, return the error. */
  private addRefused(): boolean {
    if (this.dice === null || !this.dice.roll(FAULT_REPORT_ERROR)) return false;
    this.failures++;
    return true;
  }

  /**
   * Between passes (nothing isolated, nothing in flight): FAULT reset.
   * virtballoon_freeze(): remove_common() resets the device
   * (virtio_reset_device(): a status write of 0) and deletes the queues;
   * virtballoon_restore(): init_vqs() builds them anew and
   * virtio_device_ready() sets DRIVER_OK. Page reporting unregistered
   * around it (the fixed order, docs/DESIGN.md §17). True if it reset.
   */
  betweenPasses(): boolean {
    if (this.dice === null || !this.dice.roll(FAULT_RESET)) return false;
    const d = this.views.device;
    const seen = Atomics.load(d, DEV_RESET_ACK);
    // Status 0: the device resets its queue (odd); the doorbell wakes its thread.
    Atomics.add(d, DEV_RESET_REQ, 1);
    this.vq.notify();
    const w = waitWhileEquals(d, DEV_RESET_ACK, seen, this.opts.ackTimeoutMs, () => !this.opts.serving(), this.opts.spin, RESET_WAIT);
    if (w === 'timed-out') throw new LivenessError(`balloon: the device did not acknowledge its reset within ${this.opts.ackTimeoutMs} ms`);
    if (w === 'stopped') return false; // the run is ending: the device stays reset
    // del_vqs() + init_vqs(): the device is off the ring; a fresh one from zero.
    this.vq.ring.reset();
    this.vq = this.initVq();
    // virtio_device_ready(): DRIVER_OK (even); the doorbell lets the device serve again.
    Atomics.add(d, DEV_RESET_REQ, 1);
    this.vq.notify();
    this.views.metrics[this.rm + RM_RESETS]++;
    return true;
  }

  report(pfns: Int32Array, orders: Uint8Array, start: number, count: number): ReportStatus {
    // The hostile burst needs the ring to itself: never with a chain in
    // flight (a report cut short by a stop can leave one behind).
    if (this.opts.beforeReport !== undefined && this.vq.inFlight === 0) this.opts.beforeReport(this.vq);
    if (this.opts.mode === 'aeration') return this.aerate(pfns, orders, start, count);
    if (this.addRefused()) return 'error';
    if (count > this.vq.num) throw new Error(`balloon: a batch of ${count} blocks does not fit a queue of ${this.vq.num}`);
    for (let i = 0; i < count; i++) {
      this.addrs[i] = pfns[start + i] * PAGE_SIZE;
      this.lens[i] = PAGE_SIZE << orders[start + i];
    }
    if (this.inflight > 1 && count > 1) return this.addSplit(count, 0, true);
    const head = this.vq.addInbuf(this.addrs, this.lens, count, this.token++);
    if (head === ENOSPC) {
      this.failures++;
      return 'error';
    }
    this.noteInFlight();
    return this.kickAndWait();
  }

  /**
   * --report-inflight N > 1 (a simulator extension, not upstream): the
   * batch in addrs/lens[0..count) as up to N chains of consecutive entries,
   * each added and kicked on its own, so the device may pop one while the
   * driver writes the next; then wait until every one is used. `inbuf`:
   * device-writable ranges (reporting); else one device-readable hint
   * buffer per chain, each a slice of the hint array (aeration).
   */
  private addSplit(count: number, hintBase: number, inbuf: boolean): ReportStatus {
    const chains = Math.min(this.inflight, count);
    let added = 0;
    let failed = false;
    for (let c = 0, at = 0; c < chains; c++) {
      const n = Math.floor((count * (c + 1)) / chains) - Math.floor((count * c) / chains);
      let head: number;
      if (inbuf) head = this.vq.addInbuf(this.addrs.subarray(at), this.lens.subarray(at), n, this.token++);
      else {
        this.one[0] = hintBase + 8 * at;
        this.oneLen[0] = 8 * n;
        head = this.vq.addOutbuf(this.one, this.oneLen, 1, this.token++);
      }
      if (head === ENOSPC) {
        failed = true;
        break;
      }
      added++;
      at += n;
      this.noteInFlight();
      // Kick per chain (suppressed while the device has NO_NOTIFY set):
      // the device serves the first while the driver publishes the rest.
      this.vq.kick();
    }
    if (failed) this.failures++;
    if (added === 0) return 'error';
    // Every chain must come back before the blocks go back on the free list.
    for (let rounds = 0; this.vq.inFlight > 0; rounds++) {
      if (rounds > 4 * this.vq.num) throw new Error('balloon: waited for more used elements than chains in flight');
      const st = this.waitAndCollect();
      if (st !== 'ok') return st;
    }
    return failed ? 'error' : 'ok';
  }

  private aerate(pfns: Int32Array, orders: Uint8Array, start: number, count: number): ReportStatus {
    if (count > HINTS_MAX) throw new Error(`balloon: ${count} hints exceed VIRTIO_BALLOON_ARRAY_HINTS_MAX (${HINTS_MAX})`);
    const sync = this.sync;
    sync.lock(LOCK_BALLOON, SITE_BALLOON_REACT);
    try {
      // vb->hints[i] = cpu_to_virtio64(page_to_phys(page) | order): the order
      // in 4 KiB units sits in the low PAGE_SHIFT bits of the address.
      const g = this.views.guestI32;
      const base = (this.opts.hintBufferPfn * PAGE_SIZE) / 4;
      for (let i = 0; i < count; i++) {
        const pfn = pfns[start + i];
        g[base + 2 * i] = ((pfn << PAGE_SHIFT) | orders[start + i]) | 0; // low 32 bits (little-endian u64)
        g[base + 2 * i + 1] = pfn >>> (32 - PAGE_SHIFT); // high 32 bits
      }
      this.addrs[0] = this.opts.hintBufferPfn * PAGE_SIZE;
      this.lens[0] = 8 * count;
      if (this.addRefused()) return 'error';
      // --report-inflight: the hint array as several buffers in flight at once.
      if (this.inflight > 1 && count > 1 && !this.opts.noAckWait) return this.addSplit(count, this.opts.hintBufferPfn * PAGE_SIZE, false);
      if (this.opts.noAckWait) {
        // INJECTED (no-ack-wait): collect whatever the device finished, queue
        // the buffer, kick, and return at once: balloon_lock is dropped and
        // the caller puts the blocks back on the free list while the device
        // may not even have read the hints, and the next call rewrites them.
        this.collectUsed();
        const h = this.vq.addOutbuf(this.addrs, this.lens, 1, this.token++);
        if (h === ENOSPC) {
          this.failures++;
          return 'error';
        }
        this.noteInFlight();
        this.vq.kick();
        // The injection acted: a batch went out with nobody waiting for its ack.
        this.views.metrics[metricBase(threadIds(this.views.layout.params.cpus).reporter) + METRIC_INJECTED + INJECTED_NO_ACK_WAIT]++;
        return 'ok';
      }
      // "We should always be able to add one buffer to an empty queue."
      const head = this.vq.addOutbuf(this.addrs, this.lens, 1, this.token++);
      if (head === ENOSPC) {
        this.failures++;
        return 'error';
      }
      this.noteInFlight();
      return this.kickAndWait();
    } finally {
      sync.unlock(LOCK_BALLOON);
    }
  }

  private kickAndWait(): ReportStatus {
    if (this.opts.selfTestTrustIrq) {
      // Self-test: the interrupt is taken for the ack (wrong: it may be spurious).
      const seen = Atomics.load(this.views.device, DEV_INTERRUPT);
      this.vq.kick();
      waitWhileEquals(this.views.device, DEV_INTERRUPT, seen, this.opts.ackTimeoutMs, () => !this.opts.serving(), this.opts.spin);
      this.collectUsed();
      return 'ok';
    }
    this.vq.kick();
    return this.waitAndCollect();
  }

  /** wait_event(vb->acked, ...) for the next used element(s), then collect every one there is. */
  private waitAndCollect(): ReportStatus {
    const spurious = this.vq.spuriousWakes;
    const r = this.vq.waitUsed(this.opts.ackTimeoutMs, () => !this.opts.serving(), this.opts.spin);
    this.views.metrics[this.rm + RM_SPURIOUS_IRQS] += this.vq.spuriousWakes - spurious;
    if (r === 'timed-out') throw new LivenessError(`balloon: the device did not acknowledge a report within ${this.opts.ackTimeoutMs} ms`);
    if (r === 'stopped') {
      // The run is ending: the device may not answer; the blocks go back unreported.
      this.failures++;
      return 'error';
    }
    // Collect every used element (normally exactly one).
    this.collectUsed();
    return 'ok';
  }

  /** virtqueue_get_buf() until empty; each element is checked against what is in flight. */
  private collectUsed(): void {
    const m = this.views.metrics;
    const slot = metricBase(threadIds(this.views.layout.params.cpus).reporter) + RM_RING_CHECKS;
    // Count the check before making it: a rejected element is a run that failed.
    while (this.vq.moreUsed()) {
      this.usedChecked++;
      m[slot]++;
      this.vq.getBuf();
    }
  }
}

/** Whether the driver may enable reporting: not while it poisons freed pages unless PAGE_POISON was negotiated. */
export function reportingAllowed(views: Views, poison: boolean): { allowed: boolean; why: string } {
  const negotiated = views.device[DEV_FEATURES_NEGOTIATED] >>> 0;
  if (poison && !hasFeature(negotiated, VIRTIO_BALLOON_F_PAGE_POISON)) {
    return { allowed: false, why: 'page poisoning is on but VIRTIO_BALLOON_F_PAGE_POISON was not negotiated: free page reporting stays disabled (as upstream virtio_balloon does)' };
  }
  return { allowed: true, why: '' };
}

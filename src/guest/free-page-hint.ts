// VIRTIO_BALLOON_F_FREE_PAGE_HINT, the guest's side (Linux
// drivers/virtio/virtio_balloon.c: report_free_page_func, send_cmd_id_start,
// send_free_pages, get_free_page_and_send, send_cmd_id_stop,
// return_free_pages_to_mm, the free page shrinker). The device's side is
// src/host/free-page-hint-device.ts; balloon page bookkeeping is
// src/guest/balloon-pages.ts.
//
// The shrinker rule. A CPU whose allocation fails calls the balloon's
// shrinker (Zone.shrinker, from Cpu.allocBlock), which frees up to
// --hint-shrink acknowledged blocks back to the buddy allocator, and the CPU
// retries; it repeats while the shrinker gives blocks back (at most
// SHRINK_RETRIES_MAX rounds). If the list is empty but blocks are still in
// flight, the shrinker waits (at most SHRINK_WAIT_MS) for the driver to move
// acknowledged ones onto it. Only acknowledged blocks are returned: Linux's
// shrinker frees blocks straight off free_page_list even while the device may
// still be processing them, which is harmless for QEMU (migration dirty
// logging re-sends a page written later) but would let a discarding device
// (Firecracker) drop a page a CPU already uses. A shrinker call that returns
// nothing while the balloon holds pages is counted (allocFailuresBalloonHeld):
// that is an allocation that could have succeeded without hinting.

import { type Zone } from '../mm/buddy.js';
import { record } from '../base/hist.js';
import { DEV_CONFIG_GEN, DEV_FEATURES_NEGOTIATED, DEV_FREE_PAGE_HINT_CMD_ID, DEV_VQ_INDEX, HDR_RUN_STATE, LOCK_ZONE, METRIC_HIST_BASE, NIL, PAGE_SIZE, PAGE_WORDS, PG_NEXT, REP_HINT_DRIVER_STATE, REP_HINT_LIST_GEN, RUN_RUNNING, ZONE_BALLOON_LIST_BLOCKS, ZONE_BALLOON_LIST_HEAD, ZONE_BALLOON_PAGES, metricBase, type Views } from '../shm/layout.js';
import { GuestMemory } from '../mm/memory.js';
import { LivenessError, bump, waitWhileEquals } from '../locking/sync.js';
import { ENOSPC, VIRTIO_RING_F_EVENT_IDX, VringMem, VringVirtqueue } from '../virtio/ring.js';
import { hasFeature, VIRTIO_BALLOON_CMD_ID_DONE, VIRTIO_BALLOON_CMD_ID_STOP } from '../virtio/balloon-abi.js';
import { SITE_HINT_ALLOC } from '../locking/sites.js';
import { TK_HINT_BLOCK, TK_HINT_DONE, TK_HINT_RUN, tracer } from '../locking/trace.js';
import { CM_SHRINK_BLOCKS, CM_SHRINK_CALLS, CM_SHRINK_EMPTY_HELD, HINT_BLOCK_ORDER, HINT_DRV_HOLDING, HINT_DRV_IDLE, HINT_DRV_RUNNING, HM_BLOCKS, HM_BLOCKS_FREED_DONE, HM_DONES, HM_END_ALLOC_FAIL, HM_END_NEW_ID, HM_END_OTHER, HM_HELD_PAGES_MAX, HM_RING_FULL_WAITS, HM_RUNS, HM_RUN_NS_MAX, HM_RUN_NS_TOTAL, type HintDriverOptions, SHRINK_WAIT_MS, SentBlocks, allocBalloonBlock, checkBalloon, freeBalloonBlocks, popBalloonList } from './balloon-pages.js';

/** The balloon's shrinker, installed on each CPU's Zone (see the rule at the top). */
export interface ShrinkerOptions {
  /** Pattern freed pages are poisoned with, or null (no page poisoning). */
  poisonByte: number | null;
  /** Blocks returned per call (--hint-shrink). */
  blocksPerCall: number;
  /** Bound on every wait. */
  waitTimeoutMs: number;
}

export function makeShrinker(views: Views, zone: Zone, o: ShrinkerOptions, thread: number): (order: number, cpu: number) => number {
  const m = views.metrics;
  const mb = metricBase(thread);
  const z = zone.zone;
  const rep = views.reporting;
  const mem = new GuestMemory(views);
  const poison = o.poisonByte;
  const buf = new Int32Array(o.blocksPerCall);
  const running = () => Atomics.load(views.header, HDR_RUN_STATE) === RUN_RUNNING;
  const shrinkOnce = () => {
    const n = popBalloonList(zone, buf, buf.length, thread);
    freeBalloonBlocks(zone, mem, poison, buf, n, thread);
    return n;
  };
  return () => {
    m[mb + CM_SHRINK_CALLS]++;
    let freed = shrinkOnce();
    if (freed === 0 && Atomics.load(z, ZONE_BALLOON_PAGES) > 0) {
      // Blocks in flight: wait (bounded) for the driver to publish acknowledged ones.
      const deadline = performance.now() + Math.min(SHRINK_WAIT_MS, o.waitTimeoutMs);
      for (;;) {
        const gen = Atomics.load(rep, REP_HINT_LIST_GEN);
        // Racy peeks; popBalloonList re-reads the list under the zone lock.
        if (Atomics.load(z, ZONE_BALLOON_LIST_BLOCKS) > 0 || Atomics.load(z, ZONE_BALLOON_PAGES) === 0) break;
        const left = deadline - performance.now();
        if (left <= 0 || !running()) break;
        waitWhileEquals(rep, REP_HINT_LIST_GEN, gen, left, () => !running());
      }
      freed = shrinkOnce();
      if (freed === 0 && Atomics.load(z, ZONE_BALLOON_PAGES) > 0) m[mb + CM_SHRINK_EMPTY_HELD]++;
    }
    m[mb + CM_SHRINK_BLOCKS] += freed;
    return freed;
  };
}

/** The virtio_balloon driver's free page hint work (report_free_page_func) on the reporter thread. */
export class FreePageHintDriver {
  readonly vq: VringVirtqueue;
  private readonly m: Float64Array;
  private readonly mb: number;
  private readonly dev: Int32Array;
  private readonly mem: GuestMemory;
  private readonly sent: SentBlocks;
  /** vb->cmd_id_active */
  cmdIdActive = VIRTIO_BALLOON_CMD_ID_STOP;
  /** Blocks in flight (the ring's per-buffer data pointers): pfn -> 1. */
  private readonly inFlight = new Set<number>();
  private readonly acked: Int32Array;
  private lastConfigGen = 0;
  private readonly addr = new Float64Array(1);
  private readonly len = new Float64Array(1);
  /** Guest page holding cmd_id_active (word 0) and cmd_id_stop (word 1). */
  readonly idPfn: number;

  constructor(
    readonly views: Views,
    readonly zone: Zone,
    readonly thread: number,
    readonly opts: HintDriverOptions,
  ) {
    this.dev = views.device;
    const negotiated = this.dev[DEV_FEATURES_NEGOTIATED] >>> 0;
    this.vq = new VringVirtqueue(VringMem.fromViews(views), this.dev, { eventIdx: hasFeature(negotiated, VIRTIO_RING_F_EVENT_IDX), queueIndex: this.dev[DEV_VQ_INDEX] });
    this.m = views.metrics;
    this.mb = metricBase(thread);
    this.mem = new GuestMemory(views);
    this.sent = new SentBlocks(views.layout.pages);
    this.acked = new Int32Array(this.vq.num);
    this.idPfn = zone.alloc(0, thread);
    if (this.idPfn === NIL) throw new Error('hint: no page for the command id buffers');
  }

  private state(s: number): void {
    // Main reads it (Atomics.load) to decide whether the run has settled.
    Atomics.store(this.views.reporting, REP_HINT_DRIVER_STATE, s);
  }

  /** virtio_balloon_cmd_id_received(): re-read the config only after a config interrupt. */
  cmdIdReceived(): number {
    // Do not consume the config generation here: run() re-reads it before each
    // onConfigChange(), so a new id that ends a run early (HM_END_NEW_ID) still
    // wakes the worker for that run, as the requeued work item does in Linux.
    // ACQUIRE: the device stored the cmd id before bumping DEV_CONFIG_GEN.
    return Atomics.load(this.dev, DEV_FREE_PAGE_HINT_CMD_ID) >>> 0;
  }

  /** Detach every used buffer; acknowledged blocks go on the balloon's free_page_list. */
  detachUsed(): void {
    let n = 0;
    for (let t = this.vq.getBuf(); t >= 0; t = this.vq.getBuf()) {
      if (t === 0) continue; // a cmd id buffer
      const pfn = t - 1;
      this.inFlight.delete(pfn);
      this.acked[n++] = pfn;
    }
    if (n === 0) return;
    const z = this.zone.zone;
    const p = this.zone.pages;
    this.zone.sync.lock(LOCK_ZONE, SITE_HINT_ALLOC);
    try {
      for (let i = 0; i < n; i++) {
        const pfn = this.acked[i];
        checkBalloon(this.zone, pfn, this.thread, 'balloon_page_push');
        p[pfn * PAGE_WORDS + PG_NEXT] = z[ZONE_BALLOON_LIST_HEAD];
        z[ZONE_BALLOON_LIST_HEAD] = pfn;
        z[ZONE_BALLOON_LIST_BLOCKS]++;
      }
    } finally {
      this.zone.sync.unlock(LOCK_ZONE);
    }
    // WAKE: the zone unlock published the list; tell shrinkers waiting for blocks.
    bump(this.views.reporting, REP_HINT_LIST_GEN);
  }

  private waitOneUsed(): 'ready' | 'stopped' {
    const r = this.vq.waitUsed(this.opts.ackTimeoutMs, () => !this.opts.serving(), this.opts.spin);
    if (r === 'timed-out') throw new LivenessError(`hint: the device did not use a free_page_vq buffer within ${this.opts.ackTimeoutMs} ms`);
    return r;
  }

  private addIdBuffer(word: number, id: number): void {
    const g = this.views.guestI32;
    // Plain store into guest memory; the avail idx store in add() publishes it.
    g[(this.idPfn * PAGE_SIZE) / 4 + word] = id | 0;
    this.addr[0] = this.idPfn * PAGE_SIZE + 4 * word;
    this.len[0] = 4;
    let head = this.vq.addOutbuf(this.addr, this.len, 1, 0);
    // The one descriptor kept free guarantees room; if a stop of the simulation left the
    // ring full, wait (bounded) for room rather than lose the id.
    while (head === ENOSPC) {
      if (this.waitOneUsed() === 'stopped') return;
      this.detachUsed();
      head = this.vq.addOutbuf(this.addr, this.len, 1, 0);
    }
    this.vq.kick();
  }

  /** virtio_balloon_report_free_page(): one hint run for command id `id`. */
  reportFreePage(id: number): void {
    const m = this.m;
    const mb = this.mb;
    const t0 = performance.now();
    const blocksBefore = m[mb + HM_BLOCKS];
    m[mb + HM_RUNS]++;
    this.state(HINT_DRV_RUNNING);
    // send_cmd_id_start()
    this.detachUsed();
    this.cmdIdActive = id;
    this.addIdBuffer(0, id);
    // send_free_pages(): bounded by twice the max-order blocks of the zone (the
    // shrinker may hand blocks back that the loop takes again).
    const bound = 2 * (this.views.layout.pages >> HINT_BLOCK_ORDER) + 64;
    let end = HM_END_OTHER;
    for (let i = 0; i < bound && this.opts.serving(); i++) {
      if (this.cmdIdReceived() !== this.cmdIdActive) {
        end = HM_END_NEW_ID;
        break;
      }
      // get_free_page_and_send()
      this.detachUsed();
      const pfn = allocBalloonBlock(this.zone, HINT_BLOCK_ORDER, this.thread);
      if (pfn === NIL) {
        end = HM_END_ALLOC_FAIL;
        break;
      }
      const held = Atomics.load(this.zone.zone, ZONE_BALLOON_PAGES);
      if (held > m[mb + HM_HELD_PAGES_MAX]) m[mb + HM_HELD_PAGES_MAX] = held;
      // "There is always 1 entry reserved for the cmd id to use." Linux frees the
      // block when the ring is that full; here the driver waits for the device.
      let stopped = false;
      while (this.vq.numFree <= 1) {
        m[mb + HM_RING_FULL_WAITS]++;
        if (this.waitOneUsed() === 'stopped') {
          stopped = true;
          break;
        }
        this.detachUsed();
      }
      if (stopped) {
        freeBalloonBlocks(this.zone, this.mem, this.opts.poisonByte, [pfn], 1, this.thread);
        break;
      }
      this.addr[0] = pfn * PAGE_SIZE;
      this.len[0] = PAGE_SIZE << HINT_BLOCK_ORDER;
      this.vq.addInbuf(this.addr, this.len, 1, pfn + 1);
      this.inFlight.add(pfn);
      this.vq.kick();
      m[mb + HM_BLOCKS]++;
      if (tracer !== null) tracer.instant(TK_HINT_BLOCK, pfn, HINT_BLOCK_ORDER);
      this.sent.note(m, mb, pfn);
    }
    m[mb + end]++;
    const blocksSent = m[mb + HM_BLOCKS];
    // send_cmd_id_stop()
    this.addIdBuffer(1, VIRTIO_BALLOON_CMD_ID_STOP);
    // Every buffer before the STOP is used before it (in order): wait for all.
    while (this.vq.inFlight > 0 && this.opts.serving()) {
      if (this.waitOneUsed() === 'stopped') break;
      this.detachUsed();
    }
    this.detachUsed();
    const ns = (performance.now() - t0) * 1e6;
    m[mb + HM_RUN_NS_TOTAL] += ns;
    if (ns > m[mb + HM_RUN_NS_MAX]) m[mb + HM_RUN_NS_MAX] = ns;
    record(m, mb + METRIC_HIST_BASE, ns);
    if (tracer !== null) tracer.emit(TK_HINT_RUN, tracer.usOf(t0), ns / 1000, id, blocksSent - blocksBefore, end - HM_END_ALLOC_FAIL);
    this.state(Atomics.load(this.zone.zone, ZONE_BALLOON_PAGES) > 0 ? HINT_DRV_HOLDING : HINT_DRV_IDLE);
  }

  /** return_free_pages_to_mm(vb, ULONG_MAX): free every balloon block (after DONE, or at exit). */
  returnAll(): number {
    // After STOP every buffer was used; at exit the device may have stopped:
    // in-flight blocks are freed too (no CPU runs any more by then).
    this.detachUsed();
    const out = new Int32Array(Math.max(1, this.zone.zone[ZONE_BALLOON_PAGES] >> HINT_BLOCK_ORDER));
    let total = 0;
    for (;;) {
      const n = popBalloonList(this.zone, out, out.length, this.thread);
      if (n === 0) break;
      freeBalloonBlocks(this.zone, this.mem, this.opts.poisonByte, out, n, this.thread);
      total += n;
    }
    return total;
  }

  /** report_free_page_func(), run on every config change. */
  onConfigChange(): void {
    const id = this.cmdIdReceived();
    if (id === VIRTIO_BALLOON_CMD_ID_DONE) {
      this.m[this.mb + HM_DONES]++;
      const freed = this.returnAll();
      this.m[this.mb + HM_BLOCKS_FREED_DONE] += freed;
      if (tracer !== null) tracer.instant(TK_HINT_DONE, freed);
      if (this.inFlight.size === 0) this.state(HINT_DRV_IDLE);
    } else if (id !== VIRTIO_BALLOON_CMD_ID_STOP && id !== this.cmdIdActive) {
      this.reportFreePage(id);
    }
  }

  /** The worker: wait for config interrupts (bounded slices) until the run stops. */
  run(): void {
    const stop = () => !this.opts.serving();
    // A cmd id written before this thread started is a config change it must not miss.
    this.lastConfigGen = Atomics.load(this.dev, DEV_CONFIG_GEN);
    try {
      this.onConfigChange();
      while (this.opts.serving()) {
        const r = waitWhileEquals(this.dev, DEV_CONFIG_GEN, this.lastConfigGen, 50, stop);
        if (r !== 'changed') continue;
        this.lastConfigGen = Atomics.load(this.dev, DEV_CONFIG_GEN);
        this.onConfigChange();
      }
    } finally {
      this.cleanup();
    }
  }

  /** virtballoon_remove(): give everything back, the id page too. */
  cleanup(): void {
    const rest = [...this.inFlight];
    this.inFlight.clear();
    this.returnAll();
    freeBalloonBlocks(this.zone, this.mem, this.opts.poisonByte, rest, rest.length, this.thread);
    this.zone.free(this.idPfn, 0, this.thread);
    this.state(HINT_DRV_IDLE);
  }
}


// VIRTIO_BALLOON_F_FREE_PAGE_HINT, the guest's side (Linux
// drivers/virtio/virtio_balloon.c: report_free_page_func,
// virtio_balloon_report_free_page, send_cmd_id_start, send_free_pages,
// get_free_page_and_send, send_cmd_id_stop, return_free_pages_to_mm, and the
// shrinker: virtio_balloon_shrinker_scan / shrink_free_pages). The device's
// side is src/host/free-page-hint-device.ts; balloon page bookkeeping is
// src/guest/balloon-pages.ts.
//
// As upstream runs it (the default):
//  - get_free_page_and_send(): detach the used buffers, allocate one max-order
//    block (no retry, no reserves); if the ring has more than one free entry
//    ("1 entry reserved for the cmd id"), add it as a device-writable buffer,
//    kick, and put the block on free_page_list AT ONCE, before the host has
//    read it; if not, free the block and go on looping.
//  - send_cmd_id_stop(): add the STOP id and return. The free_page_vq has no
//    callback, so its interrupts are suppressed (VRING_AVAIL_F_NO_INTERRUPT)
//    and the driver never waits for the device: used buffers are detached at
//    the next send.
//  - the shrinker frees blocks off free_page_list, in flight or not
//    (virtballoon_probe registers it with FREE_PAGE_HINT, on the ground that
//    free pages may be reused while the host still processes them). It runs
//    from shrink_slab(), which reclaim calls from shrink_node(): kswapd
//    (woken by __alloc_pages_slowpath() when an allocation finds the zone
//    below its low watermark; balance_pgdat -> kswapd_shrink_node) and
//    direct reclaim (try_to_free_pages, after the allocation failed). Here
//    kswapd's work is done inline by the allocating CPU (Zone.reclaim), until
//    the zone is back at its high watermark, and again after a failed
//    allocation (Zone.shrinker); each call frees at most --hint-shrink blocks
//    (upstream scales nr_to_scan by the reclaim priority).
// So a block the shrinker frees may still sit in the ring: a CPU can reuse
// it before the host discards it. That is the race Firecracker's
// docs/ballooning.md describes; QEMU's dirty logging makes it harmless there.
//
// Mitigation (b), --hint-shrink-acked-only (this simulator's earlier rule): a
// block goes on free_page_list only once the device has used its buffer; the
// queue then keeps interrupts on, the driver waits for every buffer after its
// STOP, and a shrinker called after a failed allocation waits (bounded) for
// in-flight blocks to be acknowledged. An allocation that fails while the
// balloon holds pages the shrinker could not return is counted
// (emptyWhileBalloonHeld): one that could have succeeded without hinting.

import { type Zone } from '../mm/buddy.js';
import { record } from '../base/hist.js';
import { DEV_CONFIG_GEN, DEV_FEATURES_NEGOTIATED, DEV_FREE_PAGE_HINT_CMD_ID, DEV_VQ_INDEX, HDR_RUN_STATE, METRIC_HIST_BASE, NIL, PAGE_SIZE, REP_HINT_DRIVER_STATE, REP_HINT_LIST_GEN, RUN_RUNNING, ZONE_BALLOON_LIST_BLOCKS, ZONE_BALLOON_PAGES, ZONE_FREE_PAGES, ZONE_WMARK_HIGH, metricBase, type Views } from '../shm/layout.js';
import { GuestMemory } from '../mm/memory.js';
import { LivenessError, type StrictWait, clockMs, waitWhileEquals } from '../locking/sync.js';
import { type DescPolicy, ENOSPC, VIRTIO_RING_F_EVENT_IDX, VringMem, VringVirtqueue } from '../virtio/ring.js';
import { RM_INFLIGHT_MAX, RM_RING_CHECKS } from '../mm/reporter-common.js';
import { hasFeature, VIRTIO_BALLOON_CMD_ID_DONE, VIRTIO_BALLOON_CMD_ID_STOP } from '../virtio/balloon-abi.js';
import { TK_HINT_BLOCK, TK_HINT_DONE, TK_HINT_RUN, TK_SHRINK, tracer } from '../locking/trace.js';
import {
  CM_RECLAIM_BLOCKS,
  CM_RECLAIM_CALLS,
  CM_SHRINK_BLOCKS,
  CM_SHRINK_CALLS,
  CM_SHRINK_EMPTY_HELD,
  CM_SHRINK_NS_MAX,
  CM_SHRINK_NS_TOTAL,
  HINT_BLOCK_ORDER,
  HINT_DRV_HOLDING,
  HINT_DRV_IDLE,
  HINT_DRV_RUNNING,
  HM_BLOCKS,
  HM_BLOCKS_FREED_DONE,
  HM_DONES,
  HM_END_ALLOC_FAIL,
  HM_END_NEW_ID,
  HM_END_OTHER,
  HM_HELD_PAGES_MAX,
  HM_ID_DROPPED,
  HM_LISTED_AT_KICK,
  HM_RING_FULL_FREES,
  HM_RING_FULL_WAITS,
  HM_RUNS,
  HM_RUN_NS_MAX,
  HM_RUN_NS_TOTAL,
  type HintDriverOptions,
  SHRINK_WAIT_MS,
  SentBlocks,
  allocBalloonBlock,
  freeBalloonBlocks,
  listBalloonBlocks,
  popBalloonList,
} from './balloon-pages.js';

/**
 * What the hint-cmd-id oracle (src/check/hint-cmd-id.ts) is told, on the
 * driver's thread: every read of the command id from config space, and
 * every chain the driver publishes on the free_page_vq (the oracle reads
 * the chain back from the ring, not from the driver's own state).
 */
export interface CmdIdObserver {
  /** virtio_cread(free_page_hint_cmd_id): the driver has now seen `id`. */
  configRead(id: number): void;
  /** A chain with this head was just published on `ring`, while the driver sends for run `cmdIdActive` (vb->cmd_id_active). */
  published(ring: VringMem, head: number, cmdIdActive: number): void;
}

/** The free page hint driver's options beyond the balloon pages' common ones. */
export interface FreePageHintOptions extends HintDriverOptions {
  /** --desc-policy: the free_page_vq's descriptor allocation (default lifo, Linux's). */
  descPolicy?: DescPolicy;
  /** Harness self-test (BALLOON_SIM_SELFTEST=ring-idx-before-entry): avail idx published before its entry (src/virtio/ring.ts). */
  selfTestIdxBeforeEntry?: boolean;
  /** The hint-cmd-id oracle's hooks; none: unchecked. */
  cmdIdCheck?: CmdIdObserver;
  /**
   * Harness self-test (BALLOON_SIM_SELFTEST=hint-late-id-check, not a
   * simulation feature): send_free_pages() reads the command id before
   * get_free_page_and_send() but acts on it only after, so one more block
   * goes out after the driver has seen a newer id: the slip the
   * hint-cmd-id oracle exists for.
   */
  selfTestLateIdCheck?: boolean;
}

/** The hint worker's wait for a config interrupt: strict (docs/DESIGN.md §4; report_free_page_func runs off config_changed, no timeout). */
const CONFIG_WAIT: StrictWait = { event: 'config interrupt (DEV_CONFIG_GEN)' };

/** The balloon's shrinker, installed on each CPU's Zone (see the rules at the top). */
export interface ShrinkerOptions {
  /** Pattern freed pages are poisoned with, or null (no page poisoning). */
  poisonByte: number | null;
  /** Blocks freed per call (--hint-shrink). */
  blocksPerCall: number;
  /** Bound on every wait. */
  waitTimeoutMs: number;
  /** Mitigation (b): blocks are listed only once acknowledged; a direct-reclaim call waits (bounded) for in-flight ones. */
  ackedOnly: boolean;
}

/** Where the shrinker was called from. */
export type ShrinkFrom = 'reclaim' | 'direct';

/**
 * virtio_balloon_shrinker_scan() -> shrink_free_pages() ->
 * return_free_pages_to_mm(): pop blocks off free_page_list and free them,
 * whether the device has used them or not (upstream), or only acknowledged
 * ones (--hint-shrink-acked-only, where only those are listed). 'reclaim':
 * from an allocation below the low watermark, stops once the zone is back at
 * its high watermark (kswapd's balance target); 'direct': after a failed
 * allocation. Returns the blocks freed.
 */
export function makeShrinker(views: Views, zone: Zone, o: ShrinkerOptions, thread: number): (from: ShrinkFrom, order: number) => number {
  const m = views.metrics;
  const mb = metricBase(thread);
  const z = zone.zone;
  const rep = views.reporting;
  const mem = new GuestMemory(views);
  const poison = o.poisonByte;
  const buf = new Int32Array(1);
  const running = () => Atomics.load(views.header, HDR_RUN_STATE) === RUN_RUNNING;
  const shrinkOnce = (from: ShrinkFrom, order: number) => {
    let n = 0;
    // One block per pop: a reclaim call stops as soon as the zone is balanced
    // for the order asked (kswapd's pgdat_balanced: the high watermark, with
    // room for the allocation).
    while (n < o.blocksPerCall) {
      if (from === 'reclaim' && Atomics.load(z, ZONE_FREE_PAGES) - (1 << order) >= Atomics.load(z, ZONE_WMARK_HIGH)) break;
      if (popBalloonList(zone, buf, 1, thread) === 0) break;
      freeBalloonBlocks(zone, mem, poison, buf, 1, thread);
      n++;
    }
    return n;
  };
  return (from, order) => {
    // Racy peek: nothing listed and nothing held means nothing to do (the
    // common case below the low watermark with no hinting going on).
    if (Atomics.load(z, ZONE_BALLOON_PAGES) === 0) return 0;
    const t0 = performance.now(); // statistics only (shrinker latency), never a decision
    let freed = shrinkOnce(from, order);
    if (from === 'direct' && freed === 0 && Atomics.load(z, ZONE_BALLOON_PAGES) > 0) {
      // The balloon holds blocks, none listed: in flight (--hint-shrink-acked-only),
      // or between their allocation and their kick. Wait (bounded) for the
      // driver to list some. clockMs(): logical time under --sched.
      const deadline = clockMs() + Math.min(SHRINK_WAIT_MS, o.waitTimeoutMs);
      for (;;) {
        const gen = Atomics.load(rep, REP_HINT_LIST_GEN);
        // Racy peeks; popBalloonList re-reads the list under the zone lock.
        if (Atomics.load(z, ZONE_BALLOON_LIST_BLOCKS) > 0 || Atomics.load(z, ZONE_BALLOON_PAGES) === 0) break;
        const left = deadline - clockMs();
        if (left <= 0 || !running()) break;
        waitWhileEquals(rep, REP_HINT_LIST_GEN, gen, left, () => !running());
      }
      freed = shrinkOnce(from, order);
      if (freed === 0 && Atomics.load(z, ZONE_BALLOON_PAGES) > 0) m[mb + CM_SHRINK_EMPTY_HELD]++;
    }
    const ns = (performance.now() - t0) * 1e6;
    if (from === 'reclaim') {
      m[mb + CM_RECLAIM_CALLS]++;
      m[mb + CM_RECLAIM_BLOCKS] += freed;
    } else {
      m[mb + CM_SHRINK_CALLS]++;
      m[mb + CM_SHRINK_BLOCKS] += freed;
    }
    m[mb + CM_SHRINK_NS_TOTAL] += ns;
    if (ns > m[mb + CM_SHRINK_NS_MAX]) m[mb + CM_SHRINK_NS_MAX] = ns;
    if (tracer !== null && freed > 0) tracer.instant(TK_SHRINK, freed, from === 'reclaim' ? 1 : 2);
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
  private readonly ackedOnly: boolean;
  /** vb->cmd_id_active */
  cmdIdActive = VIRTIO_BALLOON_CMD_ID_STOP;
  /** --hint-shrink-acked-only: blocks in flight, not yet listed (the ring's per-buffer data pointers). */
  private readonly inFlight = new Set<number>();
  private readonly acked: Int32Array;
  private lastConfigGen = 0;
  private readonly addr = new Float64Array(1);
  private readonly len = new Float64Array(1);
  private readonly one = new Int32Array(1);
  /** Guest page holding cmd_id_active (word 0) and cmd_id_stop (word 1). */
  readonly idPfn: number;

  constructor(
    readonly views: Views,
    readonly zone: Zone,
    readonly thread: number,
    readonly opts: FreePageHintOptions,
  ) {
    this.dev = views.device;
    const negotiated = this.dev[DEV_FEATURES_NEGOTIATED] >>> 0;
    this.vq = new VringVirtqueue(VringMem.fromViews(views), this.dev, {
      eventIdx: hasFeature(negotiated, VIRTIO_RING_F_EVENT_IDX),
      queueIndex: this.dev[DEV_VQ_INDEX],
      descPolicy: opts.descPolicy ?? 'lifo',
      selfTestIdxBeforeEntry: opts.selfTestIdxBeforeEntry === true,
    });
    this.ackedOnly = opts.ackedOnly === true;
    // init_vqs(): the free_page_vq is created with a NULL callback, so the
    // ring asks for no interrupts. Mitigation (b) waits for the device and
    // needs them.
    if (!this.ackedOnly) this.vq.disableCb();
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

  /**
   * HOLDING while the driver itself holds blocks: listed on free_page_list
   * or, with --hint-shrink-acked-only, in flight. Not ZONE_BALLOON_PAGES: that
   * also counts blocks a shrinker has popped and not yet freed, and a state
   * taken from it could say HOLDING after DONE with nothing left for the
   * driver to return (nothing would ever set it back; the settle check saw
   * that as a lost DONE). The settle check reads ZONE_BALLOON_PAGES on its own.
   */
  private heldState(): number {
    return Atomics.load(this.zone.zone, ZONE_BALLOON_LIST_BLOCKS) > 0 || this.inFlight.size > 0 ? HINT_DRV_HOLDING : HINT_DRV_IDLE;
  }

  /** virtio_balloon_cmd_id_received(): the command id in config space. */
  cmdIdReceived(): number {
    // Do not consume the config generation here: run() re-reads it before each
    // onConfigChange(), so a new id that ends a run early (HM_END_NEW_ID) still
    // wakes the worker for that run, as the requeued work item does in Linux.
    // ACQUIRE: the device stored the cmd id before bumping DEV_CONFIG_GEN.
    const id = Atomics.load(this.dev, DEV_FREE_PAGE_HINT_CMD_ID) >>> 0;
    // The oracle: from here on the driver has seen `id`.
    if (this.opts.cmdIdCheck !== undefined) this.opts.cmdIdCheck.configRead(id);
    return id;
  }

  /** A chain was published: the oracle reads it back; the ring's most chains in flight. */
  private published(head: number): void {
    if (this.opts.cmdIdCheck !== undefined) this.opts.cmdIdCheck.published(this.vq.ring, head, this.cmdIdActive);
    if (this.vq.inFlight > this.m[this.mb + RM_INFLIGHT_MAX]) this.m[this.mb + RM_INFLIGHT_MAX] = this.vq.inFlight;
  }

  /**
   * "Detach all the used buffers from the vq" (the loop at the top of
   * send_cmd_id_start/stop and get_free_page_and_send). Upstream drops them:
   * their blocks are listed already. With --hint-shrink-acked-only the
   * acknowledged blocks go on free_page_list now.
   */
  detachUsed(): void {
    let n = 0;
    // Each used element is checked by getBuf() (the ring oracle): counted before it is made.
    while (this.vq.moreUsed()) {
      this.m[this.mb + RM_RING_CHECKS]++;
      const t = this.vq.getBuf();
      if (t === 0 || !this.ackedOnly) continue; // a cmd id buffer, or a block listed at its kick
      const pfn = t - 1;
      this.inFlight.delete(pfn);
      this.acked[n++] = pfn;
    }
    listBalloonBlocks(this.zone, this.views, this.acked, n, this.thread);
  }

  private waitOneUsed(): 'ready' | 'stopped' {
    const r = this.vq.waitUsed(this.opts.ackTimeoutMs, () => !this.opts.serving(), this.opts.spin);
    if (r === 'timed-out') throw new LivenessError(`hint: the device did not use a free_page_vq buffer within ${this.opts.ackTimeoutMs} ms`);
    return r;
  }

  /** send_cmd_id_start / send_cmd_id_stop: one le32 id in a device-readable buffer, then kick. */
  private addIdBuffer(word: number, id: number): void {
    const g = this.views.guestI32;
    // Plain store into guest memory; the avail idx store in add() publishes it.
    g[(this.idPfn * PAGE_SIZE) / 4 + word] = id | 0;
    this.addr[0] = this.idPfn * PAGE_SIZE + 4 * word;
    this.len[0] = 4;
    let head = this.vq.addOutbuf(this.addr, this.len, 1, 0);
    if (head === ENOSPC && this.ackedOnly) {
      // Mitigation (b) keeps interrupts on: wait (bounded) for room rather than lose the id.
      while (head === ENOSPC) {
        if (this.waitOneUsed() === 'stopped') return;
        this.detachUsed();
        head = this.vq.addOutbuf(this.addr, this.len, 1, 0);
      }
    }
    if (head === ENOSPC) {
      // Upstream: virtqueue_add_outbuf() failed, dev_err("Failed to send a
      // start/stop id") and the work goes on. The device never sees this id.
      this.m[this.mb + HM_ID_DROPPED]++;
      return;
    }
    this.published(head);
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
    // send_free_pages(): upstream loops until the allocation fails or the id
    // changes. Bounded here: twice the zone's max-order blocks (the shrinker
    // hands blocks back that the loop takes again) plus room for the
    // ring-full frees while the device catches up.
    const bound = 2 * (this.views.layout.pages >> HINT_BLOCK_ORDER) + 4 * this.vq.num + 64;
    let end = HM_END_OTHER;
    for (let i = 0; i < bound && this.opts.serving(); i++) {
      if (this.opts.selfTestLateIdCheck) {
        // Self-test: the id read before the send, acted on only after it.
        const seen = this.cmdIdReceived();
        if (!this.getFreePageAndSend()) {
          end = HM_END_ALLOC_FAIL;
          break;
        }
        if (seen !== this.cmdIdActive) {
          end = HM_END_NEW_ID;
          break;
        }
        continue;
      }
      // send_free_pages(): "If the device asks to stop, the driver won't
      // send any more free pages": the id is checked before every block.
      if (this.cmdIdReceived() !== this.cmdIdActive) {
        end = HM_END_NEW_ID;
        break;
      }
      if (!this.getFreePageAndSend()) {
        end = HM_END_ALLOC_FAIL;
        break;
      }
    }
    m[mb + end]++;
    const blocksSent = m[mb + HM_BLOCKS];
    // send_cmd_id_stop(), and virtio_balloon_report_free_page() returns.
    this.detachUsed();
    this.addIdBuffer(1, VIRTIO_BALLOON_CMD_ID_STOP);
    if (this.ackedOnly) {
      // Mitigation (b): every buffer before the STOP is used before it (in
      // order): wait for all, so every block is listed for the shrinker and DONE.
      while (this.vq.inFlight > 0 && this.opts.serving()) {
        if (this.waitOneUsed() === 'stopped') break;
        this.detachUsed();
      }
      this.detachUsed();
    }
    const ns = (performance.now() - t0) * 1e6;
    m[mb + HM_RUN_NS_TOTAL] += ns;
    if (ns > m[mb + HM_RUN_NS_MAX]) m[mb + HM_RUN_NS_MAX] = ns;
    record(m, mb + METRIC_HIST_BASE, ns);
    if (tracer !== null) tracer.emit(TK_HINT_RUN, tracer.usOf(t0), ns / 1000, id, blocksSent - blocksBefore, end - HM_END_ALLOC_FAIL);
    this.state(this.heldState());
  }

  /** get_free_page_and_send(): false when the allocation failed (all free memory taken). */
  private getFreePageAndSend(): boolean {
    const m = this.m;
    const mb = this.mb;
    this.detachUsed();
    const pfn = allocBalloonBlock(this.zone, HINT_BLOCK_ORDER, this.thread);
    if (pfn === NIL) return false;
    const held = Atomics.load(this.zone.zone, ZONE_BALLOON_PAGES);
    if (held > m[mb + HM_HELD_PAGES_MAX]) m[mb + HM_HELD_PAGES_MAX] = held;
    this.one[0] = pfn;
    // "There is always 1 entry reserved for the cmd id to use."
    if (this.vq.numFree <= 1) {
      // No room: free the block and keep looping (the next call detaches
      // what the device used meanwhile).
      m[mb + HM_RING_FULL_FREES]++;
      if (this.ackedOnly) m[mb + HM_RING_FULL_WAITS]++;
      freeBalloonBlocks(this.zone, this.mem, this.opts.poisonByte, this.one, 1, this.thread);
      return true;
    }
    this.addr[0] = pfn * PAGE_SIZE;
    this.len[0] = PAGE_SIZE << HINT_BLOCK_ORDER;
    const head = this.vq.addInbuf(this.addr, this.len, 1, pfn + 1);
    this.published(head);
    this.vq.kick();
    if (this.ackedOnly) this.inFlight.add(pfn);
    else {
      // balloon_page_push(&vb->free_page_list, page) right after the kick:
      // from here the shrinker may free the block while the host has not
      // read it yet (the race Firecracker documents).
      listBalloonBlocks(this.zone, this.views, this.one, 1, this.thread);
      m[mb + HM_LISTED_AT_KICK]++;
    }
    m[mb + HM_BLOCKS]++;
    if (tracer !== null) tracer.instant(TK_HINT_BLOCK, pfn, HINT_BLOCK_ORDER);
    this.sent.note(m, mb, pfn);
    return true;
  }

  /** return_free_pages_to_mm(vb, ULONG_MAX): free every block on free_page_list (after DONE, or at exit). */
  returnAll(): number {
    // Upstream frees the listed blocks whether the device used them or not;
    // at exit the device may have stopped and no CPU runs any more.
    if (this.ackedOnly) this.detachUsed();
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
      this.state(this.heldState());
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
        // Strict: the worker runs when the config interrupt comes
        // (virtballoon_changed() queues it); the slice only notices a stop.
        const r = waitWhileEquals(this.dev, DEV_CONFIG_GEN, this.lastConfigGen, 50, stop, 0, CONFIG_WAIT);
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

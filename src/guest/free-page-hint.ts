// VIRTIO_BALLOON_F_FREE_PAGE_HINT, the guest's side (Linux
// drivers/virtio/virtio_balloon.c: report_free_page_func, send_cmd_id_start,
// send_free_pages, get_free_page_and_send, send_cmd_id_stop,
// return_free_pages_to_mm, the free page shrinker), and the naive loop the
// seed's review warns about. The device's side is src/hint-device.ts.
//
// Balloon pages. A hinted block is allocated by the balloon: its head page is
// PG_BALLOON (owner: the reporter thread), counted in ZONE_BALLOON_PAGES. Once
// the device has used (acknowledged) its buffer, the block goes on the
// balloon's free_page_list (ZONE_BALLOON_LIST_HEAD, linked through PG_NEXT).
// State change and list change happen under the zone lock, so the structural
// oracles (also under the zone lock) see them agree. Linux keeps the list
// under its own free_page_list_lock; one lock here is a simplification.
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
import {
  DEV_CONFIG_GEN,
  DEV_FEATURES_NEGOTIATED,
  DEV_FREE_PAGE_HINT_CMD_ID,
  DEV_VQ_INDEX,
  HDR_RUN_STATE,
  HDR_STATE_GEN,
  LOCK_ZONE,
  MAX_ORDER,
  METRIC_EXTRA,
  METRIC_HIST_BASE,
  NIL,
  PAGE_SIZE,
  PAGE_WORDS,
  PG_FLAGS,
  PG_NEXT,
  REP_HINT_DRIVER_STATE,
  REP_HINT_LIST_GEN,
  RUN_RUNNING,
  ZONE_BALLOON_LIST_BLOCKS,
  ZONE_BALLOON_LIST_HEAD,
  ZONE_BALLOON_PAGES,
  ZONE_FREE_PAGES,
  ZONE_WMARK_MIN,
  metricBase,
  threadIds,
  type Views,
} from '../shm/layout.js';
import { GuestMemory } from '../mm/memory.js';
import { ORDER_SHIFT, describeFlags, PG_BALLOON, PG_STATE_MASK } from '../mm/page.js';
import { VirtioBalloonDriver } from './balloon-driver.js';
import { LivenessError, type Sync, bump, waitWhileEquals } from '../locking/sync.js';
import { ENOSPC, VIRTIO_RING_F_EVENT_IDX, VringMem, VringVirtqueue } from '../virtio/ring.js';
import { OracleViolation } from '../base/errors.js';
import { hasFeature, VIRTIO_BALLOON_CMD_ID_DONE, VIRTIO_BALLOON_CMD_ID_STOP } from '../virtio/balloon-abi.js';
import { SITE_HINT_ALLOC, SITE_HINT_FREE } from '../locking/sites.js';

/** VIRTIO_BALLOON_HINT_BLOCK_ORDER: the largest order (4 MiB blocks). */
export const HINT_BLOCK_ORDER = MAX_ORDER - 1;
/** Longest a shrinker call waits for in-flight blocks to be acknowledged. */
export const SHRINK_WAIT_MS = 200;

// Driver state (REP_HINT_DRIVER_STATE), read by main to decide the run settled.
export const HINT_DRV_IDLE = 0; // no run, nothing held (or waiting for a first cmd id)
export const HINT_DRV_RUNNING = 1; // allocating and sending blocks
export const HINT_DRV_HOLDING = 2; // STOP sent; blocks held until the device writes DONE

// Reporter-thread metric fields (Float64), disjoint from reporting's RM_*.
const HM = METRIC_EXTRA + 16;
export const HM_RUNS = HM + 0; // hint runs started (new cmd id seen); naive: unused
export const HM_BLOCKS = HM + 1; // blocks sent to the device (hint: per run; naive: per round trip)
export const HM_DISTINCT_BLOCKS = HM + 2; // distinct blocks ever sent
export const HM_DUP_BLOCKS = HM + 3; // blocks sent again
export const HM_RUN_NS_TOTAL = HM + 4; // hint: cmd id seen -> STOP acknowledged; naive: round trips
export const HM_RUN_NS_MAX = HM + 5;
export const HM_DONES = HM + 6; // DONE handled
export const HM_BLOCKS_FREED_DONE = HM + 7; // blocks freed on DONE
export const HM_RING_FULL_WAITS = HM + 8; // one descriptor left (kept for the id): waited for the device
export const HM_END_ALLOC_FAIL = HM + 9; // runs ended because allocation failed (all free memory taken)
export const HM_END_NEW_ID = HM + 10; // runs ended because the cmd id changed
export const HM_END_OTHER = HM + 11; // runs ended by a stop of the simulation or the iteration bound
export const HM_HELD_PAGES_MAX = HM + 12; // most pages the balloon held at once
export const HM_NAIVE_ALLOC_FAILS = HM + 13; // naive: no block to take (pressure)
export const HM_ROUND_TRIPS = HM + 14; // naive: report round trips
// CPU metric fields (Float64), in each CPU's slot.
export const CM_SHRINK_CALLS = METRIC_EXTRA + 8;
export const CM_SHRINK_BLOCKS = METRIC_EXTRA + 9;
/** The shrinker had nothing to return although the balloon held pages (in flight past SHRINK_WAIT_MS). */
export const CM_SHRINK_EMPTY_HELD = METRIC_EXTRA + 10;

/** Take a block of `order` for the balloon: no retry, no warn, no reserves (fail rather than go below min). */
export function allocBalloonBlock(zone: Zone, order: number, thread: number): number {
  const z = zone.zone;
  zone.sync.lock(LOCK_ZONE, SITE_HINT_ALLOC);
  try {
    if (z[ZONE_FREE_PAGES] - (1 << order) < z[ZONE_WMARK_MIN]) return NIL;
    const pfn = zone.rmqueueSmallest(order, thread);
    if (pfn === NIL) return NIL;
    // balloon_page_enqueue(): the pages now belong to the balloon.
    zone.setHead(pfn, PG_BALLOON, order);
    zone.setOwner(pfn, thread);
    z[ZONE_BALLOON_PAGES] += 1 << order;
    return pfn;
  } finally {
    zone.sync.unlock(LOCK_ZONE);
  }
}

function checkBalloon(zone: Zone, pfn: number, thread: number, what: string): number {
  const f = zone.pages[pfn * PAGE_WORDS + PG_FLAGS];
  if ((f & PG_STATE_MASK) !== PG_BALLOON) {
    throw new OracleViolation({ oracle: 'ownership', message: `${what}: pfn ${pfn} should be a balloon block but is ${describeFlags(f & 0xffffff)} order ${f >>> ORDER_SHIFT}`, pfn, cpu: thread });
  }
  return f >>> ORDER_SHIFT;
}

/**
 * Free balloon blocks back to the buddy allocator (the __free_pages() of
 * return_free_pages_to_mm / the naive loop). With --poison the free path
 * poisons them first (kernel_poison_pages), faulting them in on the host.
 */
export function freeBalloonBlocks(zone: Zone, mem: GuestMemory | null, poisonByte: number | null, pfns: ArrayLike<number>, count: number, thread: number): void {
  if (count === 0) return;
  if (poisonByte !== null && mem !== null) {
    for (let i = 0; i < count; i++) {
      const pfn = pfns[i];
      const n = 1 << (zone.pages[pfn * PAGE_WORDS + PG_FLAGS] >>> ORDER_SHIFT);
      for (let p = pfn; p < pfn + n; p++) mem.touch(p);
      mem.fillPoison(pfn, n, poisonByte);
    }
  }
  const z = zone.zone;
  zone.sync.lock(LOCK_ZONE, SITE_HINT_FREE);
  try {
    for (let i = 0; i < count; i++) {
      const pfn = pfns[i];
      const order = checkBalloon(zone, pfn, thread, 'balloon free');
      z[ZONE_BALLOON_PAGES] -= 1 << order;
      // No report request from this free path: hint mode runs no page reporting.
      zone.freeOneLocked(pfn, order, false, false);
    }
  } finally {
    zone.sync.unlock(LOCK_ZONE);
  }
}

/** Pop up to `max` acknowledged blocks off the balloon's free_page_list into `out`. Returns how many. */
export function popBalloonList(zone: Zone, out: Int32Array, max: number, thread: number): number {
  const z = zone.zone;
  const p = zone.pages;
  let n = 0;
  zone.sync.lock(LOCK_ZONE, SITE_HINT_FREE);
  try {
    while (n < max && z[ZONE_BALLOON_LIST_HEAD] !== NIL) {
      const pfn = z[ZONE_BALLOON_LIST_HEAD];
      checkBalloon(zone, pfn, thread, 'balloon list pop');
      z[ZONE_BALLOON_LIST_HEAD] = p[pfn * PAGE_WORDS + PG_NEXT];
      p[pfn * PAGE_WORDS + PG_NEXT] = NIL;
      z[ZONE_BALLOON_LIST_BLOCKS]--;
      out[n++] = pfn;
    }
  } finally {
    zone.sync.unlock(LOCK_ZONE);
  }
  return n;
}

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

export interface HintDriverOptions {
  ackTimeoutMs: number;
  spin: number;
  serving: () => boolean;
  poisonByte: number | null;
}

/** Distinct/duplicate accounting over max-order blocks (a statistic of the driver, not simulation state). */
class SentBlocks {
  private readonly seen: Uint8Array;
  constructor(pages: number) {
    this.seen = new Uint8Array((pages >> HINT_BLOCK_ORDER) + 1);
  }
  note(m: Float64Array, mb: number, pfn: number): void {
    const i = pfn >> HINT_BLOCK_ORDER;
    if (this.seen[i]) m[mb + HM_DUP_BLOCKS]++;
    else {
      this.seen[i] = 1;
      m[mb + HM_DISTINCT_BLOCKS]++;
    }
  }
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
      this.sent.note(m, mb, pfn);
    }
    m[mb + end]++;
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
      this.m[this.mb + HM_BLOCKS_FREED_DONE] += this.returnAll();
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

/**
 * The naive loop from the review: alloc one block, send it, wait for the
 * device, free it, repeat. The same block comes straight back from the head of
 * free_area[order] and goes to the device again and again.
 */
export class NaiveHinter {
  private readonly m: Float64Array;
  private readonly mb: number;
  private readonly sent: SentBlocks;
  private readonly mem: GuestMemory;
  private readonly pfns = new Int32Array(1);
  private readonly orders = new Uint8Array([HINT_BLOCK_ORDER]);

  constructor(
    readonly views: Views,
    readonly zone: Zone,
    readonly sync: Sync,
    readonly thread: number,
    readonly opts: HintDriverOptions,
  ) {
    this.m = views.metrics;
    this.mb = metricBase(thread);
    this.sent = new SentBlocks(views.layout.pages);
    this.mem = new GuestMemory(views);
  }

  run(): void {
    const h = this.views.header;
    const running = () => Atomics.load(h, HDR_RUN_STATE) === RUN_RUNNING;
    const driver = new VirtioBalloonDriver(this.views, this.sync, { mode: 'reporting', ackTimeoutMs: this.opts.ackTimeoutMs, spin: this.opts.spin, serving: this.opts.serving, hintBufferPfn: NIL });
    const m = this.m;
    const mb = this.mb;
    // New blocks only while the workload runs: settling ends the loop.
    while (running()) {
      const pfn = allocBalloonBlock(this.zone, HINT_BLOCK_ORDER, this.thread);
      if (pfn === NIL) {
        m[mb + HM_NAIVE_ALLOC_FAILS]++;
        const gen = Atomics.load(h, HDR_STATE_GEN);
        waitWhileEquals(h, HDR_STATE_GEN, gen, 5, () => !running());
        continue;
      }
      this.pfns[0] = pfn;
      const t0 = performance.now();
      const st = driver.report(this.pfns, this.orders, 0, 1);
      const ns = (performance.now() - t0) * 1e6;
      m[mb + HM_ROUND_TRIPS]++;
      m[mb + HM_RUN_NS_TOTAL] += ns;
      if (ns > m[mb + HM_RUN_NS_MAX]) m[mb + HM_RUN_NS_MAX] = ns;
      record(m, mb + METRIC_HIST_BASE, ns);
      if (st === 'ok') {
        m[mb + HM_BLOCKS]++;
        this.sent.note(m, mb, pfn);
      }
      freeBalloonBlocks(this.zone, this.mem, this.opts.poisonByte, this.pfns, 1, this.thread);
    }
  }
}

/** Thread id of the reporter (the driver's thread) for a config. */
export const hintThread = (cpus: number) => threadIds(cpus).reporter;

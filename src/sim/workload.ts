// A guest vCPU running a workload (docs/DESIGN.md §2): alloc, touch, verify, free.
// Pure logic over the shared views; workers/role.ts only builds it and runs it.
//
// The blocks a CPU holds are its "process memory": kept in local arrays (like
// a process's page tables), while every page's state lives in the shared
// struct-page array and its contents in guest memory.

import { type Zone } from '../mm/buddy.js';
import { type Config, DEFAULT_CONFIG, cpuThreadsInForce } from './config.js';

/** What a CPU's workload reads of the run's configuration. */
export type WorkloadParams = Pick<Config, 'workload' | 'cpus' | 'regionBytes' | 'hogShare' | 'holdMs' | 'poison' | 'poisonByte' | 'thp'> & Partial<Pick<Config, 'warm' | 'cpuSlots' | 'cpuThreads' | 'waitTimeoutMs'>>;

/**
 * A workload as resumable steps (a generator). It yields between ops, where
 * the CPU holds no lock: the time it sleeps until (a backoff, an idle
 * period; Infinity: until the run stops), or 0 when it is runnable and only
 * gives its thread to another CPU (--cpu-threads, src/sim/cpu-host.ts). It
 * never yields inside an op.
 */
export type CpuSteps<T = void> = Generator<number, T, void>;
import { HDR_RUN_STATE, HDR_STATE_GEN, MAX_ORDER, METRIC_ALLOCS, METRIC_ALLOC_FAILS, METRIC_ALLOC_NS_MAX, METRIC_ALLOC_NS_TOTAL, METRIC_ALLOC_SAMPLES, METRIC_FREES, METRIC_HIST_BASE, METRIC_HOST_FAULTS, METRIC_LOOPS, METRIC_OPS, METRIC_OWNERSHIP_CHECKS, METRIC_PAGES_TOUCHED, METRIC_POISON_CHECKS, METRIC_REFAULTS, METRIC_STAMP_CHECKS, NIL, PAGE_SIZE, RUN_RUNNING, metricBase, type Views, METRIC_THP_FALLBACKS, PAGEBLOCK_ORDER, ZONE_ISOLATED_PAGES } from '../shm/layout.js';
import { record } from '../base/hist.js';
import { GuestMemory } from '../mm/memory.js';
import { Rng } from '../base/rng.js';
import { clockMs, waitWhileEquals } from '../locking/sync.js';
import { CM_SLOT_WAIT_NS_TOTAL, CM_SLOT_YIELDS, CpuSlots, slotsInForce } from '../locking/cpu-slots.js';
import { OracleViolation } from '../base/errors.js';
import { CM_ALLOC_FAIL_ISOLATED } from '../mm/reporter-common.js';
import { burn } from '../base/burn.js';
import { DEV_TLB_FLUSH_GEN, createShared } from '../shm/layout.js';
import { NO_HOST_COSTS } from '../mm/host-costs.js';

/** Default per-CPU region of page_fault1 (will-it-scale maps 128 MiB). */
export const PAGE_FAULT1_REGION_BYTES = 128 * 2 ** 20;
/** After an order-0 allocation fails, the CPU waits this long before its workload goes on. */
export const ALLOC_FAIL_BACKOFF_MS = 1;
/** Free page hint: shrink-and-retry rounds after one failed allocation. */
export const SHRINK_RETRIES_MAX = 64;
/** Sharing a thread (--cpu-threads), a CPU reads the clock for its slice's end every this many ops (a read per op would cost more than a fault). */
const SWITCH_CHECK_EVERY = 32;
/** Share of guest memory the CPUs together may hold in page_fault1/churn. */
const WORKING_SHARE = 0.8;

/** Blocks held by one CPU: parallel growable arrays. */
class Held {
  pfn = new Int32Array(1024);
  order = new Uint8Array(1024);
  seq = new Int32Array(1024);
  n = 0;
  pages = 0;
  push(pfn: number, order: number, seq: number): void {
    if (this.n === this.pfn.length) {
      const grow = <T extends Int32Array | Uint8Array>(a: T): T => {
        const b = new (a.constructor as new (n: number) => T)(a.length * 2);
        b.set(a);
        return b;
      };
      this.pfn = grow(this.pfn);
      this.order = grow(this.order);
      this.seq = grow(this.seq);
    }
    this.pfn[this.n] = pfn;
    this.order[this.n] = order;
    this.seq[this.n] = seq;
    this.n++;
    this.pages += 1 << order;
  }
  /** Remove entry i by moving the last one into its place. */
  removeAt(i: number): void {
    this.pages -= 1 << this.order[i];
    this.n--;
    this.pfn[i] = this.pfn[this.n];
    this.order[i] = this.order[this.n];
    this.seq[i] = this.seq[this.n];
  }
}

/**
 * JIT (docs/DESIGN.md §14): run GuestMemory.touch's fault path (first
 * touches, refaults, resident touches) on a small scratch memory of this
 * thread, at no modelled cost. Where every guest page starts host-backed,
 * the first real fault comes with the first discard, seconds into the run;
 * a path V8 never saw by then would deoptimize every CPU thread's hottest
 * code when hinting begins.
 */
function warmFaultPath(hostThp: boolean): void {
  const v = createShared({ cpus: 1, memoryBytes: 4 * 2 ** 20, queueSize: 2, ringAlign: 4 });
  const m = new GuestMemory(v, { ...NO_HOST_COSTS, hostThp });
  const pages = v.layout.pages;
  for (let round = 0; round < 24; round++) {
    for (let p = 0; p < pages; p++) m.touch(p);
    for (let p = 0; p < pages; p++) m.touch(p);
    m.discard(0, pages);
  }
}

export class Cpu {
  readonly mem: GuestMemory;
  readonly rng: Rng;
  readonly m: Float64Array;
  readonly mb: number;
  private seq = 1;
  readonly held = new Held();
  readonly header: Int32Array;
  /** Remote TLB flushes (DEV_TLB_FLUSH_GEN) this CPU has paid for, and what one costs it (host cost model). */
  private tlbSeen: number;
  private readonly tlbFlushIters: number;
  /** --cpu-slots: this CPU runs only while it holds a slot (src/locking/cpu-slots.ts); null: it runs freely. */
  private readonly slots: CpuSlots | null;
  /**
   * --cpu-threads: this CPU shares its thread with other CPUs (src/sim/cpu-host.ts)
   * and gives the thread up between ops once its slice ends or it backs off;
   * false: it has a thread of its own and never yields but to sleep.
   */
  private readonly hosted: boolean;
  private sliceEndMs = 0;
  private countdown = SWITCH_CHECK_EVERY;
  /** Hosted: an order-0 allocation failed; the CPU sleeps until then at its next yield (0: no backoff pending). */
  private backoffUntilMs = 0;

  constructor(
    readonly views: Views,
    readonly zone: Zone,
    readonly cpu: number,
    readonly cfg: WorkloadParams,
    seed: number,
  ) {
    this.mem = new GuestMemory(views);
    this.rng = new Rng(seed);
    this.m = views.metrics;
    this.mb = metricBase(cpu);
    this.header = views.header;
    this.tlbSeen = views.device[DEV_TLB_FLUSH_GEN];
    this.tlbFlushIters = this.mem.costs.tlbFlushIters;
    // Every page starts host-backed (--warm, --poison): no touch faults
    // until the host discards something, so give the fault path its type
    // feedback now, before the run (docs/DESIGN.md §14).
    if (cfg.warm === true || cfg.poison) warmFaultPath(this.mem.costs.hostThp);
    const n = slotsInForce(cfg);
    this.hosted = cpuThreadsInForce(cfg) > 0;
    if (this.hosted && n > 0) throw new Error('cpu: --cpu-slots and --cpu-threads together');
    this.slots = n > 0 ? new CpuSlots(this.header, views.cpuSlots, cpu, cfg.cpus, n, cfg.waitTimeoutMs ?? DEFAULT_CONFIG.waitTimeoutMs, () => Atomics.load(this.header, HDR_RUN_STATE) !== RUN_RUNNING) : null;
  }

  running(): boolean {
    // Every workload loop asks this between ops, where this CPU holds no
    // lock: the one place it may give its slot to a waiting CPU.
    if (this.slots !== null) this.slots.between();
    return Atomics.load(this.header, HDR_RUN_STATE) === RUN_RUNNING;
  }

  /** Hosted (src/sim/cpu-host.ts): the host resumes this CPU for a slice ending at `endMs`. */
  beginSlice(endMs: number): void {
    this.sliceEndMs = endMs;
    this.countdown = SWITCH_CHECK_EVERY;
  }

  /**
   * Between ops: whether this CPU gives its thread to another CPU now (its
   * slice is over, or it backs off). Always false with a thread of its own:
   * one load and a branch on the fault path.
   */
  private switchDue(): boolean {
    if (!this.hosted) return false;
    if (this.backoffUntilMs !== 0) return true;
    if (--this.countdown > 0) return false;
    this.countdown = SWITCH_CHECK_EVERY;
    return performance.now() >= this.sliceEndMs;
  }

  /** What a due switch yields: the backoff's end, or 0 (runnable, the slice is over). */
  private wakeAt(): number {
    const t = this.backoffUntilMs;
    this.backoffUntilMs = 0;
    return t;
  }

  /** Allocate one block, timing it into the alloc-latency histogram. NIL on failure. */
  allocBlock(order: number): number {
    // The host's remote TLB flushes since this CPU last looked: each made
    // this vCPU exit, flush and re-enter (kvm_flush_remote_tlbs' IPI), busy
    // time on this thread. Taken here, at most one op late; arithmetic with
    // no branch (burn() runs its body at least once), so nothing first runs
    // when the first flush comes (docs/DESIGN.md §14).
    const gen = this.views.device[DEV_TLB_FLUSH_GEN];
    burn((gen - this.tlbSeen) * this.tlbFlushIters);
    this.tlbSeen = gen;
    const t0 = performance.now();
    let pfn = this.zone.alloc(order, this.cpu);
    // Free page hint: reclaim from the balloon's shrinker, then retry (src/guest/free-page-hint.ts).
    if (pfn === NIL && this.zone.shrinker !== null) pfn = this.allocAfterShrink(order);
    const ns = (performance.now() - t0) * 1e6;
    const m = this.m;
    const b = this.mb;
    m[b + METRIC_ALLOC_SAMPLES]++;
    m[b + METRIC_ALLOC_NS_TOTAL] += ns;
    if (ns > m[b + METRIC_ALLOC_NS_MAX]) m[b + METRIC_ALLOC_NS_MAX] = ns;
    record(m, b + METRIC_HIST_BASE, ns);
    if (pfn === NIL) {
      m[b + METRIC_ALLOC_FAILS]++;
      // An order-0 failure (nothing smaller to fall back to) while the
      // reporter holds blocks isolated: aeration v1 takes them with no
      // watermark check.
      if (order === 0) {
        if (this.views.zone[ZONE_ISOLATED_PAGES] > 0) m[b + CM_ALLOC_FAIL_ISOLATED]++;
        // Out of memory at order 0: back off before the workload tries
        // again (the kernel's slow path would reclaim, stall, or OOM),
        // instead of spinning on a failing allocation. A bounded wait: a
        // scheduling point under --sched, where a spin would never yield.
        // Sharing a thread, the CPU backs off at its next yield (the op's
        // end), so the other CPUs of its thread run meanwhile.
        if (this.hosted) this.backoffUntilMs = clockMs() + ALLOC_FAIL_BACKOFF_MS;
        else this.idle(ALLOC_FAIL_BACKOFF_MS);
      }
    } else {
      m[b + METRIC_ALLOCS]++;
      if (this.cfg.poison) this.checkPoison(pfn, order);
    }
    return pfn;
  }

  /**
   * The shrinker rule (free page hint): after a failed allocation the CPU asks
   * the balloon's shrinker for blocks and retries; it repeats while the
   * shrinker gives something back (bounded by SHRINK_RETRIES_MAX), so an
   * allocation fails only once the balloon has nothing it can return.
   */
  private allocAfterShrink(order: number): number {
    const shrink = this.zone.shrinker!;
    for (let i = 0; i < SHRINK_RETRIES_MAX; i++) {
      if (shrink(order, this.cpu) === 0) return NIL;
      const pfn = this.zone.alloc(order, this.cpu);
      if (pfn !== NIL) return pfn;
    }
    return NIL;
  }

  /**
   * Page poisoning (check_poison_mem): a free page must still hold the poison
   * pattern when it is allocated again; anything else means someone wrote a
   * free page, or the host handed back zeros for a page the guest poisoned.
   */
  checkPoison(pfn: number, order: number): void {
    const bad = this.mem.checkPoison(pfn, 1 << order, this.cfg.poisonByte);
    this.m[this.mb + METRIC_POISON_CHECKS] += 1 << order;
    if (bad >= 0) {
      const word = this.mem.readWord(bad * (PAGE_SIZE / 4)) >>> 0;
      const why = word === 0 ? 'reads as zeros: the host discarded it and handed back a zero page (PAGE_POISON not honoured?)' : `holds 0x${word.toString(16)}: a free page was written`;
      throw new OracleViolation({ oracle: 'poison', message: `cpu ${this.cpu} allocated pfn ${bad} (block ${pfn} order ${order}) whose poison 0x${this.cfg.poisonByte.toString(16)} is gone: it ${why}`, pfn: bad, cpu: this.cpu });
    }
  }

  /** Largest block <= maxOrder the allocator can give (falls back order by order). */
  allocLargest(maxOrder: number): [number, number] {
    for (let o = maxOrder; o >= 0; o--) {
      const pfn = this.allocBlock(o);
      if (pfn !== NIL) return [pfn, o];
      if (!this.running()) break;
    }
    return [NIL, 0];
  }

  /** Fault in, clear and stamp every page of a block; returns its first seq. */
  touchBlock(pfn: number, order: number): number {
    const mem = this.mem;
    const first = this.seq;
    let refaults = 0;
    let firstTouches = 0;
    const n = 1 << order;
    // Free page hint: the host's write tracking (a fault taken on this vCPU) before the writes.
    const written = this.zone.pagesWritten;
    if (written !== null) written(pfn, n);
    for (let p = pfn; p < pfn + n; p++) {
      // Counted without branches (f is 0, 1 or 2): see GuestMemory.touch on
      // why paths that first run once hinting starts are kept out of here.
      const f = mem.touch(p);
      refaults += f >>> 1;
      firstTouches += f & 1;
      mem.clearPage(p);
      mem.writeStamp(p, this.cpu, this.seq);
      this.seq = (this.seq + 1) | 0;
    }
    const stamped = this.zone.pagesStamped;
    if (stamped !== null) stamped(pfn, n);
    this.m[this.mb + METRIC_PAGES_TOUCHED] += n;
    this.m[this.mb + METRIC_REFAULTS] += refaults;
    this.m[this.mb + METRIC_HOST_FAULTS] += firstTouches;
    return first;
  }

  /** Check the stamps of a held block, then free it. */
  freeBlock(pfn: number, order: number, seq: number): void {
    const n = 1 << order;
    for (let i = 0; i < n; i++) {
      const why = this.mem.checkStamp(pfn + i, this.cpu, (seq + i) | 0);
      if (why !== null) throw new OracleViolation({ oracle: 'stamp', message: `cpu ${this.cpu} pfn ${pfn + i} (block ${pfn} order ${order}): ${why}`, pfn: pfn + i, cpu: this.cpu });
    }
    this.m[this.mb + METRIC_STAMP_CHECKS] += n;
    this.m[this.mb + METRIC_OWNERSHIP_CHECKS]++;
    const freed = this.zone.dataFreed;
    if (freed !== null) freed(pfn, n);
    // kernel_poison_pages() on free: the page holds the pattern until reused.
    if (this.cfg.poison) this.mem.fillPoison(pfn, n, this.cfg.poisonByte);
    this.zone.free(pfn, order, this.cpu);
    this.m[this.mb + METRIC_FREES]++;
  }

  freeAll(): void {
    const h = this.held;
    while (h.n > 0) {
      const i = h.n - 1;
      const pfn = h.pfn[i];
      const order = h.order[i];
      const seq = h.seq[i];
      h.removeAt(i);
      this.freeBlock(pfn, order, seq);
    }
  }

  /**
   * Fault in `pages` pages of a fresh anonymous mapping, one fault at a time,
   * as the kernel does on first touch: with --thp never each 4 KiB page is an
   * order-0 allocation (do_anonymous_page, through this CPU's pcp list); with
   * --thp always each 2 MiB is one order-9 allocation (do_huge_pmd_anonymous_page),
   * and when no order-9 block can be had the range falls back to order-0
   * faults (VM_FAULT_FALLBACK). The mapping is taken as 2 MiB aligned.
   * Returns the pages faulted in; stops early at an allocation failure.
   */
  faultRegion(pages: number, countOps: boolean): number {
    return this.finish(this.faulting(pages, countOps));
  }

  /** faultRegion() as steps: yields between faults. */
  *faulting(pages: number, countOps: boolean): CpuSteps<number> {
    const huge = this.cfg.thp === 'always';
    const hugePages = 1 << PAGEBLOCK_ORDER;
    let got = 0;
    while (got < pages && this.running()) {
      if (this.switchDue()) yield this.wakeAt();
      if (huge && pages - got >= hugePages) {
        const pfn = this.allocBlock(PAGEBLOCK_ORDER);
        if (pfn !== NIL) {
          this.held.push(pfn, PAGEBLOCK_ORDER, this.touchBlock(pfn, PAGEBLOCK_ORDER));
          got += hugePages;
          if (countOps) this.m[this.mb + METRIC_OPS] += hugePages;
          continue;
        }
        this.m[this.mb + METRIC_THP_FALLBACKS]++;
        // Fallback: this 2 MiB range is faulted in a page at a time.
        const end = got + hugePages;
        while (got < end && this.running()) {
          if (this.switchDue()) yield this.wakeAt();
          if (!this.faultPage(countOps)) return got;
          got++;
        }
        continue;
      }
      if (!this.faultPage(countOps)) break;
      got++;
    }
    return got;
  }

  /** One order-0 anonymous fault: allocate, clear, stamp. False if the allocation failed. */
  private faultPage(countOps: boolean): boolean {
    const pfn = this.allocBlock(0);
    if (pfn === NIL) return false;
    this.held.push(pfn, 0, this.touchBlock(pfn, 0));
    if (countOps) this.m[this.mb + METRIC_OPS]++;
    return true;
  }

  /** Allocate up to `pages` pages in the largest blocks available, touching each. Returns pages obtained. */
  fillRegion(pages: number, countOps: boolean): number {
    return this.finish(this.filling(pages, countOps));
  }

  /** fillRegion() as steps: yields between blocks. */
  private *filling(pages: number, countOps: boolean): CpuSteps<number> {
    let got = 0;
    while (got < pages && this.running()) {
      if (this.switchDue()) yield this.wakeAt();
      const want = Math.min(MAX_ORDER - 1, Math.floor(Math.log2(pages - got)));
      const [pfn, order] = this.allocLargest(want);
      if (pfn === NIL) break;
      const seq = this.touchBlock(pfn, order);
      this.held.push(pfn, order, seq);
      got += 1 << order;
      if (countOps) this.m[this.mb + METRIC_OPS] += 1 << order;
    }
    return got;
  }

  /** Idle for `ms` (Infinity: until the run stops) as steps: yields the deadline until it passes. */
  private *idling(ms: number): CpuSteps {
    // clockMs(): logical time when scheduled (--sched), wall time otherwise.
    const deadline = clockMs() + ms;
    // An idle period takes the place of a backoff still pending.
    this.backoffUntilMs = 0;
    while (this.running() && clockMs() < deadline) yield deadline;
  }

  /** Sleep until the run leaves RUNNING or `ms` passes (bounded slices). */
  idle(ms: number): void {
    this.sleepUntil(clockMs() + ms);
  }

  /**
   * Run steps to their end on this CPU's own thread: each yield is a sleep
   * until the time it names (a CPU with a thread of its own yields only to
   * sleep; 0 would be a slice's end, which only a hosted CPU reaches).
   */
  private finish<T>(g: CpuSteps<T>): T {
    for (;;) {
      const r = g.next();
      if (r.done === true) return r.value;
      if (r.value > 0) this.sleepUntil(r.value);
    }
  }

  private sleepUntil(deadline: number): void {
    // A sleeping CPU needs no core: another one runs meanwhile.
    this.slots?.release();
    try {
      this.sleep(deadline);
    } finally {
      this.slots?.acquire();
    }
  }

  private sleep(deadline: number): void {
    while (this.running()) {
      const left = deadline - clockMs();
      if (left <= 0) return;
      const gen = Atomics.load(this.header, HDR_STATE_GEN);
      waitWhileEquals(this.header, HDR_STATE_GEN, gen, Math.min(left, 100), () => !this.running());
    }
  }

  /** Run the workload to the end of the run on this CPU's own thread. */
  run(): void {
    this.finish(this.steps());
  }

  /** The whole workload as steps, from start to the CPU's exit (src/sim/cpu-host.ts runs several on one thread). */
  *steps(): CpuSteps {
    this.slots?.acquire();
    try {
      switch (this.cfg.workload) {
        case 'page_fault1':
          yield* this.pageFault1();
          break;
        case 'memfill':
          yield* this.memfill();
          break;
        case 'churn':
          yield* this.churn();
          break;
        case 'memhog':
          yield* this.memhog();
          break;
        case 'fragment':
          yield* this.fragment();
          break;
      }
      // Process exit: give everything back and empty the pcp list so the
      // end-of-run checks see a quiescent zone.
      this.freeAll();
    } finally {
      this.zone.drainPcp(this.cpu);
      if (this.slots !== null) {
        this.slots.release();
        this.m[this.mb + CM_SLOT_YIELDS] = this.slots.stats.yields;
        this.m[this.mb + CM_SLOT_WAIT_NS_TOTAL] = this.slots.stats.waitNsTotal;
      }
    }
  }

  /** Pages this CPU may hold at once (its share of WORKING_SHARE of guest memory). */
  sharePages(share = WORKING_SHARE): number {
    return Math.max(1, Math.floor((this.views.layout.pages * share) / this.cfg.cpus));
  }

  /** Pages of one page_fault1 / memfill iteration: --region, or 128 MiB scaled down to this CPU's share. */
  regionPages(): number {
    return this.cfg.regionBytes > 0 ? this.cfg.regionBytes / PAGE_SIZE : Math.min(PAGE_FAULT1_REGION_BYTES / PAGE_SIZE, this.sharePages());
  }

  // will-it-scale page_fault1: mmap a region, write one byte of every page
  // (a fault each: order 0, or order 9 with --thp always), munmap it; ops =
  // pages touched (will-it-scale's iterations).
  private *pageFault1(): CpuSteps {
    const regionPages = this.regionPages();
    while (this.running()) {
      yield* this.faulting(regionPages, true);
      this.freeAll();
      this.m[this.mb + METRIC_LOOPS]++;
    }
  }

  // A memhog-like fill in a loop: allocate the region in the largest free
  // blocks (up to order 10), touch every page, free it all, repeat; ops =
  // pages touched. Not what a process's page faults do (see page_fault1):
  // it takes big blocks straight off the free lists, the shape that
  // exercises reporting hardest.
  private *memfill(): CpuSteps {
    const regionPages = this.regionPages();
    while (this.running()) {
      yield* this.filling(regionPages, true);
      this.freeAll();
      this.m[this.mb + METRIC_LOOPS]++;
    }
  }

  // Random orders weighted to small (P(order = k) = 2^-(k+1)), random lifetimes
  // (1..255 ticks) kept on a timing wheel; ops = allocations.
  private *churn(): CpuSteps {
    const WHEEL = 256;
    const slotOf = new Int32Array(1024);
    let slotCap = 1024;
    let slots = slotOf;
    const h = this.held;
    const cap = this.sharePages();
    for (let tick = 0; this.running(); tick++) {
      if (this.switchDue()) yield this.wakeAt();
      const now = tick % WHEEL;
      // Free every block whose lifetime ends now.
      for (let i = h.n - 1; i >= 0; i--) {
        if (slots[i] !== now) continue;
        const pfn = h.pfn[i];
        const order = h.order[i];
        const seq = h.seq[i];
        h.removeAt(i);
        slots[i] = slots[h.n];
        this.freeBlock(pfn, order, seq);
      }
      const r = this.rng.next();
      const order = Math.min(MAX_ORDER - 1, Math.clz32(r) === 32 ? MAX_ORDER - 1 : Math.clz32(r));
      if (h.pages + (1 << order) > cap) continue;
      const pfn = this.allocBlock(order);
      if (pfn === NIL) continue;
      const seq = this.touchBlock(pfn, order);
      if (h.n === slotCap) {
        const bigger = new Int32Array(slotCap * 2);
        bigger.set(slots);
        slots = bigger;
        slotCap *= 2;
      }
      slots[h.n] = (now + 1 + this.rng.below(WHEEL - 1)) % WHEEL;
      h.push(pfn, order, seq);
      this.m[this.mb + METRIC_OPS]++;
    }
  }

  // memhog (numactl): map a share of memory, touch it (faults as
  // page_fault1's), hold it, free it all, then idle to the end (the memhog
  // check of the aeration cover letter); ops = pages touched.
  private *memhog(): CpuSteps {
    const target = Math.floor((this.views.layout.pages * this.cfg.hogShare) / this.cfg.cpus);
    yield* this.faulting(target, true);
    yield* this.idling(this.cfg.holdMs);
    this.freeAll();
    this.m[this.mb + METRIC_LOOPS]++;
    yield* this.idling(Infinity);
  }

  // Leave memory scattered: take order-0 pages up to the CPU's share, free
  // every other one (no buddy can merge), then keep swapping random held pages
  // for new order-0 pages; ops = allocations.
  private *fragment(): CpuSteps {
    const h = this.held;
    const cap = this.sharePages();
    while (h.pages < cap && this.running()) {
      if (this.switchDue()) yield this.wakeAt();
      const pfn = this.allocBlock(0);
      if (pfn === NIL) break;
      h.push(pfn, 0, this.touchBlock(pfn, 0));
      this.m[this.mb + METRIC_OPS]++;
    }
    // Free every other page by pfn so the holes cannot merge.
    for (let i = h.n - 1; i >= 0 && this.running(); i--) {
      if (this.switchDue()) yield this.wakeAt();
      if ((h.pfn[i] & 1) === 0) continue;
      const pfn = h.pfn[i];
      const seq = h.seq[i];
      h.removeAt(i);
      this.freeBlock(pfn, 0, seq);
    }
    while (this.running()) {
      if (this.switchDue()) yield this.wakeAt();
      if (h.n > 0) {
        const i = this.rng.below(h.n);
        const pfn = h.pfn[i];
        const order = h.order[i];
        const seq = h.seq[i];
        h.removeAt(i);
        this.freeBlock(pfn, order, seq);
      }
      const pfn = this.allocBlock(0);
      if (pfn === NIL) continue;
      h.push(pfn, 0, this.touchBlock(pfn, 0));
      this.m[this.mb + METRIC_OPS]++;
    }
  }
}

// --cpu-slots N: at most N simulated CPUs run at once, switched only between
// ops (docs/DESIGN.md §4).
//
// Why: a kernel CPU that holds a spinlock cannot be preempted (spin_lock()
// disables preemption), so a zone lock hold lasts as long as its work. Our
// CPUs are threads, and with more CPUs than host cores the host's scheduler
// preempts a thread wherever it happens to be, inside a zone lock hold too;
// every other CPU that needs the zone then sleeps until the holder gets a
// core back (milliseconds: lock-holder preemption, as in an overcommitted
// VM). With slots, a CPU thread runs only while it holds one of N slots and
// gives its slot up only between ops, where it holds no lock; the host's
// scheduler then has at most N CPU threads to run (plus the reporter, the
// device and main, which take no slot), so with N = the host's cores a
// slotted CPU keeps its core through its lock holds.
//
// The slots are a FIFO ticket semaphore on two header words: a CPU takes a
// ticket (HDR_SLOT_TICKET) and runs once fewer than N earlier tickets are
// still unreleased (ticket < HDR_SLOT_RELEASED + N). A CPU yields once its
// slice (CPU_SLOT_SLICE_MS) has run out and another CPU waits, by releasing
// and taking a new ticket at the back of the queue. A release wakes only the
// CPU whose ticket it lets in (the ticket map says which), on that CPU's own
// wake word: waking every waiter would put them all on the host's run queue
// at each release, the preemption the slots are there to avoid.
//
// Simplified: only CPU threads take slots; the reporter, the device and main
// run freely (they sleep most of the time). HDR_SLOT_HOLDERS counts the
// holders and is asserted to stay within N.

import { availableParallelism } from 'node:os';
import { HDR_SLOT_HOLDERS, HDR_SLOT_RELEASED, HDR_SLOT_TICKET, METRIC_EXTRA, SLOT_WAKE_BASE, slotMapBase, slotMapSize } from '../shm/layout.js';
import { LivenessError } from './sync.js';

/** --cpu-slots auto and --cpu-threads auto: as many as the host has cores, at most `cpus`. */
export const autoCpuBound = (cpus: number): number => Math.min(availableParallelism(), cpus);

/** A bound on the CPUs running at once (--cpu-slots, --cpu-threads) that constrains anything: N when 0 < N < cpus, else 0 (N = cpus lets every CPU run). */
export const cpuBoundInForce = (n: number | undefined, cpus: number): number => (n !== undefined && n > 0 && n < cpus ? n : 0);

/** The slots in force (cpuBoundInForce of --cpu-slots). */
export const slotsInForce = (c: { cpus: number; cpuSlots?: number }): number => cpuBoundInForce(c.cpuSlots, c.cpus);

/** CPU metrics (the CPU's slot, written at its end): slots given up to a waiting CPU, and time waited for one. */
export const CM_SLOT_YIELDS = METRIC_EXTRA + 24;
export const CM_SLOT_WAIT_NS_TOTAL = METRIC_EXTRA + 25;
/**
 * A slot holder's turn before it yields to a waiting CPU. Nothing in the
 * kernel matches it (a kernel CPU is never switched out for another); it
 * only sets how often the simulator pays a handoff, and a handoff wakes a
 * sleeping thread that must then find a core on a busy host: on the 2-core
 * development machine `perf sched latency` averaged 2.9 ms between a
 * thread's wakeup and its running, and with 3 ms slices (the host
 * scheduler's own slice, the first choice) the CPU threads of an 8-CPU
 * page_fault1 run used 6.9 to 7.4 of its 10 core-seconds (9.1 to 9.2 at 2
 * CPUs). 20 ms: 5 interleaved rounds of 5 s gave 8 vs 2 CPUs 0.744 (median)
 * against 0.660 at 3 ms (docs/BENCHMARKS.md, kernel paths).
 */
export const CPU_SLOT_SLICE_MS = 20;
/** Yield checks are this many between-op calls apart (a clock read each time would cost more than the op). */
const CHECK_EVERY = 32;
/** Wait slices: a stop of the run is noticed within this. */
const WAIT_SLICE_MS = 50;

export interface CpuSlotStats {
  /** Slots given up to a waiting CPU. */
  yields: number;
  /** Time spent waiting for a slot (the first wait, at the start, included), ns. */
  waitNsTotal: number;
}

export class CpuSlots {
  private held = false;
  private ticket = 0;
  private sliceEndMs = 0;
  private countdown = CHECK_EVERY;
  private readonly mapBase: number;
  private readonly mapSize: number;
  readonly stats: CpuSlotStats = { yields: 0, waitNsTotal: 0 };

  constructor(
    private readonly h: Int32Array,
    /** The cpu-slots region: wake words and the ticket map. */
    private readonly w: Int32Array,
    private readonly cpu: number,
    cpus: number,
    /** N, at least 1. */
    private readonly slots: number,
    private readonly waitTimeoutMs: number,
    /** True once the run stops: a waiter then goes on without a slot (nothing is measured any more). */
    private readonly stopped: () => boolean,
  ) {
    if (!(slots >= 1 && slots <= cpus)) throw new Error(`cpu slots: ${slots} for ${cpus} CPUs`);
    this.mapBase = slotMapBase(cpus);
    this.mapSize = slotMapSize(cpus);
  }

  /** Take a ticket and wait (bounded) for its turn. */
  acquire(): void {
    this.takeTicket();
    this.waitTurn();
  }

  /** The first half of acquire(): a place in the queue. */
  takeTicket(): void {
    if (this.held) throw new Error('cpu slots: acquire while holding a slot');
    // The RMW orders this ticket after every earlier one; tickets wrap with the int32.
    const ticket = (this.ticket = Atomics.add(this.h, HDR_SLOT_TICKET, 1));
    // PUBLISH: who holds this ticket, before reading HDR_SLOT_RELEASED. The
    // releaser adds to HDR_SLOT_RELEASED before it reads the map: with both
    // seq-cst, either we see its release or it sees our entry and wakes us.
    Atomics.store(this.w, this.mapBase + (ticket >>> 0) % this.mapSize, this.cpu + 1);
  }

  /** Whether this CPU's ticket is let in: fewer than N earlier tickets unreleased. */
  admitted(): boolean {
    // ACQUIRE: the release that let this ticket in came after its holder's last op.
    return ((this.ticket - Atomics.load(this.h, HDR_SLOT_RELEASED)) | 0) < this.slots;
  }

  /** The second half of acquire(): sleep on this CPU's wake word until the ticket is let in (bounded). */
  waitTurn(): void {
    const { h, w } = this;
    const wake = SLOT_WAKE_BASE + this.cpu;
    const t0 = performance.now();
    const deadline = t0 + this.waitTimeoutMs;
    for (;;) {
      const seen = Atomics.load(w, wake);
      if (this.admitted()) break;
      if (this.stopped()) break;
      const left = deadline - performance.now();
      if (left <= 0) throw new LivenessError(`cpu slots: cpu ${this.cpu}'s ticket ${this.ticket} not served within ${this.waitTimeoutMs} ms (released ${Atomics.load(h, HDR_SLOT_RELEASED)}, ${this.slots} slots)`);
      Atomics.wait(w, wake, seen, Math.min(left, WAIT_SLICE_MS));
    }
    this.held = true;
    // The semaphore's invariant (not checked once the run stops: a stopped waiter goes on without its turn).
    const holders = Atomics.add(h, HDR_SLOT_HOLDERS, 1) + 1;
    if (holders > this.slots && !this.stopped()) throw new Error(`cpu slots: ${holders} CPUs hold one of ${this.slots} slots (cpu ${this.cpu}, ticket ${this.ticket})`);
    this.stats.waitNsTotal += (performance.now() - t0) * 1e6;
    this.sliceEndMs = performance.now() + CPU_SLOT_SLICE_MS;
  }

  /** Give the slot back (between ops, or when the CPU stops or sleeps). */
  release(): void {
    if (!this.held) return;
    this.held = false;
    const { h, w } = this;
    Atomics.sub(h, HDR_SLOT_HOLDERS, 1);
    const released = Atomics.add(h, HDR_SLOT_RELEASED, 1) + 1;
    // The ticket this release lets in, if one was taken: wake its holder only
    // (a stale map entry wakes another CPU, which finds it is not its turn).
    const next = (released + this.slots - 1) | 0;
    if (((Atomics.load(h, HDR_SLOT_TICKET) - next) | 0) <= 0) return;
    const c = Atomics.load(w, this.mapBase + (next >>> 0) % this.mapSize) - 1;
    if (c < 0) return;
    // WAKE: the waiter re-reads HDR_SLOT_RELEASED after its wake word changes.
    Atomics.add(w, SLOT_WAKE_BASE + c, 1);
    Atomics.notify(w, SLOT_WAKE_BASE + c, 1);
  }

  /** Between ops (no lock held): once the slice has run out and another CPU waits, go to the back of the queue. */
  between(): void {
    if (!this.held || --this.countdown > 0) return;
    this.countdown = CHECK_EVERY;
    const now = performance.now();
    if (now < this.sliceEndMs) return;
    const h = this.h;
    // Tickets taken beyond those let in: CPUs waiting for a slot.
    const waiting = (Atomics.load(h, HDR_SLOT_TICKET) - Atomics.load(h, HDR_SLOT_RELEASED) - this.slots) | 0;
    if (waiting <= 0) {
      this.sliceEndMs = now + CPU_SLOT_SLICE_MS;
      return;
    }
    this.stats.yields++;
    this.release();
    this.acquire();
  }
}

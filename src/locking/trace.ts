// Event tracing (--trace): what each thread did, when, for a timeline
// (Chrome trace-event JSON, written by src/sim/trace-export.ts; opens in
// ui.perfetto.dev and chrome://tracing).
//
// Recording: every thread owns one ring of fixed size in the shared buffer
// (region `trace`, src/shm/layout.ts) and writes it with plain stores, the
// oldest record overwritten first, so tracing never grows memory however
// long the run. A record is [ts, dur, kind, a, b, c] (Float64): a slice
// (dur >= 0) or an instant (dur -1), one of the TK_* kinds below with up to
// three numeric arguments. Nothing is formatted on the hot path.
//
// Off: no ring exists (0 bytes) and every event site costs one check, `tracer
// !== null` on this module's per-thread binding (module state is per worker,
// as the scheduler's in sync.ts). Lock events cost no check of their own:
// they come through the lock observer (TraceLockObserver), the one null check
// the lock path already pays for lock statistics.
//
// Clock: performance.now() of a thread plus performance.timeOrigin is the
// common wall clock of every thread of the process (milliseconds since the
// epoch, sub-microsecond resolution); main writes that clock's value at
// set-up into the region (TRACE_ORIGIN_MS) and each thread keeps the constant
// timeOrigin - origin, so a timestamp is (now() + that) in microseconds since
// the run's set-up began, comparable across threads and monotonic within one.
// Under --sched only one thread runs at a time, so the timestamps order the
// events exactly as the schedule interleaved them.

import { TE_A, TE_B, TE_C, TE_DUR_US, TE_KIND, TE_TS_US, TRACE_EVENT_WORDS, TRACE_ORIGIN_MS, TRACE_PUBLISHED, TRACE_RING_COUNT, TRACE_RING_HDR_WORDS, traceRingBase, type Views } from '../shm/layout.js';
import type { LockObserver } from './sync.js';

// ---- event kinds (stable ids: they are stored in the rings) ----
/** Slice: a lock held. a lock instance, b call site (SITE_*). */
export const TK_LOCK_HOLD = 1;
/** Slice: waiting for a lock (contended). a lock instance, b call site, c the holder's thread when the wait began (-1: unknown). */
export const TK_LOCK_WAIT = 2;
/** Instant: a CPU (or the balloon) took a block. a pfn, b order. */
export const TK_ALLOC = 3;
/** Instant: a block freed by its owner. a pfn, b order. */
export const TK_FREE = 4;
/** Instant: the reporter isolated a free block for a report. a pfn, b order. */
export const TK_ISOLATE = 5;
/** Instant: the reporter put an isolated block back on its free list. a pfn, b order, c 1 if flagged Reported. */
export const TK_PUTBACK = 6;
/** Slice: one report, from the send to the device's acknowledgement. a blocks, b pages, c 1 ok / 0 failed. */
export const TK_REPORT = 7;
/** Slice: one reporting pass (page_reporting_process). */
export const TK_PASS = 8;
/** Slice: the device handling one chain, from its pop to its used push. a head descriptor, b descriptors. */
export const TK_CHAIN = 9;
/** Instant: the device validated a guest range and is about to act on it (the device-allocated-range check). a pfn, b pages. */
export const TK_RANGE = 10;
/** Slice: the device discarding a run of pages. a pfn, b pages, c pages dropped from RSS. */
export const TK_DISCARD = 11;
/** Instant: the device pushed a used element. a head descriptor, b 1 if it interrupted the driver. */
export const TK_PUSH = 12;
/** Slice: one free page hint run of the driver. a cmd id, b blocks sent, c how it ended (HM_END_* offset: 0 alloc failed, 1 new id, 2 other). */
export const TK_HINT_RUN = 13;
/** Instant: the hint driver sent a block. a pfn, b order. */
export const TK_HINT_BLOCK = 14;
/** Instant: the hint driver handled DONE. a blocks freed. */
export const TK_HINT_DONE = 15;
/** Instant: the hint device's command. a 1 start (new cmd id), 2 STOP seen, 3 DONE written; b cmd id. */
export const TK_HINT_CMD = 16;
/** Instant: the scheduler handed the run token on (--sched). a step, b next thread, c point kind (SP_*) * 2^32 + object. */
export const TK_SCHED = 17;
/** Instant: an oracle violation found by this thread. a oracle index (ORACLES), b pfn (-1: none), c cpu (-1: none). */
export const TK_VIOLATION = 18;
/** Instant: main published a run state (RUN_*). a state. */
export const TK_PHASE = 19;
/** Slice: main's structural checks (free lists, conservation) under the zone lock. */
export const TK_CHECK = 20;
/** Counter sample (main): a host RSS bytes, b guest free bytes, c reported free bytes. */
export const TK_COUNTER_MEM = 21;
/** Counter sample (main), one per order at the same timestamp: a order, b nr_free, c nr_reported. */
export const TK_COUNTER_NR_FREE = 22;
/** Instant: the device counted bad guest input. a kind index (BAD_KINDS). */
export const TK_BAD_INPUT = 23;
/** Instant: the free page hint shrinker freed balloon blocks. a blocks, b 1 from reclaim below the low watermark, 2 after a failed allocation. */
export const TK_SHRINK = 24;
/** Instant: a vCPU took userfaultfd write-protect faults (--hint-uffd-wp). a first pfn, b pages that faulted. */
export const TK_WP_FAULT = 25;
/** Instant: the hint device's write-tracking check (--hint-uffd-wp). a pfn, b pages, c pages skipped (written since the run started). */
export const TK_WP_CHECK = 26;
/** Instant: QEMU's migration bitmap sync (--hint-device qemu). a round, b pages sent in the round that ended, c pages harvested from the dirty log. */
export const TK_MIG_SYNC = 27;
/** Instant: a device fault acted (--device-faults). a kind index (DEVICE_FAULT_KINDS). */
export const TK_FAULT = 28;
/** Slice: a hostile guest's burst (--hostile), from its publication to the oracle's check. a avail entries. */
export const TK_HOSTILE = 29;
export const TK_COUNT = 30;

/** Ends of a hint run, in TK_HINT_RUN's c. */
export const HINT_END_NAMES = ['allocation failed', 'new cmd id', 'other'];

/**
 * One thread's writer: its ring, its clock offset. Construct it once the
 * main thread has written the origin (before any role starts).
 */
export class TraceWriter {
  private readonly ev: Float64Array;
  private readonly countIdx: number;
  private readonly first: number;
  private readonly cap: number;
  private slot = 0;
  private n = 0;
  /** performance.timeOrigin - the run's origin, ms: added to performance.now(). */
  readonly offsetMs: number;

  constructor(
    private readonly views: Views,
    readonly thread: number,
  ) {
    const events = views.layout.params.traceEvents ?? 0;
    if (events <= 0 || views.trace.length === 0) throw new Error('trace: the layout has no trace region (--trace is off)');
    this.ev = views.trace;
    this.cap = events;
    this.countIdx = traceRingBase(thread, events) + TRACE_RING_COUNT;
    this.first = traceRingBase(thread, events) + TRACE_RING_HDR_WORDS;
    this.offsetMs = performance.timeOrigin - views.traceCtlF64[TRACE_ORIGIN_MS];
    // A buffer reused across runs starts zeroed (createShared), a fresh one is zero: count 0.
    this.n = this.ev[this.countIdx];
    this.slot = this.n % this.cap;
  }

  /** Microseconds since the run's origin, on the common clock. */
  nowUs(): number {
    return (performance.now() + this.offsetMs) * 1000;
  }

  /** A performance.now() value of this thread, in microseconds since the origin. */
  usOf(ms: number): number {
    return (ms + this.offsetMs) * 1000;
  }

  /** One record; the oldest one is overwritten once the ring is full. */
  emit(kind: number, tsUs: number, durUs: number, a: number, b: number, c: number): void {
    const ev = this.ev;
    const i = this.first + this.slot * TRACE_EVENT_WORDS;
    ev[i + TE_TS_US] = tsUs;
    ev[i + TE_DUR_US] = durUs;
    ev[i + TE_KIND] = kind;
    ev[i + TE_A] = a;
    ev[i + TE_B] = b;
    ev[i + TE_C] = c;
    if (++this.slot === this.cap) this.slot = 0;
    // Plain store after the record: a reader of a thread still running (a
    // hung run) sees at worst the record being overwritten; after
    // publish() everything is ordered.
    ev[this.countIdx] = ++this.n;
  }

  instant(kind: number, a = 0, b = 0, c = 0): void {
    this.emit(kind, this.nowUs(), -1, a, b, c);
  }

  /** A slice from `t0Us` (nowUs() taken earlier) to now. */
  since(kind: number, t0Us: number, a = 0, b = 0, c = 0): void {
    const t = this.nowUs();
    this.emit(kind, t0Us, t - t0Us, a, b, c);
  }

  /** After this thread's last event: publish the ring's plain stores (seq-cst RMW; main Atomics.loads the word first). */
  publish(): void {
    Atomics.add(this.views.traceCtl, TRACE_PUBLISHED, 1);
  }
}

/** This thread's writer, or null when tracing is off (the one check at every event site). */
export let tracer: TraceWriter | null = null;

/** Install (or remove, with null) this thread's writer. */
export function setTracer(w: TraceWriter | null): void {
  tracer = w;
}

/** Main, at set-up, before any role starts: the origin every thread's timestamps count from. */
export function initTraceOrigin(views: Views): void {
  views.traceCtlF64[TRACE_ORIGIN_MS] = performance.timeOrigin + performance.now();
}

/**
 * Lock holds and waits as trace slices, through the lock observer hook
 * (src/locking/sync.ts): a hold is recorded when it ends, from the
 * acquisition to the release, a wait from the failed fast path to the
 * acquisition. `next` (lock statistics, when both are on) sees every call first.
 */
export class TraceLockObserver implements LockObserver {
  private readonly heldSinceUs: Float64Array;
  private readonly site: Int32Array;

  constructor(
    private readonly w: TraceWriter,
    locks: number,
    private readonly next: LockObserver | null,
  ) {
    this.heldSinceUs = new Float64Array(locks);
    this.site = new Int32Array(locks);
  }

  acquired(lock: number, site: number, prevOwner: number): void {
    if (this.next !== null) this.next.acquired(lock, site, prevOwner);
    this.site[lock] = site;
    this.heldSinceUs[lock] = this.w.nowUs();
  }

  acquiredContended(lock: number, site: number, prevOwner: number, waitStartMs: number, holderAtWait: number, holderSiteAtWait: number): void {
    if (this.next !== null) this.next.acquiredContended(lock, site, prevOwner, waitStartMs, holderAtWait, holderSiteAtWait);
    const now = this.w.nowUs();
    const t0 = this.w.usOf(waitStartMs);
    this.w.emit(TK_LOCK_WAIT, t0, now - t0, lock, site, holderAtWait);
    this.site[lock] = site;
    this.heldSinceUs[lock] = now;
  }

  released(lock: number, releasedAtMs: number): void {
    if (this.next !== null) this.next.released(lock, releasedAtMs);
    const t0 = this.heldSinceUs[lock];
    this.w.emit(TK_LOCK_HOLD, t0, this.w.usOf(releasedAtMs) - t0, lock, this.site[lock], 0);
  }
}

/** One raw record read back from a ring. */
export interface RawTraceEvent {
  tsUs: number;
  durUs: number;
  kind: number;
  a: number;
  b: number;
  c: number;
}

/** What main reads back: per thread, its last records in the order written, and how many older ones were overwritten. */
export interface RawTrace {
  events: number;
  threads: { thread: number; written: number; overwritten: number; records: RawTraceEvent[] }[];
}

/** Main, after the roles returned: every ring's records, oldest first. */
export function readTrace(views: Views): RawTrace {
  const events = views.layout.params.traceEvents ?? 0;
  const out: RawTrace = { events, threads: [] };
  if (events <= 0 || views.trace.length === 0) return out;
  // Acquire: pairs with each thread's publish().
  Atomics.load(views.traceCtl, TRACE_PUBLISHED);
  const ev = views.trace;
  for (let t = 0; t < views.layout.threads; t++) {
    const base = traceRingBase(t, events);
    const written = ev[base + TRACE_RING_COUNT];
    const kept = Math.min(written, events);
    const records: RawTraceEvent[] = [];
    for (let k = written - kept; k < written; k++) {
      const i = base + TRACE_RING_HDR_WORDS + (k % events) * TRACE_EVENT_WORDS;
      records.push({ tsUs: ev[i + TE_TS_US], durUs: ev[i + TE_DUR_US], kind: ev[i + TE_KIND], a: ev[i + TE_A], b: ev[i + TE_B], c: ev[i + TE_C] });
    }
    out.threads.push({ thread: t, written, overwritten: written - kept, records });
  }
  return out;
}

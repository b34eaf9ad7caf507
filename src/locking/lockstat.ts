// Lock statistics (docs/DESIGN.md §7), after the kernel's CONFIG_LOCK_STAT
// (kernel/locking/lockdep.c __lock_contended/__lock_acquired, lockdep_proc.c).
//
// Recording: each thread owns one slot per lock class (layout LS_* fields)
// and writes it with plain stores: no atomics, no sharing, so the hot path is
// a handful of loads/stores and two performance.now() calls (acquire and
// release, for the hold time). An acquisition is counted when it is released
// (the bookkeeping runs after the unlock); a lock still held when a thread
// ends is not counted. With --lockstat off no observer is installed
// and the lock path pays one null check (src/locking/sync.ts).
//
// Semantics, as lock_stat defines them:
//   acquisitions   every successful lock/trylock
//   contentions    acquisitions whose fast path failed (the thread had to wait)
//   con-bounces    contentions while the lock was held by another thread
//                  (kernel: lock->cpu != this cpu at lock_contended())
//   acq-bounces    acquisitions whose previous holder was another thread
//                  (kernel: lock->cpu != this cpu at lock_acquired())
//   wait time      from the failed fast path to holding the lock
//   hold time      from holding the lock to the release (timed just after the
//                  releasing RMW, before any wake-up)
//   contention points  the waiter's call site, per contention
//   contending points  the holder's call site when the waiter began to wait
//                  (read from LOCK_SITE in the lock's line, which the holder
//                  stores after it acquires: the kernel's lock->ip)
// Threads stand for CPUs, so "another thread" is lock_stat's "another CPU".
// A waiter cannot be the holder, yet con-bounces can be a little below
// contentions: the holder writes LOCK_OWNER just after its CAS (as the kernel
// sets lock->cpu in lock_acquired(), after the hardware acquisition), so a
// waiter arriving in that window reads the previous holder, maybe itself.
//
// Reading: main sums the slots of every thread after the roles stopped
// (collectLockStats). Histograms reuse src/base/hist.ts: log2 buckets split in 4
// linear sub-buckets (finer than lock_stat's plain log2; percentiles are the
// upper bound of the bucket holding the rank, clamped to the observed max).

import { siteName } from './sites.js';
import { HIST_BUCKETS, accumulate, bucketHigh, bucketLow, bucketOf, percentile } from '../base/hist.js';
import {
  HDR_LOCKSTAT_PUBLISHED,
  LOCK_CLASSES,
  LOCK_LINE_WORDS,
  LOCK_SITE,
  LOCKSTAT_SITES,
  LS_ACQUISITIONS,
  LS_ACQ_BOUNCES,
  LS_CONTENDING_POINT,
  LS_CONTENTIONS,
  LS_CONTENTION_POINT,
  LS_CON_BOUNCES,
  LS_HOLDS,
  LS_HOLD_HIST,
  LS_HOLD_NS_MAX,
  LS_HOLD_NS_MIN,
  LS_HOLD_NS_TOTAL,
  LS_WAIT_HIST,
  LS_WAIT_NS_MAX,
  LS_WAIT_NS_MIN,
  LS_WAIT_NS_TOTAL,
  lockClassOf,
  lockstatBase,
  type Views,
} from '../shm/layout.js';
import type { LockObserver } from './sync.js';

/** lock_stat shows up to 4 contention and 4 contending points per class (LOCKSTAT_POINTS). */
export const LOCKSTAT_POINTS = 4;

const NS_PER_MS = 1e6;

/**
 * bucketOf() from src/base/hist.ts without Math.log2 and 2**e (the hot path calls
 * it on every wait and hold): for 4 <= v < 2^31 the octave is the top set bit
 * of floor(v) and the sub-bucket its next two bits, which is what bucketOf's
 * float arithmetic computes (tested against it). Other values take bucketOf.
 */
export function fastBucketOf(v: number): number {
  if (v >= 4 && v < 2147483648) {
    const vi = v >>> 0;
    const e = 31 - Math.clz32(vi);
    return (e << 2) + ((vi - (1 << e)) >>> (e - 2));
  }
  return bucketOf(v);
}

/**
 * Per-thread recorder: install as `sync.observer` when --lockstat is on.
 * While the lock is held it only notes what it needs (one clock read and a
 * few stores into thread-local arrays, plus the LOCK_SITE store waiters read);
 * all counting happens in released(), after the lock is free again, so the
 * instrumentation stretches the critical section as little as possible (a
 * longer hold means more contention, which would distort what we measure).
 */
export class LockStat implements LockObserver {
  private readonly ls: Float64Array;
  private readonly locks: Int32Array;
  /** Float64 index of this thread's slot for each lock instance's class. */
  private readonly slotOfLock: Int32Array;
  // Per lock instance, about this thread's current hold (a thread holds an
  // instance at most once at a time: the locks are not recursive).
  /** performance.now() when the lock was taken: hold start, and wait end. */
  private readonly heldSinceMs: Float64Array;
  /** performance.now() when the wait began; -1 if the lock was taken without waiting. */
  private readonly waitStartMs: Float64Array;
  private readonly site: Int32Array;
  private readonly prevOwner: Int32Array;
  private readonly holderAtWait: Int32Array;
  private readonly holderSiteAtWait: Int32Array;

  constructor(
    readonly views: Views,
    readonly threadId: number,
  ) {
    const l = views.layout;
    this.ls = views.lockstat;
    this.locks = views.locks;
    this.slotOfLock = new Int32Array(l.locks);
    for (let i = 0; i < l.locks; i++) this.slotOfLock[i] = lockstatBase(lockClassOf(i), threadId, l.threads);
    this.heldSinceMs = new Float64Array(l.locks);
    this.waitStartMs = new Float64Array(l.locks);
    this.site = new Int32Array(l.locks);
    this.prevOwner = new Int32Array(l.locks);
    this.holderAtWait = new Int32Array(l.locks);
    this.holderSiteAtWait = new Int32Array(l.locks);
  }

  acquired(lock: number, site: number, prevOwner: number): void {
    // Holder's site for waiters' contending points: a plain store by the holder.
    this.locks[lock * LOCK_LINE_WORDS + LOCK_SITE] = site;
    this.site[lock] = site;
    this.prevOwner[lock] = prevOwner;
    this.waitStartMs[lock] = -1;
    this.heldSinceMs[lock] = performance.now();
  }

  acquiredContended(lock: number, site: number, prevOwner: number, waitStartMs: number, holderAtWait: number, holderSiteAtWait: number): void {
    this.locks[lock * LOCK_LINE_WORDS + LOCK_SITE] = site;
    this.site[lock] = site;
    this.prevOwner[lock] = prevOwner;
    this.waitStartMs[lock] = waitStartMs;
    this.holderAtWait[lock] = holderAtWait;
    this.holderSiteAtWait[lock] = holderSiteAtWait;
    this.heldSinceMs[lock] = performance.now();
  }

  released(lock: number, releasedAtMs: number): void {
    const ls = this.ls;
    const b = this.slotOfLock[lock];
    const heldSince = this.heldSinceMs[lock];
    ls[b + LS_ACQUISITIONS]++;
    const prev = this.prevOwner[lock];
    if (prev >= 0 && prev !== this.threadId) ls[b + LS_ACQ_BOUNCES]++;
    const waitStart = this.waitStartMs[lock];
    if (waitStart >= 0) {
      const waitNs = (heldSince - waitStart) * NS_PER_MS;
      const n = ls[b + LS_CONTENTIONS]++;
      if (this.holderAtWait[lock] !== this.threadId) ls[b + LS_CON_BOUNCES]++;
      if (n === 0 || waitNs < ls[b + LS_WAIT_NS_MIN]) ls[b + LS_WAIT_NS_MIN] = waitNs;
      if (waitNs > ls[b + LS_WAIT_NS_MAX]) ls[b + LS_WAIT_NS_MAX] = waitNs;
      ls[b + LS_WAIT_NS_TOTAL] += waitNs;
      ls[b + LS_WAIT_HIST + fastBucketOf(waitNs)]++;
      const site = this.site[lock];
      const holderSite = this.holderSiteAtWait[lock];
      ls[b + LS_CONTENTION_POINT + (site >>> 0 < LOCKSTAT_SITES ? site : 0)]++;
      ls[b + LS_CONTENDING_POINT + (holderSite >>> 0 < LOCKSTAT_SITES ? holderSite : 0)]++;
    }
    const holdNs = (releasedAtMs - heldSince) * NS_PER_MS;
    const h = ls[b + LS_HOLDS]++;
    if (h === 0 || holdNs < ls[b + LS_HOLD_NS_MIN]) ls[b + LS_HOLD_NS_MIN] = holdNs;
    if (holdNs > ls[b + LS_HOLD_NS_MAX]) ls[b + LS_HOLD_NS_MAX] = holdNs;
    ls[b + LS_HOLD_NS_TOTAL] += holdNs;
    ls[b + LS_HOLD_HIST + fastBucketOf(holdNs)]++;
  }

  /** After this thread's last lock operation: publish the slot's plain stores (seq-cst RMW). */
  publish(): void {
    Atomics.add(this.views.header, HDR_LOCKSTAT_PUBLISHED, 1);
  }
}

export interface TimeStats {
  min: number;
  max: number;
  total: number;
  avg: number;
  p50: number;
  p99: number;
  p999: number;
}

export interface HistBucket {
  lowNs: number;
  highNs: number;
  count: number;
}

export interface CallSiteCount {
  site: string;
  count: number;
}

/** One lock class, summed over every thread. The JSON `locks` entry of docs/DESIGN.md §10, extended. */
export interface LockClassStats {
  class: string;
  acquisitions: number;
  contentions: number;
  conBounces: number;
  acqBounces: number;
  waitNs: TimeStats;
  holdNs: TimeStats;
  /** Non-empty buckets only. */
  waitHistNs: HistBucket[];
  holdHistNs: HistBucket[];
  /** Up to LOCKSTAT_POINTS sites that waited, most contentions first. */
  contentionPoints: CallSiteCount[];
  /** Up to LOCKSTAT_POINTS sites that held the lock while others waited. */
  contendingPoints: CallSiteCount[];
}

function timeStats(count: number, min: number, max: number, total: number, hist: Float64Array): TimeStats {
  if (count === 0) return { min: 0, max: 0, total: 0, avg: 0, p50: 0, p99: 0, p999: 0 };
  return { min, max, total, avg: total / count, p50: percentile(hist, 0.5, max), p99: percentile(hist, 0.99, max), p999: percentile(hist, 0.999, max) };
}

function nonEmptyBuckets(h: Float64Array): HistBucket[] {
  const out: HistBucket[] = [];
  for (let b = 0; b < HIST_BUCKETS; b++) if (h[b] > 0) out.push({ lowNs: bucketLow(b), highNs: bucketHigh(b), count: h[b] });
  return out;
}

function topPoints(counts: Float64Array): CallSiteCount[] {
  const all: CallSiteCount[] = [];
  for (let s = 0; s < counts.length; s++) if (counts[s] > 0) all.push({ site: siteName(s), count: counts[s] });
  // Stable sort: ties keep site-id order, so the output is deterministic.
  return all.sort((a, b) => b.count - a.count).slice(0, LOCKSTAT_POINTS);
}

/** Sum every thread's slots into one record per lock class (main, after the roles stopped). */
export function collectLockStats(views: Views): LockClassStats[] {
  // Acquire: pairs with each role's publish() (Atomics.add after its last write).
  Atomics.load(views.header, HDR_LOCKSTAT_PUBLISHED);
  const ls = views.lockstat;
  const threads = views.layout.threads;
  const out: LockClassStats[] = [];
  for (let cls = 0; cls < LOCK_CLASSES.length; cls++) {
    let acquisitions = 0;
    let contentions = 0;
    let conBounces = 0;
    let acqBounces = 0;
    let holds = 0;
    let waitMin = Infinity;
    let waitMax = 0;
    let waitTotal = 0;
    let holdMin = Infinity;
    let holdMax = 0;
    let holdTotal = 0;
    const waitHist = new Float64Array(HIST_BUCKETS);
    const holdHist = new Float64Array(HIST_BUCKETS);
    const contention = new Float64Array(LOCKSTAT_SITES);
    const contending = new Float64Array(LOCKSTAT_SITES);
    for (let t = 0; t < threads; t++) {
      const b = lockstatBase(cls, t, threads);
      acquisitions += ls[b + LS_ACQUISITIONS];
      conBounces += ls[b + LS_CON_BOUNCES];
      acqBounces += ls[b + LS_ACQ_BOUNCES];
      if (ls[b + LS_CONTENTIONS] > 0) {
        contentions += ls[b + LS_CONTENTIONS];
        waitMin = Math.min(waitMin, ls[b + LS_WAIT_NS_MIN]);
        waitMax = Math.max(waitMax, ls[b + LS_WAIT_NS_MAX]);
        waitTotal += ls[b + LS_WAIT_NS_TOTAL];
        accumulate(waitHist, ls, b + LS_WAIT_HIST);
        for (let s = 0; s < LOCKSTAT_SITES; s++) {
          contention[s] += ls[b + LS_CONTENTION_POINT + s];
          contending[s] += ls[b + LS_CONTENDING_POINT + s];
        }
      }
      if (ls[b + LS_HOLDS] > 0) {
        holds += ls[b + LS_HOLDS];
        holdMin = Math.min(holdMin, ls[b + LS_HOLD_NS_MIN]);
        holdMax = Math.max(holdMax, ls[b + LS_HOLD_NS_MAX]);
        holdTotal += ls[b + LS_HOLD_NS_TOTAL];
        accumulate(holdHist, ls, b + LS_HOLD_HIST);
      }
    }
    out.push({
      class: LOCK_CLASSES[cls],
      acquisitions,
      contentions,
      conBounces,
      acqBounces,
      waitNs: timeStats(contentions, waitMin, waitMax, waitTotal, waitHist),
      holdNs: timeStats(holds, holdMin, holdMax, holdTotal, holdHist),
      waitHistNs: nonEmptyBuckets(waitHist),
      holdHistNs: nonEmptyBuckets(holdHist),
      contentionPoints: topPoints(contention),
      contendingPoints: topPoints(contending),
    });
  }
  return out;
}

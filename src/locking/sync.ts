// Every synchronisation primitive of the simulator lives here (docs/DESIGN.md §4), so
// that lock statistics and a deterministic scheduler can wrap them without
// touching callers.
//
// kernel                              simulator
// spin_lock(&zone->lock)              lock(LOCK_ZONE): bounded CAS spin, then futex wait
// mutex_lock(&vb->balloon_lock)       lock(LOCK_BALLOON): same 3-state futex mutex
// wait_event(vb->acked, ...)          waitWord(interrupt word, last seen, timeout)
// virtqueue_kick / virtio_notify      bump(): Atomics.add + Atomics.notify
//
// The lock is Drepper's three-state futex mutex ("Futexes are tricky", mutex2):
// 0 unlocked, 1 locked, 2 locked and maybe waiters. The machine has fewer
// cores than threads, so pure spinning livelocks: spin a bounded number of
// loads, then sleep in Atomics.wait. Every wait is sliced and bounded; a wait
// past its bound throws LivenessError, which the role turns into a reported
// `liveness` violation carrying the seed.

import { HDR_RUN_STATE, HDR_STATE_GEN, LOCK_LINE_WORDS, LOCK_OWNER, LOCK_SITE, LOCK_WORD, type Views } from '../shm/layout.js';

export class LivenessError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'LivenessError';
  }
}

/**
 * Optional observer of lock events (lock statistics, scheduler). With no
 * observer the lock paths pay one null check and nothing else.
 * Thread ids are 0-based; -1 means "nobody" (the lock was never held).
 */
export interface LockObserver {
  /** Lock held without waiting (fast-path CAS or tryLock). `prevOwner`: the previous holder. */
  acquired(lock: number, site: number, prevOwner: number): void;
  /**
   * Lock held after waiting since `waitStartMs` (performance.now()).
   * `holderAtWait` / `holderSiteAtWait`: the holder and its call site as read
   * from the lock's line when this thread started to wait (lock_contended()).
   */
  acquiredContended(lock: number, site: number, prevOwner: number, waitStartMs: number, holderAtWait: number, holderSiteAtWait: number): void;
  /**
   * Called after the lock was released (and any sleeper woken), with the time
   * of the release. Observers do their bookkeeping here, outside the critical
   * section, so that lock statistics stretch hold times as little as possible.
   */
  released(lock: number, releasedAtMs: number): void;
}

export interface SyncOptions {
  /** Spins (loads of the lock word) before sleeping in Atomics.wait. */
  spin: number;
  /** A lock or event wait longer than this is a liveness failure. */
  waitTimeoutMs: number;
}

/**
 * A scheduler that runs one thread at a time (src/sched/, --sched). While
 * one is installed in this thread (setScheduler) and `active()`, every
 * primitive below becomes a scheduling point: the thread may hand the run
 * token to another thread there, and a wait that would block yields instead
 * (block) until its word changes. Installed per thread (module state is per
 * worker), so the callers' code is the same in both modes.
 */
export interface SchedHooks {
  /** False once the scheduler halted (deadlock, divergence, harness stop): primitives run free again. */
  active(): boolean;
  /** A scheduling point of `kind` (SP_*) on `obj`. */
  point(kind: number, obj: number): void;
  /** Yield until arr[idx] !== seen, the run state generation moves, or the logical clock reaches deadlineMs. */
  block(arr: Int32Array, idx: number, seen: number, deadlineMs: number): void;
  /** The logical clock in ms (ticks / ticks per ms). */
  nowMs(): number;
}

/** Scheduling point kinds (part of the trace; values are stable: they are hashed). */
export const SP_LOCK = 1;
export const SP_UNLOCK = 2;
export const SP_TRYLOCK = 3;
export const SP_WAIT = 4;
export const SP_BLOCK = 5;
export const SP_WAKE = 6;
export const SP_RING_AVAIL = 7;
export const SP_RING_USED = 8;
export const SP_PAGE = 9;
export const SP_PHASE = 10;
export const SP_START = 11;
export const SP_EXIT = 12;
export const SP_CHECK = 13;
/** A racy read-modify-write split by an injection (lost-wakeup): the point where another thread may run in between. */
export const SP_STATE = 14;
/** The free page hint device between two steps it takes apart (--hint-uffd-wp split: the write-tracking check, then the discard). */
export const SP_HINT_STEP = 15;
export const SP_NAMES = ['?', 'lock', 'unlock', 'trylock', 'wait', 'block', 'wake', 'ring-avail', 'ring-used', 'page', 'phase', 'start', 'exit', 'check', 'state', 'hint-step'];

let scheduler: SchedHooks | null = null;

/** Install (or remove, with null) this thread's scheduler. */
export function setScheduler(s: SchedHooks | null): void {
  scheduler = s;
}

/** True while this thread runs under an active scheduler (--sched). */
export function schedActive(): boolean {
  return scheduler !== null && scheduler.active();
}

/** A scheduling point outside this module (ring publish, page state change). No-op when running free. */
export function schedPoint(kind: number, obj: number): void {
  if (scheduler !== null && scheduler.active()) scheduler.point(kind, obj);
}

/**
 * The clock that simulation decisions may read (deadlines, delays): wall
 * time running free, the scheduler's logical clock when scheduled. Stats
 * that are only reported keep using performance.now().
 */
export function clockMs(): number {
  return scheduler !== null ? scheduler.nowMs() : performance.now();
}

export const DEFAULT_SYNC: SyncOptions = { spin: 200, waitTimeoutMs: 20_000 };

/** Slice of one Atomics.wait: short, so a stop request is noticed promptly. */
const WAIT_SLICE_MS = 50;

export class Sync {
  readonly locks: Int32Array;
  observer: LockObserver | null = null;
  constructor(
    readonly views: Views,
    readonly threadId: number,
    readonly opts: SyncOptions = DEFAULT_SYNC,
  ) {
    this.locks = views.locks;
  }

  /** Acquire lock instance `lock`. `site` names the call path for lock statistics. */
  lock(lock: number, site = 0): void {
    if (scheduler !== null && scheduler.active() && this.lockScheduled(lock, site, scheduler)) return;
    const w = this.locks;
    const i = lock * LOCK_LINE_WORDS + LOCK_WORD;
    // Fast path: 0 -> 1. The seq-cst CAS is the acquire: everything the
    // previous holder wrote before its release (Atomics.sub/store) is visible.
    let c = Atomics.compareExchange(w, i, 0, 1);
    if (c === 0) {
      if (this.observer !== null) this.observer.acquired(lock, site, this.takeOwner(w, lock));
      else w[lock * LOCK_LINE_WORDS + LOCK_OWNER] = this.threadId + 1;
      return;
    }
    const t0 = performance.now();
    // Lock statistics (slow path only): who holds the lock, and where it was
    // taken, as we start to wait. Plain loads of words the holder wrote with
    // plain stores: a stale value only misattributes one sample.
    let holderAtWait = -1;
    let holderSiteAtWait = 0;
    if (this.observer !== null) {
      holderAtWait = w[lock * LOCK_LINE_WORDS + LOCK_OWNER] - 1;
      holderSiteAtWait = w[lock * LOCK_LINE_WORDS + LOCK_SITE];
    }
    // Bounded spin on plain loads (cheap, no bus lock) before going to sleep.
    for (let s = this.opts.spin; s > 0; s--) {
      if (w[i] === 0) {
        c = Atomics.compareExchange(w, i, 0, 1);
        if (c === 0) {
          this.onContended(lock, site, t0, holderAtWait, holderSiteAtWait);
          return;
        }
      }
    }
    // Slow path: mark "locked with waiters" and sleep until woken by unlock.
    if (c !== 2) c = Atomics.exchange(w, i, 2);
    const deadline = t0 + this.opts.waitTimeoutMs;
    while (c !== 0) {
      Atomics.wait(w, i, 2, WAIT_SLICE_MS);
      c = Atomics.exchange(w, i, 2);
      if (c !== 0 && performance.now() > deadline) {
        const owner = w[lock * LOCK_LINE_WORDS + LOCK_OWNER] - 1;
        throw new LivenessError(`lock ${lock} not acquired within ${this.opts.waitTimeoutMs} ms by thread ${this.threadId} (holder: thread ${owner})`);
      }
    }
    this.onContended(lock, site, t0, holderAtWait, holderSiteAtWait);
  }

  /**
   * Scheduled acquire: a point before every attempt; a held lock makes this
   * thread yield, blocked until the lock word changes (no spinning, no
   * timeout: a lock nobody will release is found as a deadlock when no
   * thread is runnable). Returns false if the scheduler halted meanwhile:
   * the caller then takes the free-running path.
   */
  private lockScheduled(lock: number, site: number, s: SchedHooks): boolean {
    const w = this.locks;
    const i = lock * LOCK_LINE_WORDS + LOCK_WORD;
    let t0 = -1;
    let holderAtWait = -1;
    let holderSiteAtWait = 0;
    for (;;) {
      s.point(SP_LOCK, lock);
      if (!s.active()) return false;
      // Only one thread runs, so 0 -> 1 is the whole protocol here; the
      // seq-cst CAS is still the acquire for the token handoff's sake.
      const c = Atomics.compareExchange(w, i, 0, 1);
      if (c === 0) {
        if (t0 < 0) {
          if (this.observer !== null) this.observer.acquired(lock, site, this.takeOwner(w, lock));
          else w[lock * LOCK_LINE_WORDS + LOCK_OWNER] = this.threadId + 1;
        } else this.onContended(lock, site, t0, holderAtWait, holderSiteAtWait);
        return true;
      }
      if (t0 < 0) {
        t0 = performance.now(); // lock statistics only, never a decision
        holderAtWait = w[lock * LOCK_LINE_WORDS + LOCK_OWNER] - 1;
        holderSiteAtWait = w[lock * LOCK_LINE_WORDS + LOCK_SITE];
      }
      s.block(w, i, c, Infinity);
      if (!s.active()) return false;
    }
  }

  /** Try once; true if now held. */
  tryLock(lock: number, site = 0): boolean {
    if (scheduler !== null && scheduler.active()) scheduler.point(SP_TRYLOCK, lock);
    const w = this.locks;
    if (Atomics.compareExchange(w, lock * LOCK_LINE_WORDS + LOCK_WORD, 0, 1) !== 0) return false;
    if (this.observer !== null) this.observer.acquired(lock, site, this.takeOwner(w, lock));
    else w[lock * LOCK_LINE_WORDS + LOCK_OWNER] = this.threadId + 1;
    return true;
  }

  unlock(lock: number): void {
    this.release(lock);
    // Scheduling point after the release: a waiter blocked on the lock word is runnable now.
    if (scheduler !== null && scheduler.active()) scheduler.point(SP_UNLOCK, lock);
  }

  private release(lock: number): void {
    const w = this.locks;
    if (this.observer !== null) {
      this.unlockObserved(lock, this.observer);
      return;
    }
    const i = lock * LOCK_LINE_WORDS + LOCK_WORD;
    // Release: the seq-cst RMW publishes every write made under the lock.
    // 1 -> 0 means nobody waits; from 2 we must store 0 and wake one sleeper.
    if (Atomics.sub(w, i, 1) !== 1) {
      Atomics.store(w, i, 0);
      Atomics.notify(w, i, 1);
    }
  }

  /** unlock() with an observer: the same release, timed just after it, reported after the wake-up. */
  private unlockObserved(lock: number, obs: LockObserver): void {
    const w = this.locks;
    const i = lock * LOCK_LINE_WORDS + LOCK_WORD;
    if (Atomics.sub(w, i, 1) !== 1) {
      Atomics.store(w, i, 0);
      const t = performance.now();
      Atomics.notify(w, i, 1);
      obs.released(lock, t);
    } else {
      obs.released(lock, performance.now());
    }
  }

  /** True if this thread holds `lock` (for assertions). */
  holds(lock: number): boolean {
    const w = this.locks;
    return w[lock * LOCK_LINE_WORDS + LOCK_WORD] !== 0 && w[lock * LOCK_LINE_WORDS + LOCK_OWNER] === this.threadId + 1;
  }

  private takeOwner(w: Int32Array, lock: number): number {
    const j = lock * LOCK_LINE_WORDS + LOCK_OWNER;
    const prev = w[j] - 1;
    w[j] = this.threadId + 1;
    return prev;
  }

  private onContended(lock: number, site: number, t0: number, holderAtWait: number, holderSiteAtWait: number): void {
    const w = this.locks;
    if (this.observer !== null) this.observer.acquiredContended(lock, site, this.takeOwner(w, lock), t0, holderAtWait, holderSiteAtWait);
    else w[lock * LOCK_LINE_WORDS + LOCK_OWNER] = this.threadId + 1;
  }
}

/**
 * Wait while `arr[idx] === seen`, at most `timeoutMs`, waking early when
 * `stop()` turns true (checked every slice). Spins `spin` loads first: a
 * sleeping thread on this oversubscribed machine takes tens of microseconds
 * to wake, a spinning one a fraction of that.
 * Returns 'changed' if the word moved, 'stopped', or 'timed-out'.
 */
export function waitWhileEquals(
  arr: Int32Array,
  idx: number,
  seen: number,
  timeoutMs: number,
  stop: () => boolean,
  spin = 0,
): 'changed' | 'stopped' | 'timed-out' {
  const sc = scheduler;
  if (sc !== null && sc.active()) {
    // Scheduled: logical deadline; a point before each look at the word;
    // yield (blocked on the word, with the deadline) instead of sleeping.
    const deadline = sc.nowMs() + timeoutMs;
    for (;;) {
      sc.point(SP_WAIT, (arr.byteOffset >> 2) + idx);
      if (Atomics.load(arr, idx) !== seen) return 'changed';
      if (stop()) return 'stopped';
      if (sc.nowMs() >= deadline) return 'timed-out';
      sc.block(arr, idx, seen, deadline);
      if (!sc.active()) {
        timeoutMs = Math.max(0, deadline - sc.nowMs());
        break; // halted: finish the wait free-running
      }
    }
  }
  for (let s = spin; s > 0; s--) if (Atomics.load(arr, idx) !== seen) return 'changed';
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    if (Atomics.load(arr, idx) !== seen) return 'changed';
    if (stop()) return 'stopped';
    const left = deadline - performance.now();
    if (left <= 0) return 'timed-out';
    Atomics.wait(arr, idx, seen, Math.min(left, WAIT_SLICE_MS));
  }
}

/**
 * Publish a run state (RUN_*) and wake every thread parked on the state
 * generation: the seq-cst store and the bump's seq-cst add order the new
 * state before any role that sees the new generation reads it.
 */
export function publishRunState(views: Views, state: number): void {
  Atomics.store(views.header, HDR_RUN_STATE, state);
  bump(views.header, HDR_STATE_GEN);
}

/** Bump a generation counter and wake its waiters (kick, interrupt, request). */
export function bump(arr: Int32Array, idx: number): number {
  // Atomics.add is seq-cst: every plain write before it (ring entries, page
  // states) is visible to a thread that observes the new counter value.
  const v = Atomics.add(arr, idx, 1) + 1;
  // WAKE: threads sleeping in Atomics.wait on this word (free-running); a
  // scheduled thread blocked on it is runnable from the next point on.
  Atomics.notify(arr, idx);
  if (scheduler !== null && scheduler.active()) scheduler.point(SP_WAKE, (arr.byteOffset >> 2) + idx);
  return v;
}

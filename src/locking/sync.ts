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

import { HDR_RUN_STATE, HDR_STATE_GEN, LOCK_LINE_WORDS, LOCK_OWNER, LOCK_REL_WAITERS, LOCK_REL_WOKEN, LOCK_SITE, LOCK_WORD, WAKE_MARK, lockName, type Views } from '../shm/layout.js';
import { OracleViolation } from '../base/errors.js';

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
  /**
   * Harness self-test (BALLOON_SIM_SELFTEST=no-notify-unlock, not a
   * simulation feature): a release that finds waiters skips its
   * Atomics.notify, so a test can show the lost-wakeup check finds a
   * missing wake-up on a lock.
   */
  selfTestNoNotifyUnlock?: boolean;
}

/**
 * A strict wait (docs/DESIGN.md §4 "Strict wake-ups"): one with no semantic
 * timeout, which only a wake-up should end. Its timeout is a liveness bound;
 * its slices exist only so a stop is noticed. Running free, a slice that
 * runs out although the awaited change has happened is checked: the wake-up
 * must follow within LOST_WAKEUP_GRACE_MS, or it is a `lost-wakeup`
 * violation naming `event`. Under --sched the wait has no deadline and only
 * a WAKE on its word makes it runnable again.
 */
export interface StrictWait {
  /** The event waited for, as a violation names it: 'report request (REP_REQUEST_GEN)'. */
  event: string;
  /**
   * The awaited change has happened even though the word has not moved (the
   * used ring moved, a chain is available): the wake-up on the word is due.
   */
  due?: () => boolean;
  /** What `due` means, for the message: 'a used element is in the ring'. */
  dueWhat?: string;
}

/**
 * How long a wake-up may trail the change it announces before a waiter that
 * noticed the change on its own (its slice ran out) calls it lost: the
 * waker may be preempted between its store and its Atomics.notify; on an
 * oversubscribed machine that is milliseconds, never half a second.
 */
export const LOST_WAKEUP_GRACE_MS = 500;

/** This thread's count of verified strict wake-ups (METRIC_WAKE_CHECKS in its metric slot); null: no checking (main, harnesses). */
let wakeChecks: { m: Float64Array; i: number } | null = null;

/** Turn the lost-wakeup checks on for this thread, counting them at m[i] (a role thread's METRIC_WAKE_CHECKS), or off (null). */
export function setWakeChecks(m: Float64Array | null, i = 0): void {
  wakeChecks = m === null ? null : { m, i };
}

function lostWakeup(message: string): OracleViolation {
  return new OracleViolation({ oracle: 'lost-wakeup', message });
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
  /**
   * Yield until arr[idx] !== seen, the run state generation moves, or the
   * logical clock reaches deadlineMs. `strict`: a wait with no semantic
   * timeout (docs/DESIGN.md §4): the word moving makes the thread runnable
   * only once its wake mark shows bump() issued the Atomics.notify for the
   * new value (the scheduler's model of a futex wake-up), so a missing
   * wake-up is a deadlock.
   */
  block(arr: Int32Array, idx: number, seen: number, deadlineMs: number, strict?: boolean): void;
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
    let slept = false;
    while (c !== 0) {
      const r = Atomics.wait(w, i, 2, WAIT_SLICE_MS);
      slept = true;
      c = Atomics.exchange(w, i, 2);
      // Our slice ran out and the lock was free: its release must have
      // woken a waiter (we set 2 before sleeping). Strict wake-ups (§4).
      if (c === 0 && r === 'timed-out' && wakeChecks !== null) this.checkLockWake(lock);
      if (c !== 0 && performance.now() > deadline) {
        const owner = w[lock * LOCK_LINE_WORDS + LOCK_OWNER] - 1;
        throw new LivenessError(`lock ${lock} not acquired within ${this.opts.waitTimeoutMs} ms by thread ${this.threadId} (holder: thread ${owner})`);
      }
    }
    if (slept && wakeChecks !== null) wakeChecks.m[wakeChecks.i]++;
    this.onContended(lock, site, t0, holderAtWait, holderSiteAtWait);
  }

  /**
   * We hold `lock` after a wait slice ran out with the lock free. Every
   * release that found waiters counts LOCK_REL_WAITERS before its store of 0
   * and LOCK_REL_WOKEN after its Atomics.notify; the second may trail (the
   * releaser preempted between the two) but must catch up within
   * LOST_WAKEUP_GRACE_MS, or the release never woke anyone: lost-wakeup.
   */
  private checkLockWake(lock: number): void {
    const w = this.locks;
    const b = lock * LOCK_LINE_WORDS;
    const lag = () => (Atomics.load(w, b + LOCK_REL_WAITERS) - Atomics.load(w, b + LOCK_REL_WOKEN)) | 0;
    if (lag() <= 0) return;
    const until = performance.now() + LOST_WAKEUP_GRACE_MS;
    while (performance.now() < until) {
      Atomics.wait(graceWord, 0, 0, 1);
      if (lag() <= 0) return;
    }
    // We hold the lock: give it back before the violation unwinds this role,
    // or every other thread would wait on it until the liveness bound.
    this.release(lock);
    throw lostWakeup(`lock ${lockName(lock)}: released with waiters sleeping, but the release woke none of them (thread ${this.threadId} found it free when its ${WAIT_SLICE_MS} ms wait slice ran out, and no Atomics.notify followed within ${LOST_WAKEUP_GRACE_MS} ms)`);
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
    if (Atomics.sub(w, i, 1) !== 1) this.releaseWaiters(w, lock * LOCK_LINE_WORDS);
  }

  /**
   * The contended half of a release: store 0 and wake one sleeper, counted
   * on both sides of the store and the notify (LOCK_REL_WAITERS,
   * LOCK_REL_WOKEN) so a waiter can tell a late wake-up from a lost one.
   * Returns the time of the release (lock statistics).
   */
  private releaseWaiters(w: Int32Array, b: number): number {
    Atomics.add(w, b + LOCK_REL_WAITERS, 1);
    Atomics.store(w, b + LOCK_WORD, 0);
    const t = performance.now();
    if (this.opts.selfTestNoNotifyUnlock) return t; // self-test: the wake-up is forgotten
    // WAKE: one sleeper; it sets the word back to 2, so the rest are woken in turn.
    Atomics.notify(w, b + LOCK_WORD, 1);
    Atomics.add(w, b + LOCK_REL_WOKEN, 1);
    return t;
  }

  /** unlock() with an observer: the same release, timed just after it, reported after the wake-up. */
  private unlockObserved(lock: number, obs: LockObserver): void {
    const w = this.locks;
    const i = lock * LOCK_LINE_WORDS + LOCK_WORD;
    if (Atomics.sub(w, i, 1) !== 1) {
      const t = this.releaseWaiters(w, lock * LOCK_LINE_WORDS);
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
  strict: StrictWait | null = null,
): 'changed' | 'stopped' | 'timed-out' {
  const sc = scheduler;
  if (sc !== null && sc.active()) {
    // Scheduled: logical deadline; a point before each look at the word;
    // yield (blocked on the word, with the deadline) instead of sleeping.
    // A strict wait has no deadline: only a WAKE on its word ends it, and a
    // waker that never comes is a deadlock the scheduler reports.
    const deadline = strict !== null ? Infinity : sc.nowMs() + timeoutMs;
    for (;;) {
      sc.point(SP_WAIT, (arr.byteOffset >> 2) + idx);
      // A strict wait ends only on a change whose wake-up was issued (its
      // wake mark caught up): a word that moved with no Atomics.notify does
      // not wake a futex sleeper, so here it does not end the wait either.
      const now = Atomics.load(arr, idx);
      if (now !== seen && (strict === null || wokenFor(arr, idx, now))) {
        if (strict !== null && wakeChecks !== null) wakeChecks.m[wakeChecks.i]++;
        return 'changed';
      }
      if (stop()) return 'stopped';
      if (sc.nowMs() >= deadline) return 'timed-out';
      sc.block(arr, idx, seen, deadline, strict !== null);
      if (!sc.active()) {
        if (strict === null) timeoutMs = Math.max(0, deadline - sc.nowMs());
        break; // halted: finish the wait free-running
      }
    }
  }
  for (let s = spin; s > 0; s--) if (Atomics.load(arr, idx) !== seen) return 'changed';
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    if (Atomics.load(arr, idx) !== seen) {
      if (strict !== null && wakeChecks !== null) wakeChecks.m[wakeChecks.i]++;
      return 'changed';
    }
    if (stop()) return 'stopped';
    const left = deadline - performance.now();
    if (left <= 0) return 'timed-out';
    const r = Atomics.wait(arr, idx, seen, Math.min(left, WAIT_SLICE_MS));
    if (r === 'timed-out' && strict !== null && wakeChecks !== null) checkWake(arr, idx, seen, strict);
  }
}

/** bump() issued the Atomics.notify for counter value `v` of arr[idx] (its wake mark reached it). */
function wokenFor(arr: Int32Array, idx: number, v: number): boolean {
  return ((Atomics.load(arr, idx + WAKE_MARK) - v) | 0) >= 0;
}

/**
 * A strict wait's slice ran out. If the word moved meanwhile, no
 * Atomics.notify woke us: the mark must show the wake-up was issued (we
 * lost a race with it) or it must follow within the grace. If the word did
 * not move but the awaited change has happened (`due`), the bump must
 * follow within the grace. Otherwise the wake-up is lost: a violation.
 */
function checkWake(arr: Int32Array, idx: number, seen: number, strict: StrictWait): void {
  const now = Atomics.load(arr, idx);
  if (now !== seen) {
    if (wokenFor(arr, idx, now)) return;
    const until = performance.now() + LOST_WAKEUP_GRACE_MS;
    while (performance.now() < until) {
      // A late notify on the word ends this at once.
      Atomics.wait(arr, idx, Atomics.load(arr, idx), Math.min(10, until - performance.now()));
      if (wokenFor(arr, idx, Atomics.load(arr, idx))) return;
    }
    throw lostWakeup(`${strict.event}: the word moved from ${seen} to ${Atomics.load(arr, idx)} while a thread slept on it, and no wake-up (Atomics.notify) came: its ${WAIT_SLICE_MS} ms wait slice ran out, then ${LOST_WAKEUP_GRACE_MS} ms more`);
  }
  if (strict.due === undefined || !strict.due()) return;
  // The change happened without the bump: wait the grace for it on the word.
  if (Atomics.wait(arr, idx, seen, LOST_WAKEUP_GRACE_MS) !== 'timed-out' || Atomics.load(arr, idx) !== seen) return;
  if (!strict.due()) return;
  throw lostWakeup(`${strict.event}: ${strict.dueWhat ?? 'the awaited change happened'}, but the word stayed at ${seen}: no wake-up came within ${LOST_WAKEUP_GRACE_MS} ms after a ${WAIT_SLICE_MS} ms wait slice ran out`);
}

/** A word to sleep on for short polls (nobody ever notifies it). */
const graceWord = new Int32Array(new SharedArrayBuffer(4));

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
  const v = (Atomics.add(arr, idx, 1) + 1) | 0;
  // WAKE: threads sleeping in Atomics.wait on this word (free-running); a
  // scheduled thread blocked on it is runnable from the next point on.
  Atomics.notify(arr, idx);
  // The wake mark (WAKE_MARK words on): the highest value whose notify has
  // been issued. Raised, never lowered: two bumps may finish out of order.
  const m = idx + WAKE_MARK;
  // (An array with no room for a mark, a test's scratch word, has no strict waiter.)
  for (let cur = m < arr.length ? Atomics.load(arr, m) : v; ((v - cur) | 0) > 0; ) {
    const was = Atomics.compareExchange(arr, m, cur, v);
    if (was === cur) break;
    cur = was;
  }
  if (scheduler !== null && scheduler.active()) scheduler.point(SP_WAKE, (arr.byteOffset >> 2) + idx);
  return v;
}

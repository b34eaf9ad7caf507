// The seeded scheduler (--sched random|pct): the same role threads as a
// free-running run, but exactly one runs at a time, and at every scheduling
// point (lock acquire/release, event wait, wake, ring publish, page state
// change: the SP_* kinds in src/locking/sync.ts) a seeded strategy picks who runs
// next. Same seed and configuration => same decisions => same trace, same
// results. A failure's schedule can be written out and replayed (--replay).
//
// Design: a run token in the shared buffer (region `sched`, src/shm/layout.ts),
// handed between the real role threads with Atomics.wait/notify on one "go"
// word per thread. The thread holding the token makes the next decision
// itself (the scheduler's state, RNG included, lives in the buffer; only
// the holder touches it, and the token handoff -- a seq-cst store plus a
// seq-cst RMW on the go word, which the next thread Atomics.loads -- orders
// everything the previous holder wrote before everything the next one reads).
//
// Blocking: a thread that would block (held lock, event wait) marks itself
// BLOCKED on (word, value seen, run-state generation seen, logical deadline)
// and yields. The picker only picks runnable threads; a blocked one becomes
// runnable when its word changed, the run state moved, or the logical clock
// reached its deadline. If nothing is runnable the clock jumps to the
// earliest deadline (discrete-event time); if there is no deadline at all,
// that is a deadlock: the scheduler halts and main reports a `liveness`
// violation with the seed and the schedule. Nothing ever waits unbounded.
//
// Logical time: the clock advances one tick per step (TICKS_PER_MS ticks make
// one logical ms), and jumps over idle time. --duration, --report-delay,
// --check-interval, --settle-timeout, --wait-timeout and every wait slice are
// measured on it, so nothing that steers the simulation reads the wall clock.
// The phases RUNNING -> SETTLING -> STOPPING are switched by the scheduler at
// logical times, and the mid-run structural checks (free-list, conservation)
// run inside the scheduler at logical times, when the zone lock is free.
//
// Trace: every step is (step, thread, kind, object, next thread); its hash
// (two 32-bit murmur lanes) is `sched.traceHash` in the JSON. Timing stats
// (latencies, durations, lock wait/hold times) are not part of it.

import { LOCK_LINE_WORDS, LOCK_WORD, LOCK_ZONE, WAKE_MARK, HDR_RUN_STATE, HDR_STATE_GEN, RUN_ABORT, RUN_RUNNING, RUN_SETTLING, RUN_STOPPING, type Views } from '../shm/layout.js';
import { OracleViolation, type Violation } from '../base/errors.js';
import { SP_BLOCK, SP_CHECK, SP_EXIT, SP_PHASE, SP_START, type SchedHooks } from '../locking/sync.js';
import {
  CHECKPOINT_STEPS,
  C_ABORT_STEP,
  C_BLOCKS,
  C_CHECKS,
  C_CP_EVERY,
  C_CPUS,
  C_DONE,
  C_EXP_CP_N,
  C_HALT,
  C_HALT_REASON,
  C_HALT_STEP,
  C_HALT_THREAD,
  C_HASH1,
  C_HASH2,
  C_HINTING,
  C_INTERRUPT,
  C_REPLAY,
  C_REPLAY_STEPS,
  C_REPORTER,
  C_SETTLED,
  C_SKIPS,
  C_STEP,
  C_STRATEGY,
  C_SWITCHES,
  C_TIMEOUTS,
  C_TOKEN,
  F_BUDGET,
  F_CHECK_TICKS,
  F_CLOCK,
  F_NEXT_CHECK,
  F_SETTLE_START,
  F_SETTLE_TICKS,
  F_STOP_AT,
  F_WAIT_TICKS,
  HALT_DEADLOCK,
  HALT_DIVERGED,
  HALT_NOT_STOPPED,
  REPLAY_FILE,
  REPLAY_STRING,
  SETTLED_IDLE,
  SETTLED_TIMEOUT,
  ST_BLOCKED,
  ST_EXITED,
  ST_RUNNABLE,
  TICKS_PER_MS,
  T_DOOMED,
  T_GEN_SEEN,
  T_GO,
  T_STATUS,
  T_STEPS,
  T_STRICT,
  T_WAIT_ABS,
  T_WAIT_SEEN,
  T_WORDS,
  digestOf,
  mix1,
  mix2,
  schedViews,
  type SchedViews,
} from './region.js';
import type { Strategy } from './strategy.js';
import { TK_SCHED, tracer } from '../locking/trace.js';
import { strategyById } from './strategies/index.js';

/** Bound on one wait for the run token (wall clock; main's progress watchdog halts far sooner). */
const TOKEN_WAIT_BOUND_MS = 10 * 60_000;
const TOKEN_WAIT_SLICE_MS = 50;

/** Thrown in a thread the scheduler found deadlocked (after the halt): the run's report names the deadlock. */
export class SchedHalted extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SchedHalted';
  }
}

/**
 * What the scheduler asks of the simulation it schedules, installed by the
 * role that builds it (src/sim/roles.ts): the scheduler itself knows no
 * oracle and no hinting mode.
 */
export interface SchedulerHooks {
  /** The mid-run structural checks (free lists, conservation), run at logical times on a quiescent zone. */
  check(): Violation[];
  /** While settling: the hinting side has nothing left to do (reporter idle, nothing isolated). */
  hintingQuiet(): boolean;
}

export class Scheduler implements SchedHooks {
  readonly s: SchedViews;
  private readonly cand: Int32Array;
  private readonly header: Int32Array;
  private readonly hinting: boolean;
  private haltWall = -1;
  private haltLogicalMs = 0;

  private readonly strategy: Strategy;

  constructor(
    views: Views,
    readonly thread: number,
    private readonly hooks: SchedulerHooks,
  ) {
    this.s = schedViews(views);
    this.cand = new Int32Array(this.s.threads);
    this.header = views.header;
    this.hinting = this.s.ctl[C_HINTING] !== 0;
    this.strategy = strategyById(this.s.ctl[C_STRATEGY]);
  }

  active(): boolean {
    return Atomics.load(this.s.ctl, C_HALT) === 0;
  }

  nowMs(): number {
    if (this.active()) return this.s.f[F_CLOCK] / TICKS_PER_MS;
    // Halted: wall time from here on, continuous with the logical clock.
    if (this.haltWall < 0) {
      this.haltWall = performance.now();
      this.haltLogicalMs = this.s.f[F_CLOCK] / TICKS_PER_MS;
    }
    return this.haltLogicalMs + (performance.now() - this.haltWall);
  }

  point(kind: number, obj: number): void {
    this.step(kind, obj, 0);
  }

  block(arr: Int32Array, idx: number, seen: number, deadlineMs: number, strict = false): void {
    const { th, dl } = this.s;
    const b = this.thread * T_WORDS;
    const abs = (arr.byteOffset >> 2) + idx;
    th[b + T_WAIT_ABS] = abs;
    th[b + T_WAIT_SEEN] = seen;
    th[b + T_STRICT] = strict ? 1 : 0;
    th[b + T_GEN_SEEN] = Atomics.load(this.header, HDR_STATE_GEN);
    dl[this.thread] = deadlineMs === Infinity ? Infinity : Math.ceil(deadlineMs * TICKS_PER_MS);
    th[b + T_STATUS] = ST_BLOCKED;
    this.s.ctl[C_BLOCKS]++;
    this.step(SP_BLOCK, abs, 1);
    if (th[b + T_DOOMED] !== 0) throw new SchedHalted(`thread ${this.thread} is part of the deadlock the scheduler found at step ${this.s.ctl[C_HALT_STEP]}`);
  }

  /** Wait for the first run token, then take the START step. */
  enter(): void {
    this.waitToken();
    if (this.active()) this.step(SP_START, this.thread, 0);
  }

  /** Leave the schedule for good (the role returned): hand the token on without waiting for it again. */
  exit(): void {
    if (!this.active()) return;
    if (Atomics.load(this.s.ctl, C_TOKEN) !== this.thread) return; // never entered
    this.s.th[this.thread * T_WORDS + T_STATUS] = ST_EXITED;
    this.step(SP_EXIT, this.thread, 2);
  }

  /**
   * One step: record the event, do the scheduler's own work (phases, checks,
   * checkpoints), pick the next thread and hand it the token.
   * mode 0: the caller stays runnable; 1: it blocked; 2: it exited.
   */
  private step(kind: number, obj: number, mode: 0 | 1 | 2): void {
    const { ctl, f, th } = this.s;
    if (Atomics.load(ctl, C_HALT) !== 0) return;
    const me = this.thread;
    const st = ctl[C_STEP] + 1;
    ctl[C_STEP] = st;
    th[me * T_WORDS + T_STEPS]++;
    f[F_CLOCK] += 1;
    this.record(st, me, kind, obj);
    if (Atomics.load(ctl, C_HALT) !== 0) return; // diverged while recording
    this.housekeeping(st, mode === 0);
    if (Atomics.load(ctl, C_HALT) !== 0) return;
    const next = this.pick(st, me, kind);
    if (Atomics.load(ctl, C_HALT) !== 0) return;
    if (next < 0) {
      // Nothing runnable and no deadline: everyone exited, or a deadlock.
      if (this.anyBlocked()) this.halt(HALT_DEADLOCK, st, true);
      else {
        Atomics.store(ctl, C_TOKEN, -1);
        Atomics.store(ctl, C_DONE, 1);
      }
      return;
    }
    ctl[C_HASH1] = mix1(ctl[C_HASH1], next);
    ctl[C_HASH2] = mix2(ctl[C_HASH2], next);
    if (ctl[C_REPLAY] !== REPLAY_FILE && st <= this.s.logSteps) this.s.decisions[st - 1] = next;
    if (next === me) return;
    // --trace: the decision, before the token moves (the next thread's events come after it).
    if (tracer !== null) tracer.instant(TK_SCHED, st, next, kind * 4294967296 + (obj >>> 0));
    this.handoff(next);
    if (mode !== 2) this.waitToken();
  }

  private record(st: number, me: number, kind: number, obj: number): void {
    const { ctl } = this.s;
    let h1 = ctl[C_HASH1];
    let h2 = ctl[C_HASH2];
    h1 = mix1(mix1(mix1(mix1(h1, st), me), kind), obj);
    h2 = mix2(mix2(mix2(mix2(h2, st), me), kind), obj);
    ctl[C_HASH1] = h1;
    ctl[C_HASH2] = h2;
    const dg = digestOf(me, kind, obj);
    const replay = ctl[C_REPLAY];
    if (replay === REPLAY_FILE) {
      if (st > ctl[C_REPLAY_STEPS]) this.halt(HALT_DIVERGED, st, false);
      else if (st <= this.s.logSteps && this.s.digests[st - 1] !== dg) this.halt(HALT_DIVERGED, st, false);
    } else if (st <= this.s.logSteps) this.s.digests[st - 1] = dg;
    if (st % CHECKPOINT_STEPS === 0) {
      const k = st / CHECKPOINT_STEPS - 1;
      if (k < this.s.cps.length) this.s.cps[k] = h1;
      if (replay === REPLAY_STRING) {
        const every = ctl[C_CP_EVERY];
        if (st % every === 0) {
          const j = st / every - 1;
          if (j < ctl[C_EXP_CP_N] && (h1 & 0xffff) !== this.s.expCp[j]) this.halt(HALT_DIVERGED, st, false);
        }
      }
    }
  }

  /** Phases, abort bookkeeping and scheduled checks at logical times. */
  private housekeeping(st: number, mayCheck: boolean): void {
    const { ctl, f } = this.s;
    const h = this.header;
    const rs = Atomics.load(h, HDR_RUN_STATE);
    const clock = f[F_CLOCK];
    if (rs === RUN_ABORT) {
      if (ctl[C_ABORT_STEP] === 0) ctl[C_ABORT_STEP] = st;
      if (f[F_STOP_AT] === 0) f[F_STOP_AT] = clock;
    }
    if (rs === RUN_RUNNING) {
      if (clock >= f[F_BUDGET] || Atomics.load(ctl, C_INTERRUPT) !== 0) {
        this.setPhase(this.hinting ? RUN_SETTLING : RUN_STOPPING);
        if (this.hinting) f[F_SETTLE_START] = clock;
        return;
      }
      if (mayCheck && f[F_CHECK_TICKS] > 0 && clock >= f[F_NEXT_CHECK] && this.zoneLockFree()) {
        f[F_NEXT_CHECK] = clock + f[F_CHECK_TICKS];
        this.structuralCheck(st);
      }
    } else if (rs === RUN_SETTLING) {
      if (this.settled()) {
        ctl[C_SETTLED] = SETTLED_IDLE;
        this.setPhase(RUN_STOPPING);
      } else if (clock >= f[F_SETTLE_START] + f[F_SETTLE_TICKS]) {
        ctl[C_SETTLED] = SETTLED_TIMEOUT;
        this.setPhase(RUN_STOPPING);
      }
    } else if (rs === RUN_STOPPING || rs === RUN_ABORT) {
      if (f[F_STOP_AT] > 0 && clock > f[F_STOP_AT] + f[F_WAIT_TICKS]) this.halt(HALT_NOT_STOPPED, st, false);
    }
  }

  private setPhase(state: number): void {
    const { ctl, f } = this.s;
    Atomics.store(this.header, HDR_RUN_STATE, state);
    // WAKE: the run-state generation is what idle roles wait on; a scheduled
    // thread blocked on any word is also woken by its change (T_GEN_SEEN).
    Atomics.add(this.header, HDR_STATE_GEN, 1);
    Atomics.notify(this.header, HDR_STATE_GEN);
    if (state === RUN_STOPPING) f[F_STOP_AT] = f[F_CLOCK];
    ctl[C_HASH1] = mix1(ctl[C_HASH1], (SP_PHASE << 8) | state);
    ctl[C_HASH2] = mix2(ctl[C_HASH2], (SP_PHASE << 8) | state);
  }

  private zoneLockFree(): boolean {
    return Atomics.load(this.s.views.locks, LOCK_ZONE * LOCK_LINE_WORDS + LOCK_WORD) === 0;
  }

  /** Settling is over when every CPU has exited and the hinting side is quiet (or its reporter gone). */
  private settled(): boolean {
    const { ctl, th } = this.s;
    for (let c = 0; c < ctl[C_CPUS]; c++) if (th[c * T_WORDS + T_STATUS] !== ST_EXITED) return false;
    const rep = ctl[C_REPORTER];
    if (rep < 0 || th[rep * T_WORDS + T_STATUS] === ST_EXITED) return true;
    return this.hooks.hintingQuiet() && this.zoneLockFree();
  }

  /** The mid-run structural checks, on a quiescent zone (lock free, one thread running). */
  private structuralCheck(st: number): void {
    const { ctl } = this.s;
    ctl[C_CHECKS]++;
    ctl[C_HASH1] = mix1(ctl[C_HASH1], SP_CHECK);
    const found = this.hooks.check();
    if (found.length > 0) throw new OracleViolation({ ...found[0], message: `${found[0].message} (scheduled check at step ${st})` });
  }

  private wakeable(t: number): boolean {
    const { th, dl, all, f } = this.s;
    const b = t * T_WORDS;
    const abs = th[b + T_WAIT_ABS];
    const now = Atomics.load(all, abs);
    // A strict waiter runs again only when woken: the word moved and its
    // wake mark (WAKE_MARK words on, raised by bump() after its notify)
    // reached the new value. A word that moved with no wake-up (a missing
    // Atomics.notify) leaves it blocked, as a futex sleeper would stay.
    if (now !== th[b + T_WAIT_SEEN] && (th[b + T_STRICT] === 0 || ((Atomics.load(all, abs + WAKE_MARK) - now) | 0) >= 0)) return true;
    if (Atomics.load(this.header, HDR_STATE_GEN) !== th[b + T_GEN_SEEN]) return true;
    if (f[F_CLOCK] >= dl[t]) {
      this.s.ctl[C_TIMEOUTS]++;
      return true;
    }
    return false;
  }

  private anyBlocked(): boolean {
    const { th, threads } = this.s;
    for (let t = 0; t < threads; t++) if (th[t * T_WORDS + T_STATUS] === ST_BLOCKED) return true;
    return false;
  }

  /** The next thread to run, or -1 if none can (after jumping the clock over idle time). */
  private pick(st: number, me: number, kind: number): number {
    const { ctl, f, th, dl, threads } = this.s;
    const cand = this.cand;
    for (let guard = 0; guard < 8; guard++) {
      let n = 0;
      for (let t = 0; t < threads; t++) {
        const sts = th[t * T_WORDS + T_STATUS];
        if (sts === ST_RUNNABLE) cand[n++] = t;
        else if (sts === ST_BLOCKED && this.wakeable(t)) {
          th[t * T_WORDS + T_STATUS] = ST_RUNNABLE;
          cand[n++] = t;
        }
      }
      if (n > 0) return this.choose(st, me, n, kind);
      // Nothing runnable: jump the logical clock to the earliest deadline.
      let min = Infinity;
      for (let t = 0; t < threads; t++) if (th[t * T_WORDS + T_STATUS] === ST_BLOCKED && dl[t] < min) min = dl[t];
      if (min === Infinity) return -1;
      f[F_CLOCK] = Math.max(f[F_CLOCK], min);
      ctl[C_SKIPS]++;
      this.housekeeping(st, false);
      if (Atomics.load(ctl, C_HALT) !== 0) return -1;
    }
    return -1;
  }

  private choose(st: number, me: number, n: number, kind: number): number {
    const { ctl } = this.s;
    const cand = this.cand;
    if (ctl[C_REPLAY] === REPLAY_FILE && st <= this.s.logSteps) {
      // Replaying a schedule file: its decision, which must be runnable.
      const want = this.s.decisions[st - 1];
      for (let i = 0; i < n; i++) if (cand[i] === want) return want;
      this.halt(HALT_DIVERGED, st, false);
      return -1;
    }
    return this.strategy.choose(this.s, me, cand, n, kind);
  }

  private handoff(next: number): void {
    const { ctl, th } = this.s;
    ctl[C_SWITCHES]++;
    // PUBLISH + WAKE: the seq-cst store of the token and the seq-cst add on
    // the next thread's go word order every scheduler and simulation write
    // this thread made before the next thread's Atomics.load of the token.
    Atomics.store(ctl, C_TOKEN, next);
    Atomics.add(th, next * T_WORDS + T_GO, 1);
    Atomics.notify(th, next * T_WORDS + T_GO, 1);
  }

  /** Sleep until this thread holds the token, or the scheduler halted. Bounded. */
  private waitToken(): void {
    const { ctl, th } = this.s;
    const go = this.thread * T_WORDS + T_GO;
    const until = performance.now() + TOKEN_WAIT_BOUND_MS;
    for (;;) {
      // Read the go word BEFORE the token: a handoff after this load moves it, so the wait returns.
      const g = Atomics.load(th, go);
      if (Atomics.load(ctl, C_TOKEN) === this.thread) return;
      if (Atomics.load(ctl, C_HALT) !== 0) {
        if (th[go - T_GO + T_DOOMED] !== 0) throw new SchedHalted(`thread ${this.thread} is part of the deadlock the scheduler found at step ${ctl[C_HALT_STEP]}`);
        return;
      }
      if (performance.now() > until) throw new Error(`sched: thread ${this.thread} got no run token within ${TOKEN_WAIT_BOUND_MS} ms`);
      Atomics.wait(th, go, g, TOKEN_WAIT_SLICE_MS);
    }
  }

  private halt(reason: number, st: number, deadlock: boolean): void {
    if (deadlock) {
      const { th, threads } = this.s;
      for (let t = 0; t < threads; t++) if (th[t * T_WORDS + T_STATUS] === ST_BLOCKED) th[t * T_WORDS + T_DOOMED] = 1;
    }
    haltSchedViews(this.s, reason, st, this.thread);
  }
}

/** Halt the scheduled run (a thread's halt, or main giving up): stop the run and wake every thread. */
export function haltSchedViews(s: SchedViews, reason: number, st: number, thread: number): void {
  const { ctl, th, views } = s;
  if (Atomics.compareExchange(ctl, C_HALT, 0, 1) !== 0) return; // already halted
  ctl[C_HALT_REASON] = reason;
  ctl[C_HALT_STEP] = st;
  ctl[C_HALT_THREAD] = thread;
  // Stop the run, then WAKE every thread waiting for the token: each sees
  // the halt (seq-cst CAS above) and runs free to its exit.
  Atomics.store(views.header, HDR_RUN_STATE, RUN_ABORT);
  Atomics.add(views.header, HDR_STATE_GEN, 1);
  Atomics.notify(views.header, HDR_STATE_GEN);
  for (let t = 0; t < s.threads; t++) {
    Atomics.add(th, t * T_WORDS + T_GO, 1);
    Atomics.notify(th, t * T_WORDS + T_GO);
  }
}

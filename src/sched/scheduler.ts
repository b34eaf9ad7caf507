// The seeded scheduler (--sched random|pct): the same role threads as a
// free-running run, but exactly one runs at a time, and at every scheduling
// point (lock acquire/release, event wait, wake, ring publish, page state
// change: the SP_* kinds in src/sync.ts) a seeded strategy picks who runs
// next. Same seed and configuration => same decisions => same trace, same
// results. A failure's schedule can be written out and replayed (--replay).
//
// Design: a run token in the shared buffer (region `sched`, src/layout.ts),
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

import { type Config, SCHED_LOG_STEPS, UsageError, rerunCommand } from '../sim/config.js';
import {
  CACHE_LINE,
  HDR_RUN_STATE,
  HDR_STATE_GEN,
  LOCK_LINE_WORDS,
  LOCK_WORD,
  LOCK_ZONE,
  REP_STATE,
  RUN_ABORT,
  RUN_RUNNING,
  RUN_SETTLING,
  RUN_STOPPING,
  ZONE_ISOLATED_PAGES,
  threadIds,
  type Views,
} from '../shm/layout.js';
import { OracleViolation, checkConservation, checkFreeLists, type Violation } from '../check/structure.js';
import { splitmix32, subSeed } from '../base/rng.js';
import { SP_BLOCK, SP_CHECK, SP_EXIT, SP_NAMES, SP_PHASE, SP_START, type SchedHooks } from '../locking/sync.js';

/** Logical ticks per logical millisecond. */
export const TICKS_PER_MS = 10;
/** Recorded checkpoint (trace hash) every this many steps. */
export const CHECKPOINT_STEPS = 1024;
/** A schedule string carries at most this many checkpoints. */
const STRING_CHECKPOINTS = 16;
/** Bound on one wait for the run token (wall clock; main's progress watchdog halts far sooner). */
const TOKEN_WAIT_BOUND_MS = 10 * 60_000;
const TOKEN_WAIT_SLICE_MS = 50;

// ---- control words (Int32) ----
const C_STRATEGY = 0; // 1 random, 2 pct
const C_TOKEN = 1; // thread holding the run token, -1 none
const C_HALT = 2; // 0 running, 1 halted (everyone runs free to its exit)
const C_STEP = 3; // steps taken
const C_HALT_REASON = 4;
const C_HALT_STEP = 5;
const C_DONE = 6; // every participant exited
const C_SWITCHES = 7; // token handoffs
const C_CHECKS = 8; // scheduled structural checks
const C_HASH1 = 9;
const C_HASH2 = 10;
const C_RNG = 11; // 4 words of sfc32 state
const C_DEPTH = 15;
const C_NEXT_CP = 16; // PCT change points fired so far
const C_REPLAY = 17; // REPLAY_*
const C_REPLAY_STEPS = 18;
const C_ABORT_STEP = 19; // first step that saw RUN_ABORT
const C_SETTLED = 20; // SETTLED_*
const C_CPUS = 21;
const C_REPORTER = 22; // thread id, -1 if not a participant
const C_HINTING = 23;
const C_THREADS = 24;
const C_BLOCKS = 25; // blocking yields
const C_SKIPS = 26; // clock jumps over idle time
const C_CP_EVERY = 27; // string replay: checkpoint interval
const C_EXP_CP_N = 28; // string replay: expected checkpoints
const C_HALT_THREAD = 29;
const C_FIRST = 30; // the first decision (made by main)
const C_TIMEOUTS = 31; // blocked waits ended by their logical deadline
const C_CP_CLASS = 32; // PCT: class of change point j (16 words)
const C_CLS_SEEN = 48; // PCT: choice steps seen per class (CP_CLASSES words)
const CTL_WORDS = 64;

// ---- Float64 words ----
const F_CLOCK = 0; // logical ticks
const F_BUDGET = 1; // tick at which RUNNING ends
const F_SETTLE_TICKS = 2;
const F_SETTLE_START = 3;
const F_STOP_AT = 4; // tick STOPPING/ABORT was first seen
const F_NEXT_CHECK = 5;
const F_CHECK_TICKS = 6;
const F_WAIT_TICKS = 7;
const F_CP = 16; // PCT change points (position within their class), up to 16
const F_WORDS = 64;

// ---- PCT change point classes ----
// A change point is placed among the choice steps (more than one thread
// runnable) of one class of scheduling point, not among all steps: the rare
// kinds (ring publishes, event waits and wakes, state-machine transitions)
// are where short race windows open, and placed uniformly over thousands of
// lock and page steps a change point almost never lands on one. Each change
// point draws its class uniformly, then a position in [1, k_c], where k_c,
// the expected number of choice steps of class c in the run, is estimated
// from the step budget (one step per tick) with the measured step mix below.
/** Class of each SP_* kind (index = kind), -1: never a change point. */
const CP_CLASS_OF_KIND = [-1, 0, 0, 0, 2, 2, 2, 3, 3, 1, -1, -1, -1, -1, 4];
/** lock, page, event (wait/block/wake), ring (avail/used publish), state (split read-modify-write). */
export const CP_CLASS_NAMES = ['lock', 'page', 'event', 'ring', 'state'];
/**
 * Estimated choice steps of each class per step of budget: the mix measured
 * over the injection configurations at --cpus 2 (lock 0.3-0.7, page
 * 0.3-0.5, event 0.05-0.2, ring 0.005-0.04, state 0-0.02 of the budget).
 */
const CP_CLASS_SHARE = [0.5, 0.4, 0.1, 0.02, 0.02];
const CP_CLASSES = CP_CLASS_SHARE.length;

// ---- per-thread Int32 line ----
const T_STATUS = 0;
const T_WAIT_ABS = 1; // absolute Int32 index of the blocked-on word
const T_WAIT_SEEN = 2;
const T_GEN_SEEN = 3;
const T_PRIO = 4;
const T_GO = 5; // the thread's token wait word (bumped + notified at each handoff to it)
const T_DOOMED = 6; // part of a deadlock: throws SchedHalted when it wakes
const T_STEPS = 7; // steps this thread took
const T_WORDS = 16;

export const ST_ABSENT = 0;
export const ST_RUNNABLE = 1;
export const ST_BLOCKED = 2;
export const ST_EXITED = 3;

export const HALT_DEADLOCK = 1;
export const HALT_DIVERGED = 2;
export const HALT_HARNESS = 3;
export const HALT_NOT_STOPPED = 4;
const HALT_NAMES = ['', 'deadlock', 'diverged', 'harness', 'not-stopped'];

const REPLAY_NONE = 0;
const REPLAY_FILE = 1;
const REPLAY_STRING = 2;

export const SETTLED_IDLE = 1;
export const SETTLED_TIMEOUT = 2;

/** Thrown in a thread the scheduler found deadlocked (after the halt): the run's report names the deadlock. */
export class SchedHalted extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SchedHalted';
  }
}

export interface SchedViews {
  views: Views;
  ctl: Int32Array;
  f: Float64Array;
  th: Int32Array;
  dl: Float64Array;
  expCp: Int32Array;
  cps: Int32Array;
  decisions: Uint8Array;
  digests: Uint8Array;
  /** Every Int32 word of the buffer before guest memory (wait words are all there). */
  all: Int32Array;
  threads: number;
  logSteps: number;
}

export function schedViews(views: Views): SchedViews {
  const l = views.layout;
  const logSteps = l.params.schedLogSteps ?? 0;
  if (logSteps <= 0 || l.sched.bytes === 0) throw new Error('sched: the buffer has no sched region (--sched off)');
  const a = (n: number) => Math.ceil(n / CACHE_LINE) * CACHE_LINE;
  const sab = views.sab;
  let off = l.sched.offset;
  const take = (bytes: number) => {
    const o = off;
    off += bytes;
    return o;
  };
  const threads = l.threads;
  const ctl = new Int32Array(sab, take(CTL_WORDS * 4), CTL_WORDS);
  const f = new Float64Array(sab, take(F_WORDS * 8), F_WORDS);
  const th = new Int32Array(sab, take(a(threads * T_WORDS * 4)), threads * T_WORDS);
  const dl = new Float64Array(sab, take(a(threads * 8)), threads);
  const expCp = new Int32Array(sab, take(64 * 4), 64);
  const cps = new Int32Array(sab, take(a((logSteps / CHECKPOINT_STEPS) * 4)), logSteps / CHECKPOINT_STEPS);
  const decisions = new Uint8Array(sab, take(a(logSteps)), logSteps);
  const digests = new Uint8Array(sab, take(a(logSteps)), logSteps);
  if (off > l.sched.offset + l.sched.bytes) throw new Error('sched: region overrun');
  const all = new Int32Array(sab, 0, l.guest.offset / 4);
  return { views, ctl, f, th, dl, expCp, cps, decisions, digests, all, threads, logSteps };
}

// ---- hashing ----
function mix1(h: number, w: number): number {
  w = Math.imul(w, 0xcc9e2d51);
  w = (w << 15) | (w >>> 17);
  w = Math.imul(w, 0x1b873593);
  h ^= w;
  h = (h << 13) | (h >>> 19);
  return (Math.imul(h, 5) + 0xe6546b64) | 0;
}
function mix2(h: number, w: number): number {
  w = Math.imul(w ^ (w >>> 16), 0x85ebca6b);
  w = Math.imul(w ^ (w >>> 13), 0xc2b2ae35);
  h = Math.imul(h ^ w, 0x01000193);
  return (h ^ (h >>> 15)) | 0;
}
const digestOf = (thread: number, kind: number, obj: number): number => Math.imul(obj ^ (kind << 24) ^ (thread << 16), 0x9e3779b1) >>> 24;
const hex8 = (x: number) => (x >>> 0).toString(16).padStart(8, '0');

// ---- sfc32 over four shared words (only the token holder or main, before the start, calls it) ----
function rngNext(c: Int32Array): number {
  let a = c[C_RNG];
  let b = c[C_RNG + 1];
  let cc = c[C_RNG + 2];
  const d = c[C_RNG + 3];
  const t = (((a + b) | 0) + d) | 0;
  c[C_RNG + 3] = (d + 1) | 0;
  a = b ^ (b >>> 9);
  b = (cc + (cc << 3)) | 0;
  cc = (cc << 21) | (cc >>> 11);
  cc = (cc + t) | 0;
  c[C_RNG] = a;
  c[C_RNG + 1] = b;
  c[C_RNG + 2] = cc;
  return t >>> 0;
}
const rngBelow = (c: Int32Array, n: number) => Math.floor((rngNext(c) / 4294967296) * n);

/** The roles that take part in a scheduled run, by thread id. */
export function participants(cfg: Pick<Config, 'cpus' | 'hinting'>): number[] {
  const ids = threadIds(cfg.cpus);
  const out: number[] = [];
  for (let i = 0; i < cfg.cpus; i++) out.push(i);
  if (cfg.hinting !== 'off') out.push(ids.reporter, ids.device);
  return out;
}

// =====================================================================
// Per-thread scheduler (installed with setScheduler in each role thread)
// =====================================================================

export class Scheduler implements SchedHooks {
  readonly s: SchedViews;
  private readonly cand: Int32Array;
  private readonly header: Int32Array;
  private readonly hinting: boolean;
  private haltWall = -1;
  private haltLogicalMs = 0;

  constructor(
    views: Views,
    readonly thread: number,
  ) {
    this.s = schedViews(views);
    this.cand = new Int32Array(this.s.threads);
    this.header = views.header;
    this.hinting = this.s.ctl[C_HINTING] !== 0;
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

  block(arr: Int32Array, idx: number, seen: number, deadlineMs: number): void {
    const { th, dl } = this.s;
    const b = this.thread * T_WORDS;
    const abs = (arr.byteOffset >> 2) + idx;
    th[b + T_WAIT_ABS] = abs;
    th[b + T_WAIT_SEEN] = seen;
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
      if (clock >= f[F_BUDGET]) {
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

  /** Settling is over when every CPU has exited and the reporter is idle with nothing isolated (or gone). */
  private settled(): boolean {
    const { ctl, th } = this.s;
    for (let c = 0; c < ctl[C_CPUS]; c++) if (th[c * T_WORDS + T_STATUS] !== ST_EXITED) return false;
    const rep = ctl[C_REPORTER];
    if (rep < 0 || th[rep * T_WORDS + T_STATUS] === ST_EXITED) return true;
    const v = this.s.views;
    return Atomics.load(v.reporting, REP_STATE) === 0 && v.zone[ZONE_ISOLATED_PAGES] === 0 && this.zoneLockFree();
  }

  /** The mid-run free-list and conservation checks, on a quiescent zone (lock free, one thread running). */
  private structuralCheck(st: number): void {
    const { ctl } = this.s;
    const v = this.s.views;
    ctl[C_CHECKS]++;
    ctl[C_HASH1] = mix1(ctl[C_HASH1], SP_CHECK);
    const z = { pages: v.pages, zone: v.zone, nrPages: v.layout.pages };
    const found: Violation[] = [...checkFreeLists(z), ...checkConservation(z).violations];
    if (found.length > 0) throw new OracleViolation({ ...found[0], message: `${found[0].message} (scheduled check at step ${st})` });
  }

  private wakeable(t: number): boolean {
    const { th, dl, all, f } = this.s;
    const b = t * T_WORDS;
    if (Atomics.load(all, th[b + T_WAIT_ABS]) !== th[b + T_WAIT_SEEN]) return true;
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
    const { ctl, f, th } = this.s;
    const cand = this.cand;
    const replay = ctl[C_REPLAY];
    if (replay === REPLAY_FILE && st <= this.s.logSteps) {
      const want = this.s.decisions[st - 1];
      for (let i = 0; i < n; i++) if (cand[i] === want) return want;
      this.halt(HALT_DIVERGED, st, false);
      return -1;
    }
    if (ctl[C_STRATEGY] === 1) return cand[n === 1 ? 0 : rngBelow(ctl, n)];
    // PCT: at the i-th change point the running thread drops to priority d-1-i
    // (below every initial priority); then the highest-priority runnable runs.
    // Change points are counted per class of scheduling point, over choice
    // steps only (more than one runnable thread): change point j fires at the
    // F_CP[j]-th choice step of class C_CP_CLASS[j] (see initSched).
    const cls = n > 1 ? CP_CLASS_OF_KIND[kind] ?? -1 : -1;
    if (cls >= 0) {
      const depth = ctl[C_DEPTH];
      const seen = ++ctl[C_CLS_SEEN + cls];
      for (let j = 0; j < depth - 1; j++) {
        if (ctl[C_CP_CLASS + j] !== cls || f[F_CP + j] !== seen) continue;
        th[me * T_WORDS + T_PRIO] = depth - 1 - ctl[C_NEXT_CP];
        ctl[C_NEXT_CP]++;
      }
    }
    let best = cand[0];
    for (let i = 1; i < n; i++) if (th[cand[i] * T_WORDS + T_PRIO] > th[best * T_WORDS + T_PRIO]) best = cand[i];
    return best;
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

function haltSchedViews(s: SchedViews, reason: number, st: number, thread: number): void {
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

// =====================================================================
// Main-thread side: set-up, start, halt, outcome, schedule strings/files
// =====================================================================

export interface ScheduleRecord {
  format: 'balloon-sim-schedule';
  version: 1;
  strategy: 'random' | 'pct';
  pctDepth: number;
  seed: number;
  /** FNV-1a of the rerun command: the configuration the schedule belongs to. */
  configKey: string;
  rerun: string;
  steps: number;
  traceHash: string;
  first: number;
  /** Low 16 bits of the trace hash every checkpointEvery steps. */
  checkpointEvery: number;
  checkpoints: number[];
  /** File only: one byte per step, base64 (the thread chosen after each step, and the event digest). */
  decisions?: string;
  digests?: string;
  truncated?: boolean;
  outcome?: { ok: boolean; abortStep: number; violation?: Violation; halt?: string };
}

export function configKey(cfg: Config): string {
  const s = rerunCommand(cfg);
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193);
  return hex8(h);
}

const STRING_PREFIX = 'bsched1';

/** The short form: strategy, depth, seed, steps, trace hash, config key, sparse checkpoints. */
export function scheduleString(r: ScheduleRecord): string {
  return [STRING_PREFIX, r.strategy, r.pctDepth, r.seed, r.steps, r.traceHash, r.configKey, r.first, r.checkpointEvery, r.checkpoints.map((c) => c.toString(16).padStart(4, '0')).join('')].join('.');
}

export class ScheduleParseError extends Error {}

/** Parse a schedule string (bsched1.…) or a schedule file's JSON text. */
export function parseSchedule(text: string): ScheduleRecord {
  const t = text.trim();
  if (t.startsWith(STRING_PREFIX + '.')) {
    const p = t.split('.');
    if (p.length !== 10) throw new ScheduleParseError('a schedule string has 10 dot-separated fields');
    const [, strategy, depth, seed, steps, hash, key, first, every, cps] = p;
    if (strategy !== 'random' && strategy !== 'pct') throw new ScheduleParseError(`unknown strategy '${strategy}'`);
    if (!/^[0-9a-f]*$/.test(cps) || cps.length % 4 !== 0) throw new ScheduleParseError('bad checkpoint field');
    const nums = [depth, seed, steps, first, every].map(Number);
    if (nums.some((x) => !Number.isInteger(x) || x < 0)) throw new ScheduleParseError('bad numeric field');
    const checkpoints: number[] = [];
    for (let i = 0; i < cps.length; i += 4) checkpoints.push(parseInt(cps.slice(i, i + 4), 16));
    return { format: 'balloon-sim-schedule', version: 1, strategy, pctDepth: nums[0], seed: nums[1], configKey: key, rerun: '', steps: nums[2], traceHash: hash, first: nums[3], checkpointEvery: nums[4], checkpoints };
  }
  let j: ScheduleRecord;
  try {
    j = JSON.parse(t) as ScheduleRecord;
  } catch {
    throw new ScheduleParseError('neither a schedule string (bsched1.…) nor a schedule file (JSON)');
  }
  if (j.format !== 'balloon-sim-schedule' || j.version !== 1) throw new ScheduleParseError('not a balloon-sim schedule file (format/version)');
  return j;
}

/** Set up the sched region before any role starts. */
export function initSched(views: Views, cfg: Config, replay: ScheduleRecord | null): void {
  const s = schedViews(views);
  const { ctl, f, th, dl } = s;
  ctl.fill(0);
  f.fill(0);
  th.fill(0);
  dl.fill(Infinity);
  const ids = threadIds(cfg.cpus);
  const parts = participants(cfg);
  ctl[C_STRATEGY] = cfg.sched === 'random' ? 1 : 2;
  ctl[C_TOKEN] = -1;
  ctl[C_DEPTH] = cfg.pctDepth;
  ctl[C_CPUS] = cfg.cpus;
  ctl[C_REPORTER] = cfg.hinting !== 'off' ? ids.reporter : -1;
  ctl[C_HINTING] = cfg.hinting !== 'off' ? 1 : 0;
  ctl[C_THREADS] = s.threads;
  ctl[C_HASH1] = 0x5ced0001;
  ctl[C_HASH2] = 0x5ced0002;
  // The scheduler's stream: its own sub-seed of the master seed.
  const seed = subSeed(cfg.seed, 0x5ced);
  ctl[C_RNG] = splitmix32(seed) | 0;
  ctl[C_RNG + 1] = splitmix32(ctl[C_RNG] ^ 0x6a09e667) | 0;
  ctl[C_RNG + 2] = splitmix32(ctl[C_RNG + 1] ^ 0xbb67ae85) | 0;
  ctl[C_RNG + 3] = 1;
  for (let i = 0; i < 12; i++) rngNext(ctl);
  f[F_BUDGET] = Math.max(1, Math.round(cfg.durationMs * TICKS_PER_MS));
  f[F_SETTLE_TICKS] = cfg.settleTimeoutMs * TICKS_PER_MS;
  f[F_CHECK_TICKS] = cfg.checkIntervalMs * TICKS_PER_MS;
  f[F_NEXT_CHECK] = cfg.checkIntervalMs * TICKS_PER_MS;
  f[F_WAIT_TICKS] = cfg.waitTimeoutMs * TICKS_PER_MS;
  for (const t of parts) th[t * T_WORDS + T_STATUS] = ST_RUNNABLE;
  // PCT: random distinct priorities d..d+n-1, and d-1 change points, each in
  // a class drawn uniformly and at a position in [1, k_c] of that class's
  // choice steps, k_c estimated from the logical budget (CP_CLASS_SHARE).
  const perm = parts.slice();
  for (let i = perm.length - 1; i > 0; i--) {
    const j = rngBelow(ctl, i + 1);
    [perm[i], perm[j]] = [perm[j], perm[i]];
  }
  perm.forEach((t, i) => (th[t * T_WORDS + T_PRIO] = cfg.pctDepth + i));
  for (let i = 0; i < cfg.pctDepth - 1; i++) {
    const cls = rngBelow(ctl, CP_CLASSES);
    ctl[C_CP_CLASS + i] = cls;
    f[F_CP + i] = 1 + rngBelow(ctl, Math.max(1, Math.round(f[F_BUDGET] * CP_CLASS_SHARE[cls])));
  }
  // The first decision: among every participant.
  let first: number;
  if (cfg.sched === 'random') first = parts[rngBelow(ctl, parts.length)];
  else first = perm[perm.length - 1];
  if (replay) {
    ctl[C_REPLAY_STEPS] = replay.steps;
    if (replay.decisions && replay.digests) {
      ctl[C_REPLAY] = REPLAY_FILE;
      const d = Buffer.from(replay.decisions, 'base64');
      const g = Buffer.from(replay.digests, 'base64');
      s.decisions.set(d.subarray(0, s.logSteps));
      s.digests.set(g.subarray(0, s.logSteps));
      first = replay.first;
    } else {
      ctl[C_REPLAY] = REPLAY_STRING;
      ctl[C_CP_EVERY] = replay.checkpointEvery;
      ctl[C_EXP_CP_N] = Math.min(replay.checkpoints.length, s.expCp.length);
      replay.checkpoints.slice(0, s.expCp.length).forEach((c, i) => (s.expCp[i] = c));
    }
  }
  ctl[C_FIRST] = first;
}

/** Hand the first token (main, after RUNNING is published). */
export function startSched(views: Views): void {
  const s = schedViews(views);
  const first = s.ctl[C_FIRST];
  // PUBLISH + WAKE the first thread (see Scheduler.handoff).
  Atomics.store(s.ctl, C_TOKEN, first);
  Atomics.add(s.th, first * T_WORDS + T_GO, 1);
  Atomics.notify(s.th, first * T_WORDS + T_GO, 1);
}

/** Main gives up on the scheduled run (no progress, a role never started): everyone runs free to its exit. */
export function haltSched(views: Views, reason = HALT_HARNESS): void {
  const s = schedViews(views);
  haltSchedViews(s, reason, s.ctl[C_STEP], -1);
}

export const schedSteps = (views: Views): number => Atomics.load(schedViews(views).ctl, C_STEP);
export const schedDone = (views: Views): boolean => Atomics.load(schedViews(views).ctl, C_DONE) !== 0;

export interface SchedOutcome {
  strategy: 'random' | 'pct';
  pctDepth: number;
  steps: number;
  logicalMs: number;
  traceHash: string;
  switches: number;
  blocks: number;
  timeouts: number;
  clockJumps: number;
  checks: number;
  abortStep: number;
  settled: 'idle' | 'timeout' | null;
  halt: { reason: string; step: number; thread: number } | null;
  /** Liveness violations the scheduler found (deadlock, roles that never stopped). */
  violations: Violation[];
  /** Simulator failures (exit 3): a replay that diverged. */
  errors: string[];
  record: ScheduleRecord;
  schedule: string;
}

function threadName(cfg: Config, t: number): string {
  const ids = threadIds(cfg.cpus);
  return t < cfg.cpus ? `cpu[${t}]` : t === ids.reporter ? 'reporter' : t === ids.device ? 'device' : t === ids.main ? 'main' : `thread ${t}`;
}

/** What a blocked thread waits on, in words. */
function describeWait(views: Views, cfg: Config, abs: number): string {
  const l = views.layout;
  const byte = abs * 4;
  if (byte >= l.locksRegion.offset && byte < l.locksRegion.offset + l.locksRegion.bytes) {
    const lock = Math.floor((byte - l.locksRegion.offset) / CACHE_LINE);
    const owner = views.locks[lock * LOCK_LINE_WORDS + 1] - 1;
    const name = lock === 0 ? 'zone.lock' : lock === 1 ? 'balloon_lock' : lock === 2 ? 'vq.lock' : `pcp.lock[${lock - 3}]`;
    return `lock ${name} (held by ${owner >= 0 ? threadName(cfg, owner) : 'nobody'})`;
  }
  return `word at byte ${byte}`;
}

/** After every role stopped: read the scheduler's results and build the schedule record. */
export function schedOutcome(views: Views, cfg: Config, replay: ScheduleRecord | null): SchedOutcome {
  const s = schedViews(views);
  const { ctl, f, th } = s;
  const steps = ctl[C_STEP];
  const traceHash = hex8(ctl[C_HASH1]) + hex8(ctl[C_HASH2]);
  const logged = Math.min(steps, s.logSteps);
  // Sparse checkpoints for the string: at most STRING_CHECKPOINTS, on a power-of-2 multiple of CHECKPOINT_STEPS.
  let every = CHECKPOINT_STEPS;
  while (Math.floor(steps / every) > STRING_CHECKPOINTS) every *= 2;
  const checkpoints: number[] = [];
  for (let k = every; k <= steps && k / CHECKPOINT_STEPS - 1 < s.cps.length; k += every) checkpoints.push(s.cps[k / CHECKPOINT_STEPS - 1] & 0xffff);
  const record: ScheduleRecord = {
    format: 'balloon-sim-schedule',
    version: 1,
    strategy: cfg.sched === 'random' ? 'random' : 'pct',
    pctDepth: cfg.pctDepth,
    seed: cfg.seed,
    configKey: configKey(cfg),
    rerun: rerunCommand(cfg),
    steps,
    traceHash,
    first: ctl[C_FIRST],
    checkpointEvery: every,
    checkpoints,
  };
  const haltReason = ctl[C_HALT_REASON];
  const halt = Atomics.load(ctl, C_HALT) !== 0 ? { reason: HALT_NAMES[haltReason] ?? String(haltReason), step: ctl[C_HALT_STEP], thread: ctl[C_HALT_THREAD] } : null;
  const violations: Violation[] = [];
  const errors: string[] = [];
  const schedule = scheduleString(record);
  if (halt && haltReason === HALT_DEADLOCK) {
    const waits: string[] = [];
    for (let t = 0; t < s.threads; t++) if (th[t * T_WORDS + T_DOOMED] !== 0) waits.push(`${threadName(cfg, t)} waits on ${describeWait(views, cfg, th[t * T_WORDS + T_WAIT_ABS])}`);
    violations.push({ oracle: 'liveness', message: `deadlock at step ${halt.step} (logical ${(f[F_CLOCK] / TICKS_PER_MS).toFixed(1)} ms): no thread is runnable and none waits with a deadline: ${waits.join('; ')}; seed ${cfg.seed}, schedule ${schedule}` });
  } else if (halt && haltReason === HALT_NOT_STOPPED) {
    const left: string[] = [];
    for (const t of participants(cfg)) if (th[t * T_WORDS + T_STATUS] !== ST_EXITED) left.push(threadName(cfg, t));
    violations.push({ oracle: 'liveness', message: `roles did not stop within --wait-timeout (${cfg.waitTimeoutMs} logical ms) after the run ended: ${left.join(', ')}; seed ${cfg.seed}, schedule ${schedule}` });
  } else if (halt && haltReason === HALT_DIVERGED) {
    errors.push(`schedule diverged at step ${halt.step}: the run did not follow the replayed schedule (${replay ? (replay.decisions ? 'file' : 'string') : '?'}, ${replay?.steps ?? '?'} steps recorded)`);
  }
  if (replay && errors.length === 0 && !(halt && haltReason === HALT_HARNESS)) {
    // The run ended: it must have ended where the recording did, with the same trace.
    if (steps !== replay.steps) errors.push(`schedule diverged at step ${Math.min(steps, replay.steps) + 1}: the replay took ${steps} steps, the schedule ${replay.steps}`);
    else if (traceHash !== replay.traceHash) errors.push(`schedule diverged at step ${steps}: trace hash ${traceHash} != recorded ${replay.traceHash}`);
  }
  if (steps > 0) {
    record.decisions = Buffer.from(s.decisions.subarray(0, logged)).toString('base64');
    record.digests = Buffer.from(s.digests.subarray(0, logged)).toString('base64');
    if (steps > s.logSteps) record.truncated = true;
  }
  const settledCode = ctl[C_SETTLED];
  return {
    strategy: record.strategy,
    pctDepth: cfg.pctDepth,
    steps,
    logicalMs: f[F_CLOCK] / TICKS_PER_MS,
    traceHash,
    switches: ctl[C_SWITCHES],
    blocks: ctl[C_BLOCKS],
    timeouts: ctl[C_TIMEOUTS],
    clockJumps: ctl[C_SKIPS],
    checks: ctl[C_CHECKS],
    abortStep: ctl[C_ABORT_STEP],
    settled: settledCode === SETTLED_IDLE ? 'idle' : settledCode === SETTLED_TIMEOUT ? 'timeout' : null,
    halt,
    violations,
    errors,
    record,
    schedule,
  };
}

export const SP_KIND_NAMES = SP_NAMES;
export { SCHED_LOG_STEPS };

/**
 * Main thread, scheduled mode: the roles drive themselves (phases and checks
 * happen inside the scheduler at logical times), so main only watches for
 * progress until every role returned. A scheduled run that takes no step
 * for --wait-timeout + 5 s of wall time has a role stuck outside any
 * scheduling point: main halts the scheduler and returns the error (exit 3).
 */
export async function driveScheduled(views: Views, cfg: Config, allReturned: () => boolean, onTick: () => void): Promise<string | null> {
  const s = schedViews(views);
  let last = -1;
  let lastChange = performance.now();
  const bound = cfg.waitTimeoutMs + 5000;
  for (;;) {
    if (allReturned()) return null;
    const st = Atomics.load(s.ctl, C_STEP);
    const now = performance.now();
    if (st !== last) {
      last = st;
      lastChange = now;
    } else if (now - lastChange > bound && Atomics.load(s.ctl, C_HALT) === 0 && Atomics.load(s.ctl, C_DONE) === 0) {
      haltSched(views, HALT_HARNESS);
      return `scheduled run made no progress for ${bound} ms at step ${st} (token held by thread ${Atomics.load(s.ctl, C_TOKEN)}): a role is stuck outside any scheduling point; seed ${cfg.seed}`;
    }
    onTick();
    await new Promise<void>((r) => setTimeout(r, 10));
  }
}

/** --replay FILE|STRING -> the schedule record, checked against this configuration. Throws UsageError (exit 2). */
export function loadReplay(cfg: Config, readFile: (p: string) => string): ScheduleRecord {
  const arg = cfg.replay;
  let rec: ScheduleRecord;
  try {
    rec = parseSchedule(arg.trim().startsWith(STRING_PREFIX + '.') ? arg : readFile(arg));
  } catch (e) {
    const why = e instanceof ScheduleParseError ? e.message : e instanceof Error ? e.message : String(e);
    throw new UsageError(`--replay: '${arg.length > 60 ? arg.slice(0, 57) + '...' : arg}' is not accepted (${why}); accepted: a schedule file or a bsched1.… string printed by a failing --sched run`);
  }
  if (cfg.sched === 'off') throw new UsageError(`--replay: needs --sched ${rec.strategy} (and the configuration the schedule was recorded with${rec.rerun ? `: ${rec.rerun}` : ''})`);
  const key = configKey(cfg);
  if (rec.configKey !== key) throw new UsageError(`--replay: the schedule was recorded with another configuration (key ${rec.configKey}, this run ${key})${rec.rerun ? `; recorded with: ${rec.rerun}` : ''}`);
  return rec;
}

// The words of the seeded scheduler's region (src/shm/layout.ts places its
// parts: schedParts). The run token, the logical clock, every thread's
// status and the strategy's state all live here, in the one shared buffer:
// whichever thread holds the token makes the next decision itself, so the
// scheduler has no state outside the buffer.
//
// Only the token holder (or main, before the first token is handed out)
// writes these words, with plain stores; the handoff (a seq-cst store of the
// token plus a seq-cst RMW on the next thread's go word, src/sched/scheduler.ts)
// orders them for the next holder.

import { SCHED_CHECKPOINT_STEPS, SCHED_CTL_WORDS, SCHED_EXPECTED_CHECKPOINTS, SCHED_F_WORDS, SCHED_T_WORDS, type Views } from '../shm/layout.js';

/** Logical ticks per logical millisecond. */
export const TICKS_PER_MS = 10;
export const CHECKPOINT_STEPS = SCHED_CHECKPOINT_STEPS;

// ---- control words (Int32, SCHED_CTL_WORDS) ----
export const C_STRATEGY = 0; // Strategy.id
export const C_TOKEN = 1; // thread holding the run token, -1 none
export const C_HALT = 2; // 0 running, 1 halted (everyone runs free to its exit)
export const C_STEP = 3; // steps taken
export const C_HALT_REASON = 4;
export const C_HALT_STEP = 5;
export const C_DONE = 6; // every participant exited
export const C_SWITCHES = 7; // token handoffs
export const C_CHECKS = 8; // scheduled structural checks
export const C_HASH1 = 9;
export const C_HASH2 = 10;
export const C_RNG = 11; // 4 words of sfc32 state (the strategies' stream)
export const C_DEPTH = 15; // PCT depth d
export const C_NEXT_CP = 16; // PCT change points fired so far
export const C_REPLAY = 17; // REPLAY_*
export const C_REPLAY_STEPS = 18;
export const C_ABORT_STEP = 19; // first step that saw RUN_ABORT
export const C_SETTLED = 20; // SETTLED_*
export const C_CPUS = 21;
export const C_REPORTER = 22; // thread id, -1 if not a participant
export const C_HINTING = 23; // 1: the run settles (a reporter and a device take part)
export const C_THREADS = 24;
export const C_BLOCKS = 25; // blocking yields
export const C_SKIPS = 26; // clock jumps over idle time
export const C_CP_EVERY = 27; // string replay: checkpoint interval
export const C_EXP_CP_N = 28; // string replay: expected checkpoints
export const C_HALT_THREAD = 29;
export const C_FIRST = 30; // the first decision (made by main)
export const C_TIMEOUTS = 31; // blocked waits ended by their logical deadline
export const C_CP_CLASS = 32; // PCT: class of change point j (16 words)
export const C_CLS_SEEN = 48; // PCT: choice steps seen per class (CP_CLASSES words)
/** Main asks the run to end its workload now (an interrupt, RunHooks.interrupt): the only word main
 *  writes after the first token; Atomics.store by main, Atomics.load by the token holder's housekeeping. */
export const C_INTERRUPT = 60;

// ---- Float64 words (SCHED_F_WORDS) ----
export const F_CLOCK = 0; // logical ticks
export const F_BUDGET = 1; // tick at which RUNNING ends
export const F_SETTLE_TICKS = 2;
export const F_SETTLE_START = 3;
export const F_STOP_AT = 4; // tick STOPPING/ABORT was first seen
export const F_NEXT_CHECK = 5;
export const F_CHECK_TICKS = 6;
export const F_WAIT_TICKS = 7;
export const F_CP = 16; // PCT change points (position within their class), up to 16

// ---- per-thread Int32 words (SCHED_T_WORDS each) ----
export const T_STATUS = 0;
export const T_WAIT_ABS = 1; // absolute Int32 index of the blocked-on word
export const T_WAIT_SEEN = 2;
export const T_GEN_SEEN = 3;
export const T_PRIO = 4;
export const T_GO = 5; // the thread's token wait word (bumped + notified at each handoff to it)
export const T_DOOMED = 6; // part of a deadlock: throws SchedHalted when it wakes
export const T_STEPS = 7; // steps this thread took
/** 1: the thread is blocked in a strict wait (no semantic timeout): only a change of its word with the wake-up issued (or a run-state change) makes it runnable. */
export const T_STRICT = 8;
export const T_WORDS = SCHED_T_WORDS;

export const ST_ABSENT = 0;
export const ST_RUNNABLE = 1;
export const ST_BLOCKED = 2;
export const ST_EXITED = 3;

export const HALT_DEADLOCK = 1;
export const HALT_DIVERGED = 2;
export const HALT_HARNESS = 3;
export const HALT_NOT_STOPPED = 4;
export const HALT_NAMES = ['', 'deadlock', 'diverged', 'harness', 'not-stopped'];

export const REPLAY_NONE = 0;
export const REPLAY_FILE = 1;
export const REPLAY_STRING = 2;

export const SETTLED_IDLE = 1;
export const SETTLED_TIMEOUT = 2;

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
  const sab = views.sab;
  const p = l.schedParts;
  const at = (rel: number) => l.sched.offset + rel;
  const threads = l.threads;
  return {
    views,
    ctl: new Int32Array(sab, at(p.ctl), SCHED_CTL_WORDS),
    f: new Float64Array(sab, at(p.f), SCHED_F_WORDS),
    th: new Int32Array(sab, at(p.th), threads * T_WORDS),
    dl: new Float64Array(sab, at(p.dl), threads),
    expCp: new Int32Array(sab, at(p.expCp), SCHED_EXPECTED_CHECKPOINTS),
    cps: new Int32Array(sab, at(p.cps), logSteps / CHECKPOINT_STEPS),
    decisions: new Uint8Array(sab, at(p.decisions), logSteps),
    digests: new Uint8Array(sab, at(p.digests), logSteps),
    all: new Int32Array(sab, 0, l.guest.offset / 4),
    threads,
    logSteps,
  };
}

// ---- sfc32 over four shared words (only the token holder, or main before the start, calls it) ----
export function rngNext(c: Int32Array): number {
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
export const rngBelow = (c: Int32Array, n: number): number => Math.floor((rngNext(c) / 4294967296) * n);

// ---- the trace hash: two 32-bit murmur-style lanes ----
export function mix1(h: number, w: number): number {
  w = Math.imul(w, 0xcc9e2d51);
  w = (w << 15) | (w >>> 17);
  w = Math.imul(w, 0x1b873593);
  h ^= w;
  h = (h << 13) | (h >>> 19);
  return (Math.imul(h, 5) + 0xe6546b64) | 0;
}
export function mix2(h: number, w: number): number {
  w = Math.imul(w ^ (w >>> 16), 0x85ebca6b);
  w = Math.imul(w ^ (w >>> 13), 0xc2b2ae35);
  h = Math.imul(h ^ w, 0x01000193);
  return (h ^ (h >>> 15)) | 0;
}
/** One byte per step for the schedule file: who took the step, what kind, on what. */
export const digestOf = (thread: number, kind: number, obj: number): number => Math.imul(obj ^ (kind << 24) ^ (thread << 16), 0x9e3779b1) >>> 24;
export const hex8 = (x: number): string => (x >>> 0).toString(16).padStart(8, '0');

// Per-thread CPU time from Linux schedstat: who spent the cores during the
// workload window.
//
// Why: this machine runs every role on two shared cores, so the device's
// discards (the *host's* work, which on a real machine runs on a host core
// outside the guest's vCPUs) and the reporter's passes (the guest's work)
// both come out of the CPUs' wall-clock throughput, and wall-clock ops/s
// cannot tell the two apart. /proc/<pid>/task/<tid>/schedstat gives each
// thread's time on a core and its time waiting for one, in nanoseconds
// (kernel/sched/stats.c: sum_exec_runtime, run_delay, pcount), so a run can
// say what hinting cost the guest and what it cost the host separately.
//
// Each role writes its OS thread id into its metric slot (METRIC_OS_TID)
// before it reports ready; main snapshots every thread when it publishes
// RUNNING and again when the workload window closes, the same window the
// ops/s figures use.

import { readFileSync, readlinkSync } from 'node:fs';

export interface Schedstat {
  /** Time on a core (sum_exec_runtime). */
  runNs: number;
  /** Time runnable but waiting for a core (run_delay). */
  runqWaitNs: number;
  /** Times scheduled onto a core (pcount). */
  slices: number;
}

/** Parse one schedstat line ("run_ns wait_ns slices"); null if it is not one. */
export function parseSchedstat(text: string): Schedstat | null {
  const f = text.trim().split(/\s+/);
  if (f.length < 3) return null;
  const [run, wait, slices] = f.slice(0, 3).map(Number);
  if (![run, wait, slices].every((x) => Number.isFinite(x) && x >= 0)) return null;
  return { runNs: run, runqWaitNs: wait, slices };
}

/** This thread's OS thread id (from /proc/thread-self), or 0 where there is none. */
export function ownTid(): number {
  try {
    // "/proc/thread-self" -> "<pid>/task/<tid>"
    const m = /\/task\/(\d+)$/.exec(readlinkSync('/proc/thread-self'));
    return m ? Number(m[1]) : 0;
  } catch {
    return 0;
  }
}

/** A thread of this process's schedstat, or null (no such thread, no procfs, no schedstat). */
export function readSchedstat(tid: number): Schedstat | null {
  if (!(tid > 0)) return null;
  try {
    return parseSchedstat(readFileSync(`/proc/self/task/${tid}/schedstat`, 'utf8'));
  } catch {
    return null;
  }
}

export interface ThreadCpuTime extends Schedstat {
  /** Window time neither running nor runnable: sleeping (lock waits, timed waits). */
  sleepNs: number;
}

/** What happened to one thread between two snapshots of a window `windowNs` long. */
export function threadDelta(a: Schedstat, b: Schedstat, windowNs: number): ThreadCpuTime {
  const runNs = Math.max(0, b.runNs - a.runNs);
  const runqWaitNs = Math.max(0, b.runqWaitNs - a.runqWaitNs);
  return { runNs, runqWaitNs, slices: Math.max(0, b.slices - a.slices), sleepNs: Math.max(0, windowNs - runNs - runqWaitNs) };
}

export interface RoleCpuTime {
  threads: number;
  runNs: number;
  runqWaitNs: number;
  sleepNs: number;
}

export interface CpuTimeStats {
  source: 'schedstat';
  /** The workload window the snapshots bracket (the ops/s window). */
  windowNs: number;
  cpus: RoleCpuTime;
  reporter?: RoleCpuTime;
  device?: RoleCpuTime;
  /** The orchestrating main thread (sampling, mid-run checks). */
  main: RoleCpuTime;
  /**
   * The guest's CPU time: the CPUs' and the reporter's time on a core. The
   * device stands for the host, whose work a real VM does on host cores.
   */
  guestRunNs: number;
  /** The host's CPU time: the device thread's time on a core. */
  hostRunNs: number;
  /** Guest CPU time per workload op (guestRunNs / ops; 0 with no ops). */
  guestRunNsPerOp: number;
  /** Workload ops per second of guest CPU time (ops / guestRunNs). */
  opsPerGuestCpuSec: number;
}

export function sumRole(ts: ThreadCpuTime[]): RoleCpuTime {
  const r: RoleCpuTime = { threads: ts.length, runNs: 0, runqWaitNs: 0, sleepNs: 0 };
  for (const t of ts) {
    r.runNs += t.runNs;
    r.runqWaitNs += t.runqWaitNs;
    r.sleepNs += t.sleepNs;
  }
  return r;
}

/** Summarise a window's per-role thread times; `ops` are the CPUs' ops in the window. */
export function cpuTimeStats(windowNs: number, roles: { cpus: ThreadCpuTime[]; reporter?: ThreadCpuTime; device?: ThreadCpuTime; main: ThreadCpuTime }, ops: number): CpuTimeStats {
  const cpus = sumRole(roles.cpus);
  const reporter = roles.reporter ? sumRole([roles.reporter]) : undefined;
  const device = roles.device ? sumRole([roles.device]) : undefined;
  const guestRunNs = cpus.runNs + (reporter?.runNs ?? 0);
  return {
    source: 'schedstat',
    windowNs,
    cpus,
    ...(reporter ? { reporter } : {}),
    ...(device ? { device } : {}),
    main: sumRole([roles.main]),
    guestRunNs,
    hostRunNs: device?.runNs ?? 0,
    guestRunNsPerOp: ops > 0 ? guestRunNs / ops : 0,
    opsPerGuestCpuSec: guestRunNs > 0 ? ops / (guestRunNs / 1e9) : 0,
  };
}

/** The snapshots of a window: one schedstat per thread id, null where unreadable. */
export const snapshot = (tids: number[]): (Schedstat | null)[] => tids.map(readSchedstat);

// --cpu-threads N: the simulated CPUs run M:N, several on one thread, each
// thread switching between its CPUs between ops (docs/DESIGN.md §4).
//
// Why: a kernel CPU that holds a spinlock is not preempted, so a zone lock
// hold lasts as long as its work. With a thread per CPU and more CPUs than
// host cores, the host preempts a thread wherever it is, inside a zone lock
// hold too (lock-holder preemption), and every switch between CPUs is a
// host context switch of a V8 isolate: on the 2-core development machine
// that rotation alone took page_fault1 at 8 CPUs to 0.69 of 2 CPUs, against
// 0.89 when the same 8 CPUs were switched inside 2 threads
// (bench/rotation.ts). --cpu-slots bounds the threads that run at once but
// still hands the core from thread to thread through the host; here a switch
// is a generator's resume.
//
// A CPU's workload is a generator (Cpu.steps(), src/sim/workload.ts) that
// yields only between ops, where it holds no lock: 0 when its slice is over,
// or the time it sleeps until (an allocation failure's backoff, memhog's
// idle). The host resumes its CPUs round robin, skips the sleeping ones,
// and sleeps itself (bounded) while every one of them does.
//
// Simplified: CPU i stays on thread i mod N (no migration between threads);
// a CPU that waits for a lock blocks its thread, so the thread's other CPUs
// wait too (as a kernel CPU spinning on a lock runs nothing else); CPU time
// (schedstat) is per thread, not per simulated CPU.

import { type Cpu, type CpuSteps } from './workload.js';
import { clockMs, waitWhileEquals } from '../locking/sync.js';
import { HDR_RUN_STATE, HDR_STATE_GEN, METRIC_EXTRA, RUN_RUNNING } from '../shm/layout.js';

/** CPU metrics, in the slot of a thread's first CPU (written at its end): resumes of a CPU, and sleeps with every CPU of the thread asleep. */
export const CM_HOST_SWITCHES = METRIC_EXTRA + 26;
export const CM_HOST_IDLE_SLEEPS = METRIC_EXTRA + 27;

/**
 * A hosted CPU's turn before the host resumes the next one. No kernel
 * counterpart (a kernel CPU is never switched out for another). A switch is
 * a generator's resume, yet shorter slices measured slower: `sim --workload
 * page_fault1 --memory 1G --duration 5s --hinting off --warm`, 8 CPUs on 2
 * threads against 2 CPUs, seeds 1 to 4 interleaved, with a temporary build
 * that read the slice from the environment: medians 0.78 at 1 ms, 0.80 at
 * 3 ms (the host scheduler's base slice) and 0.86 at 20 ms, 20 ms ahead of
 * 3 ms in every seed (why is not measured; likely each CPU's data, its held
 * blocks and pcp lists, going cold in between). 20 ms, as --cpu-slots'
 * CPU_SLOT_SLICE_MS.
 */
export const CPU_HOST_SLICE_MS = 20;
/** Longest sleep of a host whose CPUs all sleep: a stop of the run is noticed within this. */
const HOST_SLEEP_SLICE_MS = 100;

/** What the host needs of a CPU (a Cpu; a test's stand-in). */
export interface Switchable {
  readonly cpu: number;
  beginSlice(endMs: number): void;
}

export interface HostedCpu {
  readonly cpu: Switchable;
  readonly steps: CpuSteps;
  /** When the CPU is runnable again (0: now; Infinity: once the run stops). */
  wakeAtMs: number;
  done: boolean;
}

export interface HostStats {
  /** Resumes of a CPU (one per slice or wake-up). */
  switches: number;
  /** Times every CPU of the thread slept and the thread with them. */
  idleSleeps: number;
}

/** The caller's hooks, given its own entries (a HostedCpu with whatever the caller keeps beside it). */
export interface HostHooks<H extends HostedCpu = HostedCpu> {
  /** Before the host resumes `h` (install its per-CPU globals: the tracer). */
  switchTo(h: H): void;
  /** `h` threw: its generator is finished; the host goes on with the others. */
  failed(h: H, e: unknown): void;
}

export function hosted(cpu: Cpu): HostedCpu {
  return { cpu, steps: cpu.steps(), wakeAtMs: 0, done: false };
}

/**
 * Run every CPU of this thread to its end. Returns once all have returned
 * or thrown; the run's stop (RUN_RUNNING left) wakes every sleeping CPU, so
 * each leaves its loop, frees what it holds and returns.
 */
export function hostCpus<H extends HostedCpu>(list: H[], header: Int32Array, hooks: HostHooks<H>, sliceMs = CPU_HOST_SLICE_MS): HostStats {
  const stats: HostStats = { switches: 0, idleSleeps: 0 };
  const n = list.length;
  let alive = list.filter((h) => !h.done).length;
  let next = 0;
  while (alive > 0) {
    // Read the generation before the run state: a stop published after this
    // read bumps it, and the sleep below returns at once.
    const gen = Atomics.load(header, HDR_STATE_GEN);
    const stopped = Atomics.load(header, HDR_RUN_STATE) !== RUN_RUNNING;
    const now = clockMs();
    let pick = -1;
    let soonest = Infinity;
    for (let k = 0; k < n; k++) {
      const i = (next + k) % n;
      const h = list[i];
      if (h.done) continue;
      if (stopped || h.wakeAtMs <= now) {
        pick = i;
        break;
      }
      if (h.wakeAtMs < soonest) soonest = h.wakeAtMs;
    }
    if (pick < 0) {
      // Every CPU here sleeps: so does the thread, until the soonest wake-up or a change of run state.
      stats.idleSleeps++;
      waitWhileEquals(header, HDR_STATE_GEN, gen, Math.max(0, Math.min(soonest - now, HOST_SLEEP_SLICE_MS)), () => Atomics.load(header, HDR_RUN_STATE) !== RUN_RUNNING);
      continue;
    }
    next = (pick + 1) % n;
    const h = list[pick];
    hooks.switchTo(h);
    h.cpu.beginSlice(clockMs() + sliceMs);
    stats.switches++;
    try {
      const r = h.steps.next();
      if (r.done === true) {
        h.done = true;
        alive--;
      } else {
        h.wakeAtMs = r.value;
      }
    } catch (e) {
      h.done = true;
      alive--;
      hooks.failed(h, e);
    }
  }
  return stats;
}

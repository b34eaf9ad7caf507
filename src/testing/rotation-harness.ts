// Benchmark harness (bench/rotation.ts, thin entry workers/testing/rotation-probe.ts):
// what rotating CPUs over the host's cores costs, apart from the host's
// scheduler. Each thread runs one or more guest CPUs of one shared 8-CPU
// buffer through page_fault1's order-0 faults (the real Cpu.faultRegion and
// Cpu.freeAll), switching between its CPUs between ops every `sliceMs`, as
// a host would run more vCPUs than it has cores but with the switch done in
// the thread: the same JIT-compiled code keeps running, only the CPU's data
// changes. bench/rotation.ts sets this against one thread per CPU rotated by
// the host (the simulator's threads, free-running).
// Not used by the simulator.

import { DEFAULT_ZONE_OPTIONS, Zone } from '../mm/buddy.js';
import { GuestMemory } from '../mm/memory.js';
import { Sync } from '../locking/sync.js';
import { HDR_RUN_STATE, type LayoutParams, RUN_RUNNING, createShared, openShared } from '../shm/layout.js';
import { DEFAULT_CONFIG } from '../sim/config.js';
import { Cpu, type WorkloadParams } from '../sim/workload.js';

export interface RotationProbeData {
  sab: SharedArrayBuffer;
  params: LayoutParams;
  /** The guest CPUs this thread runs, in turn. */
  cpus: number[];
  sliceMs: number;
  durationMs: number;
}

/** Faults per step between two looks at the clock (about 0.3 ms of work). */
const STEP_PAGES = 256;

const workloadParams = (cpus: number): WorkloadParams => ({ ...DEFAULT_CONFIG, workload: 'page_fault1', thp: 'never', cpus, regionBytes: 0, warm: true, cpuSlots: 0 });

/**
 * A buffer for `params` as `sim --warm` starts one: the zone laid out, every
 * page touched once and host-backed, the run state RUNNING (no main thread
 * watches it: each probe stops on its own clock). Reuses `reuse` if given.
 */
export function rotationBuffer(params: LayoutParams, reuse?: SharedArrayBuffer): SharedArrayBuffer {
  const views = createShared(params, reuse);
  const zone = new Zone(views, new Sync(views, params.cpus, { spin: 200, waitTimeoutMs: DEFAULT_CONFIG.waitTimeoutMs }), DEFAULT_ZONE_OPTIONS);
  zone.init();
  views.guestF64.fill(0);
  new GuestMemory(views).markAllResident();
  Atomics.store(views.header, HDR_RUN_STATE, RUN_RUNNING);
  return views.sab;
}

/**
 * Run this thread's CPUs for `durationMs`: page_fault1 (fault the region a
 * page at a time, free it all, again), switching to the next CPU once
 * `sliceMs` has passed. Returns the CPUs' turns; the ops are in the metrics.
 */
export function runRotation(d: RotationProbeData): { turns: number } {
  if (d.cpus.length === 0) throw new Error('rotation harness: no CPUs');
  const views = openShared(d.sab, d.params);
  const wp = workloadParams(d.params.cpus);
  const cpus = d.cpus.map((id) => new Cpu(views, new Zone(views, new Sync(views, id, { spin: 200, waitTimeoutMs: DEFAULT_CONFIG.waitTimeoutMs }), DEFAULT_ZONE_OPTIONS), id, wp, 1000 + id));
  // page_fault1's region (no --region: 128 MiB, or the CPU's share of memory if smaller).
  const region = cpus[0].regionPages();
  const faulted = cpus.map(() => 0);
  const t0 = performance.now();
  let cur = 0;
  let turns = 1;
  let sliceEnd = t0 + d.sliceMs;
  // Bounded by the clock: each step faults at most STEP_PAGES pages.
  for (;;) {
    const now = performance.now();
    if (now - t0 >= d.durationMs) break;
    if (cpus.length > 1 && now >= sliceEnd) {
      cur = (cur + 1) % cpus.length;
      sliceEnd = now + d.sliceMs;
      turns++;
    }
    const cpu = cpus[cur];
    const want = Math.min(STEP_PAGES, region - faulted[cur]);
    const got = cpu.faultRegion(want, true);
    if (got < want) throw new Error(`rotation harness: cpu ${cpu.cpu} faulted ${got} of ${want} pages (out of memory)`);
    faulted[cur] += got;
    if (faulted[cur] >= region) {
      cpu.freeAll();
      faulted[cur] = 0;
    }
  }
  // Give everything back, as a CPU does when it exits.
  for (const cpu of cpus) {
    cpu.freeAll();
    cpu.zone.drainPcp(cpu.cpu);
  }
  return { turns };
}

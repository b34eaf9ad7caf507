// Kernel-paths benchmarks (issue: kernel paths). Every ratio compares numbers
// measured in this one run:
//  - single-thread order-0 alloc+free through the per-CPU lists (pcp on);
//  - page_fault1 in both shapes (--thp never: an order-0 fault per page
//    through pcp; --thp always: an order-9 fault per 2 MiB) at 1, 2, 4, 8
//    CPUs, and at 8 CPUs with --cpu-slots and with --cpu-threads (as many
//    running at once as the host has cores), interleaved rounds, medians;
//    8 vs 2 CPUs;
//  - zone lock acquisitions and contentions per op for both shapes with pcp
//    on and off (--lockstat): what the per-CPU lists are for; zone lock wait
//    per op free-running, slotted and M:N (lock-holder preemption);
//  - reporting / off, aeration / off and an A/A control at the kernel's 2 s
//    delay, both shapes, and the THP shape on a guest four times its working
//    set (--region 32M), with bench/reporting.ts's bracketed method.

import { Zone } from '../src/mm/buddy.js';
import { Sync } from '../src/locking/sync.js';
import { type Config, DEFAULT_CONFIG } from '../src/sim/config.js';
import { HDR_RUN_STATE, RUN_RUNNING, createShared } from '../src/shm/layout.js';
import { runSimulation, sharedBufferFor } from '../src/sim/run.js';
import { bracketRatios, median, medianInterval } from '../src/base/stats.js';
import { type BenchReport, round } from './types.js';
import { availableParallelism } from 'node:os';
import { autoCpuBound, slotsInForce } from '../src/locking/cpu-slots.js';

const MiB = 2 ** 20;
const INNER = 10_000;
const SHAPES = ['never', 'always'] as const;
/** Zone lock traffic at 8 CPUs: pcp on free-running, pcp off, pcp on with --cpu-slots, pcp on with --cpu-threads. */
const LOCK_SIDES = ['pcp', 'noPcp', 'pcpSlots', 'pcpThreads'] as const;
type Shape = (typeof SHAPES)[number];

/** Order-0 alloc+free pairs per second on CPU 0 of a 256 MiB zone with pcp on (the list refilled once, then every pair stays on it). */
function pcpPairsPerSec(quick: boolean): { pcp: number; noPcp: number } {
  const rate = (pcp: boolean) => {
    const views = createShared({ cpus: 2, memoryBytes: 256 * MiB, queueSize: 16, ringAlign: 4 });
    const zone = new Zone(views, new Sync(views, 0, { spin: 200, waitTimeoutMs: 10_000 }), { pcp, pcpBatch: 0, pcpHigh: 0 });
    zone.init();
    views.header[HDR_RUN_STATE] = RUN_RUNNING;
    // Fragment the first 16 MiB as a running guest's is (every other page
    // held), so the no-pcp side takes a page off free_area[0] without
    // splitting a 4 MiB block each time.
    const held: number[] = [];
    for (let i = 0; i < 4096; i++) held.push(zone.alloc(0, 0));
    for (const p of held) if (p & 1) zone.free(p, 0, 0);
    const samples: number[] = [];
    const rounds = quick ? 20 : 200;
    for (let r = 0; r < rounds; r++) {
      const t0 = performance.now();
      for (let i = 0; i < INNER; i++) zone.free(zone.alloc(0, 0), 0, 0);
      samples.push(INNER / ((performance.now() - t0) / 1000));
    }
    // Medians of the later half: the first rounds include the JIT's warm-up.
    return median(samples.slice(rounds >> 1));
  };
  // Interleaved, so a drift of the machine hits both sides.
  const pcp: number[] = [];
  const noPcp: number[] = [];
  for (let i = 0; i < 3; i++) {
    pcp.push(rate(true));
    noPcp.push(rate(false));
  }
  return { pcp: median(pcp), noPcp: median(noPcp) };
}

const pf1 = (cpus: number, thp: Shape, seed: number, durationMs: number, extra: Partial<Config> = {}): Config => ({
  ...DEFAULT_CONFIG,
  cpus,
  workload: 'page_fault1',
  thp,
  memoryBytes: 1024 * MiB,
  durationMs,
  seed,
  hinting: 'off',
  checkIntervalMs: 0,
  prefault: true,
  // The simulator's own allocator and fault path (no host cost profile), as
  // core's scaling runs: the shapes and the locks are what is measured here.
  costProfile: 'none',
  hostCosts: null,
  // --warm: every CPU count starts from the same steady state. With only
  // --prefault, the host first backs each page as it is first touched, and
  // 8 CPUs first-touch 4 times the memory 2 CPUs do (each faults its own
  // region) within the run: unequal work, not scaling.
  warm: true,
  ...extra,
});

export async function bench(opts: { quick?: boolean } = {}): Promise<BenchReport> {
  const quick = opts.quick === true;
  const results: Record<string, number> = {};
  const ratios: Record<string, number> = {};

  const pairs = pcpPairsPerSec(quick);
  results.order0PcpPairsPerSec = round(pairs.pcp);
  results.order0NoPcpPairsPerSec = round(pairs.noPcp);
  ratios.order0PcpVsNoPcp = round(pairs.pcp / pairs.noPcp);

  // One buffer per CPU count (the layout depends on it), reused by every run
  // of that count: a fresh 1 GiB buffer per run would add whatever backing
  // the host gives it to that run's speed.
  const buffers = new Map<number, SharedArrayBuffer>();
  const run = async (cfg: Config) => {
    let buffer = buffers.get(cfg.cpus);
    if (buffer === undefined) buffers.set(cfg.cpus, (buffer = sharedBufferFor(cfg)));
    const r = await runSimulation(cfg, { buffer });
    if (!r.ok) throw new Error(`bench run failed: ${r.rerun}`);
    return r;
  };

  // Scaling: both shapes at 1, 2, 4, 8 CPUs, and 8 CPUs with --cpu-slots
  // (at most `cores` CPUs running at once, switched between ops), interleaved rounds.
  // 5 s runs: in 1.5 s each of 8 threads gets about 0.37 s of a core, and
  // their start (JIT warm-up of 8 isolates, the first convoys) is a large
  // share of it (2.21 of 3 core-seconds used in a 1.5 s 8-CPU run, 14.70 of
  // 16 in an 8 s one).
  const reps = quick ? 1 : 3;
  const scaleMs = quick ? 500 : 5000;
  // --cpu-slots auto for 8 CPUs; 0 (no slotted point to speak of) on a host with 8 or more cores.
  const slots = autoCpuBound(8);
  const slotted = slotsInForce({ cpus: 8, cpuSlots: slots });
  const points = [
    { key: '1', cpus: 1, cpuSlots: 0 },
    { key: '2', cpus: 2, cpuSlots: 0 },
    { key: '4', cpus: 4, cpuSlots: 0 },
    { key: '8', cpus: 8, cpuSlots: 0 },
    { key: '8Slots', cpus: 8, cpuSlots: slotted },
    // --cpu-threads auto: the 8 CPUs M:N on as many threads as cores (src/sim/cpu-host.ts).
    { key: '8Threads', cpus: 8, cpuThreads: slotted },
  ];
  const ops: Record<string, number[]> = {};
  for (let rep = 0; rep < reps; rep++) {
    for (const thp of SHAPES) {
      for (const p of points) {
        const r = await run(pf1(p.cpus, thp, 1000 + rep, scaleMs, { cpuSlots: p.cpuSlots ?? 0, cpuThreads: p.cpuThreads ?? 0 }));
        (ops[`${thp}.${p.key}`] ??= []).push(r.totals.opsPerSec);
        // --thp always: the share of 2 MiB faults that found no order-9 block (ops are 4 KiB pages).
        if (thp === 'always') (ops[`${thp}.${p.key}.fallbackShare`] ??= []).push((r.totals.thpFallbacks * 512) / Math.max(1, r.totals.ops));
      }
    }
  }
  results.hostCores = availableParallelism();
  results.cpuSlots = slots;
  for (const thp of SHAPES) {
    for (const p of points) results[`pageFault1OpsPerSec.thp-${thp}.cpus${p.key}`] = round(median(ops[`${thp}.${p.key}`]));
    if (thp === 'always') for (const p of points) results[`thpFallbackShare.cpus${p.key}`] = round(median(ops[`always.${p.key}.fallbackShare`]));
    ratios[`pageFault1Cpus8VsCpus2.thp-${thp}`] = round(median(ops[`${thp}.8`]) / median(ops[`${thp}.2`]));
    ratios[`pageFault1Cpus8SlotsVsCpus2.thp-${thp}`] = round(median(ops[`${thp}.8Slots`]) / median(ops[`${thp}.2`]));
    ratios[`pageFault1Cpus8ThreadsVsCpus2.thp-${thp}`] = round(median(ops[`${thp}.8Threads`]) / median(ops[`${thp}.2`]));
  }

  // Zone lock traffic per op: both shapes, pcp on and off, 8 CPUs, lockstat on.
  const lockReps = quick ? 1 : 3;
  const lk: Record<string, number[]> = {};
  for (let rep = 0; rep < lockReps; rep++) {
    for (const thp of SHAPES) {
      for (const side of LOCK_SIDES) {
        const r = await run(pf1(8, thp, 2000 + rep, quick ? 500 : 1500, { pcp: side !== 'noPcp', cpuSlots: side === 'pcpSlots' ? slotted : 0, cpuThreads: side === 'pcpThreads' ? slotted : 0, lockstat: true }));
        const z = r.locks?.find((l) => l.class === 'zone.lock');
        if (!z) throw new Error('bench: no zone.lock statistics (lockstat on?)');
        const k = `thp-${thp}.${side}`;
        (lk[`${k}.acq`] ??= []).push(z.acquisitions / r.totals.ops);
        (lk[`${k}.con`] ??= []).push(z.contentions / r.totals.ops);
        (lk[`${k}.wait`] ??= []).push(z.waitNs.total / r.totals.ops);
        (lk[`${k}.ops`] ??= []).push(r.totals.opsPerSec);
      }
    }
  }
  for (const thp of SHAPES) {
    for (const side of LOCK_SIDES) {
      const k = `thp-${thp}.${side}`;
      results[`zoneLockAcquisitionsPerOp.${k}`] = round(median(lk[`${k}.acq`]));
      results[`zoneLockContentionsPerOp.${k}`] = round(median(lk[`${k}.con`]));
      results[`zoneLockWaitNsPerOp.${k}`] = round(median(lk[`${k}.wait`]));
      results[`pageFault1OpsPerSecLockstat.${k}`] = round(median(lk[`${k}.ops`]));
    }
    ratios[`zoneLockWaitPerOpSlotsVsFree.thp-${thp}`] = round(median(lk[`thp-${thp}.pcpSlots.wait`]) / median(lk[`thp-${thp}.pcp.wait`]));
    ratios[`zoneLockWaitPerOpThreadsVsFree.thp-${thp}`] = round(median(lk[`thp-${thp}.pcpThreads.wait`]) / median(lk[`thp-${thp}.pcp.wait`]));
    ratios[`zoneLockAcquisitionsPerOpPcpVsNoPcp.thp-${thp}`] = round(median(lk[`thp-${thp}.pcp.acq`]) / median(lk[`thp-${thp}.noPcp.acq`]));
  }

  // Reporting and aeration against off at the kernel's delay, both shapes:
  // off, mode, off, ... brackets (bench/reporting.ts), modes in rotation.
  const modes = ['reporting', 'aeration', 'offControl'] as const;
  const brackets = quick ? 3 : 15;
  const durationMs = quick ? 2500 : 6000;
  // Both shapes with page_fault1's default regions (8 x 102 MiB: the CPUs
  // cycle nearly all of the 1 GiB guest, so a block that waits 2 s on a free
  // list is soon taken again), and the THP shape on a guest larger than its
  // working set (--region 32M: 8 x 32 MiB, a quarter of it).
  const variants: { key: string; thp: Shape; regionBytes: number }[] = [
    { key: 'never', thp: 'never', regionBytes: 0 },
    { key: 'always', thp: 'always', regionBytes: 0 },
    { key: 'always-region32M', thp: 'always', regionBytes: 32 * MiB },
  ];
  for (const { key, thp, regionBytes } of variants) {
    const seq: { mode: string; opsPerSec: number }[] = [];
    const one = async (mode: string, seed: number) => {
      const hinting = mode === 'offControl' ? 'off' : (mode as Config['hinting']);
      // As bench/reporting.ts: the default host cost profile, and pf1's --warm (a guest that has touched its memory).
      const r = await run(pf1(8, thp, seed, durationMs, { hinting, regionBytes, reportDelayMs: 2000, costProfile: DEFAULT_CONFIG.costProfile, hostCosts: DEFAULT_CONFIG.hostCosts }));
      seq.push({ mode, opsPerSec: r.totals.opsPerSec });
      (refaults[mode] ??= []).push(r.host.refaults / (r.durationMs / 1000));
    };
    const refaults: Record<string, number[]> = {};
    await one('off', 3000);
    for (let i = 0; i < brackets; i++) {
      await one(modes[i % modes.length], 3001 + i);
      await one('off', 3001 + i);
    }
    const br = bracketRatios(seq);
    for (const [mode, xs] of Object.entries(refaults)) results[`kernelDelay.thp-${key}.${mode}.refaultsPerSec`] = round(median(xs));
    for (const mode of modes) {
      const b = br[mode];
      const k = `${mode}VsOff.kernelDelay.thp-${key}`;
      ratios[k] = round(median(b.accepted));
      ratios[`${k}.allBrackets`] = round(median(b.all));
      results[`${k}.bracketsAccepted`] = b.accepted.length;
      results[`${k}.bracketsRun`] = b.all.length;
      if (b.accepted.length > 0) {
        const ci = medianInterval(b.accepted);
        results[`${k}.median95Lo`] = round(ci.lo);
        results[`${k}.median95Hi`] = round(ci.hi);
        results[`${k}.median95Coverage`] = round(ci.coverage);
      }
    }
  }

  return {
    name: 'kernel',
    results,
    ratios,
    notes: [
      'targets: order0PcpPairsPerSec >= 20M (single thread, through the per-CPU list); 8 vs 2 CPUs >= 0.7 for both shapes (pageFault1Cpus8VsCpus2 free-running, Cpus8SlotsVsCpus2 with --cpu-slots, Cpus8ThreadsVsCpus2 with --cpu-threads); zoneLockAcquisitionsPerOpPcpVsNoPcp well below 1 (the point of pcp)',
      `host cores ${availableParallelism()}: 8 CPUs are 8 threads on them; cpus8Slots runs 8 CPUs with --cpu-slots ${slots} (at most ${slots} running at once, switched between ops, never inside a lock hold); cpus8Threads runs them M:N with --cpu-threads ${slots} (${slots} threads, each switching between its CPUs between ops); zoneLockWaitPerOp{Slots,Threads}VsFree: zone lock wait per op with slots or M:N over free-running (the share of the wait that is lock-holder preemption)`,
      `order-0 pairs: CPU 0 of a 256 MiB zone whose first 16 MiB is fragmented, ${INNER} pairs per sample, medians of the later half of ${quick ? 20 : 200} samples, pcp on and off interleaved 3 times`,
      `page_fault1: 1 GiB, --warm (the same steady state at every CPU count), --hinting off, ${scaleMs} ms runs, ${reps} interleaved rounds of both shapes at 1, 2, 4, 8 CPUs, medians; --thp never faults order 0 through pcp, --thp always order 9 (pcp's pageblock-order list), falling back to order 0`,
      `zone lock per op: --cpus 8 --lockstat, both shapes with pcp on and off, ${lockReps} rounds, medians of acquisitions/ops and contentions/ops (ops = pages faulted)`,
      `kernelDelay: --report-delay 2s, --cpus 8, --warm, the default host cost profile (the other measurements here use none), ${durationMs} ms runs, ${brackets} brackets per shape (reporting, aeration, offControl in rotation; thp-always-region32M: --thp always --region 32M, a guest four times its working set), the bracketed method of bench/reporting.ts (tolerance 4%), one shared buffer`,
    ],
  };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  console.log(JSON.stringify(await bench({ quick: process.argv.includes('--quick') }), null, 2));
}

// Lock statistics overhead: ops/s with --lockstat on vs off in the same
// process, alternating on/off (ABBA order, so a slow drift of the machine
// hits both sides alike), medians. Target: <= 5% on page_fault1 --cpus 8.
//
// page_fault1 mostly touches pages and takes the zone lock rarely, so it also
// runs churn (alloc/free of small blocks, the zone lock on every op) as the
// worst case for the lock path.
//
// Standalone: `npx tsc -p . && node dist/bench/lockstat.js` prints JSON.
// Environment: LOCKSTAT_BENCH_PAIRS (default 4), LOCKSTAT_BENCH_MS (default 1500).

import { availableParallelism } from 'node:os';
import { pathToFileURL } from 'node:url';
import { type Config, DEFAULT_CONFIG, type Workload } from '../src/sim/config.js';
import { LOCK_ZONE, createShared } from '../src/shm/layout.js';
import { LockStat } from '../src/locking/lockstat.js';
import { runSimulation } from '../src/sim/run.js';
import { Sync } from '../src/locking/sync.js';

/** Uncontended lock+unlock of the zone lock in one thread, ns per pair: the observer's own cost. */
function lockPairNs(observer: boolean): number {
  const views = createShared({ cpus: 1, memoryBytes: 8 * 2 ** 20, queueSize: 8, ringAlign: 4 });
  const sync = new Sync(views, 0, { spin: 0, waitTimeoutMs: 1000 });
  if (observer) sync.observer = new LockStat(views, 0);
  const n = 1_000_000;
  for (let i = 0; i < n / 10; i++) {
    sync.lock(LOCK_ZONE, 1);
    sync.unlock(LOCK_ZONE);
  }
  const t0 = performance.now();
  for (let i = 0; i < n; i++) {
    sync.lock(LOCK_ZONE, 1);
    sync.unlock(LOCK_ZONE);
  }
  return ((performance.now() - t0) * 1e6) / n;
}

/** (max - min) / median: how far apart runs of the same configuration land. */
const spread = (xs: number[]) => (Math.max(...xs) - Math.min(...xs)) / median(xs);

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};

async function measure(workload: Workload, cpus: number, pairs: number, durationMs: number, notes: string[]): Promise<{ on: number; off: number; onRuns: number[]; offRuns: number[]; acqPerOp: number }> {
  const base: Config = { ...DEFAULT_CONFIG, workload, cpus, memoryBytes: 256 * 2 ** 20, durationMs, seed: 12345, checkIntervalMs: 0, hinting: 'off', prefault: true };
  const onRuns: number[] = [];
  const offRuns: number[] = [];
  const acqPerOp: number[] = [];
  for (let i = 0; i < pairs; i++) {
    // ABBA: on,off then off,on.
    const order = i % 2 === 0 ? [true, false] : [false, true];
    for (const lockstat of order) {
      const r = await runSimulation({ ...base, lockstat });
      if (!r.ok) notes.push(`${workload} lockstat=${lockstat} run ${i} failed (exit ${r.exitCode}): ${[...r.errors, ...r.violations.map((v) => v.message)].join('; ')}`);
      (lockstat ? onRuns : offRuns).push(r.totals.opsPerSec);
      if (r.locks && r.totals.ops > 0) acqPerOp.push(r.locks.reduce((a, l) => a + l.acquisitions, 0) / r.totals.ops);
    }
  }
  return { on: median(onRuns), off: median(offRuns), onRuns, offRuns, acqPerOp: median(acqPerOp) };
}

export async function bench(): Promise<{ name: string; results: Record<string, number>; ratios: Record<string, number>; notes: string[] }> {
  const pairs = Number(process.env.LOCKSTAT_BENCH_PAIRS ?? 4);
  const durationMs = Number(process.env.LOCKSTAT_BENCH_MS ?? 1500);
  const notes: string[] = [`${pairs} on/off pairs per workload, ${durationMs} ms each, 256 MiB, --hinting off --prefault, seed 12345, ABBA order, medians of ops/s`];
  const pf = await measure('page_fault1', 8, pairs, durationMs, notes);
  const churn = await measure('churn', 2, pairs, durationMs, notes);
  const overhead = (m: { on: number; off: number }) => (m.off > 0 ? 1 - m.on / m.off : 0);
  const pairOff: number[] = [];
  const pairOn: number[] = [];
  for (let i = 0; i < 5; i++) {
    pairOff.push(lockPairNs(false));
    pairOn.push(lockPairNs(true));
  }
  notes.push(`page_fault1 --cpus 8 ops/s on: ${pf.onRuns.map(Math.round).join(', ')}; off: ${pf.offRuns.map(Math.round).join(', ')}`);
  notes.push(`churn --cpus 2 ops/s on: ${churn.onRuns.map(Math.round).join(', ')}; off: ${churn.offRuns.map(Math.round).join(', ')}`);
  // Estimate from parts that can be measured precisely here: lock operations
  // per workload op x extra ns per lock operation, against the CPU time of an
  // op (cores / ops per second, with no more cores than threads).
  const extraNs = Math.max(0, median(pairOn) - median(pairOff));
  const estimate = (m: { off: number; acqPerOp: number }, cpus: number) => (m.acqPerOp * extraNs * m.off) / (Math.min(cpus, availableParallelism()) * 1e9);
  notes.push(`lock operations per op: page_fault1 ${pf.acqPerOp.toFixed(4)}, churn ${churn.acqPerOp.toFixed(2)}; lockstat adds ${extraNs.toFixed(0)} ns per lock+unlock`);
  const pfOverhead = overhead(pf);
  const pfSpread = Math.max(spread(pf.offRuns), spread(pf.onRuns));
  notes.push(
    Math.abs(pfOverhead) < pfSpread / 2
      ? `page_fault1 on/off difference ${(pfOverhead * 100).toFixed(1)}% is below the run-to-run spread (${(pfSpread * 100).toFixed(0)}% of the median): not resolvable on this machine; see lockPairNs* for the per-operation cost`
      : pfOverhead <= 0.05
        ? `page_fault1 overhead ${(pfOverhead * 100).toFixed(1)}% is within the 5% target`
        : `page_fault1 overhead ${(pfOverhead * 100).toFixed(1)}% MISSES the 5% target`,
  );
  return {
    name: 'lockstat',
    results: {
      pageFault1Cpus8OpsPerSecLockstatOn: pf.on,
      pageFault1Cpus8OpsPerSecLockstatOff: pf.off,
      churnCpus2OpsPerSecLockstatOn: churn.on,
      churnCpus2OpsPerSecLockstatOff: churn.off,
      lockPairNsLockstatOff: median(pairOff),
      lockPairNsLockstatOn: median(pairOn),
    },
    ratios: {
      pageFault1OnOverOff: pf.off > 0 ? pf.on / pf.off : 0,
      pageFault1Overhead: pfOverhead,
      churnOnOverOff: churn.off > 0 ? churn.on / churn.off : 0,
      churnOverhead: overhead(churn),
      pageFault1Spread: pfSpread,
      pageFault1OverheadEstimate: estimate(pf, 8),
      churnOverheadEstimate: estimate(churn, 2),
      churnSpread: Math.max(spread(churn.offRuns), spread(churn.onRuns)),
    },
    notes,
  };
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  process.stdout.write(JSON.stringify(await bench(), null, 2) + '\n');
}

// Event tracing overhead (--trace): ops/s with tracing on vs off in the same
// process, alternating on/off (ABBA order, so a drift of the machine hits
// both sides alike), medians; page_fault1 --cpus 8 (few lock operations per
// op) and churn --cpus 2 (the zone lock and an alloc/free event on every
// op: the worst case). Also the per-event cost in one thread (an
// uncontended lock+unlock with the trace observer, i.e. two records), and
// what turning a full set of rings into the Chrome trace costs after a run.
//
// With tracing off every event site costs one null check (src/locking/trace.ts);
// that cost is inside the 'off' figures and cannot be separated from them
// in one build: this measures what switching tracing on costs.
//
// Standalone: `npx tsc -p . && node dist/bench/trace.js` prints JSON.
// Environment: TRACE_BENCH_PAIRS (default 4; 1 with --quick), TRACE_BENCH_MS (default 1500; 300 with --quick).

import { pathToFileURL } from 'node:url';
import { type Config, DEFAULT_CONFIG, DEFAULT_TRACE_EVENTS, type Workload } from '../src/sim/config.js';
import { LOCK_ZONE, createShared } from '../src/shm/layout.js';
import { Sync } from '../src/locking/sync.js';
import { TraceLockObserver, TraceWriter, initTraceOrigin } from '../src/locking/trace.js';
import { runSimulation } from '../src/sim/run.js';
import { type BenchReport, median, round } from './types.js';

/** Uncontended lock+unlock of the zone lock in one thread, ns per pair, with or without the trace observer. */
function lockPairNs(trace: boolean): number {
  const views = createShared({ cpus: 1, memoryBytes: 8 * 2 ** 20, queueSize: 8, ringAlign: 4, traceEvents: trace ? 1 << 16 : 0 });
  const sync = new Sync(views, 0, { spin: 0, waitTimeoutMs: 1000 });
  if (trace) {
    initTraceOrigin(views);
    sync.observer = new TraceLockObserver(new TraceWriter(views, 0), views.layout.locks, null);
  }
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

const spread = (xs: number[]) => (Math.max(...xs) - Math.min(...xs)) / median(xs);

async function measure(workload: Workload, cpus: number, pairs: number, durationMs: number, notes: string[]): Promise<{ on: number; off: number; onRuns: number[]; offRuns: number[]; exportMs: number[]; events: number[] }> {
  const base: Config = { ...DEFAULT_CONFIG, workload, cpus, memoryBytes: 256 * 2 ** 20, durationMs, seed: 12345, checkIntervalMs: 0, hinting: 'reporting', reportDelayMs: 100, prefault: true };
  const onRuns: number[] = [];
  const offRuns: number[] = [];
  const exportMs: number[] = [];
  const events: number[] = [];
  for (let i = 0; i < pairs; i++) {
    const order = i % 2 === 0 ? [true, false] : [false, true];
    for (const trace of order) {
      const t0 = performance.now();
      const r = await runSimulation({ ...base, traceEvents: trace ? DEFAULT_TRACE_EVENTS : 0 });
      const wall = performance.now() - t0;
      if (!r.ok) notes.push(`${workload} trace=${trace} run ${i} failed (exit ${r.exitCode}): ${[...r.errors, ...r.violations.map((v) => v.message)].join('; ')}`);
      (trace ? onRuns : offRuns).push(r.totals.opsPerSec);
      if (trace && r.trace) {
        events.push(r.trace.traceEvents.length);
        // The run's wall time beyond its workload, set-up and settling, against the untraced side: the export.
        exportMs.push(wall - r.durationMs - r.setupMs - (r.hinting?.settleMs ?? 0));
      }
    }
  }
  return { on: median(onRuns), off: median(offRuns), onRuns, offRuns, exportMs, events };
}

export async function bench(o: { quick?: boolean } = {}): Promise<BenchReport> {
  const pairs = Number(process.env.TRACE_BENCH_PAIRS ?? (o.quick ? 1 : 4));
  const durationMs = Number(process.env.TRACE_BENCH_MS ?? (o.quick ? 300 : 1500));
  const notes: string[] = [`${pairs} on/off pairs per workload, ${durationMs} ms each, 256 MiB, --hinting reporting --report-delay 100ms --prefault, seed 12345, ABBA order, medians of ops/s; rings of ${DEFAULT_TRACE_EVENTS} events per thread (the default)`];
  const pf = await measure('page_fault1', 8, pairs, durationMs, notes);
  const churn = await measure('churn', 2, pairs, durationMs, notes);
  const pairOff: number[] = [];
  const pairOn: number[] = [];
  for (let i = 0; i < (o.quick ? 2 : 5); i++) {
    pairOff.push(lockPairNs(false));
    pairOn.push(lockPairNs(true));
  }
  notes.push(`page_fault1 --cpus 8 ops/s on: ${pf.onRuns.map(Math.round).join(', ')}; off: ${pf.offRuns.map(Math.round).join(', ')}`);
  notes.push(`churn --cpus 2 ops/s on: ${churn.onRuns.map(Math.round).join(', ')}; off: ${churn.offRuns.map(Math.round).join(', ')}`);
  notes.push(`trace export after a run (rings read, sorted, converted; not in ops/s): page_fault1 ${pf.exportMs.map(Math.round).join(', ')} ms for ${pf.events.join(', ')} events; churn ${churn.exportMs.map(Math.round).join(', ')} ms for ${churn.events.join(', ')} events`);
  const ratio = (m: { on: number; off: number }) => (m.off > 0 ? m.on / m.off : 0);
  for (const [name, m] of [['page_fault1', pf], ['churn', churn]] as const) {
    const sp = Math.max(spread(m.onRuns), spread(m.offRuns));
    const r = ratio(m);
    notes.push(Math.abs(1 - r) < sp / 2 ? `${name} on/off ${round(r)} is within the run-to-run spread (${(sp * 100).toFixed(0)}% of the median): not resolvable here` : `${name} on/off ${round(r)} (spread ${(sp * 100).toFixed(0)}%)`);
  }
  return {
    name: 'trace',
    results: {
      pageFault1Cpus8OpsPerSecTraceOn: pf.on,
      pageFault1Cpus8OpsPerSecTraceOff: pf.off,
      churnCpus2OpsPerSecTraceOn: churn.on,
      churnCpus2OpsPerSecTraceOff: churn.off,
      lockPairNsTraceOff: median(pairOff),
      lockPairNsTraceOn: median(pairOn),
      exportMsPageFault1: median(pf.exportMs),
      exportMsChurn: median(churn.exportMs),
    },
    ratios: {
      pageFault1OnOverOff: ratio(pf),
      churnOnOverOff: ratio(churn),
      pageFault1Spread: Math.max(spread(pf.onRuns), spread(pf.offRuns)),
      churnSpread: Math.max(spread(churn.onRuns), spread(churn.offRuns)),
    },
    notes,
  };
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  process.stdout.write(JSON.stringify(await bench(), null, 2) + '\n');
}

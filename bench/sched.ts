// Scheduler benchmark: scheduling points per second under
// --sched random and --sched pct, and the slowdown against free-running mode
// on the same workload (ops per wall-clock second, free / scheduled). Every
// ratio compares numbers measured in this one run.

import { type Config, DEFAULT_CONFIG } from '../src/sim/config.js';
import { runSimulation } from '../src/sim/run.js';
import { type BenchReport, median, round } from './types.js';

export async function bench(opts: { quick?: boolean } = {}): Promise<BenchReport> {
  const reps = opts.quick ? 1 : 3;
  // The same workload in both modes: page_fault1 on 4 CPUs, 64 MiB, no
  // hinting (so there is no settling phase to tell apart), 16 MiB regions.
  const base: Config = { ...DEFAULT_CONFIG, seed: 7, cpus: 4, memoryBytes: 64 * 2 ** 20, regionBytes: 16 * 2 ** 20, hinting: 'off', checkIntervalMs: 0 };
  const freeMs = opts.quick ? 500 : 2000;
  // Scheduled: a logical duration that takes about a second of wall time here.
  const schedLogicalMs = opts.quick ? 500 : 2000;
  const results: Record<string, number> = {};
  const ratios: Record<string, number> = {};
  const notes: string[] = [];
  for (const workload of ['page_fault1', 'churn'] as const) {
    const cfg: Config = { ...base, workload };
    const freeOps: number[] = [];
    for (let i = 0; i < reps; i++) {
      const r = await runSimulation({ ...cfg, durationMs: freeMs });
      if (!r.ok) throw new Error(`bench sched: free-running ${workload} failed: ${r.violations[0]?.message ?? r.errors[0]}`);
      freeOps.push(r.totals.ops / (r.durationMs / 1000));
    }
    results[`${workload}.free.opsPerSec`] = round(median(freeOps));
    for (const strategy of ['random', 'pct'] as const) {
      const steps: number[] = [];
      const ops: number[] = [];
      const switches: number[] = [];
      for (let i = 0; i < reps; i++) {
        const r = await runSimulation({ ...cfg, durationMs: schedLogicalMs, sched: strategy });
        if (!r.ok || !r.sched) throw new Error(`bench sched: ${strategy} ${workload} failed: ${r.violations[0]?.message ?? r.errors[0]}`);
        const sec = r.durationMs / 1000;
        steps.push(r.sched.steps / sec);
        ops.push(r.totals.ops / sec);
        switches.push(r.sched.switches / r.sched.steps);
      }
      results[`${workload}.${strategy}.stepsPerSec`] = round(median(steps));
      results[`${workload}.${strategy}.opsPerSec`] = round(median(ops));
      results[`${workload}.${strategy}.switchesPerStep`] = round(median(switches));
      ratios[`${workload}.${strategy}.slowdown`] = round(median(freeOps) / median(ops));
    }
  }
  notes.push(`workloads: page_fault1 (few points: 16 MiB of page touching per region) and churn (point-dense: every op is a lock, a page state change, an unlock), 4 CPUs, 64 MiB, hinting off; free-running ${freeMs} ms, scheduled ${schedLogicalMs} logical ms; median of ${reps}`);
  notes.push('stepsPerSec: scheduling points (lock/unlock, wait, wake, ring publish, page state change) per wall second of the scheduled phase');
  notes.push('slowdown: free-running ops/s divided by scheduled ops/s (wall clock) on the same workload; switchesPerStep: share of steps that handed the token to another thread');
  return { name: 'sched', results, ratios, notes };
}

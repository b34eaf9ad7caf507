// Searching for a failure in scheduled mode (for `sim stress --sched pct`,
// src/cli/stress.ts): the same configuration, one run per seed under the seeded
// scheduler, stopping at the first run that fails. Every run is deterministic,
// so the failing seed (or its schedule) reproduces the failure exactly.

import type { Config, SchedStrategy } from './config.js';
import { type RunResult, runSimulation } from './run.js';

export interface ScheduleSearch {
  /** The first failing run, or null if every seed passed. */
  found: RunResult | null;
  /** Seeds run, in order (the last one failed if found). */
  seeds: number[];
}

export interface ScheduleSearchOptions {
  /** How many seeds to try (>= 1). */
  seeds: number;
  /** First seed (default cfg.seed); seed i is firstSeed + i (mod 2^32). */
  firstSeed?: number;
  /** Strategy (default pct). */
  strategy?: Exclude<SchedStrategy, 'off'>;
  /** Called after each run (progress). */
  onRun?: (seed: number, r: RunResult) => void;
}

/**
 * Run `cfg` under the seeded scheduler for successive seeds until one fails
 * (exit 1: a violation, or 3: a simulator failure). A configuration that
 * failed free-running can be searched here unchanged (cfg.sched is overridden).
 */
export async function searchSchedules(cfg: Config, o: ScheduleSearchOptions): Promise<ScheduleSearch> {
  const seeds: number[] = [];
  const first = o.firstSeed ?? cfg.seed;
  for (let i = 0; i < Math.max(1, o.seeds); i++) {
    const seed = (first + i) >>> 0;
    seeds.push(seed);
    const r = await runSimulation({ ...cfg, seed, sched: o.strategy ?? 'pct', replay: '' });
    o.onRun?.(seed, r);
    // A run whose injection never acted (exit 1 with nothing found) is not a
    // failure found: the search goes on to the next seed.
    if (r.violations.length > 0 || r.errors.length > 0) return { found: r, seeds };
  }
  return { found: null, seeds };
}

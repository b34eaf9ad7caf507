// Races benchmark: how fast each injection is found at --cpus 8 on a
// 64 MiB guest (median over 5 seeds; target <= 2 s each), and a clean swarm
// campaign (200 runs; --quick: 20) with zero failures, in runs per minute.
//
// Detection time = the run's RUNNING phase until it stopped plus its settle
// phase (durationMs + hinting.settleMs from --json): the simulated time from
// go to the violation. The wall time of the whole `sim` process (node start,
// buffer set-up, pool start, teardown) is reported next to it.

import { spawn } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { DEFAULT_CONFIG } from '../src/sim/config.js';
import { INJECTIONS, INJECTION_NAMES, RACE_BASE_ARGS } from '../src/check/inject.js';
import { runStress } from '../src/cli/stress.js';
import { detectMs } from './spawn-sim.js';
import { type BenchReport, median, round } from './types.js';

const CLI = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../src/cli/main.js');

function simJson(args: string[]): Promise<{ code: number | null; wallMs: number; j: { durationMs: number; hinting?: { settleMs?: number }; violations: { oracle: string }[] } | null }> {
  const t0 = performance.now();
  return new Promise((resolve) => {
    const c = spawn(process.execPath, [CLI, ...args, '--json'], { stdio: ['ignore', 'pipe', 'ignore'] });
    let out = '';
    c.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
    const t = setTimeout(() => c.kill('SIGKILL'), 120_000);
    c.on('close', (code) => {
      clearTimeout(t);
      let j = null;
      try {
        j = JSON.parse(out);
      } catch {
        /* no result: counted as not detected */
      }
      resolve({ code, wallMs: performance.now() - t0, j });
    });
  });
}

export async function bench(opts: { quick?: boolean } = {}): Promise<BenchReport> {
  const seeds = opts.quick ? [1, 2] : [1, 2, 3, 4, 5];
  const results: Record<string, number> = {};
  const ratios: Record<string, number> = {};
  const notes: string[] = [];
  let worst = 0;
  for (const name of INJECTION_NAMES) {
    // --cpus 8 for every injection here (the tests use 4 for some).
    const args = [...RACE_BASE_ARGS, ...INJECTIONS[name].args, '--cpus', '8', '--inject', name];
    const detect: number[] = [];
    const wall: number[] = [];
    let found = 0;
    for (const s of seeds) {
      const r = await simJson([...args, '--seed', String(s)]);
      wall.push(r.wallMs);
      const ms = detectMs(r.code, r.j, INJECTIONS[name].oracles);
      if (ms !== null) {
        found++;
        detect.push(ms);
      }
    }
    const med = detect.length ? median(detect) : NaN;
    worst = Math.max(worst, med);
    results[`${name}.detectMsMedian`] = round(med);
    results[`${name}.wallMsMedian`] = round(median(wall));
    results[`${name}.detectedOf${seeds.length}`] = found;
    notes.push(`${name}: found in ${found}/${seeds.length} seeds, median ${Math.round(med)} ms to detect (${Math.round(median(wall))} ms wall per run): sim ${args.join(' ')} --seed S`);
  }
  ratios['worstDetectMs/targetMs'] = round(worst / 2000);
  notes.push('target: every injection detected in <= 2000 ms (median), i.e. worstDetectMs/targetMs <= 1');
  // Clean swarm campaign.
  const runs = opts.quick ? 20 : 200;
  // No host cost profile, as the injection configurations (RACE_BASE_ARGS): races need CPUs that churn.
  const s = await runStress({ ...DEFAULT_CONFIG, seed: 2024, costProfile: 'none', hostCosts: null }, { campaignSeed: 2024, runs, durationMs: Infinity, runDurationMs: 300, swarm: true, jobs: 2, shardK: 0, shardN: 1 }, () => undefined);
  results['swarm.runs'] = s.runsDone;
  results['swarm.failures'] = s.failures;
  results['swarm.runsPerMinute'] = s.runsPerMinute;
  results['swarm.elapsedMs'] = s.elapsedMs;
  notes.push(`swarm: sim stress --swarm --runs ${runs} --seed 2024 --run-duration 300ms --jobs 2: ${s.runsDone} runs, ${s.failures} failures, ${s.runsPerMinute} runs/min`);
  if (s.firstFailure) notes.push(`swarm FAILURE: ${s.firstFailure.violations[0]?.oracle ?? 'error'}: ${s.firstFailure.violations[0]?.message ?? s.firstFailure.errors[0]}; rerun: ${s.firstFailure.rerun}`);
  return { name: 'races', results, ratios, notes };
}

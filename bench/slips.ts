// Slips benchmark (issue 20 part B): how fast the ring-concurrency
// dimensions and the hint-cmd-id oracle find the slips planted for them,
// median over 5 seeds (--quick: 2), and that the old configuration does not.
//
//   ring-peek-head        the device reads avail.ring[last_avail_idx] before
//                         the avail idx that covers it (running free);
//   ring-idx-before-entry the driver publishes avail idx before the entry
//                         (under --sched random: the device may run at the
//                         publish's scheduling point);
//   hint-late-id-check    the hint driver reads the cmd id before a send and
//                         acts on it after, so one range follows a newer id.
//
// Each row runs the slip with the new dimension (a --desc-policy, a
// --report-inflight, a short --hint-interval) and, once per seed, without it
// (the old configuration: lifo, one chain in flight, the 1 s hint interval);
// an old-configuration detection is counted and printed, never hidden. The
// swarm row runs `sim stress --swarm` campaigns with ring-peek-head: wall
// time to the first failing run and what that run drew.
//
// Detection time, as in bench/races.ts and bench/faults.ts: the run's
// RUNNING phase until it stopped plus its settle phase (durationMs +
// hinting.settleMs), simulated time from go to the violation (logical time
// under --sched). Wall time per run is reported next to it.

import { RACE_BASE_ARGS } from '../src/check/inject.js';
import { detectMs, parseRun, simWithSelftest } from './spawn-sim.js';
import { type BenchReport, median, round } from './types.js';



const sim = (args: string[], selftest: string) => simWithSelftest(args, selftest, 300_000);

const parse = <T>(s: string): T | null => {
  try {
    return JSON.parse(s) as T;
  } catch {
    return null;
  }
};

interface Row {
  name: string;
  what: string;
  /** The run without the new dimension: the old configuration. */
  args: string[];
  /** The new dimension's flags. */
  dims: string[];
  selftest: string;
  oracles: string[];
}

const drop = ['--duration', '--capacity', '--memory', '--report-delay'];
const BASE = RACE_BASE_ARGS.filter((_, i, a) => !drop.includes(a[i]) && !drop.includes(a[i - 1]));
const REP = [...BASE, '--memory', '64M', '--capacity', '8', '--cpus', '2', '--workload', 'churn', '--report-delay', '0ms'];
const HINT = [...BASE, '--workload', 'churn', '--hinting', 'hint', '--hint-device', 'qemu'];
const SMALL_HINT = [...HINT, '--memory', '64M', '--cpus', '2'];

const ROWS: Row[] = [
  { name: 'peek.fifo', what: 'ring-peek-head, reporting, --desc-policy fifo', args: [...REP, '--hinting', 'reporting', '--duration', '1s'], dims: ['--desc-policy', 'fifo'], selftest: 'ring-peek-head', oracles: ['ring', 'device-allocated-range'] },
  { name: 'peek.inflight4', what: 'ring-peek-head, reporting, --report-inflight 4', args: [...REP, '--hinting', 'reporting', '--duration', '1s'], dims: ['--report-inflight', '4'], selftest: 'ring-peek-head', oracles: ['ring', 'device-allocated-range'] },
  { name: 'peek.aeration.fifo', what: 'ring-peek-head, aeration, --desc-policy fifo', args: [...REP, '--hinting', 'aeration', '--duration', '1s'], dims: ['--desc-policy', 'fifo'], selftest: 'ring-peek-head', oracles: ['ring', 'device-allocated-range'] },
  { name: 'idxFirst.sched.inflight4', what: 'ring-idx-before-entry, reporting under --sched random, --report-inflight 4', args: [...REP, '--hinting', 'reporting', '--duration', '300ms', '--sched', 'random'], dims: ['--report-inflight', '4'], selftest: 'ring-idx-before-entry', oracles: ['ring', 'device-allocated-range'] },
  { name: 'idxFirst.sched.hint', what: 'ring-idx-before-entry, hint (several chains in flight) under --sched random, --hint-interval 10ms', args: [...SMALL_HINT, '--duration', '300ms', '--sched', 'random', '--hint-interval', '10ms'], dims: [], selftest: 'ring-idx-before-entry', oracles: ['ring', 'device-allocated-range'] },
  { name: 'lateId.free', what: 'hint-late-id-check running free, 256M, 4 CPUs, --hint-interval 10ms', args: [...HINT, '--memory', '256M', '--cpus', '4', '--duration', '1s'], dims: ['--hint-interval', '10ms'], selftest: 'hint-late-id-check', oracles: ['hint-cmd-id'] },
  { name: 'lateId.sched', what: 'hint-late-id-check under --sched random, --hint-interval 10ms', args: [...SMALL_HINT, '--duration', '300ms', '--sched', 'random'], dims: ['--hint-interval', '10ms'], selftest: 'hint-late-id-check', oracles: ['hint-cmd-id'] },
];

interface Stress {
  elapsedMs: number;
  firstFailure: { index: number; config: { hinting: string; descPolicy: string; reportInflight: number }; violations: { oracle: string }[] } | null;
}

export async function bench(opts: { quick?: boolean } = {}): Promise<BenchReport> {
  const seeds = opts.quick ? [1, 2] : [1, 2, 3, 4, 5];
  const results: Record<string, number> = {};
  const ratios: Record<string, number> = {};
  const notes: string[] = [];
  for (const row of ROWS) {
    const detect: number[] = [];
    const wall: number[] = [];
    let oldFound = 0;
    for (const s of seeds) {
      const r = await sim([...row.args, ...row.dims, '--seed', String(s)], row.selftest);
      wall.push(r.wallMs);
      const j = parseRun(r.out);
      const ms = detectMs(r.code, j, row.oracles);
      if (ms !== null) detect.push(ms);
      // (No new dimension: hint under --sched had several chains in flight already.)
      if (row.dims.length === 0) continue;
      const old = await sim([...row.args, '--seed', String(s)], row.selftest);
      if (old.code !== 0) oldFound++;
    }
    const med = detect.length ? median(detect) : NaN;
    results[`${row.name}.detectMsMedian`] = round(med);
    results[`${row.name}.detectedOf${seeds.length}`] = detect.length;
    if (row.dims.length > 0) results[`${row.name}.oldConfigFoundOf${seeds.length}`] = oldFound;
    results[`${row.name}.wallMsMedian`] = round(median(wall));
    const old = row.dims.length > 0 ? `; without ${row.dims.join(' ')} (the old configuration) found in ${oldFound}/${seeds.length}` : '';
    notes.push(`${row.name}: ${row.what}: found in ${detect.length}/${seeds.length} seeds, median ${Math.round(med)} ms to detect (${Math.round(median(wall))} ms wall per run)${old}: BALLOON_SIM_SELFTEST=${row.selftest} sim ${[...row.args, ...row.dims].join(' ')} --seed S`);
  }
  // The swarm: campaigns with the device-side slip, to the first failing run.
  const campaigns = opts.quick ? [1, 2] : [1, 2, 3, 4, 5];
  const toFirst: number[] = [];
  const drew: string[] = [];
  for (const c of campaigns) {
    const r = await sim(['stress', '--swarm', '--runs', '40', '--seed', String(c), '--run-duration', '300ms', '--cost-profile', 'none'], 'ring-peek-head');
    const j = parse<Stress>(r.out);
    const f = j?.firstFailure;
    if (f) {
      toFirst.push(j!.elapsedMs);
      drew.push(`campaign ${c}: run ${f.index} (${f.config.hinting}, desc-policy ${f.config.descPolicy ?? 'lifo'}, report-inflight ${f.config.reportInflight ?? 1}) ${f.violations[0]?.oracle ?? 'error'}`);
    } else drew.push(`campaign ${c}: no failure in 40 runs`);
  }
  results['swarm.peek.firstFailureWallMsMedian'] = round(toFirst.length ? median(toFirst) : NaN);
  results[`swarm.peek.foundInCampaignsOf${campaigns.length}`] = toFirst.length;
  notes.push(`swarm: BALLOON_SIM_SELFTEST=ring-peek-head sim stress --swarm --runs 40 --seed C --run-duration 300ms --cost-profile none: ${drew.join('; ')}`);
  notes.push('no target: the lead compares these across changes; every row should be found in most seeds and its old configuration in none');
  return { name: 'slips', results, ratios, notes };
}

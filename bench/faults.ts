// Faults benchmark (issue 20): how fast the new dimensions find what they
// exist for, median over 5 seeds (--quick: 2). Each device fault kind is
// paired with the error-path slip it exposes (planted with
// BALLOON_SIM_SELFTEST; the same slip runs clean without the fault, shown
// once per row on seed 1); irq-lost is itself the failure; the hostile
// guest finds a planted validation slip; the strict wake-up checks find a
// planted missing Atomics.notify; ack-delay is measured as what it adds to
// an existing injection (no-ack-wait) with and without it.
//
// Detection time, as in bench/races.ts: the run's RUNNING phase until it
// stopped plus its settle phase (durationMs + hinting.settleMs): simulated
// time from go to the violation. Wall time per run is reported next to it.

import { RACE_BASE_ARGS } from '../src/check/inject.js';
import { type RunJson, detectMs, parseRun, simWithSelftest } from './spawn-sim.js';
import { type BenchReport, median, round } from './types.js';


async function simJson(args: string[], selftest: string): Promise<{ code: number | null; wallMs: number; j: RunJson | null }> {
  const r = await simWithSelftest(args, selftest, 120_000);
  return { code: r.code, wallMs: r.wallMs, j: parseRun(r.out) };
}

interface Row {
  name: string;
  /** What is found, in a few words. */
  what: string;
  args: string[];
  /** The fault flags the row needs (left out of the control run). */
  faults: string[];
  selftest: string;
  oracles: string[];
  /** Run the same slip without the faults once: it must pass (the slip is invisible without them). */
  control: boolean;
}

const BASE = RACE_BASE_ARGS.filter((_, i, a) => !['--duration', '--settle-timeout'].includes(a[i]) && !['--duration', '--settle-timeout'].includes(a[i - 1]));
const COMMON = [...BASE, '--duration', '1s', '--settle-timeout', '1s'];

const ROWS: Row[] = [
  { name: 'report-error', what: 'a drain that flags a failed batch Reported', args: [...COMMON, '--cpus', '4', '--workload', 'memhog', '--hinting', 'reporting'], faults: ['--device-faults', 'report-error=25%'], selftest: 'fault-flag-failed', oracles: ['reported-accounting'], control: true },
  { name: 'irq-spurious', what: 'a driver that takes any interrupt for the ack', args: [...COMMON, '--memory', '32M', '--report-order', '5', '--cpus', '8', '--workload', 'churn', '--report-delay', '0ms', '--hinting', 'reporting'], faults: ['--device-faults', 'irq-spurious=25%,ack-delay=50%:50ms'], selftest: 'fault-trust-irq', oracles: ['device-allocated-range', 'stamp'], control: true },
  { name: 'reset', what: 'a device that acknowledges a reset but keeps its queue indices', args: [...COMMON, '--cpus', '4', '--workload', 'churn', '--hinting', 'reporting', '--wait-timeout', '1s'], faults: ['--device-faults', 'reset=25%'], selftest: 'fault-reset-keep-queue', oracles: ['liveness', 'lost-wakeup'], control: true },
  { name: 'irq-lost', what: 'the lost interrupt itself (Linux hangs)', args: [...COMMON, '--cpus', '2', '--workload', 'churn', '--hinting', 'reporting'], faults: ['--device-faults', 'irq-lost=10%'], selftest: '', oracles: ['lost-wakeup'], control: false },
  { name: 'ack-delay.noAckWait', what: 'the no-ack-wait injection, with ack-delay', args: [...COMMON, '--cpus', '8', '--workload', 'memfill', '--hinting', 'aeration', '--report-delay', '0ms', '--inject', 'no-ack-wait'], faults: ['--device-faults', 'ack-delay=50%:20ms'], selftest: '', oracles: ['device-allocated-range', 'stamp'], control: false },
  { name: 'ack-delay.noAckWaitWithout', what: 'the no-ack-wait injection, without faults', args: [...COMMON, '--cpus', '8', '--workload', 'memfill', '--hinting', 'aeration', '--report-delay', '0ms', '--inject', 'no-ack-wait'], faults: [], selftest: '', oracles: ['device-allocated-range', 'stamp'], control: false },
  { name: 'hostile', what: 'a device that lets a zero length through, by the hostile guest', args: [...COMMON, '--cpus', '2', '--workload', 'churn', '--hinting', 'naive', '--report-delay', '0ms'], faults: ['--hostile', '50%'], selftest: 'device-zero-len', oracles: ['hostile-guest'], control: true },
  { name: 'wakeup.request', what: 'a missing notify on the report request', args: [...COMMON, '--cpus', '2', '--workload', 'churn', '--hinting', 'reporting'], faults: [], selftest: 'no-notify-request', oracles: ['lost-wakeup'], control: false },
  { name: 'wakeup.unlock', what: 'a missing notify on a contended unlock', args: [...COMMON, '--cpus', '4', '--workload', 'churn', '--no-pcp', '--hinting', 'reporting'], faults: [], selftest: 'no-notify-unlock', oracles: ['lost-wakeup'], control: false },
];

export async function bench(opts: { quick?: boolean } = {}): Promise<BenchReport> {
  const seeds = opts.quick ? [1, 2] : [1, 2, 3, 4, 5];
  const results: Record<string, number> = {};
  const ratios: Record<string, number> = {};
  const notes: string[] = [];
  for (const row of ROWS) {
    const args = [...row.args, ...row.faults];
    const detect: number[] = [];
    const wall: number[] = [];
    for (const s of seeds) {
      const r = await simJson([...args, '--seed', String(s)], row.selftest);
      wall.push(r.wallMs);
      const ms = detectMs(r.code, r.j, row.oracles);
      if (ms !== null) detect.push(ms);
    }
    const med = detect.length ? median(detect) : NaN;
    results[`${row.name}.detectMsMedian`] = round(med);
    results[`${row.name}.detectedOf${seeds.length}`] = detect.length;
    results[`${row.name}.wallMsMedian`] = round(median(wall));
    let control = '';
    if (row.control) {
      const c = await simJson([...row.args, '--seed', '1'], row.selftest);
      results[`${row.name}.foundWithoutFault`] = c.code === 0 ? 0 : 1;
      control = c.code === 0 ? '; without the fault the same slip passed (seed 1)' : `; WITHOUT the fault it failed too (exit ${c.code})`;
    }
    notes.push(`${row.name}: ${row.what}: found in ${detect.length}/${seeds.length} seeds, median ${Math.round(med)} ms to detect (${Math.round(median(wall))} ms wall per run)${control}: ${row.selftest ? `BALLOON_SIM_SELFTEST=${row.selftest} ` : ''}sim ${args.join(' ')} --seed S`);
  }
  const w = results['ack-delay.noAckWait.detectMsMedian'];
  const wo = results['ack-delay.noAckWaitWithout.detectMsMedian'];
  if (Number.isFinite(w) && Number.isFinite(wo)) ratios['noAckWait detect with/without ack-delay'] = round(w / wo);
  notes.push('no target: these are the times the lead compares across changes; every row with a fault should be found in most seeds, and no control should fail');
  return { name: 'faults', results, ratios, notes };
}

// The seeded scheduler (--sched, src/sched/): determinism, clean runs under
// both strategies, faults found and replayed, divergence, deadlock.
// Spawns dist/: run `npx tsc -p .` first.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Worker } from 'node:worker_threads';
import { describe, expect, it } from 'vitest';
import { DEFAULT_CONFIG, type Config } from '../src/sim/config.js';
import { INJECTIONS, INJECTION_NAMES, type InjectionInfo, RACE_BASE_ARGS } from '../src/check/inject.js';
import { HDR_READY, createShared } from '../src/shm/layout.js';
import { initSched, schedOutcome, startSched } from '../src/sched/control.js';
import { schedParams } from '../src/sim/config.js';
import { settleTimeoutMs } from '../src/sim/modes/index.js';
import { writeScheduleFile } from '../src/cli/schedule-file.js';
import { searchSchedules } from '../src/sim/schedule-search.js';
import { configFromArgs } from '../src/cli/flags.js';

const CLI = path.resolve(__dirname, '../dist/src/cli/main.js');
const PROBE = path.resolve(__dirname, '../dist/workers/testing/sched-probe.js');
const tmp = mkdtempSync(path.join(tmpdir(), 'sched-test-'));

// Small, but reporting really runs: 32 MiB, batches of 4 blocks from order 7.
const BASE = ['--cpus', '3', '--memory', '32M', '--duration', '300ms', '--capacity', '4', '--report-order', '7', '--report-delay', '20ms', '--check-interval', '50ms'];
const BASE_CFG: Config = { ...DEFAULT_CONFIG, seed: 1, cpus: 3, memoryBytes: 32 * 2 ** 20, durationMs: 300, capacity: 4, reportOrder: 7, reportDelayMs: 20, checkIntervalMs: 50 };

interface Run {
  status: number | null;
  json: any;
  stderr: string;
}
function sim(...args: string[]): Run {
  const r = spawnSync(process.execPath, [CLI, ...args, '--json'], { encoding: 'utf8', timeout: 60_000 });
  let json: any = null;
  try {
    json = JSON.parse(r.stdout);
  } catch {
    /* usage errors print no JSON */
  }
  return { status: r.status, json, stderr: r.stderr };
}

/** The result without anything time-based (timing stats are reported, never part of the trace). */
function deterministicPart(j: any): unknown {
  const c = structuredClone(j);
  delete c.durationMs;
  delete c.setupMs;
  delete c.series;
  delete c.locks;
  delete c.totals.opsPerSec;
  delete c.totals.allocLatencyNs;
  for (const cpu of c.cpus) {
    delete cpu.opsPerSec;
    delete cpu.allocLatencyNs;
  }
  delete c.host.peakRssBytes; // sampled by main on the wall clock
  if (c.device) delete c.device.discardNsTotal;
  delete c.cpuTime; // the OS scheduler's accounting, wall-clock
  if (c.hinting) {
    delete c.hinting.roundTripNs;
    delete c.hinting.roundTripHistNs; // the same round trips, by bucket
    delete c.hinting.reporterZoneLockHoldNs;
    delete c.hinting.settleMs;
  }
  return c;
}

describe('seeded scheduler: same seed and configuration, same trace and results', () => {
  // The first run of each strategy, kept for the next test.
  const first = new Map<string, Run>();
  for (const strategy of ['random', 'pct'] as const) {
    it(`--sched ${strategy}: two runs, identical trace hash and results; the clean configuration passes`, () => {
      const a = sim(...BASE, '--seed', '11', '--sched', strategy);
      first.set(strategy, a);
      const b = sim(...BASE, '--seed', '11', '--sched', strategy);
      expect(a.status, a.stderr).toBe(0);
      expect(b.status, b.stderr).toBe(0);
      expect(a.json.ok).toBe(true);
      // The run did real work under the scheduler: steps, handoffs, reports, mid-run checks.
      expect(a.json.sched.steps).toBeGreaterThan(1000);
      expect(a.json.sched.switches).toBeGreaterThan(0);
      expect(a.json.hinting.reports).toBeGreaterThan(0);
      expect(a.json.sched.checks).toBeGreaterThan(0);
      expect(a.json.sched.traceHash).toMatch(/^[0-9a-f]{16}$/);
      expect(b.json.sched.traceHash).toBe(a.json.sched.traceHash);
      expect(JSON.stringify(deterministicPart(b.json))).toBe(JSON.stringify(deterministicPart(a.json)));
    });
  }

  it('another seed gives another trace', () => {
    const a = first.get('random') ?? sim(...BASE, '--seed', '11', '--sched', 'random');
    const c = sim(...BASE, '--seed', '12', '--sched', 'random');
    expect(a.status).toBe(0);
    expect(c.status).toBe(0);
    expect(c.json.sched.traceHash).not.toBe(a.json.sched.traceHash);
  });
});

// Every injection (src/check/inject.ts) must be found under --sched pct within its
// stated bound of seeds (INJECTIONS[name].schedSeeds), in its scheduled
// configuration (RACE_BASE_ARGS + args + schedArgs), and its schedule must
// replay (file and string) to the same violation at the same step.
// Seeds run one at a time and stop at the first failing one.
describe('seeded scheduler: every injection is found under --sched pct, and its schedule replays to the same violation at the same step', () => {
  for (const name of INJECTION_NAMES) {
    const inj: InjectionInfo = INJECTIONS[name];
    const args = [...RACE_BASE_ARGS, ...inj.args, ...inj.schedArgs, '--inject', name, '--sched', 'pct'];
    if (inj.schedSeeds === 0) {
      it.todo(`${name}: not found by --sched pct (known gap, see docs/TESTING.md, Injections under --sched pct: the scheduled run has no equivalent of the free-running reporter-quiet check)`);
      continue;
    }
    it(`${name}: found under --sched pct within ${inj.schedSeeds} seeds; its schedule replays it exactly${name === INJECTION_NAMES[0] ? ' (file and string)' : ''}`, async () => {
      const cfg = configFromArgs([...args, '--seed', '1']);
      const search = await searchSchedules(cfg, { seeds: inj.schedSeeds, firstSeed: 1, strategy: 'pct' });
      expect(search.found, `not found in seeds ${search.seeds.join(',')}`).not.toBeNull();
      const r = search.found!;
      expect(r.exitCode).toBe(1);
      expect(inj.oracles as readonly string[]).toContain(r.violations[0].oracle);
      const file = writeScheduleFile(r, path.join(tmp, `${name}.json`))!;
      const seedArgs = [...args, '--seed', String(r.seed)];
      // The file replay for every injection; the string form (the same
      // schedule inline) for the first only: both reach the same loader.
      const replays = name === INJECTION_NAMES[0] ? [file, r.sched!.schedule] : [file];
      for (const replay of replays) {
        const p = sim(...seedArgs, '--replay', replay);
        expect(p.status, p.stderr).toBe(1);
        expect(p.json.violations[0]).toEqual(r.violations[0]);
        expect(p.json.sched.steps).toBe(r.sched!.steps);
        expect(p.json.sched.abortStep).toBe(r.sched!.abortStep);
        expect(p.json.sched.traceHash).toBe(r.sched!.traceHash);
      }
    });
  }

  it('a replay that does not follow its schedule fails loudly: exit 3, "schedule diverged at step N"', () => {
    const file = path.join(tmp, 'clean.json');
    const run = sim(...BASE, '--workload', 'memfill', '--seed', '3', '--sched', 'random', '--inject', 'no-zone-lock', '--schedule-out', file);
    expect(run.status).toBe(1);
    const rec = JSON.parse(readFileSync(file, 'utf8'));
    const k = Math.floor(rec.steps / 2);
    const digests = Buffer.from(rec.digests, 'base64');
    digests[k - 1] ^= 0x5a; // step k: the recorded event no longer matches what the run does
    rec.digests = digests.toString('base64');
    const bad = path.join(tmp, 'tampered.json');
    writeFileSync(bad, JSON.stringify(rec));
    const p = sim(...BASE, '--workload', 'memfill', '--seed', '3', '--sched', 'random', '--inject', 'no-zone-lock', '--replay', bad);
    expect(p.status).toBe(3);
    expect(p.stderr).toMatch(new RegExp(`schedule diverged at step ${k}\\b`));
    // The same schedule with another configuration is refused up front (exit 2, one line).
    const q = sim(...BASE, '--workload', 'memfill', '--seed', '4', '--sched', 'random', '--inject', 'no-zone-lock', '--replay', file);
    expect(q.status).toBe(2);
    expect(q.stderr.trim()).toMatch(/^sim: --replay: the schedule was recorded with another configuration/);
  });
});

/** Two threads locking A,B and B,A under the scheduler (workers/testing/sched-probe.ts). */
async function abba(seed: number): Promise<{ outcomes: string[]; out: ReturnType<typeof schedOutcome> }> {
  const cfg: Config = { ...DEFAULT_CONFIG, seed, cpus: 2, hinting: 'off', sched: 'random', memoryBytes: 8 * 2 ** 20 };
  const params = { cpus: 2, memoryBytes: cfg.memoryBytes, queueSize: cfg.queueSize, ringAlign: cfg.ringAlign, schedLogSteps: 4096 };
  const views = createShared(params);
  initSched(views, schedParams(cfg, settleTimeoutMs(cfg)), null);
  const workers = [0, 1].map((thread) => new Worker(PROBE, { workerData: { sab: views.sab, params, thread, rounds: 1 } }));
  const outcomes = workers.map(
    (w) =>
      new Promise<string>((res) => {
        const timer = setTimeout(() => res('hang'), 20_000);
        w.once('message', (m: string) => {
          clearTimeout(timer);
          res(m);
        });
        w.once('error', (e) => res(`worker error: ${e.message}`));
      }),
  );
  for (let i = 0; i < 2000 && Atomics.load(views.header, HDR_READY) < 2; i++) await new Promise((r) => setTimeout(r, 5));
  startSched(views);
  const done = await Promise.all(outcomes);
  await Promise.all(workers.map((w) => w.terminate()));
  return { outcomes: done, out: schedOutcome(views, schedParams(cfg, settleTimeoutMs(cfg)), null) };
}

describe('seeded scheduler: a lock deadlock is reported, never a hang', () => {
  it('AB-BA once per thread over 12 seeds: some schedules deadlock (liveness violation, same step on a rerun), others complete', async () => {
    const deadlocked: { seed: number; step: number }[] = [];
    let completed = 0;
    for (let seed = 1; seed <= 12; seed++) {
      const { outcomes, out } = await abba(seed);
      expect(outcomes).not.toContain('hang');
      if (out.halt?.reason === 'deadlock') {
        expect(outcomes).toEqual(['deadlocked', 'deadlocked']);
        expect(out.violations).toHaveLength(1);
        expect(out.violations[0].message).toMatch(/^deadlock at step \d+ .*cpu\[0\] waits on lock balloon_lock \(held by cpu\[1\]\); cpu\[1\] waits on lock zone\.lock \(held by cpu\[0\]\).*seed \d+, schedule bsched1\./);
        deadlocked.push({ seed, step: out.halt.step });
      } else {
        expect(outcomes).toEqual(['done', 'done']);
        expect(out.halt).toBeNull();
        completed++;
      }
    }
    expect(deadlocked.length).toBeGreaterThan(0);
    expect(completed).toBeGreaterThan(0);
    const again = await abba(deadlocked[0].seed);
    expect(again.out.halt?.step).toBe(deadlocked[0].step);
  });
});

describe('seeded scheduler: flags', () => {
  const cases: [string[], RegExp][] = [
    [['--sched', 'fair'], /^sim: --sched: 'fair' is not accepted; accepted: off, random, pct$/],
    [['--sched', 'pct', '--pct-depth', '0'], /^sim: --pct-depth: 0 is out of range; accepted: 1 to 16$/],
    [['--sched', 'pct', '--replay', 'bsched1.pct.x'], /^sim: --replay: 'bsched1.pct.x' is not accepted \(a schedule string has 10 dot-separated fields\)/],
    [['--sched', 'pct', '--replay', '/nonexistent/schedule.json'], /^sim: --replay: '\/nonexistent\/schedule.json' is not accepted \(ENOENT/],
  ];
  for (const [args, re] of cases) {
    it(`rejects ${args.join(' ')} with one line, exit 2`, () => {
      const r = sim(...args, '--duration', '20ms');
      expect(r.status).toBe(2);
      const lines = r.stderr.trim().split('\n');
      expect(lines).toHaveLength(1);
      expect(lines[0]).toMatch(re);
    });
  }
});

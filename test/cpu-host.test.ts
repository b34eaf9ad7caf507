// --cpu-threads (src/sim/cpu-host.ts): the host loop with stand-in CPUs in
// one thread, real CPUs sharing one thread, then end to end.
import { describe, expect, it } from 'vitest';
import { type HostedCpu, type Switchable, hostCpus, hosted } from '../src/sim/cpu-host.js';
import { HDR_RUN_STATE, HDR_STATE_GEN, METRIC_ALLOC_FAILS, NIL, LOCK_LINE_WORDS, LOCK_WORD, LOCK_ZONE, METRIC_OPS, RUN_RUNNING, RUN_STOPPING, createShared, metricBase } from '../src/shm/layout.js';
import { ALLOC_FAIL_BACKOFF_MS, Cpu } from '../src/sim/workload.js';
import { DEFAULT_CONFIG, cpuThreadCount, hostedCpus } from '../src/sim/config.js';
import { checkConservation, checkFreeLists } from '../src/check/structure.js';
import { runSimulation } from '../src/sim/run.js';
import { configFromArgs } from '../src/cli/flags.js';
import { INJECTIONS, RACE_BASE_ARGS } from '../src/check/inject.js';
import { makeWorld, zoneAs } from './helpers.js';

const header = () => createShared({ cpus: 4, memoryBytes: 4 * 2 ** 20, queueSize: 8, ringAlign: 4 }).header;
const stub = (cpu: number): Switchable => ({ cpu, beginSlice: () => undefined });
const running = (h: Int32Array) => Atomics.load(h, HDR_RUN_STATE) === RUN_RUNNING;
function stop(h: Int32Array): void {
  Atomics.store(h, HDR_RUN_STATE, RUN_STOPPING);
  Atomics.add(h, HDR_STATE_GEN, 1);
}
const entry = (cpu: number, steps: Generator<number, void, void>): HostedCpu => ({ cpu: stub(cpu), steps, wakeAtMs: 0, done: false });
const noHooks = { switchTo: () => undefined, failed: (_: HostedCpu, e: unknown) => { throw e; } };

describe('the CPU host: several CPUs on one thread', () => {
  it('resumes its runnable CPUs round robin until the run stops, then runs each to its end', () => {
    const h = header();
    h[HDR_RUN_STATE] = RUN_RUNNING;
    const log: number[] = [];
    const ended: number[] = [];
    function* busy(id: number): Generator<number, void, void> {
      while (running(h)) {
        log.push(id);
        if (log.length === 9) stop(h);
        yield 0;
      }
      ended.push(id);
    }
    const stats = hostCpus([0, 1, 2].map((i) => entry(i, busy(i))), h, noHooks);
    expect(log).toEqual([0, 1, 2, 0, 1, 2, 0, 1, 2]);
    expect(ended).toEqual([0, 1, 2]);
    expect(stats.switches).toBe(12);
    expect(stats.idleSleeps).toBe(0);
  });

  it('skips a sleeping CPU until its wake time and runs the others meanwhile', () => {
    const h = header();
    h[HDR_RUN_STATE] = RUN_RUNNING;
    let busyTurns = 0;
    let turnsWhileAsleep = -1;
    function* sleeper(): Generator<number, void, void> {
      const until = performance.now() + 30;
      yield until;
      expect(performance.now()).toBeGreaterThanOrEqual(until);
      turnsWhileAsleep = busyTurns;
      stop(h);
    }
    function* busy(): Generator<number, void, void> {
      while (running(h)) {
        busyTurns++;
        yield 0;
      }
    }
    hostCpus([entry(0, sleeper()), entry(1, busy())], h, noHooks);
    // Thousands on a quiet machine; a loaded one may deschedule the thread for the whole nap.
    expect(turnsWhileAsleep).toBeGreaterThan(0);
  });

  it('sleeps the thread while every CPU sleeps, and a stop of the run wakes a CPU idle until then', () => {
    const h = header();
    h[HDR_RUN_STATE] = RUN_RUNNING;
    const ended: string[] = [];
    function* idleForever(): Generator<number, void, void> {
      while (running(h)) yield Infinity;
      ended.push('idle');
    }
    function* napper(): Generator<number, void, void> {
      // Long enough that the host finds both asleep even on a loaded machine.
      yield performance.now() + 100;
      stop(h);
      ended.push('napper');
    }
    const stats = hostCpus([entry(0, idleForever()), entry(1, napper())], h, noHooks);
    expect(ended).toEqual(['napper', 'idle']);
    expect(stats.idleSleeps).toBeGreaterThanOrEqual(1);
  });

  it('a CPU that throws is reported and the others go on to their end', () => {
    const h = header();
    h[HDR_RUN_STATE] = RUN_RUNNING;
    const failed: number[] = [];
    let turns = 0;
    function* bad(): Generator<number, void, void> {
      yield 0;
      throw new Error('boom');
    }
    function* good(): Generator<number, void, void> {
      while (running(h)) {
        if (++turns === 5) stop(h);
        yield 0;
      }
    }
    hostCpus([entry(0, bad()), entry(1, good())], h, { switchTo: () => undefined, failed: (e) => void failed.push(e.cpu.cpu) });
    expect(failed).toEqual([0]);
    expect(turns).toBe(5);
  });
});

describe('real CPUs sharing a thread', () => {
  it('4 page_fault1 CPUs on one thread: each runs, a switch never finds the zone lock held, the zone comes back whole', () => {
    const w = makeWorld({ cpus: 4, memoryBytes: 16 * 2 ** 20, zone: { pcp: true } });
    const cfg = { ...w.cfg, workload: 'page_fault1' as const, thp: 'never' as const, cpuThreads: 1, regionBytes: 2 * 2 ** 20 };
    const list = [0, 1, 2, 3].map((c) => hosted(new Cpu(w.views, zoneAs(w, c), c, cfg, 100 + c)));
    const order: number[] = [];
    let lockHeldAtSwitch = 0;
    const t0 = performance.now();
    const sliceMs = 3;
    hostCpus(list, w.views.header, {
      switchTo: (h) => {
        if (Atomics.load(w.views.locks, LOCK_ZONE * LOCK_LINE_WORDS + LOCK_WORD) !== 0) lockHeldAtSwitch++;
        if (order[order.length - 1] !== h.cpu.cpu) order.push(h.cpu.cpu);
        if (performance.now() - t0 > 300) stop(w.views.header);
      },
      failed: (_, e) => {
        throw e;
      },
    }, sliceMs);
    expect(lockHeldAtSwitch).toBe(0);
    // 300 ms of 3 ms slices over 4 CPUs: about 100 turns on a quiet machine
    // (20 seen on a loaded one); at least two rounds, in order.
    expect(order.length).toBeGreaterThanOrEqual(8);
    expect(order.slice(0, 8)).toEqual([0, 1, 2, 3, 0, 1, 2, 3]);
    for (let c = 0; c < 4; c++) expect(w.views.metrics[metricBase(c) + METRIC_OPS], `cpu ${c}`).toBeGreaterThan(0);
    expect(checkFreeLists(w.zone)).toEqual([]);
    expect(checkConservation(w.zone).violations).toEqual([]);
    expect(w.zone.freePages).toBe(w.views.layout.pages);
  });

  it('a hosted CPU whose order-0 allocation fails yields its backoff (it does not sleep its thread), then goes on', () => {
    const w = makeWorld({ cpus: 2 });
    const cfg = { ...w.cfg, workload: 'page_fault1' as const, thp: 'never' as const, cpuThreads: 1 };
    // Everything allocated elsewhere: the CPU's first fault fails.
    const taken: number[] = [];
    for (let pfn = w.zone.alloc(10, 0); pfn !== NIL; pfn = w.zone.alloc(10, 0)) taken.push(pfn);
    const cpu = new Cpu(w.views, zoneAs(w, 0), 0, cfg, 1);
    const steps = cpu.steps();
    cpu.beginSlice(performance.now() + 1000);
    const t0 = performance.now();
    const r = steps.next();
    const t1 = performance.now();
    expect(r.done).toBe(false);
    // The backoff's end: ALLOC_FAIL_BACKOFF_MS after the failure, which came between t0 and t1.
    const wakeAt = r.value as number;
    expect(wakeAt).toBeGreaterThan(t0 + ALLOC_FAIL_BACKOFF_MS);
    expect(wakeAt).toBeLessThanOrEqual(t1 + ALLOC_FAIL_BACKOFF_MS);
    expect(w.views.metrics[metricBase(0) + METRIC_ALLOC_FAILS]).toBe(1);
    for (const pfn of taken) w.zone.free(pfn, 10, 0);
    stop(w.views.header);
    expect(steps.next().done).toBe(true);
    expect(w.zone.freePages).toBe(w.views.layout.pages);
  });

  it('thread t runs CPUs t, t + N, ...; N = --cpus is a thread per CPU', () => {
    expect(hostedCpus({ cpus: 8, cpuThreads: 3 }, 1)).toEqual([1, 4, 7]);
    expect(hostedCpus({ cpus: 8, cpuThreads: 3 }, 2)).toEqual([2, 5]);
    expect(cpuThreadCount({ cpus: 8, cpuThreads: 3 })).toBe(3);
    expect(hostedCpus({ cpus: 4, cpuThreads: 4 }, 2)).toEqual([2]);
    expect(cpuThreadCount({ cpus: 4, cpuThreads: 0 })).toBe(4);
  });
});

describe('--cpu-threads end to end', () => {
  it('4 CPUs on 2 threads under reporting: every CPU runs, every oracle passes, CPU time is per thread; the rerun names the threads', async () => {
    const cfg = { ...DEFAULT_CONFIG, cpus: 4, cpuThreads: 2, workload: 'churn' as const, memoryBytes: 64 * 2 ** 20, durationMs: 600, seed: 11, hinting: 'reporting' as const, reportDelayMs: 20, costProfile: 'none', hostCosts: null };
    const r = await runSimulation(cfg);
    expect(r.ok, r.rerun).toBe(true);
    for (const row of r.cpus) expect(row.ops, `cpu ${row.cpu}`).toBeGreaterThan(0);
    // Each CPU's first resume is 4 in all; more means slices ended and CPUs
    // were resumed again (600 / CPU_HOST_SLICE_MS per thread on a quiet
    // machine; a loaded one gives the threads less time: 26 seen).
    expect(r.totals.cpuHostSwitches).toBeGreaterThan(4);
    if (r.cpuTime !== undefined) expect(r.cpuTime.cpus.threads).toBe(2);
    expect(r.rerun).toContain('--cpu-threads 2');
  });

  it('memhog wanting more than memory, 4 CPUs on 1 thread: allocations fail, the CPUs idle with their thread asleep, the run ends clean', async () => {
    // Each CPU holds its share for the whole run, so the shares (120% in all) overlap however slowly the thread runs.
    const cfg = { ...DEFAULT_CONFIG, cpus: 4, cpuThreads: 1, workload: 'memhog' as const, hogShare: 1.2, holdMs: 1000, memoryBytes: 16 * 2 ** 20, durationMs: 1000, seed: 3, hinting: 'off' as const, costProfile: 'none', hostCosts: null };
    const r = await runSimulation(cfg);
    expect(r.ok, r.rerun).toBe(true);
    expect(r.totals.allocFailures).toBeGreaterThan(0);
    expect(r.totals.cpuHostIdleSleeps).toBeGreaterThan(0);
  });

  it('finds a race with a protection off: no-zone-lock, 8 CPUs on 2 threads, is caught by its oracles', async () => {
    const name = 'no-zone-lock';
    const cfg = configFromArgs([...RACE_BASE_ARGS, ...INJECTIONS[name].args, '--cpu-threads', '2', '--seed', '1', '--inject', name]);
    const r = await runSimulation(cfg);
    expect(r.ok).toBe(false);
    expect(r.violations.length).toBeGreaterThan(0);
    for (const v of r.violations) expect(INJECTIONS[name].oracles as readonly string[]).toContain(v.oracle);
    expect(r.rerun).toContain('--cpu-threads 2');
  });

  it('refuses more threads than CPUs, a bad value, --sched and --cpu-slots, in one line naming the flag', () => {
    expect(() => configFromArgs(['--cpus', '4', '--cpu-threads', '5'])).toThrow(/--cpu-threads: 5 threads for 4 CPUs; accepted: 0 \(off\) to --cpus/);
    expect(() => configFromArgs(['--cpus', '4', '--cpu-threads', 'two'])).toThrow(/--cpu-threads: 'two' is not accepted; accepted: off, auto or a whole number from 0 \(off\) to --cpus \(4\)/);
    expect(() => configFromArgs(['--cpus', '4', '--cpu-threads', '2', '--sched', 'pct'])).toThrow(/--cpu-threads: not with --sched pct/);
    expect(() => configFromArgs(['--cpus', '4', '--cpu-threads', '2', '--cpu-slots', '2'])).toThrow(/--cpu-threads: not with --cpu-slots/);
    expect(configFromArgs(['--cpus', '1', '--cpu-threads', 'auto']).cpuThreads).toBe(1);
  });
});

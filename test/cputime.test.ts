import { describe, expect, it } from 'vitest';
import { cpuTimeStats, ownTid, parseSchedstat, readSchedstat, threadDelta } from '../src/sim/cputime.js';
import { DEFAULT_CONFIG } from '../src/sim/config.js';
import { runSimulation } from '../src/sim/run.js';

describe('schedstat arithmetic (src/sim/cputime.ts)', () => {
  it('parses "run_ns wait_ns slices" and refuses anything else', () => {
    expect(parseSchedstat('3498817 120 7\n')).toEqual({ runNs: 3498817, runqWaitNs: 120, slices: 7 });
    expect(parseSchedstat('1 2')).toBeNull();
    expect(parseSchedstat('a b c')).toBeNull();
    expect(parseSchedstat('1 -2 3')).toBeNull();
  });

  it('splits a window into on a core, waiting for one, and asleep', () => {
    const d = threadDelta({ runNs: 100, runqWaitNs: 50, slices: 1 }, { runNs: 400, runqWaitNs: 150, slices: 5 }, 1000);
    expect(d).toEqual({ runNs: 300, runqWaitNs: 100, slices: 4, sleepNs: 600 });
  });

  it('charges the CPUs and the reporter to the guest and the device to the host', () => {
    const t = (runNs: number) => ({ runNs, runqWaitNs: 0, slices: 1, sleepNs: 0 });
    const s = cpuTimeStats(1e9, { cpus: [t(4e8), t(6e8)], reporter: t(1e8), device: t(3e8), main: t(1e7) }, 2_200_000);
    expect(s.cpus.runNs).toBe(1e9);
    expect(s.guestRunNs).toBe(1.1e9);
    expect(s.hostRunNs).toBe(3e8);
    expect(s.opsPerGuestCpuSec).toBeCloseTo(2e6, 6);
    expect(s.guestRunNsPerOp).toBeCloseTo(500, 9);
  });

  it("reads this thread's own schedstat, which grows while it spins", () => {
    const tid = ownTid();
    expect(tid).toBeGreaterThan(0);
    const a = readSchedstat(tid)!;
    // Spin until 10 ms on a core show up (bounded: other test files share the cores).
    const until = performance.now() + 3000;
    let b = a;
    while (b.runNs - a.runNs < 10e6 && performance.now() < until) {
      for (let i = 0; i < 1e5; i++) void Math.sqrt(i);
      b = readSchedstat(tid)!;
    }
    expect(b.runNs - a.runNs).toBeGreaterThanOrEqual(10e6);
    expect(b.slices).toBeGreaterThanOrEqual(a.slices);
    expect(readSchedstat(0)).toBeNull();
  });
});

describe('cpuTime of a threaded run', () => {
  it('maps every role to its own thread: spinning CPUs run, the device and the reporter mostly sleep', async () => {
    const cfg = { ...DEFAULT_CONFIG, cpus: 2, workload: 'page_fault1' as const, memoryBytes: 32 * 2 ** 20, durationMs: 600, hinting: 'reporting' as const, seed: 5 };
    const r = await runSimulation(cfg);
    expect(r.ok).toBe(true);
    const c = r.cpuTime!;
    expect(c.windowNs).toBeCloseTo(r.durationMs * 1e6, -7);
    expect(c.cpus.threads).toBe(2);
    // Two busy CPU threads: far more time on a core than the roles that wait for work.
    expect(c.cpus.runNs).toBeGreaterThan(0.1 * c.windowNs);
    expect(c.device!.runNs).toBeLessThan(c.cpus.runNs / 2);
    expect(c.reporter!.runNs).toBeLessThan(c.cpus.runNs / 2);
    expect(c.main.runNs).toBeLessThan(c.cpus.runNs / 2);
    // A thread cannot be on a core or queued for one for longer than the window (plus snapshot skew).
    for (const x of [c.device!, c.reporter!, c.main]) expect(x.runNs + x.runqWaitNs).toBeLessThan(c.windowNs * 1.05 + 20e6);
    expect(c.cpus.runNs + c.cpus.runqWaitNs).toBeLessThan(2 * (c.windowNs * 1.05 + 20e6));
    expect(c.guestRunNs).toBe(c.cpus.runNs + c.reporter!.runNs);
    expect(c.hostRunNs).toBe(c.device!.runNs);
    expect(c.opsPerGuestCpuSec).toBeCloseTo(r.totals.ops / (c.guestRunNs / 1e9), 3);
  });
});

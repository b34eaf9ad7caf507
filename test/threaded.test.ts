import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { type Config, DEFAULT_CONFIG, WORKLOADS } from '../src/sim/config.js';
import { runSimulation, sharedBufferFor } from '../src/sim/run.js';

const CLI = path.resolve(__dirname, '../dist/src/cli/main.js');

describe('threaded runs with 8 vCPUs', () => {
  for (const workload of WORKLOADS) {
    for (const pcp of [false, true]) {
      it(`${workload}${pcp ? '' : ' with --no-pcp'}: ops > 0, zero violations, everything freed at the end`, async () => {
        const cfg: Config = { ...DEFAULT_CONFIG, cpus: 8, workload, memoryBytes: 64 * 2 ** 20, durationMs: pcp ? 800 : 400, seed: 42, pcp, hinting: 'off', holdMs: 100, checkIntervalMs: 100 };
        const r = await runSimulation(cfg);
        expect(r.errors).toEqual([]);
        expect(r.violations).toEqual([]);
        expect(r.exitCode).toBe(0);
        expect(r.totals.ops).toBeGreaterThan(0);
        expect(r.cpus.every((c) => c.ops > 0)).toBe(true);
        expect(r.memory.freeBytes).toBe(cfg.memoryBytes);
        expect(r.checks.find((c) => c.oracle === 'free-list')!.runs).toBeGreaterThan(1);
        expect(r.checks.find((c) => c.oracle === 'stamp')!.runs).toBeGreaterThan(0);
        // no hinting: host RSS is exactly the pages ever touched
        expect(r.host.rssBytes).toBe(r.host.peakRssBytes);
        expect(r.host.refaults).toBe(0);
      });
    }
  }
});

describe('the harness never hangs', () => {
  it('a worker that dies ends the run with exit 3, the seed and the rerun command', () => {
    const r = spawnSync(process.execPath, [CLI, '--cpus', '2', '--memory', '16M', '--duration', '300ms', '--seed', '31'], { encoding: 'utf8', env: { ...process.env, BALLOON_SIM_SELFTEST: 'crash' }, timeout: 60_000 });
    expect(r.status).toBe(3);
    expect(r.stdout).toMatch(/FAILED \(simulator\): cpu\[0\] failed: Error: self-test: simulated worker crash/);
    expect(r.stdout).toMatch(/seed 31/);
    expect(r.stdout).toMatch(/rerun: sim --cpus 2 .*--seed 31/);
  });

  it('a worker that ignores the stop request ends the run with exit 3 after the bound', () => {
    const t0 = Date.now();
    const r = spawnSync(process.execPath, [CLI, '--cpus', '2', '--memory', '16M', '--duration', '100ms', '--seed', '32', '--wait-timeout', '500ms'], { encoding: 'utf8', env: { ...process.env, BALLOON_SIM_SELFTEST: 'hang' }, timeout: 60_000 });
    expect(r.status).toBe(3);
    expect(r.stdout).toMatch(/did not stop within .* cpu\[0\] \(hang\)/);
    expect(r.stdout).toMatch(/rerun: .*--seed 32/);
    expect(Date.now() - t0).toBeLessThan(30_000);
  });
});

describe('runs on a reused buffer (RunHooks.buffer, what the benchmarks pair runs on)', () => {
  it('a second run on the buffer of a first starts from zero: clean, RSS counted from scratch', async () => {
    const cfg: Config = { ...DEFAULT_CONFIG, cpus: 2, workload: 'memhog', memoryBytes: 32 * 2 ** 20, durationMs: 500, seed: 7, hinting: 'reporting', reportDelayMs: 0, capacity: 4, holdMs: 50, checkIntervalMs: 100 };
    const buffer = sharedBufferFor(cfg);
    const first = await runSimulation(cfg, { buffer });
    expect(first.violations).toEqual([]);
    expect(first.hinting!.reportedBytes).toBeGreaterThan(0);
    // Leave the buffer dirty the way a run does (stamped guest pages, used
    // ring, Reported flags); the second run must not see any of it.
    const second = await runSimulation({ ...cfg, hinting: 'off' }, { buffer });
    expect(second.violations).toEqual([]);
    expect(second.exitCode).toBe(0);
    expect(second.host.refaults).toBe(0);
    expect(second.host.peakRssBytes).toBeLessThanOrEqual(cfg.memoryBytes);
    expect(second.memory.freeBytes).toBe(cfg.memoryBytes);
  });

  it('a buffer of another shape is refused', async () => {
    const cfg: Config = { ...DEFAULT_CONFIG, cpus: 2, memoryBytes: 32 * 2 ** 20, durationMs: 100, seed: 7, hinting: 'off' };
    await expect(runSimulation(cfg, { buffer: sharedBufferFor({ ...cfg, memoryBytes: 16 * 2 ** 20 }) })).rejects.toThrow(/reused buffer is \d+ bytes, this configuration needs \d+/);
  });
});

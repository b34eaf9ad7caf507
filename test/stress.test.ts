// sim stress: deterministic per-run seeds and swarm configurations (so a
// shard and the full campaign agree), and a short real campaign through the CLI.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { DEFAULT_CONFIG } from '../src/sim/config.js';
import { validateConfig } from '../src/sim/validate.js';
import { runConfig, runSeed } from '../src/cli/stress.js';

const CLI = path.resolve(__dirname, '../dist/src/cli/main.js');
const sim = (...args: string[]) => spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', timeout: 120_000 });
const base = { ...DEFAULT_CONFIG, seed: 5 };

describe('stress campaign plan', () => {
  it('derives each run seed and swarm configuration from the campaign seed alone; shards partition the campaign', () => {
    const o = { campaignSeed: 42, swarm: true, runDurationMs: 300 };
    const full = Array.from({ length: 40 }, (_, i) => runConfig(base, o, i));
    const seeds = new Set(full.map((c) => c.seed));
    expect(seeds.size).toBe(40); // distinct seeds
    for (const c of full) expect(() => validateConfig(c)).not.toThrow();
    // Shard 1/3 is runs 1, 4, 7, ... of the same campaign, configuration for configuration.
    for (let i = 1; i < 40; i += 3) expect(runConfig(base, o, i)).toEqual(full[i]);
    expect(runSeed(42, 7)).toBe(full[7].seed);
    expect(runSeed(43, 7)).not.toBe(runSeed(42, 7));
    // Swarm really varies the configuration.
    expect(new Set(full.map((c) => `${c.cpus}/${c.workload}/${c.hinting}/${c.memoryBytes}`)).size).toBeGreaterThan(20);
    expect(new Set(full.map((c) => c.hinting)).size).toBeGreaterThan(1);
    // Some runs put their CPUs M:N on fewer threads than CPUs, never with --sched.
    const mn = full.filter((c) => c.cpuThreads > 0);
    expect(mn.length).toBeGreaterThan(0);
    for (const c of mn) expect(c.cpuThreads).toBeLessThan(c.cpus);
  });
});

describe('sim stress', () => {
  it('runs a clean swarm shard and reports runs, oracles and no failures (--json)', () => {
    const r = sim('stress', '--swarm', '--runs', '6', '--shard', '1/2', '--seed', '9', '--run-duration', '200ms', '--json');
    expect(r.status, r.stderr.slice(-600)).toBe(0);
    const j = JSON.parse(r.stdout);
    expect(j.runsPlanned).toBe(3);
    expect(j.runsDone).toBe(3);
    expect(j.failures).toBe(0);
    expect(j.shard).toBe('1/2');
    expect(j.oracles.find((x: { oracle: string }) => x.oracle === 'stamp').runs).toBeGreaterThan(0);
    expect(r.stderr).toMatch(/^run 1 seed \d+ ok/m);
    expect(r.stderr).not.toMatch(/^run [024] /m); // only the shard's runs
  });
  it('stops at the first failure and prints the seed, configuration and rerun command', () => {
    const r = sim('stress', '--runs', '8', '--seed', '3', '--cpus', '4', '--memory', '64M', '--capacity', '4', '--report-order', '7', '--inject', 'device-double-used', '--run-duration', '300ms');
    expect(r.status).toBe(1);
    expect(r.stdout).toMatch(/^FAILED: run \d+, seed \d+, exit 1$/m);
    expect(r.stdout).toMatch(/^  ring: /m);
    expect(r.stdout).toMatch(/^config: cpus=4 .*inject=device-double-used/m);
    const m = /^rerun: (sim .*)$/m.exec(r.stdout);
    expect(m).not.toBeNull();
    expect(m![1]).toMatch(/--inject device-double-used/);
    const again = sim(...m![1].split(' ').slice(1));
    expect(again.status).toBe(1);
    expect(again.stdout).toMatch(/^VIOLATION ring:/m);
    expect(Number(/stress: (\d+) runs/.exec(r.stdout)![1])).toBeLessThan(8); // stopped early
  });
  it('--sched pct: every run is a scheduled run; a failure prints the schedule, its file and the replay command, which replays it', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'stress-sched-'));
    const args = ['stress', '--runs', '3', '--jobs', '1', '--seed', '3', '--cpus', '2', '--memory', '64M', '--capacity', '4', '--report-order', '7', '--inject', 'device-double-used', '--run-duration', '200ms', '--sched', 'pct', '--pct-depth', '16'];
    const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', timeout: 120_000, cwd: dir });
    expect(r.status, r.stderr.slice(-600)).toBe(1);
    expect(r.stdout).toMatch(/^  ring: /m);
    const rerun = /^rerun: (sim .*)$/m.exec(r.stdout)![1];
    expect(rerun).toMatch(/--sched pct --pct-depth 16/);
    expect(r.stdout).toMatch(/^schedule: bsched1\.pct\.16\./m);
    const file = /^schedule file: (.+)$/m.exec(r.stdout)![1];
    expect(existsSync(file)).toBe(true);
    const replay = /^replay: (sim .*)$/m.exec(r.stdout)![1];
    expect(replay).toBe(`${rerun} --replay ${file}`);
    const again = spawnSync(process.execPath, [CLI, ...replay.split(' ').slice(1), '--json'], { encoding: 'utf8', timeout: 120_000, cwd: dir });
    expect(again.status, again.stderr.slice(-600)).toBe(1);
    expect(JSON.parse(again.stdout).violations[0].oracle).toBe('ring');
  });
  it('rejects a bad --shard with one line, exit 2', () => {
    const r = sim('stress', '--shard', '3/2', '--runs', '1');
    expect(r.status).toBe(2);
    expect(r.stderr.trim()).toMatch(/^sim: --shard: '3\/2' is not accepted; accepted: K\/N with 0 <= K < N <= 100000$/);
  });
});

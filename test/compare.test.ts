import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { HINTING_MODES } from '../src/sim/config.js';
import { LOCK_CLASSES } from '../src/shm/layout.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const cli = path.join(root, 'dist/src/cli/main.js');

function sim(args: string[]) {
  expect(existsSync(cli), `${cli} missing: run 'npx tsc -p .' first`).toBe(true);
  const r = spawnSync(process.execPath, [cli, ...args], { encoding: 'utf8', timeout: 60_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe('sim compare (end to end)', () => {
  it('runs every hinting mode with the same seed and prints them side by side, and one JSON object with --json', () => {
    const r = sim(['compare', '--workload', 'churn', '--cpus', '2', '--memory', '16M', '--duration', '300ms', '--seed', '11', '--json']);
    expect(r.code, r.stderr).toBe(0);
    const j = JSON.parse(r.stdout);
    expect(j.command).toBe('compare');
    expect(j.seed).toBe(11);
    expect(j.modes.map((m: { mode: string }) => m.mode)).toEqual([...HINTING_MODES]);
    for (const m of j.modes) {
      expect(m.ok).toBe(true);
      expect(m.rerun).toContain('--seed 11');
      expect(m.rerun).toContain(`--hinting ${m.mode}`);
      expect(m.opsPerSec).toBeGreaterThan(0);
      expect(m.hostRssBytes).toBeGreaterThan(0);
      // churn allocates and frees through the zone lock all the time.
      expect(m.zoneLock.acquisitions).toBeGreaterThan(100);
      expect(m.zoneLock.contentions).toBeLessThanOrEqual(m.zoneLock.acquisitions);
      expect(m.zoneLock.waitNsPerAcquisition).toBeCloseTo(m.zoneLock.waitNsTotal / m.zoneLock.acquisitions, 6);
      expect(m.locks.map((l: { class: string }) => l.class)).toEqual([...LOCK_CLASSES]);
    }
    // Human text goes to stderr with --json: the seed first, then the side-by-side table.
    expect(r.stderr.split('\n')[0]).toBe('balloon-sim: seed 11');
    const header = r.stderr.split('\n').find((l) => l.startsWith('hinting '));
    expect(header).toMatch(/ops\/s.*host-rss.*contentions.*wait\/acq/);
    for (const mode of HINTING_MODES) expect(r.stderr).toMatch(new RegExp(`^${mode} +\\S`, 'm'));
  });

  it('refuses --hinting and bad values with exit 2 and a one-line message', () => {
    const a = sim(['compare', '--hinting', 'reporting', '--memory', '16M']);
    expect(a.code).toBe(2);
    expect(a.stderr.trim().split('\n')).toHaveLength(1);
    expect(a.stderr).toContain('--hinting');
    const b = sim(['--lockstat-sort', 'name', '--memory', '16M']);
    expect(b.code).toBe(2);
    expect(b.stderr).toMatch(/^sim: --lockstat-sort: 'name' is not accepted; accepted: contentions, wait-total, wait-max, hold-total\n$/);
  });
});

describe('sim run --lockstat (end to end)', () => {
  it('adds the locks section to --json and prints /proc/lock_stat with --lockstat-format proc', () => {
    const r = sim(['--workload', 'churn', '--cpus', '2', '--memory', '16M', '--duration', '300ms', '--seed', '5', '--json', '--lockstat-format', 'proc']);
    expect(r.code, r.stderr).toBe(0);
    const j = JSON.parse(r.stdout);
    expect(j.rerun).toContain('--lockstat');
    const zone = j.locks.find((l: { class: string }) => l.class === 'zone.lock');
    expect(zone.acquisitions).toBeGreaterThan(100);
    expect(zone.holdNs.total).toBeGreaterThan(0);
    expect(zone.holdHistNs.reduce((a: number, b: { count: number }) => a + b.count, 0)).toBeGreaterThan(0);
    const lines = r.stderr.split('\n');
    const at = lines.indexOf('lock_stat version 0.4');
    expect(at).toBeGreaterThan(0);
    const row = lines.find((l) => l.startsWith(' '.repeat(31) + 'zone.lock:'))!;
    expect(row.slice(41).trim().split(/\s+/)).toHaveLength(12);
    expect(Number(row.slice(41).trim().split(/\s+/)[7])).toBe(zone.acquisitions);
  });

  it('without --lockstat there is no locks section', () => {
    const r = sim(['--workload', 'churn', '--cpus', '1', '--memory', '16M', '--duration', '100ms', '--seed', '5', '--json']);
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout).locks).toBeUndefined();
  });
});

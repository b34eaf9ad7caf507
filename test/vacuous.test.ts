// Never a vacuous pass: a run whose --inject never acted tested nothing, so
// it exits 1 with one line naming what did not happen and what to change
// (src/check/inject.ts); a campaign warns about oracles that never ran and
// fails when its injection acted in no run. Spawns dist/: `npx tsc -p .` first.
import { spawn } from 'node:child_process';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { INJECTIONS, INJECTION_NAMES, injectionOutcomes } from '../src/check/inject.js';
import { INJECTED_SLOTS } from '../src/shm/layout.js';

const CLI = path.resolve(__dirname, '../dist/src/cli/main.js');

function sim(args: string[]): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const c = spawn(process.execPath, [CLI, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    c.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    c.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const t = setTimeout(() => c.kill('SIGKILL'), 60_000);
    c.on('close', (status) => {
      clearTimeout(t);
      resolve({ status, stdout, stderr });
    });
  });
}

describe('injection outcomes (pure)', () => {
  it('each injection has its own counter, what it counts and what to change', () => {
    const counters = INJECTION_NAMES.map((n) => INJECTIONS[n].counter);
    expect(new Set(counters).size).toBe(INJECTION_NAMES.length);
    for (const c of counters) expect(c).toBeLessThan(INJECTED_SLOTS);
    for (const n of INJECTION_NAMES) expect(INJECTIONS[n].ifNeverActed).toMatch(/--/); // names a flag to change
  });
  it('acted when the counter is above 0; otherwise a reason naming what did not happen', () => {
    const counts = new Map<number, number>([[INJECTIONS['no-isolate'].counter, 0], [INJECTIONS['device-double-used'].counter, 3]]);
    const out = injectionOutcomes(['no-isolate', 'device-double-used'], (c) => counts.get(c) ?? 0, 'the reporter made 0 reports in 5 passes');
    expect(out[1]).toEqual({ name: 'device-double-used', acted: true, count: 3, counts: INJECTIONS['device-double-used'].counts });
    expect(out[0].acted).toBe(false);
    expect(out[0].reason).toBe(`no-isolate never acted: 0 ${INJECTIONS['no-isolate'].counts} (the reporter made 0 reports in 5 passes); ${INJECTIONS['no-isolate'].ifNeverActed}`);
  });
});

describe('a run whose injection never acted', () => {
  it('the issue\'s no-isolate case on a 64 MiB guest (default capacity and order: no pass can run): exit 1, one reason line, JSON says so', async () => {
    const r = await sim(['--cpus', '2', '--workload', 'churn', '--memory', '64M', '--duration', '300ms', '--report-delay', '1ms', '--inject', 'no-isolate', '--seed', '1', '--json']);
    expect(r.status, r.stderr.slice(-500)).toBe(1);
    const j = JSON.parse(r.stdout);
    expect(j.ok).toBe(false);
    expect(j.violations).toEqual([]);
    expect(j.errors).toEqual([]);
    expect(j.injections).toHaveLength(1);
    expect(j.injections[0]).toMatchObject({ name: 'no-isolate', acted: false, count: 0 });
    expect(j.injections[0].reason).toMatch(/^no-isolate never acted: 0 blocks .* \(the reporter made 0 reports in \d+ passes, \d+ skipped with zone free below low watermark \+ capacity << order; the device completed 0 requests\); .*lower --capacity or --report-order/);
    const lines = r.stderr.split('\n');
    expect(lines.filter((l) => l.startsWith('VACUOUS: no-isolate never acted: '))).toHaveLength(1);
    expect(r.stderr).toMatch(/^FAILED with exit 1 \(seed 1\)$/m);
    expect(r.stderr).not.toMatch(/^OK: /m);
    expect(r.stderr).toMatch(/^rerun: sim .*--inject no-isolate/m);
  });

  it('an injection where reports happen acts and is counted (and its oracle finds it)', async () => {
    const r = await sim(['--cpus', '2', '--workload', 'page_fault1', '--memory', '64M', '--capacity', '4', '--report-order', '7', '--report-delay', '0ms', '--duration', '1s', '--settle-timeout', '1s', '--inject', 'device-double-used', '--seed', '1', '--json']);
    const j = JSON.parse(r.stdout);
    expect(j.injections[0]).toMatchObject({ name: 'device-double-used', acted: true });
    expect(j.injections[0].count).toBeGreaterThan(0);
    expect(r.status).toBe(1);
    expect(j.violations[0].oracle).toBe('ring');
    expect(r.stderr).not.toMatch(/^VACUOUS/m);
  });
});

describe('sim stress: oracles and injections that never ran', () => {
  it('a campaign whose injection acted in no run exits 1 (VACUOUS) and warns about oracles that ran 0 times', async () => {
    const r = await sim(['stress', '--runs', '2', '--jobs', '2', '--seed', '1', '--cpus', '2', '--memory', '32M', '--run-duration', '100ms', '--report-delay', '1ms', '--settle-timeout', '1s', '--inject', 'no-isolate', '--json']);
    expect(r.status, r.stderr.slice(-600)).toBe(1);
    const j = JSON.parse(r.stdout);
    expect(j.failures).toBe(0); // nothing was found: it is not a failure found, it is a campaign that tested nothing
    expect(j.runsDone).toBe(2);
    expect(j.injections).toEqual([expect.objectContaining({ name: 'no-isolate', runs: 2, actedInRuns: 0 })]);
    expect(j.runs.every((x: { vacuous?: boolean }) => x.vacuous === true)).toBe(true);
    expect(r.stderr).toMatch(/^VACUOUS: inject no-isolate never acted in any of 2 runs: the campaign tested nothing; e\.g\. no-isolate never acted: /m);
    expect(r.stderr).toMatch(/^warning: oracles that ran 0 times in the whole campaign: .*device-allocated-range/m);
    expect(j.warnings.join('\n')).toMatch(/device-allocated-range/);
  });
});

// Strict wake-ups (docs/DESIGN.md §4): a wait with no semantic timeout ends
// only by a wake-up. Each check is shown to fail on a planted missing
// Atomics.notify (BALLOON_SIM_SELFTEST=no-notify-request: the free path
// bumps the request generation with a bare Atomics.add; =no-notify-unlock: a
// contended release skips its notify): running free it is a `lost-wakeup`
// violation naming the event or lock, under --sched a deadlock reported as
// `liveness` with its schedule. Before the checks, both bugs cost a slice
// of latency and every run passed.

import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { LOST_WAKEUP_GRACE_MS, setWakeChecks, waitWhileEquals } from '../src/locking/sync.js';
import { OracleViolation } from '../src/base/errors.js';

const CLI = path.resolve(__dirname, '../dist/src/cli/main.js');
const SMALL = ['--memory', '64M', '--capacity', '4', '--report-order', '7', '--report-delay', '10ms', '--settle-timeout', '1s', '--check-interval', '100ms', '--hinting', 'reporting'];

function sim(args: string[], selftest?: string) {
  const r = spawnSync(process.execPath, [CLI, ...SMALL, ...args, '--json'], { encoding: 'utf8', timeout: 90_000, env: { ...process.env, BALLOON_SIM_SELFTEST: selftest ?? '' } });
  const json = JSON.parse(r.stdout);
  return { status: r.status, json, stderr: r.stderr, runs: (o: string) => json.checks.find((c: { oracle: string }) => c.oracle === o).runs as number };
}

describe('strict wake-ups, one thread', () => {
  it('a strict wait whose awaited change happened without a wake-up is a lost-wakeup violation after the grace; a plain timeout is not', () => {
    const a = new Int32Array(new SharedArrayBuffer(64));
    const m = new Float64Array(1);
    setWakeChecks(m, 0);
    try {
      expect(waitWhileEquals(a, 0, 0, 60, () => false, 0, { event: 'test event', due: () => false })).toBe('timed-out');
      const t0 = performance.now();
      let err: unknown = null;
      try {
        waitWhileEquals(a, 0, 0, 5000, () => false, 0, { event: 'test event', due: () => true, dueWhat: 'the thing happened' });
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(OracleViolation);
      expect((err as OracleViolation).violation.oracle).toBe('lost-wakeup');
      expect((err as OracleViolation).message).toMatch(/test event: the thing happened, but the word stayed at 0/);
      expect(performance.now() - t0).toBeGreaterThanOrEqual(LOST_WAKEUP_GRACE_MS);
      // Without the checks installed (main, harnesses) the same wait just times out.
      setWakeChecks(null);
      expect(waitWhileEquals(a, 0, 0, 60, () => false, 0, { event: 'test event', due: () => true })).toBe('timed-out');
    } finally {
      setWakeChecks(null);
    }
  });
});

describe('strict wake-ups find a planted missing Atomics.notify', () => {
  it('running free: the reporter\'s request wait (lost-wakeup naming REP_REQUEST_GEN); the same run without the plant passes and counts its checks', () => {
    const args = ['--cpus', '2', '--duration', '400ms', '--seed', '1'];
    const bad = sim(args, 'no-notify-request');
    expect(bad.status, bad.stderr).toBe(1);
    expect(bad.json.violations[0].oracle).toBe('lost-wakeup');
    expect(bad.json.violations[0].message).toMatch(/^report request \(REP_REQUEST_GEN\): the word moved from \d+ to \d+ while a thread slept on it, and no wake-up/);
    const good = sim(args);
    expect(good.status, good.stderr).toBe(0);
    expect(good.runs('lost-wakeup')).toBeGreaterThan(0);
  });

  it('running free: a contended lock release (lost-wakeup naming zone.lock)', () => {
    const bad = sim(['--cpus', '4', '--workload', 'churn', '--no-pcp', '--duration', '400ms', '--seed', '1'], 'no-notify-unlock');
    expect(bad.status, bad.stderr).toBe(1);
    expect(bad.json.violations[0].oracle).toBe('lost-wakeup');
    expect(bad.json.violations[0].message).toMatch(/^lock zone\.lock: released with waiters sleeping, but the release woke none of them/);
  });

  it('under --sched pct: the reporter blocks with no waker, a deadlock reported as liveness with its schedule; the same seed without the plant passes', () => {
    const args = ['--cpus', '2', '--workload', 'memfill', '--duration', '200ms', '--sched', 'pct', '--seed', '1'];
    const bad = sim(args, 'no-notify-request');
    expect(bad.status, bad.stderr).toBe(1);
    expect(bad.json.violations[0].oracle).toBe('liveness');
    expect(bad.json.violations[0].message).toMatch(/^deadlock at step \d+ .*reporter waits on report request \(REP_REQUEST_GEN\), with no wake-up.*schedule bsched1\./);
    const good = sim(args);
    expect(good.status, good.stderr).toBe(0);
    expect(good.runs('lost-wakeup')).toBeGreaterThan(0);
  });
});

// Device faults (--device-faults, docs/DESIGN.md §16): the grammar, the
// seeded dice, clean runs that survive every survivable kind with every
// oracle passing (the error paths ran: failed reports, resets, spurious
// interrupts), the oracles staying exact under faults (an error-path slip
// planted with BALLOON_SIM_SELFTEST is found under its fault and invisible
// without it), and irq-lost, which Linux does not survive, reported.

import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { DEVICE_FAULT_KINDS, FaultDice, formatDeviceFaults, parseDeviceFaults } from '../src/virtio/device-faults.js';
import { configFromArgs } from '../src/cli/flags.js';
import { UsageError } from '../src/base/errors.js';

const CLI = path.resolve(__dirname, '../dist/src/cli/main.js');
const SMALL = ['--memory', '64M', '--capacity', '4', '--report-order', '7', '--report-delay', '10ms', '--settle-timeout', '1s', '--check-interval', '100ms'];

function sim(args: string[], selftest = '') {
  const r = spawnSync(process.execPath, [CLI, ...SMALL, ...args, '--json'], { encoding: 'utf8', timeout: 90_000, env: { ...process.env, BALLOON_SIM_SELFTEST: selftest } });
  return { status: r.status, json: r.stdout ? JSON.parse(r.stdout) : null, stderr: r.stderr };
}
const acted = (j: { faults: { kinds: { kind: string; acted: number }[] } }, kind: string) => j.faults.kinds.find((k) => k.kind === kind)!.acted;

describe('--device-faults: grammar and dice', () => {
  it('parses kinds, rates and the ack-delay bound into one canonical spelling', () => {
    const f = parseDeviceFaults('reset=2%, report-error=0.05,ack-delay=10%:50ms');
    expect(f).toEqual([
      { kind: 'report-error', rate: 0.05, maxMs: 0 },
      { kind: 'ack-delay', rate: 0.1, maxMs: 50 },
      { kind: 'reset', rate: 0.02, maxMs: 0 },
    ]);
    expect(formatDeviceFaults(f)).toBe('report-error=5%,ack-delay=10%:50ms,reset=2%');
    expect(parseDeviceFaults(formatDeviceFaults(f))).toEqual(f);
    expect(parseDeviceFaults('ack-delay=1%')[0].maxMs).toBe(20);
  });

  it.each([
    ['nonsense', /--device-faults: 'nonsense' is not KIND=RATE; accepted: KIND=RATE/],
    ['drop-kick=5%', /--device-faults: unknown kind 'drop-kick'; accepted: report-error, ack-delay, irq-lost, irq-spurious, reset/],
    ['reset=60%', /--device-faults: reset: rate '60%' is out of range; accepted: above 0 and at most 0.5/],
    ['reset=0', /rate '0' is out of range/],
    ['reset=5%:10ms', /--device-faults: reset: only ack-delay takes a :MAXms bound/],
    ['ack-delay=5%:0ms', /ack-delay: bound 0ms is out of range; accepted: 1ms to 1000ms/],
    ['reset=1%,reset=2%', /'reset' is given twice/],
  ])('refuses %s with one line naming the flag', (spec, msg) => {
    expect(() => configFromArgs(['--device-faults', spec])).toThrow(msg);
  });

  it('refuses a kind in a mode it cannot act in', () => {
    expect(() => configFromArgs(['--hinting', 'naive', '--device-faults', 'reset=5%'])).toThrow(/^--device-faults: reset acts in --hinting reporting, aeration; not naive$/);
    expect(() => configFromArgs(['--hinting', 'hint', '--device-faults', 'ack-delay=5%'])).toThrow(UsageError);
    expect(() => configFromArgs(['--hinting', 'off', '--device-faults', 'report-error=5%'])).toThrow(/not off/);
  });

  it('each side rolls only its own kinds, from a stream fixed by the seed, and counts what acted', () => {
    const faults = parseDeviceFaults('report-error=50%,irq-spurious=50%,reset=10%');
    const counts = new Float64Array(DEVICE_FAULT_KINDS.length);
    const a = new FaultDice(faults, 7, 'driver', counts, 0);
    const b = new FaultDice(faults, 7, 'driver');
    const seqA = Array.from({ length: 200 }, () => a.roll(0));
    const seqB = Array.from({ length: 200 }, () => b.roll(0));
    expect(seqA).toEqual(seqB);
    expect(counts[0]).toBe(seqA.filter(Boolean).length);
    expect(counts[0]).toBeGreaterThan(60);
    expect(counts[0]).toBeLessThan(140);
    expect(a.roll(DEVICE_FAULT_KINDS.indexOf('irq-spurious'))).toBe(false); // the device's kind
    expect(new FaultDice(faults, 8, 'driver').any).toBe(true);
    expect(new FaultDice(parseDeviceFaults('reset=10%'), 8, 'device').any).toBe(false);
  });

  it('a bad spec on the command line is one line and exit 2', () => {
    const r = spawnSync(process.execPath, [CLI, '--device-faults', 'reset=90%'], { encoding: 'utf8', timeout: 30_000 });
    expect(r.status).toBe(2);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(/^sim: --device-faults: reset: rate '90%' is out of range/);
  });
});

describe('--device-faults: runs', () => {
  it('reporting survives report-error, ack-delay, irq-spurious and reset with every oracle passing, and their error paths ran', () => {
    const r = sim(['--cpus', '4', '--workload', 'churn', '--duration', '1s', '--hinting', 'reporting', '--device-faults', 'report-error=25%,ack-delay=25%:10ms,irq-spurious=25%,reset=25%', '--seed', '5']);
    expect(r.status, r.stderr).toBe(0);
    for (const k of ['report-error', 'ack-delay', 'irq-spurious', 'reset']) expect(acted(r.json, k), k).toBeGreaterThan(0);
    expect(r.json.faults.resets).toBe(acted(r.json, 'reset'));
    expect(r.json.hinting.failedReports).toBeGreaterThanOrEqual(acted(r.json, 'report-error'));
    expect(r.json.config.deviceFaults).toHaveLength(4);
    expect(r.json.rerun).toMatch(/--device-faults report-error=25%,ack-delay=25%:10ms,irq-spurious=25%,reset=25%$/);
  });

  it('aeration survives them too, under --sched', () => {
    const r = sim(['--cpus', '2', '--workload', 'churn', '--duration', '200ms', '--hinting', 'aeration', '--sched', 'pct', '--device-faults', 'report-error=30%,ack-delay=30%,irq-spurious=30%,reset=30%', '--seed', '2']);
    expect(r.status, r.stderr).toBe(0);
    expect(r.json.faults.kinds.reduce((s: number, k: { acted: number }) => s + k.acted, 0)).toBeGreaterThan(0);
  });

  // Running free, whether a slip is reached is timing (a CPU taking a
  // block the driver let go too early, a failed batch surviving unmerged
  // to the end): the first seed of 1..4 that finds it. Measured, most seeds
  // do; bench/faults.ts has the detection times.
  const firstFound = (args: (seed: number) => string[], selftest = '', seeds = 4) => {
    for (let seed = 1; seed <= seeds; seed++) {
      const r = sim(args(seed), selftest);
      if (r.status !== 0) return r;
    }
    return null;
  };

  // The oracles stay exact under faults: a slip in the error path a fault
  // opens is found, and without the fault the same slip is invisible.
  it('report-error: a drain that flags a failed batch Reported is found (reported-accounting); without the fault it never acts', () => {
    const args = (seed: number) => ['--cpus', '4', '--workload', 'memhog', '--duration', '1s', '--hinting', 'reporting', '--seed', String(seed)];
    const bad = firstFound((seed) => [...args(seed), '--device-faults', 'report-error=50%'], 'fault-flag-failed');
    expect(bad, 'not found in seeds 1..4').not.toBeNull();
    expect(bad!.json.violations[0].oracle).toBe('reported-accounting');
    expect(bad!.json.violations[0].message).toMatch(/is Reported but \d+ of its pages are host-resident/);
    const without = sim(args(1), 'fault-flag-failed');
    expect(without.status, without.stderr).toBe(0);
    expect(without.json.hinting.failedReports).toBe(0);
  });

  it('irq-spurious: a driver that takes any interrupt for the ack is found (device-allocated-range, stamp or reported-accounting)', () => {
    const bad = firstFound((seed) => ['--memory', '32M', '--report-order', '5', '--cpus', '8', '--workload', 'churn', '--duration', '1s', '--report-delay', '0ms', '--hinting', 'reporting', '--device-faults', 'irq-spurious=30%,ack-delay=50%:50ms', '--seed', String(seed)], 'fault-trust-irq');
    expect(bad, 'not found in seeds 1..4').not.toBeNull();
    expect(bad!.status, bad!.stderr).toBe(1);
    // The slip puts a batch back, flagged Reported, before the device has
    // discarded it. What shows first depends on when the (delayed) device
    // gets to that chain: a CPU reallocated the memory (the device's range
    // check, or a stamp the discard wiped), or the run settled first with
    // Reported memory still host-resident (reported-accounting; seen once
    // in CI on a loaded machine, never on a quiet one).
    expect(['device-allocated-range', 'stamp', 'reported-accounting']).toContain(bad!.json.violations[0].oracle);
  });

  it('reset: a device that acknowledges a reset but keeps its queue indices is found (liveness: the driver is never answered)', () => {
    const bad = sim(['--cpus', '4', '--workload', 'churn', '--duration', '1s', '--wait-timeout', '1s', '--hinting', 'reporting', '--device-faults', 'reset=30%', '--seed', '2'], 'fault-reset-keep-queue');
    expect(bad.status, bad.stderr).toBe(1);
    expect(bad.json.violations[0].oracle).toMatch(/^(liveness|lost-wakeup)$/);
    expect(bad.json.device.bad['avail-ahead']).toBeGreaterThan(0);
  });

  it('irq-lost, which Linux does not survive (wait_event() has no timeout): lost-wakeup running free, a deadlock under --sched', () => {
    // Running free, a lost interrupt only hangs the driver if it was asleep by then (as in Linux: wait_event() checks first).
    const free = firstFound((seed) => ['--cpus', '2', '--workload', 'churn', '--duration', '1s', '--hinting', 'reporting', '--device-faults', 'irq-lost=50%', '--seed', String(seed)], '', 3);
    expect(free, 'no seed of 1..3 lost an interrupt the driver slept on').not.toBeNull();
    expect(free!.json.violations[0].oracle).toBe('lost-wakeup');
    expect(free!.json.violations[0].message).toMatch(/^device interrupt \(DEV_INTERRUPT\): a used element is in the ring, but the word stayed at \d+/);
    const sched = sim(['--cpus', '2', '--workload', 'memfill', '--duration', '200ms', '--sched', 'pct', '--hinting', 'reporting', '--device-faults', 'irq-lost=50%', '--seed', '2']);
    expect(sched.status, sched.stderr).toBe(1);
    expect(sched.json.violations[0].oracle).toBe('liveness');
    expect(sched.json.violations[0].message).toMatch(/reporter waits on device interrupt \(DEV_INTERRUPT\), with no wake-up.*schedule bsched1\./);
  });
});

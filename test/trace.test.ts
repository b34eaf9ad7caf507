// --trace: the per-thread event rings (bounded, oldest overwritten first, no
// region when off), the Chrome trace-event file they become (the format's
// rules, one track per role), and what a trace is for: a failing injection's
// trace holds the two conflicting accesses the oracle names, a --replay of
// its schedule writes the same interleaving, and tracing changes no
// scheduling decision.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { INJECTIONS, RACE_BASE_ARGS } from '../src/check/inject.js';
import { TK_ALLOC, TK_FREE, TraceWriter, initTraceOrigin, readTrace } from '../src/locking/trace.js';
import { computeLayout, createShared } from '../src/shm/layout.js';
import { traceFormatErrors } from '../src/testing/trace-check.js';

const CLI = path.resolve(__dirname, '../dist/src/cli/main.js');
const tmp = mkdtempSync(path.join(tmpdir(), 'trace-test-'));
const sim = (...args: string[]) => spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', timeout: 120_000, cwd: tmp });

interface Ev {
  name: string;
  ph: string;
  ts: number;
  dur?: number;
  tid: number;
  s?: string;
  args?: Record<string, number | string | boolean>;
}
const load = (f: string) => JSON.parse(readFileSync(f, 'utf8')) as { traceEvents: Ev[]; otherData: Record<string, unknown> };
/** Track name of each tid, from the thread_name metadata. */
const tracks = (t: { traceEvents: Ev[] }) => new Map(t.traceEvents.filter((e) => e.ph === 'M' && e.name === 'thread_name').map((e) => [e.tid, String(e.args!.name)]));

describe('trace rings in the shared buffer', () => {
  it('no region with --trace off; a fixed-size ring per thread that keeps the last events in order', () => {
    const p = { cpus: 2, memoryBytes: 8 * 2 ** 20, queueSize: 8, ringAlign: 4 };
    expect(computeLayout(p).trace.bytes).toBe(0);
    expect(computeLayout({ ...p, traceEvents: 0 }).totalBytes).toBe(computeLayout(p).totalBytes);
    const views = createShared({ ...p, traceEvents: 1024 });
    expect(views.layout.trace.bytes).toBe(64 + views.layout.threads * (8 + 1024 * 6) * 8);
    initTraceOrigin(views);
    const w = new TraceWriter(views, 1);
    for (let i = 0; i < 3000; i++) w.instant(i % 2 ? TK_FREE : TK_ALLOC, i, 0);
    w.publish();
    const raw = readTrace(views);
    const t1 = raw.threads[1];
    expect(t1.written).toBe(3000);
    expect(t1.overwritten).toBe(3000 - 1024);
    expect(t1.records.map((r) => r.a)).toEqual(Array.from({ length: 1024 }, (_, k) => 3000 - 1024 + k));
    expect(raw.threads[0].records).toEqual([]); // other rings untouched
    // Timestamps: microseconds since the origin, non-decreasing.
    for (let k = 1; k < t1.records.length; k++) expect(t1.records[k].tsUs).toBeGreaterThanOrEqual(t1.records[k - 1].tsUs);
    expect(t1.records[0].tsUs).toBeGreaterThanOrEqual(0);
  });

  it('the format checker finds what breaks the rules (it can fail)', () => {
    const named = (tid: number) => ({ name: 'thread_name', ph: 'M', ts: 0, pid: 1, tid, args: { name: 't' } });
    expect(traceFormatErrors({ traceEvents: [named(1), { name: 'a', ph: 'X', ts: 5, dur: 10, pid: 1, tid: 1 }, { name: 'b', ph: 'X', ts: 6, dur: 2, pid: 1, tid: 1 }] })).toEqual([]);
    expect(traceFormatErrors({ traceEvents: [named(1), { name: 'a', ph: 'X', ts: 5, dur: 10, pid: 1, tid: 1 }, { name: 'b', ph: 'X', ts: 6, dur: 20, pid: 1, tid: 1 }] })[0]).toMatch(/overlaps the end/);
    expect(traceFormatErrors({ traceEvents: [named(1), { name: 'a', ph: 'i', ts: 5, pid: 1, tid: 1 }, { name: 'b', ph: 'i', ts: 4, pid: 1, tid: 1 }] })[0]).toMatch(/goes back/);
    expect(traceFormatErrors({ traceEvents: [named(1), { name: 'a', ph: 'B', ts: 5, pid: 1, tid: 1 }] })[0]).toMatch(/never ended/);
    expect(traceFormatErrors({ traceEvents: [named(1), { name: 'a', ph: 'Q', ts: 5, pid: 1, tid: 1 }] })[0]).toMatch(/unknown phase/);
    expect(traceFormatErrors({ traceEvents: [{ name: 'a', ph: 'i', ts: 5, pid: 1, tid: 2 }] })[0]).toMatch(/no thread_name/);
  });
});

describe('sim --trace FILE', () => {
  it('a reporting run with lockstat: valid trace-event JSON, one named track per role, lock holds and waits, reports, device chains, counters', () => {
    const f = path.join(tmp, 'reporting.json');
    const r = sim('--cpus', '2', '--workload', 'churn', '--memory', '64M', '--duration', '300ms', '--seed', '4', '--capacity', '4', '--report-order', '5', '--report-delay', '10ms', '--lockstat', '--trace', f);
    expect(r.status, r.stderr.slice(-500)).toBe(0);
    expect(r.stderr).toMatch(/^trace written to .*reporting\.json \(\d+ events; open it in https:\/\/ui\.perfetto\.dev/m);
    const t = load(f);
    expect(traceFormatErrors(t)).toEqual([]);
    expect([...tracks(t).values()].sort()).toEqual(['cpu0', 'cpu1', 'device', 'main', 'reporter']);
    const names = new Set(t.traceEvents.map((e) => `${tracks(t).get(e.tid)}:${e.name}`));
    for (const n of ['cpu0:zone.lock', 'cpu0:alloc', 'cpu1:free', 'reporter:reporting pass', 'reporter:isolate', 'reporter:report', 'reporter:putback', 'device:chain', 'device:range', 'device:discard', 'device:push used', 'main:RUNNING', 'main:SETTLING', 'main:STOPPING', 'main:host RSS (MiB)', 'main:nr_free', 'main:structural check']) expect(names, n).toContain(n);
    // Lock holds carry their call site; the clock is stated in the file.
    expect(t.traceEvents.find((e) => e.name === 'zone.lock')!.args!.site).toMatch(/^(alloc|free|pcp_refill|pcp_drain|report_isolate|report_drain|oracle_check)$/);
    expect(String(t.otherData.clock)).toMatch(/performance\.timeOrigin \+ performance\.now\(\)/);
    expect(t.otherData.seed).toBe(4);
  });

  it('--cpu-threads: CPUs sharing a thread keep a track each, with their own allocations and lock holds', () => {
    const f = path.join(tmp, 'cpu-threads.json');
    const r = sim('--cpus', '4', '--cpu-threads', '2', '--workload', 'churn', '--memory', '64M', '--duration', '300ms', '--seed', '4', '--report-delay', '10ms', '--cost-profile', 'none', '--trace', f);
    expect(r.status, r.stderr.slice(-500)).toBe(0);
    const t = load(f);
    expect(traceFormatErrors(t)).toEqual([]);
    expect([...tracks(t).values()].sort()).toEqual(['cpu0', 'cpu1', 'cpu2', 'cpu3', 'device', 'main', 'reporter']);
    const names = new Set(t.traceEvents.map((e) => `${tracks(t).get(e.tid)}:${e.name}`));
    // cpu2 and cpu3 run on cpu0's and cpu1's threads: their events land on their own tracks.
    for (const c of [0, 1, 2, 3]) for (const n of ['alloc', 'free']) expect(names, `cpu${c}:${n}`).toContain(`cpu${c}:${n}`);
  });

  it('--hinting hint: hint runs on the driver, the device commands; --trace-when failure writes nothing for a passing run', () => {
    const f = path.join(tmp, 'hint.json');
    const r = sim('--cpus', '1', '--workload', 'memhog', '--memory', '64M', '--duration', '300ms', '--hold', '50ms', '--seed', '2', '--hinting', 'hint', '--hint-interval', '50ms', '--trace', f);
    expect(r.status, r.stderr.slice(-500)).toBe(0);
    const t = load(f);
    expect(traceFormatErrors(t)).toEqual([]);
    const names = new Set(t.traceEvents.map((e) => `${tracks(t).get(e.tid)}:${e.name}`));
    for (const n of ['reporter:hint run', 'reporter:hint block', 'device:start hint run', 'device:STOP received', 'device:range']) expect(names, n).toContain(n);
    const g = path.join(tmp, 'not-written.json');
    const q = sim('--cpus', '1', '--workload', 'churn', '--memory', '32M', '--duration', '50ms', '--hinting', 'off', '--trace', g, '--trace-when', 'failure');
    expect(q.status).toBe(0);
    expect(existsSync(g)).toBe(false);
  });

  it('bad trace and html flags: one line naming the flag, exit 2; compare does not take --trace', () => {
    for (const [args, re] of [
      [['--trace-events', '4096'], /^sim: --trace-events: needs --trace FILE$/],
      [['--trace', path.join(tmp, 'no/such/dir/t.json')], /^sim: --trace: directory '.*no\/such\/dir' does not exist$/],
      [['--trace', path.join(tmp, 'x.json'), '--trace-events', '10'], /^sim: --trace-events: 10 is out of range; accepted: 1024 to 1048576$/],
      [['--trace', path.join(tmp, 'x.json'), '--trace-when', 'sometimes'], /^sim: --trace-when: 'sometimes' is not accepted; accepted: always, failure$/],
      [['compare', '--trace', path.join(tmp, 'x.json')], /^sim: Unknown argument: trace/],
      [['--html', path.join(tmp, 'no/such/dir/r.html')], /^sim: --html: directory '.*no\/such\/dir' does not exist$/],
    ] as [string[], RegExp][]) {
      const r = sim(...args, '--duration', '20ms');
      expect(r.status, args.join(' ')).toBe(2);
      expect(r.stderr.trim()).toMatch(re);
    }
  });
});

describe('the trace of a failing interleaving', () => {
  // early-putback under the seeded scheduler (seed 1 fails, see src/check/inject.ts):
  // the reporter puts blocks back before the device's ack, a CPU allocates one,
  // the device then acts on a range that is allocated.
  const inj = INJECTIONS['early-putback'];
  const args = [...RACE_BASE_ARGS, ...inj.args, ...inj.schedArgs, '--sched', 'pct', '--inject', 'early-putback', '--seed', '1'];

  it('holds the two accesses the oracle names, in order: a CPU allocating the block, then the device acting on the range; --replay writes the same interleaving; tracing changes no decision', () => {
    const f = path.join(tmp, 'fail.json');
    const sched = path.join(tmp, 'fail-schedule.json');
    const r = sim(...args, '--json', '--trace', f, '--schedule-out', sched);
    expect(r.status, r.stderr.slice(-500)).toBe(1);
    const j = JSON.parse(r.stdout);
    const v = j.violations[0];
    expect(v.oracle).toBe('device-allocated-range');
    const m = /discard pfn (\d+)\.\.(\d+), but the allocated order-(\d+) block at pfn (\d+)/.exec(v.message)!;
    const [first, last, order, head] = m.slice(1).map(Number);
    const t = load(f);
    expect(traceFormatErrors(t)).toEqual([]);
    const tr = tracks(t);
    const device = t.traceEvents.filter((e) => tr.get(e.tid) === 'device');
    const range = device.filter((e) => e.name === 'range' && e.args!.pfn === first && e.args!.lastPfn === last).at(-1);
    expect(range, 'the device acting on the range the oracle names').toBeDefined();
    const alloc = t.traceEvents.filter((e) => /^cpu\d+$/.test(tr.get(e.tid)!) && e.name === 'alloc' && e.args!.pfn === head && e.args!.order === order && e.ts < range!.ts).at(-1);
    expect(alloc, 'a CPU allocating the block the oracle names, before the device acted on its range').toBeDefined();
    // Nobody freed it in between: the CPU still held it when the device acted.
    expect(t.traceEvents.some((e) => e.tid === alloc!.tid && e.name === 'free' && e.args!.pfn === head && e.ts > alloc!.ts && e.ts < range!.ts)).toBe(false);
    // Why it was allocatable: the reporter put the block back before the report's acknowledgement.
    const putback = t.traceEvents.filter((e) => tr.get(e.tid) === 'reporter' && e.name === 'putback' && (e.args!.pfn as number) <= head && head <= first + (last - first) && e.ts < alloc!.ts).at(-1);
    expect(putback).toBeDefined();
    const violation = device.find((e) => e.name === 'VIOLATION device-allocated-range')!;
    expect(violation.s).toBe('g');
    expect(violation.args!.message).toBe(v.message);
    expect(violation.ts).toBeGreaterThanOrEqual(range!.ts);
    expect(t.traceEvents.some((e) => e.name.startsWith('switch to '))).toBe(true);

    // --replay of the schedule file: the same events in the same order on the same tracks.
    const g = path.join(tmp, 'replay.json');
    const p = sim(...args, '--json', '--trace', g, '--replay', sched);
    expect(p.status, p.stderr.slice(-500)).toBe(1);
    const mainTid = [...tr].find(([, n]) => n === 'main')![0];
    const shape = (x: { traceEvents: Ev[] }) => x.traceEvents.filter((e) => e.ph !== 'C' && e.tid !== mainTid).map((e) => `${e.tid} ${e.name} ${e.ph === 'i' && e.args && 'pfn' in e.args ? e.args.pfn : ''}`);
    // main's own track samples the wall clock (counters, checks): compare the roles' tracks.
    expect(shape(load(g))).toEqual(shape(t));

    // Tracing changes no scheduling decision: the same trace hash without --trace.
    const q = sim(...args, '--json', '--schedule-out', path.join(tmp, 'untraced-schedule.json'));
    expect(JSON.parse(q.stdout).sched.traceHash).toBe(j.sched.traceHash);
  });

  it('sim stress --trace-dir keeps the trace of the failing run only', () => {
    const dir = path.join(tmp, 'stress-traces');
    const r = sim('stress', '--runs', '4', '--jobs', '1', '--seed', '1', ...RACE_BASE_ARGS.filter((_, i, a) => a[i] !== '--duration' && a[i - 1] !== '--duration'), ...inj.args, ...inj.schedArgs.filter((_, i, a) => a[i] !== '--duration' && a[i - 1] !== '--duration'), '--run-duration', '200ms', '--sched', 'pct', '--inject', 'early-putback', '--trace-dir', dir);
    expect(r.status, r.stdout.slice(-800) + r.stderr.slice(-400)).toBe(1);
    const file = /^trace: (.+) \(open it in/m.exec(r.stdout)![1];
    const failed = /^FAILED: run (\d+), seed (\d+)/m.exec(r.stdout)!;
    expect(path.basename(file)).toBe(`run-${failed[1]}-seed-${failed[2]}.trace.json`);
    expect(readdirSync(dir)).toEqual([path.basename(file)]); // passing runs left nothing
    const t = load(file);
    expect(traceFormatErrors(t)).toEqual([]);
    expect(t.traceEvents.some((e) => e.name.startsWith('VIOLATION '))).toBe(true);
  });
});

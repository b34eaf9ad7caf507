import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { describe, expect, it } from 'vitest';
import { HIST_BUCKETS, bucketHigh, bucketLow, bucketOf, percentile } from '../src/base/hist.js';
import {
  LOCK_CLASSES,
  LOCK_LINE_WORDS,
  LOCK_SITE,
  LOCK_ZONE,
  LOCKCLASS_BALLOON,
  LOCKCLASS_ZONE,
  LS_ACQUISITIONS,
  LS_CONTENDING_POINT,
  LS_CONTENTIONS,
  LS_CONTENTION_POINT,
  LS_CON_BOUNCES,
  LS_HOLDS,
  LS_HOLD_HIST,
  LS_HOLD_NS_MAX,
  LS_HOLD_NS_MIN,
  LS_HOLD_NS_TOTAL,
  LS_WAIT_HIST,
  LS_WAIT_NS_MAX,
  LS_WAIT_NS_MIN,
  LS_WAIT_NS_TOTAL,
  createShared,
  lockstatBase,
} from '../src/shm/layout.js';
import { type LockClassStats, collectLockStats, fastBucketOf } from '../src/locking/lockstat.js';
import fc from 'fast-check';
import { PROC_COLUMNS, PROC_RULE_WIDTH, lockstatTable, parseLockstatFlags, procLockStat, procTime, sortLockStats } from '../src/cli/lockstat-report.js';
import { Sync } from '../src/locking/sync.js';
import { UsageError } from '../src/base/errors.js';
import { SITE_ALLOC, SITE_FREE, SITE_PCP_DRAIN, SITE_PCP_REFILL } from '../src/locking/sites.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const probe = path.join(root, 'dist/workers/testing/lockstat-probe.js');
const params = { cpus: 2, memoryBytes: 8 * 2 ** 20, queueSize: 8, ringAlign: 4 };

function runProbe(data: Record<string, unknown>): Promise<void> {
  return new Promise((resolve, reject) => {
    const w = new Worker(probe, { workerData: data });
    const timer = setTimeout(() => {
      void w.terminate();
      reject(new Error('probe worker did not finish within 20 s'));
    }, 20_000);
    w.once('message', (m: { ok: boolean; error?: string }) => {
      clearTimeout(timer);
      void w.terminate();
      if (m.ok) resolve();
      else reject(new Error(m.error));
    });
    w.once('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
  });
}

describe('lockstat: deterministic contention between two threads', () => {
  // Threads or a child process running dist/: out of `npm run mutation`'s reach (vitest.mutation.config.ts).
  it.skipIf(process.env.BALLOON_SIM_MUTATION)('counts acquisitions, contentions, bounces, call sites, and wait >= forced hold', async () => {
    expect(existsSync(probe), `${probe} missing: run 'npx tsc -p .' first`).toBe(true);
    const views = createShared(params);
    const ctrl = new SharedArrayBuffer(16);
    const holdMs = 40;
    const rounds = 2;
    // Thread 0 holds in pcp_drain and waits in alloc; thread 1 holds in pcp_refill and waits in free.
    const common = { sab: views.sab, params, ctrl, rounds, holdMs };
    await Promise.all([
      runProbe({ ...common, thread: 0, holdSite: SITE_PCP_DRAIN, waitSite: SITE_ALLOC }),
      runProbe({ ...common, thread: 1, holdSite: SITE_PCP_REFILL, waitSite: SITE_FREE }),
    ]);
    const zone = collectLockStats(views).find((s) => s.class === 'zone.lock')!;
    // Round 0: T0 takes the never-held lock (no bounce), T1 waits for it (con-bounce) and
    // takes it from T0 (acq-bounce). Round 1: T1 retakes its own lock (no bounce), T0 waits
    // and takes it from T1 (con- and acq-bounce).
    expect(zone.acquisitions).toBe(2 * rounds);
    expect(zone.contentions).toBe(rounds);
    expect(zone.conBounces).toBe(rounds);
    expect(zone.acqBounces).toBe(rounds);
    expect(zone.waitNs.min).toBeGreaterThanOrEqual(holdMs * 1e6);
    // Units: a wait recorded in ms or us instead of ns would fail one side of this.
    expect(zone.waitNs.max).toBeLessThan((holdMs + 5000) * 1e6);
    expect(zone.waitNs.total).toBeGreaterThanOrEqual(rounds * holdMs * 1e6);
    expect(zone.holdNs.max).toBeGreaterThanOrEqual(holdMs * 1e6);
    expect(zone.holdNs.total).toBeGreaterThanOrEqual(rounds * holdMs * 1e6);
    expect(zone.waitNs.p50).toBeGreaterThanOrEqual(holdMs * 1e6);
    expect(zone.waitNs.p999).toBeLessThanOrEqual(zone.waitNs.max);
    expect(zone.waitHistNs.reduce((a, b) => a + b.count, 0)).toBe(rounds);
    expect(zone.holdHistNs.reduce((a, b) => a + b.count, 0)).toBe(2 * rounds);
    // Who waited, and who held the lock meanwhile (the holder's LOCK_SITE store).
    expect(zone.contentionPoints).toEqual([
      { site: 'alloc', count: 1 },
      { site: 'free', count: 1 },
    ]);
    expect(zone.contendingPoints).toEqual([
      { site: 'pcp_refill', count: 1 },
      { site: 'pcp_drain', count: 1 },
    ]);
    for (const other of collectLockStats(views).filter((s) => s.class !== 'zone.lock')) expect(other.acquisitions).toBe(0);
  });

  it('records nothing with lockstat off (no observer)', () => {
    const views = createShared(params);
    const sync = new Sync(views, 0, { spin: 0, waitTimeoutMs: 1000 });
    for (let i = 0; i < 100; i++) {
      sync.lock(LOCK_ZONE, SITE_ALLOC);
      sync.unlock(LOCK_ZONE);
      if (sync.tryLock(LOCK_ZONE, SITE_FREE)) sync.unlock(LOCK_ZONE);
    }
    expect(views.lockstat.every((x) => x === 0)).toBe(true);
    expect(views.locks[LOCK_ZONE * LOCK_LINE_WORDS + LOCK_SITE]).toBe(0);
  });
});

describe('lockstat: histograms and aggregation', () => {
  it('bucket arithmetic: every value lands in a bucket whose bounds hold it', () => {
    for (const v of [0, 1, 3, 4, 5, 7, 8, 9.5, 100, 1023, 1024, 1025, 1e6, 12_345_678, 2 ** 39]) {
      const b = bucketOf(v);
      expect(b).toBeGreaterThanOrEqual(0);
      expect(b).toBeLessThan(HIST_BUCKETS);
      expect(bucketLow(b)).toBeLessThanOrEqual(v);
      expect(bucketHigh(b)).toBeGreaterThan(v);
    }
    // Log2 octaves of 4 linear sub-buckets: 1024..1280 is one bucket, 1280 starts the next.
    expect(bucketOf(1024)).toBe(bucketOf(1279));
    expect(bucketOf(1280)).toBe(bucketOf(1024) + 1);
    expect(bucketOf(2048)).toBe(bucketOf(1024) + 4);
    expect(bucketLow(bucketOf(3000))).toBe(2560);
    expect(bucketHigh(bucketOf(3000))).toBe(3072);
  });

  it('the hot-path bucket function agrees with hist.ts bucketOf', () => {
    for (let e = 0; e < 42; e++) for (const d of [-1, -0.5, 0, 0.5, 1]) expect(fastBucketOf(2 ** e + d)).toBe(bucketOf(2 ** e + d));
    fc.assert(fc.property(fc.double({ min: 0, max: 2 ** 41, noNaN: true }), (v) => fastBucketOf(v) === bucketOf(v)), { numRuns: 20_000 });
    fc.assert(fc.property(fc.integer({ min: 0, max: 2 ** 31 + 10 }), (v) => fastBucketOf(v) === bucketOf(v)), { numRuns: 20_000 });
  });

  it('percentiles are the upper bound of the bucket holding the rank, clamped to max', () => {
    const h = new Float64Array(HIST_BUCKETS);
    // 990 samples of 1000 ns, 9 of 100 us, 1 of 5 ms.
    h[bucketOf(1000)] += 990;
    h[bucketOf(100_000)] += 9;
    h[bucketOf(5_000_000)] += 1;
    expect(percentile(h, 0.5)).toBe(bucketHigh(bucketOf(1000)));
    expect(percentile(h, 0.99)).toBe(bucketHigh(bucketOf(1000)));
    expect(percentile(h, 0.995)).toBe(bucketHigh(bucketOf(100_000)));
    expect(percentile(h, 0.999)).toBe(bucketHigh(bucketOf(100_000)));
    expect(percentile(h, 1)).toBe(bucketHigh(bucketOf(5_000_000)));
    expect(percentile(h, 1, 5_000_000)).toBe(5_000_000);
    expect(percentile(new Float64Array(HIST_BUCKETS), 0.5)).toBe(0);
  });

  it('sums every thread slot of a class: counts, min/max/total, histograms, top 4 call sites', () => {
    const views = createShared({ ...params, cpus: 3 });
    const ls = views.lockstat;
    const threads = views.layout.threads;
    const put = (thread: number, waits: number[], holds: number[], waitSite: number, holderSite: number) => {
      const b = lockstatBase(LOCKCLASS_ZONE, thread, threads);
      ls[b + LS_ACQUISITIONS] = holds.length;
      ls[b + LS_HOLDS] = holds.length;
      ls[b + LS_CONTENTIONS] = waits.length;
      ls[b + LS_CON_BOUNCES] = waits.length;
      ls[b + LS_WAIT_NS_MIN] = Math.min(...waits);
      ls[b + LS_WAIT_NS_MAX] = Math.max(...waits);
      ls[b + LS_WAIT_NS_TOTAL] = waits.reduce((a, x) => a + x, 0);
      ls[b + LS_HOLD_NS_MIN] = Math.min(...holds);
      ls[b + LS_HOLD_NS_MAX] = Math.max(...holds);
      ls[b + LS_HOLD_NS_TOTAL] = holds.reduce((a, x) => a + x, 0);
      for (const w of waits) ls[b + LS_WAIT_HIST + bucketOf(w)]++;
      for (const h of holds) ls[b + LS_HOLD_HIST + bucketOf(h)]++;
      ls[b + LS_CONTENTION_POINT + waitSite] += waits.length;
      ls[b + LS_CONTENDING_POINT + holderSite] += waits.length;
    };
    put(0, [500, 1500], [100, 200, 300], 1, 2);
    put(1, [20_000], [50, 60], 2, 1);
    put(threads - 1, [700], [10_000], 5, 1); // main
    // Five distinct waiting sites on another thread: only the top 4 survive.
    const b2 = lockstatBase(LOCKCLASS_ZONE, 2, threads);
    for (const [site, n] of [[3, 9], [4, 8], [6, 1], [7, 2], [8, 3]] as const) ls[b2 + LS_CONTENTION_POINT + site] = n;
    const zone = collectLockStats(views).find((s) => s.class === 'zone.lock')!;
    expect(zone.acquisitions).toBe(6);
    expect(zone.contentions).toBe(4);
    expect(zone.conBounces).toBe(4);
    expect(zone.waitNs.min).toBe(500);
    expect(zone.waitNs.max).toBe(20_000);
    expect(zone.waitNs.total).toBe(22_700);
    expect(zone.waitNs.avg).toBe(22_700 / 4);
    expect(zone.holdNs.min).toBe(50);
    expect(zone.holdNs.max).toBe(10_000);
    expect(zone.holdNs.total).toBe(10_710);
    expect(zone.waitNs.p50).toBe(bucketHigh(bucketOf(700)));
    expect(zone.waitNs.p99).toBe(20_000); // top bucket, clamped to the observed max
    expect(zone.waitHistNs.map((x) => x.count)).toEqual([1, 1, 1, 1]);
    // Thread 2 has no contentions of its own, so its site counts are not summed (they are garbage by construction here).
    expect(zone.contentionPoints).toEqual([
      { site: 'alloc', count: 2 },
      { site: 'free', count: 1 },
      { site: 'oracle_check', count: 1 },
    ]);
    expect(zone.contendingPoints).toEqual([
      { site: 'alloc', count: 2 },
      { site: 'free', count: 2 },
    ]);
    const balloon = collectLockStats(views)[LOCKCLASS_BALLOON];
    expect(balloon.class).toBe(LOCK_CLASSES[LOCKCLASS_BALLOON]);
    expect(balloon.acquisitions).toBe(0);
    expect(balloon.waitNs).toEqual({ min: 0, max: 0, total: 0, avg: 0, p50: 0, p99: 0, p999: 0 });
  });

  it('keeps at most 4 contention points, most contended first', () => {
    const views = createShared(params);
    const b = lockstatBase(LOCKCLASS_ZONE, 0, views.layout.threads);
    views.lockstat[b + LS_CONTENTIONS] = 23;
    views.lockstat[b + LS_ACQUISITIONS] = 23;
    for (const [site, n] of [[3, 9], [4, 8], [6, 1], [7, 2], [8, 3]] as const) views.lockstat[b + LS_CONTENTION_POINT + site] = n;
    const zone = collectLockStats(views)[LOCKCLASS_ZONE];
    expect(zone.contentionPoints.map((p) => p.site)).toEqual(['pcp_refill', 'pcp_drain', 'hint_alloc', 'report_drain']);
  });
});

function fakeStats(name: string, over: Partial<LockClassStats>): LockClassStats {
  const t = { min: 0, max: 0, total: 0, avg: 0, p50: 0, p99: 0, p999: 0 };
  return { class: name, acquisitions: 0, contentions: 0, conBounces: 0, acqBounces: 0, waitNs: { ...t }, holdNs: { ...t }, waitHistNs: [], holdHistNs: [], contentionPoints: [], contendingPoints: [], ...over };
}

describe('lockstat: /proc/lock_stat format', () => {
  const zone = fakeStats('zone.lock', {
    acquisitions: 209_834,
    contentions: 3,
    conBounces: 2,
    acqBounces: 2961,
    waitNs: { min: 234.4, max: 187_885_904, total: 188_001_000.4, avg: 0, p50: 0, p99: 0, p999: 0 },
    holdNs: { min: 60, max: 22_632_415, total: 139_767_612, avg: 0, p50: 0, p99: 0, p999: 0 },
    contentionPoints: [
      { site: 'free', count: 2 },
      { site: 'alloc', count: 1 },
    ],
    contendingPoints: [{ site: 'pcp_drain', count: 3 }],
  });
  const balloon = fakeStats('balloon_lock', { acquisitions: 7, acqBounces: 1, holdNs: { min: 1000, max: 3000, total: 14_000, avg: 0, p50: 0, p99: 0, p999: 0 } });
  const unused = fakeStats('vq.lock', {});
  const text = procLockStat([zone, balloon, unused]);
  const lines = text.split('\n');

  it('formats times as the kernel does: microseconds, two decimals, rounded at 5 ns', () => {
    expect(procTime(0)).toBe('0.00');
    expect(procTime(4)).toBe('0.00');
    expect(procTime(5)).toBe('0.01');
    expect(procTime(1234)).toBe('1.23');
    expect(procTime(1235)).toBe('1.24');
    expect(procTime(999_995)).toBe('1000.00');
    expect(procTime(187_885_904)).toBe('187885.90');
  });

  it('prints the header, rules and column names at the kernel widths', () => {
    expect(lines[0]).toBe('lock_stat version 0.4');
    expect(lines[1]).toBe('-'.repeat(PROC_RULE_WIDTH));
    expect(PROC_RULE_WIDTH).toBe(221);
    expect(lines[2].length).toBe(40 + 12 * 15);
    expect(lines[2].slice(0, 40).trim()).toBe('class name');
    for (let i = 1; i < PROC_COLUMNS.length; i++) expect(lines[2].slice(40 + (i - 1) * 15, 40 + i * 15)).toBe(' ' + PROC_COLUMNS[i].padStart(14));
    expect(lines[3]).toBe('-'.repeat(PROC_RULE_WIDTH));
    expect(lines[4]).toBe('');
  });

  it('prints one row per acquired class with 12 numeric fields and the contention points', () => {
    const row = lines[5];
    expect(row.slice(0, 41)).toBe('zone.lock'.padStart(40) + ':');
    const fields = row.slice(41).trim().split(/\s+/);
    expect(fields).toHaveLength(12);
    expect(fields).toEqual(['2', '3', '0.23', '187885.90', '188001.00', '62667.00', '2961', '209834', '0.06', '22632.42', '139767.61', '0.67']);
    for (const f of [2, 3, 4, 5, 8, 9, 10, 11]) expect(fields[f]).toMatch(/^\d+\.\d\d$/);
    // Fixed columns: each number right-aligned in 14 characters.
    expect(row.length).toBe(41 + 14 + 5 * 15 + 1 + 14 + 5 * 15);
    // Contention points (waiters' sites), then contending points (holders' sites), each led by dashes under the name.
    expect(lines[6]).toBe(' '.repeat(31) + '-'.repeat(9));
    expect(lines[7]).toMatch(/^ {31}zone\.lock {14}2 +\[<0{15}2>\] free$/);
    expect(lines[7].length).toBe(40 + 1 + 14 + 1 + 29 + 1 + 'free'.length);
    expect(lines[8]).toMatch(/^ {31}zone\.lock {14}1 +\[<0{15}1>\] alloc$/);
    expect(lines[9]).toBe(' '.repeat(31) + '-'.repeat(9));
    expect(lines[10]).toMatch(/^ {31}zone\.lock {14}3 +\[<0{15}4>\] pcp_drain$/);
    expect(lines[11]).toBe('');
    expect(lines[12]).toBe('.'.repeat(PROC_RULE_WIDTH));
    expect(lines[13]).toBe('');
    // No contentions: the row alone, no points, no dotted trailer.
    expect(lines[14].slice(0, 41)).toBe('balloon_lock'.padStart(40) + ':');
    expect(lines[14].slice(41).trim().split(/\s+/)).toEqual(['0', '0', '0.00', '0.00', '0.00', '0.00', '1', '7', '1.00', '3.00', '14.00', '2.00']);
    // A class never acquired prints nothing, as in the kernel.
    expect(lines).toHaveLength(15);
    expect(text).not.toContain('vq.lock');
  });

  it('sorts by each key, descending', () => {
    const a = fakeStats('a', { contentions: 5, waitNs: { min: 0, max: 10, total: 100, avg: 0, p50: 0, p99: 0, p999: 0 }, holdNs: { min: 0, max: 0, total: 1, avg: 0, p50: 0, p99: 0, p999: 0 } });
    const b = fakeStats('b', { contentions: 1, waitNs: { min: 0, max: 90, total: 90, avg: 0, p50: 0, p99: 0, p999: 0 }, holdNs: { min: 0, max: 0, total: 50, avg: 0, p50: 0, p99: 0, p999: 0 } });
    expect(sortLockStats([b, a], 'contentions').map((s) => s.class)).toEqual(['a', 'b']);
    expect(sortLockStats([b, a], 'wait-total').map((s) => s.class)).toEqual(['a', 'b']);
    expect(sortLockStats([a, b], 'wait-max').map((s) => s.class)).toEqual(['b', 'a']);
    expect(sortLockStats([a, b], 'hold-total').map((s) => s.class)).toEqual(['b', 'a']);
    const t = lockstatTable(sortLockStats([a, b], 'wait-max'), 'wait-max').split('\n');
    expect(t[0]).toContain('sorted by wait-max');
    expect(t[2].startsWith('b ')).toBe(true);
  });

  it('parses the lockstat flags: either format or sort implies --lockstat; bad values are usage errors', () => {
    expect(parseLockstatFlags({}).enabled).toBe(false);
    expect(parseLockstatFlags({ lockstat: true })).toEqual({ enabled: true, output: { format: 'table' } });
    expect(parseLockstatFlags({ 'lockstat-format': 'proc' })).toEqual({ enabled: true, output: { format: 'proc' } });
    expect(parseLockstatFlags({ 'lockstat-sort': 'wait-max' })).toEqual({ enabled: true, output: { format: 'table', sort: 'wait-max' } });
    expect(() => parseLockstatFlags({ 'lockstat-sort': 'name' })).toThrow(UsageError);
    expect(() => parseLockstatFlags({ 'lockstat-format': 'csv' })).toThrow(/--lockstat-format: 'csv' is not accepted; accepted: table, proc/);
  });
});

// Aeration v1 as posted (src/mm/aeration.ts): the walk from the boundary,
// the aerated run at the end of each list, no watermark checks, and the
// hazard that follows from them. One thread: the device is a local sink.
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { checkConservation, checkFreeLists } from '../src/check/structure.js';
import { Aerator, aeratorStartup } from '../src/mm/aeration.js';
import { GuestMemory } from '../src/mm/memory.js';
import { PG_REPORTED } from '../src/mm/page.js';
import { CM_ALLOC_FAIL_ISOLATED, RM_ISOLATED_BELOW_MIN, type ReportSink, type ReportStatus } from '../src/mm/reporter-common.js';
import { PageReporting } from '../src/mm/page-reporting.js';
import { FA_BOUNDARY, FA_HEAD, FA_WORDS, LOCK_ZONE, MAX_ORDER, NIL, PAGE_WORDS, PG_FLAGS, PG_NEXT, REP_AER_REFCNT, ZONE_AERATION_ACTIVE, ZONE_AERATION_REQUESTED, ZONE_FREE_AREA, ZONE_FREE_PAGES, ZONE_WMARK_MIN, metricBase, threadIds } from '../src/shm/layout.js';
import { Cpu } from '../src/sim/workload.js';
import { makeWorld, zoneAs, type World } from './helpers.js';

const MiB = 2 ** 20;

/** The device in the same thread: records each batch and discards it. */
class LocalSink implements ReportSink {
  calls: { pfn: number; order: number }[][] = [];
  constructor(readonly mem: GuestMemory) {}
  report(pfns: Int32Array, orders: Uint8Array, start: number, count: number): ReportStatus {
    const batch = [];
    for (let i = start; i < start + count; i++) {
      batch.push({ pfn: pfns[i], order: orders[i] });
      this.mem.discard(pfns[i], 1 << orders[i]);
    }
    this.calls.push(batch);
    return 'ok';
  }
}

function aerator(w: World, capacity = 32) {
  const thread = threadIds(w.cfg.cpus).reporter;
  const zone = zoneAs(w, thread);
  zone.aerationMinOrder = 9;
  const sink = new LocalSink(new GuestMemory(w.views));
  return { a: new Aerator(w.views, zone, sink, { capacity, minOrder: 9, delayMs: 0 }, thread), zone, sink, thread };
}

/** free_area[order] from head to tail. */
function list(w: World, order: number): number[] {
  const out: number[] = [];
  for (let p = w.views.zone[ZONE_FREE_AREA + order * FA_WORDS + FA_HEAD]; p !== NIL && out.length < 100_000; p = w.views.pages[p * PAGE_WORDS + PG_NEXT]) out.push(p);
  return out;
}
const aerated = (w: World, pfn: number) => (w.views.pages[pfn * PAGE_WORDS + PG_FLAGS] & PG_REPORTED) !== 0;
const healthy = (w: World) => {
  expect(checkFreeLists(w.zone)).toEqual([]);
  expect(checkConservation(w.zone).violations).toEqual([]);
};

describe('aeration v1: fill', () => {
  it('takes the raw block just above the boundary (the list tail, the coldest), highest order first, without walking or rotating the list', () => {
    const w = makeWorld({ memoryBytes: 256 * MiB });
    const { a, zone } = aerator(w, 4);
    const before = list(w, MAX_ORDER - 1);
    zone.sync.lock(LOCK_ZONE);
    a.fill();
    zone.sync.unlock(LOCK_ZONE);
    // The four order-10 blocks at the tail, tail first; the rest of the list untouched, in order.
    expect([...a.sgPfn]).toEqual([63, 62, 61, 60].map((i) => i * 1024));
    expect(list(w, MAX_ORDER - 1)).toEqual(before.slice(0, 60));
  });

  it('keeps aerated blocks as one run at the end of each list; raw blocks freed meanwhile go in front of the boundary', () => {
    const w = makeWorld({ memoryBytes: 256 * MiB });
    const { a, zone, sink } = aerator(w, 8);
    aeratorStartup(w.views, zone);
    // One scrub round by hand: fill, react, then a CPU frees a block before the drain.
    zone.sync.lock(LOCK_ZONE);
    a.fill();
    zone.sync.unlock(LOCK_ZONE);
    a.reportBatch(0, 8);
    zone.sync.lock(LOCK_ZONE);
    w.views.zone[ZONE_AERATION_ACTIVE] = 1;
    a.putBack(true);
    zone.sync.unlock(LOCK_ZONE);
    const l10 = list(w, MAX_ORDER - 1);
    expect(l10.slice(-8).every((p) => aerated(w, p))).toBe(true); // the aerated run at the end
    expect(l10.slice(0, -8).some((p) => aerated(w, p))).toBe(false);
    const fa = ZONE_FREE_AREA + (MAX_ORDER - 1) * FA_WORDS;
    expect(w.views.zone[fa + FA_BOUNDARY]).toBe(l10[l10.length - 8]); // the boundary: the first aerated block
    // A raw order-10 block freed "to the tail" while active goes in front of the run.
    const cpu = zoneAs(w, 0);
    const x = cpu.alloc(MAX_ORDER - 1, 0);
    cpu.sync.lock(LOCK_ZONE);
    cpu.freeOneLocked(x, MAX_ORDER - 1, true, false); // FPI_TO_TAIL
    cpu.sync.unlock(LOCK_ZONE);
    const after = list(w, MAX_ORDER - 1);
    expect(after.slice(-8).every((p) => aerated(w, p))).toBe(true);
    expect(after[after.length - 9]).toBe(x);
    expect(sink.calls[0]).toHaveLength(8);
    healthy(w);
  });

  it('aerates every raw block of order >= 9 in batches of at most 32 and goes idle (refcnt 1 -> 0)', () => {
    const w = makeWorld({ memoryBytes: 512 * MiB });
    const { a, zone, sink } = aerator(w);
    aeratorStartup(w.views, zone);
    expect(w.views.reporting[REP_AER_REFCNT]).toBe(1);
    a.cycle();
    expect(sink.calls.flat()).toHaveLength(128);
    expect(sink.calls.every((b) => b.length <= 32)).toBe(true);
    expect(list(w, MAX_ORDER - 1).every((p) => aerated(w, p))).toBe(true);
    expect(w.views.reporting[REP_AER_REFCNT]).toBe(0);
    expect(w.views.zone[ZONE_AERATION_REQUESTED]).toBe(0);
    expect(w.views.zone[ZONE_AERATION_ACTIVE]).toBe(0);
    healthy(w);
  });

  it('a block that merges on its way back is raw again and may request aeration (put-back through __free_one_page)', () => {
    const w = makeWorld({ memoryBytes: 256 * MiB });
    const { a, zone } = aerator(w);
    const cpu = zoneAs(w, 0);
    const x = cpu.alloc(9, 0);
    const y = cpu.alloc(9, 0);
    expect(x ^ y).toBe(512);
    cpu.free(x, 9, 0);
    zone.sync.lock(LOCK_ZONE);
    // x is the only order-9 block: the fill of order 9 takes it.
    const got = a.getAerationPage(9, NIL);
    expect(got).toBe(x);
    a.sgPfn[0] = x;
    a.sgOrder[0] = 9;
    (a as unknown as { n: number }).n = 1;
    zone.sync.unlock(LOCK_ZONE);
    cpu.free(y, 9, 0); // cannot merge: x is isolated
    zone.sync.lock(LOCK_ZONE);
    a.putBack(true); // x merges with y into order 10: raw, and 64 raw order-10 blocks request aeration
    zone.sync.unlock(LOCK_ZONE);
    const head = Math.min(x, y);
    expect(w.zone.order(head)).toBe(10);
    expect(aerated(w, head)).toBe(false);
    expect(w.views.zone[ZONE_AERATION_REQUESTED]).toBe(1);
    healthy(w);
  });
});

describe('aeration v1: no watermark checks, and the hazard they carry', () => {
  it('isolates blocks with the zone below its min watermark, where upstream reporting refuses; a CPU allocation fails meanwhile and is counted', () => {
    const w = makeWorld({ memoryBytes: 128 * MiB });
    // Leave the zone three max-order blocks: 3072 free pages, min watermark 362.
    const hog = zoneAs(w, 1);
    const held: number[] = [];
    for (let p = hog.alloc(MAX_ORDER - 1, 1); p !== NIL; p = hog.alloc(MAX_ORDER - 1, 1)) held.push(p);
    for (const p of held.slice(0, 2)) hog.free(p, MAX_ORDER - 1, 1);
    expect(w.views.zone[ZONE_FREE_PAGES]).toBe(3 * 1024);
    const free0 = w.views.zone[ZONE_FREE_PAGES];
    // Upstream reporting: the pass is gated (not above low + capacity << order).
    const r = new PageReporting(w.views, zoneAs(w, threadIds(w.cfg.cpus).reporter), new LocalSink(new GuestMemory(w.views)), { capacity: 32, reportOrder: 9, delayMs: 0 }, threadIds(w.cfg.cpus).reporter);
    r.process();
    expect(w.views.zone[ZONE_FREE_PAGES]).toBe(free0);
    // Aeration v1: the fill takes every raw block of order >= 9, watermark or not.
    const { a, zone } = aerator(w);
    zone.sync.lock(LOCK_ZONE);
    a.fill();
    zone.sync.unlock(LOCK_ZONE);
    expect(w.views.zone[ZONE_FREE_PAGES]).toBeLessThan(w.views.zone[ZONE_WMARK_MIN]);
    expect(w.views.metrics[a.mb + RM_ISOLATED_BELOW_MIN]).toBeGreaterThan(0);
    // A CPU that needs a page while the batch is in flight does not get one.
    const cpu = new Cpu(w.views, zoneAs(w, 0), 0, w.cfg, 1);
    expect(cpu.allocBlock(0)).toBe(NIL);
    expect(w.views.metrics[metricBase(0) + CM_ALLOC_FAIL_ISOLATED]).toBe(1);
    zone.sync.lock(LOCK_ZONE);
    a.putBack(true);
    zone.sync.unlock(LOCK_ZONE);
    expect(cpu.allocBlock(0)).not.toBe(NIL);
  });

  // Threads or a child process running dist/: out of `npm run mutation`'s reach (vitest.mutation.config.ts).
  it.skipIf(process.env.BALLOON_SIM_MUTATION)('a run under --sched: aeration isolates below the min watermark and a CPU allocation fails meanwhile; upstream reporting in the same run isolates nothing below it', () => {
    const CLI = path.resolve(__dirname, '../dist/src/cli/main.js');
    const args = ['--cpus', '2', '--workload', 'page_fault1', '--thp', 'always', '--memory', '64M', '--report-order', '7', '--capacity', '16', '--duration', '500ms', '--report-delay', '0ms', '--sched', 'random', '--seed', '1', '--json'];
    const run = (mode: string) => {
      const r = spawnSync(process.execPath, [CLI, ...args, '--hinting', mode], { encoding: 'utf8', timeout: 60_000 });
      expect(r.status, r.stderr).toBe(0);
      return { j: JSON.parse(r.stdout), stderr: r.stderr };
    };
    const a = run('aeration');
    expect(a.j.hinting.isolatedBelowMinPages).toBeGreaterThan(0);
    expect(a.j.hinting.allocFailuresWhileIsolated).toBeGreaterThan(0);
    expect(a.stderr).toMatch(/isolated below the min watermark; [1-9]\d* CPU allocation failures while blocks were isolated/);
    const r = run('reporting');
    expect(r.j.hinting.isolatedBelowMinPages).toBe(0);
  });
});

import { describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { FA_HEAD, FA_NR_REPORTED, MAX_ORDER, NIL, PAGE_WORDS, PG_FLAGS, REP_REQUEST_GEN, REP_STATE, threadIds, REP_AER_REFCNT, ZONE_AERATION_REQUESTED } from '../src/shm/layout.js';
import { GuestMemory } from '../src/mm/memory.js';
import { checkConservation, checkFreeLists } from '../src/check/structure.js';
import { PAGE_REPORTING_ACTIVE, PAGE_REPORTING_IDLE, PAGE_REPORTING_REQUESTED, PageReporting, makeFreeNotifier, passesToReportGuest, passesToReportList, requestReporting } from '../src/mm/page-reporting.js';
import { Cpu } from '../src/sim/workload.js';
import { makeWorld, zoneAs, type World } from './helpers.js';
import { PG_ALLOCATED, PG_REPORTED } from '../src/mm/page.js';
import { RM_FAILS, RM_REREPORTED, type ReportSink, type ReportStatus } from '../src/mm/reporter-common.js';
import { makeAeratorNotifier } from '../src/mm/aeration.js';

const MiB = 2 ** 20;

/** The device in the same thread: discards every reported range, or fails on demand. */
class LocalSink implements ReportSink {
  calls: { pfn: number; order: number }[][] = [];
  fail = false;
  constructor(readonly mem: GuestMemory, readonly pages: Int32Array) {}
  report(pfns: Int32Array, orders: Uint8Array, start: number, count: number): ReportStatus {
    const batch = [];
    for (let i = start; i < start + count; i++) {
      batch.push({ pfn: pfns[i], order: orders[i] });
      expect(this.pages[pfns[i] * PAGE_WORDS + PG_FLAGS] & PG_ALLOCATED).toBe(0);
      if (!this.fail) this.mem.discard(pfns[i], 1 << orders[i]);
    }
    this.calls.push(batch);
    return this.fail ? 'error' : 'ok';
  }
}

function reporter(w: World, capacity = 32) {
  const thread = threadIds(w.cfg.cpus).reporter;
  const zone = zoneAs(w, thread);
  const sink = new LocalSink(new GuestMemory(w.views), w.views.pages);
  const opts = { capacity, reportOrder: 9, delayMs: 0 } as const;
  return { pr: new PageReporting(w.views, zone, sink, opts, thread), sink, zone, opts, thread };
}

const healthy = (w: World) => {
  expect(checkFreeLists(w.zone)).toEqual([]);
  expect(checkConservation(w.zone).violations).toEqual([]);
};

describe('page reporting pass', () => {
  it('reports every free block of order >= 9 once and leaves it Reported and non-resident', () => {
    const w = makeWorld({ memoryBytes: 256 * MiB });
    const { pr, sink } = reporter(w);
    const mem = new GuestMemory(w.views);
    for (let p = 0; p < 65536; p += 7) mem.touch(p); // the guest has used memory before
    expect(mem.residentPages()).toBeGreaterThan(9000);
    pr.process();
    healthy(w);
    const blocks = sink.calls.flat();
    expect(blocks).toHaveLength(64); // 64 order-10 blocks in 256 MiB
    expect(sink.calls.every((b) => b.length <= 32)).toBe(true);
    expect(w.zone.freeArea(MAX_ORDER - 1, 3)).toBe(64); // nr_reported
    expect(mem.residentPages()).toBe(0);
    // a second pass finds nothing new: Reported blocks are skipped
    sink.calls = [];
    pr.process();
    expect(sink.calls).toEqual([]);
  });

  it('keeps the per-list budget: ceil(nr_free / (capacity * 16)) report calls per list per pass', () => {
    const w = makeWorld({ memoryBytes: 256 * MiB });
    const { pr, sink } = reporter(w, 2);
    pr.process();
    // 64 blocks / (2 * 16): budget 2. As page_reporting_cycle() counts it
    // (report, then budget--, stop once budget < 0) that is budget + 1 = 3
    // full reports of 2 blocks, and nothing left over to flush.
    expect(sink.calls.map((c) => c.length)).toEqual([2, 2, 2]);
    expect(Atomics.load(w.views.reporting, REP_STATE)).toBe(PAGE_REPORTING_REQUESTED); // ran out of budget: asks for another pass
    // The first block it did not get to was rotated to the head of the list
    // (list_rotate_to_front), so the next pass resumes there, not at a
    // Reported block.
    const head = w.zone.freeArea(MAX_ORDER - 1, FA_HEAD);
    const reported = new Set(sink.calls.flat().map((b) => b.pfn));
    expect(reported.has(head)).toBe(false);
    expect(w.views.pages[head * PAGE_WORDS + PG_FLAGS] & PG_REPORTED).toBe(0);
    expect(w.zone.freeArea(MAX_ORDER - 1, FA_NR_REPORTED)).toBe(6);
    pr.process();
    expect(sink.calls[3].some((b) => b.pfn === head)).toBe(true); // the next pass starts at that head
    for (let i = 0; i < 40 && pr.process(); i++);
    expect(w.zone.freeArea(MAX_ORDER - 1, 3)).toBe(64);
    healthy(w);
  });

  it('takes exactly passesToReportList passes to report a whole list, within the guest bound --settle-timeout auto allows for', () => {
    const w = makeWorld({ memoryBytes: 256 * MiB });
    const { pr, sink } = reporter(w, 2);
    // 64 order-10 blocks, capacity 2: 6 blocks a pass (budget 2, 3 reports), so 11 passes.
    expect(passesToReportList(64, 2)).toBe(11);
    let passes = 0;
    while (w.zone.freeArea(MAX_ORDER - 1, FA_NR_REPORTED) < 64 && passes < 40) {
      pr.process();
      passes++;
    }
    expect(passes).toBe(passesToReportList(64, 2));
    expect(sink.calls.flat()).toHaveLength(64);
    // The guest bound takes every list at its longest (order 9: 128 blocks, 13 passes).
    expect(passesToReportGuest(65536, 9, 2, MAX_ORDER)).toBe(13);
    expect(passes).toBeLessThanOrEqual(passesToReportGuest(65536, 9, 2, MAX_ORDER));
    // Upstream's own capacity on 8 GiB: 15 passes at most (order 9), 13 for the order-10 list.
    expect(passesToReportGuest(8 * 262144, 9, 32, MAX_ORDER)).toBe(15);
    expect(passesToReportList(2048, 32)).toBe(13);
  });

  it('does not flag a block that merged with its buddy on the way back (it is reported at the higher order later)', () => {
    const w = makeWorld({ memoryBytes: 8 * MiB });
    const cpu = zoneAs(w, 0);
    // Split an order-10 block into two order-9 buddies, both free.
    const a = cpu.alloc(9, 0);
    const b = cpu.alloc(9, 0);
    expect(a ^ b).toBe(512);
    cpu.free(a, 9, 0);
    const { pr } = reporter(w);
    // isolate b's buddy a (order 9) and then free b while a is in flight
    w.sync.lock(0);
    expect(pr.isolate(a, 9)).toBe(true);
    pr.sgPfn[0] = a;
    pr.sgOrder[0] = 9;
    w.sync.unlock(0);
    cpu.free(b, 9, 0); // b cannot merge: a is isolated
    expect(w.zone.order(b)).toBe(9);
    w.sync.lock(0);
    pr.drain(0, 1, true); // a comes back and merges with b into order 10
    w.sync.unlock(0);
    const head = Math.min(a, b);
    expect(w.zone.order(head)).toBe(10);
    expect(w.views.pages[head * PAGE_WORDS + PG_FLAGS] & PG_REPORTED).toBe(0);
    healthy(w);
  });

  it('puts blocks back unflagged when the report fails', () => {
    const w = makeWorld({ memoryBytes: 128 * MiB });
    const { pr, sink } = reporter(w);
    sink.fail = true;
    pr.process();
    expect(sink.calls.length).toBe(1);
    expect(w.zone.freeArea(MAX_ORDER - 1, 3)).toBe(0);
    expect(w.views.metrics[pr.mb + RM_FAILS]).toBe(1);
    healthy(w);
  });

  it('clears Reported when a reported block is split by an allocation, and counts re-reports after merging', () => {
    const w = makeWorld({ memoryBytes: 256 * MiB });
    const { pr } = reporter(w);
    const boot = new GuestMemory(w.views);
    for (let p = 0; p < w.views.layout.pages; p++) boot.touch(p); // the guest used all of it once
    pr.process();
    expect(w.zone.freeArea(MAX_ORDER - 1, 3)).toBe(64);
    const c = new Cpu(w.views, zoneAs(w, 0), 0, w.cfg, 1);
    const pfn = c.allocBlock(0);
    expect(pfn).not.toBe(NIL);
    expect(w.zone.freeArea(MAX_ORDER - 1, 3)).toBe(63); // the split block left its list: no longer Reported
    for (let o = 0; o < MAX_ORDER - 1; o++) expect(w.zone.freeArea(o, 3)).toBe(0);
    expect(c.mem.touch(pfn)).toBe(2); // the page was discarded: touching it is a refault
    c.freeBlock(pfn, 0, c.touchBlock(pfn, 0) );
    healthy(w);
    pr.process();
    expect(w.zone.freeArea(MAX_ORDER - 1, 3)).toBe(64);
    expect(w.views.metrics[pr.mb + RM_REREPORTED]).toBe(1);
  });

  it('respects the min watermark when isolating and skips the pass below low + capacity << order', () => {
    const w = makeWorld({ memoryBytes: 64 * MiB });
    const c = zoneAs(w, 0);
    // leave just under low + 32 << 9 pages free
    const target = w.zone.wmarkLow + (32 << 9) - 1;
    while (w.zone.freePages > target) if (c.alloc(0, 0) === NIL) break;
    const { pr, sink } = reporter(w);
    pr.process();
    expect(sink.calls).toEqual([]);
    healthy(w);
  });
});

describe('reporting state machine', () => {
  it('schedules work only on the IDLE -> REQUESTED transition', () => {
    const w = makeWorld();
    const notify = makeFreeNotifier(w.views, { capacity: 32, reportOrder: 9, delayMs: 0 }, 0);
    const rep = w.views.reporting;
    expect(rep[REP_STATE]).toBe(PAGE_REPORTING_IDLE);
    notify(9);
    expect(rep[REP_STATE]).toBe(PAGE_REPORTING_REQUESTED);
    expect(rep[REP_REQUEST_GEN]).toBe(1);
    notify(10);
    expect(rep[REP_REQUEST_GEN]).toBe(1);
    // while ACTIVE a request flips the state back to REQUESTED but schedules nothing new
    rep[REP_STATE] = PAGE_REPORTING_ACTIVE;
    notify(9);
    expect(rep[REP_STATE]).toBe(PAGE_REPORTING_REQUESTED);
    expect(rep[REP_REQUEST_GEN]).toBe(1);
  });

  it('reruns a pass when a request arrived during it, and goes idle otherwise', () => {
    const w = makeWorld({ memoryBytes: 128 * MiB });
    const { pr } = reporter(w);
    requestReporting(w.views);
    expect(pr.process()).toBe(false);
    expect(w.views.reporting[REP_STATE]).toBe(PAGE_REPORTING_IDLE);
    const notify = makeFreeNotifier(w.views, pr.opts, 0);
    // a free during the pass: simulate by raising the request from inside the sink
    const sinkReport = pr.sink.report.bind(pr.sink);
    (pr.sink as LocalSink).report = (...a) => {
      notify(10);
      return sinkReport(...a);
    };
    const c = zoneAs(w, 0);
    const x = c.alloc(10, 0);
    c.free(x, 10, 0);
    expect(pr.process()).toBe(true);
  });

  it('aeration v1 requests the zone once a free area holds 32 raw blocks; only the first request schedules the work', () => {
    const w = makeWorld({ memoryBytes: 256 * MiB });
    const notify = makeAeratorNotifier(w.views, 9, 0);
    const gen0 = w.views.reporting[REP_REQUEST_GEN];
    notify(10); // 64 raw order-10 blocks: over the mark
    expect(w.views.zone[ZONE_AERATION_REQUESTED]).toBe(1);
    expect(w.views.reporting[REP_AER_REFCNT]).toBe(1);
    expect(w.views.reporting[REP_REQUEST_GEN]).toBe(gen0 + 1);
    notify(10); // already requested: nothing more
    expect(w.views.reporting[REP_AER_REFCNT]).toBe(1);
    const small = makeWorld({ memoryBytes: 64 * MiB }); // 16 blocks: under the mark
    makeAeratorNotifier(small.views, 9, 0)(10);
    expect(small.views.zone[ZONE_AERATION_REQUESTED]).toBe(0);
  });
});

// The reporter's lost request: run() used to read REP_REQUEST_GEN after
// process()'s final compareExchange, so a free that moved IDLE -> REQUESTED
// and bumped the generation in between was taken for one already served and
// never seen (a 10-minute churn run failed on it after 235 s). The scheduler
// has a point in that window; this searches seeds for a run where a request
// really landed there (counted: hinting.requestsAtPassEnd), requires the run
// to pass, and the same seed with the old read order
// (BALLOON_SIM_SELFTEST=late-gen-read) to fail.
describe('reporter: a request raised right after a pass ends is not lost', () => {
  const CLI = path.resolve(__dirname, '../dist/src/cli/main.js');
  const ARGS = ['--cpus', '2', '--memory', '32M', '--duration', '300ms', '--capacity', '4', '--report-order', '7', '--report-delay', '0ms', '--check-interval', '50ms', '--workload', 'page_fault1', '--sched', 'pct', '--pct-depth', '16'];
  const sim = (seed: number, env: Record<string, string> = {}) => {
    const r = spawnSync(process.execPath, [CLI, ...ARGS, '--seed', String(seed), '--json'], { encoding: 'utf8', timeout: 60_000, env: { ...process.env, ...env } });
    return { status: r.status, json: JSON.parse(r.stdout), stderr: r.stderr };
  };

  // Threads or a child process running dist/: out of `npm run mutation`'s reach (vitest.mutation.config.ts).
  it.skipIf(process.env.BALLOON_SIM_MUTATION)('under --sched pct: a seed whose request lands in the window passes; the old read order fails on it', () => {
    let hit: number | null = null;
    for (let seed = 1; seed <= 8 && hit === null; seed++) {
      const r = sim(seed);
      expect(r.status, r.stderr).toBe(0);
      if (r.json.hinting.requestsAtPassEnd > 0) hit = seed;
    }
    expect(hit, 'no seed in 1..8 raised a request between the exchange and the wait: the window was never exercised').not.toBeNull();
    const old = sim(hit!, { BALLOON_SIM_SELFTEST: 'late-gen-read' });
    expect(old.status, old.stderr).toBe(1);
    expect(['reported-accounting', 'liveness']).toContain(old.json.violations[0].oracle);
  });
});

// --hinting hint (VIRTIO_BALLOON_F_FREE_PAGE_HINT) and --hinting naive.
import { deviceRangeCheck } from '../src/check/device-range.js';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { NIL, PAGE_SIZE, threadIds, ZONE_BALLOON_PAGES } from '../src/shm/layout.js';
import { type Config, DEFAULT_CONFIG, rerunCommand } from '../src/sim/config.js';
import { readDeviceCounters } from '../src/host/balloon-device.js';
import { FREE_PAGE_HINT_S_REQUESTED, FREE_PAGE_HINT_S_START, FREE_PAGE_HINT_S_STOP, FreePageHintDevice, readHintDeviceCounters } from '../src/host/free-page-hint-device.js';
import { hint } from '../src/sim/modes/hint.js';
import { runSimulation } from '../src/sim/run.js';
import { VringMem, VringVirtqueue } from '../src/virtio/ring.js';
import { makeWorld } from './helpers.js';
import { VIRTIO_BALLOON_CMD_ID_STOP } from '../src/virtio/balloon-abi.js';
import { HINT_BLOCK_ORDER, allocBalloonBlock } from '../src/guest/balloon-pages.js';

const CLI = path.resolve(__dirname, '../dist/src/cli/main.js');
const MiB = 2 ** 20;

/** One thread plays both sides: a hand-driven driver queue and the device's serve(). */
function deviceWorld(action: 'discard' | 'migrate' = 'discard') {
  const w = makeWorld({ memoryBytes: 32 * MiB, cfg: { hinting: 'hint' } });
  // The mode's own handshake: FREE_PAGE_HINT offered instead of REPORTING, the free_page_vq's index.
  hint.setUpDevice(w.views, w.cfg);
  const dev = new FreePageHintDevice(w.views, { queueKind: 'free_page', poisonPolicy: 'skip', spin: 0, sliceMs: 10, rangeCheck: deviceRangeCheck(w.views.pages) }, { intervalMs: 1000, action, doneAfterMs: 0 });
  dev.manual = true;
  const vq = new VringVirtqueue(VringMem.fromViews(w.views), w.views.device, { eventIdx: false, queueIndex: 2 });
  const reporter = threadIds(w.cfg.cpus).reporter;
  const idPfn = w.zone.alloc(0, reporter);
  const sendId = (id: number) => {
    w.views.guestI32[(idPfn * PAGE_SIZE) / 4] = id;
    vq.addOutbuf([idPfn * PAGE_SIZE], [4], 1, 0);
    expect(dev.serve()).toBeNull();
    while (vq.getBuf() >= 0);
  };
  const sendRange = (pfn: number, order: number) => {
    vq.addInbuf([pfn * PAGE_SIZE], [PAGE_SIZE << order], 1, pfn + 1);
    const v = dev.serve();
    while (vq.getBuf() >= 0);
    return v;
  };
  return { w, dev, sendId, sendRange, counters: () => readHintDeviceCounters(w.views, action), reporter };
}

describe('free page hint device (free_page_vq)', () => {
  it('acts on ranges only while a run is started with the current id; stale ids and ranges after STOP are ignored', () => {
    const { w, dev, sendId, sendRange, counters, reporter } = deviceWorld();
    const a = allocBalloonBlock(w.zone, HINT_BLOCK_ORDER, reporter);
    const b = allocBalloonBlock(w.zone, HINT_BLOCK_ORDER, reporter);
    expect(a).not.toBe(NIL);
    // Before any run: the range is ignored.
    expect(sendRange(a, HINT_BLOCK_ORDER)).toBeNull();
    expect(counters().rangesIgnored).toBe(1);
    const id1 = dev.startRun();
    expect(id1).toBeGreaterThanOrEqual(2);
    const id2 = dev.startRun(); // a newer run supersedes id1
    expect(dev.status).toBe(FREE_PAGE_HINT_S_REQUESTED);
    sendId(id1); // stale id: does not start the run
    expect(dev.status).toBe(FREE_PAGE_HINT_S_REQUESTED);
    expect(sendRange(a, HINT_BLOCK_ORDER)).toBeNull();
    expect(counters()).toMatchObject({ staleIds: 1, rangesIgnored: 2, rangesActedOn: 0 });
    sendId(id2);
    expect(dev.status).toBe(FREE_PAGE_HINT_S_START);
    expect(sendRange(a, HINT_BLOCK_ORDER)).toBeNull();
    expect(sendRange(b, HINT_BLOCK_ORDER)).toBeNull();
    expect(counters()).toMatchObject({ starts: 1, rangesActedOn: 2, pagesHinted: 2 << HINT_BLOCK_ORDER });
    sendId(VIRTIO_BALLOON_CMD_ID_STOP);
    expect(dev.status).toBe(FREE_PAGE_HINT_S_STOP);
    // After STOP: ranges ignored, a second STOP is a stale stop sign.
    expect(sendRange(a, HINT_BLOCK_ORDER)).toBeNull();
    sendId(VIRTIO_BALLOON_CMD_ID_STOP);
    expect(counters()).toMatchObject({ stops: 1, staleIds: 2, rangesIgnored: 3, rangesActedOn: 2 });
    // After DONE: still ignored.
    dev.done();
    expect(sendRange(b, HINT_BLOCK_ORDER)).toBeNull();
    expect(counters()).toMatchObject({ dones: 1, rangesIgnored: 4, rangesActedOn: 2 });
    expect(readDeviceCounters(w.views, 'free_page', 'linux').bytesDiscarded).toBe(2 * (PAGE_SIZE << HINT_BLOCK_ORDER));
  });

  it('a hinted range allocated to a CPU is a device-allocated-range violation; migrate counts skipped pages without discarding', () => {
    const { w, dev, sendId, sendRange, counters, reporter } = deviceWorld('migrate');
    const mine = allocBalloonBlock(w.zone, HINT_BLOCK_ORDER, reporter);
    const cpuBlock = w.zone.alloc(HINT_BLOCK_ORDER, 0);
    const id = dev.startRun();
    sendId(id);
    expect(sendRange(mine, HINT_BLOCK_ORDER)).toBeNull();
    expect(counters().migrateSkippedPages).toBe(1 << HINT_BLOCK_ORDER);
    expect(readDeviceCounters(w.views, 'free_page', 'linux').bytesDiscarded).toBe(0);
    const v = sendRange(cpuBlock, HINT_BLOCK_ORDER);
    expect(v?.oracle).toBe('device-allocated-range');
    expect(w.views.zone[ZONE_BALLOON_PAGES]).toBe(1 << HINT_BLOCK_ORDER);
  });
});

// No host cost profile: these runs check the balloon's behaviour, not the host's charges.
const base = (over: Partial<Config>): Config => ({ ...DEFAULT_CONFIG, seed: 7, checkIntervalMs: 200, holdMs: 0, hintIntervalMs: 60_000, costProfile: 'none', hostCosts: null, ...over });

describe('free page hint end to end', () => {
  it('on an idle guest one run hints (nearly) all free max-order memory and returns it all after DONE', async () => {
    const mem = 64 * MiB;
    const r = await runSimulation(base({ cpus: 1, workload: 'memhog', hogShare: 0.01, memoryBytes: mem, durationMs: 500, hinting: 'hint', hintDoneAfterMs: 150 }));
    expect(r.errors).toEqual([]);
    expect(r.violations).toEqual([]);
    const h = r.hinting!.hint!;
    expect(h.runs).toBe(1);
    // memhog's 1% may split one block; the min watermark keeps part of another.
    expect(h.heldBytesMax).toBeGreaterThanOrEqual(mem - 2 * (PAGE_SIZE << HINT_BLOCK_ORDER));
    expect(h.device!.pagesHinted * PAGE_SIZE).toBe(h.bytesHinted);
    expect(h.donesHandled).toBe(1);
    expect(h.blocksFreedOnDone).toBe(h.blocksHinted - h.shrinker.blocksReturned);
    expect(h.runEnds.allocationFailed).toBe(1);
    expect(h.runMs.max).toBeGreaterThan(0);
    expect(r.hinting!.settle?.ok).toBe(true);
    expect(r.memory.freeBytes).toBe(mem);
  });

  it('under memhog pressure the shrinker gives blocks back and no CPU allocation fails that would have succeeded without hinting', async () => {
    // The balloon holds its pages for 3 s (DONE late), so memhog's 80% can only come from the shrinker.
    const cfg = base({ cpus: 2, workload: 'memhog', hogShare: 0.8, memoryBytes: 128 * MiB, durationMs: 2500, hintDoneAfterMs: 5000, hintShrinkBlocks: 2 });
    // memhog's whole target, so both runs are judged on a completed fill (not on how far a busy machine got)
    const target = 2 * Math.floor((128 * MiB / 4096) * 0.8 / 2);
    const off = await runSimulation({ ...cfg, hinting: 'off' });
    expect(off.ok).toBe(true);
    expect(off.totals.allocFailures).toBe(0);
    const r = await runSimulation({ ...cfg, hinting: 'hint' });
    expect(r.errors).toEqual([]);
    expect(r.violations).toEqual([]);
    const h = r.hinting!.hint!;
    expect(h.shrinker.blocksReturned).toBeGreaterThan(0);
    // The rule: an allocation fails only once the balloon has nothing it can return.
    expect(h.shrinker.emptyWhileBalloonHeld).toBe(0);
    expect(r.totals.allocFailures).toBe(off.totals.allocFailures);
    expect(off.totals.pagesTouched).toBe(target);
    expect(r.totals.pagesTouched).toBe(target);
    expect(r.hinting!.settle?.ok).toBe(true);
  }, 20_000);

  for (const workload of ['page_fault1', 'churn'] as const) {
    it(`--cpus 8 ${workload} with runs every 100 ms: zero violations, every oracle on`, async () => {
      const r = await runSimulation(base({ cpus: 8, workload, memoryBytes: 64 * MiB, durationMs: 700, hinting: 'hint', hintIntervalMs: 100, hintDoneAfterMs: 30, checkIntervalMs: 100 }));
      expect(r.errors).toEqual([]);
      expect(r.violations).toEqual([]);
      const h = r.hinting!.hint!;
      expect(h.runs).toBeGreaterThan(2);
      expect(h.device!.rangesActedOn).toBeGreaterThan(0);
      for (const o of ['stamp', 'ownership', 'conservation', 'free-list', 'device-allocated-range']) expect(r.checks.find((c) => c.oracle === o)!.runs).toBeGreaterThan(0);
      expect(r.memory.freeBytes).toBe(64 * MiB);
    }, 20_000);
  }
});

describe('the naive loop', () => {
  it('on an idle guest sends the same block again and again: duplicate ratio near 1, little distinct memory', async () => {
    const r = await runSimulation(base({ cpus: 1, workload: 'memhog', hogShare: 0.01, memoryBytes: 32 * MiB, durationMs: 300, hinting: 'naive' }));
    expect(r.errors).toEqual([]);
    expect(r.violations).toEqual([]);
    const h = r.hinting!.hint!;
    expect(h.blocksHinted).toBeGreaterThan(50);
    expect(h.duplicateRatio).toBeGreaterThan(0.95);
    expect(h.distinctShareOfMemory).toBeLessThan(0.25);
    expect(r.memory.freeBytes).toBe(32 * MiB);
  });
});

describe('hint flags', () => {
  it('bad values exit 2 with one line naming the flag; rerun reproduces the hint flags', () => {
    for (const [flag, val] of [['--hint-interval', '5ms'], ['--hint-action', 'zap'], ['--hint-shrink', '0'], ['--hint-done-after', 'x']]) {
      const s = spawnSync(process.execPath, [CLI, '--memory', '16M', flag, val], { encoding: 'utf8', timeout: 30_000 });
      expect(s.status).toBe(2);
      expect(s.stderr.trim().split('\n')).toHaveLength(1);
      expect(s.stderr).toContain(flag);
    }
    const cmd = rerunCommand(base({ hinting: 'hint', hintIntervalMs: 250, hintAction: 'migrate', hintDoneAfterMs: 0, hintShrinkBlocks: 8 }));
    expect(cmd).toContain('--hinting hint');
    expect(cmd).toContain('--hint-interval 250ms --hint-action migrate --hint-done-after 0s --hint-shrink 8');
  });
});

// The naive loop the aeration v1 review (Duyck, 2019) warns about, as
// `--hinting naive`: allocate one max-order block, report it, wait, free it,
// repeat. The same block comes straight back from the head of
// free_area[order] and goes to the device again and again.

import { type Zone } from '../mm/buddy.js';
import { record } from '../base/hist.js';
import { HDR_RUN_STATE, HDR_STATE_GEN, METRIC_HIST_BASE, NIL, RUN_RUNNING, metricBase, type Views } from '../shm/layout.js';
import { GuestMemory } from '../mm/memory.js';
import { type BalloonDriverOptions, VirtioBalloonDriver } from './balloon-driver.js';
import { type Sync, waitWhileEquals } from '../locking/sync.js';
import { HM_BLOCKS, HM_NAIVE_ALLOC_FAILS, HM_ROUND_TRIPS, HM_RUN_NS_MAX, HM_RUN_NS_TOTAL, type HintDriverOptions, SentBlocks, allocBalloonBlock, freeBalloonBlocks, HINT_BLOCK_ORDER } from './balloon-pages.js';
import { TK_REPORT, tracer } from '../locking/trace.js';

/**
 * The naive loop from the review: alloc one block, send it, wait for the
 * device, free it, repeat. The same block comes straight back from the head of
 * free_area[order] and goes to the device again and again.
 */
export class NaiveHinter {
  private readonly m: Float64Array;
  private readonly mb: number;
  private readonly sent: SentBlocks;
  private readonly mem: GuestMemory;
  private readonly pfns = new Int32Array(1);
  private readonly orders = new Uint8Array([HINT_BLOCK_ORDER]);

  constructor(
    readonly views: Views,
    readonly zone: Zone,
    readonly sync: Sync,
    readonly thread: number,
    readonly opts: HintDriverOptions,
    /** The reporting driver's extras (--device-faults, --hostile: src/sim/modes/common.ts driverExtras). */
    readonly driverExtras: Partial<BalloonDriverOptions> = {},
    /** Called when the loop ends (frees the hostile guest's arena). */
    readonly onStop: () => void = () => undefined,
  ) {
    this.m = views.metrics;
    this.mb = metricBase(thread);
    this.sent = new SentBlocks(views.layout.pages);
    this.mem = new GuestMemory(views);
  }

  run(): void {
    const h = this.views.header;
    const running = () => Atomics.load(h, HDR_RUN_STATE) === RUN_RUNNING;
    const driver = new VirtioBalloonDriver(this.views, this.sync, { mode: 'reporting', ackTimeoutMs: this.opts.ackTimeoutMs, spin: this.opts.spin, serving: this.opts.serving, hintBufferPfn: NIL, ...this.driverExtras });
    try {
      this.loop(driver, running);
    } finally {
      this.onStop();
    }
  }

  private loop(driver: VirtioBalloonDriver, running: () => boolean): void {
    const h = this.views.header;
    const m = this.m;
    const mb = this.mb;
    // New blocks only while the workload runs: settling ends the loop.
    while (running()) {
      const pfn = allocBalloonBlock(this.zone, HINT_BLOCK_ORDER, this.thread);
      if (pfn === NIL) {
        m[mb + HM_NAIVE_ALLOC_FAILS]++;
        const gen = Atomics.load(h, HDR_STATE_GEN);
        waitWhileEquals(h, HDR_STATE_GEN, gen, 5, () => !running());
        continue;
      }
      this.pfns[0] = pfn;
      const t0 = performance.now();
      const st = driver.report(this.pfns, this.orders, 0, 1);
      const t1 = performance.now();
      if (tracer !== null) tracer.emit(TK_REPORT, tracer.usOf(t0), (t1 - t0) * 1000, 1, 1 << HINT_BLOCK_ORDER, st === 'ok' ? 1 : 0);
      const ns = (t1 - t0) * 1e6;
      m[mb + HM_ROUND_TRIPS]++;
      m[mb + HM_RUN_NS_TOTAL] += ns;
      if (ns > m[mb + HM_RUN_NS_MAX]) m[mb + HM_RUN_NS_MAX] = ns;
      record(m, mb + METRIC_HIST_BASE, ns);
      if (st === 'ok') {
        m[mb + HM_BLOCKS]++;
        this.sent.note(m, mb, pfn);
      }
      freeBalloonBlocks(this.zone, this.mem, this.opts.poisonByte, this.pfns, 1, this.thread);
    }
  }
}


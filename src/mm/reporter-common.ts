// What the guest's two hinting workers share, upstream free page reporting
// (src/mm/page-reporting.ts) and aeration v1 (src/mm/aeration.ts): the one
// contract to the device (ReportSink, as page_reporting_dev_info's report()
// and aerator_dev_info's react() are), the reporter's metric fields, the
// injection switches, and a base class with the batch, the zone lock with
// its hold time, the delayed-work sleep, isolation bookkeeping and the
// timed report call.

import { record } from '../base/hist.js';
import { TK_REPORT, tracer } from '../locking/trace.js';
import { OracleViolation } from '../base/errors.js';
import { SP_STATE, type StrictWait, clockMs, schedActive, schedPoint, waitWhileEquals } from '../locking/sync.js';
import { HDR_RUN_STATE, HDR_STATE_GEN, LOCK_ZONE, METRIC_EXTRA, METRIC_HIST_BASE, PAGE_WORDS, PG_FLAGS, RUN_RUNNING, RUN_SETTLING, ZONE_FREE_PAGES, ZONE_ISOLATED_PAGES, metricBase, type Views, INJECTED_NO_ISOLATE, INJECTED_POISON_UNAWARE, METRIC_INJECTED } from '../shm/layout.js';
import type { Zone } from './buddy.js';
import { ORDER_SHIFT, PG_ISOLATED, PG_STATE_MASK, describeFlags } from './page.js';

export type ReportStatus = 'ok' | 'error';

/** The one contract between the reporter and the device (driver side). */
export interface ReportSink {
  /** Hand blocks [start, start+count) of (pfns, orders) to the host and wait for the acknowledgement. */
  report(pfns: Int32Array, orders: Uint8Array, start: number, count: number): ReportStatus;
  /**
   * Called by the worker between two passes, with nothing isolated and
   * nothing in flight: where the driver may reset its device
   * (--device-faults reset; virtballoon_freeze()/restore() with page
   * reporting unregistered around them). True if it did: the worker then
   * registers again (page_reporting_register()'s request, aerator_startup()).
   */
  betweenPasses?(): boolean;
}

// Reporter metric fields (Float64, in the reporter thread's metric slot).
export const RM_REPORTS = METRIC_EXTRA + 0; // report() calls
export const RM_BLOCKS = METRIC_EXTRA + 1; // blocks handed to the device
export const RM_PAGES = METRIC_EXTRA + 2; // pages handed to the device
export const RM_REREPORTED = METRIC_EXTRA + 3; // blocks holding pages reported before (merged, reported again at a higher order)
export const RM_FAILS = METRIC_EXTRA + 4; // report() calls that failed
export const RM_PASSES = METRIC_EXTRA + 5; // page_reporting_process runs; aeration: aerator_scrub_zone runs that took the lock
export const RM_LOCK_HOLD_NS = METRIC_EXTRA + 6; // reporter time holding the zone lock
export const RM_RT_NS_TOTAL = METRIC_EXTRA + 7; // report round trips, total
export const RM_SKIPPED_WMARK = METRIC_EXTRA + 8; // passes skipped: zone not above low + capacity << order
export const RM_ISOLATE_WMARK = METRIC_EXTRA + 9; // isolations refused by the min watermark
export const RM_SET_REPORTED = METRIC_EXTRA + 10; // blocks flagged Reported (Aerated) on put-back
export const RM_RT_NS_MAX = METRIC_EXTRA + 11;
export const RM_REQUESTS_SEEN = METRIC_EXTRA + 12; // times the work was scheduled
/** Requests raised between a pass's final compareExchange (ACTIVE -> IDLE) and the reporter's next wait: seen only because the generation was read before the exchange. */
export const RM_REQUESTS_AT_PASS_END = METRIC_EXTRA + 13;
/** Most pages the reporter held isolated at once. */
export const RM_ISOLATED_PAGES_MAX = METRIC_EXTRA + 14;
/** Isolated pages taken below the min watermark (aeration v1 takes blocks with no watermark check). */
export const RM_ISOLATED_BELOW_MIN = METRIC_EXTRA + 15;
// Used elements the driver collected and validated (the `ring` oracle's runs);
// far from the fields above so other reporter counters can be added freely.
export const RM_RING_CHECKS = METRIC_EXTRA + 40;
/** Interrupts that woke the driver's wait with no used element (irq-spurious faults; vring_interrupt()'s IRQ_NONE). */
export const RM_SPURIOUS_IRQS = METRIC_EXTRA + 41;
/** Device resets the driver went through (--device-faults reset). */
export const RM_RESETS = METRIC_EXTRA + 42;
/** Most chains the driver had in flight on its ring at once (--report-inflight; hint: its blocks and ids). */
export const RM_INFLIGHT_MAX = METRIC_EXTRA + 43;
// CPU metric fields.
/** Requests this CPU raised from its free path. */
export const CM_REPORT_REQUESTS = METRIC_EXTRA + 0;
/** Order-0 allocations (no smaller order to fall back to) this CPU could not get while the reporter held blocks isolated. */
export const CM_ALLOC_FAIL_ISOLATED = METRIC_EXTRA + 1;

/** Reporter-side switches (src/check/inject.ts), carried in the reporter's options. */
export interface ReporterInjections {
  noIsolate: boolean;
  earlyPutback: boolean;
  noReportedSkip: boolean;
  noZoneLock: boolean;
  lostWakeup: boolean;
  /**
   * poison-unaware: the reporter does nothing differently (the mode's
   * handshake dropped PAGE_POISON); set so it counts the blocks it reports
   * from a guest that poisons them, i.e. the injection acting.
   */
  poisonUnaware: boolean;
}

export const NO_INJECTIONS: ReporterInjections = { noIsolate: false, earlyPutback: false, noReportedSkip: false, noZoneLock: false, lostWakeup: false, poisonUnaware: false };

/**
 * Injection `lost-wakeup`: how long a side is held up between its plain load
 * and its plain store of the request state (a kworker preempted there, an
 * interrupt on a CPU). Without it the window is a few nanoseconds and the
 * race would need hours; 1 ms makes it show within a run at --report-delay 0.
 */
export const LOST_WAKEUP_WINDOW_MS = 1;
const windowWord = new Int32Array(new SharedArrayBuffer(4));

/** The injected window of a split read-modify-write on `obj`: a real pause running free, a scheduling point under --sched. */
export function injectedWindow(obj: number): void {
  if (schedActive()) schedPoint(SP_STATE, obj);
  else Atomics.wait(windowWord, 0, 0, LOST_WAKEUP_WINDOW_MS);
}

/**
 * The reporter's wait for its work to be scheduled: strict (docs/DESIGN.md
 * §4), only the free path's bump of REP_REQUEST_GEN should end it; its
 * 100 ms slices are for noticing a stop, not a request.
 */
export const REQUEST_WAIT: StrictWait = { event: 'report request (REP_REQUEST_GEN)' };

/** The batch, the metrics and the locking every hinting worker uses. */
export class ReporterBase {
  readonly sgPfn: Int32Array;
  readonly sgOrder: Uint8Array;
  readonly m: Float64Array;
  readonly mb: number;
  protected readonly rep: Int32Array;
  protected readonly pages: Int32Array;
  protected readonly z: Int32Array;
  /** Fault injection switches (all false in a normal run). */
  protected readonly inj: ReporterInjections;

  constructor(
    readonly views: Views,
    readonly zone: Zone,
    readonly sink: ReportSink,
    capacity: number,
    readonly thread: number,
    inject: Partial<ReporterInjections> | undefined,
  ) {
    this.sgPfn = new Int32Array(capacity);
    this.sgOrder = new Uint8Array(capacity);
    this.m = views.metrics;
    this.mb = metricBase(thread);
    this.rep = views.reporting;
    this.pages = views.pages;
    this.z = views.zone;
    this.inj = { ...NO_INJECTIONS, ...inject };
  }

  /** True while the reporter should serve: the run is RUNNING or SETTLING. */
  serving(): boolean {
    const s = Atomics.load(this.views.header, HDR_RUN_STATE);
    return s === RUN_RUNNING || s === RUN_SETTLING;
  }

  /** A delayed work item's delay: a timed sleep that a stop cuts short. */
  protected sleep(ms: number): void {
    const h = this.views.header;
    // clockMs(): logical time when scheduled (--sched), wall time otherwise.
    const deadline = clockMs() + ms;
    for (;;) {
      const left = deadline - clockMs();
      if (left <= 0 || !this.serving()) return;
      waitWhileEquals(h, HDR_STATE_GEN, Atomics.load(h, HDR_STATE_GEN), Math.min(left, 50), () => !this.serving());
    }
  }

  private lockT0 = 0;
  private locked = false;
  protected lockZone(site: number): void {
    this.zone.sync.lock(LOCK_ZONE, site);
    this.locked = true;
    this.lockT0 = performance.now();
  }
  protected unlockZone(): void {
    if (!this.locked) return; // an exception escaped while the lock was dropped
    this.locked = false;
    this.m[this.mb + RM_LOCK_HOLD_NS] += (performance.now() - this.lockT0) * 1e6;
    this.zone.sync.unlock(LOCK_ZONE);
  }

  /** Take a free block off its list for the batch (the bookkeeping of __isolate_free_page). Zone lock held. */
  protected isolateBlock(pfn: number, order: number): void {
    const z = this.z;
    this.zone.delFromFreeList(pfn, order);
    this.zone.setHead(pfn, PG_ISOLATED, order);
    this.zone.setOwner(pfn, this.thread);
    z[ZONE_FREE_PAGES] -= 1 << order;
    z[ZONE_ISOLATED_PAGES] += 1 << order;
    if (z[ZONE_ISOLATED_PAGES] > this.m[this.mb + RM_ISOLATED_PAGES_MAX]) this.m[this.mb + RM_ISOLATED_PAGES_MAX] = z[ZONE_ISOLATED_PAGES];
  }

  /**
   * Batch entry i is still the block this reporter isolated; if not, someone
   * took a block while it was in flight (the ownership oracle). Then it is
   * no longer isolated. Zone lock held.
   */
  protected releaseIsolated(i: number): void {
    const pfn = this.sgPfn[i];
    const order = this.sgOrder[i];
    const f = this.pages[pfn * PAGE_WORDS + PG_FLAGS];
    if ((f & PG_STATE_MASK) !== PG_ISOLATED || f >>> ORDER_SHIFT !== order || this.zone.owner(pfn) !== this.thread) {
      throw new OracleViolation({ oracle: 'ownership', message: `reporter drain: isolated block pfn ${pfn} order ${order} is now ${describeFlags(f & 0xffffff)} order ${f >>> ORDER_SHIFT} owner ${this.zone.owner(pfn)}: someone took a block while it was in flight`, pfn });
    }
    this.z[ZONE_ISOLATED_PAGES] -= 1 << order;
  }

  /** One report() call with metrics around it. */
  reportBatch(start: number, count: number): ReportStatus {
    const m = this.m;
    const mb = this.mb;
    let pages = 0;
    let again = 0;
    const host = this.views.hostResident;
    const dOff = this.views.layout.hostWords;
    for (let i = start; i < start + count; i++) {
      const order = this.sgOrder[i];
      pages += 1 << order;
      // Re-reported: some page of this block was discarded before and not touched since.
      const pfn = this.sgPfn[i];
      for (let w = pfn >>> 5; w < (pfn + (1 << order)) >>> 5; w++) {
        if (host[dOff + w] !== 0) {
          again++;
          break;
        }
      }
    }
    const t0 = performance.now();
    const st = this.sink.report(this.sgPfn, this.sgOrder, start, count);
    const t1 = performance.now();
    if (tracer !== null) tracer.emit(TK_REPORT, tracer.usOf(t0), (t1 - t0) * 1000, count, pages, st === 'ok' ? 1 : 0);
    const ns = (t1 - t0) * 1e6;
    m[mb + RM_REPORTS]++;
    m[mb + RM_RT_NS_TOTAL] += ns;
    if (ns > m[mb + RM_RT_NS_MAX]) m[mb + RM_RT_NS_MAX] = ns;
    record(m, mb + METRIC_HIST_BASE, ns);
    if (st === 'ok') {
      // The device acknowledged: blocks it discarded while they sat on the
      // free list (no-isolate), or from a guest that poisons them without
      // PAGE_POISON (poison-unaware): those injections acting.
      if (this.inj.noIsolate) m[mb + METRIC_INJECTED + INJECTED_NO_ISOLATE] += count;
      if (this.inj.poisonUnaware) m[mb + METRIC_INJECTED + INJECTED_POISON_UNAWARE] += count;
      m[mb + RM_BLOCKS] += count;
      m[mb + RM_PAGES] += pages;
      m[mb + RM_REREPORTED] += again;
    } else m[mb + RM_FAILS]++;
    return st;
  }
}

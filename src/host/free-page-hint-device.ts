// VIRTIO_BALLOON_F_FREE_PAGE_HINT, the host's side (QEMU hw/virtio/virtio-balloon.c:
// virtio_balloon_free_page_start / get_free_page_hints / virtio_balloon_free_page_done;
// Firecracker's free page hinting). The driver's side is src/guest/free-page-hint.ts.
//
// Protocol (docs/DESIGN.md §5 `hint`):
//   1. The host starts a hint run: it writes a new free_page_hint_cmd_id (>= 2)
//      into config space and raises a config interrupt (DEV_CONFIG_GEN). It
//      does so at start and then every --hint-interval while the workload runs.
//   2. The driver echoes the id in a device-readable buffer on the free_page_vq:
//      if it matches the current id and the run was REQUESTED, the run STARTs.
//   3. Every device-writable buffer while the run is STARTed is a free range:
//      --hint-action discard drops its backing (Firecracker), migrate clears it
//      from the migration dirty bitmap so a pre-copy pass skips it (QEMU).
//      Ranges outside a STARTed run are ignored (stale: the run ended or a new
//      id was asked for), as QEMU and Firecracker do.
//   4. The driver sends VIRTIO_BALLOON_CMD_ID_STOP (an id buffer): START -> STOP.
//      A STOP while not STARTed is a stale stop sign of an older run: ignored.
//   5. --hint-done-after later the host writes VIRTIO_BALLOON_CMD_ID_DONE and
//      raises a config interrupt: the driver frees every page it holds.
//   Any other id in an id buffer is stale (an older run's): counted, ignored.
//   (QEMU turns any id other than the current one into STOP while STARTed;
//   here only STOP does, and the stricter rule is what the test checks.)
//
// Queue: hint mode offers FREE_PAGE_HINT and not REPORTING (like a QEMU device
// with free-page-hint=on, free-page-reporting=off), so the free_page_vq is the
// one hinting queue and uses the simulator's one vq region. Its index is 3 in
// the spec's numbering, and 2 + (STATS_VQ) in Linux's (only existing queues).

import { VIRTIO_BALLOON_CMD_ID_DONE, VIRTIO_BALLOON_CMD_ID_STOP, VIRTIO_BALLOON_FREE_PAGE_HINT_CMD_ID_MIN } from '../virtio/balloon-abi.js';
import { BalloonDevice, BAD_ADDR_RANGE, BAD_HINT_LEN, BAD_UNALIGNED, DEVM_BYTES_DISCARDED, DEVM_BYTES_POISON_SKIPPED, DEVM_DESCRIPTORS, type DeviceOptions } from './balloon-device.js';
import { DEV_CONFIG_GEN, DEV_FREE_PAGE_HINT_CMD_ID, DEV_HINT_RUN_ID, DEV_HINT_STATUS, HDR_RUN_STATE, METRIC_EXTRA, PAGE_SHIFT, PAGE_SIZE, RUN_RUNNING, metricBase, threadIds, type Views } from '../shm/layout.js';
import { bump } from '../locking/sync.js';
import { VRING_DESC_F_WRITE, type Chain } from '../virtio/ring.js';
import { type Violation } from '../base/errors.js';
import { VIRTIO_BALLOON_F_FREE_PAGE_HINT, VIRTIO_BALLOON_F_REPORTING, bit } from '../virtio/balloon-abi.js';
import { TK_HINT_CMD, tracer } from '../locking/trace.js';

const CMD_ID_MAX = 0x7fffffff;

/** QEMU's FreePageHintStatus, kept in DEV_HINT_STATUS. */
export const FREE_PAGE_HINT_S_INIT = 0;
export const FREE_PAGE_HINT_S_REQUESTED = 1;
export const FREE_PAGE_HINT_S_START = 2;
export const FREE_PAGE_HINT_S_STOP = 3;
export const FREE_PAGE_HINT_S_DONE = 4;

// Device hint counters (Float64) in the device thread's metric slot, after the DEVM_* fields.
const HDM = METRIC_EXTRA + 16;
export const HDM_IDS_WRITTEN = HDM + 0; // hint runs asked for (new cmd id + config interrupt)
export const HDM_STARTS = HDM + 1; // id buffers that started a run
export const HDM_STOPS = HDM + 2; // STOPs that ended a started run
export const HDM_DONES = HDM + 3; // DONE written
export const HDM_STALE_IDS = HDM + 4; // id buffers ignored: an older run's id, or STOP outside a started run
export const HDM_RANGES = HDM + 5; // writable buffers acted on (run started, id current)
export const HDM_RANGES_IGNORED = HDM + 6; // writable buffers outside a started run
export const HDM_PAGES_HINTED = HDM + 7; // pages of the ranges acted on
export const HDM_MIGRATE_SKIP_PAGES = HDM + 8; // migrate: pages cleared from the dirty bitmap (a pre-copy pass would skip them)
export const HDM_RUN_NS_TOTAL = HDM + 9; // from the id write to the STOP, summed over runs that stopped
export const HDM_RUN_NS_MAX = HDM + 10;
export const HDM_RUN_PAGES_MAX = HDM + 11; // most pages hinted in one run

/** Hint mode's offer: FREE_PAGE_HINT instead of REPORTING (one hinting queue). */
export function hintOfferedFeatures(offered: number): number {
  return ((offered & ~bit(VIRTIO_BALLOON_F_REPORTING)) | bit(VIRTIO_BALLOON_F_FREE_PAGE_HINT)) >>> 0;
}

export interface HintDeviceOptions {
  intervalMs: number;
  action: 'discard' | 'migrate';
  doneAfterMs: number;
}

export interface HintDeviceCounters {
  action: 'discard' | 'migrate';
  idsWritten: number;
  starts: number;
  stops: number;
  dones: number;
  staleIds: number;
  rangesActedOn: number;
  rangesIgnored: number;
  pagesHinted: number;
  migrateSkippedPages: number;
  runMsMean: number;
  runMsMax: number;
  runPagesMax: number;
}

export function readHintDeviceCounters(views: Views, action: 'discard' | 'migrate'): HintDeviceCounters {
  const m = views.metrics;
  const b = metricBase(threadIds(views.layout.params.cpus).device);
  const stops = m[b + HDM_STOPS];
  return {
    action,
    idsWritten: m[b + HDM_IDS_WRITTEN],
    starts: m[b + HDM_STARTS],
    stops,
    dones: m[b + HDM_DONES],
    staleIds: m[b + HDM_STALE_IDS],
    rangesActedOn: m[b + HDM_RANGES],
    rangesIgnored: m[b + HDM_RANGES_IGNORED],
    pagesHinted: m[b + HDM_PAGES_HINTED],
    migrateSkippedPages: m[b + HDM_MIGRATE_SKIP_PAGES],
    runMsMean: stops > 0 ? m[b + HDM_RUN_NS_TOTAL] / stops / 1e6 : 0,
    runMsMax: m[b + HDM_RUN_NS_MAX] / 1e6,
    runPagesMax: m[b + HDM_RUN_PAGES_MAX],
  };
}

/** The free_page_vq handler and the host's hint-run clock. */
export class FreePageHintDevice extends BalloonDevice {
  private nextCmdId = VIRTIO_BALLOON_FREE_PAGE_HINT_CMD_ID_MIN;
  private runStartMs = 0;
  private hintRunPages = 0;
  private doneAtMs = Infinity;
  /** Set by a test to drive runs by hand (no clock). */
  manual = false;

  constructor(
    views: Views,
    opts: DeviceOptions,
    readonly hint: HintDeviceOptions,
  ) {
    super(views, opts);
  }

  get status(): number {
    return Atomics.load(this.dev, DEV_HINT_STATUS);
  }

  /** virtio_balloon_free_page_start(): ask the guest for a new hint run. */
  startRun(): number {
    const id = this.nextCmdId;
    this.nextCmdId = id >= CMD_ID_MAX ? VIRTIO_BALLOON_FREE_PAGE_HINT_CMD_ID_MIN : id + 1;
    Atomics.store(this.dev, DEV_HINT_RUN_ID, id);
    Atomics.store(this.dev, DEV_HINT_STATUS, FREE_PAGE_HINT_S_REQUESTED);
    this.doneAtMs = Infinity; // a DONE still pending for the previous run is dropped
    this.runStartMs = performance.now();
    this.hintRunPages = 0;
    this.m[this.mb + HDM_IDS_WRITTEN - METRIC_EXTRA]++;
    if (tracer !== null) tracer.instant(TK_HINT_CMD, 1, id);
    this.configChanged(id);
    return id;
  }

  /** virtio_balloon_free_page_done(): the host no longer needs the hints; the guest may free its pages. */
  done(): void {
    Atomics.store(this.dev, DEV_HINT_STATUS, FREE_PAGE_HINT_S_DONE);
    this.doneAtMs = Infinity;
    this.m[this.mb + HDM_DONES - METRIC_EXTRA]++;
    if (tracer !== null) tracer.instant(TK_HINT_CMD, 3, VIRTIO_BALLOON_CMD_ID_DONE);
    this.configChanged(VIRTIO_BALLOON_CMD_ID_DONE);
  }

  private configChanged(cmdId: number): void {
    // PUBLISH: the config-space store (seq-cst) precedes the config interrupt;
    // a driver that sees the new DEV_CONFIG_GEN reads the new cmd id.
    Atomics.store(this.dev, DEV_FREE_PAGE_HINT_CMD_ID, cmdId);
    // WAKE: virtio_notify_config(): bump and notify the config-change counter.
    bump(this.dev, DEV_CONFIG_GEN);
  }

  /** Fire the clock's due actions (a new run, a DONE). Returns ms until the next one. */
  tick(now: number, running: boolean, nextRunAt: { t: number }): number {
    if (this.status === FREE_PAGE_HINT_S_STOP && now >= this.doneAtMs) this.done();
    if (running && now >= nextRunAt.t) {
      this.startRun();
      nextRunAt.t = Math.max(nextRunAt.t + this.hint.intervalMs, now + 1);
    }
    let next = this.doneAtMs - now;
    if (running) next = Math.min(next, nextRunAt.t - now);
    return next;
  }

  /** get_free_page_hints(): one element of the free_page_vq. */
  protected override handleChain(c: Chain): Violation | null {
    for (let k = 0; k < c.count; k++) {
      this.m[this.mb + DEVM_DESCRIPTORS]++;
      if ((c.flags[k] & VRING_DESC_F_WRITE) === 0) {
        this.handleCmdId(c.addr[k], c.len[k]);
        continue;
      }
      if (Atomics.load(this.dev, DEV_HINT_STATUS) !== FREE_PAGE_HINT_S_START) {
        // After STOP/DONE or while a new id is pending: a stale range.
        this.m[this.mb + HDM_RANGES_IGNORED - METRIC_EXTRA]++;
        continue;
      }
      const v = this.hintRange(c.addr[k], c.len[k]);
      if (v !== null) return v;
    }
    return null;
  }

  /** A device-readable buffer: the le32 command id the driver echoes (start) or STOP. */
  private handleCmdId(addr: number, len: number): void {
    if (len < 4) {
      this.bad(BAD_HINT_LEN);
      return;
    }
    if (addr % 4 !== 0) {
      this.bad(BAD_UNALIGNED);
      return;
    }
    if (addr >= this.guestBytes || addr + 4 > this.guestBytes) {
      this.bad(BAD_ADDR_RANGE);
      return;
    }
    const id = this.mem.i32[addr / 4] >>> 0;
    const st = Atomics.load(this.dev, DEV_HINT_STATUS);
    const current = Atomics.load(this.dev, DEV_HINT_RUN_ID) >>> 0;
    if (id === current && st === FREE_PAGE_HINT_S_REQUESTED) {
      Atomics.store(this.dev, DEV_HINT_STATUS, FREE_PAGE_HINT_S_START);
      this.m[this.mb + HDM_STARTS - METRIC_EXTRA]++;
    } else if (id === VIRTIO_BALLOON_CMD_ID_STOP && st === FREE_PAGE_HINT_S_START) {
      Atomics.store(this.dev, DEV_HINT_STATUS, FREE_PAGE_HINT_S_STOP);
      if (tracer !== null) tracer.instant(TK_HINT_CMD, 2, current);
      const ns = (performance.now() - this.runStartMs) * 1e6;
      this.m[this.mb + HDM_STOPS - METRIC_EXTRA]++;
      this.m[this.mb + HDM_RUN_NS_TOTAL - METRIC_EXTRA] += ns;
      if (ns > this.m[this.mb + HDM_RUN_NS_MAX - METRIC_EXTRA]) this.m[this.mb + HDM_RUN_NS_MAX - METRIC_EXTRA] = ns;
      if (this.hintRunPages > this.m[this.mb + HDM_RUN_PAGES_MAX - METRIC_EXTRA]) this.m[this.mb + HDM_RUN_PAGES_MAX - METRIC_EXTRA] = this.hintRunPages;
      this.doneAtMs = this.manual ? Infinity : performance.now() + this.hint.doneAfterMs;
    } else {
      this.m[this.mb + HDM_STALE_IDS - METRIC_EXTRA]++;
    }
  }

  /** One free range of a started run: validate, oracle-check, then discard or mark clean for migration. */
  private hintRange(addr: number, len: number): Violation | null {
    if (this.hint.action === 'discard') {
      const before = this.m[this.mb + DEVM_BYTES_DISCARDED];
      const skippedBefore = this.m[this.mb + DEVM_BYTES_POISON_SKIPPED];
      const v = this.reportRange(addr, len);
      if (v !== null) return v;
      const acted = this.m[this.mb + DEVM_BYTES_DISCARDED] - before + (this.m[this.mb + DEVM_BYTES_POISON_SKIPPED] - skippedBefore);
      if (acted > 0) this.counted(acted >>> PAGE_SHIFT);
      return null;
    }
    // migrate: the same validation and device oracle, no discard.
    if (!this.validRange(addr, len)) return null;
    const v = this.checkRange(addr / PAGE_SIZE, len >>> PAGE_SHIFT);
    if (v !== null) return v;
    // qemu_guest_free_page_hint(): clear the range from the migration bitmap.
    this.m[this.mb + HDM_MIGRATE_SKIP_PAGES - METRIC_EXTRA] += len >>> PAGE_SHIFT;
    this.counted(len >>> PAGE_SHIFT);
    return null;
  }

  private counted(pages: number): void {
    this.m[this.mb + HDM_RANGES - METRIC_EXTRA]++;
    this.m[this.mb + HDM_PAGES_HINTED - METRIC_EXTRA] += pages;
    this.hintRunPages += pages;
  }

  private nextRunAt: { t: number } | null = null;

  /** The device's clock (called by the device loop): start runs on --hint-interval, write DONE when due. */
  protected override timers(): number {
    if (this.manual) return Infinity;
    const now = performance.now();
    this.nextRunAt ??= { t: now };
    // New runs only while the workload runs; a pending DONE is still written while settling.
    const running = Atomics.load(this.views.header, HDR_RUN_STATE) === RUN_RUNNING;
    return this.tick(now, running, this.nextRunAt);
  }
}

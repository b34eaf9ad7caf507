// VIRTIO_BALLOON_F_FREE_PAGE_HINT, the host's side, per VMM (--hint-device).
// The driver's side is src/guest/free-page-hint.ts; the host's write
// tracking on the vCPUs is src/host/hint-tracking.ts.
//
// firecracker (src/vmm/src/devices/virtio/balloon/device.rs):
//   start_hinting(): a new cmd id (last + 1, never 0 or 1), config interrupt;
//   the host starts one at start and every --hint-interval while the
//   workload runs. process_free_page_hinting_queue(): a 4-byte device-readable
//   buffer is the guest's cmd id (guest_cmd); STOP (or DONE) marks the run
//   complete. A device-writable range is discarded (discard_range,
//   MADV_DONTNEED: it reads back as zeros) only while the host's cmd is a run
//   id and the guest's last id is that id; otherwise it is ignored (a range
//   of an older run, after STOP, after DONE). After the queue is drained, a
//   complete run with acknowledge_on_stop (--hint-ack-on-stop, Firecracker's
//   default) gets DONE at once; without it the host holds the pages and says
//   stop (stop_hinting(): DONE) --hint-done-after later. Firecracker acts on a
//   STOP whatever run it belongs to: a STOP of an older run seen after a new
//   start also completes (and, acknowledged, ends) the new one.
//   With --hint-uffd-wp (mitigation (a), its docs/ballooning.md): the run
//   start write-protects guest memory; a range's written pages are skipped.
//   The device's write-tracking check and its discard are two steps
//   ('split': a scheduling point between them) or one step serialized with
//   the vCPUs' write faults by the UFFD handler ('serialized').
//
// qemu (hw/virtio/virtio-balloon.c, migration/ram.c), live migration:
//   virtio_balloon_free_page_start(): a new cmd id, status REQUESTED.
//   get_free_page_hints(): an id buffer equal to the cmd id while REQUESTED
//   starts the run (START); ANY id buffer while START stops it (STOP: the
//   guest's STOP, a stale id, anything); a range is acted on only while
//   START: qemu_guest_free_page_hint() clears its pages from the migration
//   bitmap, so this round does not send them. free_page_hint_notify: at every
//   bitmap sync (every --hint-interval here) the host sends STOP before the
//   sync (virtio_balloon_free_page_stop) and starts a new run after it; when
//   the migration ends (the workload ends here) it writes DONE
//   (virtio_balloon_free_page_done).
//   The migration model: the migration bitmap starts full (the bulk stage);
//   a round sends every page still in the bitmap at its end (a
//   simplification: QEMU sends during the round, so here every hint beats the
//   send it saves); the sync then harvests KVM's dirty log (a vCPU write
//   marks its page, src/host/hint-tracking.ts) into the bitmap. A page hinted
//   in a round is skipped; if a CPU writes it later (the shrinker freed its
//   block, in flight or not), the dirty log brings it back and it is re-sent.
//   The migration oracle (src/check/migration.ts) checks at every hinted page
//   the device clears from the bitmap that it holds no data a CPU wrote
//   before the round began and still holds: such data would have only that
//   bitmap bit as its record and would never reach the destination.
//
// Status word (DEV_HINT_STATUS, QEMU's FreePageHintStatus): REQUESTED after a
// start, START when the guest echoed the id, STOP when the run stopped
// (Firecracker: the guest's STOP; DONE may be pending), DONE. Read by main to
// decide the run has settled. When the workload ends the host ends hinting:
// a run still requested or started gets DONE at once (QEMU: the final bitmap
// sync first); a STOP waiting for --hint-done-after keeps its timer.
//
// Timers run on clockMs(): wall time free-running, logical time under --sched.
//
// Queue: hint mode offers FREE_PAGE_HINT and not REPORTING (like a QEMU device
// with free-page-hint=on, free-page-reporting=off), so the free_page_vq is the
// one hinting queue and uses the simulator's one vq region. Its index is 3 in
// the spec's numbering, and 2 + (STATS_VQ) in Linux's (only existing queues).

import { VIRTIO_BALLOON_CMD_ID_DONE, VIRTIO_BALLOON_CMD_ID_STOP, VIRTIO_BALLOON_FREE_PAGE_HINT_CMD_ID_MIN } from '../virtio/balloon-abi.js';
import { BalloonDevice, BAD_ADDR_RANGE, BAD_HINT_LEN, BAD_UNALIGNED, DEVM_BYTES_DISCARDED, DEVM_BYTES_KEPT, DEVM_BYTES_POISON_SKIPPED, DEVM_DESCRIPTORS, DEVM_RANGE_CHECKS, type DeviceOptions } from './balloon-device.js';
import { DEV_CONFIG_GEN, DEV_FREE_PAGE_HINT_CMD_ID, DEV_HINT_RUN_ID, DEV_HINT_STATUS, DEV_HINT_WP_ARMED, HDR_RUN_STATE, HTM_DIRTY_LOG, HTM_UFFD_WRITTEN, LOCK_UFFD, METRIC_EXTRA, PAGE_SHIFT, PAGE_SIZE, RUN_RUNNING, RUN_SETTLING, metricBase, threadIds, type Views } from '../shm/layout.js';
import { SP_HINT_STEP, type Sync, bump, clockMs, schedPoint } from '../locking/sync.js';
import { VRING_DESC_F_WRITE, type Chain } from '../virtio/ring.js';
import { type Violation } from '../base/errors.js';
import { VIRTIO_BALLOON_F_FREE_PAGE_HINT, VIRTIO_BALLOON_F_REPORTING, bit } from '../virtio/balloon-abi.js';
import { TK_HINT_CMD, TK_MIG_SYNC, TK_WP_CHECK, tracer } from '../locking/trace.js';
import { SITE_UFFD_ARM, SITE_UFFD_DISCARD } from '../locking/sites.js';
import { hintTrackMap } from './hint-tracking.js';

const CMD_ID_MAX = 0xffffffff;

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
export const HDM_STOPS = HDM + 2; // id buffers that stopped a started run
export const HDM_DONES = HDM + 3; // DONE written
export const HDM_STALE_IDS = HDM + 4; // id buffers that neither started nor stopped a run (an older run's id; QEMU: anything outside REQUESTED/START)
export const HDM_RANGES = HDM + 5; // writable buffers acted on (run started, id current)
export const HDM_RANGES_IGNORED = HDM + 6; // writable buffers outside a started run (stale id, after STOP, after DONE)
export const HDM_PAGES_HINTED = HDM + 7; // pages of the ranges acted on
export const HDM_MIG_PAGES_SKIPPED = HDM + 8; // qemu: pages a hint cleared from the migration bitmap (not sent this round)
export const HDM_RUN_NS_TOTAL = HDM + 9; // from the id write to the STOP, summed over runs that stopped
export const HDM_RUN_NS_MAX = HDM + 10;
export const HDM_RUN_PAGES_MAX = HDM + 11; // most pages hinted in one run
export const HDM_RANGES_GUEST_FREED = HDM + 12; // ranges acted on whose block the guest no longer held in its balloon (the shrinker freed it in flight)
export const HDM_RANGES_GUEST_REUSED = HDM + 13; // ... and a CPU had allocated (part of) it
export const HDM_WP_CHECKS = HDM + 14; // firecracker + uffd: ranges checked against the written-pages record
export const HDM_WP_SKIPPED_RANGES = HDM + 15; // ... of them with written pages, not discarded
export const HDM_WP_SKIPPED_PAGES = HDM + 16; // pages not discarded because they were written since the run started
export const HDM_MIG_SYNCS = HDM + 17; // qemu: bitmap syncs (rounds ended)
export const HDM_MIG_PAGES_SENT = HDM + 18; // qemu: pages sent (every round, the final stop-and-copy too)
export const HDM_MIG_PAGES_RESENT = HDM + 19; // qemu: pages a hint had skipped that a CPU wrote later, sent in a later round
export const HDM_MIG_BULK_PAGES = HDM + 20; // qemu: pages in the bitmap at the start (the bulk stage)
export const HDM_MIG_CHECKS = HDM + 21; // qemu: hinted pages the migration oracle checked
export const HDM_STOPS_OTHER_ID = HDM + 22; // qemu: runs stopped by an id buffer other than STOP (get_free_page_hints: any id while START)
export const HDM_COMPLETE_STALE = HDM + 23; // firecracker: STOPs seen outside a started run (complete all the same)
export const HDM_MIG_FINAL_PAGES = HDM + 24; // qemu: pages sent in the final stop-and-copy (VM stopped)

/** Hint mode's offer: FREE_PAGE_HINT instead of REPORTING (one hinting queue). */
export function hintOfferedFeatures(offered: number): number {
  return ((offered & ~bit(VIRTIO_BALLOON_F_REPORTING)) | bit(VIRTIO_BALLOON_F_FREE_PAGE_HINT)) >>> 0;
}

export type HintDeviceKind = 'firecracker' | 'qemu';
export type UffdWpMode = 'off' | 'split' | 'serialized';

/** The migration oracle (src/check/migration.ts), installed by the simulation. */
export interface MigrationCheck {
  /** A hint clears [pfn, pfn + count) from the migration bitmap `bmap`: a violation if a page loses the only record of data a CPU still holds. */
  hintClears(pfn: number, count: number, bmap: Uint8Array): Violation | null;
}

/** Block state of a hinted range's first page, for statistics (src/check/device-range.ts hintBlockState). */
export const BLOCK_BALLOON = 0;
export const BLOCK_FREE = 1;
export const BLOCK_ALLOCATED = 2;

export interface HintDeviceOptions {
  kind: HintDeviceKind;
  /** Firecracker: a new run this often; QEMU: a bitmap sync (STOP, sync, new run) this often. */
  intervalMs: number;
  /** Firecracker's acknowledge_on_stop. */
  ackOnStop: boolean;
  /** Firecracker without acknowledge_on_stop: DONE this long after the guest's STOP. */
  doneAfterMs: number;
  /** Firecracker: userfaultfd write-protect tracking (mitigation (a)). */
  uffdWp: UffdWpMode;
  /** The device thread's locks ('serialized' takes LOCK_UFFD). */
  sync?: Sync;
  /** Oracle: with --hint-uffd-wp, the check of a run of pages about to be discarded (written since the run started and allocated: lost). */
  uffdDiscardCheck?: (pfn: number, count: number) => Violation | null;
  /** Oracle (QEMU): the migration check. */
  migrationCheck?: MigrationCheck;
  /** Statistics: what the guest holds at a hinted range now (BLOCK_*). */
  blockState?: (pfn: number) => number;
}

export interface HintDeviceCounters {
  kind: HintDeviceKind;
  ackOnStop: boolean;
  uffdWp: UffdWpMode;
  idsWritten: number;
  starts: number;
  stops: number;
  dones: number;
  staleIds: number;
  rangesActedOn: number;
  rangesIgnored: number;
  pagesHinted: number;
  /** Ranges acted on whose block the shrinker had freed before the device reached it; of them, (partly) allocated to a CPU. */
  rangesGuestFreed: number;
  rangesGuestReused: number;
  runMsMean: number;
  runMsMax: number;
  runPagesMax: number;
  /** firecracker: STOPs outside a started run (complete all the same). */
  completeOnStaleStop: number;
  /** firecracker + --hint-uffd-wp. */
  uffd?: { checks: number; skippedRanges: number; skippedPages: number };
  /** qemu: the migration model. */
  migration?: { syncs: number; bulkPages: number; pagesSent: number; pagesSkipped: number; pagesResent: number; finalPages: number; checks: number; stopsByOtherId: number };
}

export function readHintDeviceCounters(views: Views, o: Pick<HintDeviceOptions, 'kind' | 'ackOnStop' | 'uffdWp'>): HintDeviceCounters {
  const m = views.metrics;
  const b = metricBase(threadIds(views.layout.params.cpus).device);
  const stops = m[b + HDM_STOPS];
  const out: HintDeviceCounters = {
    kind: o.kind,
    ackOnStop: o.ackOnStop,
    uffdWp: o.uffdWp,
    idsWritten: m[b + HDM_IDS_WRITTEN],
    starts: m[b + HDM_STARTS],
    stops,
    dones: m[b + HDM_DONES],
    staleIds: m[b + HDM_STALE_IDS],
    rangesActedOn: m[b + HDM_RANGES],
    rangesIgnored: m[b + HDM_RANGES_IGNORED],
    pagesHinted: m[b + HDM_PAGES_HINTED],
    rangesGuestFreed: m[b + HDM_RANGES_GUEST_FREED],
    rangesGuestReused: m[b + HDM_RANGES_GUEST_REUSED],
    runMsMean: stops > 0 ? m[b + HDM_RUN_NS_TOTAL] / stops / 1e6 : 0,
    runMsMax: m[b + HDM_RUN_NS_MAX] / 1e6,
    runPagesMax: m[b + HDM_RUN_PAGES_MAX],
    completeOnStaleStop: m[b + HDM_COMPLETE_STALE],
  };
  if (o.kind === 'firecracker' && o.uffdWp !== 'off') out.uffd = { checks: m[b + HDM_WP_CHECKS], skippedRanges: m[b + HDM_WP_SKIPPED_RANGES], skippedPages: m[b + HDM_WP_SKIPPED_PAGES] };
  if (o.kind === 'qemu') {
    out.migration = {
      syncs: m[b + HDM_MIG_SYNCS],
      bulkPages: m[b + HDM_MIG_BULK_PAGES],
      pagesSent: m[b + HDM_MIG_PAGES_SENT],
      pagesSkipped: m[b + HDM_MIG_PAGES_SKIPPED],
      pagesResent: m[b + HDM_MIG_PAGES_RESENT],
      finalPages: m[b + HDM_MIG_FINAL_PAGES],
      checks: m[b + HDM_MIG_CHECKS],
      stopsByOtherId: m[b + HDM_STOPS_OTHER_ID],
    };
  }
  return out;
}

/** The free_page_vq handler and the host's hint-run clock. */
export class FreePageHintDevice extends BalloonDevice {
  private lastCmdId = VIRTIO_BALLOON_FREE_PAGE_HINT_CMD_ID_MIN - 1;
  private runStartWallMs = 0;
  private hintRunPages = 0;
  private doneAtMs = Infinity;
  /** Firecracker's guest_cmd: the last id the guest sent (-1: none yet). */
  private guestCmd = -1;
  /** Firecracker: a STOP (or DONE) id was the last id of the queue batch being handled. */
  private complete = false;
  /** Set by a test to drive runs by hand (no clock). */
  manual = false;
  // firecracker + uffd
  private readonly written: Uint8Array | null;
  private readonly runsPfn: Int32Array;
  private readonly runsLen: Int32Array;
  // qemu migration
  private readonly bmap: Uint8Array | null;
  private readonly skippedMark: Uint8Array | null;
  private readonly dirty: Uint8Array | null;
  private migrationStarted = false;
  private migrationDone = false;
  private round = 0;
  private nextAtMs: number | null = null;

  constructor(
    views: Views,
    opts: DeviceOptions,
    readonly hint: HintDeviceOptions,
  ) {
    super(views, opts);
    const pages = views.layout.pages;
    const uffd = hint.kind === 'firecracker' && hint.uffdWp !== 'off';
    if (hint.uffdWp !== 'off' && hint.kind !== 'firecracker') throw new Error('hint device: --hint-uffd-wp models Firecracker');
    if (hint.uffdWp === 'serialized' && hint.sync === undefined) throw new Error('hint device: --hint-uffd-wp serialized needs the device thread\'s Sync');
    this.written = uffd ? hintTrackMap(views, HTM_UFFD_WRITTEN) : null;
    // A range is one max-order block here; room for its worst split into runs.
    this.runsPfn = new Int32Array(uffd ? 1 << 10 : 0);
    this.runsLen = new Int32Array(uffd ? 1 << 10 : 0);
    this.bmap = hint.kind === 'qemu' ? new Uint8Array(pages) : null;
    this.skippedMark = hint.kind === 'qemu' ? new Uint8Array(pages) : null;
    this.dirty = hint.kind === 'qemu' ? hintTrackMap(views, HTM_DIRTY_LOG) : null;
  }

  private count(field: number, n = 1): void {
    this.m[this.mb + field - METRIC_EXTRA] += n;
  }

  get status(): number {
    return Atomics.load(this.dev, DEV_HINT_STATUS);
  }

  private setStatus(s: number): void {
    // Main and the scheduler read it (Atomics.load) to decide the run settled.
    Atomics.store(this.dev, DEV_HINT_STATUS, s);
  }

  /** virtio_balloon_free_page_start() / Firecracker's start_hinting(): ask the guest for a new hint run. */
  startRun(): number {
    let id = this.lastCmdId >= CMD_ID_MAX ? VIRTIO_BALLOON_FREE_PAGE_HINT_CMD_ID_MIN : this.lastCmdId + 1;
    // 0 and 1 are STOP and DONE: never a run's id.
    if (id < VIRTIO_BALLOON_FREE_PAGE_HINT_CMD_ID_MIN) id = VIRTIO_BALLOON_FREE_PAGE_HINT_CMD_ID_MIN;
    this.lastCmdId = id;
    if (this.written !== null) this.armWriteProtect();
    Atomics.store(this.dev, DEV_HINT_RUN_ID, id | 0);
    this.setStatus(FREE_PAGE_HINT_S_REQUESTED);
    this.doneAtMs = Infinity; // a DONE still pending for the previous run is dropped
    this.runStartWallMs = performance.now();
    this.hintRunPages = 0;
    this.count(HDM_IDS_WRITTEN);
    if (tracer !== null) tracer.instant(TK_HINT_CMD, 1, id);
    this.configChanged(id);
    return id;
  }

  /** virtio_balloon_free_page_done() / Firecracker's stop_hinting(): the guest may free its pages. */
  done(): void {
    this.setStatus(FREE_PAGE_HINT_S_DONE);
    this.doneAtMs = Infinity;
    // Write protection is lifted with the run: no more discards for it.
    if (this.written !== null) Atomics.store(this.dev, DEV_HINT_WP_ARMED, 0);
    this.count(HDM_DONES);
    if (tracer !== null) tracer.instant(TK_HINT_CMD, 3, VIRTIO_BALLOON_CMD_ID_DONE);
    this.configChanged(VIRTIO_BALLOON_CMD_ID_DONE);
  }

  /** virtio_balloon_free_page_stop(): QEMU stops a run before a bitmap sync (config cmd id STOP). */
  stopRun(): void {
    if (this.status === FREE_PAGE_HINT_S_STOP) return;
    const wasStarted = this.status === FREE_PAGE_HINT_S_START;
    this.setStatus(FREE_PAGE_HINT_S_STOP);
    if (wasStarted) this.runStopped();
    if (tracer !== null) tracer.instant(TK_HINT_CMD, 2, VIRTIO_BALLOON_CMD_ID_STOP);
    this.configChanged(VIRTIO_BALLOON_CMD_ID_STOP);
  }

  private configChanged(cmdId: number): void {
    // PUBLISH: the config-space store (seq-cst) precedes the config interrupt;
    // a driver that sees the new DEV_CONFIG_GEN reads the new cmd id.
    Atomics.store(this.dev, DEV_FREE_PAGE_HINT_CMD_ID, cmdId | 0);
    // WAKE: virtio_notify_config(): bump and notify the config-change counter.
    bump(this.dev, DEV_CONFIG_GEN);
  }

  /** UFFDIO_WRITEPROTECT over guest memory for a new run: forget what was written before it. */
  private armWriteProtect(): void {
    const w = this.written!;
    const serialized = this.hint.uffdWp === 'serialized';
    if (serialized) this.hint.sync!.lock(LOCK_UFFD, SITE_UFFD_ARM);
    try {
      // Plain stores, then the seq-cst store of the armed word: a vCPU that
      // sees armed = 1 sees the cleared record.
      w.fill(0);
      Atomics.store(this.dev, DEV_HINT_WP_ARMED, 1);
    } finally {
      if (serialized) this.hint.sync!.unlock(LOCK_UFFD);
    }
  }

  /** A started run stopped: its duration and size. */
  private runStopped(): void {
    const ns = (performance.now() - this.runStartWallMs) * 1e6; // statistics only
    this.count(HDM_STOPS);
    this.count(HDM_RUN_NS_TOTAL, ns);
    if (ns > this.m[this.mb + HDM_RUN_NS_MAX - METRIC_EXTRA]) this.m[this.mb + HDM_RUN_NS_MAX - METRIC_EXTRA] = ns;
    if (this.hintRunPages > this.m[this.mb + HDM_RUN_PAGES_MAX - METRIC_EXTRA]) this.m[this.mb + HDM_RUN_PAGES_MAX - METRIC_EXTRA] = this.hintRunPages;
  }

  /** Serve the queue; Firecracker then acknowledges a complete run (acknowledge_on_finish). */
  override serve(): Violation | null {
    this.complete = false;
    const v = super.serve();
    if (v !== null) return v;
    if (this.hint.kind === 'firecracker' && this.complete && this.status !== FREE_PAGE_HINT_S_DONE) {
      // acknowledge_on_finish: DONE for any STOP, even one of an older run.
      if (this.hint.ackOnStop) this.done();
      else if (this.status === FREE_PAGE_HINT_S_STOP && this.doneAtMs === Infinity && !this.manual) this.doneAtMs = clockMs() + this.hint.doneAfterMs;
    }
    return null;
  }

  /** Firecracker: the host says stop after --hint-done-after; QEMU: a bitmap sync every --hint-interval. */
  protected override timers(): number {
    if (this.manual) return Infinity;
    const now = clockMs();
    const running = Atomics.load(this.views.header, HDR_RUN_STATE) === RUN_RUNNING;
    const settling = Atomics.load(this.views.header, HDR_RUN_STATE) === RUN_SETTLING;
    return this.hint.kind === 'qemu' ? this.qemuTimers(now, running, settling) : this.firecrackerTimers(now, running, settling);
  }

  private firecrackerTimers(now: number, running: boolean, settling: boolean): number {
    const st = this.status;
    if (st === FREE_PAGE_HINT_S_STOP && now >= this.doneAtMs) this.done();
    if (running) {
      this.nextAtMs ??= now;
      if (now >= this.nextAtMs) {
        this.startRun();
        this.nextAtMs = Math.max(this.nextAtMs + this.hint.intervalMs, now + 1);
      }
    } else if (settling && (st === FREE_PAGE_HINT_S_REQUESTED || st === FREE_PAGE_HINT_S_START)) {
      // The workload ended: the host ends hinting.
      this.done();
    }
    let next = this.doneAtMs - now;
    if (running && this.nextAtMs !== null) next = Math.min(next, this.nextAtMs - now);
    return next;
  }

  private qemuTimers(now: number, running: boolean, settling: boolean): number {
    if (!this.migrationStarted) {
      if (!running) return Infinity;
      // ram_save_setup(): every page is dirty (the bulk stage); the first
      // sync is followed by the first hint run.
      this.migrationStarted = true;
      this.bmap!.fill(1);
      this.count(HDM_MIG_BULK_PAGES, this.nrPages);
      this.startRun();
      this.nextAtMs = now + this.hint.intervalMs;
      return this.hint.intervalMs;
    }
    if (this.migrationDone) return Infinity;
    if (running && now >= this.nextAtMs!) {
      this.bitmapSync(false);
      this.startRun();
      this.nextAtMs = Math.max(this.nextAtMs! + this.hint.intervalMs, now + 1);
    } else if (settling) {
      // The workload ended: the VM stops and the migration completes.
      this.bitmapSync(true);
      this.migrationDone = true;
      this.done();
      return Infinity;
    }
    return running ? this.nextAtMs! - now : Infinity;
  }

  /**
   * migration_bitmap_sync_precopy() with the free page hint notifier around it:
   * STOP the run (PRECOPY_NOTIFY_BEFORE_BITMAP_SYNC), send what the round left
   * in the bitmap, harvest the dirty log. `final`: the VM is stopped, so the
   * harvested pages are sent at once (stop-and-copy).
   */
  private bitmapSync(final: boolean): void {
    this.stopRun();
    const bmap = this.bmap!;
    const mark = this.skippedMark!;
    const dirty = this.dirty!;
    const sent = this.sendBitmap(bmap, mark);
    let harvested = 0;
    for (let p = 0; p < this.nrPages; p++) {
      // KVM_GET_DIRTY_LOG: read and clear each page's mark (seq-cst RMW).
      if (Atomics.exchange(dirty, p, 0) !== 0) {
        bmap[p] = 1;
        harvested++;
      }
    }
    this.round++;
    this.count(HDM_MIG_SYNCS);
    if (tracer !== null) tracer.instant(TK_MIG_SYNC, this.round, sent, harvested);
    if (final) this.count(HDM_MIG_FINAL_PAGES, this.sendBitmap(bmap, mark));
  }

  /** Send every page in the bitmap: count it, and count a page a hint had skipped as re-sent. */
  private sendBitmap(bmap: Uint8Array, mark: Uint8Array): number {
    let sent = 0;
    let resent = 0;
    for (let p = 0; p < this.nrPages; p++) {
      if (bmap[p] === 0) continue;
      bmap[p] = 0;
      sent++;
      if (mark[p] !== 0) {
        mark[p] = 0;
        resent++;
      }
    }
    this.count(HDM_MIG_PAGES_SENT, sent);
    this.count(HDM_MIG_PAGES_RESENT, resent);
    return sent;
  }

  /** get_free_page_hints() / process_free_page_hinting_queue(): one element of the free_page_vq. */
  protected override handleChain(c: Chain): Violation | null {
    for (let k = 0; k < c.count; k++) {
      this.count(DEVM_DESCRIPTORS + METRIC_EXTRA);
      if ((c.flags[k] & VRING_DESC_F_WRITE) === 0) {
        const id = this.readCmdId(c.addr[k], c.len[k]);
        if (id !== null) {
          if (this.hint.kind === 'qemu') this.qemuCmdId(id);
          else this.firecrackerCmdId(id);
        }
        continue;
      }
      if (!this.rangeIsCurrent()) {
        // An older run's range, after STOP, after DONE, or while a new id is pending.
        this.count(HDM_RANGES_IGNORED);
        continue;
      }
      const v = this.hintRange(c.addr[k], c.len[k]);
      if (v !== null) return v;
    }
    return null;
  }

  /** A device-readable buffer: the le32 command id the driver echoes (start) or STOP. Null: bad input (counted). */
  private readCmdId(addr: number, len: number): number | null {
    if (len < 4) {
      this.bad(BAD_HINT_LEN);
      return null;
    }
    if (addr % 4 !== 0) {
      this.bad(BAD_UNALIGNED);
      return null;
    }
    if (addr >= this.guestBytes || addr + 4 > this.guestBytes) {
      this.bad(BAD_ADDR_RANGE);
      return null;
    }
    return this.mem.i32[addr / 4] >>> 0;
  }

  /** QEMU get_free_page_hints(): REQUESTED + current id starts; any id while START stops. */
  private qemuCmdId(id: number): void {
    const st = this.status;
    const current = Atomics.load(this.dev, DEV_HINT_RUN_ID) >>> 0;
    if (st === FREE_PAGE_HINT_S_REQUESTED && id === current) {
      this.setStatus(FREE_PAGE_HINT_S_START);
      this.count(HDM_STARTS);
    } else if (st === FREE_PAGE_HINT_S_START) {
      // "Stop the optimization only when it has started": any id does it.
      this.setStatus(FREE_PAGE_HINT_S_STOP);
      this.runStopped();
      if (id !== VIRTIO_BALLOON_CMD_ID_STOP) this.count(HDM_STOPS_OTHER_ID);
      if (tracer !== null) tracer.instant(TK_HINT_CMD, 2, current);
    } else {
      this.count(HDM_STALE_IDS);
    }
  }

  /** Firecracker: guest_cmd = id; STOP (or an unexpected DONE) completes the run. */
  private firecrackerCmdId(id: number): void {
    this.guestCmd = id;
    const st = this.status;
    const current = Atomics.load(this.dev, DEV_HINT_RUN_ID) >>> 0;
    if (id === VIRTIO_BALLOON_CMD_ID_STOP || id === VIRTIO_BALLOON_CMD_ID_DONE) {
      this.complete = true;
      if (st === FREE_PAGE_HINT_S_START) {
        this.setStatus(FREE_PAGE_HINT_S_STOP);
        this.runStopped();
        if (tracer !== null) tracer.instant(TK_HINT_CMD, 2, current);
      } else this.count(HDM_COMPLETE_STALE);
      return;
    }
    this.complete = false;
    if (st === FREE_PAGE_HINT_S_REQUESTED && id === current) {
      this.setStatus(FREE_PAGE_HINT_S_START);
      this.count(HDM_STARTS);
    } else this.count(HDM_STALE_IDS);
  }

  /** Is a range acted on now? QEMU: only while START. Firecracker: host_cmd is a run id and guest_cmd equals it. */
  private rangeIsCurrent(): boolean {
    const st = this.status;
    if (this.hint.kind === 'qemu') return st === FREE_PAGE_HINT_S_START;
    if (st === FREE_PAGE_HINT_S_DONE || st === FREE_PAGE_HINT_S_INIT) return false;
    return this.guestCmd === Atomics.load(this.dev, DEV_HINT_RUN_ID) >>> 0;
  }

  /** One free range of a started run. */
  private hintRange(addr: number, len: number): Violation | null {
    if (!this.validRange(addr, len)) return null;
    const pfn = addr / PAGE_SIZE;
    const count = len >>> PAGE_SHIFT;
    const bs = this.hint.blockState;
    if (bs !== undefined) {
      const s = bs(pfn);
      if (s !== BLOCK_BALLOON) this.count(HDM_RANGES_GUEST_FREED);
      if (s === BLOCK_ALLOCATED) this.count(HDM_RANGES_GUEST_REUSED);
    }
    if (this.hint.kind === 'qemu') return this.migrationHint(pfn, count);
    if (this.written !== null) return this.uffdDiscard(pfn, count);
    // discard_range(): MADV_DONTNEED. The device-allocated-range oracle runs first.
    const before = this.actedBytes();
    const v = this.checkRange(pfn, count);
    if (v !== null) return v;
    this.actOnRange(pfn, count);
    this.counted((this.actedBytes() - before) >>> PAGE_SHIFT);
    return null;
  }

  private actedBytes(): number {
    const b = this.mb;
    return this.m[b + DEVM_BYTES_DISCARDED] + this.m[b + DEVM_BYTES_POISON_SKIPPED] + this.m[b + DEVM_BYTES_KEPT];
  }

  /**
   * Firecracker + UFFD write protection: (1) the write-tracking check: which
   * pages of the range were written since the run started; (2) discard the
   * others. 'split': two steps, the device may be preempted in between (a
   * scheduling point), while a vCPU's write fault marks a page the check
   * already passed. 'serialized': both under the UFFD handler's lock, which
   * every write fault takes too.
   */
  private uffdDiscard(pfn: number, count: number): Violation | null {
    const w = this.written!;
    const serialized = this.hint.uffdWp === 'serialized';
    if (serialized) this.hint.sync!.lock(LOCK_UFFD, SITE_UFFD_DISCARD);
    try {
      // (1) The check: runs of unwritten pages (Atomics.load pairs with the vCPU's fault store).
      let runs = 0;
      let skipped = 0;
      let start = -1;
      for (let p = pfn; p <= pfn + count; p++) {
        const free = p < pfn + count && Atomics.load(w, p) === 0;
        if (free && start < 0) start = p;
        else if (!free && start >= 0) {
          if (runs === this.runsPfn.length) throw new Error('hint device: a range split into more runs than its pages');
          this.runsPfn[runs] = start;
          this.runsLen[runs++] = p - start;
          start = -1;
        }
        if (!free && p < pfn + count) skipped++;
      }
      this.count(HDM_WP_CHECKS);
      if (skipped > 0) {
        this.count(HDM_WP_SKIPPED_RANGES);
        this.count(HDM_WP_SKIPPED_PAGES, skipped);
      }
      if (tracer !== null) tracer.instant(TK_WP_CHECK, pfn, count, skipped);
      // The device thread between its two steps: under --sched another
      // thread may run here ('split' only: serialized holds the lock, and a
      // write fault would wait for it).
      if (!serialized) schedPoint(SP_HINT_STEP, pfn);
      // (2) The discard of what the check passed; the oracle first.
      const before = this.actedBytes();
      for (let i = 0; i < runs; i++) {
        const check = this.hint.uffdDiscardCheck;
        if (check !== undefined) {
          this.count(DEVM_RANGE_CHECKS + METRIC_EXTRA); // the oracle ran (device-allocated-range's count)
          const v = check(this.runsPfn[i], this.runsLen[i]);
          if (v !== null) return v;
        }
        this.actOnRange(this.runsPfn[i], this.runsLen[i]);
      }
      this.counted((this.actedBytes() - before) >>> PAGE_SHIFT);
      return null;
    } finally {
      if (serialized) this.hint.sync!.unlock(LOCK_UFFD);
    }
  }

  /** qemu_guest_free_page_hint(): clear the range from the migration bitmap (the oracle checks it first). */
  private migrationHint(pfn: number, count: number): Violation | null {
    const bmap = this.bmap!;
    const mark = this.skippedMark!;
    const check = this.hint.migrationCheck;
    if (check !== undefined) {
      this.count(HDM_MIG_CHECKS, count);
      const v = check.hintClears(pfn, count, bmap);
      if (v !== null) return v;
    }
    let skipped = 0;
    for (let p = pfn; p < pfn + count; p++) {
      if (bmap[p] === 0) continue;
      bmap[p] = 0;
      mark[p] = 1;
      skipped++;
    }
    this.count(HDM_MIG_PAGES_SKIPPED, skipped);
    this.counted(count);
    return null;
  }

  private counted(pages: number): void {
    this.count(HDM_RANGES);
    this.count(HDM_PAGES_HINTED, pages);
    this.hintRunPages += pages;
  }
}

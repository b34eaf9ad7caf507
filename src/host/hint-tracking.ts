// The host's tracking of guest writes for free page hint, taken on the vCPU
// that writes (the hinttrack region, HTM_* maps in src/shm/layout.ts):
//
//  - userfaultfd write protection (Firecracker's docs/ballooning.md, "one
//    way to safely use this feature when using UFFD"): when a hint run starts
//    the host write-protects guest memory (UFFDIO_WRITEPROTECT) and clears
//    its record of written pages; the first write of a vCPU to a protected
//    page faults, the UFFD handler notes the page as written and lifts the
//    protection, and the hint device skips written pages. The fault is taken
//    on the writing vCPU (handle_userfault: the vCPU thread sleeps until the
//    handler resolves it), modelled as the vCPU doing the handler's
//    bookkeeping itself. 'serialized': the handler resolves faults and the
//    device's check+discard of a range one at a time (LOCK_UFFD, 'uffd.lock'),
//    so a fault that comes during a discard waits for it. 'split': nothing
//    orders them (the check and the discard are two steps of the device).
//  - KVM dirty logging (QEMU migration, KVM_GET_DIRTY_LOG /
//    migration_bitmap_sync): a vCPU write marks the page dirty; the migration
//    thread harvests the log into its bitmap at every bitmap sync.
//
// Hooks: Zone.pagesWritten (Cpu.touchBlock calls it before it writes a
// block's pages), installed by src/sim/modes/hint.ts.

import type { Sync } from '../locking/sync.js';
import { DEV_HINT_WP_ARMED, HTM_DIRTY_LOG, HTM_UFFD_WRITTEN, LOCK_UFFD, METRIC_EXTRA, metricBase, type Views } from '../shm/layout.js';
import { SITE_UFFD_FAULT } from '../locking/sites.js';
import { TK_WP_FAULT, tracer } from '../locking/trace.js';

/** vCPU metric fields (Float64, the CPU's slot): userfaultfd write-protect faults taken, and the time spent in them. */
export const CM_UFFD_WP_FAULTS = METRIC_EXTRA + 16;
export const CM_UFFD_WP_NS = METRIC_EXTRA + 17;

/** One map of the hinttrack region (HTM_*): a byte per page. */
export function hintTrackMap(views: Views, map: number): Uint8Array {
  const pages = views.layout.pages;
  if (views.hintTrack.length < (map + 1) * pages) throw new Error('hint tracking: the layout has no hinttrack region (hint mode with --hint-device qemu or --hint-uffd-wp only)');
  return views.hintTrack.subarray(map * pages, (map + 1) * pages);
}

export interface VcpuTrackingOptions {
  /** Firecracker + UFFD write protection ('off': none). */
  uffdWp: 'off' | 'split' | 'serialized';
  /** QEMU migration: KVM dirty logging. */
  dirtyLog: boolean;
  sync: Sync;
  thread: number;
}

/** The vCPU's side: called before a CPU writes pages [pfn, pfn + count). Null when nothing is tracked. */
export function makeVcpuWriteTracking(views: Views, o: VcpuTrackingOptions): ((pfn: number, count: number) => void) | null {
  if (o.uffdWp === 'off' && !o.dirtyLog) return null;
  const dirty = o.dirtyLog ? hintTrackMap(views, HTM_DIRTY_LOG) : null;
  const written = o.uffdWp !== 'off' ? hintTrackMap(views, HTM_UFFD_WRITTEN) : null;
  const dev = views.device;
  const m = views.metrics;
  const mb = metricBase(o.thread);
  const serialized = o.uffdWp === 'serialized';
  return (pfn, count) => {
    const end = pfn + count;
    if (dirty !== null) {
      // KVM's dirty log: one mark per written page. Seq-cst stores: a
      // harvest (Atomics.exchange) that misses this write's mark runs before
      // it, and the next harvest sees it.
      for (let p = pfn; p < end; p++) Atomics.store(dirty, p, 1);
    }
    if (written === null || Atomics.load(dev, DEV_HINT_WP_ARMED) === 0) return;
    // Which pages are still write-protected? Those fault once each.
    let first = -1;
    for (let p = pfn; p < end; p++) {
      if (Atomics.load(written, p) === 0) {
        first = p;
        break;
      }
    }
    if (first < 0) return;
    const t0 = performance.now(); // statistics only
    // handle_userfault(): the vCPU sleeps until the handler has resolved the
    // fault. Serialized: the handler is busy while the device checks and
    // discards a range, so the fault waits for the lock.
    if (serialized) o.sync.lock(LOCK_UFFD, SITE_UFFD_FAULT);
    let faults = 0;
    try {
      for (let p = first; p < end; p++) {
        // PUBLISH: the device's check reads this byte (Atomics.load) before it discards.
        if (Atomics.load(written, p) === 0) {
          Atomics.store(written, p, 1);
          faults++;
        }
      }
    } finally {
      if (serialized) o.sync.unlock(LOCK_UFFD);
    }
    m[mb + CM_UFFD_WP_FAULTS] += faults;
    m[mb + CM_UFFD_WP_NS] += (performance.now() - t0) * 1e6;
    if (tracer !== null) tracer.instant(TK_WP_FAULT, first, faults);
  };
}

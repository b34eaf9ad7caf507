// The hint-cmd-id oracle (docs/DESIGN.md §6): the free page hint driver
// never sends a free range after it has seen a newer command id.
//
// Upstream send_free_pages() (drivers/virtio/virtio_balloon.c) checks,
// before every block, that the id in config space still equals
// cmd_id_active, and stops sending as soon as it differs ("If the device
// asks to stop, the driver won't send any more free pages"): a new run, a
// STOP or a DONE. A range sent after that belongs to a run the host has
// moved on from (QEMU ignores it outside START, Firecracker outside the
// current run), so it is wasted work at best and, with a device that does
// act on it, a discard the host no longer asked for.
//
// The oracle runs on the driver's thread and is told two things by the
// driver (src/guest/free-page-hint.ts CmdIdObserver): every value it reads
// from config space, and every chain it publishes together with
// cmd_id_active, the run the driver is sending for (the id its START buffer
// carried). It reads each published chain back from the ring itself: a
// device-writable descriptor is a free range. A range published while the
// driver, since cmd_id_active last changed, has read a different id is a
// violation naming both ids and the range. Ranges checked are counted (the
// oracle's runs).

import { OracleViolation } from '../base/errors.js';
import { PAGE_SHIFT, PAGE_SIZE, metricBase, type Views } from '../shm/layout.js';
import { VRING_DESC_F_NEXT, VRING_DESC_F_WRITE, type VringMem } from '../virtio/ring.js';
import type { CmdIdObserver } from '../guest/free-page-hint.js';
import { METRIC_HOSTILE_SKIPPED } from './hostile.js';

/** Ranges the hint-cmd-id oracle checked, in the driver thread's metric slot (after the hostile guest's fields; hint mode has no hostile guest). */
export const METRIC_HINT_ID_CHECKS = METRIC_HOSTILE_SKIPPED + 1;

export class HintCmdIdCheck implements CmdIdObserver {
  private readonly m: Float64Array;
  private readonly slot: number;
  /** cmd_id_active as of the last event (-1: none yet). */
  private active = -1;
  /** The first id the driver read that differs from `active` since it became active (-1: none). */
  private newer = -1;

  constructor(
    readonly views: Views,
    readonly thread: number,
  ) {
    this.m = views.metrics;
    this.slot = metricBase(thread) + METRIC_HINT_ID_CHECKS;
  }

  /** Ranges checked so far. */
  get checks(): number {
    return this.m[this.slot];
  }

  configRead(id: number): void {
    // Reads before the driver's first START (cmd_id_active unset) say nothing.
    if (this.active >= 0 && id !== this.active && this.newer < 0) this.newer = id;
  }

  published(ring: VringMem, head: number, cmdIdActive: number): void {
    if (cmdIdActive !== this.active) {
      // A new run: what was read before it belongs to the old one.
      this.active = cmdIdActive;
      this.newer = -1;
    }
    // Walk the chain as published (bounded by the queue size).
    let i = head;
    for (let k = 0; k < ring.num && i < ring.num; k++) {
      const flags = ring.descFlags(i);
      if ((flags & VRING_DESC_F_WRITE) !== 0) {
        this.m[this.slot]++;
        if (this.newer >= 0) {
          const addr = ring.descAddr(i);
          throw new OracleViolation({
            oracle: 'hint-cmd-id',
            pfn: Math.floor(addr / PAGE_SIZE),
            message: `the driver sent the free range at pfn ${Math.floor(addr / PAGE_SIZE)} (${ring.descLen(i) >>> PAGE_SHIFT} pages) for cmd id ${this.active} after it had read cmd id ${this.newer} from config space (send_free_pages() stops at the first id that differs from cmd_id_active)`,
          });
        }
      }
      if ((flags & VRING_DESC_F_NEXT) === 0) break;
      i = ring.descNext(i);
    }
  }
}

// The migration oracle (--hinting hint --hint-device qemu): does free page
// hinting ever make live migration lose a page?
//
// What it checks, precisely: QEMU's pre-copy sends every page whose bit is
// set in the migration bitmap; a write after a page was sent marks it in
// KVM's dirty log, and the next bitmap sync moves the mark into the bitmap
// (src/host/free-page-hint-device.ts). A free page hint CLEARS bits. The one
// way a hint can lose data is to clear the bit of a page that holds data a
// CPU wrote before the round's sync (so the bit is that write's only record:
// the dirty log was harvested) and that the CPU still holds. So at every page
// a hint clears, the oracle checks: the page is in the bitmap, holds live
// data (src/check/live-data.ts: written by the CPU that holds it, not freed
// since), and the dirty log has no newer write: then the destination would
// never get that data, a `migration` violation. A page written after its
// hint is in the dirty log, so it is re-sent (counted by the device:
// pagesResent); nothing is lost.

import type { Violation } from '../base/errors.js';
import type { MigrationCheck } from '../host/free-page-hint-device.js';
import { hintTrackMap } from '../host/hint-tracking.js';
import { HTM_DIRTY_LOG, type Views } from '../shm/layout.js';
import { allocatedBlockOf, liveData } from './live-data.js';

export function migrationCheck(views: Views): MigrationCheck {
  const live = liveData(views).map;
  const dirty = hintTrackMap(views, HTM_DIRTY_LOG);
  const pages = views.pages;
  return {
    hintClears(pfn: number, count: number, bmap: Uint8Array): Violation | null {
      for (let p = pfn; p < pfn + count; p++) {
        // Order: live first, then the dirty log. A CPU marks dirty before it
        // writes and marks live after (seq-cst stores), so live seen set
        // means its dirty mark is seen too, unless a sync already harvested
        // it into the bitmap.
        if (bmap[p] === 0 || Atomics.load(live, p) === 0 || Atomics.load(dirty, p) !== 0) continue;
        const b = allocatedBlockOf(pages, p);
        return {
          oracle: 'migration',
          message: `a free page hint of pfn ${pfn}..${pfn + count - 1} cleared pfn ${p} from the migration bitmap, but the page holds data ${b ? `cpu ${b.owner}` : 'a CPU'} wrote before this round's bitmap sync and still holds, with no newer write in the dirty log: the destination would never receive it`,
          pfn: p,
          ...(b ? { cpu: b.owner } : {}),
        };
      }
      return null;
    },
  };
}

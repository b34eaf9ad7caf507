// The device-allocated-range oracle: at discard time the host device checks,
// in the struct page array (the oracle's shared state, not the driver's
// word), that no page of a range it is told to discard is allocated. A block
// head inside the range, or a head before it whose order reaches into it, is
// a violation. The device runs it through its `rangeCheck` hook
// (src/host/balloon-device.ts DeviceOptions), installed by the simulation;
// the host itself reads no guest struct page.

import type { Violation } from '../base/errors.js';
import { MAX_ORDER, PAGE_WORDS, PG_FLAGS } from '../shm/layout.js';
import { ORDER_SHIFT, PG_ALLOCATED } from '../mm/page.js';
import type { RangeCheck } from '../host/balloon-device.js';


export function deviceRangeCheck(pages: Int32Array): RangeCheck {
  return (pfn, count) => {
    for (let p = pfn; p < pfn + count; p++) {
      if ((pages[p * PAGE_WORDS + PG_FLAGS] & PG_ALLOCATED) !== 0) return allocatedViolation(p, pages[p * PAGE_WORDS + PG_FLAGS] >>> ORDER_SHIFT, pfn, count);
    }
    for (let o = 1; o < MAX_ORDER; o++) {
      const h = pfn & ~((1 << o) - 1);
      if (h === pfn) continue;
      const f = pages[h * PAGE_WORDS + PG_FLAGS];
      if ((f & PG_ALLOCATED) !== 0 && h + (1 << (f >>> ORDER_SHIFT)) > pfn) return allocatedViolation(h, f >>> ORDER_SHIFT, pfn, count);
    }
    return null;
  };
}

function allocatedViolation(head: number, order: number, pfn: number, count: number): Violation {
  return {
    oracle: 'device-allocated-range',
    message: `device was asked to discard pfn ${pfn}..${pfn + count - 1}, but the allocated order-${order} block at pfn ${head} overlaps it`,
    pfn: Math.max(head, pfn),
  };
}

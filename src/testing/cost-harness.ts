// Test harness (test/host-costs.test.ts, thin entry workers/testing/cost-probe.ts):
// the host cost model charges the thread a real host charges. One shared
// buffer; a thread per guest CPU and one for the device, each with its OS
// thread id published so the test reads its schedstat (src/sim/cputime.ts)
// between steps while the thread sleeps on its message port.
//
// Steps (each thread does its part, then reports done):
//   refault    CPU `target` allocates and touches `pages` order-0 pages whose
//              host backing was discarded (the real Cpu.allocBlock and
//              Cpu.touchBlock): each touch is a refault on that thread.
//   discard    the device thread discards `ranges` resident ranges of one page
//              (the real GuestMemory.discard): each is a madvise on its thread
//              and a remote TLB flush for every CPU.
//   alloc      every CPU allocates and frees one page (Cpu.allocBlock pays
//              the TLB flushes it has not paid yet).
// Not used by the simulator.

import { DEFAULT_ZONE_OPTIONS, Zone } from '../mm/buddy.js';
import { GuestMemory } from '../mm/memory.js';
import { type HostCosts, hostCostModel, setHostCosts } from '../mm/host-costs.js';
import { Sync } from '../locking/sync.js';
import { type LayoutParams, METRIC_REFAULTS, openShared } from '../shm/layout.js';
import { ownTid } from '../sim/cputime.js';
import { DEFAULT_CONFIG } from '../sim/config.js';
import { Cpu } from '../sim/workload.js';

export interface CostProbeData {
  sab: SharedArrayBuffer;
  params: LayoutParams;
  role: 'cpu' | 'device';
  index: number;
  costs: HostCosts;
  /** refault: pages CPU `target` faults back in. */
  pages: number;
  target: number;
  /** discard: first pfn of the ranges the device discards, and how many (one page each, every other page). */
  discardFrom: number;
  ranges: number;
}

export type CostStep = 'refault' | 'discard' | 'alloc';

/** One probe thread: build the role's objects with the cost model set, then run steps as they come. */
export function costProbe(d: CostProbeData): { tid: number; step(s: CostStep): { refaults: number; dropped: number } } {
  setHostCosts(hostCostModel(d.costs, false));
  const views = openShared(d.sab, d.params);
  const tid = ownTid();
  if (d.role === 'device') {
    const mem = new GuestMemory(views);
    return {
      tid,
      step: (s) => {
        let dropped = 0;
        if (s === 'discard') for (let k = 0; k < d.ranges; k++) dropped += mem.discard(d.discardFrom + 2 * k, 1);
        return { refaults: 0, dropped };
      },
    };
  }
  const zone = new Zone(views, new Sync(views, d.index, { spin: 10, waitTimeoutMs: 5000 }), { ...DEFAULT_ZONE_OPTIONS, pcp: false });
  const cpu = new Cpu(views, zone, d.index, { ...DEFAULT_CONFIG, cpus: d.params.cpus }, 1);
  return {
    tid,
    step: (s) => {
      let refaults = 0;
      if (s === 'refault' && d.index === d.target) {
        for (let i = 0; i < d.pages; i++) {
          const pfn = cpu.allocBlock(0);
          if (pfn < 0) throw new Error('cost probe: allocation failed');
          const before = cpu.m[cpu.mb + METRIC_REFAULTS];
          cpu.touchBlock(pfn, 0);
          refaults += cpu.m[cpu.mb + METRIC_REFAULTS] - before;
          cpu.held.push(pfn, 0, 0);
        }
      }
      if (s === 'alloc') {
        const pfn = cpu.allocBlock(0);
        if (pfn >= 0) zone.free(pfn, 0, d.index);
      }
      return { refaults, dropped: 0 };
    },
  };
}

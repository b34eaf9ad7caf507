// Driver thread and device thread (the real device role) over one shared
// buffer: 100k chains, nothing lost, duplicated or reordered. Needs the
// compiled worker entry (dist/workers/testing/ring-driver.js): `npx tsc -p .` first.

import { describe, expect, it } from 'vitest';
import { readDeviceCounters } from '../src/host/balloon-device.js';
import { DEV_STATUS } from '../src/shm/layout.js';
import type { RoleResult } from '../src/sim/roles.js';
import { type ExchangeResult, harnessConfig, harnessShared, harnessStop, runThread } from '../src/testing/vring-harness.js';

const CHAINS = 100_000;

describe('split ring across threads', () => {
  for (const [eventIdx, queueSize] of [[false, 128], [true, 64]] as const) {
    it(`a driver thread and the device thread exchange ${CHAINS / 1000}k chains in order, none lost or duplicated (event-idx ${eventIdx ? 'on' : 'off'}, queue ${queueSize})`, async () => {
      const config = harnessConfig({ eventIdx, queueSize, spin: 2000, waitTimeoutMs: 10_000 });
      const views = harnessShared(config);
      const device = runThread<RoleResult>({ mode: 'device', sab: views.sab, config }, 30_000);
      let ex: ExchangeResult;
      try {
        ex = await runThread<ExchangeResult>({ mode: 'exchange', sab: views.sab, config, chains: CHAINS, timeoutMs: 20_000 }, 30_000);
      } finally {
        harnessStop(views);
      }
      const dev = await device;
      expect(ex.errors).toEqual([]);
      expect(ex.sent).toBe(CHAINS);
      expect(ex.received).toBe(CHAINS);
      expect(dev.violations).toEqual([]);
      expect(dev.error).toBeUndefined();
      const c = readDeviceCounters(views, 'reporting', config.vqNumbering);
      expect(c.chains).toBe(CHAINS);
      expect(c.usedPushed).toBe(CHAINS);
      // 1..4 descriptors per chain, cycling: 2.5 on average.
      expect(c.descriptors).toBe(CHAINS * 2.5);
      expect(c.bytesDiscarded).toBe(CHAINS * 2.5 * 4096);
      expect(c.badTotal).toBe(0);
      expect(Atomics.load(views.device, DEV_STATUS)).toBe(0); // the device role left its loop
    });
  }
});

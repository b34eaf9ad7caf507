// Shared set-up for ring and device tests: a small shared buffer with an
// initialised zone, a reset device with negotiated features, a driver queue
// and a device, all in one thread.

import { Zone } from '../src/mm/buddy.js';
import { deviceRangeCheck } from '../src/check/device-range.js';
import { BalloonDevice, type DeviceOptions, deviceInit, hostFillByte } from '../src/host/balloon-device.js';
import { DEV_HOST_FILL, DEV_VQ_INDEX, createShared, threadIds, type Views } from '../src/shm/layout.js';
import { GuestMemory } from '../src/mm/memory.js';
import { Sync } from '../src/locking/sync.js';
import { VringMem, VringVirtqueue } from '../src/virtio/ring.js';
import { type VqNumbering, negotiateFeatures } from '../src/virtio/balloon-abi.js';

export interface FixtureOptions {
  queueSize?: number;
  ringAlign?: number;
  memoryBytes?: number;
  eventIdx?: boolean;
  vqNumbering?: VqNumbering;
  driverFeatures?: number;
  poisonVal?: number;
  device?: Partial<DeviceOptions>;
}

export interface Fixture {
  views: Views;
  zone: Zone;
  mem: GuestMemory;
  ring: VringMem;
  driver: VringVirtqueue;
  device: BalloonDevice;
  negotiated: number;
}

export function ringFixture(o: FixtureOptions = {}): Fixture {
  const params = { cpus: 1, memoryBytes: o.memoryBytes ?? 16 * 2 ** 20, queueSize: o.queueSize ?? 8, ringAlign: o.ringAlign ?? 4 };
  const views = createShared(params);
  const zone = new Zone(views, new Sync(views, threadIds(1).main));
  zone.init();
  deviceInit(views, { eventIdx: o.eventIdx ?? false, vqNumbering: o.vqNumbering ?? 'linux' });
  const negotiated = negotiateFeatures(views, o.driverFeatures ?? 0xffffffff, o.vqNumbering ?? 'linux', o.poisonVal ?? 0);
  // What the host's fresh pages hold, as the run's handshake sets it (src/sim/modes/common.ts).
  views.device[DEV_HOST_FILL] = hostFillByte(views, o.device?.poisonPolicy ?? 'skip');
  const ring = VringMem.fromViews(views);
  const driver = new VringVirtqueue(ring, views.device, { eventIdx: o.eventIdx ?? false, queueIndex: views.device[DEV_VQ_INDEX] });
  const device = new BalloonDevice(views, { queueKind: 'reporting', poisonPolicy: 'skip', spin: 0, sliceMs: 5, rangeCheck: deviceRangeCheck(views.pages), ...o.device });
  return { views, zone, mem: new GuestMemory(views), ring, driver, device, negotiated };
}

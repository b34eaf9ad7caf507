// What the modes with a device share: the virtio handshake before any role
// starts, the device's options, and the mode-independent parts of a mode.

import { driverDeclaresPoison, injected } from '../../check/inject.js';
import { deviceRangeCheck } from '../../check/device-range.js';
import { type DeviceOptions, type QueueKind, deviceInit, hostFillByte, keepReason } from '../../host/balloon-device.js';
import { DEV_FEATURES_OFFERED, DEV_HOST_FILL, DEV_POISON_VAL, DEV_VQ_INDEX, METRIC_FAULTS, metricBase, type Views } from '../../shm/layout.js';
import { FaultDice } from '../../virtio/device-faults.js';
import type { BalloonDriverOptions } from '../../guest/balloon-driver.js';
import { HostileGuest } from '../../check/hostile.js';
import { VIRTIO_BALLOON_F_PAGE_POISON, bit, negotiateFeatures } from '../../virtio/balloon-abi.js';
import type { Config } from '../config.js';
import type { RoleContext } from './mode.js';

export interface HandshakeOptions {
  /** The device's offer, changed by the mode (hint: FREE_PAGE_HINT instead of REPORTING). */
  offer?: (offered: number) => number;
  /** After negotiation, the queue index the mode's queue has (hint: the free_page_vq's). */
  queueIndex?: (views: Views, negotiated: number) => number;
}

/**
 * Device reset and feature negotiation before any role runs (DRIVER_OK):
 * the device offers, the driver accepts a subset, the driver writes
 * poison_val (virtballoon_probe), the queue gets its index.
 */
export function setUpBalloonDevice(views: Views, c: Config, o: HandshakeOptions = {}): void {
  deviceInit(views, { eventIdx: c.eventIdx, vqNumbering: c.vqNumbering });
  let offered = views.device[DEV_FEATURES_OFFERED] >>> 0;
  if (!c.pagePoisonFeature) offered &= ~bit(VIRTIO_BALLOON_F_PAGE_POISON);
  if (o.offer) offered = o.offer(offered);
  views.device[DEV_FEATURES_OFFERED] = offered | 0;
  // virtballoon_validate(): the driver only keeps PAGE_POISON when it
  // poisons freed pages; poison_val is the pattern in every byte.
  const poison = driverDeclaresPoison(c);
  const driverFeatures = poison ? 0xffffffff : 0xffffffff & ~bit(VIRTIO_BALLOON_F_PAGE_POISON);
  const negotiated = negotiateFeatures(views, driverFeatures, c.vqNumbering, poison ? Math.imul(c.poisonByte, 0x01010101) : 0);
  if (o.queueIndex) views.device[DEV_VQ_INDEX] = o.queueIndex(views, negotiated);
  // What a fresh host page holds from now on (GuestMemory reads it when built).
  views.device[DEV_HOST_FILL] = hostFillByte(views, c.poisonPolicy);
}

/** The device's options for a run of this mode. */
export function deviceOptions(ctx: RoleContext, queueKind: QueueKind): DeviceOptions {
  const c = ctx.config;
  // BALLOON_SIM_SELFTEST=no-range-check (a harness self-test, not a feature):
  // the device runs without its oracle, so a test can show the stamp oracle
  // alone still catches a discard of a page in use (the host's zero page).
  const rangeCheck = process.env.BALLOON_SIM_SELFTEST === 'no-range-check' ? undefined : deviceRangeCheck(ctx.views.pages);
  return { queueKind, poisonPolicy: c.poisonPolicy, spin: c.spin, sliceMs: 50, doubleUsed: injected(c, 'device-double-used'), discard: c.discard, ...(rangeCheck ? { rangeCheck } : {}), faults: faultDice(ctx, 'device'), selfTestResetKeepsQueue: process.env.BALLOON_SIM_SELFTEST === 'fault-reset-keep-queue', selfTestZeroLen: process.env.BALLOON_SIM_SELFTEST === 'device-zero-len', selfTestPeekHead: process.env.BALLOON_SIM_SELFTEST === 'ring-peek-head' };
}

/** --device-faults: one side's dice, counting what acted in this thread's slot (undefined: no faults). */
export function faultDice(ctx: RoleContext, side: 'driver' | 'device'): FaultDice | undefined {
  const f = ctx.config.deviceFaults ?? [];
  return f.length === 0 ? undefined : new FaultDice(f, ctx.config.seed, side, ctx.views.metrics, metricBase(ctx.thread) + METRIC_FAULTS);
}

/**
 * What the reporting driver gets besides its mode's options: the driver
 * side's fault dice and the hostile guest (--hostile); `release` frees the
 * hostile's arena once the driver stops.
 */
export function driverExtras(ctx: RoleContext): { opts: Partial<BalloonDriverOptions>; release: () => void } {
  const c = ctx.config;
  const hostile =
    c.hostile > 0 && (c.hinting === 'reporting' || c.hinting === 'aeration' || c.hinting === 'naive')
      ? new HostileGuest(ctx.views, ctx.zone, { rate: c.hostile, queueKind: c.hinting === 'aeration' ? 'aeration' : 'reporting', seed: c.seed, thread: ctx.thread, waitTimeoutMs: c.waitTimeoutMs, spin: c.spin, serving: ctx.serving, discards: keepReason(ctx.views.device[DEV_POISON_VAL], c) === null })
      : null;
  return {
    opts: { faults: faultDice(ctx, 'driver'), selfTestTrustIrq: process.env.BALLOON_SIM_SELFTEST === 'fault-trust-irq', ...(hostile ? { beforeReport: hostile.beforeReport } : {}), ...ringOptions(c) },
    release: () => hostile?.release(),
  };
}

/** The driver ring's options: --desc-policy, --report-inflight, and the ring publish-order self-test. */
export function ringOptions(c: Config): Pick<BalloonDriverOptions, 'descPolicy' | 'inflight' | 'selfTestIdxBeforeEntry'> {
  return { descPolicy: c.descPolicy ?? 'lifo', inflight: c.reportInflight ?? 1, selfTestIdxBeforeEntry: process.env.BALLOON_SIM_SELFTEST === 'ring-idx-before-entry' };
}

/** The scheduler cannot run these modes yet (naive: its loop waits on wall-clock slices). */
export const notScheduled = (c: Config): string | null => (c.sched !== 'off' ? `--sched: ${c.sched} supports --hinting off, reporting, aeration and hint; not ${c.hinting}` : null);

/** --no-discard belongs to the page reporting modes. */
export const noDiscardRefused = (c: Config): string | null => (!c.discard ? `--no-discard: applies to --hinting reporting and aeration (hint has --hint-device); not ${c.hinting}` : null);

// --hinting naive: the loop the aeration v1 review (Duyck, 2019) warns
// about: allocate one max-order block, send it, wait, free it, repeat. It
// uses the reporting queue and the reporting device.

import { NaiveHinter } from '../../guest/naive.js';
import { BalloonDevice } from '../../host/balloon-device.js';
import { deviceOptions, driverExtras, noDiscardRefused, notScheduled, setUpBalloonDevice } from './common.js';
import { balloonSettle, balloonSettled } from './free-page-hint.js';
import { hintStats } from './hint.js';
import type { HintingMode } from './mode.js';

export const naive: HintingMode = {
  name: 'naive',
  summary: 'the loop the aeration review warns about: alloc one block, send it, wait, free it, repeat (the same block again and again)',
  hasDevice: true,
  defaultReportDelayMs: null,
  queueKind: 'reporting',
  configError: (c) => notScheduled(c) ?? noDiscardRefused(c),
  setUpDevice: (views, c) => setUpBalloonDevice(views, c),
  enabled: () => ({ allowed: true, why: '' }),
  installCpuHooks: () => undefined,
  runReporter(ctx) {
    const c = ctx.config;
    const extras = driverExtras(ctx);
    new NaiveHinter(ctx.views, ctx.zone, ctx.sync, ctx.thread, { ackTimeoutMs: c.waitTimeoutMs, spin: c.spin, serving: ctx.serving, poisonByte: c.poison ? c.poisonByte : null }, extras.opts, extras.release).run();
    return [];
  },
  makeDevice: (ctx) => new BalloonDevice(ctx.views, deviceOptions(ctx, 'reporting')),
  hintingQuiet: balloonSettled,
  liveness: () => null,
  settle: balloonSettle,
  stats: (views, c, notes) => hintStats(views, c, notes, true),
};

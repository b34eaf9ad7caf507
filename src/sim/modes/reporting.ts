// --hinting reporting: upstream free page reporting (mm/page_reporting.c,
// Linux 5.7+; virtio_balloon's REPORTING queue): a chain of device-writable
// descriptors, one per isolated free block.

import { setUpBalloonDevice } from './common.js';
import type { HintingMode } from './mode.js';
import { installFreeNotifier, makeReportingDevice, reporterEnabled, reporterQuiet, reportingSettle, reportingStats, requestLiveness, runPageReporter } from './page-reporting.js';

export const reporting: HintingMode = {
  name: 'reporting',
  summary: 'upstream free page reporting (mm/page_reporting.c, Linux 5.7+): isolated free blocks go to the device as one chain of device-writable descriptors',
  hasDevice: true,
  queueKind: 'reporting',
  configError: () => null,
  setUpDevice: (views, c) => setUpBalloonDevice(views, c),
  enabled: reporterEnabled,
  installCpuHooks: (ctx) => installFreeNotifier('reporting', ctx),
  runReporter: (ctx) => runPageReporter('reporting', ctx),
  makeDevice: (ctx) => makeReportingDevice('reporting', ctx),
  hintingQuiet: reporterQuiet,
  liveness: requestLiveness,
  settle: reportingSettle('reporting'),
  stats: (views, c, notes) => reportingStats('reporting', views, c, notes),
};

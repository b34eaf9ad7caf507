// --hinting aeration: Alexander Duyck's aeration v1 (2019): up to 32 hints
// `guest_phys_addr | order` in one device-readable buffer, balloon_lock held
// around fill, kick and wait-for-ack; triggered by a free area's count of
// unhinted blocks.

import { HINTS_MAX } from '../../virtio/balloon-abi.js';
import { setUpBalloonDevice } from './common.js';
import type { HintingMode } from './mode.js';
import { installFreeNotifier, makeReportingDevice, reporterEnabled, reporterQuiet, reportingSettle, reportingStats, requestLiveness, runPageReporter } from './page-reporting.js';

export const aeration: HintingMode = {
  name: 'aeration',
  summary: 'aeration v1 (Duyck, 2019): batches of up to 32 hints in one device-readable buffer under balloon_lock',
  hasDevice: true,
  queueKind: 'aeration',
  configError: (c) => (c.capacity > HINTS_MAX ? `--capacity: aeration sends at most ${HINTS_MAX} hints per buffer (VIRTIO_BALLOON_ARRAY_HINTS_MAX); accepted: a power of 2 from 1 to ${HINTS_MAX}` : null),
  setUpDevice: (views, c) => setUpBalloonDevice(views, c),
  enabled: reporterEnabled,
  installCpuHooks: (ctx) => installFreeNotifier('aeration', ctx),
  runReporter: (ctx) => runPageReporter('aeration', ctx),
  makeDevice: (ctx) => makeReportingDevice('aeration', ctx),
  hintingQuiet: reporterQuiet,
  liveness: requestLiveness,
  settle: reportingSettle('aeration'),
  stats: (views, c, notes) => reportingStats('aeration', views, c, notes),
};

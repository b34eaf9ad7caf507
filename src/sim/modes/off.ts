// --hinting off: the baseline. No reporter, no device, no settling: host RSS
// is every page the guest ever touched.

import type { HintingMode } from './mode.js';
import { noDiscardRefused } from './common.js';

const none = (): never => {
  throw new Error('hinting off runs no reporter and no device');
};

export const off: HintingMode = {
  name: 'off',
  summary: 'no reporter, no device: host RSS is every page ever touched',
  hasDevice: false,
  defaultReportDelayMs: null,
  queueKind: null,
  configError: noDiscardRefused,
  setUpDevice: () => undefined,
  enabled: () => ({ allowed: false, why: 'hinting off' }),
  installCpuHooks: () => undefined,
  runReporter: none,
  makeDevice: none,
  hintingQuiet: () => true,
  liveness: () => null,
  settle: null,
  stats: none,
};

// Every --hinting mode, by name. Adding a mode: its file here, its name in
// HINTING_MODES (src/sim/config.ts), its entry below.

import type { Config, HintingModeName } from '../config.js';
import { aeration } from './aeration.js';
import { hint } from './hint.js';
import type { HintingMode } from './mode.js';
import { naive } from './naive.js';
import { off } from './off.js';
import { reporting } from './reporting.js';

export const MODES: Record<HintingModeName, HintingMode> = { off, reporting, aeration, hint, naive };

export const modeOf = (name: HintingModeName): HintingMode => MODES[name];

/** The request-to-pass delay of a run: --report-delay, or the mode's kernel value (0 where the mode has none). */
export const reportDelayMs = (c: Config): number => c.reportDelayMs ?? modeOf(c.hinting).defaultReportDelayMs ?? 0;

/** --settle-timeout auto never waits less than this (the fixed default before auto). */
export const SETTLE_TIMEOUT_FLOOR_MS = 10_000;

/** The settle bound of a run: --settle-timeout, or auto (the floor, or longer where the mode's upstream pacing needs it). */
export const settleTimeoutMs = (c: Config): number => c.settleTimeoutMs ?? Math.max(SETTLE_TIMEOUT_FLOOR_MS, modeOf(c.hinting).settle?.autoTimeoutMs?.(c) ?? 0);

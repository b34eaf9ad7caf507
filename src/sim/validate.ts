// A configuration is valid when every flag is in range (parsed by
// src/cli/commands.ts), the cross-flag rules hold (checkConfig), the hinting
// mode accepts it (its configError) and every injection can act in it.

import { UsageError } from '../base/errors.js';
import { injectionConflict } from '../check/inject.js';
import { type Config, checkConfig, faultConflict, ringConflict } from './config.js';
import { modeOf } from './modes/index.js';

/** The configuration, or a UsageError naming the flag and what is accepted (exit 2). */
export function validateConfig(c: Config): Config {
  checkConfig(c);
  const why = modeOf(c.hinting).configError(c) ?? injectionConflict(c) ?? faultConflict(c) ?? ringConflict(c);
  if (why !== null) throw new UsageError(why);
  return c;
}

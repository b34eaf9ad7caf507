// Random scheduling: at every scheduling point, a uniformly random runnable
// thread runs next.

import { rngBelow } from '../region.js';
import type { Strategy } from '../strategy.js';
import { drawSetup } from './common.js';

export const random: Strategy = {
  name: 'random',
  id: 1,
  init(s, parts, p) {
    drawSetup(s, parts, p);
    return parts[rngBelow(s.ctl, parts.length)];
  },
  choose(s, _me, cand, n) {
    return cand[n === 1 ? 0 : rngBelow(s.ctl, n)];
  },
};

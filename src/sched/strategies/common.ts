// Set-up both strategies share: a random priority permutation of the
// participants and d-1 PCT change points, drawn from the region's RNG in a
// fixed order (see Strategy.init).

import { C_CP_CLASS, F_CP, T_PRIO, T_WORDS, rngBelow, type SchedViews } from '../region.js';
import type { StrategyParams } from '../strategy.js';

// ---- PCT change point classes ----
// A change point is placed among the choice steps (more than one thread
// runnable) of one class of scheduling point, not among all steps: the rare
// kinds (ring publishes, event waits and wakes, state-machine transitions)
// are where short race windows open, and placed uniformly over thousands of
// lock and page steps a change point almost never lands on one. Each change
// point draws its class uniformly, then a position in [1, k_c], where k_c,
// the expected number of choice steps of class c in the run, is estimated
// from the step budget (one step per tick) with the measured step mix below.
/**
 * Class of each SP_* kind (index = kind), -1: never a change point. Classes:
 * 0 lock, 1 page, 2 event (wait/block/wake), 3 ring (avail/used publish),
 * 4 state (a split read-modify-write, the reporter's pass end, or the
 * hint device between its write-tracking check and its discard).
 */
export const CP_CLASS_OF_KIND = [-1, 0, 0, 0, 2, 2, 2, 3, 3, 1, -1, -1, -1, -1, 4, 4];
/**
 * Estimated choice steps of each class per step of budget: the mix measured
 * over the injection configurations at --cpus 2 (lock 0.3-0.7, page
 * 0.3-0.5, event 0.05-0.2, ring 0.005-0.04, state 0-0.02 of the budget).
 */
export const CP_CLASS_SHARE = [0.5, 0.4, 0.1, 0.02, 0.02];
export const CP_CLASSES = CP_CLASS_SHARE.length;

/** Draw the priority permutation (returned: lowest priority first) and the change points. */
export function drawSetup(s: SchedViews, parts: readonly number[], p: StrategyParams): number[] {
  const { ctl, f, th } = s;
  // PCT: random distinct priorities d..d+n-1, and d-1 change points, each in
  // a class drawn uniformly and at a position in [1, k_c] of that class's
  // choice steps, k_c estimated from the logical budget (CP_CLASS_SHARE).
  const perm = parts.slice();
  for (let i = perm.length - 1; i > 0; i--) {
    const j = rngBelow(ctl, i + 1);
    [perm[i], perm[j]] = [perm[j], perm[i]];
  }
  perm.forEach((t, i) => (th[t * T_WORDS + T_PRIO] = p.pctDepth + i));
  for (let i = 0; i < p.pctDepth - 1; i++) {
    const cls = rngBelow(ctl, CP_CLASSES);
    ctl[C_CP_CLASS + i] = cls;
    f[F_CP + i] = 1 + rngBelow(ctl, Math.max(1, Math.round(p.budgetTicks * CP_CLASS_SHARE[cls])));
  }
  return perm;
}

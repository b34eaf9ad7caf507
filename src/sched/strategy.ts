// A scheduling strategy: one object, one file each (src/sched/strategies/),
// behind this interface. Its state lives in the scheduler's region (the
// token holder decides), so a strategy is a pair of functions over it.

import type { SchedViews } from './region.js';

export interface StrategyParams {
  /** PCT bug depth d (random ignores it, but draws the same set-up numbers: see init). */
  pctDepth: number;
  /** Logical ticks of the workload: the span change points are placed over. */
  budgetTicks: number;
}

export interface Strategy {
  readonly name: 'random' | 'pct';
  /** Stored in the region (C_STRATEGY). */
  readonly id: number;
  /**
   * Main, before the first token: set the strategy's state up from the
   * region's RNG (already seeded) and return the first thread to run, one of
   * `parts`. Every strategy draws the same set-up numbers (a priority
   * permutation and d-1 change points), so the RNG stream after set-up does
   * not depend on which one runs.
   */
  init(s: SchedViews, parts: readonly number[], p: StrategyParams): number;
  /**
   * The token holder, after a step of `kind` (SP_*) by thread `me`: the next
   * thread to run, among the `n` runnable candidates in cand[0..n).
   */
  choose(s: SchedViews, me: number, cand: Int32Array, n: number, kind: number): number;
}

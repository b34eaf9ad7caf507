// Every strategy, by name and by the id stored in the region.
import type { Strategy } from '../strategy.js';
import { pct } from './pct.js';
import { random } from './random.js';

export const STRATEGIES: Record<Strategy['name'], Strategy> = { random, pct };

export function strategyById(id: number): Strategy {
  for (const s of Object.values(STRATEGIES)) if (s.id === id) return s;
  throw new Error(`sched: no strategy with id ${id}`);
}

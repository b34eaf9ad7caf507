/** What every benchmark module returns (bench/run.ts collects them into one JSON). */
export interface BenchReport {
  name: string;
  /** Measured values, units last in the key (opsPerSec, nsPerOp, ms, ...). */
  results: Record<string, number>;
  /** Ratios measured within the same run, with the target in `notes`. */
  ratios: Record<string, number>;
  notes: string[];
}

// The statistics live in one module that `sim compare` uses too.
export { median, medianInterval } from '../src/base/stats.js';

export const round = (x: number, digits = 3): number => Number(x.toPrecision(digits));

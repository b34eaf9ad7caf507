/** What every benchmark module returns (bench/run.ts collects them into one JSON). */
export interface BenchReport {
  name: string;
  /** Measured values, units last in the key (opsPerSec, nsPerOp, ms, ...). */
  results: Record<string, number>;
  /** Ratios measured within the same run, with the target in `notes`. */
  ratios: Record<string, number>;
  notes: string[];
}

export const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const n = s.length;
  return n === 0 ? NaN : n % 2 ? s[(n - 1) / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
};

export const round = (x: number, digits = 3): number => Number(x.toPrecision(digits));

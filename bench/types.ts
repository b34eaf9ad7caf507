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

/**
 * Distribution-free confidence interval for the median of `xs`: the order
 * statistics [x(k), x(n+1-k)] with the largest k whose coverage,
 * P(x(k) <= median <= x(n+1-k)) = 1 - 2 * P(Binomial(n, 1/2) < k), is still at
 * least `level`. No assumption about the shape of the spread (bench figures
 * on this machine are anything but normal). With too few samples for `level`
 * the interval is [min, max] and `coverage` says how much less it is; NaN
 * bounds for no samples.
 */
export function medianInterval(xs: number[], level = 0.95): { lo: number; hi: number; coverage: number } {
  const s = [...xs].sort((a, b) => a - b);
  const n = s.length;
  if (n === 0) return { lo: NaN, hi: NaN, coverage: 0 };
  // cdf[j] = P(Binomial(n, 1/2) <= j), built term by term (n is small here).
  const cdf: number[] = [];
  let term = 0.5 ** n;
  let acc = 0;
  for (let j = 0; j <= n; j++) {
    acc += term;
    cdf.push(acc);
    term = (term * (n - j)) / (j + 1);
  }
  const coverageOf = (k: number) => 1 - 2 * cdf[k - 1];
  let k = 1;
  while (k + 1 <= (n + 1) / 2 && coverageOf(k + 1) >= level) k++;
  return { lo: s[k - 1], hi: s[n - k], coverage: coverageOf(k) };
}

// The statistics every comparison of runs uses: `sim compare` and the
// benchmarks under bench/ (bench/reporting.ts, bench/linux-v5.ts) take their
// medians, bracketed ratios and intervals from here, so a figure in the README
// and a verdict printed by `sim compare` come from the same arithmetic.
//
// Why bracketed ratios and order statistics: the machines this runs on drift
// between throughput levels up to ~1.4x apart over tens of seconds, whatever
// runs (docs/BENCHMARKS.md), and run-to-run spreads are anything but normal.
// A run of the mode under test is compared with the mean of the baseline runs
// just before and after it on the same buffer, and the median of those ratios
// gets a distribution-free interval.

export const median = (xs: readonly number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const n = s.length;
  return n === 0 ? NaN : n % 2 ? s[(n - 1) / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
};

/** An interval for a median: order statistics [lo, hi] and their exact coverage. */
export interface MedianInterval {
  lo: number;
  hi: number;
  /** P(lo <= true median <= hi) for any continuous distribution; below the level asked for when samples are too few. */
  coverage: number;
}

/**
 * Distribution-free confidence interval for the median of `xs`: the order
 * statistics [x(k), x(n+1-k)] with the largest k whose coverage,
 * P(x(k) <= median <= x(n+1-k)) = 1 - 2 * P(Binomial(n, 1/2) < k), is still at
 * least `level`. No assumption about the shape of the spread. With too few
 * samples for `level` the interval is [min, max] and `coverage` says how much
 * less it is (n = 5 gives 0.9375, n = 6 is the first to reach 0.95); NaN
 * bounds for no samples.
 */
export function medianInterval(xs: readonly number[], level = 0.95): MedianInterval {
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

/** The fewest samples whose [min, max] covers the median with at least `level` (6 at 95%). */
export function samplesForLevel(level = 0.95): number {
  for (let n = 1; n < 64; n++) if (medianInterval(Array.from({ length: n }, (_, i) => i)).coverage >= level) return n;
  return 64;
}

/** Baseline runs that bracket a run under test must agree this closely for the bracket to count. */
export const BRACKET_TOLERANCE = 0.04;

/** One bracketable run: its label ('off' for the baseline) and the quantity compared. */
export interface BracketRun {
  mode: string;
  opsPerSec: number;
}

/**
 * Bracketed ratios: the runs go off, x, off, y, off, ...; each middle run is
 * divided by the mean of the off runs just before and just after it. A
 * bracket whose two off runs differ by more than `tolerance` spans a change
 * of the machine's speed and is set aside (counted in `all`, not in
 * `accepted`). Which brackets count depends only on the off runs, never on
 * the result of the run under test. An off run in the middle (an A/A
 * control) needs another label than 'off' (e.g. 'offControl').
 */
export function bracketRatios(seq: readonly BracketRun[], tolerance = BRACKET_TOLERANCE): Record<string, { accepted: number[]; all: number[] }> {
  const out: Record<string, { accepted: number[]; all: number[] }> = {};
  for (let i = 1; i + 1 < seq.length; i += 2) {
    const before = seq[i - 1];
    const x = seq[i];
    const after = seq[i + 1];
    if (before.mode !== 'off' || after.mode !== 'off' || x.mode === 'off') throw new Error('bracketRatios: the sequence must alternate off, mode, off, ...');
    const ratio = x.opsPerSec / ((before.opsPerSec + after.opsPerSec) / 2);
    const o = (out[x.mode] ??= { accepted: [], all: [] });
    o.all.push(ratio);
    if (Math.abs(after.opsPerSec / before.opsPerSec - 1) <= tolerance) o.accepted.push(ratio);
  }
  return out;
}

/** A bracketed comparison summarised: the median ratio of the accepted brackets and its interval. */
export interface RatioEstimate {
  /** Median of the accepted brackets' ratios (NaN if none was accepted). */
  median: number;
  lo: number;
  hi: number;
  coverage: number;
  /** Brackets accepted (off runs within the tolerance) of those run. */
  accepted: number;
  brackets: number;
}

export function ratioEstimate(b: { accepted: readonly number[]; all: readonly number[] } | undefined, level = 0.95): RatioEstimate {
  const accepted = b?.accepted ?? [];
  const ci = medianInterval(accepted, level);
  return { median: median(accepted), lo: ci.lo, hi: ci.hi, coverage: ci.coverage, accepted: accepted.length, brackets: b?.all.length ?? 0 };
}

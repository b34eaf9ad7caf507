// The arithmetic the benchmarks' and `sim compare`'s figures come from (src/base/stats.ts; bench/reporting.ts's reclaim window).
import { describe, expect, it } from 'vitest';
import { reclaimWindow } from '../bench/reporting.js';
import { BRACKET_TOLERANCE, bracketRatios, medianInterval } from '../src/base/stats.js';

const MiB = 2 ** 20;

describe('bracketRatios', () => {
  it('compares each hinting run with the mean of the off runs around it', () => {
    const r = bracketRatios([
      { mode: 'off', opsPerSec: 100 },
      { mode: 'reporting', opsPerSec: 98 },
      { mode: 'off', opsPerSec: 102 },
      { mode: 'aeration', opsPerSec: 95 },
      { mode: 'off', opsPerSec: 100 },
    ]);
    expect(r.reporting.accepted).toEqual([98 / 101]);
    expect(r.aeration.accepted).toEqual([95 / 101]);
  });

  it('sets aside a bracket whose off runs disagree by more than the tolerance, whatever the hinting run did', () => {
    const jump = 1 + BRACKET_TOLERANCE * 2;
    const r = bracketRatios([
      { mode: 'off', opsPerSec: 100 },
      { mode: 'reporting', opsPerSec: 100 }, // looks free, but the machine changed speed
      { mode: 'off', opsPerSec: 100 * jump },
      { mode: 'reporting', opsPerSec: 90 * jump },
      { mode: 'off', opsPerSec: 100 * jump },
    ]);
    expect(r.reporting.all).toHaveLength(2);
    expect(r.reporting.accepted).toEqual([0.9]);
  });

  it('refuses a sequence that does not alternate off and a hinting mode', () => {
    expect(() => bracketRatios([{ mode: 'off', opsPerSec: 1 }, { mode: 'off', opsPerSec: 1 }, { mode: 'reporting', opsPerSec: 1 }])).toThrow(/alternate/);
  });
});

describe('reclaimWindow', () => {
  it('runs from the last sample at the RSS peak to RSS within 2 MiB of guest used', () => {
    const mem = 1024 * MiB;
    const p = (tMs: number, rssMiB: number, usedMiB: number) => ({ tMs, hostRssBytes: rssMiB * MiB, guestUsedBytes: usedMiB * MiB });
    const w = reclaimWindow([p(0, 100, 100), p(10, 800, 800), p(20, 800, 800), p(30, 500, 40), p(40, 200, 40), p(50, 41, 40), p(60, 41, 40)], mem);
    expect(w.secs).toBeCloseTo(0.03);
    expect(w.rssDropBytes).toBe((800 - 41) * MiB);
    expect(w.usedDropBytes).toBe((800 - 40) * MiB);
    // guest used reached its floor at 30 ms, RSS at 50 ms
    expect(w.lagMs).toBe(20);
    expect(w.maxLagBytes).toBe(460 * MiB);
  });
});

describe('medianInterval', () => {
  it('takes the 2nd and 10th of 11 samples at 95% (coverage 1 - 2 * 12/2048), whatever their order', () => {
    const xs = [0.97, 0.91, 0.99, 0.95, 0.96, 0.98, 0.93, 1.0, 0.94, 0.92, 0.97];
    const r = medianInterval(xs);
    expect(r.lo).toBe(0.92);
    expect(r.hi).toBe(0.99);
    expect(r.coverage).toBeCloseTo(1 - (2 * 12) / 2048, 12);
  });

  it('narrows as samples accumulate: 3rd and 8th of 10 at 90%', () => {
    const xs = Array.from({ length: 10 }, (_, i) => i + 1);
    const r = medianInterval(xs, 0.9);
    // P(B <= 2) = 56/1024: coverage 0.891 < 0.9, so k = 2: 1 - 2 * 11/1024
    expect([r.lo, r.hi]).toEqual([2, 9]);
    expect(r.coverage).toBeCloseTo(1 - (2 * 11) / 1024, 12);
  });

  it('falls back to [min, max] and says its lower coverage when there are too few samples', () => {
    const r = medianInterval([3, 1, 2], 0.95);
    expect([r.lo, r.hi]).toEqual([1, 3]);
    expect(r.coverage).toBeCloseTo(0.75, 12);
    expect(r.coverage).toBeLessThan(0.95);
  });

  it('has the coverage it claims: the true median of a skewed distribution falls inside at least that often', () => {
    // Exponential samples (median ln 2), deterministic generator.
    let x = 12345;
    const u = () => ((x = (Math.imul(x, 1103515245) + 12345) >>> 0) + 0.5) / 4294967296;
    let inside = 0;
    const trials = 4000;
    let claimed = 0;
    for (let t = 0; t < trials; t++) {
      const xs = Array.from({ length: 14 }, () => -Math.log(u()));
      const r = medianInterval(xs);
      claimed = r.coverage;
      if (r.lo <= Math.LN2 && Math.LN2 <= r.hi) inside++;
    }
    expect(claimed).toBeGreaterThanOrEqual(0.95);
    // Binomial sampling error over 4000 trials is ~0.35%: allow 1%.
    expect(inside / trials).toBeGreaterThan(claimed - 0.01);
    expect(inside / trials).toBeLessThan(claimed + 0.01);
  });
});

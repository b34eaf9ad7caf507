// The arithmetic the reporting benchmark's figures come from (bench/reporting.ts).
import { describe, expect, it } from 'vitest';
import { BRACKET_TOLERANCE, bracketRatios, reclaimWindow } from '../bench/reporting.js';

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

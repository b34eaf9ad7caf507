// The schedule format (src/sched/schedule.ts) as data: a record prints to
// its string and file forms and parses back to the same record, and text
// that is not a schedule is refused with ScheduleParseError, never another
// error. Property tests over generated records (fast-check).
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ScheduleParseError, parseSchedule, scheduleString, type ScheduleRecord } from '../src/sched/schedule.js';

const hex = (n: number) => fc.stringMatching(new RegExp(`^[0-9a-f]{${n}}$`));
const uint = fc.nat({ max: 2 ** 32 - 1 });
const bytes = fc.uint8Array({ maxLength: 64 }).map((b) => Buffer.from(b).toString('base64'));

/** A record as a scheduled run writes it (src/sched/control.ts schedOutcome). */
const record: fc.Arbitrary<ScheduleRecord> = fc.record({
  format: fc.constant('balloon-sim-schedule' as const),
  version: fc.constant(1 as const),
  strategy: fc.constantFrom('random' as const, 'pct' as const),
  pctDepth: fc.integer({ min: 1, max: 16 }),
  seed: uint,
  configKey: hex(8),
  rerun: fc.string(),
  steps: fc.nat({ max: 2 ** 40 }),
  traceHash: hex(16),
  first: fc.nat({ max: 67 }),
  checkpointEvery: fc.constantFrom(1024, 2048, 4096, 1 << 20),
  checkpoints: fc.array(fc.nat({ max: 0xffff }), { maxLength: 16 }),
});
const withLog = fc.tuple(record, bytes, bytes).map(([r, d, g]) => ({ ...r, decisions: d, digests: g }));

/** The fields the short string carries (the rerun command and the decision log are the file's). */
const stringPart = (r: ScheduleRecord) => ({ ...r, rerun: '', decisions: undefined, digests: undefined });
const defined = <T extends object>(o: T) => JSON.parse(JSON.stringify(o));

describe('schedule format', () => {
  it('string form: a record prints and parses back to the same fields, and prints to the same string again', () => {
    fc.assert(
      fc.property(record, (r) => {
        const s = scheduleString(r);
        const back = parseSchedule(s);
        expect(defined(back)).toEqual(defined(stringPart(r)));
        expect(scheduleString(back)).toBe(s);
      }),
      { numRuns: 500 },
    );
  });

  it('file form: a record with its decision log survives JSON and parsing unchanged', () => {
    fc.assert(
      fc.property(withLog, (r) => {
        expect(parseSchedule(JSON.stringify(r))).toEqual(r);
      }),
      { numRuns: 300 },
    );
  });

  it('anything else is refused with ScheduleParseError, naming what is wrong', () => {
    const mutated = fc.tuple(record, fc.nat(), fc.string({ maxLength: 3 })).map(([r, at, ins]) => {
      const s = scheduleString(r);
      const i = at % (s.length + 1);
      return s.slice(0, i) + ins + s.slice(i + 1);
    });
    fc.assert(
      fc.property(fc.oneof(mutated, fc.string(), fc.json()), (text) => {
        try {
          const back = parseSchedule(text);
          // What parses is a well-formed schedule: it prints to a string that parses to it again.
          expect(defined(parseSchedule(scheduleString(back)))).toEqual(defined(stringPart(back)));
        } catch (e) {
          expect(e).toBeInstanceOf(ScheduleParseError);
        }
      }),
      { numRuns: 1000 },
    );
  });

  it('a file with a field of the wrong shape is refused naming the field', () => {
    const good = { format: 'balloon-sim-schedule', version: 1, strategy: 'pct', pctDepth: 3, seed: 1, configKey: '0123abcd', rerun: 'sim', steps: 10, traceHash: '0123456789abcdef', first: 0, checkpointEvery: 1024, checkpoints: [] };
    expect(() => parseSchedule(JSON.stringify(good))).not.toThrow();
    expect(() => parseSchedule(JSON.stringify({ ...good, steps: -1 }))).toThrow(/'steps'/);
    expect(() => parseSchedule(JSON.stringify({ ...good, traceHash: 'zz' }))).toThrow(/'traceHash'/);
    expect(() => parseSchedule(JSON.stringify({ ...good, checkpoints: [70000] }))).toThrow(/'checkpoints'/);
    expect(() => parseSchedule(JSON.stringify({ ...good, decisions: 'AAAA' }))).toThrow(/both or neither/);
  });
});

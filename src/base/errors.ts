// The two kinds of failure every subsystem can raise, and the oracle names a
// violation carries. Operating errors (ring full, a report the device
// refused) are return values, not these.
//
// - UsageError: bad input from the user (a flag, a profile, a schedule): one
//   line naming the flag or field and what is accepted; exit 2.
// - OracleViolation: a broken invariant found by an oracle (assertions stay
//   on); it aborts the run with its seed; exit 1.

export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

/** Oracle names as they appear in violations and in JSON `checks`. */
export const ORACLES = [
  'stamp',
  'poison',
  'ownership',
  'device-allocated-range',
  'conservation',
  'free-list',
  'reported-accounting',
  'ring',
  'liveness',
  'migration',
  'lost-wakeup',
  'hostile-guest',
  'hint-cmd-id',
] as const;
export type OracleName = (typeof ORACLES)[number];

export interface Violation {
  oracle: OracleName;
  message: string;
  pfn?: number;
  cpu?: number;
}

/** A broken invariant: aborts the run (assertions stay on). */
export class OracleViolation extends Error {
  constructor(readonly violation: Violation) {
    super(`${violation.oracle}: ${violation.message}`);
    this.name = 'OracleViolation';
  }
}

// Writing a failing scheduled run's schedule (--sched): the file holds the
// full decision log for an exact replay; the short string is printed.

import { writeFileSync } from 'node:fs';
import path from 'node:path';
import type { RunResult } from '../sim/run.js';

/** Default schedule file of a failing run: in the current directory. */
export const defaultScheduleFile = (seed: number): string => `sim-schedule-${seed}.json`;

/** Write the schedule file of a failing run (not of a replay) and say how to replay it. Returns the path written, or null. */
export function writeScheduleFile(result: RunResult, file?: string): string | null {
  const s = result.sched;
  // An interrupted run that found nothing has nothing to replay (and the interrupt is not in its trace).
  if (!s || result.ok || result.config.replay || (result.interrupted && result.violations.length === 0 && result.errors.length === 0)) return null;
  const p = path.resolve(file ?? defaultScheduleFile(result.seed));
  const first = result.violations[0];
  const rec = { ...s.record, outcome: { ok: result.ok, abortStep: s.abortStep, ...(first ? { violation: first } : {}), ...(s.halt ? { halt: `${s.halt.reason} at step ${s.halt.step}` } : {}) } };
  writeFileSync(p, JSON.stringify(rec) + '\n');
  return p;
}

export function reportSchedule(result: RunResult, file: string | undefined, out: NodeJS.WritableStream): void {
  const p = writeScheduleFile(result, file);
  if (p) out.write(`schedule written to ${p}\nreplay: ${result.rerun} --replay ${p}\n   or: ${result.rerun} --replay ${result.sched!.schedule}\n`);
}

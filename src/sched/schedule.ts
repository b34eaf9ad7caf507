// A schedule as data: the record a scheduled run produces (every decision
// and an event digest per step, in a file), its short string form (seed,
// trace hash and sparse checkpoints: replays from the seed and checks the
// trace), and parsing both back.

import { hex8 } from './region.js';
import type { Violation } from '../base/errors.js';

/** A schedule string carries at most this many checkpoints. */
export const STRING_CHECKPOINTS = 16;

export interface ScheduleRecord {
  format: 'balloon-sim-schedule';
  version: 1;
  strategy: 'random' | 'pct';
  pctDepth: number;
  seed: number;
  /** FNV-1a of the rerun command: the configuration the schedule belongs to. */
  configKey: string;
  rerun: string;
  steps: number;
  traceHash: string;
  first: number;
  /** Low 16 bits of the trace hash every checkpointEvery steps. */
  checkpointEvery: number;
  checkpoints: number[];
  /** File only: one byte per step, base64 (the thread chosen after each step, and the event digest). */
  decisions?: string;
  digests?: string;
  truncated?: boolean;
  outcome?: { ok: boolean; abortStep: number; violation?: Violation; halt?: string };
}

/** The configuration a schedule belongs to: FNV-1a of the command line that reruns it. */
export function scheduleKey(rerun: string): string {
  const s = rerun;
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193);
  return hex8(h);
}

export const STRING_PREFIX = 'bsched1';

/** The short form: strategy, depth, seed, steps, trace hash, config key, sparse checkpoints. */
export function scheduleString(r: ScheduleRecord): string {
  return [STRING_PREFIX, r.strategy, r.pctDepth, r.seed, r.steps, r.traceHash, r.configKey, r.first, r.checkpointEvery, r.checkpoints.map((c) => c.toString(16).padStart(4, '0')).join('')].join('.');
}

export class ScheduleParseError extends Error {}

/** Parse a schedule string (bsched1.…) or a schedule file's JSON text. */
export function parseSchedule(text: string): ScheduleRecord {
  const t = text.trim();
  if (t.startsWith(STRING_PREFIX + '.')) {
    const p = t.split('.');
    if (p.length !== 10) throw new ScheduleParseError('a schedule string has 10 dot-separated fields');
    const [, strategy, depth, seed, steps, hash, key, first, every, cps] = p;
    if (strategy !== 'random' && strategy !== 'pct') throw new ScheduleParseError(`unknown strategy '${strategy}'`);
    if (!/^[0-9a-f]*$/.test(cps) || cps.length % 4 !== 0) throw new ScheduleParseError('bad checkpoint field');
    if (!/^[0-9a-f]{16}$/.test(hash)) throw new ScheduleParseError('bad trace hash field (16 hex digits)');
    if (!/^[0-9a-f]{8}$/.test(key)) throw new ScheduleParseError('bad configuration key field (8 hex digits)');
    const nums = [depth, seed, steps, first, every].map((x) => (/^\d+$/.test(x) ? Number(x) : NaN));
    if (nums.some((x) => !Number.isSafeInteger(x))) throw new ScheduleParseError('bad numeric field');
    const checkpoints: number[] = [];
    for (let i = 0; i < cps.length; i += 4) checkpoints.push(parseInt(cps.slice(i, i + 4), 16));
    return { format: 'balloon-sim-schedule', version: 1, strategy, pctDepth: nums[0], seed: nums[1], configKey: key, rerun: '', steps: nums[2], traceHash: hash, first: nums[3], checkpointEvery: nums[4], checkpoints };
  }
  let j: ScheduleRecord;
  try {
    j = JSON.parse(t) as ScheduleRecord;
  } catch {
    throw new ScheduleParseError('neither a schedule string (bsched1.…) nor a schedule file (JSON)');
  }
  if (j === null || typeof j !== 'object' || j.format !== 'balloon-sim-schedule' || j.version !== 1) throw new ScheduleParseError('not a balloon-sim schedule file (format/version)');
  const bad = fileFieldError(j);
  if (bad !== null) throw new ScheduleParseError(`schedule file field ${bad}`);
  return j;
}

const isUint = (x: unknown): x is number => typeof x === 'number' && Number.isSafeInteger(x) && x >= 0;
const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;

/** The first field of a schedule file that is not what a scheduled run writes, described; null if every field is. */
function fileFieldError(j: ScheduleRecord): string | null {
  if (j.strategy !== 'random' && j.strategy !== 'pct') return "'strategy': random or pct";
  for (const k of ['pctDepth', 'seed', 'steps', 'first', 'checkpointEvery'] as const) if (!isUint(j[k])) return `'${k}': a whole number >= 0`;
  if (typeof j.configKey !== 'string' || !/^[0-9a-f]{8}$/.test(j.configKey)) return "'configKey': 8 hex digits";
  if (typeof j.traceHash !== 'string' || !/^[0-9a-f]{16}$/.test(j.traceHash)) return "'traceHash': 16 hex digits";
  if (typeof j.rerun !== 'string') return "'rerun': a string";
  if (!Array.isArray(j.checkpoints) || !j.checkpoints.every((c) => isUint(c) && c <= 0xffff)) return "'checkpoints': numbers 0..65535";
  for (const k of ['decisions', 'digests'] as const) if (j[k] !== undefined && (typeof j[k] !== 'string' || !BASE64.test(j[k]!))) return `'${k}': base64`;
  if ((j.decisions === undefined) !== (j.digests === undefined)) return "'decisions' and 'digests': both or neither";
  return null;
}

// `sim compare`: "what does hinting cost my guest?", answered so it can be
// quoted. For each hinting mode the runs are bracketed on one shared buffer
// (off, mode, off, next mode, off, ..., off again as an A/A control, off),
// `--repeat` rounds of them; each mode run is divided by the mean of the off
// runs around it, a bracket whose two off runs disagree by more than 4% is
// set aside (the machine changed speed), and the median ratio of the rest
// gets a distribution-free 95% interval (src/base/stats.ts, the module the
// benchmarks use). The verdict says it in words: "reporting costs 1.8% [0.9%,
// 2.7%]", or "not resolved" and why. Wall-clock ops/s and ops per guest
// cpu-second (the device's time is the host's: src/sim/cputime.ts) side by
// side. Defaults: --prefault --warm (the steady state of a guest that has
// touched its memory), lockstat on in every run (the zone-lock columns).

import { type Config, HINTING_MODES, type HintingModeName } from '../sim/config.js';
import type { LockClassStats } from '../locking/lockstat.js';
import { configLines, table } from './report.js';
import { type RunHooks, type RunResult, runSimulation, sharedBufferFor } from '../sim/run.js';
import { type ExitCode, interruptExitCode } from '../sim/results.js';
import { installInterrupt } from './signals.js';
import { UsageError } from '../base/errors.js';
import { fmtBytes, fmtDuration } from '../base/units.js';
import { BRACKET_TOLERANCE, type RatioEstimate, bracketRatios, median, ratioEstimate, samplesForLevel } from '../base/stats.js';

export interface CompareRow {
  mode: HintingModeName;
  ok: boolean;
  exitCode: ExitCode;
  /** The command that reruns this mode's representative run (the one with the median ops/s). */
  rerun: string;
  /** A run of this mode was ended early by an interrupt. */
  interrupted: boolean;
  /** Runs of this mode (for off: the baseline runs and the A/A control runs). */
  runs: number;
  durationMs: number;
  ops: number;
  /** Median ops/s over this mode's runs (off: the baseline runs). */
  opsPerSec: number;
  hostRssBytes: number;
  /** False when the run carried no `hinting` section: the mode did nothing visible in this build. */
  hintingActive: boolean;
  /** Guest CPU time (cpus + reporter) per op and host CPU time (device), from schedstat; absent where unreadable. */
  cpu?: { guestRunNsPerOp: number; hostRunNs: number };
  /**
   * ops/s of this mode over the mean of the off runs around it: median of
   * the accepted brackets and its 95% interval. For off: the A/A control
   * (off in the middle too), the method's own noise.
   */
  opsRatio?: RatioEstimate;
  /** The same brackets on ops per guest cpu-second. */
  guestCpuRatio?: RatioEstimate;
  /** The verdict in words (off: the A/A control's). */
  verdict?: string;
  /** Whether the verdict resolved a difference (off: whether the control is centred on 1 within its interval). */
  resolved?: boolean;
  zoneLock: { acquisitions: number; contentions: number; waitNsTotal: number; waitNsPerAcquisition: number; holdNsPerAcquisition: number };
  locks: LockClassStats[];
  violations: RunResult['violations'];
  errors: string[];
  /** hint / naive: what the balloon did (src/sim/modes/stats.ts). */
  hint?: { runs: number; bytesHinted: number; bytesPerRun: number; runMsP50: number; duplicateRatio: number; distinctBytes: number; shrinkerBlocksReturned: number; allocFailuresBalloonHeld: number };
}

/** One run of the bracketed sequence. */
export interface CompareRun {
  /** 'off' (a baseline run), 'offControl' (off in a bracket's middle: the A/A control) or a hinting mode. */
  label: string;
  opsPerSec: number;
  opsPerGuestCpuSec: number;
  exitCode: ExitCode;
}

export interface CompareResult {
  seed: number;
  /** The shared configuration; `hinting` varies per row. */
  config: Config;
  ok: boolean;
  exitCode: ExitCode;
  modes: CompareRow[];
  /** The modes asked for (--modes), off first. */
  modeNames: HintingModeName[];
  /** Rounds asked for (--repeat) and the bracket tolerance. */
  repeat: number;
  bracketTolerance: number;
  /** Every run in order, for whoever wants to redo the arithmetic. */
  sequence: CompareRun[];
  /** The verdicts, one line per mode (the A/A control first). */
  verdicts: string[];
  /** Interrupted (RunHooks.interrupt): the signal; the rows are the runs so far, the last one cut short. */
  interrupted?: string;
}

function zoneLockOf(locks: LockClassStats[] | undefined): CompareRow['zoneLock'] {
  const z = locks?.find((l) => l.class === 'zone.lock');
  if (!z) return { acquisitions: 0, contentions: 0, waitNsTotal: 0, waitNsPerAcquisition: 0, holdNsPerAcquisition: 0 };
  const per = (x: number) => (z.acquisitions > 0 ? x / z.acquisitions : 0);
  return { acquisitions: z.acquisitions, contentions: z.contentions, waitNsTotal: z.waitNs.total, waitNsPerAcquisition: per(z.waitNs.total), holdNsPerAcquisition: per(z.holdNs.total) };
}

/** One run's row (the details of a mode's representative run). */
export function compareRow(mode: HintingModeName, r: RunResult): CompareRow {
  return {
    mode,
    ok: r.ok,
    exitCode: r.exitCode,
    rerun: r.rerun,
    interrupted: r.interrupted,
    runs: 1,
    durationMs: r.durationMs,
    ops: r.totals.ops,
    opsPerSec: r.totals.opsPerSec,
    hostRssBytes: r.host.rssBytes,
    hintingActive: mode === 'off' || (r as RunResult & { hinting?: unknown }).hinting !== undefined,
    ...(r.cpuTime ? { cpu: { guestRunNsPerOp: r.cpuTime.guestRunNsPerOp, hostRunNs: r.cpuTime.hostRunNs } } : {}),
    zoneLock: zoneLockOf(r.locks),
    locks: r.locks ?? [],
    violations: r.violations,
    errors: r.errors,
    ...(r.hinting?.hint
      ? {
          hint: {
            runs: r.hinting.hint.runs,
            bytesHinted: r.hinting.hint.bytesHinted,
            bytesPerRun: r.hinting.hint.bytesPerRun,
            runMsP50: r.hinting.hint.runMs.p50,
            duplicateRatio: r.hinting.hint.duplicateRatio,
            distinctBytes: r.hinting.hint.distinctBytes,
            shrinkerBlocksReturned: r.hinting.hint.shrinker.blocksReturned,
            allocFailuresBalloonHeld: r.hinting.hint.shrinker.emptyWhileBalloonHeld,
          },
        }
      : {}),
  };
}

/** The label of the A/A control runs in the sequence. */
export const CONTROL = 'offControl';

/**
 * The order of the runs: off, then per round each mode between off runs and
 * the A/A control last: off, m1, off, m2, off, ..., control, off.
 */
export function compareSchedule(modes: readonly HintingModeName[], repeat: number): string[] {
  const middle = [...modes.filter((m) => m !== 'off'), CONTROL];
  const seq = ['off'];
  for (let r = 0; r < repeat; r++) for (const m of middle) seq.push(m, 'off');
  return seq;
}

const signedPct = (x: number, digits = 1) => `${x >= 0 ? '+' : ''}${x.toFixed(digits)}%`;
/** A ratio as a change in percent: 0.982 -> -1.8%. */
const change = (ratio: number) => signedPct((ratio - 1) * 100);
const intervalPct = (e: RatioEstimate) => `[${change(e.lo)}, ${change(e.hi)}]`;

/**
 * The verdict in words for one mode against off (or, with `mode` null, the
 * A/A control's). Resolved only when the mode's 95% interval holds at least
 * 95% and excludes no difference, and the A/A control's own interval (when
 * it has one) includes no difference: the method must not see a difference
 * between off and off.
 */
export function costVerdict(mode: string | null, ops: RatioEstimate | undefined, control: RatioEstimate | undefined, guest?: RatioEstimate, level = 0.95): { resolved: boolean; text: string } {
  const need = samplesForLevel(level);
  const pctLevel = `${Math.round(level * 100)}%`;
  const name = mode ?? 'A/A control (off against off)';
  const tol = `${BRACKET_TOLERANCE * 100}%`;
  if (ops === undefined || ops.accepted === 0) {
    const ran = ops?.brackets ?? 0;
    return { resolved: false, text: `${name}: not resolved: ${ran === 0 ? 'no bracket ran' : `none of its ${ran} brackets was usable (the off runs around it differed by more than ${tol}: the machine changed speed)`}; use a larger --repeat` };
  }
  if (ops.coverage < level) {
    return { resolved: false, text: `${name}: not resolved: ${ops.accepted} usable bracket${ops.accepted === 1 ? '' : 's'} of ${ops.brackets} (median ${change(ops.median)}); a ${pctLevel} interval needs at least ${need}; use a larger --repeat` };
  }
  if (mode === null) {
    const centred = ops.lo <= 1 && 1 <= ops.hi;
    return { resolved: centred, text: centred ? `A/A control (off against off): ${change(ops.median)} ${intervalPct(ops)}: this machine's noise floor for this comparison` : `A/A control (off against off): ${change(ops.median)} ${intervalPct(ops)}: off differs from off, so the machine drifted during this comparison; no verdict here is resolved` };
  }
  const controlLine = control !== undefined && control.accepted > 0 ? ` (A/A interval ${intervalPct(control)})` : '';
  if (control !== undefined && control.coverage >= level && !(control.lo <= 1 && 1 <= control.hi)) {
    return { resolved: false, text: `${mode}: not resolved: ${change(ops.median)} ${intervalPct(ops)}, but the A/A control moved too${controlLine}: the machine drifted during this comparison` };
  }
  if (ops.lo <= 1 && 1 <= ops.hi) {
    return { resolved: false, text: `${mode}: not resolved: the difference, ${change(ops.median)} ${intervalPct(ops)}, is inside this machine's noise${controlLine}` };
  }
  const cost = (e: RatioEstimate) => (e.median <= 1 ? `costs ${((1 - e.median) * 100).toFixed(1)}% [${((1 - e.hi) * 100).toFixed(1)}%, ${((1 - e.lo) * 100).toFixed(1)}%]` : `is faster by ${((e.median - 1) * 100).toFixed(1)}% [${((e.lo - 1) * 100).toFixed(1)}%, ${((e.hi - 1) * 100).toFixed(1)}%]`);
  let g = '';
  if (guest !== undefined && guest.accepted > 0) {
    const gResolved = guest.coverage >= level && !(guest.lo <= 1 && 1 <= guest.hi);
    g = gResolved ? `; per guest cpu-second it ${cost(guest)}` : `; per guest cpu-second ${change(guest.median)} ${intervalPct(guest)}, not resolved`;
  }
  return { resolved: true, text: `${mode} ${cost(ops)} of ops/s (${ops.accepted} of ${ops.brackets} brackets, ${pctLevel})${g}` };
}

/**
 * Run the bracketed sequence (sequentially: the runs must not compete for
 * the cores) on one shared buffer. `hooks.interrupt` ends the run in
 * progress early and starts no more; a failing run stops the comparison.
 */
export async function runCompare(base: Config, modes: readonly HintingModeName[] = HINTING_MODES, onRun?: (mode: HintingModeName, i: number, n: number, control: boolean) => void, hooks: RunHooks = {}, repeat = 1): Promise<CompareResult> {
  const schedule = compareSchedule(modes, repeat);
  const buffer = hooks.buffer ?? sharedBufferFor(base);
  const sequence: CompareRun[] = [];
  const byLabel = new Map<string, RunResult[]>();
  for (let i = 0; i < schedule.length; i++) {
    if (hooks.interrupt?.aborted) break;
    const label = schedule[i];
    const mode: HintingModeName = label === CONTROL ? 'off' : (label as HintingModeName);
    onRun?.(mode, i, schedule.length, label === CONTROL);
    const r = await runSimulation({ ...base, hinting: mode, lockstat: true }, { ...hooks, buffer });
    sequence.push({ label, opsPerSec: r.totals.opsPerSec, opsPerGuestCpuSec: r.cpuTime?.opsPerGuestCpuSec ?? NaN, exitCode: r.exitCode });
    const key = label === CONTROL ? 'off' : label;
    byLabel.set(key, [...(byLabel.get(key) ?? []), r]);
    if (r.exitCode === 1 || r.exitCode === 3) break;
  }
  // Only whole brackets count: the sequence up to its last off run.
  let whole = sequence.length;
  while (whole > 0 && sequence[whole - 1].label !== 'off') whole--;
  const brackets = whole >= 3 ? sequence.slice(0, whole) : [];
  const ops = bracketRatios(brackets.map((x) => ({ mode: x.label, opsPerSec: x.opsPerSec })));
  const guestOk = brackets.every((x) => Number.isFinite(x.opsPerGuestCpuSec));
  const guest = guestOk ? bracketRatios(brackets.map((x) => ({ mode: x.label, opsPerSec: x.opsPerGuestCpuSec }))) : {};
  const control = ops[CONTROL] ? ratioEstimate(ops[CONTROL]) : undefined;
  const rows: CompareRow[] = [];
  const verdicts: string[] = [];
  for (const mode of modes) {
    const runs = byLabel.get(mode);
    if (!runs) continue;
    // The representative run: the median ops/s of the mode's runs (a failing run wins, to be seen).
    const failed = runs.find((r) => !r.ok && !r.interrupted);
    const sorted = [...runs].sort((a, b) => a.totals.opsPerSec - b.totals.opsPerSec);
    const rep = failed ?? sorted[Math.floor((sorted.length - 1) / 2)];
    const row = compareRow(mode, rep);
    row.runs = runs.length;
    row.opsPerSec = median(runs.map((r) => r.totals.opsPerSec));
    row.interrupted = runs.some((r) => r.interrupted);
    row.exitCode = worstExit(runs.map((r) => r.exitCode));
    row.ok = row.exitCode === 0;
    const label = mode === 'off' ? CONTROL : mode;
    if (ops[label]) {
      row.opsRatio = ratioEstimate(ops[label]);
      if (guest[label]) row.guestCpuRatio = ratioEstimate(guest[label]);
      const v = mode === 'off' ? costVerdict(null, row.opsRatio, undefined) : costVerdict(mode, row.opsRatio, control, row.guestCpuRatio);
      row.verdict = v.text;
      row.resolved = v.resolved;
      if (mode === 'off') verdicts.unshift(v.text);
      else verdicts.push(v.text);
    }
    rows.push(row);
  }
  const why = hooks.interrupt?.aborted ? hooks.interrupt.reason : undefined;
  const exitCode = worstExit(sequence.map((r) => r.exitCode), why);
  return { seed: base.seed, config: { ...base, lockstat: true }, ok: exitCode === 0, exitCode, modes: rows, modeNames: [...modes], repeat, bracketTolerance: BRACKET_TOLERANCE, sequence, verdicts, ...(why !== undefined ? { interrupted: String(why) } : {}) };
}

/** The exit status of several runs: a simulator failure, then a violation, then an interrupt (130/143), then 0. */
export function worstExit(codes: readonly ExitCode[], interrupt?: unknown): ExitCode {
  if (codes.includes(3)) return 3;
  if (codes.includes(1)) return 1;
  if (interrupt !== undefined) return interruptExitCode(interrupt);
  if (codes.includes(143)) return 143;
  if (codes.includes(130)) return 130;
  return 0;
}

const pct = (x: number, ref: number) => (ref > 0 ? `${x >= ref ? '+' : ''}${(((x - ref) / ref) * 100).toFixed(1)}%` : '-');
const ns = (x: number) => (x >= 1e6 ? `${(x / 1e6).toFixed(2)}ms` : x >= 1e3 ? `${(x / 1e3).toFixed(2)}us` : `${Math.round(x)}ns`);
const num = (x: number) => (x >= 1e6 ? `${(x / 1e6).toFixed(2)}M` : x >= 1e4 ? `${(x / 1e3).toFixed(1)}k` : `${Math.round(x)}`);
const est = (e: RatioEstimate | undefined) => (e === undefined || e.accepted === 0 ? '-' : `${change(e.median)} ${e.accepted > 1 ? intervalPct(e) : '(1 bracket)'}`);

/** The side-by-side table as rows of text, the header first (compareText prints it; the HTML report shows it). */
export function compareTableRows(c: CompareResult): string[][] {
  const ref = c.modes.find((m) => m.mode === 'off') ?? c.modes[0];
  const rows = [['hinting', 'runs', 'ops/s', 'vs off [95%]', 'per guest cpu-s [95%]', 'brackets', 'host-rss', 'guest cpu/op', 'host cpu', 'zone acq', 'contentions', 'cont/acq', 'wait/acq', 'vs off', 'hold/acq', 'result']];
  for (const m of c.modes) {
    const z = m.zoneLock;
    rows.push([
      m.mode === 'off' && m.opsRatio ? 'off (A/A)' : m.mode,
      String(m.runs),
      num(m.opsPerSec),
      est(m.opsRatio),
      est(m.guestCpuRatio),
      m.opsRatio ? `${m.opsRatio.accepted}/${m.opsRatio.brackets}` : '-',
      fmtBytes(m.hostRssBytes),
      m.cpu ? ns(m.cpu.guestRunNsPerOp) : '-',
      m.cpu ? ns(m.cpu.hostRunNs) : '-',
      num(z.acquisitions),
      num(z.contentions),
      z.acquisitions > 0 ? `${((z.contentions / z.acquisitions) * 100).toFixed(2)}%` : '-',
      ns(z.waitNsPerAcquisition),
      m === ref ? '' : pct(z.waitNsPerAcquisition, ref.zoneLock.waitNsPerAcquisition),
      ns(z.holdNsPerAcquisition),
      m.ok ? 'ok' : `exit ${m.exitCode}`,
    ]);
  }
  return rows;
}

/** What the comparison did, in one line. */
export function compareMethodLine(c: Pick<CompareResult, 'config' | 'seed' | 'repeat' | 'bracketTolerance'>, modes: readonly string[] = HINTING_MODES): string {
  const n = compareSchedule(modes as HintingModeName[], c.repeat).length;
  return `compare: workload=${c.config.workload} cpus=${c.config.cpus} seed=${c.seed}: ${c.repeat} round${c.repeat === 1 ? '' : 's'} of bracketed runs (off, mode, off, ..., off as an A/A control, off; ${n} runs of ${fmtDuration(c.config.durationMs)}) on one buffer, prefault ${c.config.prefault ? 'on' : 'off'}, warm ${c.config.warm ? 'on' : 'off'}, lockstat on; a bracket counts when its off runs agree within ${c.bracketTolerance * 100}%`;
}

export function compareText(c: CompareResult): string {
  const out = ['', compareMethodLine(c, c.modeNames), table(compareTableRows(c)), '', ...c.verdicts];
  for (const m of c.modes) {
    if (m.hint && m.mode === 'hint') out.push(`hint: ${m.hint.runs} runs, ${fmtBytes(m.hint.bytesPerRun)} hinted per run (p50 ${m.hint.runMsP50.toFixed(1)} ms), shrinker returned ${m.hint.shrinkerBlocksReturned} blocks, ${m.hint.allocFailuresBalloonHeld} allocation failures with the balloon holding pages; host-rss is after the last DONE`);
    if (m.hint && m.mode === 'naive') out.push(`naive: ${fmtBytes(m.hint.bytesHinted)} sent but only ${fmtBytes(m.hint.distinctBytes)} distinct (duplicate ratio ${m.hint.duplicateRatio.toFixed(3)}): the same block again and again`);
    if (!m.hintingActive) out.push(`note: hinting=${m.mode} reported no hinting activity in this build (no hinting section in its result): its row is a hinting-off run`);
    for (const e of m.errors) out.push(`FAILED (simulator) hinting=${m.mode}: ${e}`);
    for (const v of m.violations.slice(0, 5)) out.push(`VIOLATION hinting=${m.mode} ${v.oracle}: ${v.message}`);
    if (!m.ok && !m.interrupted) out.push(`rerun: ${m.rerun}`);
  }
  if (c.interrupted) out.push(`INTERRUPTED by ${c.interrupted}: ${c.sequence.length} of ${compareSchedule(HINTING_MODES, c.repeat).length} runs ran${c.modes.some((m) => m.interrupted) ? ', the last one cut short' : ''}`);
  out.push(c.ok ? `OK: every run passed every oracle (seed ${c.seed})` : c.exitCode === 130 || c.exitCode === 143 ? `exit ${c.exitCode}: every oracle that ran passed (seed ${c.seed})` : `FAILED with exit ${c.exitCode} (seed ${c.seed})`);
  return out.join('\n');
}

export function compareJson(c: CompareResult): Record<string, unknown> {
  return { command: 'compare', seed: c.seed, config: c.config, ok: c.ok, exitCode: c.exitCode, repeat: c.repeat, bracketTolerance: c.bracketTolerance, verdicts: c.verdicts, modes: c.modes, sequence: c.sequence, interrupted: c.interrupted !== undefined, ...(c.interrupted ? { signal: c.interrupted } : {}) };
}

/** --repeat: rounds of brackets per mode. */
export const REPEAT_RANGE = { min: 1, max: 1000 };
export const DEFAULT_REPEAT = 6;

/** The modes `--modes` accepts (off always runs). */
export const COMPARE_MODES = HINTING_MODES.filter((m) => m !== 'off');

/** Flags of `sim compare` beyond the run flags: --modes, --repeat, and the steady-state defaults. */
export const COMPARE_OPTIONS = {
  hinting: { type: 'string', describe: 'not accepted: compare runs every mode of --modes' },
  modes: { type: 'string', default: 'all', describe: `the hinting modes to bracket against off, comma-separated: ${COMPARE_MODES.join(', ')}, or all (off and the A/A control always run). hint with the default Firecracker device can hit the free page hint race, which ends the comparison with its violation` },
  repeat: { type: 'string', default: String(DEFAULT_REPEAT), describe: `rounds of bracketed runs (each: every mode and an A/A control between off runs); a 95% interval needs at least 6 usable brackets per mode (${REPEAT_RANGE.min}..${REPEAT_RANGE.max})` },
  prefault: { type: 'boolean', default: true, describe: "write all guest memory at set-up (the simulator process's own first-touch faults stay out of the runs); --no-prefault to include them" },
  warm: { type: 'boolean', default: true, describe: 'every run starts as a guest that touched all its memory (the host backs it all: no first-touch host faults with hinting off); --no-warm to include that warm-up' },
} as const;

/** --modes: 'all' or a comma-separated list of COMPARE_MODES; returns off and the chosen modes in HINTING_MODES order. */
export function parseCompareModes(raw: unknown): HintingModeName[] {
  const s = String(raw ?? 'all').trim();
  if (s === 'all') return [...HINTING_MODES];
  const names = s.split(',').map((x) => x.trim());
  const accepted = `accepted: all, or a comma-separated list of ${COMPARE_MODES.join(', ')} (off always runs)`;
  for (const n of names) {
    if (!(COMPARE_MODES as readonly string[]).includes(n)) throw new UsageError(`--modes: '${n}' is not accepted; ${accepted}`);
  }
  if (new Set(names).size !== names.length) throw new UsageError(`--modes: '${s}' names a mode twice; ${accepted}`);
  return HINTING_MODES.filter((m) => m === 'off' || names.includes(m));
}

/** The `compare` command body; cli.ts passes its flag parser (importing cli.ts would run the CLI). */
export async function runCompareCommand(a: Record<string, unknown>, parse: (a: Record<string, unknown>) => Config, after?: (c: CompareResult) => void): Promise<void> {
  let base: Config;
  let repeat: number;
  let modes: HintingModeName[];
  try {
    // The command sets --hinting itself, one run per mode.
    if (a.hinting !== undefined) throw new UsageError(`--hinting: not accepted by compare, which runs every mode of --modes (${HINTING_MODES.join(', ')} by default)`);
    modes = parseCompareModes(a.modes);
    if (a.discard === false) throw new UsageError('--no-discard: not accepted by compare, which runs off, hint and naive too; use sim --hinting reporting|aeration --no-discard');
    const rawRepeat = String(a.repeat ?? DEFAULT_REPEAT).trim();
    if (!/^\d+$/.test(rawRepeat) || Number(rawRepeat) < REPEAT_RANGE.min || Number(rawRepeat) > REPEAT_RANGE.max) throw new UsageError(`--repeat: '${a.repeat}' is not accepted; accepted: a whole number of rounds from ${REPEAT_RANGE.min} to ${REPEAT_RANGE.max}`);
    repeat = Number(rawRepeat);
    base = parse({ ...a, hinting: 'off', lockstat: true });
  } catch (e) {
    if (e instanceof UsageError) {
      process.stderr.write(`sim: ${e.message}\n`);
      process.exit(2);
    }
    throw e;
  }
  const json = Boolean(a.json);
  const human = json ? process.stderr : process.stdout;
  human.write(configLines({ ...base, lockstat: true }).join('\n') + '\n');
  human.write(`compare: modes ${modes.join(', ')}\n${compareMethodLine({ config: base, seed: base.seed, repeat, bracketTolerance: BRACKET_TOLERANCE }, modes)}; --repeat N trades time for precision\n`);
  let c: CompareResult;
  // First signal: the run in progress ends early and no further run starts; a second: abort (src/cli/signals.ts).
  const intr = installInterrupt({
    onAbort: (sig) => {
      process.stderr.write(`sim: ${sig} again: compare aborted, no result (exit 3); seed ${base.seed}\n`);
    },
  });
  try {
    c = await runCompare(base, modes, (mode, i, n, control) => process.stderr.write(`compare: running hinting=${mode}${control ? ' (the A/A control)' : ''} (run ${i + 1} of ${n})...\n`), { interrupt: intr.signal }, repeat);
  } catch (e) {
    process.stderr.write(`sim: simulator failure: ${e instanceof Error ? e.message : String(e)}\nseed ${base.seed}\n`);
    process.exit(3);
  }
  human.write(compareText(c) + '\n');
  after?.(c); // --html (src/cli/commands.ts)
  if (json) process.stdout.write(JSON.stringify(compareJson(c)) + '\n');
  process.exitCode = c.exitCode;
  intr.dispose();
}

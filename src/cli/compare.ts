// `sim compare`: the reviewer's question, "what does hinting cost in lock
// wait?". Runs one workload with one seed once per hinting mode (every mode in
// HINTING_MODES, so new modes join automatically), lockstat on in every run so
// the comparison is like for like, and prints them side by side: ops/s, host
// RSS at the end, zone lock contentions and wait time per acquisition.

import { type Config, HINTING_MODES, type HintingModeName } from '../sim/config.js';
import type { LockClassStats } from '../locking/lockstat.js';
import { configLines, table } from './report.js';
import { type RunHooks, type RunResult, runSimulation } from '../sim/run.js';
import { type ExitCode, interruptExitCode } from '../sim/results.js';
import { installInterrupt } from './signals.js';
import { UsageError } from '../base/errors.js';
import { fmtBytes } from '../base/units.js';

export interface CompareRow {
  mode: HintingModeName;
  ok: boolean;
  exitCode: ExitCode;
  rerun: string;
  /** The run was ended early by an interrupt (its workload ran durationMs). */
  interrupted: boolean;
  durationMs: number;
  ops: number;
  opsPerSec: number;
  hostRssBytes: number;
  /** False when the run carried no `hinting` section: the mode did nothing visible in this build. */
  hintingActive: boolean;
  /** Guest CPU time (cpus + reporter) per op and host CPU time (device), from schedstat; absent where unreadable. */
  cpu?: { guestRunNsPerOp: number; hostRunNs: number };
  zoneLock: { acquisitions: number; contentions: number; waitNsTotal: number; waitNsPerAcquisition: number; holdNsPerAcquisition: number };
  locks: LockClassStats[];
  violations: RunResult['violations'];
  errors: string[];
  /** hint / naive: what the balloon did (src/sim/modes/stats.ts). */
  hint?: { runs: number; bytesHinted: number; bytesPerRun: number; runMsP50: number; duplicateRatio: number; distinctBytes: number; shrinkerBlocksReturned: number; allocFailuresBalloonHeld: number };
}

export interface CompareResult {
  seed: number;
  /** The shared configuration; `hinting` varies per row. */
  config: Config;
  ok: boolean;
  exitCode: ExitCode;
  modes: CompareRow[];
  /** Interrupted (RunHooks.interrupt): the signal; the rows are the runs so far, the last one cut short. */
  interrupted?: string;
}

function zoneLockOf(locks: LockClassStats[] | undefined): CompareRow['zoneLock'] {
  const z = locks?.find((l) => l.class === 'zone.lock');
  if (!z) return { acquisitions: 0, contentions: 0, waitNsTotal: 0, waitNsPerAcquisition: 0, holdNsPerAcquisition: 0 };
  const per = (x: number) => (z.acquisitions > 0 ? x / z.acquisitions : 0);
  return { acquisitions: z.acquisitions, contentions: z.contentions, waitNsTotal: z.waitNs.total, waitNsPerAcquisition: per(z.waitNs.total), holdNsPerAcquisition: per(z.holdNs.total) };
}

export function compareRow(mode: HintingModeName, r: RunResult): CompareRow {
  return {
    mode,
    ok: r.ok,
    exitCode: r.exitCode,
    rerun: r.rerun,
    interrupted: r.interrupted,
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

/**
 * Run `base` once per mode (sequentially: the runs must not compete for the
 * cores). `hooks.interrupt` ends the run in progress early and starts no more.
 */
export async function runCompare(base: Config, modes: readonly HintingModeName[] = HINTING_MODES, onRun?: (mode: HintingModeName) => void, hooks: RunHooks = {}): Promise<CompareResult> {
  const rows: CompareRow[] = [];
  for (const mode of modes) {
    if (hooks.interrupt?.aborted) break;
    onRun?.(mode);
    const r = await runSimulation({ ...base, hinting: mode, lockstat: true }, hooks);
    rows.push(compareRow(mode, r));
  }
  const why = hooks.interrupt?.aborted ? hooks.interrupt.reason : undefined;
  const exitCode = worstExit(rows.map((r) => r.exitCode), why);
  return { seed: base.seed, config: { ...base, lockstat: true }, ok: exitCode === 0, exitCode, modes: rows, ...(why !== undefined ? { interrupted: String(why) } : {}) };
}

/** The exit status of several runs: a simulator failure, then a violation, then an interrupt (130/143), then 0. */
export function worstExit(codes: readonly ExitCode[], interrupt?: unknown): ExitCode {
  if (codes.includes(3)) return 3;
  if (codes.includes(1)) return 1;
  if (interrupt !== undefined || codes.includes(130) || codes.includes(143)) return interruptExitCode(interrupt);
  return 0;
}

const pct = (x: number, ref: number) => (ref > 0 ? `${x >= ref ? '+' : ''}${(((x - ref) / ref) * 100).toFixed(1)}%` : '-');
const ns = (x: number) => (x >= 1e6 ? `${(x / 1e6).toFixed(2)}ms` : x >= 1e3 ? `${(x / 1e3).toFixed(2)}us` : `${Math.round(x)}ns`);
const num = (x: number) => (x >= 1e6 ? `${(x / 1e6).toFixed(2)}M` : x >= 1e4 ? `${(x / 1e3).toFixed(1)}k` : `${Math.round(x)}`);

/** The side-by-side table as rows of text, the header first (compareText prints it; the HTML report shows it). */
export function compareTableRows(c: CompareResult): string[][] {
  const ref = c.modes.find((m) => m.mode === 'off') ?? c.modes[0];
  const rows = [['hinting', 'ops/s', 'vs off', 'host-rss', 'guest cpu/op', 'host cpu', 'zone acq', 'contentions', 'cont/acq', 'wait/acq', 'vs off', 'hold/acq', 'result']];
  for (const m of c.modes) {
    const z = m.zoneLock;
    rows.push([
      m.mode,
      num(m.opsPerSec),
      m === ref ? '' : pct(m.opsPerSec, ref.opsPerSec),
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

export function compareText(c: CompareResult): string {
  const out = ['', `compare: workload=${c.config.workload} cpus=${c.config.cpus} seed=${c.seed}, one run per hinting mode, lockstat on in each`, table(compareTableRows(c))];
  for (const m of c.modes) {
    if (m.hint && m.mode === 'hint') out.push(`hint: ${m.hint.runs} runs, ${fmtBytes(m.hint.bytesPerRun)} hinted per run (p50 ${m.hint.runMsP50.toFixed(1)} ms), shrinker returned ${m.hint.shrinkerBlocksReturned} blocks, ${m.hint.allocFailuresBalloonHeld} allocation failures with the balloon holding pages; host-rss is after the last DONE`);
    if (m.hint && m.mode === 'naive') out.push(`naive: ${fmtBytes(m.hint.bytesHinted)} sent but only ${fmtBytes(m.hint.distinctBytes)} distinct (duplicate ratio ${m.hint.duplicateRatio.toFixed(3)}): the same block again and again`);
    if (!m.hintingActive) out.push(`note: hinting=${m.mode} reported no hinting activity in this build (no hinting section in its result): its row is a hinting-off run`);
    for (const e of m.errors) out.push(`FAILED (simulator) hinting=${m.mode}: ${e}`);
    for (const v of m.violations.slice(0, 5)) out.push(`VIOLATION hinting=${m.mode} ${v.oracle}: ${v.message}`);
    if (!m.ok) out.push(`rerun: ${m.rerun}`);
  }
  if (c.interrupted) out.push(`INTERRUPTED by ${c.interrupted}: ${c.modes.length} of ${HINTING_MODES.length} modes ran${c.modes.some((m) => m.interrupted) ? ', the last one cut short' : ''}`);
  out.push(c.ok ? `OK: every run passed every oracle (seed ${c.seed})` : c.exitCode === 130 || c.exitCode === 143 ? `exit ${c.exitCode}: every oracle that ran passed (seed ${c.seed})` : `FAILED with exit ${c.exitCode} (seed ${c.seed})`);
  return out.join('\n');
}

export function compareJson(c: CompareResult): Record<string, unknown> {
  return { command: 'compare', seed: c.seed, config: c.config, ok: c.ok, exitCode: c.exitCode, modes: c.modes, interrupted: c.interrupted !== undefined, ...(c.interrupted ? { signal: c.interrupted } : {}) };
}

/** The `compare` command body; cli.ts passes its flag parser (importing cli.ts would run the CLI). */
export async function runCompareCommand(a: Record<string, unknown>, parse: (a: Record<string, unknown>) => Config, after?: (c: CompareResult) => void): Promise<void> {
  let base: Config;
  try {
    // The command sets --hinting itself, one run per mode.
    if (a.hinting !== undefined) throw new UsageError(`--hinting: not accepted by compare, which runs every mode (${HINTING_MODES.join(', ')})`);
    if (a.discard === false) throw new UsageError('--no-discard: not accepted by compare, which runs off, hint and naive too; use sim --hinting reporting|aeration --no-discard');
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
  human.write(`compare: modes ${HINTING_MODES.join(', ')}\n`);
  let c: CompareResult;
  // First signal: the run in progress ends early and no further mode starts; a second: abort (src/cli/signals.ts).
  const intr = installInterrupt({
    onAbort: (sig) => {
      process.stderr.write(`sim: ${sig} again: compare aborted, no result (exit 3); seed ${base.seed}\n`);
    },
  });
  try {
    c = await runCompare(base, HINTING_MODES, (mode) => process.stderr.write(`compare: running hinting=${mode}...\n`), { interrupt: intr.signal });
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

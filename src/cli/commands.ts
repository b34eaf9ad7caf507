// The `sim` commands (docs/DESIGN.md §10): run (the default), compare and
// stress, on yargs. src/cli/main.ts is the executable; this module can be
// imported (tests, tools).
//   exit 0 ok, 1 an oracle found a violation (or an --inject never acted),
//   2 bad usage, 3 the simulator failed; 130 / 143 interrupted by SIGINT /
//   SIGTERM with every oracle that ran passing (src/cli/signals.ts).

import yargs, { type Argv } from 'yargs';
import { type Config, rerunCommand } from '../sim/config.js';
import { COMPARE_OPTIONS, runCompareCommand } from './compare.js';
import { formatLockstat, parseLockstatFlags } from './lockstat-report.js';
import { configLines, resultText, toJson } from './report.js';
import { renderChart } from './chart.js';
import { runSimulation } from '../sim/run.js';
import { reportSchedule } from './schedule-file.js';
import { collectRepeated } from '../check/inject.js';
import { STRESS_OPTIONS, runStressCommand } from './stress.js';
import { runStressMergeCommand } from './stress-merge.js';
import { UsageError } from '../base/errors.js';
import { fmtBytes } from '../base/units.js';
import { RUN_OPTIONS, TRACE_OPTIONS, type RawFlags, parseRunFlags, parseTraceFlags } from './flags.js';
import { installInterrupt } from './signals.js';
import { writeTraceFile } from './trace-file.js';
import { runHtml } from './html/run-page.js';
import { compareHtml } from './html/compare-page.js';
import { campaignHtml } from './html/campaign-page.js';
import { writeFileSync } from 'node:fs';
import { CALIBRATE_OPTIONS, runCalibrateCommand } from './calibrate.js';

function usageExit(msg: string): never {
  process.stderr.write(`sim: ${msg}\n`);
  process.exit(2);
}

async function runCommand(a: RawFlags): Promise<void> {
  let cfg: Config;
  let traceOut: ReturnType<typeof parseTraceFlags>;
  try {
    cfg = parseRunFlags(a);
    traceOut = parseTraceFlags(a);
  } catch (e) {
    if (e instanceof UsageError) usageExit(e.message);
    throw e;
  }
  const json = Boolean(a.json);
  const human = json ? process.stderr : process.stdout;
  human.write(configLines(cfg).join('\n') + '\n');
  const tty = process.stderr.isTTY === true;
  // First SIGINT/SIGTERM: end the workload, settle, check, report (exit 130/143
  // if nothing failed); a second: abort at once (src/cli/signals.ts).
  const intr = installInterrupt({
    onAbort: (sig) => {
      const why = `${sig} again: aborted before the run finished, no result`;
      process.stderr.write(`sim: ${why} (exit 3); seed ${cfg.seed}\nrerun: ${rerunCommand(cfg)}\n`);
      // --json: still exactly one object on stdout, saying there is no result.
      if (json) process.stdout.write(JSON.stringify({ seed: cfg.seed, config: cfg, ok: false, exitCode: 3, aborted: sig, errors: [why], rerun: rerunCommand(cfg) }) + '\n');
    },
  });
  let result;
  try {
    result = await runSimulation(cfg, {
      interrupt: intr.signal,
      onSample: tty
        ? (p, el) => {
            process.stderr.write(`\r  t=${(el / 1000).toFixed(1)}s ops=${p.ops.toExponential(2)} guest-used=${fmtBytes(p.guestUsedBytes)} host-rss=${fmtBytes(p.hostRssBytes)}   `);
          }
        : undefined,
    });
  } catch (e) {
    if (tty) process.stderr.write('\n');
    process.stderr.write(`sim: simulator failure: ${e instanceof Error ? e.message : String(e)}\nseed ${cfg.seed}; rerun: ${rerunCommand(cfg)}\n`);
    process.exit(3);
  }
  if (tty) process.stderr.write('\r' + ' '.repeat(100) + '\r');
  human.write(resultText(result) + '\n');
  const chart = a.chart === undefined ? tty && cfg.hinting !== 'off' : Boolean(a.chart);
  if (chart) (tty ? process.stderr : human).write('\n' + renderChart(result.series).join('\n') + '\n');
  if (result.locks) human.write('\n' + formatLockstat(result.locks, parseLockstatFlags(a).output) + '\n');
  if (result.sched) reportSchedule(result, a['schedule-out'] === undefined ? undefined : String(a['schedule-out']), process.stderr);
  const traceWritten = traceOut.file !== null && result.trace !== undefined && (traceOut.when === 'always' || !result.ok);
  if (traceWritten) {
    const n = writeTraceFile(traceOut.file!, result.trace!);
    process.stderr.write(`trace written to ${traceOut.file} (${n} events; open it in https://ui.perfetto.dev or chrome://tracing)\n`);
  }
  if (a.html !== undefined) writeHtml(String(a.html), runHtml(result, traceWritten ? { traceFile: traceOut.file! } : {}));
  if (json) process.stdout.write(JSON.stringify(toJson(result)) + '\n');
  process.exitCode = result.exitCode;
  intr.dispose();
}

/**
 * The files of `sim stress merge FILES...`, from argv itself: with
 * duplicate-arguments-array off, yargs keeps only the last value of the
 * variadic positional.
 */
function mergeFiles(argv: readonly string[]): string[] {
  const i = argv.indexOf('merge');
  if (i < 0) return [];
  const rest = argv.slice(i + 1);
  // Not a file: a flag, or the value of --html FILE.
  return rest.filter((x, k) => !x.startsWith('-') && rest[k - 1] !== '--html');
}

/** --html of `sim stress merge` (read from argv, as the files are). */
function mergeHtml(argv: readonly string[]): string | undefined {
  const k = argv.indexOf('--html');
  if (k >= 0) return argv[k + 1];
  return argv.find((x) => x.startsWith('--html='))?.slice('--html='.length);
}

/** --html FILE: the page, and where it went (stderr, so --json stdout stays one object). */
function writeHtml(file: string, html: string): void {
  writeFileSync(file, html);
  process.stderr.write(`html report written to ${file} (${(html.length / 2 ** 20).toFixed(1)} MiB, self-contained)\n`);
}

export function buildCli(argv: string[]): Argv {
  // --inject is repeatable; yargs keeps only the last value of a repeated flag.
  const injects = collectRepeated(argv, 'inject');
  const withInjects = (a: RawFlags): RawFlags => (injects === undefined ? a : { ...a, inject: injects });
  return yargs(argv)
    .scriptName('sim')
    .usage('$0 [run] --cpus N --workload W [--memory SIZE] [--duration TIME] [--hinting MODE] [--seed S] [--json]')
    .command(['run', '$0'], 'run a simulation (default command)', (y) => y.options({ ...RUN_OPTIONS, ...TRACE_OPTIONS }), (a) => runCommand(withInjects(a as RawFlags)))
    .command('compare', 'what each hinting mode costs: bracketed runs (off, mode, off) of one workload and seed on one buffer, --repeat rounds with an A/A control; the median ratio to off with a 95% interval and a verdict in words', (y) => y.options({ ...RUN_OPTIONS, ...COMPARE_OPTIONS }), (a) => runCompareCommand(withInjects(a as RawFlags), parseRunFlags, a.html === undefined ? undefined : (c) => writeHtml(String(a.html), compareHtml(c))))
    .command(
      'stress',
      'many short runs across the cores, each with its own seed (--swarm: a random configuration per run); stops at the first failure and prints the command that reruns it; `sim stress merge FILES...` combines the --json files of a sharded campaign',
      (y) =>
        y
          .options({ ...RUN_OPTIONS, ...STRESS_OPTIONS })
          .command('merge <files..>', 'combine the --json summaries of every shard K/N of one campaign into its summary (refuses shards of different campaigns, missing or duplicate shards: exit 2)', (m) => m.positional('files', { type: 'string', array: true, describe: 'shard files (sim stress --shard K/N --json > FILE)' }), () => {
            const html = mergeHtml(argv);
            runStressMergeCommand(mergeFiles(argv), argv.includes('--json'), html === undefined ? undefined : (s, settings) => writeHtml(html, campaignHtml(s, { settings })));
          }),
      (a) => runStressCommand(withInjects(a as RawFlags), parseRunFlags, a.html === undefined ? undefined : (s) => writeHtml(String(a.html), campaignHtml(s, { settings: stressSettings(a as RawFlags) }))),
    )
    .command('calibrate', "measure this machine's host costs (first touch per 4 KiB and 2 MiB, MADV_DONTNEED by size, a VM exit, a futex round trip) and write a cost profile for --cost-profile FILE", (y) => y.options(CALIBRATE_OPTIONS), (a) => runCalibrateCommand(a as RawFlags))
    .strict()
    .parserConfiguration({ 'duplicate-arguments-array': false })
    .help()
    .version(false)
    .wrap(Math.min(120, process.stdout.columns || 120))
    .fail((msg, err) => {
      if (err && !(err instanceof UsageError)) {
        process.stderr.write(`sim: simulator failure: ${err.message}\n`);
        process.exit(3);
      }
      usageExit(`${(err?.message ?? msg ?? 'bad usage').split('\n')[0]} (see sim --help)`);
    });
}

/** The campaign page's settings line: the flags the campaign was started with. */
function stressSettings(a: RawFlags): string[] {
  const skip = new Set(['_', '$0', 'html', 'json']);
  const given = process.argv.slice(2).filter((x) => x.startsWith('--')).map((x) => x.slice(2).split('=')[0]);
  const parts = given.filter((k) => !skip.has(k)).map((k) => (k.startsWith('no-') || typeof a[k] === 'boolean' || a[k] === undefined ? `--${k}` : `--${k} ${String(a[k])}`));
  return [`sim stress ${[...new Set(parts)].join(' ')}`];
}

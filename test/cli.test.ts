import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { UsageError } from '../src/base/errors.js';
import { configFromArgs } from '../src/cli/flags.js';

const CLI = path.resolve(__dirname, '../dist/src/cli/main.js');
const sim = (...args: string[]) => spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', timeout: 60_000 });

describe('sim command line: bad input is one line naming the flag, exit 2', () => {
  const cases: [string[], RegExp][] = [
    [['--cpus', '0'], /^sim: --cpus: 0 is out of range; accepted: 1 to 64$/],
    [['--cpus', '1000'], /^sim: --cpus: 1000 is out of range/],
    [['--cpus', 'two'], /^sim: --cpus: 'two' is not a whole number/],
    [['--memory', '3K'], /^sim: --memory: .* accepted: 8MiB to 16GiB$/],
    [['--memory', '-1'], /^sim: --memory: '-1' is not a size/],
    [['--memory', '10000000'], /^sim: --memory: .*multiple of 4KiB/],
    [['--duration', 'abc'], /^sim: --duration: 'abc' is not a duration/],
    [['--duration', '0s'], /^sim: --duration: 0s is out of range/],
    [['--workload', 'nope'], /^sim: --workload: 'nope' is not accepted; accepted: page_fault1, churn, memhog, memfill, fragment$/],
    [['--hinting', 'maybe'], /^sim: --hinting: 'maybe' is not accepted/],
    [['--seed', '-5'], /^sim: --seed: -5 is out of range/],
    [['--queue-size', '100'], /^sim: --queue-size: 100 is not a power of 2/],
    [['--pcp-batch', '64', '--pcp-high', '32'], /^sim: --pcp-high: 32 must be greater than the pcp batch \(64\)$/],
    [['--pcp-high', '40', '--memory', '1G'], /^sim: --pcp-high: 40 must be greater than the pcp batch \(63, the kernel's for this memory size\)$/],
    [['--thp', 'sometimes'], /^sim: --thp: 'sometimes' is not accepted; accepted: never, always$/],
    [['--report-delay', 'soon'], /^sim: --report-delay: 'soon' is not accepted; use auto or a number with ms, s or m \(0s to 60s\)$/],
    [['--settle-timeout', 'autox'], /^sim: --settle-timeout: 'autox' is not accepted; use auto or a number with ms, s or m \(0s to 600s\)$/],
    [['--settle-timeout', '11m'], /^sim: --settle-timeout: 660s is out of range; accepted: 0s to 600s$/],
    [['--hog', '150%'], /^sim: --hog: '150%' is not accepted/],
    [['--frobnicate', '1'], /^sim: Unknown argument: frobnicate/],
    [['--hinting', 'off', '--no-discard'], /^sim: --no-discard: applies to --hinting reporting and aeration \(hint has --hint-device\); not off$/],
    [['compare', '--no-discard'], /^sim: --no-discard: not accepted by compare/],
    [['--inject', 'poison-unaware', '--poison', '--no-discard'], /^sim: --inject: poison-unaware does its harm through memory the host discards; it cannot show with --no-discard$/],
  ];
  // A process per case costs a node start-up each (about a second on a loaded
  // 2-core machine): every case is checked through the parser the CLI uses
  // (configFromArgs, the message the CLI prints after "sim: "), and a few,
  // one per kind of refusal, also end to end (exit 2, one line, no stack).
  const withDuration = (args: string[]) => [...args, '--duration', args.includes('--duration') ? args[args.indexOf('--duration') + 1] : '20ms'];
  const endToEnd = new Set(['--cpus 0', '--memory 10000000', '--workload nope', '--frobnicate 1', '--pcp-high 40 --memory 1G', 'compare --no-discard', '--inject poison-unaware --poison --no-discard']);
  for (const [args, re] of cases) {
    const key = args.join(' ');
    if (!args.includes('compare')) {
      it(`rejects ${key} (parser)`, () => {
        let msg = '';
        try {
          configFromArgs(withDuration(args));
        } catch (e) {
          expect(e).toBeInstanceOf(UsageError);
          msg = `sim: ${(e as Error).message}`;
        }
        expect(msg.split('\n')).toHaveLength(1);
        expect(msg).toMatch(re);
      });
    }
    if (!endToEnd.has(key)) continue;
    it(`rejects ${key} (process: exit 2, one line, no stack trace)`, () => {
      const r = sim(...withDuration(args));
      expect(r.status).toBe(2);
      const lines = r.stderr.trim().split('\n');
      expect(lines).toHaveLength(1);
      expect(lines[0]).toMatch(re);
      expect(r.stderr).not.toMatch(/at .*\.js:\d+/); // no stack trace
    });
  }

  it('lists every flag with its default in --help', () => {
    const r = sim('--help');
    expect(r.status).toBe(0);
    for (const f of ['--cpus', '--workload', '--memory', '--duration', '--seed', '--hinting', '--pcp', '--json', '--check-interval', '--wait-timeout']) expect(r.stdout).toContain(f);
    expect(r.stdout).toMatch(/default: "4"/);
    expect(r.stdout).toMatch(/1\.\.64/);
  });
});

describe('sim run output contract', () => {
  it('prints the seed and every parameter first and exactly one JSON object on stdout with --json', () => {
    const r = sim('--cpus', '2', '--workload', 'churn', '--memory', '32M', '--duration', '300ms', '--seed', '99', '--json');
    expect(r.status).toBe(0);
    expect(r.stderr.split('\n')[0]).toBe('balloon-sim: seed 99');
    expect(r.stderr.split('\n')[1]).toMatch(/^config: cpus=2 workload=churn memory=32MiB duration=300ms/);
    const j = JSON.parse(r.stdout);
    for (const k of ['seed', 'config', 'ok', 'violations', 'rerun', 'durationMs', 'totals', 'cpus', 'memory', 'checks']) expect(j).toHaveProperty(k);
    expect(j.seed).toBe(99);
    expect(j.ok).toBe(true);
    expect(j.cpus).toHaveLength(2);
    expect(j.totals.ops).toBeGreaterThan(0);
    expect(j.rerun).toMatch(/^sim --cpus 2 --workload churn --memory 32M --duration 300ms .*--seed 99/);
    expect(j.checks.find((c: { oracle: string }) => c.oracle === 'conservation').runs).toBeGreaterThan(0);
  });

  it('the rerun command parses back to the same configuration', () => {
    const r = sim('--cpus', '3', '--workload', 'memhog', '--memory', '24M', '--duration', '200ms', '--seed', '5', '--pcp', '--hog', '50%', '--hold', '50ms', '--json');
    expect(r.status).toBe(0);
    const j = JSON.parse(r.stdout);
    const again = sim(...j.rerun.split(' ').slice(1), '--json');
    expect(again.status).toBe(0);
    expect(JSON.parse(again.stdout).config).toEqual(j.config);
  });
});

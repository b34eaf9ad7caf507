// A sharded campaign end to end: N shards run side by side and merged by
// `sim stress merge` are the unsharded campaign's runs and seeds; shards of
// different campaigns, or a set missing or repeating a shard, are refused
// with one line, exit 2. Spawns dist/: run `npx tsc -p .` first.
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { UsageError } from '../src/base/errors.js';
import { mergeShards } from '../src/cli/stress-merge.js';

const CLI = path.resolve(__dirname, '../dist/src/cli/main.js');
const dir = mkdtempSync(path.join(tmpdir(), 'stress-merge-'));
// Small and short: 3 runs of 50 ms of one CPU (the runs' identity is what is compared, not their checks); one job per process.
const CAMPAIGN = ['stress', '--runs', '3', '--jobs', '1', '--seed', '21', '--cpus', '1', '--memory', '16M', '--hinting', 'off', '--run-duration', '50ms', '--json'];

function stress(extra: string[], file: string): Promise<number | null> {
  return new Promise((resolve) => {
    const c = spawn(process.execPath, [CLI, ...CAMPAIGN, ...extra], { stdio: ['ignore', 'pipe', 'ignore'] });
    let out = '';
    c.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
    const t = setTimeout(() => c.kill('SIGKILL'), 90_000);
    c.on('close', (code) => {
      clearTimeout(t);
      writeFileSync(file, out);
      resolve(code);
    });
  });
}
const merge = (...files: string[]) => spawnSync(process.execPath, [CLI, 'stress', 'merge', ...files], { encoding: 'utf8', timeout: 30_000 });
const at = (f: string) => path.join(dir, f);
type Entry = { index: number; seed: number; exitCode: number };
const runsOf = (j: { runs: Entry[] }) => j.runs.map(({ index, seed, exitCode }) => ({ index, seed, exitCode }));

describe('sim stress merge', () => {
  it('two shards run side by side, merged, are the unsharded campaign: same runs, seeds and exit codes', async () => {
    const codes = await Promise.all([stress([], at('all.json')), stress(['--shard', '0/2'], at('s0.json')), stress(['--shard', '1/2'], at('s1.json'))]);
    expect(codes).toEqual([0, 0, 0]);
    const all = JSON.parse(readFileSync(at('all.json'), 'utf8'));
    expect(all.runs.map((r: Entry) => r.index)).toEqual([0, 1, 2]);
    const m = spawnSync(process.execPath, [CLI, 'stress', 'merge', at('s0.json'), at('s1.json'), '--json'], { encoding: 'utf8', timeout: 30_000 });
    expect(m.status, m.stderr).toBe(0);
    const j = JSON.parse(m.stdout);
    expect(runsOf(j)).toEqual(runsOf(all));
    expect(j.runsDone).toBe(all.runsDone);
    expect(j.runsPlanned).toBe(3);
    expect(j.failures).toBe(0);
    expect(j.campaign).toEqual(all.campaign);
    expect(j.runsPerMinute).toBeGreaterThan(0);
    for (const o of all.oracles) expect(j.oracles.find((x: { oracle: string }) => x.oracle === o.oracle)).toBeDefined();
    // The human summary: runs, runs/min, oracles.
    const h = merge(at('s0.json'), at('s1.json'));
    expect(h.status).toBe(0);
    expect(h.stdout).toMatch(/^stress: 3 runs of 3 in [\d.]+s \([\d.]+ runs\/min\), 0 failed; campaign seed 21, shard merged 2\/2$/m);
    expect(h.stdout).toMatch(/^oracles exercised: stamp /m);
    expect(h.stdout).toMatch(/^warning: oracles that ran 0 times in the whole campaign: .*reported-accounting/m); // hinting off
    expect(h.stdout).toMatch(/^OK: no failures \(campaign seed 21\)$/m);
    // --html: the merged campaign's page (its runs on the merged clock), written beside the output.
    const page = at('merged.html');
    const hh = spawnSync(process.execPath, [CLI, 'stress', 'merge', at('s0.json'), '--html', page, at('s1.json')], { encoding: 'utf8', timeout: 30_000 });
    expect(hh.status, hh.stderr).toBe(0);
    expect(hh.stderr).toMatch(/^html report written to .*merged\.html/m);
    const html = readFileSync(page, 'utf8');
    expect(html).toContain('balloon-sim stress campaign: seed 21, 3 runs of 3');
    expect(html).toContain(`sim stress merge ${at('s0.json')} ${at('s1.json')}`);
    for (const r of j.runs as { endMs: number }[]) expect(r.endMs).toBeGreaterThan(0);
  }, 120_000);

  it('refuses shards of another campaign, a missing shard and a repeated one: one line, exit 2', () => {
    // Shard files as `sim stress --shard K/N --json` writes them (only the fields the merge reads).
    const shard = (k: number, n: number, campaign: Record<string, unknown> = {}) => ({
      campaignSeed: 21, swarm: false, shard: `${k}/${n}`, runsPlanned: 1, runsDone: 1, failures: 0, ok: true, elapsedMs: 1000, runsPerMinute: 60,
      oracles: [{ oracle: 'stamp', runs: 10, failures: 0, exercisedInRuns: 1 }], firstFailure: null, exitCode: 0,
      campaign: { seed: 21, runs: 2, swarm: false, runDurationMs: 100, config: 'sim --cpus 2 --seed 21', version: '0.1.0', ...campaign },
      startedAt: '2025-01-01T00:00:00.000Z', endedAt: '2025-01-01T00:00:01.000Z', interrupted: false, runsInterrupted: 0, injections: [], warnings: [],
      runs: [{ index: k, seed: 100 + k, exitCode: 0, wallMs: 900 }],
    });
    const write = (name: string, v: unknown) => (writeFileSync(at(name), JSON.stringify(v)), at(name));
    const a = write('a.json', shard(0, 2));
    const b = write('b.json', shard(1, 2));
    expect(mergeShards([a, b]).runs.map((r) => r.index)).toEqual([0, 1]);
    // Through the CLI: one line on stderr, exit 2.
    const cli: [string[], RegExp][] = [
      [[a, write('seed.json', shard(1, 2, { seed: 22 }))], /^sim: stress merge: .*seed\.json is from another campaign than .*a\.json: campaign seed 22 vs 21; merge the shards of one campaign/],
      [[a], /^sim: stress merge: shard 1 of 2 missing; accepted: every shard K\/N \(K = 0\.\.1\) of the campaign once$/],
    ];
    for (const [files, re] of cli) {
      const r = merge(...files);
      expect(r.status, files.join(' ')).toBe(2);
      const lines = r.stderr.trim().split('\n');
      expect(lines).toHaveLength(1);
      expect(lines[0]).toMatch(re);
    }
    // The rest through the function (the CLI prints its UsageError the same way).
    const cases: [string[], RegExp][] = [
      [[a, write('runs.json', shard(1, 2, { runs: 3 }))], /is from another campaign than .*: --runs 3 vs 2;/],
      [[a, write('swarm.json', shard(1, 2, { swarm: true }))], /is from another campaign than .*: --swarm true vs false;/],
      [[a, write('version.json', shard(1, 2, { version: '0.2.0' }))], /is from another campaign than .*: sim version '0\.2\.0' vs '0\.1\.0';/],
      [[a, b, a], /^stress merge: shard 0\/2 given twice \(.*a\.json, .*a\.json\); accepted: each shard K\/N once$/],
      [[a, write('n3.json', shard(1, 3))], /^stress merge: .*n3\.json is shard 1\/3 but .*a\.json is 0\/2/],
      [[a, write('junk.json', { hello: 1 })], /^stress merge: .*junk\.json: not a sim stress --json summary/],
    ];
    for (const [files, re] of cases) {
      let err: unknown;
      try {
        mergeShards(files);
      } catch (e) {
        err = e;
      }
      expect(err, files.join(' ')).toBeInstanceOf(UsageError);
      expect((err as Error).message).not.toMatch(/\n/);
      expect((err as Error).message).toMatch(re);
    }
  });
});

// `sim stress merge FILES...`: the shards of one campaign (`sim stress
// --shard K/N --json`, one file each, e.g. from a Kubernetes Indexed Job)
// combined into the summary the unsharded campaign prints: runs, runs/min,
// oracles exercised, injections, warnings, failures with their rerun commands.
//
// Shards of different campaigns are refused (seed, --runs, --swarm, the run
// flags, the sim version: the runs would not be the same runs), and so is a
// set that is not every shard K/N exactly once. Each is one line, exit 2.

import { readFileSync } from 'node:fs';
import { UsageError } from '../base/errors.js';
import { type CampaignId, type StressSummary, finishSummary, stressText } from './stress.js';

interface Shard {
  file: string;
  s: StressSummary;
  k: number;
  n: number;
}

const ID_FIELDS: { key: keyof CampaignId; flag: string }[] = [
  { key: 'seed', flag: 'campaign seed' },
  { key: 'runs', flag: '--runs' },
  { key: 'swarm', flag: '--swarm' },
  { key: 'runDurationMs', flag: '--run-duration' },
  { key: 'config', flag: 'run flags' },
  { key: 'version', flag: 'sim version' },
];

function readShard(file: string, read: (f: string) => string): Shard {
  let text: string;
  try {
    text = read(file);
  } catch (e) {
    throw new UsageError(`stress merge: ${file}: cannot be read (${e instanceof Error ? e.message.split('\n')[0] : String(e)}); accepted: files written by sim stress --shard K/N --json`);
  }
  let s: StressSummary;
  try {
    s = JSON.parse(text) as StressSummary;
  } catch {
    throw new UsageError(`stress merge: ${file}: not JSON; accepted: files written by sim stress --shard K/N --json`);
  }
  const m = typeof s?.shard === 'string' ? /^(\d+)\/(\d+)$/.exec(s.shard) : null;
  if (!m || typeof s.campaign !== 'object' || s.campaign === null || !Array.isArray(s.runs) || !Array.isArray(s.oracles)) {
    throw new UsageError(`stress merge: ${file}: not a sim stress --json summary of this version (no shard, campaign or runs field); accepted: files written by sim stress --shard K/N --json`);
  }
  return { file, s, k: Number(m[1]), n: Number(m[2]) };
}

const show = (v: unknown) => (typeof v === 'string' ? `'${v}'` : String(v));

/** Merge shard summaries (file contents via `read`); throws UsageError (one line) when they are not one whole campaign. */
export function mergeShards(files: readonly string[], read: (f: string) => string = (f) => readFileSync(f, 'utf8')): StressSummary {
  if (files.length === 0) throw new UsageError('stress merge: no files; accepted: the --json files of every shard K/N of one campaign');
  const shards = files.map((f) => readShard(f, read));
  const first = shards[0];
  for (const sh of shards.slice(1)) {
    for (const { key, flag } of ID_FIELDS) {
      if (sh.s.campaign[key] !== first.s.campaign[key]) {
        throw new UsageError(`stress merge: ${sh.file} is from another campaign than ${first.file}: ${flag} ${show(sh.s.campaign[key])} vs ${show(first.s.campaign[key])}; merge the shards of one campaign (same --seed, --runs, --swarm, run flags and sim version)`);
      }
    }
    if (sh.n !== first.n) throw new UsageError(`stress merge: ${sh.file} is shard ${sh.s.shard} but ${first.file} is ${first.s.shard}: every shard of one campaign has the same N`);
  }
  const n = first.n;
  const byK = new Map<number, Shard>();
  for (const sh of shards) {
    const dup = byK.get(sh.k);
    if (dup) throw new UsageError(`stress merge: shard ${sh.k}/${n} given twice (${dup.file}, ${sh.file}); accepted: each shard K/N once`);
    byK.set(sh.k, sh);
  }
  const missing = Array.from({ length: n }, (_, k) => k).filter((k) => !byK.has(k));
  if (missing.length > 0) {
    const list = missing.length > 8 ? `${missing.slice(0, 8).join(', ')}, ... (${missing.length} in all)` : missing.join(', ');
    throw new UsageError(`stress merge: shard${missing.length > 1 ? 's' : ''} ${list} of ${n} missing; accepted: every shard K/N (K = 0..${n - 1}) of the campaign once`);
  }
  return combine(shards.sort((a, b) => a.k - b.k));
}

function combine(shards: Shard[]): StressSummary {
  const ss = shards.map((x) => x.s);
  const s0 = ss[0];
  const oracles = new Map<string, { runs: number; failures: number; exercisedInRuns: number }>();
  const inj = new Map<string, { runs: number; actedInRuns: number; reason?: string }>();
  for (const s of ss) {
    for (const o of s.oracles) {
      const t = oracles.get(o.oracle) ?? { runs: 0, failures: 0, exercisedInRuns: 0 };
      t.runs += o.runs;
      t.failures += o.failures;
      t.exercisedInRuns += o.exercisedInRuns;
      oracles.set(o.oracle, t);
    }
    for (const x of s.injections ?? []) {
      const t = inj.get(x.name) ?? { runs: 0, actedInRuns: 0 };
      t.runs += x.runs;
      t.actedInRuns += x.actedInRuns;
      t.reason ??= x.reason;
      inj.set(x.name, t);
    }
  }
  // The campaign's wall time: the earliest start to the latest end (shards
  // may run side by side or one after another; node clocks are assumed synced).
  const start = Math.min(...ss.map((s) => Date.parse(s.startedAt)));
  const end = Math.max(...ss.map((s) => Date.parse(s.endedAt)));
  const elapsedMs = Math.max(0, end - start);
  const runsDone = ss.reduce((a, s) => a + s.runsDone, 0);
  const failures = ss.filter((s) => s.firstFailure !== null).map((s) => s.firstFailure!);
  const interrupted = ss.find((s) => s.interrupted);
  return finishSummary({
    campaignSeed: s0.campaignSeed,
    swarm: s0.swarm,
    shard: `merged ${ss.length}/${shards[0].n}`,
    runsPlanned: ss.every((s) => s.runsPlanned !== null) ? ss.reduce((a, s) => a + (s.runsPlanned ?? 0), 0) : null,
    runsDone,
    failures: ss.reduce((a, s) => a + s.failures, 0),
    ok: false,
    elapsedMs,
    runsPerMinute: Math.round((runsDone / Math.max(elapsedMs, 1)) * 60_000 * 10) / 10,
    oracles: [...oracles.entries()].map(([oracle, t]) => ({ oracle, ...t })),
    firstFailure: failures.sort((a, b) => a.index - b.index)[0] ?? null,
    exitCode: 0,
    campaign: s0.campaign,
    startedAt: new Date(start).toISOString(),
    endedAt: new Date(end).toISOString(),
    interrupted: interrupted !== undefined,
    ...(interrupted?.signal ? { signal: interrupted.signal } : {}),
    runsInterrupted: ss.reduce((a, s) => a + s.runsInterrupted, 0),
    injections: [...inj.entries()].map(([name, t]) => ({ name, ...t })),
    warnings: [],
    // Each shard timed its runs from its own start: put them on the merged campaign's clock.
    runs: ss.flatMap((s) => s.runs.map((r) => (typeof r.endMs === 'number' ? { ...r, endMs: r.endMs + (Date.parse(s.startedAt) - start) } : r))).sort((a, b) => a.index - b.index),
  });
}

/** The `stress merge` command body. */
export function runStressMergeCommand(files: readonly string[], json: boolean, after?: (s: StressSummary, settings: string[]) => void): void {
  let s: StressSummary;
  try {
    s = mergeShards(files);
  } catch (e) {
    if (e instanceof UsageError) {
      process.stderr.write(`sim: ${e.message}\n`);
      process.exit(2);
    }
    throw e;
  }
  const human = json ? process.stderr : process.stdout;
  human.write(`sim stress merge: ${files.length} shards of campaign seed ${s.campaignSeed} (${s.campaign.runs ?? 'unbounded'} runs${s.swarm ? ', swarm' : ''}, sim ${s.campaign.version}); ${s.runs.length} runs, compute ${(s.runs.reduce((a, r) => a + r.wallMs, 0) / 1000).toFixed(1)}s\n`);
  const settings = [`sim stress merge ${files.join(' ')}`, `run flags (seed: per run): ${s.campaign.config}`];
  human.write(`${settings[1]}\n`);
  human.write(stressText(s).join('\n') + '\n');
  after?.(s, settings); // --html (src/cli/commands.ts)
  if (json) process.stdout.write(JSON.stringify(s) + '\n');
  process.exitCode = s.exitCode;
}

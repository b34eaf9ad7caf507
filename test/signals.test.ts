// Signals (src/cli/signals.ts): a real signal to a real `sim` process. The
// first SIGINT/SIGTERM ends the workload early and the command still settles,
// checks, reports and prints its JSON (exit 130/143); a second aborts at
// once (exit 3). No thread or child process outlives the command.
// Spawns dist/: run `npx tsc -p .` first.
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';

const CLI = path.resolve(__dirname, '../dist/src/cli/main.js');
// Small and quick to settle; a long --duration the signal must cut short.
// No host cost profile: what is tested is the interrupt, not the modelled host.
const SMALL = ['--cpus', '2', '--workload', 'churn', '--memory', '32M', '--report-delay', '10ms', '--settle-timeout', '2s', '--check-interval', '100ms', '--cost-profile', 'none'];

interface Proc {
  c: ChildProcess;
  out: () => string;
  err: () => string;
  done: Promise<{ code: number | null; signal: NodeJS.Signals | null; ms: number }>;
  /** Resolves once stderr matches `re`. */
  waitFor: (re: RegExp, ms?: number) => Promise<void>;
}

function start(args: string[]): Proc {
  const c = spawn(process.execPath, [CLI, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  const waiters: { re: RegExp; res: () => void }[] = [];
  c.stdout!.setEncoding('utf8').on('data', (d: string) => (out += d));
  c.stderr!.setEncoding('utf8').on('data', (d: string) => {
    err += d;
    for (const w of waiters.splice(0)) if (w.re.test(err)) w.res();
    else waiters.push(w);
  });
  let tSignal = 0;
  const kill = c.kill.bind(c);
  c.kill = (sig?: NodeJS.Signals | number) => {
    tSignal ||= performance.now();
    return kill(sig);
  };
  const guard = setTimeout(() => kill('SIGKILL'), 60_000); // a hang fails the test, not the suite
  const done = new Promise<{ code: number | null; signal: NodeJS.Signals | null; ms: number }>((res) =>
    c.on('close', (code, signal) => {
      clearTimeout(guard);
      res({ code, signal, ms: performance.now() - tSignal });
    }),
  );
  const waitFor = (re: RegExp, ms = 30_000) =>
    new Promise<void>((res, rej) => {
      if (re.test(err)) return res();
      const t = setTimeout(() => rej(new Error(`stderr never matched ${re}: ${err.slice(-400)}`)), ms);
      waiters.push({ re, res: () => (clearTimeout(t), res()) });
    });
  return { c, out: () => out, err: () => err, done, waitFor };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Threads of a live process (its /proc task entries), 0 once it is gone. */
const threadsOf = (pid: number) => (existsSync(`/proc/${pid}/task`) ? readdirSync(`/proc/${pid}/task`).length : 0);

/** Processes whose parent is `pid` (from /proc/<p>/stat: the field after the command name). */
function childrenOf(pid: number): number[] {
  const out: number[] = [];
  for (const e of readdirSync('/proc')) {
    if (!/^\d+$/.test(e)) continue;
    try {
      const st = readFileSync(`/proc/${e}/stat`, 'utf8');
      const ppid = Number(st.slice(st.lastIndexOf(')') + 2).split(' ')[1]);
      if (ppid === pid) out.push(Number(e));
    } catch {
      /* gone meanwhile */
    }
  }
  return out;
}
const alive = (pid: number) => existsSync(`/proc/${pid}`);

/** Wait until `pid` has at least `n` threads (node's own are about 11; the run's pool adds one per role). */
async function threads(pid: number, n: number): Promise<void> {
  for (let i = 0; i < 400 && threadsOf(pid) < n; i++) await sleep(25);
  expect(threadsOf(pid)).toBeGreaterThanOrEqual(n);
}

/**
 * The run is going: its config line is out (the signal handlers are
 * installed right after it), its pool's threads exist; then a little
 * workload time. (A signal before the workload starts is handled the same
 * way; it just runs 0 ms of it.)
 */
async function running(p: Proc): Promise<void> {
  await p.waitFor(/^config: /m);
  await threads(p.c.pid!, 13);
  await sleep(500);
}

describe('signals: sim run', () => {
  it('SIGTERM ends the workload early: settles, checks, prints the JSON with interrupted, exit 143; no thread left', async () => {
    const p = start([...SMALL, '--duration', '60s', '--seed', '7', '--json']);
    await running(p);
    p.c.kill('SIGTERM');
    const r = await p.done;
    expect(r.code, p.err().slice(-600)).toBe(143);
    expect(r.ms).toBeLessThan(15_000); // settle (2 s) + stop, not the 60 s workload
    expect(alive(p.c.pid!)).toBe(false);
    const j = JSON.parse(p.out());
    expect(j.interrupted).toBe(true);
    expect(j.interrupt.signal).toBe('SIGTERM');
    expect(j.exitCode).toBe(143);
    expect(j.ok).toBe(false);
    expect(j.durationMs).toBeLessThan(30_000);
    expect(j.interrupt.reactionMs).toBeLessThan(1000); // bench/soak.ts measures the 200 ms target
    expect(j.violations).toEqual([]);
    // Every end-of-run oracle ran on the interrupted run.
    const runs = Object.fromEntries(j.checks.map((c: { oracle: string; runs: number }) => [c.oracle, c.runs]));
    expect(runs['reported-accounting']).toBe(1);
    expect(runs.conservation).toBeGreaterThan(0);
    // The stamp oracle runs on every allocation, not at the end: it has run
    // exactly when the workload did (a signal during set-up, possible on a
    // loaded machine, runs 0 ms of it).
    expect(runs.stamp > 0, `stamp checks ${runs.stamp}, ops ${j.totals.ops}`).toBe(j.totals.ops > 0);
    expect(p.err()).toMatch(/^INTERRUPTED by SIGTERM after \d+\.\d+s of the 60\.00s workload: every oracle that ran passed; exit 143 \(seed 7\)$/m);
    expect(p.err()).toMatch(/^rerun: sim .*--seed 7/m);
  });

  it('a second SIGINT aborts at once: exit 3, seed and rerun printed, no result', async () => {
    // A long settle: only the second signal can end this run quickly.
    const p = start(['--cpus', '2', '--workload', 'churn', '--memory', '32M', '--duration', '60s', '--report-delay', '20s', '--settle-timeout', '60s', '--seed', '8', '--json']);
    await running(p);
    p.c.kill('SIGINT');
    await p.waitFor(/SIGINT: ending the workload/);
    p.c.kill('SIGINT');
    const r = await p.done;
    expect(r.code).toBe(3);
    expect(r.ms).toBeLessThan(5000);
    expect(p.err()).toMatch(/^sim: SIGINT again: aborted before the run finished, no result \(exit 3\); seed 8$/m);
    expect(p.err()).toMatch(/^rerun: sim .*--seed 8/m);
    const j = JSON.parse(p.out());
    expect(j).toMatchObject({ seed: 8, ok: false, exitCode: 3, aborted: 'SIGINT' });
    expect(alive(p.c.pid!)).toBe(false);
  });
});

describe('signals: sim compare', () => {
  it('SIGINT ends the mode in progress, starts no other, reports it: exit 130', async () => {
    const p = start(['compare', ...SMALL, '--duration', '60s', '--seed', '9', '--json']);
    await p.waitFor(/compare: running hinting=off/);
    await running(p);
    p.c.kill('SIGINT');
    const r = await p.done;
    expect(r.code, p.err().slice(-600)).toBe(130);
    const j = JSON.parse(p.out());
    expect(j.interrupted).toBe(true);
    expect(j.signal).toBe('SIGINT');
    expect(j.exitCode).toBe(130);
    expect(j.modes).toHaveLength(1);
    expect(j.modes[0]).toMatchObject({ mode: 'off', interrupted: true, exitCode: 130 });
    expect(j.modes[0].durationMs).toBeLessThan(30_000);
    expect(p.err()).not.toMatch(/compare: running hinting=reporting/);
    expect(alive(p.c.pid!)).toBe(false);
  });
});

describe('signals: sim stress', () => {
  const STRESS = ['stress', '--runs', '6', '--jobs', '2', ...SMALL, '--run-duration', '60s'];

  /** Start a campaign and wait until both of its runs are going; their pids. */
  async function campaign(seed: string): Promise<{ p: Proc; kids: number[] }> {
    const p = start([...STRESS, '--seed', seed, '--json']);
    let kids: number[] = [];
    for (let i = 0; i < 400 && kids.length < 2; i++) {
      await sleep(25);
      kids = childrenOf(p.c.pid!);
    }
    expect(kids).toHaveLength(2);
    for (const k of kids) await threads(k, 13);
    await sleep(500);
    return { p, kids };
  }

  it('SIGTERM: no new run, the runs in flight end early (signal forwarded), the summary so far; exit 143, no child left', async () => {
    const { p, kids } = await campaign('11');
    p.c.kill('SIGTERM');
    const r = await p.done;
    expect(r.code, p.err().slice(-600)).toBe(143);
    for (const k of kids) expect(alive(k), `run process ${k}`).toBe(false);
    const j = JSON.parse(p.out());
    expect(j).toMatchObject({ interrupted: true, signal: 'SIGTERM', exitCode: 143, runsDone: 0, runsInterrupted: 2, failures: 0 });
    expect(j.runs.map((x: { index: number; interrupted: boolean; exitCode: number }) => [x.index, x.interrupted, x.exitCode])).toEqual([
      [0, true, 143],
      [1, true, 143],
    ]);
    // The interrupted runs' checks count: they ran every end-of-run oracle.
    expect(j.oracles.find((o: { oracle: string }) => o.oracle === 'reported-accounting').runs).toBe(2);
    expect(p.err()).toMatch(/^INTERRUPTED by SIGTERM: 0 runs completed, 2 ended early, 4 not run; exit 143 \(campaign seed 11\)$/m);
  });

  it('a second SIGTERM kills the runs in flight and exits 3 at once; no child left', async () => {
    const { p, kids } = await campaign('12');
    p.c.kill('SIGTERM');
    await p.waitFor(/SIGTERM: ending the workload/);
    p.c.kill('SIGTERM');
    const r = await p.done;
    expect(r.code).toBe(3);
    expect(p.err()).toMatch(/^sim: SIGTERM again: stress aborted, runs in flight killed, no summary \(exit 3\); campaign seed 12$/m);
    for (let i = 0; i < 40 && kids.some(alive); i++) await sleep(25); // SIGKILL is delivered asynchronously
    for (const k of kids) expect(alive(k), `run process ${k}`).toBe(false);
  });
});

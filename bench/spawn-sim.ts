// The CLI as a child process, for the benchmarks that time a run from the
// outside with a self-test planted (BALLOON_SIM_SELFTEST): faults, slips.
import { spawn } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const CLI = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../src/cli/main.js');

/** `sim ARGS --json` with `selftest` planted: exit code, wall time and stdout; killed after `timeoutMs`. */
export function simWithSelftest(args: string[], selftest: string, timeoutMs: number): Promise<{ code: number | null; wallMs: number; out: string }> {
  const t0 = performance.now();
  return new Promise((resolve) => {
    const c = spawn(process.execPath, [CLI, ...args, '--json'], { stdio: ['ignore', 'pipe', 'ignore'], env: { ...process.env, BALLOON_SIM_SELFTEST: selftest } });
    let out = '';
    c.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
    const t = setTimeout(() => c.kill('SIGKILL'), timeoutMs);
    c.on('close', (code) => {
      clearTimeout(t);
      resolve({ code, wallMs: performance.now() - t0, out });
    });
  });
}

/** The part of a run's --json the detection benchmarks read. */
export interface RunJson {
  durationMs: number;
  hinting?: { settleMs?: number };
  violations: { oracle: string }[];
}

/** A run's --json, or null when it printed none (a usage error, a kill). */
export function parseRun(out: string): RunJson | null {
  try {
    return JSON.parse(out) as RunJson;
  } catch {
    return null;
  }
}

/**
 * Time to detect: the run failed (exit 1) naming one of `oracles` first, and
 * this is the simulated time from go to the violation (durationMs + the
 * settle phase); null when it did not detect.
 */
export function detectMs(code: number | null, j: RunJson | null, oracles: readonly string[]): number | null {
  if (code !== 1 || j === null || !oracles.includes(j.violations[0]?.oracle)) return null;
  return j.durationMs + (j.hinting?.settleMs ?? 0);
}

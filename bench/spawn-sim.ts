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

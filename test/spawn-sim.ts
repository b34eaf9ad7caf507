// Test support: the real CLI as a child process, and a bound on how many
// run at once (each simulation is several threads on a 2-core machine).
import { spawn } from 'node:child_process';
import path from 'node:path';

export const CLI = path.resolve(__dirname, '../dist/src/cli/main.js');

export interface CliOut {
  status: number | null;
  stdout: string;
  stderr: string;
}

/** `sim ARGS` in a child process; killed after `timeoutMs` (a hang is a failure, not a stuck suite). */
export function spawnSim(args: string[], timeoutMs: number, env: NodeJS.ProcessEnv = process.env): Promise<CliOut> {
  return new Promise<CliOut>((resolve) => {
    const c = spawn(process.execPath, [CLI, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env });
    let stdout = '';
    let stderr = '';
    c.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    c.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const t = setTimeout(() => c.kill('SIGKILL'), timeoutMs);
    c.on('close', (status) => {
      clearTimeout(t);
      resolve({ status, stdout, stderr });
    });
  });
}

/** A counting semaphore: `slot(f)` runs f when fewer than `n` others are running. */
export function slots(n: number): <T>(f: () => Promise<T>) => Promise<T> {
  let free = n;
  const queue: (() => void)[] = [];
  return async <T>(f: () => Promise<T>): Promise<T> => {
    if (free === 0) await new Promise<void>((r) => queue.push(r));
    else free--;
    try {
      return await f();
    } finally {
      const next = queue.shift();
      if (next) next();
      else free++;
    }
  };
}

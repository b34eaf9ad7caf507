// The simulator's version (package.json), for results that must not be
// mixed across versions (sharded stress campaigns, src/cli/stress-merge.ts).

import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

let cached: string | undefined;

/** package.json's version: the nearest package.json named balloon-sim above this module (dist/src/cli or src/cli). */
export function simVersion(): string {
  if (cached !== undefined) return cached;
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 6; i++) {
    const p = path.join(dir, 'package.json');
    if (existsSync(p)) {
      try {
        const j = JSON.parse(readFileSync(p, 'utf8')) as { name?: string; version?: string };
        if (j.name === 'balloon-sim' && typeof j.version === 'string') return (cached = j.version);
      } catch {
        /* not ours: keep looking */
      }
    }
    dir = path.dirname(dir);
  }
  return (cached = 'unknown');
}

// The import graph, read as docs/DESIGN.md states it: folders are the
// subsystems, imports run one way (down the list below), the guest never
// imports the host (nor the host the guest), nothing in production imports
// the testing folder, and no file imports itself around a cycle.
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';

const root = path.resolve(__dirname, '..');
/** Lowest first. A subsystem may import its own folder and any folder before it, except its siblings. */
const LAYERS: string[][] = [['base'], ['shm'], ['locking'], ['mm'], ['virtio'], ['guest', 'host'], ['check'], ['sched'], ['sim'], ['cli'], ['testing']];
const rank = new Map(LAYERS.flatMap((names, i) => names.map((n) => [n, i] as const)));

function walk(d: string, out: string[] = []): string[] {
  for (const f of readdirSync(d)) {
    const p = path.join(d, f);
    if (statSync(p).isDirectory()) walk(p, out);
    else if (p.endsWith('.ts')) out.push(p);
  }
  return out;
}

const files = [...walk(path.join(root, 'src')), ...walk(path.join(root, 'workers'))];
const rel = (p: string) => path.relative(root, p);
/** Relative imports of a file, as repository paths of .ts files (type-only imports included: they are dependencies too). */
function importsOf(file: string): string[] {
  const s = readFileSync(file, 'utf8');
  const out: string[] = [];
  for (const m of s.matchAll(/(?:from\s+|import\s*\(\s*|import\s+)['"](\.{1,2}\/[^'"]+)['"]/g)) out.push(rel(path.resolve(path.dirname(file), m[1]).replace(/\.js$/, '.ts')));
  return out;
}
const graph = new Map(files.map((f) => [rel(f), importsOf(f)]));
/** src/<subsystem>/... -> subsystem; workers/role.ts is the sim's thread entry; workers/testing/* is testing. */
function subsystemOf(f: string): string {
  const p = f.split('/');
  if (p[0] === 'src') return p[1];
  return p[1] === 'testing' ? 'testing' : 'sim';
}

describe('import graph', () => {
  it('every source file sits in a known subsystem folder', () => {
    const unknown = [...graph.keys()].filter((f) => !rank.has(subsystemOf(f)) || (f.startsWith('src/') && f.split('/').length < 3));
    expect(unknown).toEqual([]);
  });

  it('imports run one way: down the layers, never to a sibling, never into testing from production', () => {
    const bad: string[] = [];
    for (const [f, deps] of graph) {
      const a = subsystemOf(f);
      for (const d of deps) {
        const b = subsystemOf(d);
        if (a === b) continue;
        if (rank.get(b)! > rank.get(a)!) bad.push(`${f} (${a}) imports ${d} (${b}): upward`);
        else if (rank.get(b) === rank.get(a)) bad.push(`${f} (${a}) imports ${d} (${b}): sibling`);
      }
    }
    expect(bad).toEqual([]);
  });

  it('the guest never imports the host', () => {
    const bad = [...graph].filter(([f]) => subsystemOf(f) === 'guest').flatMap(([f, deps]) => deps.filter((d) => subsystemOf(d) === 'host').map((d) => `${f} -> ${d}`));
    expect(bad).toEqual([]);
  });

  it('no import cycle between files', () => {
    const state = new Map<string, 0 | 1 | 2>();
    const cycles: string[] = [];
    const visit = (f: string, stack: string[]) => {
      if (state.get(f) === 2) return;
      if (state.get(f) === 1) {
        cycles.push([...stack.slice(stack.indexOf(f)), f].join(' -> '));
        return;
      }
      state.set(f, 1);
      for (const d of graph.get(f) ?? []) visit(d, [...stack, f]);
      state.set(f, 2);
    };
    for (const f of graph.keys()) visit(f, []);
    expect(cycles).toEqual([]);
  });

  it('no file points outside the repository', () => {
    const outside = [...graph.keys(), 'README.md', ...(existsSync(path.join(root, 'docs')) ? walk(path.join(root, 'docs')).map(rel) : [])].filter((f) => /\.\.\/shared/.test(readFileSync(path.join(root, f), 'utf8')));
    expect(outside).toEqual([]);
  });
});

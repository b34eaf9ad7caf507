// The Dockerfile cannot be built here (no Docker engine): parse it with a
// small parser of the instructions it uses and check what a build would
// need and what the README's Job manifest relies on: every COPY source
// exists and is not excluded by .dockerignore, every --from stage exists,
// multi-stage node:20-slim, npm ci, a non-root user, `sim` as the entry
// point and the path it links to is what the build produces.
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';

const ROOT = path.resolve(__dirname, '..');

interface Instr {
  line: number;
  op: string;
  args: string;
}

const KNOWN = new Set(['FROM', 'WORKDIR', 'COPY', 'RUN', 'ENV', 'USER', 'ENTRYPOINT', 'CMD', 'ARG', 'LABEL', 'EXPOSE']);

/** Instructions of a Dockerfile: comments and blank lines dropped, backslash continuations joined. */
function parseDockerfile(text: string): Instr[] {
  const out: Instr[] = [];
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const start = i;
    let l = lines[i];
    if (/^\s*(#|$)/.test(l)) continue;
    while (/\\\s*$/.test(l) && i + 1 < lines.length) l = l.replace(/\\\s*$/, ' ') + lines[++i].replace(/^\s*#.*$/, '');
    const m = /^\s*([A-Za-z]+)\s+(.*)$/.exec(l);
    if (!m) throw new Error(`Dockerfile line ${start + 1}: not an instruction: ${l}`);
    const op = m[1].toUpperCase();
    if (!KNOWN.has(op)) throw new Error(`Dockerfile line ${start + 1}: unknown instruction ${op}`);
    out.push({ line: start + 1, op, args: m[2].trim() });
  }
  return out;
}

/** COPY [--from=x] [--chown=..] src... dest */
function copyParts(args: string): { from?: string; srcs: string[]; dest: string } {
  const words = args.split(/\s+/);
  let from: string | undefined;
  while (words[0]?.startsWith('--')) {
    const w = words.shift()!;
    if (w.startsWith('--from=')) from = w.slice(7);
  }
  const dest = words.pop()!;
  return { from, srcs: words, dest };
}

/** .dockerignore patterns (top-level names and simple globs, the forms it uses). */
function ignored(rel: string): boolean {
  const pats = readFileSync(path.join(ROOT, '.dockerignore'), 'utf8').split('\n').map((x) => x.trim()).filter((x) => x && !x.startsWith('#'));
  const first = rel.split('/')[0];
  return pats.some((p) => {
    const re = new RegExp('^' + p.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '[^/]*') + '$');
    return re.test(first) || re.test(rel);
  });
}

describe('Dockerfile', () => {
  const instrs = parseDockerfile(readFileSync(path.join(ROOT, 'Dockerfile'), 'utf8'));

  it('the parser refuses what is not an instruction', () => {
    expect(() => parseDockerfile('FROM node:20-slim\nFROBNICATE x\n')).toThrow(/line 2: unknown instruction FROBNICATE/);
    expect(parseDockerfile('RUN a \\\n  && b\n# c\nUSER node\n')).toEqual([
      { line: 1, op: 'RUN', args: 'a    && b' },
      { line: 4, op: 'USER', args: 'node' },
    ]);
  });

  it('is multi-stage on node:20-slim, installs with npm ci and builds', () => {
    const froms = instrs.filter((i) => i.op === 'FROM').map((i) => i.args);
    expect(froms.length).toBeGreaterThanOrEqual(2);
    for (const f of froms) expect(f).toMatch(/^node:20-slim\b/);
    const runs = instrs.filter((i) => i.op === 'RUN').map((i) => i.args).join('\n');
    expect(runs).toMatch(/\bnpm ci\b/); // the lockfile, and `prepare` compiles
    expect(runs).toMatch(/npm prune --omit=dev/);
  });

  it('every COPY source exists in the repository and is not excluded by .dockerignore; every --from stage is defined earlier', () => {
    const stages = new Set<string>();
    let copies = 0;
    for (const i of instrs) {
      if (i.op === 'FROM') {
        const m = /\bAS\s+(\S+)$/i.exec(i.args);
        if (m) stages.add(m[1]);
      }
      if (i.op !== 'COPY') continue;
      copies++;
      const c = copyParts(i.args);
      if (c.from !== undefined) {
        expect(stages.has(c.from), `line ${i.line}: stage ${c.from}`).toBe(true);
        continue;
      }
      for (const src of c.srcs) {
        expect(existsSync(path.join(ROOT, src)), `line ${i.line}: COPY source ${src}`).toBe(true);
        expect(ignored(src), `line ${i.line}: COPY source ${src} is excluded by .dockerignore`).toBe(false);
      }
    }
    expect(copies).toBeGreaterThan(3);
    // What the build stage compiles is what tsconfig includes (tests aside).
    const tsconfig = JSON.parse(readFileSync(path.join(ROOT, 'tsconfig.json'), 'utf8')) as { include: string[] };
    const copied = instrs.filter((i) => i.op === 'COPY' && !i.args.startsWith('--from')).flatMap((i) => copyParts(i.args).srcs);
    for (const inc of tsconfig.include.filter((x) => x !== 'test')) expect(copied, `tsconfig include ${inc}`).toContain(inc);
  });

  it('runs `sim` as a non-root user; the entry point links to the built CLI', () => {
    const users = instrs.filter((i) => i.op === 'USER').map((i) => i.args);
    expect(users.length).toBeGreaterThan(0);
    expect(users[users.length - 1]).not.toMatch(/^(root|0)(:|$)/);
    const entry = instrs.filter((i) => i.op === 'ENTRYPOINT').pop()!;
    expect(JSON.parse(entry.args)).toEqual(['sim']);
    const link = /ln -s \/app\/(\S+) \/usr\/local\/bin\/sim/.exec(instrs.map((i) => i.args).join('\n'));
    expect(link).not.toBeNull();
    expect(existsSync(path.join(ROOT, link![1])), `${link![1]} (built by npx tsc -p .)`).toBe(true);
    const pkg = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { bin: { sim: string } };
    expect(pkg.bin.sim).toBe(link![1]);
  });

  it("the README's Job manifest uses this image, execs sim (signals reach it) and writes its shard to a volume that merge reads", () => {
    const readme = readFileSync(path.join(ROOT, 'README.md'), 'utf8');
    expect(readme).toMatch(/docker build -t balloon-sim/);
    expect(readme).toMatch(/image: [^\n]*balloon-sim/);
    expect(readme).toMatch(/exec sim stress [^\n]*--shard \$\{JOB_COMPLETION_INDEX\}\/\d+ --json > \/out\/shard-\$\{JOB_COMPLETION_INDEX\}\.json/);
    expect(readme).toMatch(/mountPath: \/out/);
    expect(readme).toMatch(/sim stress merge \/out\/shard-\*\.json/);
  });
});

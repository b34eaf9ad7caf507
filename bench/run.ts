// `npm run bench`: run every benchmark module, print a table of results and
// ratios and write them all to bench/results.json. `--quick` shortens runs;
// `--only NAME[,NAME]` picks modules.

import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { BenchReport } from './types.js';

const modules: Record<string, () => Promise<{ bench: (o: { quick?: boolean }) => Promise<BenchReport> }>> = {
  core: () => import('./core.js'),
  reporting: () => import('./reporting.js'),
  vring: () => import('./vring.js'),
  lockstat: () => import('./lockstat.js'),
  hint: () => import('./hint.js'),
  hintrace: () => import('./hint-race.js'),
  sched: () => import('./sched.js'),
  races: () => import('./races.js'),
  soak: () => import('./soak.js'),
  trace: () => import('./trace.js'),
  kernel: () => import('./kernel.js'),
  'linux-v5': () => import('./linux-v5.js'),
  faults: () => import('./faults.js'),
  slips: () => import('./slips.js'),
  rotation: () => import('./rotation.js'),
};

const args = process.argv.slice(2);
const quick = args.includes('--quick');
const onlyIdx = args.indexOf('--only');
const only = onlyIdx >= 0 ? args[onlyIdx + 1].split(',') : Object.keys(modules);
const reports: (BenchReport & { date?: string; quick?: boolean })[] = [];
for (const name of only) {
  if (!modules[name]) {
    console.error(`bench: unknown module '${name}'; accepted: ${Object.keys(modules).join(', ')}`);
    process.exit(2);
  }
  process.stderr.write(`bench: ${name} ...\n`);
  const mod = await modules[name]();
  const rep = await mod.bench({ quick });
  reports.push({ ...rep, date: new Date().toISOString(), quick });
  for (const [k, v] of Object.entries(rep.results)) console.log(`${rep.name.padEnd(10)} ${k.padEnd(36)} ${v}`);
  for (const [k, v] of Object.entries(rep.ratios)) console.log(`${rep.name.padEnd(10)} ratio ${k.padEnd(30)} ${v}`);
  for (const n of rep.notes) console.log(`${rep.name.padEnd(10)} note  ${n}`);
}
const out = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../bench/results.json');
// `--only` re-runs some modules: keep the other modules' last results (each
// report carries its own date) so results.json always holds every module.
let kept: typeof reports = [];
if (onlyIdx >= 0 && existsSync(out)) {
  try {
    const prev = JSON.parse(readFileSync(out, 'utf8')) as { date?: string; reports?: typeof reports };
    kept = (prev.reports ?? []).filter((r) => !only.includes(r.name)).map((r) => ({ ...r, date: r.date ?? prev.date, quick: r.quick ?? (prev as { quick?: boolean }).quick }));
  } catch {
    console.error(`bench: ${out} is not valid JSON; writing only this run's modules`);
  }
}
const order = Object.keys(modules);
const all = [...kept, ...reports].sort((a, b) => order.indexOf(a.name) - order.indexOf(b.name));
writeFileSync(out, JSON.stringify({ date: new Date().toISOString(), node: process.version, reports: all }, null, 2) + '\n');
console.log(`bench: wrote ${out}${kept.length ? ` (kept ${kept.map((r) => r.name).join(', ')} from earlier runs)` : ''}`);

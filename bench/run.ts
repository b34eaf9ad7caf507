// `npm run bench`: run every benchmark module, print a table of results and
// ratios and write them all to bench/results.json. `--quick` shortens runs;
// `--only NAME[,NAME]` picks modules.

import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { BenchReport } from './types.js';

const modules: Record<string, () => Promise<{ bench: (o: { quick?: boolean }) => Promise<BenchReport> }>> = {
  core: () => import('./core.js'),
  reporting: () => import('./reporting.js'),
  vring: () => import('./vring.js'),
  lockstat: () => import('./lockstat.js'),
  hint: () => import('./hint.js'),
  sched: () => import('./sched.js'),
  races: () => import('./races.js'),
};

const args = process.argv.slice(2);
const quick = args.includes('--quick');
const onlyIdx = args.indexOf('--only');
const only = onlyIdx >= 0 ? args[onlyIdx + 1].split(',') : Object.keys(modules);
const reports: BenchReport[] = [];
for (const name of only) {
  if (!modules[name]) {
    console.error(`bench: unknown module '${name}'; accepted: ${Object.keys(modules).join(', ')}`);
    process.exit(2);
  }
  process.stderr.write(`bench: ${name} ...\n`);
  const mod = await modules[name]();
  const rep = await mod.bench({ quick });
  reports.push(rep);
  for (const [k, v] of Object.entries(rep.results)) console.log(`${rep.name.padEnd(10)} ${k.padEnd(36)} ${v}`);
  for (const [k, v] of Object.entries(rep.ratios)) console.log(`${rep.name.padEnd(10)} ratio ${k.padEnd(30)} ${v}`);
  for (const n of rep.notes) console.log(`${rep.name.padEnd(10)} note  ${n}`);
}
const out = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../bench/results.json');
writeFileSync(out, JSON.stringify({ date: new Date().toISOString(), node: process.version, quick, reports }, null, 2) + '\n');
console.log(`bench: wrote ${out}`);

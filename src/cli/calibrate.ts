// `sim calibrate`: measure what a host pays, on this machine, for what the
// host cost model charges (src/mm/host-costs.ts), and write a cost profile.
//
// Node measures what it can: the first touch of fresh anonymous memory per
// 4 KiB (a fresh ArrayBuffer: the kernel's fault, clear_page included), the
// clear alone (a fill of resident memory), and a futex wake-up round trip
// between two threads (Atomics.wait/notify). With a C compiler (`cc`, or
// $CC) a small probe (src/cli/calibrate-probe.ts) measures the rest: CPUID
// (a VM exit when this machine is itself a guest), MADV_DONTNEED by range
// size, first touch with and without transparent huge pages. Without one,
// or with --no-cc, what Node cannot measure is taken from the shipped
// default profile, and the profile says so field by field (`sources`).

import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Worker } from 'node:worker_threads';
import { UsageError } from '../base/errors.js';
import { median } from '../base/stats.js';
import { COST_PROFILE_FORMAT, DEFAULT_COST_PROFILE, type HostCostProfile, type HostCosts, costSummary, validateCostProfile } from '../mm/host-costs.js';
import { outputFileFlag } from './flags.js';
import { PROBE_C } from './calibrate-probe.js';

export const CALIBRATE_OPTIONS = {
  out: { type: 'string', describe: 'write the profile to FILE (default: stdout); use it with --cost-profile FILE. A FILE ending in .ts gets the module form the repository ships as its default profile (src/mm/host-costs-default.ts)' },
  quick: { type: 'boolean', default: false, describe: 'smaller and fewer measurements (a few seconds; noisier)' },
  cc: { type: 'boolean', default: true, describe: 'compile and run the C probe when a C compiler (cc or $CC) exists (--no-cc: Node-measurable costs only, the rest from the default profile)' },
} as const;

/** Raw probe output (src/cli/calibrate-probe.ts), ns per operation. */
export interface ProbeResult {
  cpuidNs?: number;
  firstTouch4kNs: number;
  zero4kNs: number;
  firstTouch2mNs: number;
  thpHugeKb: number;
  zero2mNs: number;
  madviseNs: Record<string, number>;
  madvise2mThpNs: number;
  madviseEmptyNs: number;
}

export interface NodeMeasurements {
  /** First write to each 4 KiB of a fresh ArrayBuffer (the kernel's anonymous fault, clear_page included). */
  firstTouch4kNs: number;
  /** Float64Array.fill(0) of a resident 4 KiB page. */
  zero4kNs: number;
  /** The same fill of 2 MiB. */
  zero2mNs: number;
  /** Atomics.notify to a thread in Atomics.wait and its answer back: a futex wake-up round trip. */
  futexRoundTripNs: number;
}

const MiB = 2 ** 20;

/** The first touch and the clear, measured with typed arrays. */
export function measureNode(quick: boolean): Omit<NodeMeasurements, 'futexRoundTripNs'> {
  const bytes = (quick ? 32 : 128) * MiB;
  const reps = quick ? 3 : 5;
  const touch: number[] = [];
  for (let r = 0; r < reps; r++) {
    // A fresh ArrayBuffer this size is a fresh anonymous mapping (calloc ->
    // mmap): each first write to a page is one kernel fault.
    const f = new Float64Array(new ArrayBuffer(bytes));
    const t0 = performance.now();
    for (let i = 0; i < f.length; i += 512) f[i] = 1;
    touch.push(((performance.now() - t0) * 1e6) / (bytes / 4096));
  }
  const f = new Float64Array(new ArrayBuffer(bytes));
  f.fill(1);
  const z4: number[] = [];
  const z2: number[] = [];
  for (let r = 0; r < reps; r++) {
    let t0 = performance.now();
    for (let i = 0; i < f.length; i += 512) f.fill(0, i, i + 512);
    z4.push(((performance.now() - t0) * 1e6) / (bytes / 4096));
    t0 = performance.now();
    for (let i = 0; i < f.length; i += 262144) f.fill(0, i, i + 262144);
    z2.push(((performance.now() - t0) * 1e6) / (bytes / (2 * MiB)));
  }
  return { firstTouch4kNs: median(touch), zero4kNs: median(z4), zero2mNs: median(z2) };
}

/** Median futex wake-up round trip between this thread and a worker (every wait bounded). */
export async function measureFutex(trips: number): Promise<number> {
  const sab = new SharedArrayBuffer(16);
  const a = new Int32Array(sab);
  // The worker answers each ping (word 0 -> 1) with a pong (word 1 -> 1).
  const code = `const { workerData } = require('node:worker_threads');
const a = new Int32Array(workerData.sab);
for (let i = 0; i < workerData.trips; i++) {
  if (Atomics.wait(a, 0, 0, 2000) === 'timed-out' && Atomics.load(a, 0) === 0) break;
  Atomics.store(a, 0, 0);
  Atomics.store(a, 1, 1);
  Atomics.notify(a, 1);
}`;
  const w = new Worker(code, { eval: true, workerData: { sab, trips } });
  const done = new Promise<void>((res, rej) => {
    w.once('exit', () => res());
    w.once('error', rej);
  });
  await new Promise((r) => setTimeout(r, 50));
  const ns: number[] = [];
  for (let i = 0; i < trips; i++) {
    const t0 = performance.now();
    Atomics.store(a, 0, 1);
    Atomics.notify(a, 0);
    if (Atomics.wait(a, 1, 0, 2000) === 'timed-out' && Atomics.load(a, 1) === 0) {
      await w.terminate();
      throw new Error('calibrate: the futex round-trip worker did not answer within 2 s');
    }
    Atomics.store(a, 1, 0);
    ns.push((performance.now() - t0) * 1e6);
  }
  await done;
  return median(ns.slice(Math.floor(trips / 10)));
}

/** Compile and run the C probe; null (and why) where there is no compiler or it fails. */
export function runProbe(quick: boolean): { result: ProbeResult | null; cc: string | null; why: string } {
  const cc = process.env.CC || 'cc';
  const ver = spawnSync(cc, ['--version'], { encoding: 'utf8' });
  if (ver.error || ver.status !== 0) return { result: null, cc: null, why: `no C compiler (${cc})` };
  const ccName = (ver.stdout.split('\n')[0] || cc).trim();
  const dir = mkdtempSync(path.join(os.tmpdir(), 'sim-calibrate-'));
  try {
    const src = path.join(dir, 'probe.c');
    const exe = path.join(dir, 'probe');
    writeFileSync(src, PROBE_C);
    const c = spawnSync(cc, ['-O2', '-std=gnu11', '-o', exe, src], { encoding: 'utf8', timeout: 60_000 });
    if (c.status !== 0) return { result: null, cc: ccName, why: `the probe did not compile with ${cc}: ${(c.stderr || String(c.error)).split('\n')[0]}` };
    const r = spawnSync(exe, quick ? ['--quick'] : [], { encoding: 'utf8', timeout: 120_000 });
    if (r.status !== 0) return { result: null, cc: ccName, why: `the probe failed: ${(r.stderr || String(r.error)).split('\n')[0]}` };
    return { result: JSON.parse(r.stdout) as ProbeResult, cc: ccName, why: '' };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** What the machine is: CPU, cores, memory, kernel, whether it is itself a virtual machine, its THP setting. */
export function machineFacts(): { machine: string; hypervisor: boolean; thp: string } {
  const read = (f: string) => {
    try {
      return readFileSync(f, 'utf8');
    } catch {
      return '';
    }
  };
  const hypervisor = /^flags\s*:.*\bhypervisor\b/m.test(read('/proc/cpuinfo'));
  const thp = /\[(\w+)\]/.exec(read('/sys/kernel/mm/transparent_hugepage/enabled'))?.[1] ?? 'unknown';
  const cpus = os.cpus();
  const machine = `${cpus[0]?.model?.trim() ?? 'unknown CPU'}, ${cpus.length} CPUs, ${Math.round(os.totalmem() / 2 ** 30)} GiB, Linux ${os.release()}, ${hypervisor ? 'a virtual machine (CPUID hypervisor flag)' : 'no hypervisor flag'}, THP ${thp}`;
  return { machine, hypervisor, thp };
}

/**
 * The profile from the measurements. Each cost says where it came from
 * (`sources`): measured here, derived from a measurement, or taken from the
 * default profile because nothing here could measure it.
 */
export function buildProfile(node: NodeMeasurements, probe: ProbeResult | null, facts: { machine: string; hypervisor: boolean; thp: string }, extra: { command: string; date: string; cc: string | null; probeWhy: string }): HostCostProfile {
  const d = DEFAULT_COST_PROFILE.costs;
  const fromDefault = `from the shipped default profile (${DEFAULT_COST_PROFILE.provenance.machine}; ${DEFAULT_COST_PROFILE.provenance.date})`;
  const costs = {} as HostCosts;
  const sources: Partial<Record<keyof HostCosts, string>> = {};
  const set = (k: keyof HostCosts, v: number, why: string) => {
    costs[k] = Math.round(Math.max(0, v));
    sources[k] = why;
  };
  // A VM exit: CPUID traps to the hypervisor only when this machine is a guest.
  if (probe?.cpuidNs !== undefined && facts.hypervisor) set('vmExitNs', probe.cpuidNs, 'measured: CPUID round trip (C probe); this machine is a guest, so CPUID is a VM exit and entry');
  else set('vmExitNs', d.vmExitNs, `${fromDefault}: ${probe === null ? 'no C probe here' : 'this machine is not a guest, so CPUID does not exit'}`);
  // The host's 4 KiB fault, its clear excluded (the model clears for real).
  if (probe !== null) set('hostFault4kNs', probe.firstTouch4kNs - probe.zero4kNs, 'measured: first touch of fresh anonymous memory per 4 KiB (MADV_NOHUGEPAGE) minus a memset of 4 KiB (C probe)');
  else if (facts.thp !== 'always') set('hostFault4kNs', node.firstTouch4kNs - node.zero4kNs, 'measured: first touch of a fresh ArrayBuffer per 4 KiB minus a fill of 4 KiB (Node)');
  else set('hostFault4kNs', d.hostFault4kNs, `${fromDefault}: THP is "always" here, so Node's first touch mixes 2 MiB faults in`);
  // The 2 MiB fault, where the probe got huge pages.
  if (probe !== null && probe.thpHugeKb > 0) set('hostFault2mNs', probe.firstTouch2mNs - probe.zero2mNs, `measured: first touch per 2 MiB with MADV_HUGEPAGE (${probe.thpHugeKb} KiB of huge pages) minus a memset of 2 MiB (C probe)`);
  else set('hostFault2mNs', d.hostFault2mNs, `${fromDefault}: ${probe === null ? 'no C probe here' : 'the kernel gave no transparent huge page'}`);
  // MADV_DONTNEED: Node cannot call it.
  const mad: [keyof HostCosts, string][] = [
    ['madvise4kNs', '4096'],
    ['madvise64kNs', '65536'],
    ['madvise2mNs', '2097152'],
    ['madvise4mNs', '4194304'],
  ];
  if (probe !== null) {
    set('madviseEmptyNs', probe.madviseEmptyNs, 'measured: MADV_DONTNEED of an unpopulated 2 MiB (C probe)');
    for (const [k, size] of mad) set(k, probe.madviseNs[size], `measured: MADV_DONTNEED of a populated ${Number(size) / 1024} KiB of 4 KiB pages (C probe)`);
  } else for (const k of ['madviseEmptyNs', ...mad.map((x) => x[0])] as (keyof HostCosts)[]) set(k, d[k], `${fromDefault}: no C probe here (Node cannot call madvise)`);
  if (probe !== null && probe.thpHugeKb > 0) set('madvise2mThpNs', probe.madvise2mThpNs, 'measured: MADV_DONTNEED of one populated 2 MiB huge page (C probe)');
  else set('madvise2mThpNs', d.madvise2mThpNs, `${fromDefault}: ${probe === null ? 'no C probe here' : 'no transparent huge page here'}`);
  // What no user-space probe can see: the host's IPIs and interrupt injection, each a VM exit and entry.
  const exitFrom = sources.vmExitNs!.startsWith('measured') ? 'the VM exit measured here' : 'vmExitNs';
  set('tlbFlushNs', costs.vmExitNs, `derived: one VM exit and entry per vCPU (${exitFrom}): kvm_flush_remote_tlbs' IPI; the flush and the TLB refills after it are not counted`);
  set('kickNs', costs.vmExitNs, `derived: one VM exit and entry (${exitFrom}): the notify write, handled in KVM by ioeventfd`);
  set('interruptNs', costs.vmExitNs, `derived: one VM exit and entry (${exitFrom}): the interrupt's injection on the vCPU that takes it`);
  const profile = {
    format: COST_PROFILE_FORMAT,
    provenance: { machine: facts.machine, date: extra.date, command: extra.command, node: process.version, cc: extra.cc, ...(extra.probeWhy ? { probe: extra.probeWhy } : {}) },
    costs,
    sources,
    measured: { node, ...(probe !== null ? { probe } : {}) },
  };
  return validateCostProfile(profile, 'sim calibrate');
}

/** The profile as the module the repository ships (src/mm/host-costs-default.ts): `sim calibrate --out src/mm/host-costs-default.ts`. */
export function defaultProfileModule(p: HostCostProfile): string {
  return [
    '// The shipped default host cost profile (--cost-profile default), written by',
    `// \`${p.provenance.command}\` on ${p.provenance.date}.`,
    '// Machine, per-field sources and the raw measurements are in the data below.',
    '// Regenerate it on the machine the defaults should describe with:',
    '//   npx tsc -p . && node dist/src/cli/main.js calibrate --out src/mm/host-costs-default.ts',
    '// (src/mm/host-costs.ts validates it when it is loaded.)',
    '',
    `export const DEFAULT_PROFILE_JSON: unknown = ${JSON.stringify(p, null, 2)};`,
    '',
  ].join('\n');
}

export async function runCalibrateCommand(a: Record<string, unknown>): Promise<void> {
  let out: string | null;
  try {
    out = a.out === undefined ? null : outputFileFlag('out', a.out);
  } catch (e) {
    if (e instanceof UsageError) {
      process.stderr.write(`sim: ${e.message}\n`);
      process.exit(2);
    }
    throw e;
  }
  const quick = Boolean(a.quick);
  const facts = machineFacts();
  process.stderr.write(`calibrate: ${facts.machine}\n`);
  process.stderr.write('calibrate: Node: first touch, clear, futex round trip...\n');
  const node: NodeMeasurements = { ...measureNode(quick), futexRoundTripNs: await measureFutex(quick ? 500 : 3000) };
  let probe: ReturnType<typeof runProbe> = { result: null, cc: null, why: '--no-cc: the C probe was not run' };
  if (a.cc !== false) {
    process.stderr.write('calibrate: C probe: CPUID, madvise, 4 KiB and 2 MiB first touch...\n');
    probe = runProbe(quick);
    if (probe.result === null) process.stderr.write(`calibrate: ${probe.why}: Node-measurable costs only, the rest from the default profile\n`);
  }
  const command = ['sim', 'calibrate', ...(quick ? ['--quick'] : []), ...(a.cc === false ? ['--no-cc'] : []), ...(out !== null ? ['--out', out] : [])].join(' ');
  const profile = buildProfile(node, probe.result, facts, { command, date: new Date().toISOString(), cc: probe.cc, probeWhy: probe.why });
  const text = out !== null && out.endsWith('.ts') ? defaultProfileModule(profile) : JSON.stringify(profile, null, 2) + '\n';
  process.stderr.write(`calibrate: ${costSummary(profile.costs)}\n`);
  process.stderr.write(`calibrate: futex wake-up round trip ${(node.futexRoundTripNs / 1000).toFixed(1)}us (paid for real by the simulator's Atomics, not a profile cost)\n`);
  for (const [k, v] of Object.entries(profile.sources ?? {})) process.stderr.write(`  ${k}: ${profile.costs[k as keyof HostCosts]} ns, ${v}\n`);
  if (out === null) process.stdout.write(text);
  else {
    writeFileSync(out, text);
    // The module form is the shipped default (built in), not a --cost-profile file.
    if (out.endsWith('.ts')) process.stderr.write(`calibrate: profile module written to ${out}; as src/mm/host-costs-default.ts it becomes the default profile after npm run build\n`);
    else process.stderr.write(`calibrate: profile written to ${out}; use it with: sim --cost-profile ${out} ...\n`);
  }
}

// The host cost model (src/mm/host-costs.ts, src/mm/memory.ts): profiles are
// validated, the host's semantics hold (a discard writes no byte, an unbacked
// page reads as the host's zero page, THP faults map 2 MiB), and every cost
// is busy time on the thread a real host charges it to, as schedstat sees it.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Worker } from 'node:worker_threads';
import { describe, expect, it } from 'vitest';
import { UsageError } from '../src/base/errors.js';
import { burn, itersFor } from '../src/base/burn.js';
import { COST_FIELDS, COST_PROFILE_FORMAT, DEFAULT_COST_PROFILE, type HostCosts, NO_HOST_COSTS, hostCostModel, madviseNs, parseCostProfile } from '../src/mm/host-costs.js';
import { GuestMemory } from '../src/mm/memory.js';
import { Zone } from '../src/mm/buddy.js';
import { Sync } from '../src/locking/sync.js';
import { DEV_HOST_FILL, DEV_TLB_FLUSH_GEN, createShared, threadIds, type LayoutParams } from '../src/shm/layout.js';
import { ownTid, readSchedstat } from '../src/sim/cputime.js';
import type { CostProbeData, CostStep } from '../src/testing/cost-harness.js';
import { INJECTIONS, RACE_BASE_ARGS } from '../src/check/inject.js';

const root = path.resolve(__dirname, '..');
const cli = path.join(root, 'dist/src/cli/main.js');
const tmp = mkdtempSync(path.join(os.tmpdir(), 'host-costs-'));
const sim = (args: string[], env: Record<string, string> = {}) => spawnSync(process.execPath, [cli, ...args], { encoding: 'utf8', timeout: 60_000, env: { ...process.env, ...env } });

const zeroCosts = (): HostCosts => Object.fromEntries(COST_FIELDS.map((k) => [k, 0])) as unknown as HostCosts;
const profileJson = (costs: Record<string, unknown>, extra: Record<string, unknown> = {}) => JSON.stringify({ format: COST_PROFILE_FORMAT, provenance: { machine: 'test machine', date: '2025-01-01', command: 'written by the test' }, costs, ...extra });

describe('cost profiles', () => {
  it('the shipped default profile validates and says where, when and how it was measured', () => {
    const p = DEFAULT_COST_PROFILE;
    expect(p.provenance.machine.length).toBeGreaterThan(10);
    expect(p.provenance.command).toMatch(/^sim calibrate/);
    for (const k of COST_FIELDS) expect(p.sources?.[k], k).toMatch(/^(measured|derived|from the shipped default profile)/);
  });

  it('a bad profile is one line naming the field and what is accepted', () => {
    const ok = Object.fromEntries(COST_FIELDS.map((k) => [k, 1000]));
    const cases: [string, RegExp][] = [
      ['{"format": ', /^P: not JSON \(/],
      ['[]', /^P: \(top level\): not an object/],
      [JSON.stringify({ format: 'x/1', provenance: {}, costs: ok }), /^P: format: "x\/1"; accepted: "balloon-sim-host-costs\/1"$/],
      [JSON.stringify({ format: COST_PROFILE_FORMAT, provenance: { machine: 'm', date: 'd' }, costs: ok }), /^P: provenance\.command: missing; accepted: a non-empty string$/],
      [profileJson({ ...ok, vmExitNs: -1 }), /^P: costs\.vmExitNs: -1; accepted: a number of nanoseconds from 0 to 10000000$/],
      [profileJson({ ...ok, kickNs: '5' }), /^P: costs\.kickNs: "5"; accepted: a number of nanoseconds/],
      [profileJson({ ...ok, tlbFlushNs: undefined }), /^P: costs\.tlbFlushNs: missing; accepted/],
      [profileJson({ ...ok, faultNs: 3 }), /^P: costs\.faultNs: unknown field; accepted: vmExitNs, /],
    ];
    for (const [text, re] of cases) {
      let err: unknown;
      try {
        parseCostProfile(text, 'P');
      } catch (e) {
        err = e;
      }
      expect(err, text).toBeInstanceOf(UsageError);
      expect((err as Error).message, text).toMatch(re);
      expect((err as Error).message).not.toContain('\n');
    }
    expect(parseCostProfile(profileJson(ok), 'P').costs.vmExitNs).toBe(1000);
  });

  it('MADV_DONTNEED costs what the nearest measured range sizes say, per page unmapped', () => {
    const c = { ...zeroCosts(), madviseEmptyNs: 1000, madvise4kNs: 3000, madvise64kNs: 18_000, madvise2mNs: 514_000, madvise4mNs: 1_026_000 };
    expect(madviseNs(c, 0)).toBe(1000);
    expect(madviseNs(c, 1)).toBe(3000);
    expect(madviseNs(c, 8)).toBeCloseTo(3000 + (7 * 15_000) / 15, 6);
    expect(madviseNs(c, 512)).toBe(514_000);
    expect(madviseNs(c, 768)).toBe(770_000);
    expect(madviseNs(c, 2048)).toBe(2_050_000); // past 4 MiB: the last segment's slope
  });

  it('sim: a bad profile file or a missing one is one line naming it and the field, exit 2; the run prints the profile it used', () => {
    const bad = path.join(tmp, 'bad.json');
    writeFileSync(bad, profileJson({ ...Object.fromEntries(COST_FIELDS.map((k) => [k, 1000])), madvise2mNs: 'slow' }));
    const a = sim(['--cost-profile', bad, '--memory', '16M']);
    expect(a.status).toBe(2);
    expect(a.stderr).toBe(`sim: --cost-profile ${bad}: costs.madvise2mNs: "slow"; accepted: a number of nanoseconds from 0 to 10000000\n`);
    const b = sim(['--cost-profile', path.join(tmp, 'nope.json'), '--memory', '16M']);
    expect(b.status).toBe(2);
    expect(b.stderr.trim().split('\n')).toHaveLength(1);
    expect(b.stderr).toMatch(/--cost-profile: '.*nope\.json' is not a file; accepted: a profile file \(sim calibrate --out FILE\), default or none/);
    const good = path.join(tmp, 'good.json');
    writeFileSync(good, profileJson({ ...zeroCosts(), vmExitNs: 1500 }));
    const c = sim(['--cost-profile', good, '--cpus', '1', '--memory', '16M', '--duration', '50ms', '--hinting', 'off', '--seed', '1', '--json']);
    expect(c.status, c.stderr).toBe(0);
    expect(c.stderr).toContain(`host costs: profile ${good} (test machine; 2025-01-01; written by the test): fault 4K 1.50us (exit 1.50us)`);
    const j = JSON.parse(c.stdout);
    expect(j.config.costProfile).toBe(good);
    expect(j.config.hostCosts.costs.vmExitNs).toBe(1500);
    expect(j.rerun).toContain(`--cost-profile ${good}`);
    const d = sim(['--cost-profile', 'none', '--cpus', '1', '--memory', '16M', '--duration', '50ms', '--hinting', 'off', '--seed', '1']);
    expect(d.status, d.stderr).toBe(0);
    expect(d.stdout).toMatch(/^host costs: none \(--cost-profile none: a fault only zero-fills its page, no fixed cost anywhere\) host-thp=off$/m);
  });
});

describe('the host in one thread (GuestMemory)', () => {
  const mem = (memoryBytes = 16 * 2 ** 20) => new GuestMemory(createShared({ cpus: 1, memoryBytes, queueSize: 8, ringAlign: 4 }), NO_HOST_COSTS);

  it('a discard drops residency and writes no byte; the page then reads as zeros; its refault zero-fills it', () => {
    const m = mem();
    expect(m.touch(9)).toBe(1);
    m.writeStamp(9, 0, 77);
    const gen = m.views.device[DEV_TLB_FLUSH_GEN];
    expect(m.discard(8, 4)).toBe(1);
    expect(m.views.device[DEV_TLB_FLUSH_GEN]).toBe(gen + 1); // something was unmapped: a remote TLB flush
    expect(m.i32[9 * 1024]).not.toBe(0); // the bytes are still there: the device wrote nothing
    expect(m.checkStamp(9, 0, 77)).toMatch(/reads as zeros/); // ... but the guest reads the host's zero page
    expect(m.readWord(9 * 1024)).toBe(0);
    expect(m.discard(8, 4)).toBe(0);
    expect(m.views.device[DEV_TLB_FLUSH_GEN]).toBe(gen + 1); // nothing mapped, no flush
    expect(m.touch(9)).toBe(2);
    expect(m.i32[9 * 1024]).toBe(0);
  });

  it('with poison_val as the fresh-page byte (--poison-policy fill) unbacked pages read and refault as poison', () => {
    const v = createShared({ cpus: 1, memoryBytes: 16 * 2 ** 20, queueSize: 8, ringAlign: 4 });
    v.device[DEV_HOST_FILL] = 0xaa;
    const m = new GuestMemory(v, NO_HOST_COSTS);
    m.touch(3);
    m.fillPoison(3, 1, 0xaa);
    m.discard(3, 1);
    expect(m.checkPoison(3, 1, 0xaa)).toBe(-1);
    expect(m.touch(3)).toBe(2);
    expect(m.checkPoison(3, 1, 0xaa)).toBe(-1);
    expect(m.checkPoison(4, 1, 0x55)).toBe(4);
  });

  it('--host-thp: a fault where the whole 2 MiB is unbacked maps all 512 pages at once, otherwise one page', () => {
    const v = createShared({ cpus: 1, memoryBytes: 16 * 2 ** 20, queueSize: 8, ringAlign: 4 });
    const m = new GuestMemory(v, { ...NO_HOST_COSTS, hostThp: true });
    v.guestF64.fill(1.5); // stale bytes everywhere: a fault must clear them
    expect(m.touch(600)).toBe(1); // 2 MiB #1 (pfn 512..1023): one huge fault
    expect(m.residentPages()).toBe(512);
    for (const p of [512, 700, 1023]) expect(m.isResident(p)).toBe(true);
    expect(m.touch(513)).toBe(0);
    expect(v.guestF64[1023 * 512 + 5]).toBe(0);
    expect(m.discard(512, 8)).toBe(8); // a partial discard (reporting below pageblock order)
    expect(m.touch(514)).toBe(2); // the 2 MiB is partly backed: a 4 KiB refault
    expect(m.residentPages()).toBe(505);
    expect(m.discard(512, 512)).toBe(505);
    expect(m.touch(1000)).toBe(2); // whole 2 MiB discarded: one huge refault
    expect(m.residentPages()).toBe(512);
  });

  it('burn() spends the time it is asked for on this thread, as schedstat counts it', () => {
    const tid = ownTid();
    const a = readSchedstat(tid)!;
    burn(itersFor(30e6));
    const b = readSchedstat(tid)!;
    expect(b.runNs - a.runNs).toBeGreaterThan(27e6);
    expect(b.runNs - a.runNs).toBeLessThan(200e6);
  });
});

describe('each cost lands on the thread a real host charges (schedstat)', () => {
  it('a refault on CPU 3 is busy time on CPU 3; a discard is the device\'s; its TLB flush every CPU\'s', async () => {
    const cpus = 4;
    const params: LayoutParams = { cpus, memoryBytes: 32 * 2 ** 20, queueSize: 8, ringAlign: 4 };
    const views = createShared(params);
    new Zone(views, new Sync(views, threadIds(cpus).main)).init();
    // Every page was backed, then discarded: CPU 3's touches are refaults.
    const boot = new GuestMemory(views, NO_HOST_COSTS);
    boot.markAllResident();
    boot.discard(0, views.layout.pages);
    const costs: HostCosts = { ...zeroCosts(), vmExitNs: 50_000, hostFault4kNs: 200_000, madviseEmptyNs: 300_000, madvise4kNs: 300_000, madvise64kNs: 300_000, madvise2mNs: 300_000, madvise4mNs: 300_000, tlbFlushNs: 200_000 };
    const refaultPages = 40;
    const ranges = 20;
    const discardFrom = views.layout.pages - 2 * ranges;
    const probe = path.join(root, 'dist/workers/testing/cost-probe.js');
    const roles = [...Array.from({ length: cpus }, (_, i) => ({ role: 'cpu' as const, index: i })), { role: 'device' as const, index: 0 }];
    const workers = roles.map((r) => new Worker(probe, { workerData: { sab: views.sab, params, role: r.role, index: r.index, costs, pages: refaultPages, target: 3, discardFrom, ranges } satisfies CostProbeData }));
    const next = (w: Worker) => new Promise<Record<string, unknown>>((res, rej) => {
      const t = setTimeout(() => rej(new Error('cost probe: no answer in 20 s')), 20_000);
      w.once('message', (m) => {
        clearTimeout(t);
        res(m as Record<string, unknown>);
      });
      w.once('error', rej);
    });
    try {
      const tids = (await Promise.all(workers.map(next))).map((m) => m.tid as number);
      expect(tids.every((t) => t > 0)).toBe(true);
      const run = () => tids.map((t) => readSchedstat(t)!.runNs);
      const step = async (s: CostStep) => {
        const before = run();
        const answers = await Promise.all(workers.map((w) => {
          const p = next(w);
          w.postMessage(s);
          return p;
        }));
        for (const a of answers) expect(a.error).toBeUndefined();
        const after = run();
        return { ms: after.map((x, i) => (x - before[i]) / 1e6), answers };
      };
      // CPU 3 alone refaults 40 pages at 250 us each: 10 ms on its thread, none elsewhere.
      const a = await step('refault');
      expect(a.answers[3].refaults).toBe(refaultPages);
      expect(a.ms[3]).toBeGreaterThan(0.9 * refaultPages * 0.25);
      for (const i of [0, 1, 2, 4]) expect(a.ms[i], `thread ${i} during CPU 3's refaults`).toBeLessThan(3);
      // The device discards 20 resident pages one range at a time: 20 madvise calls (300 us) on its thread ...
      for (let k = 0; k < ranges; k++) boot.touch(discardFrom + 2 * k);
      const b = await step('discard');
      expect(b.answers[4].dropped).toBe(ranges);
      expect(b.ms[4]).toBeGreaterThan(0.9 * ranges * 0.3);
      for (const i of [0, 1, 2, 3]) expect(b.ms[i], `cpu ${i} during the discards`).toBeLessThan(3);
      // ... and 20 TLB-flush interrupts (200 us) on every CPU, taken at its next allocation.
      const c = await step('alloc');
      for (const i of [0, 1, 2, 3]) expect(c.ms[i], `cpu ${i} paying the flushes`).toBeGreaterThan(0.9 * ranges * 0.2);
      expect(c.ms[4]).toBeLessThan(3);
    } finally {
      for (const w of workers) w.postMessage('exit');
      await Promise.all(workers.map((w) => w.terminate()));
    }
  });
});

describe('the stamp oracle still sees a discard of a page in use (the host maps its zero page)', () => {
  // The injections that hand the device a block a CPU can allocate, with the
  // device's own oracle switched off (BALLOON_SIM_SELFTEST=no-range-check):
  // only a CPU reading its page back can notice, as in a real guest.
  for (const name of ['early-putback', 'no-isolate'] as const) {
    it(`${name}: the stamp oracle catches it`, () => {
      let found = '';
      for (let seed = 1; seed <= 6 && !found; seed++) {
        const r = sim([...RACE_BASE_ARGS, ...INJECTIONS[name].args, '--inject', name, '--seed', String(seed)], { BALLOON_SIM_SELFTEST: 'no-range-check' });
        expect(r.stdout).not.toMatch(/^VIOLATION device-allocated-range/m);
        if (r.status === 1) found = /^VIOLATION ([a-z-]+): (.*)$/m.exec(r.stdout)?.[0] ?? r.stdout.slice(-300);
      }
      expect(found).toMatch(/^VIOLATION stamp: .*reads as zeros/);
    });
  }
});

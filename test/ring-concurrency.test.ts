// Ring concurrency (issue 20 part B, docs/DESIGN.md §12): the driver's
// descriptor allocation policy (--desc-policy lifo|fifo), more than one
// chain in flight per report (--report-inflight), and what they are for: a
// ring publish-order slip that one chain in flight starting at descriptor 0
// cannot expose (a stale avail entry equals the fresh one), planted on
// either side with BALLOON_SIM_SELFTEST (ring-idx-before-entry: the driver
// publishes avail idx before the entry; ring-peek-head: the device reads the
// entry before the idx that covers it), is invisible in the old
// configuration and found by the new ones. Then the free page hint driver:
// the hint-cmd-id oracle against a planted late id check, and the swarm's
// new draws (drawn after the old ones, which stay as they were).
//
// Driver and device are interleaved by hand in one thread; a handful of
// CLI runs show the same end to end.

import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { OracleViolation, UsageError } from '../src/base/errors.js';
import { BAD_KINDS, readDeviceCounters } from '../src/host/balloon-device.js';
import { DEV_BAD_BASE, DEV_FREE_PAGE_HINT_CMD_ID, DEV_VQ_INDEX, PAGE_SIZE, metricBase, threadIds } from '../src/shm/layout.js';
import { SP_RING_AVAIL, setScheduler } from '../src/locking/sync.js';
import { type DescPolicy, VRING_DESC_F_WRITE, type VringMem, VringVirtqueue } from '../src/virtio/ring.js';
import { FreePageHintDriver } from '../src/guest/free-page-hint.js';
import { HM_END_NEW_ID } from '../src/guest/balloon-pages.js';
import { HintCmdIdCheck, METRIC_HINT_ID_CHECKS } from '../src/check/hint-cmd-id.js';
import { hint } from '../src/sim/modes/hint.js';
import { DEFAULT_CONFIG, rerunCommand } from '../src/sim/config.js';
import { validateConfig } from '../src/sim/validate.js';
import { SWARM_HINT_RUNS, runConfig } from '../src/cli/stress.js';
import { configFromArgs } from '../src/cli/flags.js';
import { ringFixture } from './ring-fixture.js';
import { makeWorld, zoneAs } from './helpers.js';

const CLI = path.resolve(__dirname, '../dist/src/cli/main.js');
const MiB = 2 ** 20;

/** A driver queue over the fixture's ring with the given policy (and the driver-side self-test). */
function queue(f: ReturnType<typeof ringFixture>, descPolicy: DescPolicy, selfTestIdxBeforeEntry = false): VringVirtqueue {
  return new VringVirtqueue(f.ring, f.views.device, { eventIdx: false, queueIndex: f.views.device[DEV_VQ_INDEX], descPolicy, selfTestIdxBeforeEntry });
}

/** A chain of `n` one-page device-writable buffers on free pages (the range check passes). */
function addChain(d: VringVirtqueue, n: number, token: number): number {
  const addrs = Array.from({ length: n }, (_, k) => ((token * 3 + k) % 2000) * PAGE_SIZE);
  return d.addInbuf(addrs, new Array(n).fill(PAGE_SIZE), n, token);
}

describe('descriptor allocation policy (--desc-policy)', () => {
  it('lifo (Linux free_head) starts every chain at descriptor 0 with one in flight; fifo rotates through the table', () => {
    for (const policy of ['lifo', 'fifo'] as const) {
      const f = ringFixture({ queueSize: 8 });
      const d = queue(f, policy);
      const heads: number[] = [];
      let expectHead = 0;
      for (let t = 0; t < 24; t++) {
        const n = 1 + (t % 3);
        const h = addChain(d, n, t);
        heads.push(h);
        if (policy === 'fifo') expect(h).toBe(expectHead);
        expectHead = (expectHead + n) % 8;
        d.kick();
        expect(f.device.serve()).toBeNull();
        expect(d.getBuf()).toBe(t);
      }
      if (policy === 'lifo') expect(new Set(heads)).toEqual(new Set([0]));
      else expect(new Set(heads).size).toBe(8); // every descriptor has been a head
      expect(d.numFree).toBe(8);
    }
  });

  it('keeps chains intact with many in flight, collected a few at a time, under both policies; a rebuilt queue (device reset) starts at 0 again', () => {
    for (const policy of ['lifo', 'fifo'] as const) {
      const f = ringFixture({ queueSize: 16 });
      const d = queue(f, policy);
      let next = 0;
      let expectTok = 0;
      let bytes = 0;
      for (let round = 0; round < 300; round++) {
        // Add what fits, 1..4 descriptors per chain, then serve and collect a varying number.
        while (next < 2000) {
          const n = 1 + ((next * 7) % 4);
          if (addChain(d, n, next) < 0) break;
          bytes += n * PAGE_SIZE;
          next++;
        }
        d.kick();
        expect(f.device.serve()).toBeNull();
        for (let k = 0; k < 1 + (round % 5) && d.moreUsed(); k++) expect(d.getBuf()).toBe(expectTok++);
        expect(d.inFlightMax).toBeGreaterThan(1);
      }
      while (d.moreUsed()) expect(d.getBuf()).toBe(expectTok++);
      expect(expectTok).toBe(next);
      expect(d.numFree).toBe(16);
      expect(BAD_KINDS.reduce((s, _k, i) => s + f.views.device[DEV_BAD_BASE + i], 0)).toBe(0);
      expect(readDeviceCounters(f.views, 'reporting', 'linux').bytesDiscarded).toBe(bytes); // every chain read as written
      // init_vqs() after a reset: the ring zeroed, the queue built anew, the device's state forgotten.
      f.ring.reset();
      f.device.vq.resetState();
      const again = queue(f, policy);
      expect(addChain(again, 2, 1)).toBe(0);
      expect(addChain(again, 1, 2)).toBe(2);
    }
  });
});

type Slip = 'none' | 'peek' | 'idx-first';

/**
 * `reports` reports of `chainsPerReport` chains of 2 descriptors each,
 * driver and device interleaved in one thread as a --sched run may
 * interleave them: the device serves after every publish (at the publish's
 * scheduling point, so with 'idx-first' between the idx store and the entry
 * store) and after every kick. Returns the first violation or null.
 */
function interleaved(policy: DescPolicy, chainsPerReport: number, slip: Slip, reports = 40): OracleViolation | null {
  const f = ringFixture({ queueSize: 8, device: { selfTestPeekHead: slip === 'peek' } });
  const d = queue(f, policy, slip === 'idx-first');
  let inDevice = false;
  let found: OracleViolation | null = null;
  const serve = () => {
    const v = f.device.serve();
    if (v !== null) throw new OracleViolation(v);
  };
  setScheduler({
    active: () => true,
    point: (kind) => {
      if (kind !== SP_RING_AVAIL || inDevice) return;
      inDevice = true;
      try {
        serve();
      } finally {
        inDevice = false;
      }
    },
    block: () => undefined,
    nowMs: () => 0,
  });
  try {
    let tok = 0;
    for (let r = 0; r < reports; r++) {
      for (let c = 0; c < chainsPerReport; c++) {
        expect(addChain(d, 2, tok++)).toBeGreaterThanOrEqual(0);
        d.kick();
        serve();
      }
      while (d.moreUsed()) d.getBuf();
      expect(d.inFlight).toBe(0);
    }
  } catch (e) {
    if (!(e instanceof OracleViolation)) throw e;
    found = e;
  } finally {
    setScheduler(null);
  }
  return found;
}

describe('a ring publish-order slip that one chain in flight from descriptor 0 cannot expose', () => {
  it('clean driver and device: no violation under any policy or chains in flight (the harness itself is sound)', () => {
    for (const policy of ['lifo', 'fifo'] as const) for (const n of [1, 2, 3]) expect(interleaved(policy, n, 'none')).toBeNull();
  });

  it('ring-peek-head (the device reads avail.ring before the idx covers it): invisible with lifo and one chain; found with fifo or two chains in flight', () => {
    expect(interleaved('lifo', 1, 'peek')).toBeNull();
    for (const [policy, n] of [['fifo', 1], ['lifo', 2], ['fifo', 3]] as const) {
      const v = interleaved(policy, n, 'peek');
      expect(v, `${policy} ${n}`).not.toBeNull();
      expect(v!.violation.oracle).toBe('ring');
      expect(v!.message).toMatch(/device returned descriptor \d+, which is not the head of a chain in flight|device moved used idx/);
    }
  });

  it('ring-idx-before-entry (the driver publishes avail idx before the entry), the device running at the publish point: invisible with lifo and one chain; found with fifo or two chains in flight', () => {
    expect(interleaved('lifo', 1, 'idx-first')).toBeNull();
    for (const [policy, n] of [['fifo', 1], ['lifo', 2]] as const) {
      const v = interleaved(policy, n, 'idx-first');
      expect(v, `${policy} ${n}`).not.toBeNull();
      expect(v!.violation.oracle).toBe('ring');
    }
  });
});

describe('the hint-cmd-id oracle: no free range after the driver has seen a newer cmd id', () => {
  /** The hint driver on the reporter thread with no device; the host writes cmd id 3 once `after` ranges have gone out. */
  function hintDriver(selfTestLateIdCheck: boolean, after = 3) {
    const w = makeWorld({ memoryBytes: 32 * MiB, cfg: { hinting: 'hint' } });
    hint.setUpDevice(w.views, w.cfg);
    const ids = threadIds(w.cfg.cpus);
    const check = new HintCmdIdCheck(w.views, ids.reporter);
    let ranges = 0;
    const observer = {
      configRead: (id: number) => check.configRead(id),
      published: (ring: VringMem, head: number, active: number) => {
        check.published(ring, head, active);
        // The host moves on (a new run) while the driver is sending.
        if ((ring.descFlags(head) & VRING_DESC_F_WRITE) !== 0 && ++ranges === after) Atomics.store(w.views.device, DEV_FREE_PAGE_HINT_CMD_ID, 3);
      },
    };
    const driver = new FreePageHintDriver(w.views, zoneAs(w, ids.reporter), ids.reporter, { ackTimeoutMs: 200, spin: 0, serving: () => true, poisonByte: null, cmdIdCheck: observer, selfTestLateIdCheck });
    Atomics.store(w.views.device, DEV_FREE_PAGE_HINT_CMD_ID, 2);
    return { w, driver, checks: () => w.views.metrics[metricBase(ids.reporter) + METRIC_HINT_ID_CHECKS], m: w.views.metrics, rm: metricBase(ids.reporter) };
  }

  it('upstream send_free_pages(): stops at the first read of a newer id; every range checked, none after it', () => {
    const h = hintDriver(false);
    h.driver.reportFreePage(2);
    expect(h.m[h.rm + HM_END_NEW_ID]).toBe(1);
    expect(h.checks()).toBe(3);
    // The next run (cmd id 3) starts clean: what was read under run 2 belongs to it.
    h.driver.reportFreePage(3);
    expect(h.checks()).toBeGreaterThan(3);
  });

  it('BALLOON_SIM_SELFTEST=hint-late-id-check (the id read before a send, acted on after it): the range sent after reading the newer id is a violation naming both ids', () => {
    const h = hintDriver(true);
    let err: unknown = null;
    try {
      h.driver.reportFreePage(2);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(OracleViolation);
    expect((err as OracleViolation).violation.oracle).toBe('hint-cmd-id');
    expect((err as OracleViolation).message).toMatch(/^hint-cmd-id: the driver sent the free range at pfn \d+ \(1024 pages\) for cmd id 2 after it had read cmd id 3 from config space/);
    expect(h.checks()).toBe(4);
  });
});

describe('flags and the swarm', () => {
  it('--desc-policy and --report-inflight: parsed, in the rerun command, refused where they cannot act, one line each', () => {
    const c = configFromArgs(['--hinting', 'aeration', '--capacity', '16', '--desc-policy', 'fifo', '--report-inflight', '4']);
    expect(c.descPolicy).toBe('fifo');
    expect(c.reportInflight).toBe(4);
    expect(rerunCommand(c)).toMatch(/--desc-policy fifo --report-inflight 4$/);
    expect(configFromArgs(rerunCommand(c).split(' ').slice(1))).toEqual(c);
    expect(rerunCommand(configFromArgs([]))).not.toMatch(/desc-policy|report-inflight/);
    expect(() => configFromArgs(['--desc-policy', 'random'])).toThrow(/^--desc-policy: 'random' is not accepted; accepted: lifo, fifo$/);
    expect(() => configFromArgs(['--report-inflight', '65'])).toThrow(/^--report-inflight: 65 is out of range; accepted: 1 to 64$/);
    expect(() => configFromArgs(['--hinting', 'naive', '--report-inflight', '2'])).toThrow(/^--report-inflight: .*not naive \(one block per report\)$/);
    expect(() => configFromArgs(['--hinting', 'hint', '--report-inflight', '2'])).toThrow(UsageError);
    expect(() => configFromArgs(['--hinting', 'off', '--desc-policy', 'fifo'])).toThrow(/^--desc-policy: .*not off$/);
    expect(() => configFromArgs(['--hinting', 'aeration', '--inject', 'no-ack-wait', '--report-inflight', '2'])).toThrow(/no-ack-wait/);
  });

  // The configurations the swarm drew for campaign seed 42 before these
  // draws existed (computed with the code before them): the new draws come
  // after every old one, so these stay exactly as they were.
  const PINNED = [
    '8/fragment/off/256M/cap2/o8/d10/nopcp/-/disc/firecracker//h0',
    '3/churn/naive/64M/cap16/o4/d50/nopcp/-/disc/firecracker//h0',
    '4/memfill/hint/64M/cap16/o5/d50/pcp/ei/disc/firecracker//h0',
    '4/memfill/naive/32M/cap32/o4/d100/nopcp/-/disc/firecracker/report-error=0.05/h0',
    '4/memfill/reporting/256M/cap8/o7/d0/pcp/-/disc/firecracker//h0',
    '2/memhog/reporting/64M/cap4/o7/d0/nopcp/ei/disc/firecracker//h0',
    '6/fragment/aeration/256M/cap8/o7/d100/pcp/-/disc/firecracker//h0',
    '6/fragment/reporting/128M/cap4/o8/d100/nopcp/ei/disc/firecracker//h0',
    '5/memfill/off/256M/cap1/o7/d10/nopcp/ei/disc/firecracker//h0',
    '6/churn/off/32M/cap2/o7/d50/pcp/-/disc/firecracker//h0',
    '3/memfill/aeration/256M/cap2/o8/d10/pcp/ei/disc/firecracker//h0',
    '2/memfill/reporting/128M/cap32/o7/d10/pcp/-/disc/firecracker//h0',
    '7/fragment/aeration/64M/cap2/o5/d100/pcp/-/disc/firecracker//h0',
    '2/churn/off/128M/cap2/o7/d50/pcp/-/disc/firecracker//h0',
    '1/page_fault1/reporting/256M/cap8/o5/d10/nopcp/ei/disc/firecracker/report-error=0.25,ack-delay=0.05,irq-spurious=0.25/h0',
    '1/memfill/aeration/64M/cap2/o8/d10/pcp/-/disc/firecracker/ack-delay=0.25,irq-spurious=0.25/h0',
  ];

  it('the swarm draws the policy, chains in flight and hint intervals after every old draw: old configurations unchanged, new ones valid', () => {
    const base = { ...DEFAULT_CONFIG, seed: 5 };
    const o = { campaignSeed: 42, swarm: true, runDurationMs: 300 };
    const sig = (c: typeof base) => `${c.cpus}/${c.workload}/${c.hinting}/${c.memoryBytes / MiB}M/cap${c.capacity}/o${c.reportOrder}/d${c.reportDelayMs}/${c.pcp ? 'pcp' : 'nopcp'}/${c.eventIdx ? 'ei' : '-'}/${c.discard ? 'disc' : 'keep'}/${c.hintDevice}/${c.deviceFaults.map((f) => `${f.kind}=${f.rate}`).join(',')}/h${c.hostile}`;
    const all = Array.from({ length: 300 }, (_, i) => runConfig(base, o, i));
    expect(all.slice(0, PINNED.length).map(sig)).toEqual(PINNED);
    for (const c of all) {
      expect(() => validateConfig(c)).not.toThrow();
      if (c.hinting === 'off') expect([c.descPolicy, c.reportInflight]).toEqual(['lifo', 1]);
      if (c.reportInflight > 1) expect(['reporting', 'aeration']).toContain(c.hinting);
      if (c.hinting === 'hint') {
        expect(c.hintIntervalMs).toBeGreaterThanOrEqual(10);
        expect(c.hintIntervalMs).toBeLessThanOrEqual(1000);
        expect(c.durationMs).toBeGreaterThanOrEqual(SWARM_HINT_RUNS * c.hintIntervalMs);
      } else expect(c.hintIntervalMs).toBe(DEFAULT_CONFIG.hintIntervalMs);
    }
    const withQueue = all.filter((c) => c.hinting !== 'off');
    const fifo = withQueue.filter((c) => c.descPolicy === 'fifo').length;
    expect(fifo / withQueue.length).toBeGreaterThan(0.35);
    expect(fifo / withQueue.length).toBeLessThan(0.65);
    expect(all.filter((c) => c.reportInflight > 1).length).toBeGreaterThan(20);
    expect(new Set(all.filter((c) => c.hinting === 'hint').map((c) => c.hintIntervalMs)).size).toBeGreaterThanOrEqual(5);
  });
});

describe('end to end', () => {
  const SMALL = ['--memory', '64M', '--capacity', '8', '--report-order', '7', '--report-delay', '0ms', '--settle-timeout', '1s', '--check-interval', '100ms', '--cost-profile', 'none', '--cpus', '2', '--workload', 'churn'];
  const sim = (args: string[], selftest = '') => {
    const r = spawnSync(process.execPath, [CLI, ...SMALL, ...args, '--json'], { encoding: 'utf8', timeout: 90_000, env: { ...process.env, BALLOON_SIM_SELFTEST: selftest } });
    const json = r.stdout ? JSON.parse(r.stdout) : null;
    return { status: r.status, json, stderr: r.stderr, runs: (o: string) => json.checks.find((c: { oracle: string }) => c.oracle === o).runs as number };
  };

  it('ring-peek-head running free: reporting with lifo and one chain passes; --desc-policy fifo finds it (ring)', () => {
    const args = ['--hinting', 'reporting', '--duration', '500ms', '--seed', '3'];
    const old = sim(args, 'ring-peek-head');
    expect(old.status, old.stderr).toBe(0);
    expect(old.json.hinting.ringInFlightMax).toBe(1);
    expect(old.runs('ring')).toBeGreaterThan(10);
    const fifo = sim([...args, '--desc-policy', 'fifo'], 'ring-peek-head');
    expect(fifo.status, fifo.stderr).toBe(1);
    expect(fifo.json.violations[0].oracle).toBe('ring');
    expect(fifo.json.rerun).toMatch(/--desc-policy fifo$/);
  });

  it('ring-idx-before-entry under --sched random: --report-inflight 4 finds it (ring) with more than one chain in flight', () => {
    const r = sim(['--hinting', 'reporting', '--duration', '300ms', '--sched', 'random', '--report-inflight', '4', '--seed', '1'], 'ring-idx-before-entry');
    expect(r.status, r.stderr).toBe(1);
    expect(r.json.violations[0].oracle).toBe('ring');
    expect(r.json.hinting.ringInFlightMax).toBeGreaterThan(1);
  });

  it('hint under --sched: several chains in flight, its config waits strict and checked, every range checked by hint-cmd-id; the late id check planted is found', () => {
    const args = ['--hinting', 'hint', '--hint-device', 'qemu', '--hint-interval', '10ms', '--duration', '300ms', '--sched', 'random', '--seed', '1'];
    const good = sim(args);
    expect(good.status, good.stderr).toBe(0);
    expect(good.json.hinting.ringInFlightMax).toBeGreaterThan(1);
    expect(good.json.hinting.hint.runEnds.newCmdId).toBeGreaterThan(0);
    expect(good.runs('lost-wakeup')).toBeGreaterThan(0);
    expect(good.runs('hint-cmd-id')).toBeGreaterThan(0);
    const bad = sim(args, 'hint-late-id-check');
    expect(bad.status, bad.stderr).toBe(1);
    expect(bad.json.violations[0].oracle).toBe('hint-cmd-id');
    expect(bad.json.violations[0].message).toMatch(/after it had read cmd id \d+ from config space/);
  });
});

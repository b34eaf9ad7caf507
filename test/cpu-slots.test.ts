// --cpu-slots (src/locking/cpu-slots.ts): the ticket semaphore by hand in one
// thread, then end to end.
import { describe, expect, it } from 'vitest';
import { CPU_SLOT_SLICE_MS, CpuSlots } from '../src/locking/cpu-slots.js';
import { HDR_SLOT_HOLDERS, HDR_SLOT_RELEASED, SLOT_WAKE_BASE, createShared } from '../src/shm/layout.js';
import { DEFAULT_CONFIG } from '../src/sim/config.js';
import { runSimulation } from '../src/sim/run.js';
import { configFromArgs } from '../src/cli/flags.js';
import { UsageError } from '../src/base/errors.js';

function slotsWorld(cpus: number, n: number) {
  const v = createShared({ cpus, memoryBytes: 8 * 2 ** 20, queueSize: 8, ringAlign: 4 });
  const cpu = Array.from({ length: cpus }, (_, c) => new CpuSlots(v.header, v.cpuSlots, c, cpus, n, 200, () => false));
  return { v, cpu };
}

const sleepMs = (ms: number) => Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);

describe('cpu slots: a FIFO ticket semaphore', () => {
  it('lets N CPUs in, in ticket order; a release wakes only the CPU it lets in, on its own wake word', () => {
    const { v, cpu } = slotsWorld(4, 2);
    cpu[0].acquire();
    cpu[1].acquire();
    expect(v.header[HDR_SLOT_HOLDERS]).toBe(2);
    cpu[3].takeTicket();
    cpu[2].takeTicket();
    expect(cpu[3].admitted()).toBe(false);
    expect(cpu[2].admitted()).toBe(false);
    cpu[1].release();
    // cpu 3 took its ticket first: it is let in, and only its wake word moved.
    expect(cpu[3].admitted()).toBe(true);
    expect(cpu[2].admitted()).toBe(false);
    expect(Atomics.load(v.cpuSlots, SLOT_WAKE_BASE + 3)).toBe(1);
    expect(Atomics.load(v.cpuSlots, SLOT_WAKE_BASE + 2)).toBe(0);
    cpu[3].waitTurn();
    expect(v.header[HDR_SLOT_HOLDERS]).toBe(2);
    cpu[0].release();
    expect(cpu[2].admitted()).toBe(true);
    expect(Atomics.load(v.cpuSlots, SLOT_WAKE_BASE + 2)).toBe(1);
  });

  it('a holder yields between ops only once its slice ran out and another CPU waits, to the back of the queue', () => {
    const { cpu } = slotsWorld(2, 1);
    cpu[0].acquire();
    for (let i = 0; i < 64; i++) cpu[0].between();
    expect(cpu[0].stats.yields).toBe(0); // within its slice
    sleepMs(CPU_SLOT_SLICE_MS + 1);
    for (let i = 0; i < 64; i++) cpu[0].between();
    expect(cpu[0].stats.yields).toBe(0); // nobody waits: it keeps the slot
    cpu[1].takeTicket();
    sleepMs(CPU_SLOT_SLICE_MS + 1);
    // cpu 0 yields, and its new ticket is behind cpu 1's: its wait times out (200 ms) while cpu 1 holds the slot.
    expect(() => {
      for (let i = 0; i < 64; i++) cpu[0].between();
    }).toThrow(/cpu 0's ticket \d+ not served within 200 ms/);
    expect(cpu[0].stats.yields).toBe(1);
    expect(cpu[1].admitted()).toBe(true);
  });

  it('the holders assertion fails when more than N hold a slot (a release counted twice)', () => {
    const { v, cpu } = slotsWorld(2, 1);
    cpu[0].acquire();
    Atomics.add(v.header, HDR_SLOT_RELEASED, 1); // a release that never happened
    expect(() => cpu[1].acquire()).toThrow(/2 CPUs hold one of 1 slots/);
  });
});

describe('--cpu-slots end to end', () => {
  it('4 CPUs on 1 slot: every CPU runs, they switch between ops, every oracle passes; the rerun names the slots', async () => {
    const cfg = { ...DEFAULT_CONFIG, cpus: 4, cpuSlots: 1, workload: 'churn' as const, memoryBytes: 64 * 2 ** 20, durationMs: 600, seed: 11, hinting: 'reporting' as const, reportDelayMs: 20, costProfile: 'none', hostCosts: null };
    const r = await runSimulation(cfg);
    expect(r.ok, r.rerun).toBe(true);
    for (const row of r.cpus) expect(row.ops, `cpu ${row.cpu}`).toBeGreaterThan(0);
    // 600 ms of CPU_SLOT_SLICE_MS slices on one slot: a switch at the end of nearly every slice.
    expect(r.totals.cpuSlotYields).toBeGreaterThan(600 / CPU_SLOT_SLICE_MS / 2);
    expect(r.rerun).toContain('--cpu-slots 1');
  });

  it('refuses more slots than CPUs, a bad value and --sched, in one line naming the flag', () => {
    expect(() => configFromArgs(['--cpus', '4', '--cpu-slots', '5'])).toThrow(UsageError);
    expect(() => configFromArgs(['--cpus', '4', '--cpu-slots', 'two'])).toThrow(/--cpu-slots: 'two' is not accepted; accepted: off, auto or a whole number from 0 \(off\) to --cpus \(4\)/);
    expect(() => configFromArgs(['--cpus', '4', '--cpu-slots', '2', '--sched', 'pct'])).toThrow(/--cpu-slots: not with --sched pct/);
    expect(configFromArgs(['--cpus', '4', '--cpu-slots', 'off']).cpuSlots).toBe(0);
    expect(configFromArgs(['--cpus', '1', '--cpu-slots', 'auto']).cpuSlots).toBe(1);
  });
});

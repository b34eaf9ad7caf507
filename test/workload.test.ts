import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { MAX_ORDER, METRIC_ALLOCS, METRIC_HOST_FAULTS, METRIC_OPS, METRIC_REFAULTS, METRIC_THP_FALLBACKS, NIL, PAGEBLOCK_ORDER, metricBase } from '../src/shm/layout.js';
import { Cpu } from '../src/sim/workload.js';
import { makeWorld, zoneAs } from './helpers.js';
import { OracleViolation } from '../src/base/errors.js';

describe('content stamps', () => {
  it('pass for pages only their owner touched', () => {
    const w = makeWorld();
    const cpu = new Cpu(w.views, zoneAs(w, 0), 0, w.cfg, 1);
    cpu.fillRegion(300, true);
    expect(cpu.held.pages).toBe(300);
    cpu.freeAll();
    expect(w.zone.freePages).toBe(4096);
  });

  it('catch a page handed to two CPUs (the free list is corrupted to give it out again)', () => {
    const w = makeWorld();
    const z0 = zoneAs(w, 0);
    const z1 = zoneAs(w, 1);
    const cpu0 = new Cpu(w.views, z0, 0, w.cfg, 1);
    const cpu1 = new Cpu(w.views, z1, 1, w.cfg, 2);
    const pfn = cpu0.allocBlock(0);
    const seq = cpu0.touchBlock(pfn, 0);
    // Bug: the block goes back on the free list while cpu0 still holds it.
    z0.setHead(pfn, 0, 0);
    z0.freeOneLocked(pfn, 0, false, false);
    // cpu1 allocates it (the list hands out the most recent order-0 block) and writes its stamp.
    const again = cpu1.allocBlock(0);
    expect(again).toBe(pfn);
    cpu1.touchBlock(again, 0);
    let err: unknown;
    try {
      cpu0.freeBlock(pfn, 0, seq);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(OracleViolation);
    expect((err as OracleViolation).violation.oracle).toBe('stamp');
    expect((err as OracleViolation).violation.message).toMatch(/cpu 1's stamp/);
  });

  it('catch contents lost to a host discard while the page is in use', () => {
    const w = makeWorld();
    const cpu = new Cpu(w.views, zoneAs(w, 0), 0, w.cfg, 1);
    const pfn = cpu.allocBlock(3);
    const seq = cpu.touchBlock(pfn, 3);
    cpu.mem.discard(pfn + 5, 1);
    expect(() => cpu.freeBlock(pfn, 3, seq)).toThrow(/reads as zeros/);
  });

  it('count a touch of a discarded page as a host refault', () => {
    const w = makeWorld();
    const cpu = new Cpu(w.views, zoneAs(w, 0), 0, w.cfg, 1);
    expect(cpu.mem.touch(10)).toBe(1);
    expect(cpu.mem.touch(10)).toBe(0);
    expect(cpu.mem.residentPages()).toBe(1);
    cpu.mem.discard(10, 1);
    expect(cpu.mem.residentPages()).toBe(0);
    expect(cpu.mem.touch(10)).toBe(2);
  });
});

describe('host fault counters', () => {
  it('count first touches and refaults of a block apart (METRIC_HOST_FAULTS, METRIC_REFAULTS)', () => {
    const w = makeWorld();
    const cpu = new Cpu(w.views, zoneAs(w, 0), 0, w.cfg, 1);
    const m = w.views.metrics;
    const b = metricBase(0);
    const pfn = cpu.allocBlock(2);
    cpu.touchBlock(pfn, 2);
    expect([m[b + METRIC_HOST_FAULTS], m[b + METRIC_REFAULTS]]).toEqual([4, 0]);
    cpu.touchBlock(pfn, 2); // resident now: no fault of either kind
    expect([m[b + METRIC_HOST_FAULTS], m[b + METRIC_REFAULTS]]).toEqual([4, 0]);
    cpu.mem.discard(pfn + 1, 2);
    cpu.touchBlock(pfn, 2);
    expect([m[b + METRIC_HOST_FAULTS], m[b + METRIC_REFAULTS]]).toEqual([4, 2]);
  });
});

describe('workload building blocks', () => {
  it('fillRegion takes the largest blocks available', () => {
    const w = makeWorld();
    const cpu = new Cpu(w.views, zoneAs(w, 0), 0, w.cfg, 1);
    cpu.fillRegion(1024 + 512 + 1, false);
    const orders = Array.from(cpu.held.order.subarray(0, cpu.held.n)).sort((a, b) => b - a);
    expect(orders).toEqual([MAX_ORDER - 1, 9, 0]);
    cpu.freeAll();
  });

  it('allocLargest falls back to smaller orders when large blocks are gone', () => {
    const w = makeWorld({ memoryBytes: 8 * 2 ** 20 });
    const cpu = new Cpu(w.views, zoneAs(w, 0), 0, w.cfg, 1);
    // take both order-10 blocks' worth minus a little: leave only small blocks
    const a = cpu.allocBlock(MAX_ORDER - 1);
    expect(a).not.toBe(NIL);
    const [pfn, order] = cpu.allocLargest(MAX_ORDER - 1);
    expect(pfn).not.toBe(NIL);
    expect(order).toBeLessThan(MAX_ORDER - 1); // the min watermark keeps the second order-10 block from being taken whole
  });
});

describe('page_fault1 as will-it-scale runs it: one fault per page, or per 2 MiB with THP', () => {
  const counters = (w: ReturnType<typeof makeWorld>, cpu: number) => {
    const m = w.views.metrics;
    const b = metricBase(cpu);
    return { ops: m[b + METRIC_OPS], allocs: m[b + METRIC_ALLOCS], fallbacks: m[b + METRIC_THP_FALLBACKS] };
  };

  it('--thp never: exactly one order-0 allocation per op (page touched), through the pcp list', () => {
    const w = makeWorld({ memoryBytes: 64 * 2 ** 20, zone: { pcp: true }, cfg: { thp: 'never' } });
    const cpu = new Cpu(w.views, zoneAs(w, 0), 0, w.cfg, 1);
    expect(cpu.faultRegion(1000, true)).toBe(1000);
    const c = counters(w, 0);
    expect(c).toEqual({ ops: 1000, allocs: 1000, fallbacks: 0 });
    expect(cpu.held.n).toBe(1000);
    for (let i = 0; i < cpu.held.n; i++) expect(cpu.held.order[i]).toBe(0);
    cpu.freeAll();
    expect(counters(w, 0).ops).toBe(1000);
  });

  it('--thp always: one order-9 allocation per 2 MiB, order 0 for the rest', () => {
    const w = makeWorld({ memoryBytes: 64 * 2 ** 20, zone: { pcp: true }, cfg: { thp: 'always' } });
    const cpu = new Cpu(w.views, zoneAs(w, 0), 0, w.cfg, 1);
    expect(cpu.faultRegion(2 * 512 + 100, true)).toBe(1124);
    expect(counters(w, 0)).toEqual({ ops: 1124, allocs: 2 + 100, fallbacks: 0 });
    expect([...cpu.held.order.subarray(0, cpu.held.n)].filter((o) => o === PAGEBLOCK_ORDER)).toHaveLength(2);
  });

  it('--thp always with no free order-9 block: the 2 MiB range falls back to order-0 faults (VM_FAULT_FALLBACK)', () => {
    const w = makeWorld({ memoryBytes: 16 * 2 ** 20, zone: { pcp: true }, cfg: { thp: 'always' } });
    // Pin one page inside every 2 MiB block: no order-9 block is left free.
    const pages: number[] = [];
    for (let p = w.zone.alloc(0, 99); p !== NIL; p = w.zone.alloc(0, 99)) pages.push(p);
    for (const p of pages) if (p % 512 !== 0) w.zone.free(p, 0, 99);
    expect(w.zone.freeArea(PAGEBLOCK_ORDER, 2) + w.zone.freeArea(PAGEBLOCK_ORDER + 1, 2)).toBe(0);
    const cpu = new Cpu(w.views, zoneAs(w, 0), 0, w.cfg, 1);
    expect(cpu.faultRegion(512, true)).toBe(512);
    expect(counters(w, 0)).toEqual({ ops: 512, allocs: 512, fallbacks: 1 });
  });
});

describe('hot CPU paths once hinting starts', () => {
  // touch and touchBlock run millions of times before the first
  // report; a refault path they had never run (no JIT type feedback) made every
  // CPU thread deoptimize and recompile them when refaults began, a simulator
  // cost the hinting-on vs off benchmarks charged to hinting.
  it('do not deoptimize when refaults begin (node --trace-deopt)', () => {
    const cli = path.resolve(__dirname, '../dist/src/cli/main.js');
    // --warm: every page starts host-backed, so the fault path first runs
    // when the first discard lands (the CPUs warm it up on scratch memory).
    const args = ['--trace-deopt', cli, '--cpus', '2', '--workload', 'page_fault1', '--memory', '64M', '--duration', '1500ms', '--report-delay', '200ms', '--capacity', '8', '--seed', '4', '--warm'];
    const r = spawnSync(process.execPath, args, { encoding: 'utf8', timeout: 60_000, maxBuffer: 64 * 2 ** 20 });
    expect(r.status).toBe(0);
    // The run did refault: the path under test ran.
    const refaults = Number(/refaults (\d+)/.exec(r.stdout)?.[1] ?? 0);
    expect(refaults).toBeGreaterThan(0);
    const deopts = (r.stdout.match(/deoptimizing 0x[0-9a-f]+ <JSFunction (touch|touchBlock) /g) ?? []).map((l) => l.split('JSFunction ')[1]);
    expect(deopts).toEqual([]);
  });
});

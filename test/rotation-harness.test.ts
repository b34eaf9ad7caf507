// The rotation benchmark's harness (bench/rotation.ts): one thread runs
// several guest CPUs of a shared buffer in turn, switched between ops.
import { describe, expect, it } from 'vitest';
import { METRIC_OPS, metricBase, openShared } from '../src/shm/layout.js';
import { Zone } from '../src/mm/buddy.js';
import { Sync } from '../src/locking/sync.js';
import { checkConservation, checkFreeLists } from '../src/check/structure.js';
import { rotationBuffer, runRotation } from '../src/testing/rotation-harness.js';

const PARAMS = { cpus: 4, memoryBytes: 64 * 2 ** 20, queueSize: 16, ringAlign: 4 };

describe('rotation harness', () => {
  it('runs its CPUs in turn, each slice on one CPU, and leaves the zone whole', () => {
    const sab = rotationBuffer(PARAMS);
    const { turns } = runRotation({ sab, params: PARAMS, cpus: [0, 2, 3], sliceMs: 5, durationMs: 150 });
    // 150 ms of 5 ms slices: about 30 turns on a quiet machine, but a loaded
    // one (CI) overruns slices; every CPU had a turn (its ops below), so at
    // least one switch to each of the other two happened.
    expect(turns).toBeGreaterThanOrEqual(3);
    const v = openShared(sab, PARAMS);
    const ops = [0, 1, 2, 3].map((c) => v.metrics[metricBase(c) + METRIC_OPS]);
    for (const c of [0, 2, 3]) expect(ops[c], `cpu ${c}`).toBeGreaterThan(0);
    expect(ops[1]).toBe(0); // not one of this thread's CPUs
    const zone = new Zone(v, new Sync(v, PARAMS.cpus, { spin: 10, waitTimeoutMs: 500 }));
    expect(checkFreeLists(zone)).toEqual([]);
    expect(checkConservation(zone).violations).toEqual([]);
    expect(zone.freePages).toBe(v.layout.pages); // everything given back, pcp lists drained
  });
});

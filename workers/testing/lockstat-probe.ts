// Thread entry for test/lockstat.test.ts: a scripted, deterministic contention
// on the zone lock between two threads over one shared buffer. Not used by the
// simulator itself.
//
// Round r: thread (r % 2) is the holder, the other the waiter.
//   holder: lock(zone, holdSite); publish HELD = r+1; wait until the lock
//           word reads 2 (the waiter is asleep on it: spin is 0), then keep
//           holding for holdMs more; unlock; wait for DONE = r+1.
//   waiter: wait for HELD = r+1; lock(zone, waitSite) (contended); unlock;
//           publish DONE = r+1.
// So every waiter waits at least holdMs, measured from its failed fast path.
import { parentPort, workerData } from 'node:worker_threads';
import { LOCK_ZONE, lockWordIndex, openShared, type LayoutParams } from '../../src/shm/layout.js';
import { LockStat } from '../../src/locking/lockstat.js';
import { Sync } from '../../src/locking/sync.js';

export interface ProbeData {
  sab: SharedArrayBuffer;
  params: LayoutParams;
  /** Control words: [HELD, DONE, SLEEP] (a test harness channel, not simulation state). */
  ctrl: SharedArrayBuffer;
  thread: 0 | 1;
  rounds: number;
  holdMs: number;
  holdSite: number;
  waitSite: number;
}

const HELD = 0;
const DONE = 1;
const SLEEP = 2; // never changes: Atomics.wait on it is a bounded sleep
const BOUND_MS = 10_000;

function waitFor(ctrl: Int32Array, idx: number, atLeast: number, what: string): void {
  const deadline = performance.now() + BOUND_MS;
  for (let v = Atomics.load(ctrl, idx); v < atLeast; v = Atomics.load(ctrl, idx)) {
    if (performance.now() > deadline) throw new Error(`probe: timed out waiting for ${what}`);
    Atomics.wait(ctrl, idx, v, 50);
  }
}

function run(d: ProbeData): void {
  const views = openShared(d.sab, d.params);
  const ctrl = new Int32Array(d.ctrl);
  const sync = new Sync(views, d.thread, { spin: 0, waitTimeoutMs: BOUND_MS });
  const stat = new LockStat(views, d.thread);
  sync.observer = stat;
  const word = lockWordIndex(LOCK_ZONE);
  for (let r = 0; r < d.rounds; r++) {
    if (r % 2 === d.thread) {
      sync.lock(LOCK_ZONE, d.holdSite);
      Atomics.store(ctrl, HELD, r + 1);
      Atomics.notify(ctrl, HELD);
      const deadline = performance.now() + BOUND_MS;
      while (Atomics.load(views.locks, word) !== 2) {
        if (performance.now() > deadline) throw new Error('probe: the waiter never went to sleep on the lock');
        Atomics.wait(ctrl, SLEEP, 0, 1);
      }
      Atomics.wait(ctrl, SLEEP, 0, d.holdMs);
      sync.unlock(LOCK_ZONE);
      waitFor(ctrl, DONE, r + 1, `round ${r} done`);
    } else {
      waitFor(ctrl, HELD, r + 1, `round ${r} held`);
      sync.lock(LOCK_ZONE, d.waitSite);
      sync.unlock(LOCK_ZONE);
      Atomics.store(ctrl, DONE, r + 1);
      Atomics.notify(ctrl, DONE);
    }
  }
  stat.publish();
}

try {
  run(workerData as ProbeData);
  parentPort!.postMessage({ ok: true });
} catch (e) {
  parentPort!.postMessage({ ok: false, error: e instanceof Error ? e.message : String(e) });
}

// Test-only thread entry: two threads take two locks in opposite order
// (AB-BA) under the seeded scheduler, to show a real lock deadlock is found
// (and reported) instead of hanging. Used by test/sched.test.ts.
import { parentPort, workerData } from 'node:worker_threads';
import { HDR_READY, LOCK_BALLOON, LOCK_ZONE, openShared, type LayoutParams } from '../../src/shm/layout.js';
import { SchedHalted, Scheduler } from '../../src/sched/scheduler.js';
import { Sync, setScheduler } from '../../src/locking/sync.js';

const { sab, params, thread, rounds } = workerData as { sab: SharedArrayBuffer; params: LayoutParams; thread: number; rounds: number };
const views = openShared(sab, params);
const sync = new Sync(views, thread, { spin: 0, waitTimeoutMs: 2000 });
const s = new Scheduler(views, thread, { check: () => [], hintingQuiet: () => true });
Atomics.add(views.header, HDR_READY, 1);
let outcome = 'done';
try {
  s.enter();
  setScheduler(s);
  const [a, b] = thread === 0 ? [LOCK_ZONE, LOCK_BALLOON] : [LOCK_BALLOON, LOCK_ZONE];
  for (let i = 0; i < rounds; i++) {
    sync.lock(a);
    sync.lock(b);
    sync.unlock(b);
    sync.unlock(a);
  }
} catch (e) {
  outcome = e instanceof SchedHalted ? 'deadlocked' : `error: ${e instanceof Error ? e.message : String(e)}`;
} finally {
  s.exit();
  setScheduler(null);
}
parentPort!.postMessage(outcome);

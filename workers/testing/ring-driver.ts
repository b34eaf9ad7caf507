// Thread entry for the ring harness (threaded test, bench/vring.ts): run one
// driver loop, the device role, or one side of the bare ping-pong, and post
// the result back. All logic is in src/testing/vring-harness.ts and src/sim/roles.ts.
import { parentPort, workerData } from 'node:worker_threads';
import type { Config } from '../../src/sim/config.js';
import { runRole } from '../../src/sim/roles.js';
import { type HarnessTask, runExchange, runPingPong, runRoundTrips } from '../../src/testing/vring-harness.js';

type Task = HarnessTask | { mode: 'device'; sab: SharedArrayBuffer; config: Config };

const task = workerData as Task;
let result: unknown;
switch (task.mode) {
  case 'device':
    result = runRole({ sab: task.sab, config: task.config, role: 'device', index: 0 });
    break;
  case 'exchange':
    result = runExchange(task);
    break;
  case 'roundtrip':
    result = runRoundTrips(task);
    break;
  case 'pingpong':
    result = runPingPong(task);
    break;
}
parentPort!.postMessage(result);

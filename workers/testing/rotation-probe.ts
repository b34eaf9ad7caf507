// Thread entry for bench/rotation.ts: runs its guest CPUs in turn
// (src/testing/rotation-harness.ts) and posts how many turns they had.
// Not used by the simulator itself.
import { parentPort, workerData } from 'node:worker_threads';
import { type RotationProbeData, runRotation } from '../../src/testing/rotation-harness.js';

parentPort!.postMessage(runRotation(workerData as RotationProbeData));

// Thread entry for test/host-costs.test.ts: one role of the host cost
// harness (src/testing/cost-harness.ts). It posts its OS thread id, then runs
// each step the test sends and answers with what it did; between steps it
// sleeps on its port, so the test reads its schedstat while it is idle.
// Not used by the simulator itself.
import { parentPort, workerData } from 'node:worker_threads';
import { type CostProbeData, type CostStep, costProbe } from '../../src/testing/cost-harness.js';

const probe = costProbe(workerData as CostProbeData);
parentPort!.on('message', (m: CostStep | 'exit') => {
  if (m === 'exit') {
    parentPort!.close();
    return;
  }
  try {
    parentPort!.postMessage({ done: m, ...probe.step(m) });
  } catch (e) {
    parentPort!.postMessage({ done: m, error: e instanceof Error ? e.message : String(e) });
  }
});
parentPort!.postMessage({ tid: probe.tid });

// Rotation benchmark: how much of page_fault1's 8-vs-2-CPU loss on a host
// with fewer cores than CPUs is the model's and how much the host's
// scheduling of threads. Three configurations of one 8-CPU, 1 GiB buffer
// (`--warm`, `--thp never`, no host costs), interleaved rounds, medians:
//  - two: 2 threads, CPUs 0 and 1 only (what 2 CPUs do on 2 cores);
//  - inThread: 2 threads running 4 CPUs each, switched between ops every
//    20 ms inside the thread (all 8 CPUs' memory held, no OS context switch
//    between CPUs: the JIT-compiled code stays the same);
//  - threads: 8 threads of one CPU each, rotated by the host's scheduler
//    (the simulator's own arrangement, free-running).
// inThread / two is what 8 CPUs' work costs on 2 cores when rotating them
// is cheap; threads / two adds what the host's rotation of 8 isolates costs.
// The harness is src/testing/rotation-harness.ts (not the simulator's run
// loop: no main thread, no oracles, no slots).

import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { METRIC_OPS, createShared, metricBase, openShared } from '../src/shm/layout.js';
import { type RotationProbeData, rotationBuffer } from '../src/testing/rotation-harness.js';
import { type BenchReport, median, round } from './types.js';

const PARAMS = { cpus: 8, memoryBytes: 2 ** 30, queueSize: 16, ringAlign: 4 };
const SLICE_MS = 20;

/** The compiled thread entry dist/workers/testing/rotation-probe.js, from dist/bench/. */
const probeFile = (): string => path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../workers/testing/rotation-probe.js');

/** Run `groups` (one thread per group of CPUs) from a fresh --warm state of `sab`; ops per second over all CPUs. */
async function opsPerSec(sab: SharedArrayBuffer, groups: number[][], durationMs: number): Promise<number> {
  rotationBuffer(PARAMS, sab);
  await Promise.all(
    groups.map(
      (cpus) =>
        new Promise<void>((resolve, reject) => {
          const data: RotationProbeData = { sab, params: PARAMS, cpus, sliceMs: SLICE_MS, durationMs };
          const w = new Worker(probeFile(), { workerData: data });
          w.once('error', reject);
          w.once('exit', (code) => (code === 0 ? resolve() : reject(new Error(`rotation probe exited with ${code}`))));
        }),
    ),
  );
  // Each probe ran durationMs on its own clock; their starts differ by a thread start-up.
  const m = openShared(sab, PARAMS).metrics;
  let ops = 0;
  for (let cpu = 0; cpu < PARAMS.cpus; cpu++) ops += m[metricBase(cpu) + METRIC_OPS];
  return ops / (durationMs / 1000);
}

export async function bench(opts: { quick?: boolean } = {}): Promise<BenchReport> {
  const quick = opts.quick === true;
  const durationMs = quick ? 500 : 5000;
  const rounds = quick ? 1 : 3;
  const sab = createShared(PARAMS).sab;
  const configs: Record<string, number[][]> = {
    two: [[0], [1]],
    inThread: [
      [0, 2, 4, 6],
      [1, 3, 5, 7],
    ],
    threads: [[0], [1], [2], [3], [4], [5], [6], [7]],
  };
  const ops: Record<string, number[]> = { two: [], inThread: [], threads: [] };
  for (let r = 0; r < rounds; r++) for (const [k, groups] of Object.entries(configs)) ops[k].push(await opsPerSec(sab, groups, durationMs));
  const med = (k: string) => median(ops[k]);
  return {
    name: 'rotation',
    results: {
      pageFault1OpsPerSecTwoCpus: round(med('two')),
      pageFault1OpsPerSecEightCpusInThread: round(med('inThread')),
      pageFault1OpsPerSecEightCpusThreads: round(med('threads')),
    },
    ratios: {
      inThreadVsTwo: round(med('inThread') / med('two')),
      threadsVsTwo: round(med('threads') / med('two')),
      threadsVsInThread: round(med('threads') / med('inThread')),
    },
    notes: [
      `page_fault1 --thp never on an 8-CPU 1 GiB buffer from --warm, no host costs, ${durationMs} ms runs, ${rounds} interleaved rounds, medians: two = CPUs 0 and 1 on 2 threads; inThread = 8 CPUs on 2 threads, 4 each, switched between ops every ${SLICE_MS} ms inside the thread; threads = 8 threads of one CPU, rotated by the host`,
      'inThreadVsTwo: the cost of 8 CPUs\' work (8 regions held) when rotating them is cheap; threadsVsInThread: what the host rotating 8 threads (8 V8 isolates) adds. No target: it splits the kernel module\'s pageFault1Cpus8VsCpus2',
    ],
  };
}

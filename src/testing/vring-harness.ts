// Driver-side loops that exercise the ring against the real device role from
// another thread: the threaded test and bench/vring.ts run them through the
// thin entry workers/testing/ring-driver.ts. Also the bare Atomics ping-pong the
// round trip is compared with. Every wait is bounded.

import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { type Config, DEFAULT_CONFIG, layoutParams } from '../sim/config.js';
import { deviceInit } from '../host/balloon-device.js';
import { Zone } from '../mm/buddy.js';
import { DEV_VQ_INDEX, PAGE_SIZE, RUN_RUNNING, RUN_STOPPING, createShared, openShared, threadIds, type Views } from '../shm/layout.js';
import { Sync, bump, waitWhileEquals, publishRunState } from '../locking/sync.js';
import { ENOSPC, VringMem, VringVirtqueue } from '../virtio/ring.js';
import { negotiateFeatures } from '../virtio/balloon-abi.js';

/**
 * A config for a device-only harness run (no CPUs run; cpus=1 sizes the
 * layout). No host cost profile: the harness measures the ring and the
 * device's own work, not the modelled host's (src/mm/host-costs.ts).
 */
export function harnessConfig(over: Partial<Config> = {}): Config {
  return { ...DEFAULT_CONFIG, seed: 1, cpus: 1, hinting: 'reporting', memoryBytes: 64 * 2 ** 20, costProfile: 'none', hostCosts: null, ...over };
}

/** Main thread: shared buffer with a free zone, a reset device, features negotiated, run state RUNNING. */
export function harnessShared(cfg: Config): Views {
  const views = createShared(layoutParams(cfg));
  new Zone(views, new Sync(views, threadIds(cfg.cpus).main)).init();
  deviceInit(views, { eventIdx: cfg.eventIdx, vqNumbering: cfg.vqNumbering });
  negotiateFeatures(views, 0xffffffff, cfg.vqNumbering, 0);
  publishRunState(views, RUN_RUNNING);
  return views;
}

/** Main thread: stop the device role (RUN_STOPPING, wake everyone parked on the state word). */
export function harnessStop(views: Views): void {
  publishRunState(views, RUN_STOPPING);
}

export type HarnessTask =
  | { mode: 'exchange'; sab: SharedArrayBuffer; config: Config; chains: number; timeoutMs: number }
  | { mode: 'roundtrip'; sab: SharedArrayBuffer; config: Config; trips: number; warmup: number; spin: number; timeoutMs: number }
  | { mode: 'pingpong'; sab: SharedArrayBuffer; side: 0 | 1; trips: number; warmup: number; spin: number; timeoutMs: number };

export interface ExchangeResult {
  sent: number;
  received: number;
  /** First few problems: a token out of order, a len not 0, a timeout. */
  errors: string[];
  kicks: number;
  waits: number;
}

function driverFor(views: Views, cfg: Config): VringVirtqueue {
  return new VringVirtqueue(VringMem.fromViews(views), views.device, { eventIdx: cfg.eventIdx, queueIndex: views.device[DEV_VQ_INDEX] });
}

/**
 * Send `chains` chains of 1..4 one-page device-writable buffers (token = sequence
 * number) as fast as the ring takes them, collect every used element, and
 * check each comes back exactly once, in order, with len 0.
 */
export function runExchange(t: Extract<HarnessTask, { mode: 'exchange' }>): ExchangeResult {
  const views = openShared(t.sab, layoutParams(t.config));
  const d = driverFor(views, t.config);
  const pages = views.layout.pages;
  const addrs = [0, 0, 0, 0];
  const lens = [PAGE_SIZE, PAGE_SIZE, PAGE_SIZE, PAGE_SIZE];
  const errors: string[] = [];
  let sent = 0;
  let received = 0;
  let kicks = 0;
  let waits = 0;
  const deadline = performance.now() + t.timeoutMs;
  const never = () => false;
  while (received < t.chains && errors.length === 0) {
    let added = 0;
    while (sent < t.chains) {
      const n = 1 + (sent % 4);
      for (let k = 0; k < n; k++) addrs[k] = ((sent * 5 + k) % pages) * PAGE_SIZE;
      if (d.addInbuf(addrs, lens, n, sent) === ENOSPC) break;
      sent++;
      added++;
    }
    if (added > 0 && d.kick()) kicks++;
    let got = 0;
    for (let tok = d.getBuf(); tok >= 0; tok = d.getBuf()) {
      got++;
      if (tok !== received && errors.length < 5) errors.push(`expected token ${received}, got ${tok}`);
      if (d.lastLen !== 0 && errors.length < 5) errors.push(`token ${tok} came back with len ${d.lastLen}`);
      received++;
    }
    if (got === 0) {
      waits++;
      const left = deadline - performance.now();
      if (left <= 0 || d.waitUsed(left, never, t.config.spin) !== 'ready') errors.push(`timed out with ${received} of ${t.chains} chains back (${sent} sent)`);
    }
  }
  return { sent, received, errors, kicks, waits };
}

/** One-descriptor chain round trips: add, kick, wait for the used element. Returns per-trip ns. */
export function runRoundTrips(t: Extract<HarnessTask, { mode: 'roundtrip' }>): { ns: number[]; error?: string } {
  const views = openShared(t.sab, layoutParams(t.config));
  const d = driverFor(views, t.config);
  const ns: number[] = [];
  const never = () => false;
  for (let i = 0; i < t.warmup + t.trips; i++) {
    const t0 = performance.now();
    if (d.addInbuf([(i % 64) * PAGE_SIZE], [PAGE_SIZE], 1, i) === ENOSPC) return { ns, error: 'ring unexpectedly full' };
    d.kick();
    if (d.waitUsed(t.timeoutMs, never, t.spin) !== 'ready') return { ns, error: `round trip ${i} timed out` };
    const tok = d.getBuf();
    const t1 = performance.now();
    if (tok !== i) return { ns, error: `round trip ${i} returned token ${tok}` };
    if (i >= t.warmup) ns.push((t1 - t0) * 1e6);
  }
  return { ns };
}

/**
 * Bare two-thread ping-pong with the same spin-then-wait policy: side 0 bumps
 * word 0 and waits for word 1 to move, side 1 the mirror image. The round trip
 * floor any kick/interrupt exchange pays on this machine.
 */
export function runPingPong(t: Extract<HarnessTask, { mode: 'pingpong' }>): { ns: number[]; error?: string } {
  const w = new Int32Array(t.sab, 0, 2);
  const ns: number[] = [];
  const never = () => false;
  const mine = t.side;
  const theirs = 1 - t.side;
  let seen = 0;
  for (let i = 0; i < t.warmup + t.trips; i++) {
    if (mine === 0) {
      const t0 = performance.now();
      bump(w, 0);
      if (waitWhileEquals(w, theirs, seen, t.timeoutMs, never, t.spin) !== 'changed') return { ns, error: `ping ${i} timed out` };
      seen = Atomics.load(w, theirs);
      if (i >= t.warmup) ns.push((performance.now() - t0) * 1e6);
    } else {
      if (waitWhileEquals(w, theirs, seen, t.timeoutMs, never, t.spin) !== 'changed') return { ns, error: `pong ${i} timed out` };
      seen = Atomics.load(w, theirs);
      bump(w, 1);
    }
  }
  return { ns };
}

/** The compiled thread entry dist/workers/testing/ring-driver.js, from src/testing/ or dist/src/testing/ (as src/sim/run.ts workerFile()). */
export function ringWorkerFile(): string {
  const here = fileURLToPath(import.meta.url);
  const dir = path.dirname(here);
  const c = here.endsWith('.ts') ? path.resolve(dir, '../../dist/workers/testing/ring-driver.js') : path.resolve(dir, '../../workers/testing/ring-driver.js');
  if (!existsSync(c)) throw new Error(`worker entry not found (looked for ${c}); run 'npm run build' first`);
  return c;
}

/** Run one harness thread to completion (bounded: the thread is terminated after `timeoutMs`). */
export function runThread<T>(workerData: unknown, timeoutMs: number): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const w = new Worker(ringWorkerFile(), { workerData });
    const timer = setTimeout(() => {
      void w.terminate();
      reject(new Error(`harness thread did not finish within ${timeoutMs} ms`));
    }, timeoutMs);
    w.once('message', (m: T) => {
      clearTimeout(timer);
      resolve(m);
    });
    w.once('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    w.once('exit', (code) => {
      clearTimeout(timer);
      if (code !== 0) reject(new Error(`harness thread exited with ${code}`));
    });
  });
}

// What each thread runs, given the shared buffer and the configuration.
// workers/role.ts is the thin thread entry point around runRole().

import { Zone } from './buddy.js';
import { type Config, layoutParams } from './config.js';
import { BalloonDevice, type DeviceOptions } from './device.js';
import { HDR_READY, HDR_RUN_STATE, HDR_STATE_GEN, RUN_ABORT, RUN_INIT, RUN_RUNNING, RUN_SETTLING, openShared, threadIds, type Views } from './layout.js';
import { OracleViolation, type Violation } from './oracle.js';
import { subSeed } from './rng.js';
import { LockStat } from './lockstat.js';
import { LivenessError, Sync, bump, waitWhileEquals } from './sync.js';
import { Cpu } from './workload.js';

export type RoleName = 'cpu' | 'reporter' | 'device';

export interface RoleTask {
  sab: SharedArrayBuffer;
  config: Config;
  role: RoleName;
  index: number;
}

export interface RoleResult {
  role: RoleName;
  index: number;
  violations: Violation[];
  /** Set when the role itself failed (a bug or a harness problem): exit 3. */
  error?: string;
}

export function roleThreadId(task: Pick<RoleTask, 'role' | 'index' | 'config'>): number {
  const ids = threadIds(task.config.cpus);
  return task.role === 'cpu' ? task.index : task.role === 'reporter' ? ids.reporter : ids.device;
}

/** Stop everyone at once: a violation or failure was found. */
export function abortRun(views: Views): void {
  Atomics.store(views.header, HDR_RUN_STATE, RUN_ABORT);
  bump(views.header, HDR_STATE_GEN);
}

/** Turn a thrown error into the role's result, stopping the run. */
export function failureResult(views: Views | null, role: RoleName, index: number, e: unknown): RoleResult {
  if (views) abortRun(views);
  if (e instanceof OracleViolation) return { role, index, violations: [e.violation] };
  if (e instanceof LivenessError) return { role, index, violations: [{ oracle: 'liveness', message: e.message, cpu: role === 'cpu' ? index : undefined }] };
  const msg = e instanceof Error ? `${e.name}: ${e.message}` : String(e);
  return { role, index, violations: [], error: `${role}[${index}] failed: ${msg}` };
}

/** The device's options for a run: the queue kind follows the hinting mode. */
export function deviceOptions(config: Config): DeviceOptions {
  return { queueKind: config.hinting === 'aeration' ? 'aeration' : 'reporting', poisonPolicy: config.poisonPolicy, spin: config.spin, sliceMs: 50 };
}

export function runRole(task: RoleTask): RoleResult {
  const { config, role, index } = task;
  let views: Views | null = null;
  try {
    views = openShared(task.sab, layoutParams(config));
    const thread = roleThreadId(task);
    const sync = new Sync(views, thread, { spin: config.spin, waitTimeoutMs: config.waitTimeoutMs });
    const lockStat = config.lockstat ? new LockStat(views, thread) : null;
    sync.observer = lockStat;
    const zone = new Zone(views, sync, { pcp: config.pcp, pcpBatch: config.pcpBatch, pcpHigh: config.pcpHigh });
    // Start barrier: say we are ready, then wait for main to flip the run
    // state out of INIT (it bumps HDR_STATE_GEN and notifies).
    Atomics.add(views.header, HDR_READY, 1);
    const h = views.header;
    const deadline = performance.now() + config.waitTimeoutMs;
    while (Atomics.load(h, HDR_RUN_STATE) === RUN_INIT) {
      if (performance.now() > deadline) throw new LivenessError(`${role}[${index}] was never started by main within ${config.waitTimeoutMs} ms`);
      waitWhileEquals(h, HDR_STATE_GEN, Atomics.load(h, HDR_STATE_GEN), 50, () => Atomics.load(h, HDR_RUN_STATE) !== RUN_INIT);
    }
    selfTestFault(role, index);
    if (role === 'cpu') {
      new Cpu(views, zone, index, config, subSeed(config.seed, thread)).run();
    } else if (role === 'device') {
      // The host keeps serving while the workload settles; it stops once the
      // run state leaves RUNNING/SETTLING (STOPPING or ABORT).
      const serving = () => {
        const st = Atomics.load(h, HDR_RUN_STATE);
        return st === RUN_RUNNING || st === RUN_SETTLING;
      };
      const v = new BalloonDevice(views, deviceOptions(config)).run(() => !serving());
      if (v !== null) throw new OracleViolation(v);
    } else {
      throw new Error(`role ${role} is not available in this build`);
    }
    lockStat?.publish();
    return { role, index, violations: [] };
  } catch (e) {
    return failureResult(views, role, index, e);
  }
}

/**
 * Harness self-test (not a simulation feature): BALLOON_SIM_SELFTEST=crash or
 * =hang makes cpu[0] die or ignore the stop request, so the tests can prove a
 * dead or hung thread ends the run with exit 3 and the seed, never a hang.
 */
function selfTestFault(role: RoleName, index: number): void {
  const mode = process.env.BALLOON_SIM_SELFTEST;
  if (!mode || role !== 'cpu' || index !== 0) return;
  if (mode === 'crash') throw new Error('self-test: simulated worker crash');
  if (mode === 'hang') {
    const until = performance.now() + 60_000; // bounded even here
    while (performance.now() < until) {
      /* spin, ignoring the run state */
    }
  }
}

// Run configuration: flag parsing helpers, ranges and validation. Every bad
// value becomes a UsageError whose one-line message names the flag and the
// accepted range (exit 2, docs/DESIGN.md §10).

import { fmtBytes, fmtDuration, parseDuration, parseSize } from '../base/units.js';
import { UsageError } from '../base/errors.js';
import { PAGE_SIZE } from '../shm/layout.js';
import { zoneBatchsize } from '../mm/buddy.js';
import { cpuBoundInForce } from '../locking/cpu-slots.js';
import type { InjectionName } from '../check/inject.js';
import type { SchedParams } from '../sched/control.js';
import { DEFAULT_COST_PROFILE, type HostCostProfile } from '../mm/host-costs.js';
import { type DeviceFault, FAULTS, formatDeviceFaults, parseDeviceFaults } from '../virtio/device-faults.js';
import type { DescPolicy } from '../virtio/ring.js';

export const WORKLOADS = ['page_fault1', 'churn', 'memhog', 'memfill', 'fragment'] as const;
export type Workload = (typeof WORKLOADS)[number];

export const HINTING_MODES = ['off', 'reporting', 'aeration', 'hint', 'naive'] as const;
export type HintingModeName = (typeof HINTING_MODES)[number];

export interface Config {
  cpus: number;
  workload: Workload;
  memoryBytes: number;
  durationMs: number;
  seed: number;
  hinting: HintingModeName;
  /** Per-CPU page lists for orders 0..3 and pageblock order (Linux 6.1); --no-pcp: every allocation and free takes the zone lock. */
  pcp: boolean;
  /** pcp->batch; 0: the kernel's zone_batchsize(). */
  pcpBatch: number;
  /** pcp->high; 0: the kernel's zone_highsize(). */
  pcpHigh: number;
  /** Transparent huge pages for the CPUs' anonymous faults (page_fault1, memhog): 'never' (order-0 faults) or 'always' (order-9 faults, falling back to order 0). */
  thp: ThpMode;
  /** page_fault1, memfill: bytes each CPU maps and touches per iteration (0 = default 128 MiB, scaled down). */
  regionBytes: number;
  /** memhog: share of guest memory all CPUs together allocate (0..1). */
  hogShare: number;
  /** memhog: how long the memory is held before it is freed. */
  holdMs: number;
  /** Mid-run structural checks every this many ms (0: only at the end). */
  checkIntervalMs: number;
  /** Any single wait longer than this is a liveness failure. */
  waitTimeoutMs: number;
  /** Spins before a lock waiter sleeps. */
  spin: number;
  queueSize: number;
  ringAlign: number;
  /** Page poisoning: freed pages hold poisonByte, checked on allocation. */
  poison: boolean;
  poisonByte: number;
  /** Lock statistics (src/locking/lockstat.ts): per-thread counters on every lock operation. */
  lockstat: boolean;
  /** Delay between a report request and the pass; null: the mode's kernel value (reporting: PAGE_REPORTING_DELAY, 2 s; aeration v1: HZ/10). */
  reportDelayMs: number | null;
  /** Blocks per report (PAGE_REPORTING_CAPACITY, 32 upstream), a power of 2. */
  capacity: number;
  /** Smallest order reported (pageblock order, 9 on x86). */
  reportOrder: number;
  /** After the workload stops, how long the reporter may take to settle before the quiescent check; null: auto (src/sim/modes/index.ts settleTimeoutMs). */
  settleTimeoutMs: number | null;
  /** The device offers VIRTIO_BALLOON_F_PAGE_POISON. */
  pagePoisonFeature: boolean;
  /** Write all guest memory once at set-up so the simulator process's own page faults stay out of the measurement. */
  prefault: boolean;
  /** Offer VIRTIO_RING_F_EVENT_IDX (used_event / avail_event notification suppression). */
  eventIdx: boolean;
  /** Balloon queue numbering: 'spec' (reporting queue 4) or 'linux' (only existing queues numbered); see src/host/balloon-device.ts. */
  vqNumbering: 'spec' | 'linux';
  /** With PAGE_POISON and poison_val != 0: 'skip' the discard (QEMU) or discard and 'fill' with poison_val. */
  poisonPolicy: 'skip' | 'fill';
  /**
   * The device discards what is reported (MADV_DONTNEED). false: it validates,
   * checks and acknowledges every report but keeps the memory, the host
   * Linux's v5 reporting series measured with its madvise disabled: what the
   * guest pays for the reporting itself, without the refaults.
   */
  discard: boolean;
  // ---- free page hint (--hinting hint / naive; src/guest/free-page-hint.ts, src/host/free-page-hint-device.ts) ----
  /** The device starts a hint run (new free_page_hint_cmd_id) at start and then every this long. */
  hintIntervalMs: number;
  /**
   * The VMM behind the free_page_vq (src/host/free-page-hint-device.ts):
   * 'firecracker' discards every hinted range (MADV_DONTNEED); 'qemu' is live
   * migration: a hinted page is cleared from the migration bitmap, STOP at
   * every bitmap sync, DONE when the migration ends.
   */
  hintDevice: HintDeviceKind;
  /** Firecracker's acknowledge_on_stop: DONE as soon as the driver's STOP is seen (false: the host holds the pages, DONE --hint-done-after later). */
  hintAckOnStop: boolean;
  /** Firecracker with --no-hint-ack-on-stop: the host says stop (writes DONE) this long after the driver's STOP. */
  hintDoneAfterMs: number;
  /**
   * Mitigation (a), Firecracker + userfaultfd write protection (its
   * docs/ballooning.md): pages written since the run started are not
   * discarded. 'split': the write-tracking check and the discard are two
   * steps of the device thread; 'serialized': the vCPU's write fault and the
   * device's check+discard are serialized by the UFFD handler.
   */
  hintUffdWp: HintUffdWp;
  /** Mitigation (b), guest side: a block goes on free_page_list only once the device used it, so the shrinker frees acknowledged blocks only. */
  hintShrinkAckedOnly: boolean;
  /** Blocks the balloon's shrinker gives back per call. */
  hintShrinkBlocks: number;
  /**
   * --cpu-slots: at most this many CPU threads run at once, switched only
   * between ops (src/locking/cpu-slots.ts), so the host never preempts a CPU
   * inside a lock hold for another CPU; 0: off (the host schedules the
   * threads freely and may preempt a zone lock holder).
   */
  cpuSlots: number;
  /**
   * --cpu-threads: the simulated CPUs run on this many threads, each thread
   * switching between its CPUs between ops (src/sim/cpu-host.ts: CPU i on
   * thread i mod N); 0: off, a thread per CPU.
   */
  cpuThreads: number;
  /** Seeded scheduler (src/sched/): 'off' runs free; 'random' or 'pct' runs one role at a time. */
  sched: SchedStrategy;
  /** PCT: bug depth d (d-1 priority change points). */
  pctDepth: number;
  /** --replay: a schedule file path or a schedule string ('' = none). */
  replay: string;
  /** Fault injection (src/check/inject.ts): protections switched off, in order given. */
  inject: InjectionName[];
  /** --trace: events each thread's trace ring keeps (src/locking/trace.ts); 0: tracing off, no trace region. Not part of the rerun command: tracing changes no decision. */
  traceEvents: number;
  /** --cost-profile: 'default' (the shipped profile), 'none' (no fixed host cost) or a profile file's path (src/mm/host-costs.ts). */
  costProfile: string;
  /** The host cost profile in force (loaded from costProfile); null with 'none'. */
  hostCosts: HostCostProfile | null;
  /** --host-thp: the host backs guest memory with transparent huge pages (faults 2 MiB at a time where none of it is backed). */
  hostThp: boolean;
  /**
   * --warm: the guest has run a while and touched all its memory once, so the
   * host backs all of it at the start (no first-touch host faults with
   * hinting off); implies prefault's write of the simulator's own pages.
   */
  warm: boolean;
  /** --device-faults: device faults by kind and rate, seeded (src/virtio/device-faults.ts, docs/DESIGN.md §17); [] none. */
  deviceFaults: DeviceFault[];
  /** --hostile: probability per report that the driver first publishes a burst of malformed chains (src/check/hostile.ts); 0 off. */
  hostile: number;
  /** --desc-policy: the driver's descriptor allocation ('lifo': Linux's free_head; 'fifo': used chains to the tail, so heads rotate). */
  descPolicy: DescPolicy;
  /** --report-inflight: reporting/aeration split each report into up to this many chains, all in flight at once (1: upstream, one chain; more: a simulator extension). */
  reportInflight: number;
}

export const HINT_DEVICES = ['firecracker', 'qemu'] as const;
export type HintDeviceKind = (typeof HINT_DEVICES)[number];
export const HINT_UFFD_WP = ['off', 'split', 'serialized'] as const;
export type HintUffdWp = (typeof HINT_UFFD_WP)[number];

export const THP_MODES = ['never', 'always'] as const;
export type ThpMode = (typeof THP_MODES)[number];

export const SCHED_STRATEGIES = ['off', 'random', 'pct'] as const;
export type SchedStrategy = (typeof SCHED_STRATEGIES)[number];

export interface Range {
  min: number;
  max: number;
}

export const RANGES = {
  cpus: { min: 1, max: 64 },
  memoryBytes: { min: 8 * 2 ** 20, max: 16 * 2 ** 30 },
  durationMs: { min: 10, max: 24 * 3600 * 1000 },
  seed: { min: 0, max: 2 ** 32 - 1 },
  pcpBatch: { min: 1, max: 4096 },
  pcpHigh: { min: 2, max: 1 << 20 },
  holdMs: { min: 0, max: 3600 * 1000 },
  checkIntervalMs: { min: 0, max: 3600 * 1000 },
  waitTimeoutMs: { min: 100, max: 3600 * 1000 },
  spin: { min: 0, max: 1_000_000 },
  queueSize: { min: 2, max: 32768 },
  reportDelayMs: { min: 0, max: 60_000 },
  capacity: { min: 1, max: 512 },
  reportOrder: { min: 0, max: 10 },
  settleTimeoutMs: { min: 0, max: 600_000 },
  hintIntervalMs: { min: 10, max: 3600 * 1000 },
  hintDoneAfterMs: { min: 0, max: 3600 * 1000 },
  hintShrinkBlocks: { min: 1, max: 1024 },
  pctDepth: { min: 1, max: 16 },
  cpuSlots: { min: 0, max: 64 },
  cpuThreads: { min: 0, max: 64 },
  traceEvents: { min: 1024, max: 1 << 20 },
  reportInflight: { min: 1, max: 64 },
} satisfies Record<string, Range>;

function inRange(flag: string, v: number, r: Range, show: (n: number) => string = String): number {
  if (!Number.isFinite(v) || v < r.min || v > r.max) throw new UsageError(`--${flag}: ${Number.isFinite(v) ? show(v) : 'value'} is out of range; accepted: ${show(r.min)} to ${show(r.max)}`);
  return v;
}

export function intFlag(flag: string, raw: unknown, r: Range): number {
  const s = String(raw).trim();
  if (!/^-?\d+$/.test(s)) throw new UsageError(`--${flag}: '${raw}' is not a whole number; accepted: ${r.min} to ${r.max}`);
  return inRange(flag, Number(s), r);
}

export function sizeFlag(flag: string, raw: unknown, r: Range, multipleOf = 1): number {
  const v = parseSize(String(raw));
  if (v === null) throw new UsageError(`--${flag}: '${raw}' is not a size; use a number with an optional K, M or G suffix (${fmtBytes(r.min)} to ${fmtBytes(r.max)})`);
  inRange(flag, v, r, fmtBytes);
  if (v % multipleOf !== 0) throw new UsageError(`--${flag}: ${raw} is not a multiple of ${fmtBytes(multipleOf)}; accepted: multiples of ${fmtBytes(multipleOf)} from ${fmtBytes(r.min)} to ${fmtBytes(r.max)}`);
  return v;
}

export function durationFlag(flag: string, raw: unknown, r: Range): number {
  const v = parseDuration(String(raw));
  if (v === null) throw new UsageError(`--${flag}: '${raw}' is not a duration; use a number with ms, s or m (${fmtDuration(r.min)} to ${fmtDuration(r.max)})`);
  return inRange(flag, v, r, fmtDuration);
}

/** A duration flag whose default is `auto` (null): the flag absent or 'auto' gives null. */
export function autoDurationFlag(flag: string, raw: unknown, r: Range): number | null {
  if (raw === undefined || raw === 'auto') return null;
  if (parseDuration(String(raw)) === null) throw new UsageError(`--${flag}: '${raw}' is not accepted; use auto or a number with ms, s or m (${fmtDuration(r.min)} to ${fmtDuration(r.max)})`);
  return durationFlag(flag, raw, r);
}

export function choiceFlag<T extends string>(flag: string, raw: unknown, choices: readonly T[]): T {
  const s = String(raw);
  if (!(choices as readonly string[]).includes(s)) throw new UsageError(`--${flag}: '${s}' is not accepted; accepted: ${choices.join(', ')}`);
  return s as T;
}

export function powerOfTwoFlag(flag: string, raw: unknown, r: Range): number {
  const v = intFlag(flag, raw, r);
  if ((v & (v - 1)) !== 0) throw new UsageError(`--${flag}: ${v} is not a power of 2; accepted: a power of 2 from ${r.min} to ${r.max}`);
  return v;
}

export const DEFAULT_CONFIG: Omit<Config, 'seed'> = {
  cpus: 4,
  workload: 'page_fault1',
  memoryBytes: 2 ** 30,
  durationMs: 5000,
  hinting: 'reporting',
  pcp: true,
  pcpBatch: 0,
  pcpHigh: 0,
  thp: 'never',
  regionBytes: 0,
  hogShare: 0.8,
  holdMs: 500,
  checkIntervalMs: 500,
  waitTimeoutMs: 20_000,
  spin: 200,
  queueSize: 128,
  ringAlign: 4,
  poison: false,
  poisonByte: 0xaa,
  lockstat: false,
  reportDelayMs: null,
  capacity: 32,
  reportOrder: 9,
  settleTimeoutMs: null,
  pagePoisonFeature: true,
  prefault: false,
  eventIdx: false,
  vqNumbering: 'linux',
  poisonPolicy: 'skip',
  discard: true,
  hintIntervalMs: 1000,
  hintDevice: 'firecracker',
  hintAckOnStop: true,
  hintDoneAfterMs: 100,
  hintUffdWp: 'off',
  hintShrinkAckedOnly: false,
  hintShrinkBlocks: 4,
  cpuSlots: 0,
  cpuThreads: 0,
  sched: 'off',
  pctDepth: 3,
  replay: '',
  inject: [],
  traceEvents: 0,
  costProfile: 'default',
  hostCosts: DEFAULT_COST_PROFILE,
  hostThp: false,
  warm: false,
  deviceFaults: [],
  hostile: 0,
  descPolicy: 'lifo',
  reportInflight: 1,
};

/** Events per thread ring with --trace and no --trace-events (48 bytes each: 1.5 MiB per thread). */
export const DEFAULT_TRACE_EVENTS = 32768;

/** --device-faults: the list, or a UsageError naming the flag and the grammar. */
export function deviceFaultsFlag(raw: unknown): DeviceFault[] {
  if (raw === undefined) return [];
  try {
    return parseDeviceFaults(String(raw));
  } catch (e) {
    throw new UsageError(`--device-faults: ${(e as Error).message}`);
  }
}

/** --hostile: a probability (0.1) or a percentage (10%), 0 to 100%. */
export function hostileFlag(raw: unknown): number {
  if (raw === undefined) return 0;
  const s = String(raw).trim();
  const v = /^[0-9.]+%$/.test(s) ? Number(s.slice(0, -1)) / 100 : /^[0-9.]+$/.test(s) ? Number(s) : NaN;
  if (!(v >= 0 && v <= 1)) throw new UsageError(`--hostile: '${raw}' is not accepted; accepted: a probability per report from 0 to 1, or a percentage (25%)`);
  return v;
}

/** A device fault the hinting mode cannot act on: the one-line reason, or null. */
export function faultConflict(c: Config): string | null {
  for (const f of c.deviceFaults ?? []) {
    if (!FAULTS[f.kind].modes.includes(c.hinting)) return `--device-faults: ${f.kind} acts in --hinting ${FAULTS[f.kind].modes.join(', ')}; not ${c.hinting}`;
  }
  if (c.hostile > 0 && !['reporting', 'aeration', 'naive'].includes(c.hinting)) return `--hostile: the hostile guest shares the reporting driver's queue: --hinting reporting, aeration or naive; not ${c.hinting}`;
  if (c.hostile > 0 && c.inject.length > 0) return `--hostile: not with --inject (an injection's own failure would be blamed on the hostile chains, and no-ack-wait leaves chains in flight)`;
  return null;
}
/** --desc-policy and --report-inflight where they cannot act: the one-line reason, or null. */
export function ringConflict(c: Config): string | null {
  if ((c.descPolicy ?? 'lifo') !== 'lifo' && c.hinting === 'off') return `--desc-policy: applies to a mode with a queue (reporting, aeration, naive, hint); not off`;
  const n = c.reportInflight ?? 1;
  if (n > 1 && c.hinting !== 'reporting' && c.hinting !== 'aeration') return `--report-inflight: more than one chain per report splits a report's batch (reporting, aeration); not ${c.hinting}${c.hinting === 'naive' ? ' (one block per report)' : c.hinting === 'hint' ? ' (its driver keeps many chains in flight already)' : ''}`;
  if (n > 1 && c.inject.includes('no-ack-wait')) return `--report-inflight: not with --inject no-ack-wait (it sends one buffer and does not wait for it)`;
  return null;
}

/** Cross-field checks once every flag parsed on its own (the hinting mode's own rules: src/sim/validate.ts). */
export function checkConfig(c: Config): Config {
  if (c.capacity > c.queueSize) throw new UsageError(`--capacity: ${c.capacity} blocks do not fit in one chain of a ${c.queueSize}-entry queue; accepted: a power of 2 up to --queue-size`);
  const batch = c.pcpBatch > 0 ? c.pcpBatch : zoneBatchsize(c.memoryBytes / PAGE_SIZE);
  if (c.pcpHigh > 0 && c.pcpHigh <= batch) throw new UsageError(`--pcp-high: ${c.pcpHigh} must be greater than the pcp batch (${batch}${c.pcpBatch > 0 ? '' : ', the kernel\'s for this memory size'})`);
  if (c.regionBytes !== 0 && c.regionBytes % PAGE_SIZE !== 0) throw new UsageError(`--region: must be a multiple of 4KiB`);
  if (c.cpuSlots > c.cpus) throw new UsageError(`--cpu-slots: ${c.cpuSlots} slots for ${c.cpus} CPUs; accepted: 0 (off) to --cpus`);
  if (c.cpuSlots > 0 && c.sched !== 'off') throw new UsageError(`--cpu-slots: not with --sched ${c.sched} (the scheduler runs one thread at a time already)`);
  if (c.cpuThreads > c.cpus) throw new UsageError(`--cpu-threads: ${c.cpuThreads} threads for ${c.cpus} CPUs; accepted: 0 (off) to --cpus`);
  if (cpuThreadsInForce(c) > 0 && c.sched !== 'off') throw new UsageError(`--cpu-threads: not with --sched ${c.sched} (the scheduler switches threads, not the CPUs inside one)`);
  if (cpuThreadsInForce(c) > 0 && c.cpuSlots > 0) throw new UsageError(`--cpu-threads: not with --cpu-slots (both bound the CPUs running at once; choose one)`);
  return c;
}

/** --cpu-threads in force: N when 0 < N < cpus, else 0 (N = cpus is a thread per CPU). */
export const cpuThreadsInForce = (c: { cpus: number; cpuThreads?: number }): number => cpuBoundInForce(c.cpuThreads, c.cpus);

/** The CPUs thread `t` runs: t, t + N, t + 2N, ... (N = --cpu-threads in force; just t with a thread per CPU). */
export function hostedCpus(c: { cpus: number; cpuThreads?: number }, t: number): number[] {
  const n = cpuThreadsInForce(c);
  if (n === 0) return [t];
  const out: number[] = [];
  for (let i = t; i < c.cpus; i += n) out.push(i);
  return out;
}

/** Threads that run the simulated CPUs: --cpu-threads in force, or one per CPU. */
export const cpuThreadCount = (c: { cpus: number; cpuThreads?: number }): number => cpuThreadsInForce(c) || c.cpus;

/** The `sim` command line that reruns this configuration exactly. */
export function rerunCommand(c: Config): string {
  const d = DEFAULT_CONFIG;
  const parts = ['sim', '--cpus', String(c.cpus), '--workload', c.workload, '--memory', fmtSizeFlag(c.memoryBytes), '--duration', fmtDuration(c.durationMs), '--hinting', c.hinting, '--seed', String(c.seed)];
  if (!c.pcp) parts.push('--no-pcp');
  if (c.pcpBatch !== d.pcpBatch) parts.push('--pcp-batch', String(c.pcpBatch));
  if (c.pcpHigh !== d.pcpHigh) parts.push('--pcp-high', String(c.pcpHigh));
  if (c.thp !== d.thp) parts.push('--thp', c.thp);
  if (c.regionBytes !== d.regionBytes) parts.push('--region', fmtSizeFlag(c.regionBytes));
  if (c.hogShare !== d.hogShare) parts.push('--hog', `${+(c.hogShare * 100).toFixed(4)}%`);
  if (c.holdMs !== d.holdMs) parts.push('--hold', fmtDuration(c.holdMs));
  if (c.checkIntervalMs !== d.checkIntervalMs) parts.push('--check-interval', fmtDuration(c.checkIntervalMs));
  if (c.waitTimeoutMs !== d.waitTimeoutMs) parts.push('--wait-timeout', fmtDuration(c.waitTimeoutMs));
  if (c.spin !== d.spin) parts.push('--spin', String(c.spin));
  if (c.queueSize !== d.queueSize) parts.push('--queue-size', String(c.queueSize));
  if (c.ringAlign !== d.ringAlign) parts.push('--ring-align', String(c.ringAlign));
  if (c.poison) parts.push('--poison', '--poison-byte', '0x' + c.poisonByte.toString(16));
  if (c.lockstat) parts.push('--lockstat');
  if (c.reportDelayMs !== null) parts.push('--report-delay', fmtDuration(c.reportDelayMs));
  if (c.capacity !== d.capacity) parts.push('--capacity', String(c.capacity));
  if (c.reportOrder !== d.reportOrder) parts.push('--report-order', String(c.reportOrder));
  if (c.settleTimeoutMs !== null) parts.push('--settle-timeout', fmtDuration(c.settleTimeoutMs));
  if (!c.pagePoisonFeature) parts.push('--no-page-poison-feature');
  if (c.prefault) parts.push('--prefault');
  if (c.eventIdx) parts.push('--event-idx');
  if (c.vqNumbering !== d.vqNumbering) parts.push('--vq-numbering', c.vqNumbering);
  if (c.poisonPolicy !== d.poisonPolicy) parts.push('--poison-policy', c.poisonPolicy);
  if (!c.discard) parts.push('--no-discard');
  if (c.hintIntervalMs !== d.hintIntervalMs) parts.push('--hint-interval', fmtDuration(c.hintIntervalMs));
  if (c.hintDevice !== d.hintDevice) parts.push('--hint-device', c.hintDevice);
  if (c.hintAckOnStop !== d.hintAckOnStop) parts.push(c.hintAckOnStop ? '--hint-ack-on-stop' : '--no-hint-ack-on-stop');
  if (c.hintDoneAfterMs !== d.hintDoneAfterMs) parts.push('--hint-done-after', fmtDuration(c.hintDoneAfterMs));
  if (c.hintShrinkBlocks !== d.hintShrinkBlocks) parts.push('--hint-shrink', String(c.hintShrinkBlocks));
  if (c.hintUffdWp !== d.hintUffdWp) parts.push('--hint-uffd-wp', c.hintUffdWp);
  if (c.hintShrinkAckedOnly !== d.hintShrinkAckedOnly) parts.push(c.hintShrinkAckedOnly ? '--hint-shrink-acked-only' : '--no-hint-shrink-acked-only');
  if (c.cpuSlots !== d.cpuSlots) parts.push('--cpu-slots', String(c.cpuSlots));
  if (c.cpuThreads !== d.cpuThreads) parts.push('--cpu-threads', String(c.cpuThreads));
  if (c.sched !== d.sched) parts.push('--sched', c.sched);
  if (c.sched === 'pct' && c.pctDepth !== d.pctDepth) parts.push('--pct-depth', String(c.pctDepth));
  // --replay is not part of the configuration: the rerun reproduces the same
  // schedule from the seed (the schedule file pins it against code changes).
  for (const name of c.inject ?? []) parts.push('--inject', name);
  if (c.costProfile !== undefined && c.costProfile !== d.costProfile) parts.push('--cost-profile', c.costProfile);
  if (c.hostThp) parts.push('--host-thp');
  if (c.warm) parts.push('--warm');
  if (c.deviceFaults?.length) parts.push('--device-faults', formatDeviceFaults(c.deviceFaults));
  if (c.hostile) parts.push('--hostile', `${+(c.hostile * 100).toFixed(4)}%`);
  if (c.descPolicy !== undefined && c.descPolicy !== d.descPolicy) parts.push('--desc-policy', c.descPolicy);
  if (c.reportInflight !== undefined && c.reportInflight !== d.reportInflight) parts.push('--report-inflight', String(c.reportInflight));
  return parts.join(' ');
}

function fmtSizeFlag(b: number): string {
  if (b % 2 ** 30 === 0) return `${b / 2 ** 30}G`;
  if (b % 2 ** 20 === 0) return `${b / 2 ** 20}M`;
  if (b % 2 ** 10 === 0) return `${b / 2 ** 10}K`;
  return String(b);
}

/** Steps the scheduler's decision log holds (a schedule longer than this is replayed from its seed, not its file). */
export const SCHED_LOG_STEPS = 1 << 22;
/** What the seeded scheduler needs of a configuration (src/sched/control.ts). */
export function schedParams(c: Config, settleTimeoutMs: number): SchedParams {
  if (c.sched === 'off') throw new Error('schedParams: --sched is off');
  return { seed: c.seed, cpus: c.cpus, hinting: c.hinting !== 'off', strategy: c.sched, pctDepth: c.pctDepth, durationMs: c.durationMs, settleTimeoutMs, checkIntervalMs: c.checkIntervalMs, waitTimeoutMs: c.waitTimeoutMs, rerun: rerunCommand(c) };
}

export const layoutParams = (c: Config) => ({ cpus: c.cpus, memoryBytes: c.memoryBytes, queueSize: c.queueSize, ringAlign: c.ringAlign, schedLogSteps: c.sched !== undefined && c.sched !== 'off' ? SCHED_LOG_STEPS : 0, traceEvents: c.traceEvents ?? 0, hintTrack: hintTracks(c) });

/** Free page hint's per-page maps are needed (the hinttrack region): QEMU's migration model or Firecracker's UFFD write tracking. */
export const hintTracks = (c: Config): boolean => c.hinting === 'hint' && (c.hintDevice === 'qemu' || (c.hintUffdWp !== undefined && c.hintUffdWp !== 'off'));

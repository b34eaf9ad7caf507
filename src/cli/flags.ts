// The run flags of `sim` (the command-line contract, docs/DESIGN.md §10):
// their yargs options, and their validation into a Config. Every bad value
// is a UsageError naming the flag and the accepted range (exit 2).

import { randomInt } from 'node:crypto';
import { existsSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import yargs, { type Argv } from 'yargs';
import { type Config, DEFAULT_CONFIG, DEFAULT_TRACE_EVENTS, HINT_DEVICES, HINT_UFFD_WP, HINTING_MODES, RANGES, SCHED_STRATEGIES, THP_MODES, WORKLOADS, autoDurationFlag, choiceFlag, deviceFaultsFlag, durationFlag, hostileFlag, intFlag, powerOfTwoFlag, rerunCommand, sizeFlag } from '../sim/config.js';
import { FAULT_GRAMMAR } from '../virtio/device-faults.js';
import { PAGE_SIZE } from '../shm/layout.js';
import { LOCKSTAT_FORMATS, LOCKSTAT_SORTS, parseLockstatFlags } from './lockstat-report.js';
import { loadReplay } from '../sched/control.js';
import { collectRepeated, injectionHelp, parseInjections } from '../check/inject.js';
import { UsageError } from '../base/errors.js';
import { fmtBytes, fmtDuration, parsePercent } from '../base/units.js';
import { validateConfig } from '../sim/validate.js';
import { DEFAULT_COST_PROFILE, type HostCostProfile, parseCostProfile } from '../mm/host-costs.js';
import { DESC_POLICIES } from '../virtio/ring.js';
import { autoCpuBound } from '../locking/cpu-slots.js';
import { CPU_HOST_SLICE_MS } from '../sim/cpu-host.js';

const r = RANGES;
const d = DEFAULT_CONFIG;

/** Flags of a run, shared by `run` and later commands. Values stay strings; parseRunFlags validates them. */
export const RUN_OPTIONS = {
  cpus: { type: 'string', default: String(d.cpus), describe: `guest vCPU threads (${r.cpus.min}..${r.cpus.max})` },
  workload: { type: 'string', default: d.workload, describe: `workload each CPU runs: ${WORKLOADS.join(', ')}. Orders allocated: page_fault1 and memhog fault order 0 (order 9 with --thp always, falling back to 0); churn random orders 0..10 weighted to small (P(k) = 2^-(k+1)); memfill the largest free blocks (up to order 10); fragment order 0` },
  memory: { type: 'string', default: fmtBytes(d.memoryBytes).replace('iB', ''), describe: `guest memory, K/M/G suffix, multiple of 4K (${fmtBytes(r.memoryBytes.min)}..${fmtBytes(r.memoryBytes.max)})` },
  duration: { type: 'string', default: fmtDuration(d.durationMs), describe: `how long the workload runs, ms/s/m suffix (${fmtDuration(r.durationMs.min)}..24h)` },
  seed: { type: 'string', describe: `master seed (${r.seed.min}..${r.seed.max}); default: random, printed first` },
  hinting: { type: 'string', default: d.hinting, describe: `free page hinting mode: ${HINTING_MODES.join(', ')}` },
  pcp: { type: 'boolean', default: d.pcp, describe: 'per-CPU page lists for orders 0..3 and 9 (THP), refilled and drained in batches under the zone lock, as Linux 6.1 (--no-pcp: every allocation and free takes the zone lock)' },
  'pcp-batch': { type: 'string', default: 'auto', describe: `pcp->batch: pages per refill/drain; auto = the kernel's zone_batchsize() (63 for 1 GiB) (${r.pcpBatch.min}..${r.pcpBatch.max})` },
  'pcp-high': { type: 'string', default: 'auto', describe: `pcp->high: pcp pages that trigger a drain; auto = the kernel's zone_highsize() (low watermark / cpus, at least 4 batches) (> batch, up to ${r.pcpHigh.max})` },
  thp: { type: 'string', default: d.thp, describe: `transparent huge pages for the CPUs' anonymous faults (page_fault1, memhog): ${THP_MODES.join(', ')} (never: an order-0 fault per 4 KiB page; always: an order-9 fault per 2 MiB, falling back to order 0 when no order-9 block is free)` },
  region: { type: 'string', default: 'auto', describe: 'page_fault1: bytes each CPU maps per iteration (K/M/G); auto = 128M, scaled down to 80% of memory / cpus' },
  hog: { type: 'string', default: `${d.hogShare * 100}%`, describe: 'memhog: share of guest memory all CPUs allocate together (1%..95%)' },
  hold: { type: 'string', default: fmtDuration(d.holdMs), describe: 'memhog: how long the memory is held before it is freed (0..1h)' },
  'check-interval': { type: 'string', default: fmtDuration(d.checkIntervalMs), describe: 'structural oracle checks (free lists, conservation) during the run every this long; 0 = only at the end (0..1h)' },
  'wait-timeout': { type: 'string', default: fmtDuration(d.waitTimeoutMs), describe: 'bound on any single wait: longer is a liveness failure (100ms..1h)' },
  spin: { type: 'string', default: String(d.spin), describe: `lock spins before sleeping in Atomics.wait (${r.spin.min}..${r.spin.max})` },
  'queue-size': { type: 'string', default: String(d.queueSize), describe: `virtqueue size, a power of 2 (${r.queueSize.min}..${r.queueSize.max})` },
  'ring-align': { type: 'string', default: String(d.ringAlign), describe: 'used-ring alignment: 4 (virtio 1.x split ring) or 4096 (legacy layout)' },
  poison: { type: 'boolean', default: d.poison, describe: 'page poisoning: freed pages hold --poison-byte, checked when allocated again' },
  'poison-byte': { type: 'string', default: '0x' + d.poisonByte.toString(16), describe: 'poison pattern byte (0..255, decimal or 0x hex); 0 models init_on_free zeroing' },
  'event-idx': { type: 'boolean', default: d.eventIdx, describe: 'offer VIRTIO_RING_F_EVENT_IDX: notification suppression with used_event/avail_event (vring_need_event)' },
  'vq-numbering': { type: 'string', default: d.vqNumbering, describe: 'balloon queue numbering: spec (reporting queue is index 4) or linux (only existing queues numbered, as Linux/QEMU/Firecracker)' },
  'poison-policy': { type: 'string', default: d.poisonPolicy, describe: 'device with PAGE_POISON and poison_val != 0: skip (do not discard, as QEMU) or fill (discard, then write poison_val)' },
  'report-delay': { type: 'string', default: 'auto', describe: `delay from a report request to the pass; auto = the kernel's: PAGE_REPORTING_DELAY (2s) for reporting, HZ/10 (100ms) for aeration v1 (0..1m)` },
  capacity: { type: 'string', default: String(d.capacity), describe: `blocks per report, a power of 2 <= --queue-size (PAGE_REPORTING_CAPACITY; aeration: <= 32) (${r.capacity.min}..${r.capacity.max})` },
  'report-order': { type: 'string', default: String(d.reportOrder), describe: `smallest order reported (pageblock order) (${r.reportOrder.min}..${r.reportOrder.max})` },
  'settle-timeout': { type: 'string', default: 'auto', describe: 'after the workload, how long the reporter may take to return free memory before the reported-accounting check (0..10m); auto = 10s, or for reporting (upstream reports about a sixteenth of each free list per pass, one pass per --report-delay) two delays more than the most passes this guest can need: 1 GiB 20s, 8 GiB 34s at the 2 s delay' },
  discard: { type: 'boolean', default: d.discard, describe: 'reporting/aeration: the device discards reported memory (--no-discard: it validates and acknowledges every report but keeps the memory, as Linux measured with the host madvise disabled)' },
  'page-poison-feature': { type: 'boolean', default: d.pagePoisonFeature, describe: 'the device offers VIRTIO_BALLOON_F_PAGE_POISON (--no-page-poison-feature: it does not)' },
  prefault: { type: 'boolean', default: d.prefault, describe: "write all guest memory at set-up so the simulator process's own first-touch page faults (Linux, not the modelled host) stay out of the measured run" },
  chart: { type: 'boolean', describe: 'print the host RSS vs guest used chart at the end (default: on a TTY with hinting on)' },
  'hint-interval': { type: 'string', default: fmtDuration(d.hintIntervalMs), describe: 'hint: the device starts a hint run (new free_page_hint_cmd_id, config interrupt) at start and then every this long (10ms..1h)' },
  'hint-device': { type: 'string', default: d.hintDevice, describe: `hint: the VMM serving the free_page_vq: ${HINT_DEVICES.join(', ')} (firecracker: discard every hinted range, MADV_DONTNEED; qemu: live migration, a hinted page is cleared from the migration bitmap, STOP at every bitmap sync (--hint-interval), DONE when the migration ends; simplified: the device thread is the migration thread and a round sends what its bitmap still holds at its end)` },
  'hint-action': { type: 'string', hidden: true, describe: 'replaced by --hint-device' },
  'hint-ack-on-stop': { type: 'boolean', default: d.hintAckOnStop, describe: "hint, firecracker: acknowledge_on_stop, DONE as soon as the driver's STOP is seen (--no-hint-ack-on-stop: the host holds the pages until it says stop, --hint-done-after later)" },
  'hint-done-after': { type: 'string', default: fmtDuration(d.hintDoneAfterMs), describe: "hint, firecracker with --no-hint-ack-on-stop: the host writes VIRTIO_BALLOON_CMD_ID_DONE this long after the driver's STOP; the balloon holds its pages until then (0..1h)" },
  'hint-shrink': { type: 'string', default: String(d.hintShrinkBlocks), describe: `hint: max-order blocks the balloon's shrinker frees per call, from reclaim below the low watermark and from a failed allocation (simplified: kswapd's work is done inline by the allocating CPU, no reclaim priorities) (${r.hintShrinkBlocks.min}..${r.hintShrinkBlocks.max})` },
  'hint-uffd-wp': { type: 'string', default: d.hintUffdWp, describe: `hint, firecracker: mitigation (a), userfaultfd write protection: pages written since the run started are not discarded: ${HINT_UFFD_WP.join(', ')} (split: check and discard are separate device steps; serialized: the write fault waits for the device's check+discard; simplified: one fault per block, taken before it is written, handled on the vCPU)` },
  'hint-shrink-acked-only': { type: 'boolean', default: d.hintShrinkAckedOnly, describe: 'hint: mitigation (b), guest side: a block goes on free_page_list only once the device used it, so the shrinker never frees a block in flight (upstream lists it at the kick)' },
  'cpu-slots': { type: 'string', default: 'off', describe: `at most N CPU threads run at once, switched only between ops, never inside a lock hold (a kernel CPU holding a spinlock cannot be preempted; a thread can): off, auto (the host's cores, at most --cpus) or N (1..--cpus). Off (the default), the host schedules the threads freely and, with more CPUs than cores, preempts zone lock holders (lock-holder preemption, as in an overcommitted VM). Simplified: the reporter and the device take no slot` },
  'cpu-threads': { type: 'string', default: 'off', describe: `run the simulated CPUs M:N on N threads, CPU i on thread i mod N, each thread switching between its CPUs between ops (every ${CPU_HOST_SLICE_MS} ms, or when one sleeps), never inside a lock hold: off, auto (the host's cores, at most --cpus) or N (1..--cpus). Like --cpu-slots it keeps a lock holder on its core; a switch here is a function call, not a thread handoff through the host. Simplified: a CPU stays on its thread (no migration); CPU time is per thread; not with --sched or --cpu-slots` },
  sched: { type: 'string', default: d.sched, describe: `seeded scheduler: ${SCHED_STRATEGIES.join(', ')} (random/pct: one role runs at a time, the seed picks who runs at every sync point; logical time)` },
  'pct-depth': { type: 'string', default: String(d.pctDepth), describe: `--sched pct: bug depth d, d-1 priority change points (${r.pctDepth.min}..${r.pctDepth.max})` },
  replay: { type: 'string', describe: 'replay a schedule: a file or a bsched1.… string from a failing --sched run (same configuration); exit 3 if the run diverges from it' },
  'schedule-out': { type: 'string', describe: 'where a failing --sched run writes its schedule file (default: sim-schedule-<seed>.json in the current directory)' },
  inject: { type: 'string', describe: `switch one protection off (repeatable): ${injectionHelp()}` },
  json: { type: 'boolean', default: false, describe: 'print exactly one JSON object on stdout (human text goes to stderr)' },
  lockstat: { type: 'boolean', default: false, describe: 'lock statistics (lock_stat): table at the end, `locks` in --json' },
  'lockstat-sort': { type: 'string', describe: `lockstat order: ${LOCKSTAT_SORTS.join(', ')} (default: wait-total; proc: contentions, as the kernel); implies --lockstat` },
  'lockstat-format': { type: 'string', describe: `lockstat output: ${LOCKSTAT_FORMATS.join(', ')} (proc = the /proc/lock_stat text; default table); implies --lockstat` },
  html: { type: 'string', describe: 'write a self-contained HTML report to FILE (charts and the end tables; every script inlined, opens offline)' },
  'cost-profile': { type: 'string', default: 'default', describe: "host costs: a profile FILE from `sim calibrate --out FILE`, default (the shipped profile; its provenance is printed) or none (no fixed cost: a refault only zero-fills). A fault is a VM exit + the host's page fault on the faulting CPU's thread; a discard is one madvise on the device's; each discard that unmapped memory is a TLB-flush interrupt on every CPU (paid at its next allocation); each kick and interrupt a VM exit (the interrupt on the reporter it wakes). docs/DESIGN.md §16" },
  warm: { type: 'boolean', default: false, describe: 'start as a guest that has run a while: every page was touched once, so the host backs all guest memory (host RSS starts at the guest size) and hinting off takes no host fault (implies --prefault); sim compare and the benchmarks measure this steady state' },
  'host-thp': { type: 'boolean', default: false, describe: 'the host backs guest memory with transparent huge pages: a fault where the whole 2 MiB is unbacked maps (and zeroes) 2 MiB at once, at the profile\'s 2 MiB fault cost' },
  'device-faults': { type: 'string', describe: `seeded device faults, ${FAULT_GRAMMAR} (reporting, aeration, naive; reset: reporting, aeration). report-error: the queue refuses a report (virtqueue_add_inbuf fails); ack-delay: the used element comes late; irq-spurious: an interrupt with nothing used; reset: freeze/restore between passes; irq-lost: no interrupt (Linux hangs: the run fails by design)` },
  hostile: { type: 'string', describe: 'a hostile guest: probability per report (0..1 or %) that the driver first publishes a burst of malformed chains of every bad kind and random descriptor tables; the hostile-guest oracle checks the device counted each and touched nothing it was not validly named (reporting, aeration, naive)' },
  'desc-policy': { type: 'string', default: d.descPolicy, describe: `the driver's descriptor allocation: ${DESC_POLICIES.join(', ')} (lifo: Linux's free_head, a used chain goes back to the head, so with one chain in flight every chain starts at descriptor 0; fifo: a simulator option, a used chain goes to the tail, so consecutive chains start at different descriptors and a stale ring entry differs from a fresh one)` },
  'report-inflight': { type: 'string', default: String(d.reportInflight), describe: `reporting, aeration: split each report into up to N chains, published one by one and all in flight before the driver waits (${r.reportInflight.min}..${r.reportInflight.max}; 1 = upstream: page_reporting sends one batch as one chain and waits for it). N > 1 is a simulator extension to stress the ring's publish order, not upstream behaviour` },
} as const;

/** Flags of `sim run` only: the event trace of one run. */
export const TRACE_OPTIONS = {
  trace: { type: 'string', describe: 'write a Chrome trace-event JSON of the run to FILE (open in ui.perfetto.dev or chrome://tracing): one track per role, lock holds and waits, reports, device chains, hint runs, --sched switches, memory counters' },
  'trace-events': { type: 'string', describe: `--trace: events each thread keeps in its ring, oldest overwritten first (${r.traceEvents.min}..${r.traceEvents.max}; default ${DEFAULT_TRACE_EVENTS}, 48 bytes each)` },
  'trace-when': { type: 'string', describe: '--trace: always (default) or failure: write the trace only if the run fails (exit 1 or 3)' },
} as const;

export const TRACE_WHEN = ['always', 'failure'] as const;

/** An output file flag: a non-empty path whose directory exists (checked before the run, not after it). */
export function outputFileFlag(flag: string, raw: unknown): string {
  const s = typeof raw === 'string' ? raw : '';
  if (s.trim() === '') throw new UsageError(`--${flag}: needs a file path`);
  const dir = path.dirname(path.resolve(s));
  if (!existsSync(dir) || !statSync(dir).isDirectory()) throw new UsageError(`--${flag}: directory '${path.dirname(s)}' does not exist`);
  if (existsSync(s) && statSync(s).isDirectory()) throw new UsageError(`--${flag}: '${s}' is a directory; accepted: a file path`);
  return s;
}

/** --trace, --trace-events, --trace-when: the ring size (0: off) and when to write. */
export function parseTraceFlags(a: RawFlags): { traceEvents: number; file: string | null; when: (typeof TRACE_WHEN)[number] } {
  if (a.trace === undefined) {
    for (const f of ['trace-events', 'trace-when']) if (a[f] !== undefined) throw new UsageError(`--${f}: needs --trace FILE`);
    return { traceEvents: 0, file: null, when: 'always' };
  }
  return {
    traceEvents: intFlag('trace-events', a['trace-events'] ?? DEFAULT_TRACE_EVENTS, r.traceEvents),
    file: outputFileFlag('trace', a.trace),
    when: choiceFlag('trace-when', a['trace-when'] ?? 'always', TRACE_WHEN),
  };
}

export type RawFlags = Record<string, unknown>;

/** Validate every run flag; throws UsageError naming the flag and its range. */
export function parseRunFlags(a: RawFlags): Config {
  const memoryBytes = sizeFlag('memory', a.memory, r.memoryBytes, PAGE_SIZE);
  const cpus = intFlag('cpus', a.cpus, r.cpus);
  let regionBytes = 0;
  if (a.region !== undefined && a.region !== 'auto') regionBytes = sizeFlag('region', a.region, { min: PAGE_SIZE, max: memoryBytes }, PAGE_SIZE);
  const hog = parsePercent(String(a.hog));
  if (hog === null || hog < 0.01 || hog > 0.95) throw new UsageError(`--hog: '${a.hog}' is not accepted; accepted: a percentage from 1% to 95%`);
  const ringAlign = Number(a['ring-align']);
  if (String(a['ring-align']) !== '4' && String(a['ring-align']) !== '4096') throw new UsageError(`--ring-align: '${a['ring-align']}' is not accepted; accepted: 4 or 4096`);
  const seed = a.seed === undefined ? randomInt(0, 2 ** 32) : intFlag('seed', a.seed, r.seed);
  const cfg = validateConfig({
    cpus,
    workload: choiceFlag('workload', a.workload, WORKLOADS),
    memoryBytes,
    durationMs: durationFlag('duration', a.duration, r.durationMs),
    seed,
    hinting: choiceFlag('hinting', a.hinting, HINTING_MODES),
    pcp: Boolean(a.pcp),
    pcpBatch: a['pcp-batch'] === undefined || a['pcp-batch'] === 'auto' ? 0 : intFlag('pcp-batch', a['pcp-batch'], r.pcpBatch),
    pcpHigh: a['pcp-high'] === undefined || a['pcp-high'] === 'auto' ? 0 : intFlag('pcp-high', a['pcp-high'], r.pcpHigh),
    thp: choiceFlag('thp', a.thp ?? d.thp, THP_MODES),
    regionBytes,
    hogShare: hog,
    holdMs: durationFlag('hold', a.hold, r.holdMs),
    checkIntervalMs: durationFlag('check-interval', a['check-interval'], r.checkIntervalMs),
    waitTimeoutMs: durationFlag('wait-timeout', a['wait-timeout'], r.waitTimeoutMs),
    spin: intFlag('spin', a.spin, r.spin),
    queueSize: powerOfTwoFlag('queue-size', a['queue-size'], r.queueSize),
    ringAlign,
    reportDelayMs: autoDurationFlag('report-delay', a['report-delay'], r.reportDelayMs),
    capacity: powerOfTwoFlag('capacity', a.capacity, r.capacity),
    reportOrder: intFlag('report-order', a['report-order'], r.reportOrder),
    settleTimeoutMs: autoDurationFlag('settle-timeout', a['settle-timeout'], r.settleTimeoutMs),
    pagePoisonFeature: a['page-poison-feature'] !== false,
    prefault: Boolean(a.prefault),
    poison: Boolean(a.poison),
    poisonByte: byteFlag('poison-byte', a['poison-byte']),
    lockstat: parseLockstatFlags(a).enabled,
    eventIdx: Boolean(a['event-idx']),
    vqNumbering: choiceFlag('vq-numbering', a['vq-numbering'], ['spec', 'linux'] as const),
    poisonPolicy: choiceFlag('poison-policy', a['poison-policy'], ['skip', 'fill'] as const),
    discard: a.discard !== false,
    hintIntervalMs: durationFlag('hint-interval', a['hint-interval'], r.hintIntervalMs),
    hintDevice: hintDeviceFlag(a),
    hintAckOnStop: a['hint-ack-on-stop'] !== false,
    hintDoneAfterMs: durationFlag('hint-done-after', a['hint-done-after'], r.hintDoneAfterMs),
    hintShrinkBlocks: intFlag('hint-shrink', a['hint-shrink'], r.hintShrinkBlocks),
    hintUffdWp: choiceFlag('hint-uffd-wp', a['hint-uffd-wp'] ?? d.hintUffdWp, HINT_UFFD_WP),
    hintShrinkAckedOnly: Boolean(a['hint-shrink-acked-only']),
    cpuSlots: cpuCountFlag('cpu-slots', a['cpu-slots'], cpus),
    cpuThreads: cpuCountFlag('cpu-threads', a['cpu-threads'], cpus),
    sched: choiceFlag('sched', a.sched ?? d.sched, SCHED_STRATEGIES),
    pctDepth: intFlag('pct-depth', a['pct-depth'] ?? d.pctDepth, r.pctDepth),
    replay: a.replay === undefined ? '' : String(a.replay),
    inject: parseInjections(a.inject),
    traceEvents: parseTraceFlags(a).traceEvents,
    ...costProfileFlag(a['cost-profile']),
    hostThp: Boolean(a['host-thp']),
    warm: Boolean(a.warm),
    deviceFaults: deviceFaultsFlag(a['device-faults']),
    hostile: hostileFlag(a.hostile),
    descPolicy: choiceFlag('desc-policy', a['desc-policy'] ?? d.descPolicy, DESC_POLICIES),
    reportInflight: intFlag('report-inflight', a['report-inflight'] ?? d.reportInflight, r.reportInflight),
  });
  if (a.html !== undefined) outputFileFlag('html', a.html);
  // A schedule to replay must parse and belong to this configuration (exit 2 otherwise).
  if (cfg.replay) loadReplay(cfg.replay, { rerun: rerunCommand(cfg), strategy: cfg.sched }, (p) => readFileSync(p, 'utf8'));
  return cfg;
}

/** --cost-profile FILE|default|none: the profile, read and validated (a bad file: one line naming the field, exit 2). */
export function costProfileFlag(raw: unknown): { costProfile: string; hostCosts: HostCostProfile | null } {
  const s = raw === undefined ? 'default' : String(raw);
  if (s === 'default') return { costProfile: 'default', hostCosts: DEFAULT_COST_PROFILE };
  if (s === 'none') return { costProfile: 'none', hostCosts: null };
  if (s.trim() === '' || !existsSync(s) || statSync(s).isDirectory()) throw new UsageError(`--cost-profile: '${s}' is not a file; accepted: a profile file (sim calibrate --out FILE), default or none`);
  return { costProfile: s, hostCosts: parseCostProfile(readFileSync(s, 'utf8'), `--cost-profile ${s}`) };
}

/** --cpu-slots / --cpu-threads off | auto | N (auto: the host's cores, at most --cpus; the rerun command names the number). */
function cpuCountFlag(name: 'cpu-slots' | 'cpu-threads', raw: unknown, cpus: number): number {
  if (raw === undefined || raw === 'off') return 0;
  if (raw === 'auto') return autoCpuBound(cpus);
  // A whole number here; checkConfig holds it to --cpus with the other cross-flag rules.
  const s = String(raw).trim();
  const n = Number(s);
  if (!/^\d+$/.test(s) || n > r[name === 'cpu-slots' ? 'cpuSlots' : 'cpuThreads'].max) throw new UsageError(`--${name}: '${raw}' is not accepted; accepted: off, auto or a whole number from 0 (off) to --cpus (${cpus})`);
  return n;
}

/** --hint-device; the old --hint-action is refused with what replaced it. */
function hintDeviceFlag(a: RawFlags): Config['hintDevice'] {
  if (a['hint-action'] !== undefined) throw new UsageError(`--hint-action: replaced by --hint-device; accepted: --hint-device ${HINT_DEVICES.join(' or ')} (discard = firecracker, migrate = qemu)`);
  return choiceFlag('hint-device', a['hint-device'] ?? d.hintDevice, HINT_DEVICES);
}

function byteFlag(flag: string, raw: unknown): number {
  const s = String(raw).trim();
  const v = /^0x[0-9a-f]+$/i.test(s) ? parseInt(s, 16) : /^\d+$/.test(s) ? Number(s) : NaN;
  if (!(v >= 0 && v <= 255)) throw new UsageError(`--${flag}: '${raw}' is not accepted; accepted: a byte, 0..255 or 0x00..0xff`);
  return v;
}

/** A run configuration from `sim` arguments (tests and tools): throws UsageError like the CLI would report. */
export function configFromArgs(argv: string[]): Config {
  const raw = yargs(argv).options(RUN_OPTIONS).parserConfiguration({ 'duplicate-arguments-array': false }).strict().fail((msg, err) => {
    throw err ?? new UsageError(msg);
  }).parseSync() as RawFlags;
  const injects = collectRepeated(argv, 'inject');
  return parseRunFlags(injects === undefined ? raw : { ...raw, inject: injects });
}


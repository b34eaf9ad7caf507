// Fault injection (docs/DESIGN.md §6): `--inject NAME` switches exactly one
// protection of free page hinting off, so the simulator can show that a named
// oracle finds the bug the protection prevents. Each entry says what it
// models (the kernel or device code it removes), which oracle(s) must catch it,
// and a configuration that really exercises the race on a small guest.
//
// Small guests need a smaller batch or report order: a reporting pass only
// runs while zone free pages >= low watermark + (capacity << report order),
// i.e. > 64 MiB with the defaults (32 << 9 pages). The configurations below use
// 64 MiB with --capacity 4 --report-order 7 (2 MiB per full batch) instead.

import { type OracleName, UsageError } from '../base/errors.js';
import { type ReporterInjections } from '../mm/reporter-common.js';
import {
  INJECTED_DEVICE_DOUBLE_USED,
  INJECTED_EARLY_PUTBACK,
  INJECTED_KEEP_REPORTED_ON_MERGE,
  INJECTED_LOST_WAKEUP,
  INJECTED_NO_ACK_WAIT,
  INJECTED_NO_ISOLATE,
  INJECTED_NO_REPORTED_SKIP,
  INJECTED_NO_ZONE_LOCK,
  INJECTED_POISON_UNAWARE,
} from '../shm/layout.js';

export interface InjectionInfo {
  /** What protection is removed, in kernel / device terms. */
  models: string;
  /** Oracles that may report it (the first is the usual one). */
  oracles: OracleName[];
  /** Extra `sim` flags of a configuration that exercises the race (on top of RACE_BASE_ARGS). */
  args: string[];
  /**
   * Extra flags (on top of RACE_BASE_ARGS + args) of the configuration the
   * seeded scheduler searches with `--sched pct`: fewer CPUs (fewer threads
   * to order), a shorter logical run (fewer steps for the change points to
   * spread over) and a deeper PCT (more change points). `schedSeeds` is the
   * bound the tests hold it to: found within seeds 1..schedSeeds; 0 means
   * PCT is not known to find it (see docs/TESTING.md, "Injections under --sched pct").
   */
  schedArgs: string[];
  schedSeeds: number;
  /**
   * The counter its injected code path bumps each time it runs
   * (METRIC_INJECTED + counter in every thread's metric slot, src/shm/layout.ts).
   * A run in which it stayed 0 tested nothing: exit 1 (injectionOutcomes).
   */
  counter: number;
  /** What the counter counts, plural ("blocks reported without isolation"). */
  counts: string;
  /** What to change so the injected path runs: printed when it never did. */
  ifNeverActed: string;
}

/** The advice shared by every injection that acts only once the reporter really reports. */
const NEEDS_REPORTS = 'a pass runs only while zone free >= low watermark + (capacity << report order): lower --capacity or --report-order, or raise --memory; give the reporter time with a shorter --report-delay or a longer --duration';

const SCHED_SHORT = ['--cpus', '2', '--pct-depth', '16', '--duration', '200ms'];

/**
 * The small-guest base configuration every injection test and the races
 * benchmark use. No host cost profile: races need the CPUs to churn through
 * blocks, and a modelled host fault is tens of microseconds on the machine
 * the default profile comes from (docs/TESTING.md).
 */
export const RACE_BASE_ARGS = ['--memory', '64M', '--capacity', '4', '--report-order', '7', '--report-delay', '10ms', '--settle-timeout', '1s', '--duration', '1s', '--check-interval', '100ms', '--cost-profile', 'none'];

export const INJECTIONS = {
  'no-isolate': {
    models: 'page_reporting_cycle() hands blocks to the device without __isolate_free_page(): they stay on the free list, so a CPU can allocate a block the host is discarding',
    oracles: ['device-allocated-range', 'stamp'],
    // memfill: whole blocks straight off the free lists, the shape that meets a block in flight soonest.
    args: ['--cpus', '8', '--workload', 'memfill', '--hinting', 'reporting', '--report-delay', '0ms'],
    schedArgs: SCHED_SHORT,
    schedSeeds: 3,
    counter: INJECTED_NO_ISOLATE,
    counts: 'blocks the device acknowledged while they stayed on the free list',
    ifNeverActed: NEEDS_REPORTS,
  },
  'early-putback': {
    models: 'page_reporting_drain() runs before the device acknowledges: blocks are back on the free list (allocatable) while the host still discards them',
    oracles: ['device-allocated-range', 'stamp'],
    args: ['--cpus', '8', '--workload', 'memfill', '--hinting', 'reporting', '--report-delay', '0ms'],
    schedArgs: SCHED_SHORT,
    schedSeeds: 3,
    counter: INJECTED_EARLY_PUTBACK,
    counts: 'blocks put back on the free list before the device acknowledged',
    ifNeverActed: NEEDS_REPORTS,
  },
  'no-reported-skip': {
    models: 'page_reporting_cycle() does not skip PageReported blocks: memory already returned to the host is isolated and sent again, pass after pass, and the reporter never goes idle',
    oracles: ['reported-accounting'],
    args: ['--cpus', '4', '--workload', 'memhog', '--hinting', 'reporting', '--hold', '200ms'],
    schedArgs: SCHED_SHORT,
    schedSeeds: 4,
    counter: INJECTED_NO_REPORTED_SKIP,
    counts: 'Reported blocks the walk did not skip',
    ifNeverActed: `it needs a pass that meets blocks already Reported, so reports first (${NEEDS_REPORTS}), then a later pass while they are still free (memhog with a --hold, or a longer --duration)`,
  },
  'keep-reported-on-merge': {
    models: '__free_one_page() keeps PageReported on a merged block: the buddy\'s host-resident pages are inside a block marked Reported and are never reported',
    oracles: ['reported-accounting'],
    args: ['--cpus', '4', '--workload', 'churn', '--hinting', 'reporting'],
    schedArgs: SCHED_SHORT,
    schedSeeds: 3,
    counter: INJECTED_KEEP_REPORTED_ON_MERGE,
    counts: 'merges that kept PageReported from a Reported buddy',
    ifNeverActed: `it needs a free that merges with a Reported buddy, so reports first (${NEEDS_REPORTS}), then frees next to them (--workload churn or memhog)`,
  },
  'no-zone-lock': {
    models: 'page_reporting_cycle() walks free_area[] and isolates without spin_lock_irq(&zone->lock): list updates race with CPUs allocating and freeing',
    oracles: ['free-list', 'conservation', 'ownership', 'device-allocated-range', 'stamp'],
    // Order 0 and full batches: every free list is walked unlocked, all the time.
    args: ['--cpus', '8', '--workload', 'churn', '--hinting', 'reporting', '--report-delay', '0ms', '--report-order', '0', '--capacity', '32', '--duration', '2s'],
    schedArgs: ['--cpus', '2', '--pct-depth', '16'],
    schedSeeds: 4,
    counter: INJECTED_NO_ZONE_LOCK,
    counts: 'blocks isolated without the zone lock',
    ifNeverActed: NEEDS_REPORTS,
  },
  'poison-unaware': {
    models: 'virtballoon_validate() drops VIRTIO_BALLOON_F_PAGE_POISON yet reporting is enabled while the guest poisons freed pages: the host hands back zero pages where the guest expects its poison',
    oracles: ['poison'],
    args: ['--cpus', '4', '--workload', 'page_fault1', '--hinting', 'reporting', '--poison'],
    schedArgs: SCHED_SHORT,
    schedSeeds: 3,
    counter: INJECTED_POISON_UNAWARE,
    counts: 'blocks of a poisoning guest the device acknowledged without PAGE_POISON',
    ifNeverActed: NEEDS_REPORTS,
  },
  'lost-wakeup': {
    models: 'the page_reporting state machine uses plain loads and stores instead of atomic_xchg/atomic_cmpxchg: a free path that read ACTIVE stores REQUESTED after the worker went IDLE, so nobody schedules the work again',
    oracles: ['liveness', 'reported-accounting'],
    args: ['--cpus', '8', '--workload', 'memfill', '--hinting', 'reporting', '--report-delay', '0ms', '--wait-timeout', '2s'],
    schedArgs: ['--cpus', '2', '--pct-depth', '16', '--duration', '500ms'],
    schedSeeds: 8,
    counter: INJECTED_LOST_WAKEUP,
    counts: 'split loads and stores of the reporting state (free path or end of a pass)',
    ifNeverActed: `it needs frees of blocks of order >= --report-order that raise reporting requests and passes that end: lower --report-order; ${NEEDS_REPORTS}`,
  },
  'no-ack-wait': {
    models: 'aeration v1 (virtballoon_aerator_react, Duyck 2019) unlocks balloon_lock and returns before wait_event(vb->acked): the hint buffer is rewritten and the blocks go back to the free list while the device still reads them',
    // reported-accounting too: the driver rewrites the hint buffer before
    // the device has read it, so the device discards the new ranges and the
    // earlier blocks go back flagged Aerated but host-resident (seen first
    // with --cpu-threads 2, seeds 1 and 2 of this configuration).
    oracles: ['device-allocated-range', 'stamp', 'reported-accounting'],
    // Aeration only triggers on 32 unhinted blocks of one order: small orders, churn.
    args: ['--cpus', '8', '--workload', 'churn', '--hinting', 'aeration', '--report-order', '5', '--report-delay', '0ms'],
    schedArgs: SCHED_SHORT,
    schedSeeds: 3,
    counter: INJECTED_NO_ACK_WAIT,
    counts: 'batches sent without waiting for the acknowledgement',
    ifNeverActed: `aeration sends a batch only when a free area holds 32 unhinted blocks of one order >= --report-order: lower --report-order (e.g. 5) with --workload churn; ${NEEDS_REPORTS}`,
  },
  'device-double-used': {
    models: 'the device pushes the same used element (descriptor id) twice: virtqueue_get_buf() must reject a used id that is not in flight',
    oracles: ['ring'],
    args: ['--cpus', '4', '--workload', 'page_fault1', '--hinting', 'reporting'],
    schedArgs: SCHED_SHORT,
    schedSeeds: 3,
    counter: INJECTED_DEVICE_DOUBLE_USED,
    counts: 'used elements the device pushed twice',
    ifNeverActed: `the device must complete a request first (reporting, aeration: ${NEEDS_REPORTS}; hint: a shorter --hint-interval)`,
  },
} as const satisfies Record<string, InjectionInfo>;

export type InjectionName = keyof typeof INJECTIONS;
export const INJECTION_NAMES = Object.keys(INJECTIONS) as InjectionName[];

/** The run settings the injection rules read (a subset of the simulation's Config). */
export interface InjectionSettings {
  inject: readonly InjectionName[];
  hinting: string;
  poison: boolean;
  discard: boolean;
}

export const injected = (cfg: Pick<InjectionSettings, 'inject'>, name: InjectionName): boolean => cfg.inject.includes(name);

/** Validate --inject values (repeatable, or comma separated). */
export function parseInjections(raw: unknown): InjectionName[] {
  const vals = raw === undefined ? [] : (Array.isArray(raw) ? raw : [raw]).flatMap((v) => String(v).split(',')).map((s) => s.trim()).filter((s) => s !== '');
  const out: InjectionName[] = [];
  for (const v of vals) {
    if (!(INJECTION_NAMES as string[]).includes(v)) throw new UsageError(`--inject: '${v}' is not accepted; accepted: ${INJECTION_NAMES.join(', ')}`);
    if (!out.includes(v as InjectionName)) out.push(v as InjectionName);
  }
  return out;
}

/**
 * Every value of a repeatable flag in argv order (`--inject a --inject=b`).
 * yargs is configured with duplicate-arguments-array off (the last value of a
 * repeated scalar flag wins), so repeatable flags are collected here.
 */
export function collectRepeated(argv: readonly string[], flag: string): string[] | undefined {
  const out: string[] = [];
  let seen = false;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--') break;
    if (a === `--${flag}`) {
      seen = true;
      if (i + 1 < argv.length) out.push(argv[++i]);
    } else if (a.startsWith(`--${flag}=`)) {
      seen = true;
      out.push(a.slice(flag.length + 3));
    }
  }
  return seen ? out : undefined;
}

/** The driver poisons freed pages and honours PAGE_POISON (false under poison-unaware: it pretends not to poison). */
export const driverDeclaresPoison = (cfg: Pick<InjectionSettings, 'poison' | 'inject'>): boolean => cfg.poison && !injected(cfg, 'poison-unaware');

const REPORTER_MODES = ['reporting', 'aeration'];

/**
 * Why an injection cannot take effect in this configuration (then it would
 * silently test nothing), or null. Checked when the flags are parsed.
 */
export function injectionConflict(cfg: InjectionSettings): string | null {
  for (const n of cfg.inject) {
    // These two do their harm only through memory the host discarded
    // (stranded RSS, zeros handed back): with --no-discard they cannot show,
    // and a clean run would claim a protection that was never tested.
    if (!cfg.discard && (n === 'keep-reported-on-merge' || n === 'poison-unaware')) return `--inject: ${n} does its harm through memory the host discards; it cannot show with --no-discard`;
    if (n === 'no-ack-wait') {
      if (cfg.hinting !== 'aeration') return `--inject: ${n} models the aeration driver; it needs --hinting aeration`;
    } else if (n === 'device-double-used') {
      if (cfg.hinting === 'off') return `--inject: ${n} needs the device: --hinting ${REPORTER_MODES.join(' or ')}`;
    } else if (!REPORTER_MODES.includes(cfg.hinting)) return `--inject: ${n} models the page reporting worker; it needs --hinting ${REPORTER_MODES.join(' or ')}`;
    if (n === 'poison-unaware' && !cfg.poison) return `--inject: ${n} needs --poison (the driver must be poisoning freed pages)`;
  }
  return null;
}

/** --help text: one line per injection. */
export function injectionHelp(): string {
  return INJECTION_NAMES.map((n) => `${n}: ${INJECTIONS[n].models} [caught by: ${INJECTIONS[n].oracles.join(' / ')}]`).join('; ');
}

export function reporterInjections(cfg: Pick<InjectionSettings, 'inject'>): ReporterInjections {
  return {
    noIsolate: injected(cfg, 'no-isolate'),
    earlyPutback: injected(cfg, 'early-putback'),
    noReportedSkip: injected(cfg, 'no-reported-skip'),
    noZoneLock: injected(cfg, 'no-zone-lock'),
    lostWakeup: injected(cfg, 'lost-wakeup'),
    poisonUnaware: injected(cfg, 'poison-unaware'),
  };
}

/** Whether one injection of a run acted (JSON `injections[]`). */
export interface InjectionOutcome {
  name: InjectionName;
  /** Its injected code path ran at least once. */
  acted: boolean;
  /** How many times: `count` of what `counts` names. */
  count: number;
  counts: string;
  /** When it never acted: one line naming what did not happen and what to change. */
  reason?: string;
}

/**
 * Per injection of the run, whether its injected path ran. `count(counter)`
 * is the counter summed over every thread; `facts` says what the run did
 * instead (the reporter's passes and reports, the device's chains) for the
 * reason line. A run whose injection never acted tested nothing: the caller
 * ends it with exit 1 rather than report a pass.
 */
export function injectionOutcomes(inject: readonly InjectionName[], count: (counter: number) => number, facts: string): InjectionOutcome[] {
  return inject.map((name) => {
    const info: InjectionInfo = INJECTIONS[name];
    const n = count(info.counter);
    const base = { name, acted: n > 0, count: n, counts: info.counts };
    return n > 0 ? base : { ...base, reason: `${name} never acted: 0 ${info.counts}${facts ? ` (${facts})` : ''}; ${info.ifNeverActed}` };
  });
}

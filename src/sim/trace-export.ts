// The run's trace rings (src/locking/trace.ts) as a Chrome trace-event JSON
// object ("JSON Object Format" of the Trace Event Format document; read by
// ui.perfetto.dev and chrome://tracing): one process, one thread track per
// role (cpu0.., reporter, device, main), every slice a complete event (ph
// 'X': timestamp and duration, so no begin/end pairs to balance), instants
// (ph 'i'), counters (ph 'C') and the thread names as metadata (ph 'M').
// Timestamps are microseconds since the run's set-up began on the common
// clock described in src/locking/trace.ts; each thread's events are sorted
// by timestamp (a hold is recorded when it ends, after what it contains).

import { DEVICE_FAULT_KINDS } from '../virtio/device-faults.js';
import { ORACLES, type Violation } from '../base/errors.js';
import { BAD_KINDS } from '../host/balloon-device.js';
import { siteName } from '../locking/sites.js';
import { SP_NAMES } from '../locking/sync.js';
import {
  HINT_END_NAMES,
  type RawTrace,
  type RawTraceEvent,
  TK_ALLOC,
  TK_BAD_INPUT,
  TK_FAULT,
  TK_HOSTILE,
  TK_CHAIN,
  TK_CHECK,
  TK_COUNTER_MEM,
  TK_COUNTER_NR_FREE,
  TK_DISCARD,
  TK_FREE,
  TK_HINT_BLOCK,
  TK_HINT_CMD,
  TK_HINT_DONE,
  TK_HINT_RUN,
  TK_ISOLATE,
  TK_LOCK_HOLD,
  TK_LOCK_WAIT,
  TK_PASS,
  TK_PHASE,
  TK_PUSH,
  TK_PUTBACK,
  TK_RANGE,
  TK_REPORT,
  TK_SCHED,
  TK_SHRINK,
  TK_WP_FAULT,
  TK_WP_CHECK,
  TK_MIG_SYNC,
  TK_VIOLATION,
} from '../locking/trace.js';
import { MAX_ORDER, lockName, threadIds } from '../shm/layout.js';

export interface ChromeTraceEvent {
  name: string;
  ph: 'X' | 'i' | 'C' | 'M';
  ts: number;
  dur?: number;
  pid: number;
  tid: number;
  cat?: string;
  /** Instants: 't' this thread's track, 'g' the whole trace (a line across every track). */
  s?: 't' | 'g';
  args?: Record<string, number | string | boolean>;
}

export interface ChromeTrace {
  traceEvents: ChromeTraceEvent[];
  displayTimeUnit: 'ms';
  otherData: Record<string, unknown>;
}

export interface TraceMeta {
  cpus: number;
  seed: number;
  rerun: string;
  hinting: string;
  violations: Violation[];
  errors: string[];
  /** Thread ids of the roles that ran (main is always there). */
  roles: number[];
}

export const TRACE_PID = 1;
const RUN_STATES = ['INIT', 'RUNNING', 'SETTLING', 'STOPPING', 'ABORT'];
/** What the timestamps are: written into the trace beside them. */
export const TRACE_CLOCK = 'microseconds since the run set-up began; each thread reads performance.timeOrigin + performance.now() (the process-wide wall clock), so tracks are comparable';

/** The track of a thread id: cpuN, reporter, device, main. */
export function threadName(thread: number, cpus: number): string {
  const ids = threadIds(cpus);
  if (thread < cpus) return `cpu${thread}`;
  return thread === ids.reporter ? 'reporter' : thread === ids.device ? 'device' : thread === ids.main ? 'main' : `thread${thread}`;
}

/** tid of a thread id in the trace (tid 0 is avoided: some viewers treat it as the process). */
export const traceTid = (thread: number) => thread + 1;

/** Microseconds with nanosecond resolution. */
const us = (x: number) => Math.round(x * 1000) / 1000;
const mib = (bytes: number) => Math.round((bytes / 2 ** 20) * 1000) / 1000;

function convert(e: RawTraceEvent, tid: number, cpus: number, meta: TraceMeta, out: ChromeTraceEvent[]): void {
  const ts = us(e.tsUs);
  // A slice's end is rounded the same way as its start, so nested slices stay nested after rounding.
  const dur = e.durUs >= 0 ? us(us(e.tsUs + e.durUs) - ts) : 0;
  // Objects built whole (no spreads): a trace holds hundreds of thousands of them.
  const slice = (name: string, cat: string, args?: ChromeTraceEvent['args']) => void out.push(args ? { name, cat, ph: 'X', ts, dur, pid: TRACE_PID, tid, args } : { name, cat, ph: 'X', ts, dur, pid: TRACE_PID, tid });
  const instant = (name: string, cat: string, args: ChromeTraceEvent['args'], s: 't' | 'g' = 't') => void out.push({ name, cat, ph: 'i', s, ts, pid: TRACE_PID, tid, args });
  const counter = (name: string, value: number) => void out.push({ name, ph: 'C', ts, pid: TRACE_PID, tid, args: { value } });
  switch (e.kind) {
    case TK_LOCK_HOLD:
      return slice(lockName(e.a), 'lock', { site: siteName(e.b) });
    case TK_LOCK_WAIT:
      return slice(`wait ${lockName(e.a)}`, 'lock', { site: siteName(e.b), holder: e.c >= 0 ? threadName(e.c, cpus) : '?' });
    case TK_ALLOC:
      return instant('alloc', 'mm', { pfn: e.a, order: e.b, lastPfn: e.a + (1 << e.b) - 1 });
    case TK_FREE:
      return instant('free', 'mm', { pfn: e.a, order: e.b, lastPfn: e.a + (1 << e.b) - 1 });
    case TK_ISOLATE:
      return instant('isolate', 'reporting', { pfn: e.a, order: e.b });
    case TK_PUTBACK:
      return instant('putback', 'reporting', { pfn: e.a, order: e.b, reported: e.c === 1 });
    case TK_REPORT:
      return slice('report', 'reporting', { blocks: e.a, pages: e.b, ok: e.c === 1 });
    case TK_PASS:
      return slice('reporting pass', 'reporting');
    case TK_CHAIN:
      return slice('chain', 'device', { head: e.a, descriptors: e.b });
    case TK_RANGE:
      return instant('range', 'device', { pfn: e.a, pages: e.b, lastPfn: e.a + e.b - 1 });
    case TK_DISCARD:
      return slice('discard', 'device', { pfn: e.a, pages: e.b, lastPfn: e.a + e.b - 1, rssDropped: e.c });
    case TK_PUSH:
      return instant('push used', 'device', { head: e.a, interrupt: e.b === 1 });
    case TK_BAD_INPUT:
      return instant('bad input', 'device', { kind: BAD_KINDS[e.a] ?? String(e.a) });
    case TK_FAULT:
      return instant(`fault ${DEVICE_FAULT_KINDS[e.a] ?? String(e.a)}`, 'fault', { kind: DEVICE_FAULT_KINDS[e.a] ?? String(e.a) });
    case TK_HOSTILE:
      return slice('hostile burst', 'hostile', { entries: e.a });
    case TK_HINT_RUN:
      return slice('hint run', 'hint', { cmdId: e.a, blocks: e.b, ended: HINT_END_NAMES[e.c] ?? String(e.c) });
    case TK_HINT_BLOCK:
      return instant('hint block', 'hint', { pfn: e.a, order: e.b });
    case TK_HINT_DONE:
      return instant('DONE handled', 'hint', { blocksFreed: e.a });
    case TK_HINT_CMD:
      return instant(e.a === 1 ? 'start hint run' : e.a === 2 ? 'STOP received' : 'DONE written', 'hint', { cmdId: e.b });
    case TK_SHRINK:
      return instant('shrinker', 'hint', { blocksFreed: e.a, from: e.b === 1 ? 'reclaim below low watermark' : 'failed allocation' });
    case TK_WP_FAULT:
      return instant('uffd write fault', 'hint', { pfn: e.a, pages: e.b, lastPfn: e.a + e.b - 1 });
    case TK_WP_CHECK:
      return instant('write-tracking check', 'hint', { pfn: e.a, pages: e.b, skipped: e.c, lastPfn: e.a + e.b - 1 });
    case TK_MIG_SYNC:
      return instant('bitmap sync', 'hint', { round: e.a, pagesSent: e.b, pagesDirty: e.c });
    case TK_SCHED: {
      const kind = Math.floor(e.c / 4294967296);
      return instant(`switch to ${threadName(e.b, cpus)}`, 'sched', { step: e.a, point: SP_NAMES[kind] ?? String(kind), object: e.c % 4294967296 });
    }
    case TK_VIOLATION: {
      const oracle = ORACLES[e.a] ?? '?';
      const v = meta.violations.find((x) => x.oracle === oracle && (x.pfn ?? -1) === e.b && (x.cpu ?? -1) === e.c);
      return instant(`VIOLATION ${oracle}`, 'oracle', { oracle, pfn: e.b, cpu: e.c, ...(v ? { message: v.message } : {}) }, 'g');
    }
    case TK_PHASE:
      return instant(RUN_STATES[e.a] ?? `state ${e.a}`, 'run', { state: e.a }, 'g');
    case TK_CHECK:
      return slice('structural check', 'oracle');
    case TK_COUNTER_MEM:
      counter('host RSS (MiB)', mib(e.a));
      counter('guest free (MiB)', mib(e.b));
      counter('reported free (MiB)', mib(e.c));
      return;
    default:
      return instant(`unknown event ${e.kind}`, 'trace', { kind: e.kind });
  }
}

/** The Chrome trace of a run from its rings. */
export function chromeTrace(raw: RawTrace, meta: TraceMeta): ChromeTrace {
  const out: ChromeTraceEvent[] = [];
  const { cpus } = meta;
  out.push({ name: 'process_name', ph: 'M', ts: 0, pid: TRACE_PID, tid: 0, args: { name: `balloon-sim seed ${meta.seed} (${meta.hinting})` } });
  const overwritten: Record<string, number> = {};
  const mainId = threadIds(cpus).main;
  for (const t of raw.threads) {
    if (!meta.roles.includes(t.thread) && t.thread !== mainId && t.records.length === 0) continue;
    const tid = traceTid(t.thread);
    const name = threadName(t.thread, cpus);
    out.push({ name: 'thread_name', ph: 'M', ts: 0, pid: TRACE_PID, tid, args: { name } });
    out.push({ name: 'thread_sort_index', ph: 'M', ts: 0, pid: TRACE_PID, tid, args: { sort_index: t.thread } });
    if (t.overwritten > 0) overwritten[name] = t.overwritten;
    const evs: ChromeTraceEvent[] = [];
    for (let i = 0; i < t.records.length; i++) {
      const e = t.records[i];
      if (e.kind === TK_COUNTER_NR_FREE) {
        // One counter event for every order sampled at this timestamp.
        const args: Record<string, number> = {};
        let j = i;
        for (; j < t.records.length && t.records[j].kind === TK_COUNTER_NR_FREE && t.records[j].tsUs === e.tsUs; j++) {
          if (t.records[j].a < MAX_ORDER) args[`order ${t.records[j].a}`] = t.records[j].b;
        }
        evs.push({ name: 'nr_free', ph: 'C', ts: us(e.tsUs), pid: TRACE_PID, tid, args });
        i = j - 1;
        continue;
      }
      convert(e, tid, cpus, meta, evs);
    }
    // By start time; at the same start the longer slice first (it is the parent).
    evs.sort((a, b) => a.ts - b.ts || (b.dur ?? -1) - (a.dur ?? -1));
    for (const e of evs) out.push(e);
  }
  return {
    traceEvents: out,
    displayTimeUnit: 'ms',
    otherData: {
      generator: 'balloon-sim --trace',
      seed: meta.seed,
      rerun: meta.rerun,
      clock: TRACE_CLOCK,
      ringEventsPerThread: raw.events,
      overwrittenEvents: overwritten,
      violations: meta.violations.map((v) => `${v.oracle}: ${v.message}`),
      errors: meta.errors,
    },
  };
}

// Device faults (--device-faults, docs/DESIGN.md §17): named kinds, each at a
// seeded rate, that make the error and recovery paths of the balloon's
// driver run while every oracle watches. What Linux, QEMU and Firecracker
// do on each, and what is modelled, is in the catalogue below and §17.
//
// A fault is decided where it happens: the driver (the reporter thread)
// rolls report-error per report and reset per pass; the device thread rolls
// ack-delay, irq-lost and irq-spurious per chain. Each side has its own
// stream (subSeed of the run's seed), so a run's faults are a function of
// its seed and, under --sched, of its schedule.

import { Rng, subSeed } from '../base/rng.js';
import { TK_FAULT, tracer } from '../locking/trace.js';

export const DEVICE_FAULT_KINDS = ['report-error', 'ack-delay', 'irq-lost', 'irq-spurious', 'reset'] as const;
export type DeviceFaultKind = (typeof DEVICE_FAULT_KINDS)[number];

export interface DeviceFault {
  kind: DeviceFaultKind;
  /** Probability per opportunity (a report, a chain, a pass), 0 < rate <= MAX_FAULT_RATE. */
  rate: number;
  /** ack-delay: the longest delay, ms (1..MAX_ACK_DELAY_MS); 0 for the other kinds. */
  maxMs: number;
}

export interface FaultInfo {
  /** Who rolls it, and when. */
  side: 'driver' | 'device';
  per: string;
  /** What Linux (and the VMMs) do, in one line. */
  linux: string;
  /** What the simulator does. */
  model: string;
  /** The modes where it can act. */
  modes: readonly string[];
  /** A clean run survives it (every oracle passes), or it is a failure the oracles must report. */
  outcome: 'survived' | 'detected';
}

export const FAULTS: Record<DeviceFaultKind, FaultInfo> = {
  'report-error': {
    side: 'driver',
    per: 'report',
    linux: 'virtballoon_free_page_report() returns the error of virtqueue_add_inbuf() (WARN_ON_ONCE; -EIO once the queue is broken); the used element carries no status, so this is the only way a report fails. page_reporting_cycle() drains the batch unreported and stops; the pass ends; nothing retries until the next free raises a request',
    model: 'the chain is refused before it reaches the ring (as a broken queue refuses it): report() returns an error and the reporter takes its upstream error path; aeration v1 puts the batch back raw and scrubs again',
    modes: ['reporting', 'aeration', 'naive'],
    outcome: 'survived',
  },
  'ack-delay': {
    side: 'device',
    per: 'chain',
    linux: 'wait_event(vb->acked) sleeps as long as the device takes; QEMU and Firecracker answer a report chain when their handler has discarded it',
    model: 'the device gets to a popped chain 1..max ms (uniform) late, as a handler busy elsewhere would: the range stays in flight that much longer, and its used element and interrupt come that much later',
    modes: ['reporting', 'aeration', 'naive'],
    outcome: 'survived',
  },
  'irq-lost': {
    side: 'device',
    per: 'interrupt',
    linux: 'wait_event(vb->acked, virtqueue_get_buf()) has no timeout and only the interrupt wakes it: the reporting worker hangs with its batch isolated (the hung-task watchdog may warn); nothing recovers',
    model: 'the device pushes the used element but raises no interrupt; the driver waits strictly, as Linux does, so the run fails: lost-wakeup running free, a deadlock (liveness) under --sched. Never drawn by the swarm',
    modes: ['reporting', 'aeration', 'naive'],
    outcome: 'detected',
  },
  'irq-spurious': {
    side: 'device',
    per: 'chain',
    linux: 'vring_interrupt() finds no used buffer and returns IRQ_NONE without calling balloon_ack(); a waiter woken anyway rechecks virtqueue_get_buf() and sleeps again',
    model: 'the device raises an interrupt after popping a chain, before acting on it; the driver wakes, finds no used element (counted) and waits again',
    modes: ['reporting', 'aeration', 'naive'],
    outcome: 'survived',
  },
  reset: {
    side: 'driver',
    per: 'pass',
    linux: 'the balloon resets its device only in virtballoon_freeze() (remove_common(): virtio_reset_device(), del_vqs()) and virtballoon_restore() (init_vqs(), virtio_device_ready()); QEMU virtio_reset() zeroes every queue index. Page reporting is not unregistered there and runs on the non-freezable system workqueue, so today a pass can race the reset (a fix proposed on linux-kernel unregisters in freeze and registers in restore)',
    model: 'the fixed order: between two passes the driver resets the device (the device forgets its queue state, last bad avail idx included), rebuilds its ring from zero, sets DRIVER_OK, and re-registers (page_reporting_register()\'s request; aerator_startup() for aeration)',
    modes: ['reporting', 'aeration'],
    outcome: 'survived',
  },
};

/** A fault is an exception: at most every other opportunity (aeration retries a failed batch at once, so a rate of 1 never ends). */
export const MAX_FAULT_RATE = 0.5;
export const MAX_ACK_DELAY_MS = 1000;
export const DEFAULT_ACK_DELAY_MS = 20;
export const FAULT_SEED_DRIVER = 0xfa17;
export const FAULT_SEED_DEVICE = 0xfa18;

/** The grammar, for messages: KIND=RATE[,KIND=RATE...], ack-delay=RATE[:MAXms]. */
export const FAULT_GRAMMAR = `KIND=RATE[,...] with KIND one of ${DEVICE_FAULT_KINDS.join(', ')}, RATE a probability (0.05) or a percentage (5%) above 0 and at most ${MAX_FAULT_RATE * 100}%; ack-delay=RATE:MAX bounds the delay (1ms..${MAX_ACK_DELAY_MS}ms, default ${DEFAULT_ACK_DELAY_MS}ms)`;

/** Parse a --device-faults value; an error names the piece and what is accepted. */
export function parseDeviceFaults(spec: string): DeviceFault[] {
  const out: DeviceFault[] = [];
  if (spec.trim() === '' || spec.trim() === 'none') return out;
  for (const part of spec.split(',')) {
    const m = /^\s*([a-z-]+)\s*=\s*([0-9.]+%?)\s*(?::\s*(\d+)\s*ms)?\s*$/.exec(part);
    if (!m) throw new Error(`'${part}' is not KIND=RATE; accepted: ${FAULT_GRAMMAR}`);
    const kind = m[1] as DeviceFaultKind;
    if (!DEVICE_FAULT_KINDS.includes(kind)) throw new Error(`unknown kind '${m[1]}'; accepted: ${DEVICE_FAULT_KINDS.join(', ')}`);
    if (out.some((f) => f.kind === kind)) throw new Error(`'${kind}' is given twice; accepted: each kind at most once`);
    const rate = m[2].endsWith('%') ? Number(m[2].slice(0, -1)) / 100 : Number(m[2]);
    if (!(rate > 0 && rate <= MAX_FAULT_RATE)) throw new Error(`${kind}: rate '${m[2]}' is out of range; accepted: above 0 and at most ${MAX_FAULT_RATE} (${MAX_FAULT_RATE * 100}%)`);
    let maxMs = 0;
    if (m[3] !== undefined) {
      if (kind !== 'ack-delay') throw new Error(`${kind}: only ack-delay takes a :MAXms bound`);
      maxMs = Number(m[3]);
      if (!(maxMs >= 1 && maxMs <= MAX_ACK_DELAY_MS)) throw new Error(`ack-delay: bound ${m[3]}ms is out of range; accepted: 1ms to ${MAX_ACK_DELAY_MS}ms`);
    } else if (kind === 'ack-delay') maxMs = DEFAULT_ACK_DELAY_MS;
    out.push({ kind, rate, maxMs });
  }
  // The catalogue's order, so a configuration has one spelling.
  return out.sort((a, b) => DEVICE_FAULT_KINDS.indexOf(a.kind) - DEVICE_FAULT_KINDS.indexOf(b.kind));
}

/** The canonical --device-faults value of a list (parseDeviceFaults reads it back as the same list). */
export function formatDeviceFaults(faults: readonly DeviceFault[]): string {
  return faults.map((f) => `${f.kind}=${+(f.rate * 100).toFixed(4)}%${f.kind === 'ack-delay' && f.maxMs !== DEFAULT_ACK_DELAY_MS ? `:${f.maxMs}ms` : ''}`).join(',');
}

/**
 * One side's dice: rolls its own kinds at their rates from its own seeded
 * stream and counts, in this thread's metric slot, how often each acted.
 */
export class FaultDice {
  private readonly rates = new Float64Array(DEVICE_FAULT_KINDS.length);
  private readonly rng: Rng;
  readonly ackDelayMaxMs: number;
  /** Whether any kind of this side is on (a run without faults rolls nothing). */
  readonly any: boolean;

  constructor(
    faults: readonly DeviceFault[],
    seed: number,
    side: 'driver' | 'device',
    private readonly counts: Float64Array | null = null,
    private readonly countBase = 0,
  ) {
    let any = false;
    let maxMs = 0;
    for (const f of faults) {
      if (FAULTS[f.kind].side !== side) continue;
      this.rates[DEVICE_FAULT_KINDS.indexOf(f.kind)] = f.rate;
      if (f.kind === 'ack-delay') maxMs = f.maxMs;
      any = true;
    }
    this.any = any;
    this.ackDelayMaxMs = maxMs;
    this.rng = new Rng(subSeed(seed, side === 'driver' ? FAULT_SEED_DRIVER : FAULT_SEED_DEVICE));
  }

  /** Roll for `kind` (index in DEVICE_FAULT_KINDS): true if the fault happens now (and it is counted). No roll, no draw, when the kind is off. */
  roll(kind: number): boolean {
    const r = this.rates[kind];
    if (r === 0 || this.rng.float() >= r) return false;
    if (this.counts !== null) this.counts[this.countBase + kind]++;
    if (tracer !== null) tracer.instant(TK_FAULT, kind);
    return true;
  }

  /** An ack delay, 1..ackDelayMaxMs ms. */
  delayMs(): number {
    return 1 + this.rng.below(this.ackDelayMaxMs);
  }
}

export const FAULT_REPORT_ERROR = DEVICE_FAULT_KINDS.indexOf('report-error');
export const FAULT_ACK_DELAY = DEVICE_FAULT_KINDS.indexOf('ack-delay');
export const FAULT_IRQ_LOST = DEVICE_FAULT_KINDS.indexOf('irq-lost');
export const FAULT_IRQ_SPURIOUS = DEVICE_FAULT_KINDS.indexOf('irq-spurious');
export const FAULT_RESET = DEVICE_FAULT_KINDS.indexOf('reset');

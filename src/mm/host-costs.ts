// The host cost model (docs/DESIGN.md §16): what a real host pays for free
// page hinting, and on which thread, from a cost profile (`sim calibrate`
// measures one on the machine; `--cost-profile FILE|default|none`).
//
// Where each cost lands, after upstream:
//  - A guest touch of a page the host does not back (first touch, or a
//    refault after a discard) is an EPT violation on the faulting vCPU:
//    handle_ept_violation() -> kvm_mmu_page_fault() -> the host's
//    handle_mm_fault() for the VMM's anonymous memory, which allocates and
//    clears a 4 KiB page (do_anonymous_page) or, with host THP, a 2 MiB one
//    (do_huge_pmd_anonymous_page -> clear_huge_page). Here: the faulting CPU
//    thread zero-fills the real bytes (src/mm/memory.ts) and burns
//    vmExitNs + hostFault4kNs (or hostFault2mNs) of busy time.
//  - The device's discard is QEMU virtio_balloon_handle_report() ->
//    ram_block_discard_range() -> madvise(MADV_DONTNEED) once per reported
//    range (per descriptor): zap_page_range_single() drops the mapping (no
//    zero fill); the device thread burns what one such call costs for the
//    pages it unmaps, interpolated in the measured sizes (madvise*Ns; with
//    host THP, madvise2mThpNs per 2 MiB).
//  - Each such madvise that unmapped something calls the MMU notifier:
//    kvm_mmu_notifier_invalidate_range_start() -> kvm_unmap_gfn_range() ->
//    kvm_flush_remote_tlbs(), an IPI that makes every running vCPU exit and
//    flush: every CPU thread burns tlbFlushNs (at its next allocation).
//  - A kick is an MMIO/PIO write, a VM exit (ioeventfd): kickNs on the
//    driver's thread (the reporter). A used-buffer interrupt is injected into
//    the guest (an exit and an entry on the vCPU that takes it): interruptNs
//    on the thread it wakes (the reporter).
// Costs are busy time (src/base/burn.ts), so schedstat charges them to the
// paying thread. `none`: no fixed cost at all (faults still zero-fill).

import { UsageError } from '../base/errors.js';
import { itersFor } from '../base/burn.js';
import { DEFAULT_PROFILE_JSON } from './host-costs-default.js';

export const COST_PROFILE_FORMAT = 'balloon-sim-host-costs/1';

/** The fixed costs, nanoseconds. */
export interface HostCosts {
  /** A VM exit and re-entry (EPT violation, MMIO kick, interrupt window). */
  vmExitNs: number;
  /** The host's anonymous page fault for 4 KiB, its clear_page excluded (the model zero-fills for real). */
  hostFault4kNs: number;
  /** The host's THP fault for 2 MiB, clear_huge_page excluded. */
  hostFault2mNs: number;
  /** MADV_DONTNEED of a range with nothing populated (the call alone). */
  madviseEmptyNs: number;
  /** MADV_DONTNEED of a populated range of 4 KiB pages: 4 KiB, 64 KiB, 2 MiB, 4 MiB (the cost is not linear: small ranges flush page by page, large ones the whole TLB). */
  madvise4kNs: number;
  madvise64kNs: number;
  madvise2mNs: number;
  madvise4mNs: number;
  /** MADV_DONTNEED of one populated 2 MiB huge page (host THP). */
  madvise2mThpNs: number;
  /** A remote TLB flush, per running vCPU (the IPI's exit, the flush, the entry). */
  tlbFlushNs: number;
  /** A virtqueue kick (notify write, a VM exit handled by ioeventfd). */
  kickNs: number;
  /** A used-buffer interrupt taken by the guest. */
  interruptNs: number;
}

export const COST_FIELDS: readonly (keyof HostCosts)[] = ['vmExitNs', 'hostFault4kNs', 'hostFault2mNs', 'madviseEmptyNs', 'madvise4kNs', 'madvise64kNs', 'madvise2mNs', 'madvise4mNs', 'madvise2mThpNs', 'tlbFlushNs', 'kickNs', 'interruptNs'];
/** Accepted range of every cost field, ns. */
export const COST_MAX_NS = 10_000_000;

export interface CostProvenance {
  /** What machine: CPU model, cores, memory, kernel, virtualisation. */
  machine: string;
  date: string;
  command: string;
  [k: string]: unknown;
}

export interface HostCostProfile {
  format: typeof COST_PROFILE_FORMAT;
  provenance: CostProvenance;
  costs: HostCosts;
  /** Per field: measured (how), derived (from what) or a documented default. */
  sources?: Partial<Record<keyof HostCosts, string>>;
  /** The raw measurements the costs were derived from (units in the keys). */
  measured?: Record<string, unknown>;
}

const bad = (label: string, field: string, what: string) => new UsageError(`${label}: ${field}: ${what}`);

/**
 * A cost profile from JSON text, validated; every problem is a UsageError
 * naming the field and what is accepted (one line, exit 2).
 */
export function parseCostProfile(text: string, label: string): HostCostProfile {
  let j: unknown;
  try {
    j = JSON.parse(text);
  } catch (e) {
    throw new UsageError(`${label}: not JSON (${(e instanceof Error ? e.message : String(e)).split('\n')[0]}); accepted: a profile written by sim calibrate`);
  }
  return validateCostProfile(j, label);
}

export function validateCostProfile(j: unknown, label: string): HostCostProfile {
  if (j === null || typeof j !== 'object' || Array.isArray(j)) throw bad(label, '(top level)', `not an object; accepted: {"format": "${COST_PROFILE_FORMAT}", "provenance": {...}, "costs": {...}}`);
  const o = j as Record<string, unknown>;
  if (o.format !== COST_PROFILE_FORMAT) throw bad(label, 'format', `${JSON.stringify(o.format) ?? 'missing'}; accepted: "${COST_PROFILE_FORMAT}"`);
  const p = o.provenance;
  if (p === null || typeof p !== 'object' || Array.isArray(p)) throw bad(label, 'provenance', 'missing or not an object; accepted: {"machine", "date", "command"} strings');
  for (const k of ['machine', 'date', 'command']) {
    const v = (p as Record<string, unknown>)[k];
    if (typeof v !== 'string' || v.trim() === '') throw bad(label, `provenance.${k}`, `${JSON.stringify(v) ?? 'missing'}; accepted: a non-empty string`);
  }
  const c = o.costs;
  if (c === null || typeof c !== 'object' || Array.isArray(c)) throw bad(label, 'costs', `missing or not an object; accepted: {${COST_FIELDS.join(', ')}} in ns`);
  const cc = c as Record<string, unknown>;
  for (const k of Object.keys(cc)) if (!(COST_FIELDS as readonly string[]).includes(k)) throw bad(label, `costs.${k}`, `unknown field; accepted: ${COST_FIELDS.join(', ')}`);
  const costs = {} as HostCosts;
  for (const k of COST_FIELDS) {
    const v = cc[k];
    if (typeof v !== 'number' || !Number.isFinite(v) || v < 0 || v > COST_MAX_NS) throw bad(label, `costs.${k}`, `${v === undefined ? 'missing' : JSON.stringify(v)}; accepted: a number of nanoseconds from 0 to ${COST_MAX_NS}`);
    costs[k] = v;
  }
  if (o.sources !== undefined && (o.sources === null || typeof o.sources !== 'object' || Array.isArray(o.sources))) throw bad(label, 'sources', 'not an object; accepted: a string per cost field');
  if (o.measured !== undefined && (o.measured === null || typeof o.measured !== 'object' || Array.isArray(o.measured))) throw bad(label, 'measured', 'not an object');
  return { format: COST_PROFILE_FORMAT, provenance: p as CostProvenance, costs, ...(o.sources !== undefined ? { sources: o.sources as HostCostProfile['sources'] } : {}), ...(o.measured !== undefined ? { measured: o.measured as Record<string, unknown> } : {}) };
}

/** The shipped profile (src/mm/host-costs-default.ts, written by `sim calibrate`), validated when loaded. */
export const DEFAULT_COST_PROFILE: HostCostProfile = validateCostProfile(DEFAULT_PROFILE_JSON, 'the shipped default cost profile (src/mm/host-costs-default.ts)');

/** A one-line summary of the fixed costs (microseconds), for the run's header. */
export function costSummary(c: HostCosts): string {
  const us = (ns: number) => `${ns >= 10_000 ? (ns / 1000).toFixed(0) : (ns / 1000).toFixed(2)}us`;
  return `fault 4K ${us(c.vmExitNs + c.hostFault4kNs)} (exit ${us(c.vmExitNs)}) + zeroing, fault 2M ${us(c.vmExitNs + c.hostFault2mNs)} + zeroing, madvise 2M ${us(c.madvise2mNs)} 4M ${us(c.madvise4mNs)}, tlb flush ${us(c.tlbFlushNs)}/vCPU, kick ${us(c.kickNs)}, interrupt ${us(c.interruptNs)}`;
}

/** MADV_DONTNEED of a range whose `pages` resident 4 KiB pages it unmaps: piecewise linear in the measured sizes, extrapolated past 4 MiB. */
export function madviseNs(c: HostCosts, pages: number): number {
  const pts: [number, number][] = [
    [0, c.madviseEmptyNs],
    [1, c.madvise4kNs],
    [16, c.madvise64kNs],
    [512, c.madvise2mNs],
    [1024, c.madvise4mNs],
  ];
  let k = 1;
  while (k < pts.length - 1 && pages > pts[k][0]) k++;
  const [x0, y0] = pts[k - 1];
  const [x1, y1] = pts[k];
  return Math.max(0, y0 + ((pages - x0) * (y1 - y0)) / (x1 - x0));
}

/**
 * The per-thread form of a profile: busy-work iterations (src/base/burn.ts)
 * at this thread's rate. All zero for `none`.
 */
export interface HostCostModel {
  /** A 4 KiB host fault: vmExitNs + hostFault4kNs. */
  faultIters: number;
  /** A 2 MiB host fault (host THP): vmExitNs + hostFault2mNs. */
  hugeFaultIters: number;
  tlbFlushIters: number;
  kickIters: number;
  interruptIters: number;
  /** The host backs guest memory with transparent huge pages: faults are 2 MiB at a time where the whole 2 MiB is unbacked. */
  hostThp: boolean;
  /** One MADV_DONTNEED that unmapped `pages` resident 4 KiB pages (with host THP: ceil(pages / 512) huge pages). */
  discardIters(pages: number): number;
}

export const NO_HOST_COSTS: HostCostModel = Object.freeze({ faultIters: 0, hugeFaultIters: 0, tlbFlushIters: 0, kickIters: 0, interruptIters: 0, hostThp: false, discardIters: () => 0 });

export function hostCostModel(costs: HostCosts | null, hostThp: boolean): HostCostModel {
  if (costs === null) return { ...NO_HOST_COSTS, hostThp };
  const c = costs;
  return {
    faultIters: itersFor(c.vmExitNs + c.hostFault4kNs),
    hugeFaultIters: itersFor(c.vmExitNs + c.hostFault2mNs),
    tlbFlushIters: itersFor(c.tlbFlushNs),
    kickIters: itersFor(c.kickNs),
    interruptIters: itersFor(c.interruptNs),
    hostThp,
    // With host THP a reported 2 MiB block is one huge page (zap_huge_pmd);
    // pages are counted in 2 MiB units (a simplification: a partly backed
    // 2 MiB counts as one huge page).
    discardIters: hostThp ? (pages) => itersFor(c.madviseEmptyNs + Math.ceil(pages / 512) * Math.max(0, c.madvise2mThpNs - c.madviseEmptyNs)) : (pages) => itersFor(madviseNs(c, pages)),
  };
}

/**
 * This thread's cost model. Each role sets it before it builds anything
 * (src/sim/roles.ts), as the tracer is set; GuestMemory and the virtqueue
 * halves copy it at construction. Free (NO_HOST_COSTS) until set.
 */
export let hostCosts: HostCostModel = NO_HOST_COSTS;
export function setHostCosts(m: HostCostModel): void {
  hostCosts = m;
}

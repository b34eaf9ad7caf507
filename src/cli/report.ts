// Human output of a run: the header (seed and every parameter first), the
// end-of-run tables and the verdict. JSON output is the RunResult itself,
// shaped by toJson() to the docs/DESIGN.md §10 contract.

import { availableParallelism } from 'node:os';
import { slotsInForce } from '../locking/cpu-slots.js';
import { type Config, cpuThreadsInForce } from '../sim/config.js';
import type { RunResult } from '../sim/run.js';
import type { HintStats } from '../sim/modes/stats.js';
import type { CpuTimeStats, RoleCpuTime } from '../sim/cputime.js';
import { schedJson, schedLines } from './schedule-report.js';
import { fmtBytes, fmtDuration } from '../base/units.js';
import { formatDeviceFaults } from '../virtio/device-faults.js';
import { reportDelayMs, settleTimeoutMs } from '../sim/modes/index.js';
import { costSummary } from '../mm/host-costs.js';
import { cpuTable, deviceLine, deviceTable, freeBlocksTable, freeMemoryLine, hostLine, ns, num, oracleTable, textRows } from './report-data.js';

export function configLines(c: Config): string[] {
  return [
    `balloon-sim: seed ${c.seed}`,
    `config: cpus=${c.cpus} workload=${c.workload} memory=${fmtBytes(c.memoryBytes)} duration=${fmtDuration(c.durationMs)} hinting=${c.hinting} ` +
      `pcp=${c.pcp ? `on(batch=${c.pcpBatch || 'auto'},high=${c.pcpHigh || 'auto'})` : 'off'} thp=${c.thp} region=${c.regionBytes ? fmtBytes(c.regionBytes) : 'auto'} hog=${Math.round(c.hogShare * 1000) / 10}% hold=${fmtDuration(c.holdMs)} ` +
      `check-interval=${c.checkIntervalMs ? fmtDuration(c.checkIntervalMs) : 'end-only'} wait-timeout=${fmtDuration(c.waitTimeoutMs)} spin=${c.spin} cpu-slots=${c.cpuSlots > 0 ? c.cpuSlots : 'off'} cpu-threads=${c.cpuThreads > 0 ? c.cpuThreads : 'off'} queue-size=${c.queueSize} ring-align=${c.ringAlign} poison=${c.poison ? '0x' + c.poisonByte.toString(16) : 'off'} lockstat=${c.lockstat ? 'on' : 'off'} ` +
      `event-idx=${c.eventIdx ? 'on' : 'off'} vq-numbering=${c.vqNumbering} poison-policy=${c.poisonPolicy} discard=${c.discard ? 'on' : 'off'} ` +
      `report-delay=${c.reportDelayMs === null ? `auto(${fmtDuration(reportDelayMs(c))})` : fmtDuration(c.reportDelayMs)} capacity=${c.capacity} report-order=${c.reportOrder} settle-timeout=${c.settleTimeoutMs === null ? `auto(${fmtDuration(settleTimeoutMs(c))})` : fmtDuration(c.settleTimeoutMs)} page-poison-feature=${c.pagePoisonFeature ? 'on' : 'off'} prefault=${c.prefault ? 'on' : 'off'} inject=${c.inject?.length ? c.inject.join(',') : 'none'}` +
      (c.hinting === 'hint' ? ` hint-device=${c.hintDevice} hint-interval=${fmtDuration(c.hintIntervalMs)}${c.hintDevice === 'firecracker' ? ` hint-ack-on-stop=${c.hintAckOnStop ? 'on' : 'off'} hint-done-after=${fmtDuration(c.hintDoneAfterMs)} hint-uffd-wp=${c.hintUffdWp}` : ''} hint-shrink=${c.hintShrinkBlocks} hint-shrink-acked-only=${c.hintShrinkAckedOnly ? 'on' : 'off'}` : '') +
      (c.deviceFaults?.length ? ` device-faults=${formatDeviceFaults(c.deviceFaults)}` : '') +
      (c.hostile ? ` hostile=${+(c.hostile * 100).toFixed(4)}%` : '') +
      (c.descPolicy !== undefined && c.descPolicy !== 'lifo' ? ` desc-policy=${c.descPolicy}` : '') +
      ((c.reportInflight ?? 1) > 1 ? ` report-inflight=${c.reportInflight}` : ''),
    hostCostLine(c),
  ];
}

/** Which host cost profile the run used, where it was measured, and its costs. */
export function hostCostLine(c: Pick<Config, 'costProfile' | 'hostCosts' | 'hostThp'>): string {
  const thp = ` host-thp=${c.hostThp ? 'on' : 'off'}`;
  if (c.hostCosts === null || c.hostCosts === undefined) return `host costs: none (--cost-profile none: a fault only zero-fills its page, no fixed cost anywhere)${thp}`;
  const p = c.hostCosts.provenance;
  return `host costs: ${c.costProfile === 'default' ? 'default profile' : `profile ${c.costProfile}`} (${p.machine}; ${p.date}; ${p.command}): ${costSummary(c.hostCosts.costs)};${thp}`;
}

export function table(rows: string[][]): string {
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
  return rows.map((r) => r.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('  ')).join('\n');
}

export function resultText(r: RunResult): string {
  const out: string[] = [];
  out.push('');
  out.push(runLine(r));
  out.push(table(textRows(cpuTable(r))));
  if (r.config.thp === 'always') out.push(`thp: ${num(r.totals.thpFallbacks)} of the 2 MiB faults fell back to order-0 pages (no order-9 block free)`);
  const slotLine = cpuBoundLine(r);
  if (slotLine !== null) out.push(slotLine);
  out.push('');
  out.push(freeMemoryLine(r));
  out.push(table(textRows(freeBlocksTable(r))));
  out.push('');
  out.push(hostLine(r));
  if (r.device) {
    out.push(deviceLine(r.device));
    out.push(table(textRows(deviceTable(r.device))));
  }
  if (r.hinting) out.push('', ...hintingLines(r));
  if (r.cpuTime) out.push('', ...cpuTimeLines(r.cpuTime));
  for (const n of r.notes) out.push(`note: ${n}`);
  out.push('');
  out.push(table(textRows(oracleTable(r))));
  out.push('');
  out.push(...verdictLines(r));
  return out.join('\n');
}

export const runLine = (r: RunResult) => `run: ${(r.durationMs / 1000).toFixed(2)}s (set-up ${r.setupMs} ms)`;

/** The `hinting` section: what the mode did (reports, blocks, round trips, settling). */
export function hintingLines(r: RunResult): string[] {
  const h = r.hinting;
  if (!h) return [];
  if (!h.enabled) return [`hinting: ${h.mode} DISABLED`];
  if (h.hint) return hintLines(h.mode, h.hint, h.settleMs, h.settle?.ok, h.ringInFlightMax);
  const out: string[] = [];
  out.push(`hinting: ${h.mode}: ${num(h.reports)} reports, ${num(h.reportedBlocks)} blocks, ${fmtBytes(h.reportedBytes)} reported, ${num(h.reReportedBlocks)} re-reported after merging, ${num(h.failedReports)} failed`);
  out.push(`  round trip p50 ${ns(h.roundTripNs.p50)} p99 ${ns(h.roundTripNs.p99)}; ${num(h.passes)} passes (the registration's request and ${num(h.requests)} raised by frees; a free while a pass is pending or running joins it); reporter held the zone lock ${ns(h.reporterZoneLockHoldNs)} in all; at most ${num(h.ringInFlightMax ?? 0)} chains in flight on the ring`);
  if (h.passesSkippedBelowWatermark || h.isolationsRefusedByMinWatermark) out.push(`  watermarks: ${h.passesSkippedBelowWatermark} passes skipped (zone not above low + capacity << order), ${h.isolationsRefusedByMinWatermark} isolations refused (min)`);
  out.push(`  isolation: at most ${fmtBytes(h.isolatedPagesMax * 4096)} isolated at once; ${fmtBytes(h.isolatedBelowMinPages * 4096)} isolated below the min watermark; ${num(h.allocFailuresWhileIsolated)} CPU allocation failures while blocks were isolated`);
  if (h.settle) out.push(`  settled in ${h.settleMs} ms: host RSS ${fmtBytes(h.settle.rssBytes)}${h.settle.excuses.length ? '; ' + h.settle.excuses.join('; ') : ''}`);
  return out;
}

/** The end table of --hinting hint / naive (src/sim/modes/stats.ts). */
export function hintLines(mode: string, x: HintStats, settleMs?: number, settled?: boolean, inFlightMax?: number): string[] {
  const out: string[] = [];
  const pct = (f: number) => `${(f * 100).toFixed(1)}%`;
  if (mode === 'naive') {
    out.push(`hinting: naive: ${num(x.runs)} round trips (alloc, send, wait, free), ${num(x.blocksHinted)} blocks = ${fmtBytes(x.bytesHinted)} sent; round trip p50 ${ms(x.runMs.p50)} p99 ${ms(x.runMs.p99)}`);
    out.push(`  distinct blocks ${num(x.distinctBlocks)} (${fmtBytes(x.distinctBytes)}, ${pct(x.distinctShareOfMemory)} of memory), duplicates ${num(x.duplicateBlocks)}: duplicate ratio ${x.duplicateRatio.toFixed(4)}; ${num(x.naiveAllocFailures)} times no block to take`);
  } else {
    const d = x.device;
    const vmm = d ? (d.kind === 'qemu' ? 'qemu, live migration' : `firecracker, acknowledge_on_stop ${d.ackOnStop ? 'on' : 'off'}${d.uffdWp !== 'off' ? `, uffd-wp ${d.uffdWp}` : ''}`) : '?';
    out.push(`hinting: hint (FREE_PAGE_HINT, ${vmm}): ${num(x.runs)} runs, ${num(x.blocksHinted)} blocks = ${fmtBytes(x.bytesHinted)} hinted, ${fmtBytes(x.bytesPerRun)} per run; balloon held at most ${fmtBytes(x.heldBytesMax)}`);
    out.push(`  run duration (cmd id -> STOP sent) p50 ${ms(x.runMs.p50)} max ${ms(x.runMs.max)} mean ${ms(x.runMs.mean)}; runs ended: ${x.runEnds.allocationFailed} allocation failed, ${x.runEnds.newCmdId} new cmd id, ${x.runEnds.other} other${inFlightMax !== undefined ? `; at most ${num(inFlightMax)} chains in flight on the ring` : ''}`);
    out.push(`  distinct blocks ${num(x.distinctBlocks)} (${fmtBytes(x.distinctBytes)}), duplicates ${num(x.duplicateBlocks)} (ratio ${x.duplicateRatio.toFixed(3)}); DONE handled ${x.donesHandled}, ${num(x.blocksFreedOnDone)} blocks freed on DONE; ${num(x.listedAtKick)} blocks listed at their kick; ring full: ${num(x.ringFullFrees)} blocks freed at once${x.ringFullWaits > 0 ? ` (${num(x.ringFullWaits)} with acked-only)` : ''}; ${num(x.idsDropped)} ids not queued`);
    const sh = x.shrinker;
    out.push(`  shrinker: reclaim below the low watermark ${num(sh.reclaimCalls)} calls freed ${num(sh.reclaimBlocks)} blocks; after a failed allocation ${num(sh.calls)} calls freed ${num(sh.blocksReturned)} blocks; per call mean ${ms(sh.nsMean / 1e6)} max ${ms(sh.nsMax / 1e6)}; CPU allocation failures ${num(x.cpuAllocFailures)}, of them with the balloon holding pages it could not return: ${num(sh.emptyWhileBalloonHeld)}`);
    if (d) {
      out.push(`  device: ${d.idsWritten} cmd ids written, ${d.starts} started, ${d.stops} stopped, ${d.dones} DONE; ${num(d.rangesActedOn)} ranges acted on (${fmtBytes(d.pagesHinted * 4096)}), ${num(d.rangesIgnored)} stale ranges and ${d.staleIds} stale ids ignored; device run mean ${ms(d.runMsMean)} max ${ms(d.runMsMax)}`);
      out.push(`  ranges whose block the shrinker had already freed when the device reached them: ${num(d.rangesGuestFreed)}, of them (partly) allocated to a CPU again: ${num(d.rangesGuestReused)}`);
      if (d.uffd) out.push(`  uffd write protection (${d.uffdWp}): ${num(d.uffd.checks)} ranges checked, ${num(d.uffd.skippedRanges)} with written pages, ${num(d.uffd.skippedPages)} pages (${fmtBytes(d.uffd.skippedPages * 4096)}) not discarded; vCPU write faults ${num(x.uffdFaults?.faults ?? 0)} (${ms((x.uffdFaults?.nsTotal ?? 0) / 1e6)} in all)`);
      if (d.migration) {
        const g = d.migration;
        out.push(`  migration: ${num(g.syncs)} bitmap syncs; ${num(g.bulkPages)} pages in the bulk stage; ${num(g.pagesSent)} pages sent (${num(g.finalPages)} in the final stop-and-copy); ${num(g.pagesSkipped)} pages skipped thanks to hints, of them ${num(g.pagesResent)} written later and re-sent; migration oracle checked ${num(g.checks)} hinted pages; ${num(g.stopsByOtherId)} runs stopped by an id other than STOP`);
      }
    }
  }
  if (settleMs !== undefined && settled !== undefined) out.push(`  ${settled ? 'settled' : 'NOT settled'} in ${settleMs} ms (balloon empty after DONE)`);
  return out;
}

/** Who spent the cores in the workload window (src/sim/cputime.ts). */
export function cpuTimeLines(c: CpuTimeStats): string[] {
  const t = (x: number) => (x >= 1e9 ? `${(x / 1e9).toFixed(2)}s` : ns(x));
  const role = (name: string, x: RoleCpuTime | undefined) => (x ? `; ${name} ${t(x.runNs)}` : '');
  return [
    `cpu time in the ${(c.windowNs / 1e9).toFixed(2)}s workload window (schedstat): cpus ${t(c.cpus.runNs)} on a core, ${t(c.cpus.runqWaitNs)} waiting for one, ${t(c.cpus.sleepNs)} asleep` +
      `${role('reporter', c.reporter)}${role('device', c.device)}${role('main', c.main)}`,
    `  guest (cpus + reporter) ${t(c.guestRunNs)}: ${ns(c.guestRunNsPerOp)} per op, ${num(c.opsPerGuestCpuSec)} ops per guest cpu-second; host (device) ${t(c.hostRunNs)}`,
  ];
}

const ms = (x: number) => (x >= 1 ? `${x.toFixed(1)}ms` : `${(x * 1000).toFixed(1)}us`);

export function verdictLines(r: RunResult): string[] {
  const out: string[] = [];
  for (const e of r.errors) out.push(`FAILED (simulator): ${e}`);
  for (const v of r.violations.slice(0, 20)) out.push(`VIOLATION ${v.oracle}: ${v.message}`);
  if (r.violations.length > 20) out.push(`... and ${r.violations.length - 20} more violations`);
  if (r.sched) out.push(...schedLines(r.sched, r.ok || (r.interrupted && r.violations.length === 0 && r.errors.length === 0)));
  // An injection that never acted: the run tested nothing (exit 1 unless interrupted).
  for (const x of r.injections) if (!x.acted) out.push(`${r.interrupted ? 'NOTE' : 'VACUOUS'}: ${x.reason}`);
  for (const x of r.injections) if (x.acted) out.push(`inject ${x.name}: acted ${x.count} times (${x.counts})`);
  if (r.faults) {
    const f = r.faults;
    out.push(`device faults: ${f.kinds.map((k) => `${k.kind} ${+(k.rate * 100).toFixed(2)}%${k.maxMs ? ` (<= ${k.maxMs}ms)` : ''} acted ${k.acted}`).join(', ')}; the driver saw ${f.spuriousInterrupts} interrupts with nothing used and ${f.resets} device resets`);
  }
  if (r.hostile) out.push(`hostile guest: ${r.hostile.chains} malformed or random avail entries in ${r.hostile.checks} checked bursts (${r.hostile.skipped} skipped: no arena block)`);
  if (r.ok) out.push(`OK: every oracle passed (seed ${r.seed})`);
  else if (r.exitCode === 130 || r.exitCode === 143) {
    const i = r.interrupt;
    out.push(`INTERRUPTED by ${i?.signal ?? 'a signal'} after ${(r.durationMs / 1000).toFixed(2)}s of the ${(r.config.durationMs / 1000).toFixed(2)}s workload: every oracle that ran passed; exit ${r.exitCode} (seed ${r.seed})`);
    out.push(`rerun: ${r.rerun}`);
  } else {
    out.push(`FAILED with exit ${r.exitCode} (seed ${r.seed})${r.interrupted ? `, interrupted by ${r.interrupt?.signal ?? 'a signal'} after ${(r.durationMs / 1000).toFixed(2)}s` : ''}`);
    out.push(`rerun: ${r.rerun}`);
  }
  return out;
}

/** The docs/DESIGN.md §10 JSON object (core fields always present). */
export function toJson(r: RunResult): Record<string, unknown> {
  return {
    seed: r.seed,
    config: r.config,
    ok: r.ok,
    exitCode: r.exitCode,
    violations: r.violations,
    errors: r.errors,
    rerun: r.rerun,
    durationMs: r.durationMs,
    setupMs: r.setupMs,
    interrupted: r.interrupted,
    ...(r.interrupt ? { interrupt: r.interrupt } : {}),
    injections: r.injections,
    ...(r.faults ? { faults: r.faults } : {}),
    ...(r.hostile ? { hostile: r.hostile } : {}),
    totals: r.totals,
    cpus: r.cpus,
    memory: r.memory,
    checks: r.checks,
    host: r.host,
    ...(r.device ? { device: r.device } : {}),
    ...(r.hinting ? { hinting: r.hinting } : {}),
    ...(r.cpuTime ? { cpuTime: r.cpuTime } : {}),
    notes: r.notes,
    series: r.series,
    ...(r.locks ? { locks: r.locks } : {}),
    ...(r.sched ? { sched: schedJson(r.sched) } : {}),
  };
}

/** --cpu-slots or --cpu-threads in force, or the note that lock waits include lock-holder preemption (more CPUs than host cores, slots off, lock statistics on). */
export function cpuBoundLine(r: RunResult): string | null {
  const c = r.config;
  const slots = slotsInForce(c);
  if (slots > 0) {
    const yields = r.totals.cpuSlotYields;
    return `cpu slots: ${slots} of ${c.cpus} CPUs run at once, switched between ops (${num(yields)} switches, ${ns(r.totals.cpuSlotWaitNs / Math.max(1, yields + c.cpus))} average wait for a slot)`;
  }
  const threads = cpuThreadsInForce(c);
  if (threads > 0) return `cpu threads: ${c.cpus} CPUs on ${threads} threads, switched between ops (${num(r.totals.cpuHostSwitches)} resumes, ${num(r.totals.cpuHostIdleSleeps)} thread sleeps with all its CPUs asleep)`;
  if (c.cpuSlots === 0 && c.lockstat && c.sched === 'off' && c.cpus > availableParallelism()) return `note: ${c.cpus} CPU threads on ${availableParallelism()} host cores: lock waits include lock-holder preemption (the host preempting a CPU inside a zone lock hold); --cpu-threads auto or --cpu-slots auto keeps a holder on its core`;
  return null;
}

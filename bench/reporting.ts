// Free page hinting benchmarks (issue: reporter). Same-run ratios:
//  - page_fault1 at --cpus 8: ops/s with reporting / off and aeration / off,
//    runs interleaved (off, reporting, aeration, off, ...), medians;
//  - reclaim speed after memhog frees, --report-delay 0: bytes returned to the
//    host per second, next to the device's raw discard bandwidth measured on
//    the same machine in the same process.

import { availableParallelism } from 'node:os';
import { type Config, DEFAULT_CONFIG } from '../src/sim/config.js';
import { PAGE_SIZE, createShared } from '../src/shm/layout.js';
import { GuestMemory } from '../src/mm/memory.js';
import { DEFAULT_COST_PROFILE, hostCostModel } from '../src/mm/host-costs.js';
import { runSimulation, sharedBufferFor } from '../src/sim/run.js';
import { type BenchReport, round } from './types.js';
import { BRACKET_TOLERANCE, bracketRatios, median, medianInterval } from '../src/base/stats.js';

const MiB = 2 ** 20;

/** Raw device discard bandwidth: GuestMemory.discard of resident pages (what the device does per range, with the default profile's modelled madvise cost), over all of `mem`. */
function rawDiscardGBps(reps: number, mem: GuestMemory): number {
  const pages = mem.views.layout.pages;
  const bytes = pages * PAGE_SIZE;
  const rates: number[] = [];
  for (let r = 0; r < reps; r++) {
    mem.markAllResident();
    const t0 = performance.now();
    // in report-sized ranges: order-10 blocks
    for (let p = 0; p < pages; p += 1024) mem.discard(p, 1024);
    rates.push(bytes / ((performance.now() - t0) / 1000) / 1e9);
  }
  return median(rates);
}

interface Point {
  tMs: number;
  hostRssBytes: number;
  guestUsedBytes: number;
}

/** The reclaim window of a memhog run's series (see the note in bench()). */
export function reclaimWindow(s: Point[], memBytes: number) {
  let iPeak = 0;
  s.forEach((p, i) => {
    if (p.hostRssBytes >= s[iPeak].hostRssBytes) iPeak = i;
  });
  const iStart = iPeak; // last sample at the RSS peak: reclaim starts after it
  let iEnd = s.findIndex((p, i) => i > iStart && p.guestUsedBytes < 0.2 * memBytes && p.hostRssBytes <= p.guestUsedBytes + 2 * MiB);
  if (iEnd < 0) iEnd = s.length - 1;
  const iFreed = s.findIndex((p, i) => i > iStart && p.guestUsedBytes <= s[iEnd].guestUsedBytes);
  let maxLag = 0;
  for (let i = iStart; i <= iEnd; i++) maxLag = Math.max(maxLag, s[i].hostRssBytes - s[i].guestUsedBytes);
  return {
    rssDropBytes: s[iStart].hostRssBytes - s[iEnd].hostRssBytes,
    usedDropBytes: s[iStart].guestUsedBytes - s[iEnd].guestUsedBytes,
    secs: Math.max(1e-3, (s[iEnd].tMs - s[iStart].tMs) / 1000),
    lagMs: iFreed >= 0 ? s[iEnd].tMs - s[iFreed].tMs : NaN,
    maxLagBytes: maxLag,
  };
}

/** Spread of a sample: [min, max]. */
const span = (xs: number[]): [number, number] => [Math.min(...xs), Math.max(...xs)];

/**
 * The runs a bracket can hold: hinting off in the middle (offControl, an A/A
 * check), each hinting mode, and each mode with the device keeping what is
 * reported (--no-discard, Linux v5's "madvise disabled" measurement):
 * reporting's own cost with no memory going back.
 */
const MODE_CONFIG = {
  reporting: { hinting: 'reporting', discard: true },
  aeration: { hinting: 'aeration', discard: true },
  offControl: { hinting: 'off', discard: true },
  reportingNoDiscard: { hinting: 'reporting', discard: false },
  aerationNoDiscard: { hinting: 'aeration', discard: false },
  off: { hinting: 'off', discard: true },
} as const;
type Mode = keyof typeof MODE_CONFIG;

export async function bench(opts: { quick?: boolean; brackets?: number } = {}): Promise<BenchReport> {
  // Two delays: the kernel's PAGE_REPORTING_DELAY (2 s, what Linux's cover
  // letters measured with) over runs long enough for several passes, and the
  // simulator's default (100 ms), which reports far more often.
  const runs = [
    // Five modes take turns in the brackets (below): 8 brackets each by default.
    { key: 'kernelDelay', delayMs: 2000, durationMs: opts.quick ? 2500 : 6000, brackets: opts.brackets ?? (opts.quick ? 5 : 40) },
    { key: 'simDelay', delayMs: 100, durationMs: opts.quick ? 600 : 1500, brackets: opts.quick ? 5 : 20 },
  ];
  // offControl: hinting off in the middle of a bracket too (an A/A check):
  // its ratio says how finely the bracketing resolves on this machine.
  const modes: Mode[] = ['reporting', 'aeration', 'reportingNoDiscard', 'aerationNoDiscard', 'offControl'];
  const results: Record<string, number> = {};
  const ratios: Record<string, number> = {};
  // How well a median is pinned down: a distribution-free 95% interval from
  // the accepted brackets, with its real coverage beside it.
  const putInterval = (key: string, accepted: number[]) => {
    const ci = medianInterval(accepted);
    results[`${key}.median95Lo`] = round(ci.lo);
    results[`${key}.median95Hi`] = round(ci.hi);
    results[`${key}.median95Coverage`] = round(ci.coverage);
  };
  // Every page_fault1 run uses the same buffer: a fresh 1 GiB buffer per run
  // would add whatever backing the host gives it to each run's speed.
  let buffer: SharedArrayBuffer | undefined;
  for (const run of runs) {
    const seq: { mode: string; opsPerSec: number; opsPerGuestCpuSec: number }[] = [];
    const work: Record<string, number[]> = {};
    const pf = async (label: Mode, seed: number) => {
      const { hinting, discard } = MODE_CONFIG[label];
      // --warm: the steady state of a guest that has touched its memory (no
      // first-touch host faults, which with a host cost profile would be
      // most of a hinting-off run's work).
      const cfg: Config = { ...DEFAULT_CONFIG, cpus: 8, workload: 'page_fault1', memoryBytes: 1024 * MiB, durationMs: run.durationMs, seed, hinting, discard, reportDelayMs: run.delayMs, checkIntervalMs: 0, prefault: true, warm: true };
      buffer ??= sharedBufferFor(cfg);
      const r = await runSimulation(cfg, { buffer });
      if (!r.ok) throw new Error(`bench run failed: ${r.rerun}`);
      const c = r.cpuTime;
      if (!c) throw new Error('bench: no cpuTime (is /proc/<pid>/task/<tid>/schedstat readable?)');
      seq.push({ mode: label, opsPerSec: r.totals.opsPerSec, opsPerGuestCpuSec: c.opsPerGuestCpuSec });
      const add = (k: string, v: number) => (work[`${label}.${k}`] ??= []).push(v);
      const secs = r.durationMs / 1000;
      // Where the cores went in the ops/s window (src/sim/cputime.ts): the
      // hinting threads' own time is the direct cost; the rest of any loss is
      // the CPUs doing more per op (faults, a wider spread over memory).
      const reporterNs = c.reporter?.runNs ?? 0;
      const deviceNs = c.device?.runNs ?? 0;
      const rolesNs = c.cpus.runNs + reporterNs + deviceNs + c.main.runNs;
      add('guestCpuNsPerOp', c.guestRunNsPerOp);
      add('reporterCpuMsPerSec', reporterNs / 1e6 / secs);
      add('deviceCpuMsPerSec', deviceNs / 1e6 / secs);
      add('hintingCpuShare', (reporterNs + deviceNs) / rolesNs);
      // Time on a core of every role over the window's core capacity: what
      // is missing went to no role (other processes, the kernel, idle).
      add('rolesCoreShare', rolesNs / (c.windowNs * availableParallelism()));
      add('firstTouchFaultsPerSec', r.host.firstTouchFaults / secs);
      add('refaultsPerSec', r.host.refaults / secs);
      if (hinting !== 'off') {
        // What hinting made the machine do, per second of run (settling included).
        add('deviceDiscardMsPerSec', (r.device?.discardNsTotal ?? 0) / 1e6 / secs);
        add('reportedMiBPerSec', (r.hinting?.reportedBytes ?? 0) / MiB / secs);
      }
    };
    await pf('off', 500);
    for (let i = 0; i < run.brackets; i++) {
      await pf(modes[i % modes.length], 501 + i);
      await pf('off', 501 + i);
    }
    const br = bracketRatios(seq);
    // The same brackets on ops per guest cpu-second: the host's (device's)
    // time on these shared cores is not charged to the guest.
    const brGuest = bracketRatios(seq.map((x) => ({ mode: x.mode, opsPerSec: x.opsPerGuestCpuSec })));
    const offs = seq.filter((x) => x.mode === 'off').map((x) => x.opsPerSec);
    results[`pageFault1OpsPerSec.${run.key}.off`] = round(median(offs));
    const [lo, hi] = span(offs);
    results[`pageFault1OpsPerSec.${run.key}.offMin`] = round(lo);
    results[`pageFault1OpsPerSec.${run.key}.offMax`] = round(hi);
    for (const mode of modes) {
      const k = `${mode}VsOff.${run.key}`;
      const b = br[mode];
      results[`pageFault1OpsPerSec.${run.key}.${mode}`] = round(median(seq.filter((x) => x.mode === mode).map((x) => x.opsPerSec)));
      ratios[k] = round(median(b.accepted));
      results[`${k}.bracketsAccepted`] = b.accepted.length;
      results[`${k}.bracketsRun`] = b.all.length;
      if (b.accepted.length > 0) {
        const [alo, ahi] = span(b.accepted);
        results[`${k}.acceptedMin`] = round(alo);
        results[`${k}.acceptedMax`] = round(ahi);
        putInterval(k, b.accepted);
      }
      ratios[`${k}.allBrackets`] = round(median(b.all));
      const g = brGuest[mode];
      ratios[`${mode}VsOffPerGuestCpuSec.${run.key}`] = round(median(g.accepted));
      results[`${mode}VsOffPerGuestCpuSec.${run.key}.bracketsAccepted`] = g.accepted.length;
      if (g.accepted.length > 0) putInterval(`${mode}VsOffPerGuestCpuSec.${run.key}`, g.accepted);
    }
    for (const mode of ['off', ...modes] as Mode[]) {
      const ws = Object.keys(work).filter((key) => key.startsWith(`${mode}.`));
      for (const key of ws) results[`${run.key}.${key}`] = round(median(work[key]));
    }
  }

  // Reclaim after memhog frees, --report-delay 0, series sampled every 2 ms.
  // One memhog process (--cpus 1, as the aeration cover letter ran memhog):
  // its frees take ~12 ms for 800 MiB, so the window measures the reporting
  // pipeline. With --cpus 4 the four hogs finish filling (and so start
  // freeing) up to ~150 ms apart, the reporter keeps pace with their frees
  // and the window measures the workload's free schedule instead; it is kept
  // as a second figure next to the guest's own free rate.
  const reclaimRuns = async (cpus: number, reps: number) => {
    const out = { reclaim: [] as number[], guestFree: [] as number[], returned: [] as number[], lagMs: [] as number[], windowMs: [] as number[], deviceDiscardGBps: [] as number[], raw: [] as number[], vsRaw: [] as number[] };
    let buf: SharedArrayBuffer | undefined;
    for (let rep = 0; rep < reps; rep++) {
      // --host-thp: the hog's 800 MiB is faulted in 2 MiB at a time, as a
      // THP-backed host does (with 4 KiB host faults at the default
      // profile's cost the fill alone would outlast the run).
      const cfg: Config = { ...DEFAULT_CONFIG, cpus, workload: 'memhog', memoryBytes: 1024 * MiB, durationMs: 2500, holdMs: 200, seed: 600 + rep, hinting: 'reporting', reportDelayMs: 0, checkIntervalMs: 0, hostThp: true };
      buf ??= sharedBufferFor(cfg);
      const r = await runSimulation(cfg, { sampleIntervalMs: 2, buffer: buf });
      if (!r.ok) throw new Error(`bench run failed: ${r.rerun}`);
      const w = reclaimWindow(r.series, cfg.memoryBytes);
      out.reclaim.push(w.rssDropBytes / w.secs / 1e9);
      out.guestFree.push(w.usedDropBytes / w.secs / 1e9);
      out.returned.push(w.rssDropBytes);
      out.lagMs.push(w.lagMs);
      out.windowMs.push(w.secs * 1000);
      // The device's own discard rate over the run (resident pages dropped
      // per second of discard time), while the CPUs and reporter run beside it.
      const d = r.device;
      if (d && d.discardNsTotal > 0) out.deviceDiscardGBps.push((d.pagesDropped * PAGE_SIZE) / d.discardNsTotal);
      // Raw discard right after each run, so each reclaim figure is divided
      // by the bandwidth of the same moment (it drifts with the machine too),
      // after a pause: the run's threads are still being torn down at first.
      await new Promise((res) => setTimeout(res, 500));
      const raw = rawDiscardGBps(7, rawMem);
      out.raw.push(raw);
      out.vsRaw.push(w.rssDropBytes / w.secs / 1e9 / raw);
    }
    return out;
  };
  // The same modelled madvise cost as the runs' device pays (the default profile, host THP).
  const rawMem = new GuestMemory(createShared({ cpus: 1, memoryBytes: 256 * MiB, queueSize: 16, ringAlign: 4 }), hostCostModel(DEFAULT_COST_PROFILE.costs, true));
  const one = await reclaimRuns(1, opts.quick ? 1 : 5);
  const four = await reclaimRuns(4, opts.quick ? 1 : 3);
  const raw = median([...one.raw, ...four.raw]);

  return {
    name: 'reporting',
    results: {
      ...results,
      reclaimGBPerSec: round(median(one.reclaim)),
      reclaimWindowMs: round(median(one.windowMs)),
      reclaimedBytesMedian: round(median(one.returned)),
      reclaimDeviceDiscardGBPerSec: round(median(one.deviceDiscardGBps)),
      reclaimGBPerSecCpus4: round(median(four.reclaim)),
      guestFreeGBPerSecCpus4SameWindow: round(median(four.guestFree)),
      lagAfterLastFreeMsCpus4: round(median(four.lagMs)),
      rawDiscardGBPerSec: round(raw),
    },
    ratios: {
      ...ratios,
      reclaimVsRawDiscard: round(median(one.vsRaw)),
      reclaimCpus4VsRawDiscard: round(median(four.vsRaw)),
      reclaimCpus4VsGuestFreeRate: round(median(four.reclaim) / median(four.guestFree)),
    },
    notes: [
      'targets: reportingVsOff >= 0.98, aerationVsOff >= 0.98 (Linux: 0.992 on page_fault1, 16 tasks, 2 s delay); reclaimVsRawDiscard >= 0.5',
      `page_fault1: 1 GiB, --cpus 8 --prefault --warm, the default host cost profile, one shared buffer for every run; kernelDelay: --report-delay 2s, ${runs[0].durationMs} ms runs, ${runs[0].brackets} brackets; simDelay: --report-delay 100ms, ${runs[1].durationMs} ms runs, ${runs[1].brackets} brackets. Runs go off, reporting, off, aeration, off, reportingNoDiscard, off, aerationNoDiscard, off, offControl (off again: an A/A check of the method), off, ...; xVsOff is the median of x / mean(off before, off after) over the brackets whose two off runs agree within ${BRACKET_TOLERANCE * 100}% (bracketsAccepted of bracketsRun; acceptedMin/Max its spread; median95Lo/Hi a distribution-free interval for the median from order statistics, median95Coverage its exact coverage, below 0.95 when there are fewer than 6 accepted brackets; allBrackets the median over every bracket). 8 vCPU threads plus the reporter and device share 2 cores here, so every cycle hinting spends is taken from the CPUs. Per mode, medians over its runs: guestCpuNsPerOp (CPU and reporter time on a core per op), reporterCpuMsPerSec, deviceCpuMsPerSec and hintingCpuShare (reporter + device share of all role time on a core) and rolesCoreShare (all roles' time on a core over the window's core capacity), from schedstat over the ops/s window; firstTouchFaultsPerSec and refaultsPerSec (host faults on never-backed and on discarded pages); deviceDiscardMsPerSec and reportedMiBPerSec (settling included). xVsOffPerGuestCpuSec: the same brackets on ops per guest cpu-second, which does not charge the device's (the host's) time to the guest`,
      'reportingNoDiscard, aerationNoDiscard: the same modes with --no-discard (the device validates, checks and acknowledges every report and keeps the memory), in the same rotation: what reporting costs the guest when no memory goes back (no refaults, no discards)',
      'reclaim: memhog 80% of 1 GiB, --cpus 1, --report-delay 0, --host-thp with the default host cost profile (the device pays its modelled madvise of 2 MiB huge pages; raw discard is GuestMemory.discard at that same modelled cost), series sampled every 2 ms, medians of 5; window from the last sample at the RSS peak to RSS within 2 MiB of guest used; reclaimDeviceDiscardGBPerSec is the device\'s own discard rate in those runs (bytes dropped / time in discard), beside rawDiscardGBPerSec measured alone; each reclaim run is divided by a raw discard measured right after it (500 ms after it, median of 7 passes over 256 MiB) and reclaimVsRawDiscard is the median of those ratios. Cpus4: the same with 4 hogs, whose frees are spread over ~150 ms: there the window follows the guest\'s frees (reclaimCpus4VsGuestFreeRate ~1) and lagAfterLastFreeMsCpus4 is how long RSS stays above guest used after the last free',
    ],
  };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  // `node dist/bench/reporting.js [--quick] [--brackets N]`: this module
  // alone, JSON on stdout (results.json untouched); --brackets sets the
  // kernel-delay campaign's length for a longer, finer measurement.
  const args = process.argv.slice(2);
  const i = args.indexOf('--brackets');
  const brackets = i >= 0 ? Number(args[i + 1]) : undefined;
  if (brackets !== undefined && !(Number.isInteger(brackets) && brackets >= 5 && brackets <= 300)) {
    console.error('bench/reporting: --brackets must be an integer in 5..300 (five modes take turns)');
    process.exit(2);
  }
  const unknown = args.find((a, j) => a !== '--quick' && a !== '--brackets' && !(i >= 0 && j === i + 1));
  if (unknown !== undefined) {
    console.error(`bench/reporting: unknown argument '${unknown}'; accepted: --quick, --brackets N`);
    process.exit(2);
  }
  console.log(JSON.stringify(await bench({ quick: process.argv.includes('--quick'), brackets }), null, 2));
}

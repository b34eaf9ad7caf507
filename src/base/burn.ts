// Busy work: how a modelled fixed cost (a VM exit, a host page fault's
// entry, a TLB-flush interrupt) really occupies the core of the thread that
// pays it (src/mm/host-costs.ts). A fixed number of dependent integer
// multiply-adds, not a wait on the clock: the cost is time ON a core, which a
// thread descheduled mid-wait would not spend, and schedstat
// (src/sim/cputime.ts) sees it on the paying thread.
//
// JIT (docs/DESIGN.md §14): burn() runs its loop body at least once whatever
// it is asked, so a call site that pays 0 iterations before hinting starts
// and thousands after it has type feedback for the body from the first call
// and nothing deoptimizes when the cost first becomes non-zero.

/** Written after every burn so the optimizer cannot drop the loop. */
let sink = 1;

/** Spin `iters` (>= 0) iterations of busy work; one more than asked, always at least one. */
export function burn(iters: number): void {
  let x = sink;
  let n = iters;
  do {
    x = (Math.imul(x, 1664525) + 1013904223) | 0;
    n--;
  } while (n >= 0);
  sink = x;
}

let rate = 0;

/**
 * Iterations of burn() per nanosecond on this thread, measured once per
 * thread (cached): after a warm-up that lets V8 optimize burn(), the fastest
 * of several short timed trials (a trial the OS preempted is slower, never
 * faster, so the fastest is the undisturbed rate).
 */
export function burnItersPerNs(): number {
  if (rate > 0) return rate;
  const N = 20_000;
  for (let i = 0; i < 30; i++) burn(N);
  let best = Infinity;
  for (let t = 0; t < 15; t++) {
    const t0 = performance.now();
    burn(N);
    const ns = (performance.now() - t0) * 1e6;
    if (ns > 0 && ns < best) best = ns;
  }
  // A clock too coarse to time a trial (never on Linux): assume 1 per ns.
  rate = Number.isFinite(best) ? N / best : 1;
  return rate;
}

/** Iterations that take `ns` nanoseconds of this thread's core time (0 for 0). */
export const itersFor = (ns: number): number => (ns > 0 ? Math.max(1, Math.round(ns * burnItersPerNs())) : 0);

// How a scheduled run (--sched) shows in the output: the JSON `sched` object
// and the human lines. The trace hash and the counters here are deterministic
// (same seed and configuration => same values); nothing time-based is in them.

import type { SchedOutcome } from '../sched/control.js';

export function schedJson(s: SchedOutcome): Record<string, unknown> {
  return {
    strategy: s.strategy,
    pctDepth: s.pctDepth,
    steps: s.steps,
    logicalMs: s.logicalMs,
    traceHash: s.traceHash,
    switches: s.switches,
    blocks: s.blocks,
    timeouts: s.timeouts,
    clockJumps: s.clockJumps,
    checks: s.checks,
    abortStep: s.abortStep,
    settled: s.settled,
    halt: s.halt,
    schedule: s.schedule,
  };
}

export function schedLines(s: SchedOutcome, ok: boolean): string[] {
  const out = [`sched: ${s.strategy}${s.strategy === 'pct' ? ` depth ${s.pctDepth}` : ''}: ${s.steps} steps, ${s.switches} switches, logical ${s.logicalMs.toFixed(1)} ms, trace ${s.traceHash}`];
  if (s.halt) out.push(`sched: halted (${s.halt.reason}) at step ${s.halt.step}`);
  if (!ok) out.push(`schedule: ${s.schedule}${s.abortStep ? ` (run aborted at step ${s.abortStep})` : ''}`);
  return out;
}

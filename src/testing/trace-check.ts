// Test support: the rules of the Trace Event Format (the Chrome trace-event
// JSON that ui.perfetto.dev and chrome://tracing read) that a --trace file
// must keep, checked on the parsed object. Returns every broken rule as a
// line (empty: the trace keeps them all).
//
//   - a JSON object with a `traceEvents` array; every event has a known
//     phase, a name, numeric pid/tid and a finite timestamp >= 0
//   - B/E: balanced per thread, each E closing the innermost open B of that thread
//   - X: a duration >= 0; on one thread, complete events nest (a slice that
//     starts inside another ends inside it: no partial overlap)
//   - timestamps per thread never go backwards in file order
//   - instants: scope t, p or g; counters: numeric arguments
//   - every thread with events is named (thread_name metadata)

export const KNOWN_PHASES = new Set(['B', 'E', 'X', 'i', 'I', 'C', 'M', 's', 't', 'f', 'b', 'n', 'e']);

export interface TraceEventLike {
  name?: unknown;
  ph?: unknown;
  ts?: unknown;
  dur?: unknown;
  pid?: unknown;
  tid?: unknown;
  s?: unknown;
  args?: unknown;
}

/** Tolerance for nesting (microseconds): timestamps carry nanoseconds, and sums of decimals round. */
const EPS_US = 0.002;

export function traceFormatErrors(trace: unknown): string[] {
  const errors: string[] = [];
  const err = (m: string) => {
    if (errors.length < 50) errors.push(m);
  };
  if (trace === null || typeof trace !== 'object' || !Array.isArray((trace as { traceEvents?: unknown }).traceEvents)) return ['not a JSON object with a traceEvents array'];
  const events = (trace as { traceEvents: TraceEventLike[] }).traceEvents;
  const lastTs = new Map<string, number>();
  const openB = new Map<string, string[]>();
  const openX = new Map<string, number[]>(); // end times of the enclosing complete events
  const named = new Set<string>();
  const used = new Set<string>();
  events.forEach((e, i) => {
    const where = `event ${i} (${String(e.name)})`;
    if (typeof e.ph !== 'string' || !KNOWN_PHASES.has(e.ph)) return err(`${where}: unknown phase ${JSON.stringify(e.ph)}`);
    if (typeof e.name !== 'string' || e.name === '') err(`${where}: no name`);
    if (typeof e.pid !== 'number' || typeof e.tid !== 'number') return err(`${where}: pid/tid not numbers`);
    if (typeof e.ts !== 'number' || !Number.isFinite(e.ts) || e.ts < 0) return err(`${where}: timestamp ${String(e.ts)} is not a finite number >= 0`);
    const key = `${e.pid}/${e.tid}`;
    if (e.ph === 'M') {
      if (e.name === 'thread_name') named.add(key);
      return;
    }
    used.add(key);
    const prev = lastTs.get(key);
    if (prev !== undefined && e.ts < prev) err(`${where}: timestamp ${e.ts} goes back from ${prev} on thread ${key}`);
    lastTs.set(key, e.ts);
    // Complete events that ended before this event started are closed.
    const stack = openX.get(key) ?? [];
    while (stack.length > 0 && stack[stack.length - 1] <= e.ts + EPS_US) stack.pop();
    openX.set(key, stack);
    if (e.ph === 'X') {
      if (typeof e.dur !== 'number' || !Number.isFinite(e.dur) || e.dur < 0) return err(`${where}: complete event without a duration >= 0`);
      const end = e.ts + e.dur;
      if (stack.length > 0 && end > stack[stack.length - 1] + EPS_US) err(`${where}: [${e.ts}, ${end}] overlaps the end of its enclosing slice (${stack[stack.length - 1]}) on thread ${key}`);
      stack.push(end);
    } else if (e.ph === 'B') {
      const b = openB.get(key) ?? [];
      b.push(e.name as string);
      openB.set(key, b);
    } else if (e.ph === 'E') {
      const b = openB.get(key) ?? [];
      const top = b.pop();
      if (top === undefined) err(`${where}: end without a begin on thread ${key}`);
      else if (typeof e.name === 'string' && e.name !== '' && e.name !== top) err(`${where}: ends '${e.name}' but the open slice is '${top}'`);
    } else if (e.ph === 'i' || e.ph === 'I') {
      if (e.s !== undefined && e.s !== 't' && e.s !== 'p' && e.s !== 'g') err(`${where}: instant scope ${String(e.s)}`);
    } else if (e.ph === 'C') {
      const args = e.args as Record<string, unknown> | undefined;
      if (!args || Object.keys(args).length === 0 || Object.values(args).some((v) => typeof v !== 'number' || !Number.isFinite(v))) err(`${where}: counter without numeric arguments`);
    }
  });
  for (const [key, b] of openB) if (b.length > 0) err(`thread ${key}: ${b.length} begin events never ended (${b.join(', ')})`);
  for (const key of used) if (!named.has(key)) err(`thread ${key} has events but no thread_name`);
  return errors;
}

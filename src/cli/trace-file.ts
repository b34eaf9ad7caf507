// Writing a run's trace (src/sim/trace-export.ts) to its file: one event per
// line, written in chunks, so a trace of a few hundred thousand events is
// never one huge string.

import { closeSync, openSync, writeSync } from 'node:fs';
import type { ChromeTrace } from '../sim/trace-export.js';

/** Write `t` as Chrome trace-event JSON (the object format) to `file`; returns the number of events. */
export function writeTraceFile(file: string, t: ChromeTrace): number {
  const fd = openSync(file, 'w');
  try {
    writeSync(fd, '{"displayTimeUnit":"ms","otherData":' + JSON.stringify(t.otherData) + ',"traceEvents":[\n');
    const CHUNK = 2000;
    for (let i = 0; i < t.traceEvents.length; i += CHUNK) {
      const part = t.traceEvents.slice(i, i + CHUNK).map((e) => JSON.stringify(e));
      writeSync(fd, (i > 0 ? ',\n' : '') + part.join(',\n'));
    }
    writeSync(fd, '\n]}\n');
  } finally {
    closeSync(fd);
  }
  return t.traceEvents.length;
}

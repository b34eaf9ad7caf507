// Interrupting a command (docs/GUIDE.md "Interrupting a run"). The first
// SIGINT or SIGTERM aborts the AbortSignal the command hands its runs
// (RunHooks.interrupt): the workload ends early, the run settles (bounded by
// --settle-timeout), every end-of-run oracle runs, the report and the JSON
// say `interrupted`, and the command exits 130 (SIGINT) or 143 (SIGTERM)
// when nothing failed (1 or 3 when something did). A second signal ends the
// command at once: `abort` says what is lost (seed, rerun) and ends what
// the command started (stress: its children), then exit 3.
//
// While the handlers are installed Node does not end the process on these
// signals itself; dispose() gives the default behaviour back.

export const INTERRUPT_SIGNALS = ['SIGINT', 'SIGTERM'] as const;
export type InterruptSignal = (typeof INTERRUPT_SIGNALS)[number];

/** How long a second signal waits for what onAbort ended (killed children to be reaped) before exiting anyway. */
export const ABORT_WAIT_MS = 2000;

export interface Interrupt {
  /** Aborted on the first signal; its `reason` is the signal's name. */
  signal: AbortSignal;
  /** Remove the handlers (the command is done). */
  dispose(): void;
}

export interface InterruptOptions {
  /** First signal, after the AbortSignal fired (stress forwards it to its runs). */
  onFirst?: (sig: InterruptSignal) => void;
  /**
   * Second signal: print what is lost and end what the command started; the
   * process then exits 3, once a returned promise settled (waiting at most
   * ABORT_WAIT_MS: stress reaps the children it killed).
   */
  onAbort: (sig: InterruptSignal) => void | Promise<void>;
  /** Where the one-line notices go (default stderr). */
  log?: (line: string) => void;
}

export function installInterrupt(o: InterruptOptions): Interrupt {
  const ac = new AbortController();
  const log = o.log ?? ((l: string) => process.stderr.write(l + '\n'));
  const handler = (sig: InterruptSignal) => {
    if (!ac.signal.aborted) {
      log(`\nsim: ${sig}: ending the workload now; settling, checking and reporting what ran (a second SIGINT or SIGTERM aborts at once)`);
      ac.abort(sig);
      o.onFirst?.(sig);
      return;
    }
    let waitFor: void | Promise<void>;
    try {
      waitFor = o.onAbort(sig);
    } catch {
      process.exit(3);
    }
    if (!(waitFor instanceof Promise)) process.exit(3);
    const bound = setTimeout(() => process.exit(3), ABORT_WAIT_MS);
    void waitFor.finally(() => {
      clearTimeout(bound);
      process.exit(3);
    });
  };
  const handlers = INTERRUPT_SIGNALS.map((sig) => [sig, () => handler(sig)] as const);
  for (const [sig, h] of handlers) process.on(sig, h);
  return {
    signal: ac.signal,
    dispose: () => {
      for (const [sig, h] of handlers) process.off(sig, h);
    },
  };
}

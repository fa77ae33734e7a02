import { KilnError } from '../errors.js';

export interface Interrupt {
  /** Aborted (reason: KilnError INTERRUPTED) on the first SIGINT or SIGTERM. */
  signal: AbortSignal;
  /** The signal received, once aborted. */
  received(): NodeJS.Signals | undefined;
  /** Remove the handlers. */
  dispose(): void;
}

/**
 * Turn SIGINT/SIGTERM into an AbortSignal for a build: executors then kill
 * the step's whole process tree and remove their mounts and temp files before
 * the promise settles, and the CLI exits with 128+signal. A second signal
 * exits at once (status 130/143).
 */
export function interruptOnSignals(signals: NodeJS.Signals[] = ['SIGINT', 'SIGTERM']): Interrupt {
  const ac = new AbortController();
  let got: NodeJS.Signals | undefined;
  const handlers = new Map<NodeJS.Signals, () => void>();
  for (const sig of signals) {
    const h = () => {
      if (got) process.exit(sig === 'SIGINT' ? 130 : 143);
      got = sig;
      ac.abort(new KilnError('INTERRUPTED', `Build interrupted by ${sig}`, { hint: 'Send the signal again to exit without cleaning up.' }));
    };
    handlers.set(sig, h);
    process.on(sig, h);
  }
  return {
    signal: ac.signal,
    received: () => got,
    dispose() {
      for (const [sig, h] of handlers) process.off(sig, h);
    },
  };
}

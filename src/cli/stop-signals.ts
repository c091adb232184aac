// Stop signals as Kubernetes' own daemons treat them (k8s.io/apiserver's and controller-runtime's
// SetupSignalHandler, which MetalLB's controller uses): the first asks for a graceful shutdown; a second one while
// it runs means "now" and exits at once with status 1.
import type { Logger } from '../log.js';

/** Exit status on a second stop signal: 1, as os.Exit(1) in the Go daemons an operator knows (not 128+signal). */
export const REPEATED_SIGNAL_EXIT_STATUS = 1;

/**
 * Calls `graceful` on the first of `signals`; a second one (any of them) logs and exits the process with
 * REPEATED_SIGNAL_EXIT_STATUS. The handlers run on the main thread only once its event loop gets to them.
 */
export function onStopSignals(signals: readonly NodeJS.Signals[], graceful: (signal: NodeJS.Signals) => void, log: Logger): void {
  let first: NodeJS.Signals | undefined;
  const handle = (signal: NodeJS.Signals): void => {
    if (first === undefined) {
      first = signal;
      graceful(signal);
      return;
    }
    log.warn({ signal, first, status: REPEATED_SIGNAL_EXIT_STATUS }, 'second signal while shutting down: exiting at once');
    process.exit(REPEATED_SIGNAL_EXIT_STATUS);
  };
  for (const s of signals) process.on(s, handle);
}

/**
 * Ctrl-C while training from the command line. The first one aborts the run's signal: training stops at the next
 * step boundary with a checkpoint, and this says so. A second one quits at once (killed by SIGINT, or status 130).
 * Because this listener stays installed from the start of training to the end, a SIGINT never hits Node's default
 * action in the middle of a synchronous checkpoint write: a second Ctrl-C takes effect only after the write, so it
 * never leaves a temporary folder or loses that checkpoint. Before training starts, Ctrl-C quits at once as usual.
 */
import type { TrainerCallbacks } from "../train/callbacks";

/** Ctrl-C handling for one training run: pass `signal` and `callbacks` to it, and call `dispose` when it is over. */
export function ctrlCStopsTraining(): { signal: AbortSignal; callbacks: TrainerCallbacks; dispose(): void } {
  const stop = new AbortController();
  let interrupts = 0;
  const onSigint = () => {
    if (++interrupts === 1) {
      stop.abort();
      process.stderr.write("\ninterrupted: stopping at the next step boundary and writing a checkpoint (Ctrl-C again quits now)\n");
      return;
    }
    process.stderr.write("\ninterrupted again: quitting; the last checkpoint written is kept\n");
    process.removeListener("SIGINT", onSigint);
    // Die of SIGINT as the shell expects (so a script loop stops too) when nothing else listens; else exit 130.
    if (process.listenerCount("SIGINT") === 0) process.kill(process.pid, "SIGINT");
    process.exit(130);
  };
  return {
    signal: stop.signal,
    // Listening starts when training does (model loading and tokenising before it quit on Ctrl-C as usual).
    callbacks: { onStart: () => void process.on("SIGINT", onSigint) },
    dispose: () => void process.removeListener("SIGINT", onSigint),
  };
}

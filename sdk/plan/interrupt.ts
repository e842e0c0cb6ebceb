/**
 * SIGINT for fit(): a Ctrl-C in a script, or a Jupyter interrupt (the tunelab kernel hands the first interrupt of a
 * cell to SIGINT listeners that the cell added, see kernel/interrupt.ts), stops training at the next step boundary
 * with a checkpoint, and fit() resolves with the run. One-shot: a second SIGINT goes where it would have gone anyway.
 */
import type { TrainerCallbacks } from "../train/callbacks";

/** A signal aborted by `signal` or by the first SIGINT once training has started; call `dispose` when the run is over. */
export function sigintStopsTraining(signal?: AbortSignal): { signal: AbortSignal; callbacks: TrainerCallbacks; dispose(): void } {
  const stop = new AbortController();
  const onSigint = () => stop.abort();
  return {
    signal: signal ? AbortSignal.any([signal, stop.signal]) : stop.signal,
    // Listening starts when training does: an interrupt while the model or data load still breaks the cell.
    callbacks: { onStart: () => void process.once("SIGINT", onSigint) },
    dispose: () => void process.removeListener("SIGINT", onSigint),
  };
}

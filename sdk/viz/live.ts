/**
 * Live progress of long work (fit, evaluate): one display updated in place. Inside the tunelab kernel it
 * publishes through the kernel's display sink (a global symbol the kernel installs: the SDK imports no
 * Jupyter code); in a terminal it redraws one progress line on stderr; otherwise it does nothing.
 */
import { randomBytes } from "node:crypto";
import { JUPYTER_DISPLAY, type Displayable, type DisplayOptions, type MimeBundle } from "./display";

interface Sink {
  renderOptions: DisplayOptions;
  publish(message: { data: MimeBundle; metadata: Record<string, unknown>; transient: { display_id?: string } }, update: boolean): void;
}

const SINK_KEY = Symbol.for("tunelab.kernel.displaySink");

/** A display that long work updates in place. */
export interface LiveView {
  /** Shows `value`'s current state (throttled to a few updates a second unless `force`). */
  update(value: Displayable, line: string, force?: boolean): void;
  /** Leaves the last state on screen. */
  close(): void;
}

/** A live view for this process: kernel display, terminal line, or nothing. */
export function openLiveView(minIntervalMs = 250): LiveView {
  const sink = (globalThis as { [SINK_KEY]?: Sink })[SINK_KEY];
  let last = 0;
  let shown = false;
  const displayId = randomBytes(8).toString("hex");
  const due = (force: boolean) => {
    const now = Date.now();
    if (!force && now - last < minIntervalMs) return false;
    last = now;
    return true;
  };
  if (sink) {
    return {
      update(value, _line, force = false) {
        if (!due(force)) return;
        const data = value[JUPYTER_DISPLAY](sink.renderOptions);
        sink.publish({ data, metadata: {}, transient: { display_id: displayId } }, shown);
        shown = true;
      },
      close() {},
    };
  }
  const tty = process.stderr.isTTY;
  return {
    update(_value, line, force = false) {
      if (!tty || !due(force)) return;
      process.stderr.write(`\r${line.slice(0, (process.stderr.columns ?? 100) - 1)}\x1b[K`);
      shown = true;
    },
    close() {
      if (tty && shown) process.stderr.write("\n");
    },
  };
}

/**
 * Jupyter interrupts. The kernelspec says interrupt_mode "signal", so an interrupt is a SIGINT to this process.
 * tslab answers every one by abandoning the running cell's promise, which is right for ordinary code but wrong
 * for code that handles SIGINT itself: fit() stops at the next step boundary, writes a checkpoint and resolves
 * with the run, and the rest of the cell should then run and the cell end normally. So the first interrupt is
 * left to SIGINT listeners that the running cell added (and that have not had one yet); with none, or when they
 * already had theirs, the cell is abandoned as tslab does. A second interrupt therefore always breaks the cell.
 */

type Listener = (...args: unknown[]) => void;

/** Routes SIGINT between the running cell's own listeners and tslab's interrupt. */
export class InterruptRouter {
  /** Listeners that must not take the next interrupt: present before the cell, or already given one. */
  private notFresh: Set<unknown> | null = null;
  private readonly onSigint: Listener = () => this.interrupt();

  /** `abandonCell` is tslab's interrupt (it rejects the running cell's promise). */
  constructor(private readonly abandonCell: () => void) {}

  /** Starts listening; this listener must run before any other (see keepFirst). */
  install(): void {
    process.prependListener("SIGINT", this.onSigint);
  }

  /** Call when a cell starts running: SIGINT listeners added from now on belong to it. */
  cellStarted(): void {
    this.notFresh = new Set(process.listeners("SIGINT"));
  }

  /** Call when the cell has finished. */
  cellEnded(): void {
    this.notFresh = null;
  }

  /**
   * Call right after the synchronous part of a cell (tslab runs it with vm's breakOnSigint). That option takes every
   * SIGINT listener off while the code runs and adds them back at the end, which breaks two things: (1) when the code
   * itself added a SIGINT listener, Node leaves SIGINT with its default action afterwards and the next interrupt kills
   * the kernel; (2) this router's listener ends up after the cell's. Re-adding all listeners, ours first, mends both.
   */
  keepFirst(): void {
    const raw = process.rawListeners("SIGINT") as Listener[];
    // At zero listeners Node closes its signal handle; the re-add then installs the handler again.
    process.removeAllListeners("SIGINT");
    process.on("SIGINT", this.onSigint);
    // rawListeners gives once() wrappers as they are, so those stay one-shot.
    for (const l of raw) if (l !== this.onSigint) process.on("SIGINT", l);
  }

  /** One interrupt: to the cell's own listeners when it has fresh ones (they run right after this), else tslab's. */
  private interrupt(): void {
    const notFresh = this.notFresh;
    const fresh = notFresh ? process.listeners("SIGINT").filter((l) => !notFresh.has(l)) : [];
    if (notFresh && fresh.length > 0) {
      for (const l of fresh) notFresh.add(l);
      return;
    }
    this.abandonCell();
  }
}

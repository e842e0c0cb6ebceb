/** Automatic versions of the seed tutorial's diagnostics (section 4.2): overfitting and vanishing updates. */
import type { Diagnostic, EvalEvent, StepEvent, TrainerCallbacks, TrainerControl } from "./callbacks";

/** Update norms below this mean training has stalled (seed: "parameter updates < 1e-6"). */
export const VANISHING_UPDATE_NORM = 1e-6;

/** Watches losses and update norms and reports each problem once. */
export class DiagnosticsWatcher {
  private readonly evals: { step: number; val: number; train: number }[] = [];
  private smallUpdates = 0;
  private reported = new Set<Diagnostic["kind"]>();

  /** @param window evaluations in a row with val loss rising while train loss falls that count as overfitting. */
  constructor(private readonly window = 3) {}

  /** Feeds one step's update norm; returns a diagnostic after 10 steps in a row below the threshold. */
  onStep(step: number, updateNorm: number): Diagnostic | null {
    this.smallUpdates = updateNorm < VANISHING_UPDATE_NORM ? this.smallUpdates + 1 : 0;
    if (this.smallUpdates < 10 || this.reported.has("vanishing_updates")) return null;
    this.reported.add("vanishing_updates");
    return {
      kind: "vanishing_updates",
      step,
      message: `parameter updates have been below ${VANISHING_UPDATE_NORM} for ${this.smallUpdates} steps (last ${updateNorm.toExponential(2)})`,
      suggestion: "raise learning_rate, use max_grad_norm: 1.0, or switch optim to lion",
    };
  }

  /** Feeds one evaluation (val loss, and the mean train loss since the previous one). */
  onEval(step: number, valLoss: number, trainLoss: number): Diagnostic | null {
    this.evals.push({ step, val: valLoss, train: trainLoss });
    const recent = this.evals.slice(-(this.window + 1));
    if (recent.length <= this.window || this.reported.has("overfitting")) return null;
    const rising = recent.every((e, i) => i === 0 || (e.val > recent[i - 1].val && e.train < recent[i - 1].train));
    if (!rising) return null;
    this.reported.add("overfitting");
    return {
      kind: "overfitting",
      step,
      message: `validation loss rose for ${this.window} evaluations in a row (${recent[0].val.toFixed(4)} -> ${valLoss.toFixed(4)}) while training loss fell`,
      suggestion: "raise lora_dropout (e.g. 0.3), set early_stopping_steps: 3, or add data (augment)",
    };
  }
}

/** The watcher as a trainer subscriber: feeds it every step and evaluation and reports what it finds. */
export class DiagnosticsReporter implements TrainerCallbacks {
  private readonly watcher = new DiagnosticsWatcher();
  private trainLossesSinceEval: number[] = [];

  async onStep(event: StepEvent, control: TrainerControl): Promise<void> {
    this.trainLossesSinceEval.push(event.loss);
    const found = this.watcher.onStep(event.step, event.updateNorm);
    if (found) await control.diagnose(found);
  }

  async onEval(event: EvalEvent, control: TrainerControl): Promise<void> {
    const losses = this.trainLossesSinceEval;
    this.trainLossesSinceEval = [];
    const found = this.watcher.onEval(event.step, event.loss, losses.reduce((a, b) => a + b, 0) / Math.max(1, losses.length));
    if (found) await control.diagnose(found);
  }
}

/** Early stopping on the validation loss, keeping the best adapter (transformers' EarlyStoppingCallback with load_best_model_at_end). */
import type { EvalEvent, StartInfo, TrainerCallbacks, TrainerControl } from "./callbacks";
import type { TrainerState } from "./checkpoint";
import type { ParamsState, StepEngine } from "./engine";

/**
 * Tracks the best validation loss in the trainer state (bestMetric, bestStep, patienceUsed) and asks the loop to stop
 * after `patience` evaluations in a row without improvement (0: never). Keeps the best tensors to restore at the end;
 * checkpoints save them (`best`), and a resumed run hands them back to the constructor.
 */
export class EarlyStopping implements TrainerCallbacks {
  private bestParams: ParamsState | null;

  constructor(
    private readonly state: TrainerState,
    private readonly engine: Pick<StepEngine, "snapshotParams" | "restoreParams">,
    private readonly patience: number,
    /** The best tensors a resumed run's checkpoint kept, if any. */
    best: ParamsState | null = null,
  ) {
    this.bestParams = patience > 0 ? best : null;
  }

  /** The tensors of the best step so far (null with patience 0, which never restores). */
  get best(): ParamsState | null {
    return this.bestParams;
  }

  /** Says so when a resumed run's checkpoint (of an older tunelab) kept no best tensors, so they cannot be restored. */
  async onStart(_info: StartInfo, control: TrainerControl): Promise<void> {
    const { bestStep, globalStep } = this.state;
    if (this.patience === 0 || this.bestParams || bestStep === null || bestStep === globalStep) return;
    await control.note(
      `the checkpoint resumed from keeps no tensors of the best step ${bestStep} (and checkpoint-${bestStep} is gone); unless a later evaluation improves, the run ends with the last step's adapter`,
    );
  }

  onEval(event: EvalEvent, control: TrainerControl): void {
    const { state } = this;
    if (state.bestMetric === null || event.loss < state.bestMetric) {
      state.bestMetric = event.loss;
      state.bestStep = event.step;
      state.patienceUsed = 0;
      if (this.patience > 0) this.bestParams = this.engine.snapshotParams();
      return;
    }
    state.patienceUsed++;
    if (this.patience === 0 || state.patienceUsed < this.patience) return;
    control.stop("early_stopping", {
      kind: "early_stopping",
      step: event.step,
      message: `validation loss did not improve for ${this.patience} evaluations; keeping the best adapter (step ${state.bestStep})`,
      suggestion: "this is early stopping working as asked; raise early_stopping_steps to train longer",
    });
  }

  /** Puts the best tensors back when they are not the last step's; says whether it did. */
  restoreBest(): boolean {
    if (!this.bestParams || this.state.bestStep === this.state.globalStep) return false;
    this.engine.restoreParams(this.bestParams);
    return true;
  }
}

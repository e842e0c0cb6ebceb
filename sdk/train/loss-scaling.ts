/** Dynamic loss scaling for fp16 training, with torch.cuda.amp.GradScaler's rules and defaults. */
import type { SkippedStepEvent, TrainerCallbacks, TrainerControl } from "./callbacks";
import type { TrainerState } from "./checkpoint";

/** The loss scale an fp16 run starts with (GradScaler's init_scale). */
export const INITIAL_LOSS_SCALE = 65536;
/** Good steps in a row after which the scale doubles (GradScaler's growth_interval). */
const GROWTH_INTERVAL = 2000;

/**
 * Halves the loss scale and retries a step whose float16 gradients overflowed; doubles it after GROWTH_INTERVAL good
 * steps. The scale and the good steps since it last changed (GradScaler's growth tracker) live in the trainer state,
 * so checkpoints keep both and a resumed run changes the scale at the steps the uninterrupted run would.
 */
export class LossScaling implements TrainerCallbacks {
  constructor(private readonly state: Pick<TrainerState, "lossScale" | "lossScaleGoodSteps">) {}

  async onSkippedStep(event: SkippedStepEvent, control: TrainerControl): Promise<void> {
    // A finite loss with non-finite gradients is a float16 overflow, not a diverging run; at scale 1 nothing is left to
    // lower. A non-finite loss, update or optimizer state does not depend on the scale, so retrying cannot help.
    if (event.nonFinite !== "gradients" || this.state.lossScale <= 1) return;
    this.state.lossScale /= 2;
    this.state.lossScaleGoodSteps = 0;
    await control.note(`float16 gradients overflowed at step ${event.step}; loss scale lowered to ${this.state.lossScale}`);
    control.retryStep();
  }

  onStep(): void {
    if (++this.state.lossScaleGoodSteps < GROWTH_INTERVAL) return;
    this.state.lossScale *= 2;
    this.state.lossScaleGoodSteps = 0;
  }
}

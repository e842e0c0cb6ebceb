/** The run's logs as one subscriber of the trainer: train.log, metrics.jsonl and TensorBoard, through RunLogger. */
import { epochOfStep, type StepPlan } from "./batching";
import type { Diagnostic, EvalEvent, StepEvent, TrainerCallbacks } from "./callbacks";
import type { TrainerState } from "./checkpoint";
import type { RunLogger } from "./log/runlogger";

/** Writes every `logging_steps`-th step (and the first and last), each evaluation, diagnostic and message. */
export class RunLogging implements TrainerCallbacks {
  constructor(
    private readonly logger: RunLogger,
    /** The run's state: logged steps go to its logHistory (kept in checkpoints, as transformers' log_history). */
    private readonly state: TrainerState,
    private readonly plan: StepPlan,
    private readonly loggingSteps: number,
  ) {}

  onStep(e: StepEvent): void {
    if (e.step % this.loggingSteps !== 0 && e.step !== 1 && e.step !== this.plan.maxSteps) return;
    const { numEpochs } = this.plan;
    this.logger.step({
      step: e.step,
      epoch: epochOfStep(this.plan, e.step),
      numEpochs,
      loss: e.loss,
      lr: e.learningRate,
      gradNorm: e.gradNorm,
      updateNorm: e.updateNorm,
      tokensPerSec: e.tokensPerSecond,
    });
    this.state.logHistory.push({ step: e.step, loss: e.loss, learning_rate: e.learningRate });
  }

  onEval(e: EvalEvent): void {
    this.logger.eval({ step: e.step, epoch: wholeEpoch(e.epoch), numEpochs: this.plan.numEpochs, metrics: e.metrics });
  }

  onTest(e: EvalEvent): void {
    this.logger.eval({ step: e.step, epoch: wholeEpoch(e.epoch), numEpochs: this.plan.numEpochs, split: "test", metrics: e.metrics });
  }

  onDiagnostic(d: Diagnostic): void {
    this.logger.diagnostic({ ...d, epoch: wholeEpoch(this.state.epoch), numEpochs: this.plan.numEpochs });
  }

  onMessage(text: string): void {
    this.logger.message(text);
  }

  /** Closes the log files (the run's end, however it ends). */
  close(): void {
    this.logger.close();
  }
}

/** The epoch a fractional epoch count is in, at least 1. */
function wholeEpoch(epochs: number): number {
  return Math.max(1, Math.ceil(epochs));
}

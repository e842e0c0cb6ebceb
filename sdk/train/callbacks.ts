/**
 * The trainer's progress API. The kernel's live display, the terminal progress bar and user code all
 * subscribe through these callbacks; none of them is needed to train.
 */

/** Figures of one optimizer step. */
export interface StepEvent {
  step: number;
  maxSteps: number;
  epoch: number;
  numEpochs: number;
  loss: number;
  learningRate: number;
  gradNorm: number;
  updateNorm: number;
  /** Real (non-padding) tokens processed per second over this step. */
  tokensPerSecond: number;
  elapsedSeconds: number;
}

/** Figures of one evaluation on the validation split. */
export interface EvalEvent {
  step: number;
  epoch: number;
  loss: number;
  /** Task metrics, e.g. accuracy, f1_macro, f1_micro, perplexity. */
  metrics: Record<string, number>;
}

/** A finding of the automatic diagnostics (seed tutorial section 4.2). */
export interface Diagnostic {
  kind: "overfitting" | "vanishing_updates" | "non_finite_loss" | "early_stopping";
  step: number;
  message: string;
  /** What to try, in the option names a recipe uses. */
  suggestion: string;
}

/** Subscribers to a training run; every method is optional and may be async. */
export interface TrainerCallbacks {
  onStart?(info: { maxSteps: number; numEpochs: number; trainExamples: number; valExamples: number; outputDir: string }): void | Promise<void>;
  onStep?(event: StepEvent): void | Promise<void>;
  onEval?(event: EvalEvent): void | Promise<void>;
  onDiagnostic?(diagnostic: Diagnostic): void | Promise<void>;
  onCheckpoint?(info: { step: number; dir: string }): void | Promise<void>;
  onEnd?(summary: { step: number; stoppedBy: StopReason; bestStep: number | null }): void | Promise<void>;
}

/** Why a run ended. */
export type StopReason = "max_steps" | "early_stopping" | "interrupted" | "non_finite_loss";

/** Calls one callback on every subscriber, in order. */
export async function emit<K extends keyof TrainerCallbacks>(
  subscribers: readonly TrainerCallbacks[],
  name: K,
  arg: Parameters<NonNullable<TrainerCallbacks[K]>>[0],
): Promise<void> {
  for (const s of subscribers) {
    const fn = s[name] as ((a: typeof arg) => void | Promise<void>) | undefined;
    if (fn) await fn.call(s, arg);
  }
}

/**
 * The trainer's progress API. The kernel's live display, the terminal progress bar, the run's logs and user code
 * all subscribe through these callbacks; so do the trainer's own loss scaling, diagnostics and early stopping,
 * which steer the loop through the `TrainerControl` every callback receives.
 */
import type { NonFinite } from "./engine";

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

/** Figures of one evaluation on the validation split (or, in onTest, the test split). */
export interface EvalEvent {
  step: number;
  epoch: number;
  loss: number;
  /** Task metrics, e.g. accuracy, f1_macro, f1_micro, perplexity. */
  metrics: Record<string, number>;
}

/** A step whose update was not applied because its loss, gradients, update or new optimizer state were not finite. */
export interface SkippedStepEvent {
  /** The step that was tried (1-based). */
  step: number;
  loss: number;
  /** What was not finite. */
  nonFinite: NonFinite;
}

/** A finding of the automatic diagnostics (seed tutorial section 4.2). */
export interface Diagnostic {
  kind: "overfitting" | "vanishing_updates" | "non_finite_loss" | "early_stopping";
  step: number;
  message: string;
  /** What to try, in the option names a recipe uses. */
  suggestion: string;
}

/** What the run is about to do, given once before the first step. */
export interface StartInfo {
  maxSteps: number;
  numEpochs: number;
  trainExamples: number;
  valExamples: number;
  outputDir: string;
}

/** What a subscriber may ask of the running loop: the second argument of every callback. */
export interface TrainerControl {
  /** Ends the run after this step's evaluation, before its checkpoint; the loop then reports `diagnostic`. */
  stop(reason: StopReason, diagnostic?: Diagnostic): void;
  /** From onSkippedStep: runs the step again (e.g. with a lower fp16 loss scale) instead of ending the run. */
  retryStep(): void;
  /** Reports a diagnostic to every subscriber now. */
  diagnose(diagnostic: Diagnostic): Promise<void>;
  /** Adds a line to the run's log (every subscriber's onMessage). */
  note(text: string): Promise<void>;
}

/** Subscribers to a training run; every method is optional and may be async. */
export interface TrainerCallbacks {
  onStart?(info: StartInfo, control: TrainerControl): void | Promise<void>;
  onStep?(event: StepEvent, control: TrainerControl): void | Promise<void>;
  /** A step was not applied; unless a subscriber calls `control.retryStep()`, the run stops with non_finite_loss. */
  onSkippedStep?(event: SkippedStepEvent, control: TrainerControl): void | Promise<void>;
  onEval?(event: EvalEvent, control: TrainerControl): void | Promise<void>;
  /** The final evaluation of the returned adapter on the test split, when there is one. */
  onTest?(event: EvalEvent, control: TrainerControl): void | Promise<void>;
  onDiagnostic?(diagnostic: Diagnostic, control: TrainerControl): void | Promise<void>;
  /** A free-form line of the run's log, e.g. where it resumed from. */
  onMessage?(text: string, control: TrainerControl): void | Promise<void>;
  onCheckpoint?(info: { step: number; dir: string }, control: TrainerControl): void | Promise<void>;
  onEnd?(summary: { step: number; stoppedBy: StopReason; bestStep: number | null }, control: TrainerControl): void | Promise<void>;
}

/** Why a run ended. */
export type StopReason = "max_steps" | "early_stopping" | "interrupted" | "non_finite_loss";

type EventOf<K extends keyof TrainerCallbacks> = Parameters<NonNullable<TrainerCallbacks[K]>>[0];

/** The subscribers of one run, called in order, and what they asked of the loop. */
export class TrainerEvents implements TrainerControl {
  private stopRequest: { reason: StopReason; diagnostic?: Diagnostic } | null = null;
  private retryRequested = false;

  constructor(private readonly subscribers: readonly TrainerCallbacks[]) {}

  /** Calls one callback on every subscriber, in order. */
  async emit<K extends keyof TrainerCallbacks>(name: K, event: EventOf<K>): Promise<void> {
    for (const s of this.subscribers) {
      const fn = s[name] as ((e: EventOf<K>, control: TrainerControl) => void | Promise<void>) | undefined;
      if (fn) await fn.call(s, event, this);
    }
  }

  /** Emits onSkippedStep and says whether a subscriber asked to retry the step. */
  async retrySkipped(event: SkippedStepEvent): Promise<boolean> {
    this.retryRequested = false;
    await this.emit("onSkippedStep", event);
    return this.retryRequested;
  }

  /** The stop asked for since the last call, if any (the first request wins). */
  takeStop(): { reason: StopReason; diagnostic?: Diagnostic } | null {
    const request = this.stopRequest;
    this.stopRequest = null;
    return request;
  }

  stop(reason: StopReason, diagnostic?: Diagnostic): void {
    this.stopRequest ??= { reason, diagnostic };
  }

  retryStep(): void {
    this.retryRequested = true;
  }

  diagnose(diagnostic: Diagnostic): Promise<void> {
    return this.emit("onDiagnostic", diagnostic);
  }

  note(text: string): Promise<void> {
    return this.emit("onMessage", text);
  }
}

/** Learning-rate schedules with warmup, with Hugging Face transformers' formulas (get_scheduler). */

/** `lr_scheduler_type` values tunelab supports. */
export type SchedulerType = "constant" | "constant_with_warmup" | "linear" | "cosine";

/** What a schedule needs to know. */
export interface ScheduleOptions {
  type: SchedulerType;
  /** Peak learning rate (`learning_rate`). */
  learningRate: number;
  warmupSteps: number;
  /** Total optimizer steps of the run. */
  totalSteps: number;
}

/** Learning rate for the optimizer step `step` (0-based, as transformers' LambdaLR counts). */
export function learningRateAt(opts: ScheduleOptions, step: number): number {
  const { type, learningRate: lr, warmupSteps: warmup, totalSteps: total } = opts;
  if (type !== "constant" && step < warmup) return (lr * step) / Math.max(1, warmup);
  switch (type) {
    case "constant":
    case "constant_with_warmup":
      return lr;
    case "linear":
      return lr * Math.max(0, (total - step) / Math.max(1, total - warmup));
    case "cosine": {
      const progress = (step - warmup) / Math.max(1, total - warmup);
      return lr * Math.max(0, 0.5 * (1 + Math.cos(Math.PI * progress)));
    }
  }
}

/** Warmup steps from `warmup_steps` or, when that is 0, `warmup_ratio` of the total (transformers' rule). */
export function resolveWarmup(warmupSteps: number, warmupRatio: number, totalSteps: number): number {
  return warmupSteps > 0 ? warmupSteps : Math.ceil(warmupRatio * totalSteps);
}

/** How a run's optimizer steps map onto its training data: step counts, epochs, and each step's micro-batch feeds. */
import { makeBatches, type Batch } from "../data/batch";
import type { TokenizedExample } from "../data/tokenize";
import { batchFeeds, type Feeds } from "../infer/forward-pass";
import type { Recipe } from "./recipe";
import { resolveWarmup, type ScheduleOptions } from "./schedule";

/** Step counts of a run, from the recipe and the number of training examples. */
export interface StepPlan {
  /** Micro-batches per optimizer step (gradient_accumulation_steps). */
  accumulation: number;
  batchesPerEpoch: number;
  maxSteps: number;
  numEpochs: number;
  schedule: ScheduleOptions;
}

/** The step plan of a recipe: max_steps when set, else num_train_epochs worth of steps. */
export function planSteps(recipe: Recipe, trainExamples: number): StepPlan {
  const accumulation = recipe.gradient_accumulation_steps;
  const batchesPerEpoch = Math.ceil(trainExamples / recipe.per_device_train_batch_size);
  const stepsPerEpoch = Math.max(1, Math.floor(batchesPerEpoch / accumulation));
  const maxSteps = recipe.max_steps > 0 ? recipe.max_steps : Math.ceil(recipe.num_train_epochs * stepsPerEpoch);
  return {
    accumulation,
    batchesPerEpoch,
    maxSteps,
    numEpochs: Math.ceil((maxSteps * accumulation) / batchesPerEpoch),
    schedule: {
      type: recipe.lr_scheduler_type,
      learningRate: recipe.learning_rate,
      warmupSteps: resolveWarmup(recipe.warmup_steps, recipe.warmup_ratio, maxSteps),
      totalSteps: maxSteps,
    },
  };
}

/** Epochs done after `step` optimizer steps (fractional). */
export function epochsDone(plan: StepPlan, step: number): number {
  return (step * plan.accumulation) / plan.batchesPerEpoch;
}

/** The 1-based epoch that optimizer step `step` (1-based) trained in, as train.log shows it. */
export function epochOfStep(plan: StepPlan, step: number): number {
  return Math.min(plan.numEpochs, Math.floor(((step - 1) * plan.accumulation) / plan.batchesPerEpoch) + 1);
}

/**
 * The feeds of each optimizer step: the training examples shuffled anew each epoch (seed + epoch), so any step's
 * batches follow from the recipe alone (resuming continues exactly), and a LoRA dropout seed per micro-batch.
 */
export class StepBatches {
  private epoch = -1;
  private batches: Batch[] = [];

  constructor(
    private readonly recipe: Recipe,
    private readonly plan: StepPlan,
    private readonly examples: readonly TokenizedExample[],
    private readonly padTokenId: number,
  ) {}

  /** The micro-batch feeds of optimizer step `step` (0-based) and their real tokens. */
  feeds(step: number): { feeds: Feeds[]; tokens: number } {
    const feeds: Feeds[] = [];
    let tokens = 0;
    for (let j = 0; j < this.plan.accumulation; j++) {
      const batch = this.microBatch(step * this.plan.accumulation + j);
      tokens += batch.numTokens;
      const f = batchFeeds(batch);
      if (this.recipe.lora_dropout > 0) f.dropout_seed = { dtype: "int64", shape: [], data: BigInt64Array.of(BigInt(dropoutSeed(this.recipe.seed, step, j))) };
      feeds.push(f);
    }
    return { feeds, tokens };
  }

  /** Micro-batch `k` of the run; only the current epoch's batches are kept. */
  private microBatch(k: number): Batch {
    const epoch = Math.floor(k / this.plan.batchesPerEpoch);
    if (epoch !== this.epoch) {
      const { per_device_train_batch_size: batchSize, seed } = this.recipe;
      this.batches = makeBatches(this.examples, { batchSize, padTokenId: this.padTokenId, seed: seed + epoch, padToMultipleOf: 8 });
      this.epoch = epoch;
    }
    return this.batches[k % this.plan.batchesPerEpoch];
  }
}

/** A seed for one micro-batch's dropout masks that depends only on the run seed and the position in the run. */
function dropoutSeed(seed: number, step: number, micro: number): number {
  return (Math.imul(seed + 1, 1000003) + Math.imul(step, 131) + micro) >>> 1;
}

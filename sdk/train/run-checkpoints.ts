/** A run's checkpoints: where it starts (fresh or resumed) and each save, pruned to save_total_limit. */
import * as path from "node:path";
import type { Adapter } from "../models/lora";
import type { TrainerEvents } from "./callbacks";
import { listCheckpoints, loadCheckpoint, pruneCheckpoints, removeStaleCheckpointTemps, saveCheckpoint, type TrainerState } from "./checkpoint";
import type { StepEngine } from "./engine";
import { INITIAL_LOSS_SCALE } from "./loss-scaling";
import type { Recipe } from "./recipe";

/** The state a run starts from: fresh, or the checkpoint resume_from_checkpoint names (whose tensors go into `engine`). */
export function startingState(recipe: Recipe, outputDir: string, engine: Pick<StepEngine, "restore">): { state: TrainerState; resumedFrom: string | null } {
  let state: TrainerState = {
    globalStep: 0,
    epoch: 0,
    bestMetric: null,
    bestStep: null,
    patienceUsed: 0,
    lossScale: recipe.fp16 ? INITIAL_LOSS_SCALE : 1,
    logHistory: [],
  };
  const resumedFrom = resumeCheckpoint(recipe, outputDir);
  if (resumedFrom) {
    const loaded = loadCheckpoint(resumedFrom);
    engine.restore(loaded.engine);
    state = loaded.state;
  }
  removeStaleCheckpointTemps(outputDir);
  return { state, resumedFrom };
}

/** The checkpoint to resume from, if the recipe asks for one. */
function resumeCheckpoint(recipe: Recipe, outputDir: string): string | null {
  const r = recipe.resume_from_checkpoint;
  if (!r) return null;
  if (r === true) {
    const all = listCheckpoints(outputDir);
    if (all.length === 0) throw new Error(`resume_from_checkpoint: true, but ${outputDir} has no checkpoint-* folder`);
    return all[all.length - 1].dir;
  }
  return path.resolve(r);
}

/** Writes checkpoints of the run's current state, keeps the newest `keep` (and the best one), and reports each. */
export class RunCheckpoints {
  /** The step of the last checkpoint written by this run, or -1. */
  savedStep = -1;

  constructor(
    private readonly outputDir: string,
    private readonly keep: number,
    private readonly state: TrainerState,
    private readonly engine: Pick<StepEngine, "snapshot">,
    /** The PEFT adapter to save beside the tensors (LoRA runs), or null. */
    private readonly adapter: () => Adapter | null,
    private readonly events: TrainerEvents,
  ) {}

  /** Saves a checkpoint of the current step. */
  async save(): Promise<void> {
    const { outputDir, state } = this;
    const dir = saveCheckpoint(outputDir, this.adapter(), this.engine.snapshot(), state);
    this.savedStep = state.globalStep;
    pruneCheckpoints(outputDir, Math.max(1, this.keep), state.bestStep !== null ? path.join(outputDir, `checkpoint-${state.bestStep}`) : undefined);
    await this.events.emit("onCheckpoint", { step: state.globalStep, dir });
  }
}

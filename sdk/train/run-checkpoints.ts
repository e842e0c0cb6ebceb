/** A run's checkpoints: where it starts (fresh or resumed) and each save, pruned to save_total_limit. */
import * as path from "node:path";
import type { Adapter } from "../models/lora";
import type { TrainerEvents } from "./callbacks";
import { listCheckpoints, loadCheckpoint, pruneCheckpoints, recoverCheckpointFolders, saveCheckpoint, type TrainerState } from "./checkpoint";
import type { ParamsState, StepEngine } from "./engine";
import { INITIAL_LOSS_SCALE } from "./loss-scaling";
import type { Recipe } from "./recipe";

/** Where a run starts: its state, early stopping's best tensors, and the checkpoint it resumed from (or null). */
export interface StartingState {
  state: TrainerState;
  best: ParamsState | null;
  resumedFrom: string | null;
}

/** The state a run starts from: fresh, or the checkpoint resume_from_checkpoint names (whose tensors go into `engine`). */
export function startingState(recipe: Recipe, outputDir: string, engine: Pick<StepEngine, "restore">): StartingState {
  recoverCheckpointFolders(outputDir);
  const resumedFrom = resumeCheckpoint(recipe, outputDir);
  if (!resumedFrom) {
    const state: TrainerState = {
      globalStep: 0,
      epoch: 0,
      bestMetric: null,
      bestStep: null,
      patienceUsed: 0,
      lossScale: recipe.fp16 ? INITIAL_LOSS_SCALE : 1,
      lossScaleGoodSteps: 0,
      logHistory: [],
    };
    return { state, best: null, resumedFrom };
  }
  const loaded = loadCheckpoint(resumedFrom);
  engine.restore(loaded.engine);
  return { state: loaded.state, best: loaded.best ?? bestFromItsCheckpoint(resumedFrom, loaded.state), resumedFrom };
}

/** For checkpoints written before they kept the best tensors: the tensors of checkpoint-<bestStep> beside it, if kept. */
function bestFromItsCheckpoint(resumedFrom: string, state: TrainerState): ParamsState | null {
  if (state.bestStep === null) return null;
  const dir = path.join(path.dirname(resumedFrom), `checkpoint-${state.bestStep}`);
  return listCheckpoints(path.dirname(resumedFrom)).some((c) => c.dir === dir) ? { step: state.bestStep, params: loadCheckpoint(dir).engine.params } : null;
}

/** The checkpoint to resume from, if the recipe asks for one: `true` takes the newest complete one in output_dir. */
function resumeCheckpoint(recipe: Recipe, outputDir: string): string | null {
  const r = recipe.resume_from_checkpoint;
  if (!r) return null;
  if (r === true) {
    const all = listCheckpoints(outputDir);
    if (all.length === 0) throw new Error(`resume_from_checkpoint: true, but ${outputDir} has no complete checkpoint-* folder`);
    return all[all.length - 1].dir;
  }
  return path.resolve(r);
}

/** What a checkpoint saves besides the trainer state: the engine, the PEFT adapter (LoRA runs) and early stopping's best. */
export interface CheckpointSources {
  engine: Pick<StepEngine, "snapshot">;
  /** The PEFT adapter to save beside the tensors (LoRA runs), or null. */
  adapter(): Adapter | null;
  /** Early stopping's best tensors, or null. */
  best(): ParamsState | null;
}

/** Writes checkpoints of the run's current state, keeps the newest `keep` (and the best one), and reports each. */
export class RunCheckpoints {
  /** The step of the last checkpoint written by this run, or -1. */
  savedStep = -1;

  constructor(
    private readonly outputDir: string,
    private readonly keep: number,
    private readonly state: TrainerState,
    private readonly sources: CheckpointSources,
    private readonly events: TrainerEvents,
  ) {}

  /** Saves a checkpoint of the current step. */
  async save(): Promise<void> {
    const { outputDir, state, sources } = this;
    const dir = saveCheckpoint(outputDir, sources.adapter(), sources.engine.snapshot(), state, sources.best());
    this.savedStep = state.globalStep;
    pruneCheckpoints(outputDir, Math.max(1, this.keep), state.bestStep !== null ? path.join(outputDir, `checkpoint-${state.bestStep}`) : undefined);
    await this.events.emit("onCheckpoint", { step: state.globalStep, dir });
  }
}
